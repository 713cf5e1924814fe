// SPDX-License-Identifier: GPL-2.0

//! The module's thin, safe layer over the raw networking bindings. It is generic: it imports
//! nothing from the modules above it (only the pure `gue_core` types).
//!
//! Everything `unsafe` in ipvs_gue lives below this module; the hook, the encapsulation and
//! the configuration code above it are safe Rust.

pub(crate) mod genetlink;
pub(crate) mod ipvs;
pub(crate) mod netfilter;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod proc;
pub(crate) mod rcu;
pub(crate) mod route;
pub(crate) mod skb;

use kernel::types::Opaque;

use crate::bindings as b;

/// A random number from the kernel's CRNG (`get_random_u32`), for hash keys.
pub(crate) fn random_u32() -> u32 {
    // SAFETY: no preconditions; callable in any context.
    unsafe { b::get_random_u32() }
}

/// A network namespace (`struct net`) that stays alive while the reference exists.
///
/// # Invariants
///
/// The pointer is a valid `struct net` for the lifetime of every `&Net`.
#[repr(transparent)]
pub(crate) struct Net(Opaque<b::net>);

impl Net {
    /// # Safety
    ///
    /// `ptr` must be a valid `struct net` that outlives `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::net) -> &'a Net {
        // SAFETY: `Net` is `repr(transparent)` over `Opaque<net>`; validity is the caller's.
        unsafe { &*ptr.cast::<Net>() }
    }

    pub(crate) fn as_raw(&self) -> *mut b::net {
        self.0.get()
    }

    /// The namespace's `/proc/net` directory.
    pub(crate) fn proc_dir(&self) -> *mut b::proc_dir_entry {
        // SAFETY: `self` is a valid namespace (type invariant); `proc_net` is set at its creation.
        unsafe { (*self.as_raw()).proc_net }
    }

    /// The namespace's local port range, used to spread tunnel source ports.
    pub(crate) fn local_port_range(&self) -> (u16, u16) {
        let (mut low, mut high) = (0i32, 0i32);
        // SAFETY: `self` is a valid namespace; the function writes two ints.
        unsafe { b::inet_get_local_port_range(self.as_raw(), &mut low, &mut high) };
        (low.clamp(0, 65535) as u16, high.clamp(0, 65535) as u16)
    }

    /// A random per-boot value for flows without a hash (`udp_flow_hashrnd`).
    pub(crate) fn udp_flow_hash_seed() -> u32 {
        // SAFETY: no preconditions.
        unsafe { b::udp_flow_hashrnd() }
    }
}
