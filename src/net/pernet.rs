// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state (`pernet_operations`): created for every namespace (existing
//! ones at registration, new ones as they appear) and dropped in `exit_batch`, for all the
//! namespaces going away together (a batch of destroyed namespaces, or all of them when the
//! subsystem is unregistered).

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EBUSY, from_result, to_result, Result};
use kernel::types::Opaque;

use crate::bindings as b;
use crate::net::Net;

/// The id `register_pernet_subsys` assigns to a subsystem's `net_generic` slot, and whether a
/// registered subsystem holds it (one subsystem per id: a second would share its slots).
pub(crate) struct PernetId {
    id: AtomicU32,
    claimed: AtomicBool,
}

impl PernetId {
    pub(crate) const fn new() -> Self {
        Self { id: AtomicU32::new(0), claimed: AtomicBool::new(false) }
    }
}

/// A namespace being initialised, handed to [`PernetState::init`]. Registrations made from it
/// (hooks, proc files) carry its lifetime `'ns`: they can live in the state `init` returns,
/// which the pernet layer drops in the namespace's teardown, and nowhere longer.
pub(crate) struct Namespace<'ns> {
    net: &'ns Net,
}

impl<'ns> Namespace<'ns> {
    pub(crate) fn net(&self) -> &'ns Net {
        self.net
    }
}

/// A subsystem with state in every namespace.
pub(crate) trait PernetState: 'static {
    /// What it keeps per namespace; it may hold registrations made for that namespace.
    type State<'ns>: Send;
    /// The subsystem's `net_generic` id (a `static` of the implementer).
    fn id() -> &'static PernetId;
    /// Creates the state of a new namespace.
    fn init<'ns>(ns: &Namespace<'ns>) -> Result<KBox<Self::State<'ns>>>;
    /// Stops new callbacks into the state (unregisters hooks, say) without waiting for running
    /// ones; called for every namespace of a teardown batch before the first state is dropped,
    /// so one grace period can cover the whole batch.
    fn quiesce(_state: &mut Self::State<'_>) {}
}

/// Where `net_generic` keeps `T`'s per-namespace pointer.
fn slot<T: PernetState>(net: &Net) -> *mut *mut c_void {
    // SAFETY: `net` is live and `T`'s subsystem is registered (only its `init` and teardown
    // call this), so the slot exists, is `T`'s alone (`PernetId::claimed`) and has the pointer
    // `size` given in `register`.
    unsafe { b::net_generic(net.as_raw(), T::id().id.load(Ordering::Relaxed)).cast() }
}

/// The state `init` created for `net`.
///
/// # Safety
///
/// For all of `'a`, `T`'s subsystem is registered and `net` is set up and not torn down: its
/// `init` for `T` succeeded and its teardown has not begun.
pub(crate) unsafe fn state<'a, T: PernetState>(net: &'a Net) -> &'a T::State<'a> {
    // SAFETY: the slot holds the pointer `init` stored (function contract), which only the
    // teardown takes; the state is only shared (`&`) until then. Lifetimes do not change the
    // layout.
    unsafe { &*slot::<T>(net).read().cast::<T::State<'a>>() }
}

unsafe extern "C" fn init<T: PernetState>(net: *mut b::net) -> c_int {
    from_result(|| {
        // SAFETY: called by the netns core with a namespace being set up, live until its
        // teardown.
        let net = unsafe { Net::from_raw(net) };
        let state = T::init(&Namespace { net })?;
        // SAFETY: the slot is `T`'s (see `slot`); the netns core serialises `init` and teardown
        // of one namespace, and nothing else reads the slot.
        unsafe { slot::<T>(net).write(KBox::into_raw(state).cast()) };
        Ok(0)
    })
}

/// Calls `f` with every namespace of a teardown batch.
///
/// # Safety
///
/// `list` is the `net_exit_list` the netns core passes to `exit_batch`: a list, unchanged
/// during the call, of live `struct net`s linked through their `exit_list`.
unsafe fn for_each_net(list: *mut b::list_head, mut f: impl FnMut(&Net)) {
    // SAFETY: `list` is a valid list head (function contract).
    let mut pos = unsafe { (*list).next };
    while pos != list {
        // SAFETY: `pos` is the `exit_list` member of a live `struct net` (function contract),
        // so stepping back by the member's offset gives that `struct net` (`container_of`).
        let net = unsafe { Net::from_raw(pos.byte_sub(core::mem::offset_of!(b::net, exit_list)).cast()) };
        f(net);
        // SAFETY: `pos` is still a member of the unchanged list.
        pos = unsafe { (*pos).next };
    }
}

/// Where `init` stored `T`'s state for a namespace of a teardown batch.
///
/// # Safety
///
/// `net` is in the batch of `T`'s `exit_batch`: the netns core only tears down an op's state
/// in namespaces whose `init` succeeded (`ops_undo_list`), so the slot holds the pointer
/// `init` stored, until [`exit_batch`] takes it.
unsafe fn stored_state<T: PernetState>(net: &Net) -> *mut T::State<'_> {
    // SAFETY: the slot is `T`'s (see `slot`) and the netns core serialises `init` and teardown
    // of a namespace (`pernet_ops_rwsem`): nothing writes it meanwhile.
    unsafe { slot::<T>(net).read().cast() }
}

