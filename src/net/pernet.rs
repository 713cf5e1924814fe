// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state (`pernet_operations`): created for every namespace (existing
//! ones at registration, new ones as they appear) and dropped in the namespace's `exit` or
//! when the subsystem is unregistered.

use core::ffi::c_int;
use core::marker::PhantomData;
use core::sync::atomic::AtomicU32;

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{from_result, to_result, Result};
use kernel::types::Opaque;

use crate::bindings as b;
use crate::net::Net;

/// The id `register_pernet_subsys` assigns to a subsystem's `net_generic` slot.
pub(crate) struct PernetId(AtomicU32);

impl PernetId {
    pub(crate) const fn new() -> Self {
        Self(AtomicU32::new(0))
    }
}

/// A namespace being initialised, handed to [`PernetState::init`]. Registrations made from it
/// (hooks, proc files) may keep the namespace's pointer: the state that owns them is dropped
/// in the namespace's `exit`, before the namespace goes.
pub(crate) struct Namespace<'a> {
    net: &'a Net,
}

impl Namespace<'_> {
    pub(crate) fn net(&self) -> &Net {
        self.net
    }
}

/// What a subsystem keeps per namespace.
pub(crate) trait PernetState: Send + Sized {
    /// The subsystem's `net_generic` id (a `static` of the implementer).
    fn id() -> &'static PernetId;
    /// Creates the state of a new namespace.
    fn init(ns: &Namespace<'_>) -> Result<KBox<Self>>;
}

/// Where `net_generic` keeps `T`'s per-namespace pointer.
fn slot<T: PernetState>(net: &Net) -> *mut *mut T {
    // SAFETY: `net` is live and `T`'s subsystem is registered (only its `init`/`exit` call
    // this), so the slot exists and has the pointer `size` given in `register`.
    unsafe { b::net_generic(net.as_raw(), T::id().0.load(core::sync::atomic::Ordering::Relaxed)).cast() }
}

unsafe extern "C" fn init<T: PernetState>(net: *mut b::net) -> c_int {
    from_result(|| {
        // SAFETY: called by the netns core with a namespace being set up, live for the call.
        let net = unsafe { Net::from_raw(net) };
        let state = T::init(&Namespace { net })?;
        // SAFETY: the slot is `T`'s (see `slot`); the netns core serialises `init` and `exit`
        // of one namespace, and nothing else reads the slot.
        unsafe { slot::<T>(net).write(KBox::into_raw(state)) };
        Ok(0)
    })
}

unsafe extern "C" fn exit<T: PernetState>(net: *mut b::net) {
    // SAFETY: called by the netns core with a namespace being torn down, still live.
    let net = unsafe { Net::from_raw(net) };
    // SAFETY: as in `init`; the slot holds null (zeroed by the core, `init` failed) or the
    // pointer `init` stored.
    let state = unsafe { slot::<T>(net).replace(core::ptr::null_mut()) };
    if !state.is_null() {
        // SAFETY: `state` came from `KBox::into_raw` in `init` and is freed exactly once.
        drop(unsafe { KBox::from_raw(state) });
    }
}

/// A registered per-namespace subsystem; unregistering drops `T` in every namespace.
///
/// # Invariants
///
/// `ops` is registered with the netns core until drop.
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
        let mut ops = b::pernet_operations::default();
        ops.init = Some(init::<T>);
        ops.exit = Some(exit::<T>);
        ops.id = T::id().0.as_ptr();
        ops.size = core::mem::size_of::<*mut T>();
        let ops = KBox::new(Opaque::new(ops), GFP_KERNEL)?;
        // SAFETY: `ops` is heap memory that stays registered until `drop`.
        to_result(unsafe { b::register_pernet_subsys(ops.get()) })?;
        // INVARIANT: registered just above.
        Ok(Self { ops, _state: PhantomData })
    }
}

impl<T: PernetState> Drop for Subsystem<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); this runs `exit` for every namespace.
        unsafe { b::unregister_pernet_subsys(self.ops.get()) };
    }
}
