// SPDX-License-Identifier: GPL-2.0

//! Netfilter hooks at `NF_INET_LOCAL_OUT` for IPv4 and IPv6 in one network namespace.

use core::ffi::{c_uint, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{to_result, Result};

use crate::bindings as b;
use crate::gue_core::addr::Family;
use crate::net::skb::{OwnedSkb, SkBuff};
use crate::net::Net;

/// Proof that a hook took ownership of its packet; only [`HookSkb::steal`] makes one.
pub(crate) struct Stolen(());

/// What a hook decides for a packet.
pub(crate) enum Verdict {
    /// Let the packet continue untouched (`NF_ACCEPT`).
    Accept,
    /// The hook owns the packet now (`NF_STOLEN`).
    Stolen(Stolen),
}

/// The packet a hook is called with: borrowed from netfilter until the hook either returns
/// [`Verdict::Accept`] or steals it.
pub(crate) struct HookSkb<'a> {
    skb: NonNull<b::sk_buff>,
    _borrow: PhantomData<&'a mut SkBuff>,
}

impl HookSkb<'_> {
    /// Takes the packet over; the hook must then return [`Verdict::Stolen`].
    pub(crate) fn steal(self) -> (OwnedSkb, Stolen) {
        // SAFETY: netfilter hands the hook an sk_buff it may keep when it returns
        // `NF_STOLEN`, which the `Stolen` token forces.
        (unsafe { OwnedSkb::from_raw(self.skb) }, Stolen(()))
    }
}

impl core::ops::Deref for HookSkb<'_> {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        // SAFETY: netfilter passes a valid sk_buff owned by the hook call for `'a`.
        unsafe { SkBuff::from_raw(self.skb.as_ptr()) }
    }
}

/// A per-namespace packet processor called at LOCAL_OUT for both IP families.
pub(crate) trait LocalOutHook: Sync {
    fn local_out(&self, net: &Net, family: Family, skb: HookSkb<'_>) -> Verdict;
}

/// Runs `T::local_out` for a packet netfilter hands over.
///
/// # Safety
///
/// Called by netfilter only, with `priv_` the `T` given to [`LocalOutHooks::register`].
unsafe extern "C" fn hook_trampoline<T: LocalOutHook, const V6: bool>(
    priv_: *mut c_void,
    skb: *mut b::sk_buff,
    state: *const b::nf_hook_state,
) -> c_uint {
    let Some(skb) = NonNull::new(skb) else {
        return b::NF_ACCEPT;
    };
    // SAFETY: `priv_` is the `T` that outlives the registration (see `register`), and
    // `state->net` is the namespace the hook runs in.
    let (hook, net) = unsafe { (&*priv_.cast::<T>(), Net::from_raw((*state).net)) };
    let family = if V6 { Family::V6 } else { Family::V4 };
    let skb = HookSkb { skb, _borrow: PhantomData };
    match hook.local_out(net, family, skb) {
        Verdict::Accept => b::NF_ACCEPT,
        Verdict::Stolen(_) => b::NF_STOLEN,
    }
}

/// Registered LOCAL_OUT hooks (IPv4 and IPv6) of one namespace; unregistered on drop.
///
/// # Invariants
///
/// Both `ops` are registered in `net` until drop; `net` outlives `self`.
pub(crate) struct LocalOutHooks {
    ops: KBox<[b::nf_hook_ops; 2]>,
    net: NonNull<b::net>,
}

// SAFETY: after registration the ops are only read by netfilter; dropping (unregistering)
// from any thread is allowed.
unsafe impl Send for LocalOutHooks {}
// SAFETY: `&LocalOutHooks` gives no access to anything.
unsafe impl Sync for LocalOutHooks {}

impl LocalOutHooks {
    /// Registers `hook` at LOCAL_OUT for IPv4 and IPv6 in `net`, after IPVS and every other
    /// hook there (last priority), so packets arrive as IPVS left them.
    ///
    /// # Safety
    ///
    /// `hook` must stay valid until the returned value is dropped.
    pub(crate) unsafe fn register<T: LocalOutHook>(net: &Net, hook: &T) -> Result<Self> {
        let make = |pf: u32, priority: i32, f: b::nf_hookfn| {
            let mut ops = b::nf_hook_ops::default();
            ops.hook = f;
            ops.priv_ = core::ptr::from_ref(hook).cast_mut().cast();
            ops.pf = pf as u8;
            ops.hooknum = b::nf_inet_hooks_NF_INET_LOCAL_OUT;
            ops.priority = priority;
            ops
        };
        let ops = KBox::new(
            [
                make(b::NFPROTO_IPV4, b::nf_ip_hook_priorities_NF_IP_PRI_LAST, Some(hook_trampoline::<T, false>)),
                make(b::NFPROTO_IPV6, b::nf_ip6_hook_priorities_NF_IP6_PRI_LAST, Some(hook_trampoline::<T, true>)),
            ],
            GFP_KERNEL,
        )?;
        // SAFETY: `net` is live and `ops` is heap memory that stays put until `drop`.
        to_result(unsafe { b::nf_register_net_hook(net.as_raw(), &ops[0]) })?;
        // SAFETY: as above.
        if let Err(e) = to_result(unsafe { b::nf_register_net_hook(net.as_raw(), &ops[1]) }) {
            // SAFETY: the IPv4 hook was registered just above.
            unsafe { b::nf_unregister_net_hook(net.as_raw(), &ops[0]) };
            return Err(e);
        }
        Ok(Self { ops, net: NonNull::from(net).cast() })
    }
}

impl Drop for LocalOutHooks {
    fn drop(&mut self) {
        for ops in self.ops.iter() {
            // SAFETY: both hooks are registered in `net` (type invariant). Unregistering waits
            // for running hook calls (`synchronize_net`), so `priv_` is unused afterwards.
            unsafe { b::nf_unregister_net_hook(self.net.as_ptr(), ops) };
        }
    }
}
