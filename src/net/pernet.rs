// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state (`pernet_operations`): created for every namespace (existing
//! ones at registration, new ones as they appear) and dropped in the namespace's `exit` or
//! when the subsystem is unregistered. Between `pre_exit` and `exit` the netns core waits for
//! one RCU grace period for all namespaces going away together (`ops_undo_list`).

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
/// which the pernet layer drops in the namespace's `exit`, and nowhere longer.
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
    /// First step of the namespace's teardown: an RCU grace period follows before the state
    /// is dropped, shared by every namespace (and every subsystem) going away in the batch.
    fn pre_exit(_state: &mut Self::State<'_>) {}
}

/// Where `net_generic` keeps `T`'s per-namespace pointer.
fn slot<T: PernetState>(net: &Net) -> *mut *mut c_void {
    // SAFETY: `net` is live and `T`'s subsystem is registered (only its `init`/`exit` call
    // this), so the slot exists, is `T`'s alone (`PernetId::claimed`) and has the pointer
    // `size` given in `register`.
    unsafe { b::net_generic(net.as_raw(), T::id().id.load(Ordering::Relaxed)).cast() }
}

unsafe extern "C" fn init<T: PernetState>(net: *mut b::net) -> c_int {
    from_result(|| {
        // SAFETY: called by the netns core with a namespace being set up, live until `exit`.
        let net = unsafe { Net::from_raw(net) };
        let state = T::init(&Namespace { net })?;
        // SAFETY: the slot is `T`'s (see `slot`); the netns core serialises `init` and `exit`
        // of one namespace, and nothing else reads the slot.
        unsafe { slot::<T>(net).write(KBox::into_raw(state).cast()) };
        Ok(0)
    })
}

unsafe extern "C" fn pre_exit<T: PernetState>(net: *mut b::net) {
    // SAFETY: called by the netns core with a namespace being torn down, still live.
    let net = unsafe { Net::from_raw(net) };
    // SAFETY: as in `init`; the slot holds null (`init` failed) or the pointer `init` stored,
    // which only `exit` frees, after this returns.
    let state = unsafe { slot::<T>(net).read() };
    if !state.is_null() {
        // SAFETY: `state` points at the live `T::State` `init` stored; the netns core runs
        // `init`, `pre_exit` and `exit` of one namespace one after another, so nothing else
        // holds a reference to it.
        T::pre_exit(unsafe { &mut *state.cast::<T::State<'_>>() });
    }
}

unsafe extern "C" fn exit<T: PernetState>(net: *mut b::net) {
    // SAFETY: called by the netns core with a namespace being torn down, still live.
    let net = unsafe { Net::from_raw(net) };
    // SAFETY: as in `init`; the slot holds null (zeroed by the core, `init` failed) or the
    // pointer `init` stored.
    let state = unsafe { slot::<T>(net).replace(core::ptr::null_mut()) };
    if !state.is_null() {
        // SAFETY: `state` came from `KBox::into_raw` of a `T::State` in `init` (lifetimes do
        // not change the layout) and is freed exactly once, while the namespace still lives.
        drop(unsafe { KBox::<T::State<'_>>::from_raw(state.cast()) });
    }
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
        ops.pre_exit = Some(pre_exit::<T>);
        ops.exit = Some(exit::<T>);
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
        // SAFETY: registered (type invariant); this runs `exit` for every namespace.
        unsafe { b::unregister_pernet_subsys(self.ops.get()) };
        T::id().claimed.store(false, Ordering::Release);
    }
}