/// Tears down the states of a batch of namespaces (unload, or namespaces destroyed together):
/// first [`PernetState::quiesce`] for each, then drops them all. It runs after the batch's
/// devices are gone (`exit_batch` follows device teardown), so the state serves them to the
/// end, and a grace period waited for by the first drop covers every later one.
unsafe extern "C" fn exit_batch<T: PernetState>(net_exit_list: *mut b::list_head) {
    // SAFETY: the netns core passes its teardown batch, unchanged during the call.
    let each_net = |f: &mut dyn FnMut(&Net)| unsafe { for_each_net(net_exit_list, f) };
    each_net(&mut |net| {
        // SAFETY: `net` is in the batch; its state is live and not yet dropped, and no other
        // reference to it exists: only `init` and this function touch the slot.
        T::quiesce(unsafe { &mut *stored_state::<T>(net) });
    });
    each_net(&mut |net| {
        // SAFETY: the state came from `KBox::into_raw` of a `T::State` in `init` (lifetimes do
        // not change the layout) and is dropped exactly once: the netns core frees the slot
        // itself right after this batch (`ops_free_list`).
        drop(unsafe { KBox::from_raw(stored_state::<T>(net)) });
    });
}

/// A registered per-namespace subsystem; unregistering drops `T`'s state in every namespace.
///
/// # Invariants
///
/// `ops` is registered with the netns core until drop, and holds `T::id()`.
pub(crate) struct Subsystem<T: PernetState> {
    ops: KBox<Opaque<b::pernet_operations>>,
    _state: PhantomData<T>,
}

// SAFETY: the registered ops are only read by the netns core; unregistering may happen on any
// thread.
unsafe impl<T: PernetState> Send for Subsystem<T> {}
// SAFETY: `&Subsystem` gives no access to anything.
unsafe impl<T: PernetState> Sync for Subsystem<T> {}

impl<T: PernetState> Subsystem<T> {
    pub(crate) fn register() -> Result<Self> {
        let id = T::id();
        if id.claimed.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(EBUSY);
        }
        let mut ops = b::pernet_operations::default();
        ops.init = Some(init::<T>);
        ops.exit_batch = Some(exit_batch::<T>);
        ops.id = id.id.as_ptr();
        ops.size = core::mem::size_of::<*mut c_void>();
        let registered = KBox::new(Opaque::new(ops), GFP_KERNEL).map_err(Into::into).and_then(|ops| {
            // SAFETY: `ops` is heap memory that stays registered until `drop`.
            to_result(unsafe { b::register_pernet_subsys(ops.get()) }).map(|()| ops)
        });
        match registered {
            // INVARIANT: registered just above, holding the id this subsystem claimed.
            Ok(ops) => Ok(Self { ops, _state: PhantomData }),
            Err(e) => {
                id.claimed.store(false, Ordering::Release);
                Err(e)
            }
        }
    }
}

impl<T: PernetState> Drop for Subsystem<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); this tears down every namespace's state
        // (`exit_batch`).
        unsafe { b::unregister_pernet_subsys(self.ops.get()) };
        T::id().claimed.store(false, Ordering::Release);
    }
}
