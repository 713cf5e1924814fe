// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state: created for every namespace (existing ones at load, new ones
//! as they appear) and destroyed with it or at unload (`pernet_operations`).

use core::ffi::c_int;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{to_result, Result};

use crate::bindings as b;
use crate::net::Net;
use crate::netns::NetnsSlot;

/// The id `register_pernet_subsys` assigns to our `net_generic` slot.
static NET_ID: AtomicU32 = AtomicU32::new(0);

/// Where `net_generic` keeps our per-namespace pointer.
fn slot_cell(net: &Net) -> *mut *mut NetnsSlot {
    // SAFETY: `net` is live and our subsystem is registered (callers run from its callbacks or
    // from proc files that exist only while it is), so the slot exists and has our `size`.
    unsafe { b::net_generic(net.as_raw(), NET_ID.load(Ordering::Relaxed)).cast() }
}

/// The state of `net`, if its initialisation has completed.
pub(crate) fn slot_of(net: &Net) -> Option<&NetnsSlot> {
    // SAFETY: the cell holds null or a `KBox` pointer that lives until `exit` for `net`,
    // which cannot run while `net` is in use by the caller (proc removal waits for readers).
    unsafe { slot_cell(net).read().as_ref() }
}

unsafe extern "C" fn init(net: *mut b::net) -> c_int {
    // SAFETY: called by the netns core with a namespace being set up.
    let net = unsafe { Net::from_raw(net) };
    match NetnsSlot::new(net) {
        Ok(slot) => {
            // SAFETY: the cell is ours (see `slot_cell`) and nobody reads it concurrently yet.
            unsafe { slot_cell(net).write(KBox::into_raw(slot)) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn exit(net: *mut b::net) {
    // SAFETY: called by the netns core with a namespace being torn down.
    let net = unsafe { Net::from_raw(net) };
    let cell = slot_cell(net);
    // SAFETY: the cell is ours; `init` stored a `KBox` pointer (or null if it failed).
    let slot = unsafe { cell.replace(core::ptr::null_mut()) };
    if !slot.is_null() {
        // SAFETY: `slot` came from `KBox::into_raw` in `init` and is freed exactly once.
        drop(unsafe { KBox::from_raw(slot) });
    }
}

/// The registered per-namespace subsystem; unregistering runs `exit` for every namespace.
pub(crate) struct PernetSubsys {
    ops: KBox<b::pernet_operations>,
}

// SAFETY: the registered ops are only read by the netns core.
unsafe impl Send for PernetSubsys {}
// SAFETY: `&PernetSubsys` gives no access to anything.
unsafe impl Sync for PernetSubsys {}

impl PernetSubsys {
    pub(crate) fn register() -> Result<Self> {
        let mut ops = KBox::new(b::pernet_operations::default(), GFP_KERNEL)?;
        ops.init = Some(init);
        ops.exit = Some(exit);
        ops.id = NET_ID.as_ptr();
        ops.size = core::mem::size_of::<*mut NetnsSlot>();
        // SAFETY: `ops` is heap memory that stays registered until `drop`.
        to_result(unsafe { b::register_pernet_subsys(&mut *ops) })?;
        Ok(Self { ops })
    }
}

impl Drop for PernetSubsys {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; this runs `exit` for every namespace.
        unsafe { b::unregister_pernet_subsys(&mut *self.ops) };
    }
}
