// SPDX-License-Identifier: GPL-2.0

//! Netfilter hooks at `NF_INET_LOCAL_OUT` for IPv4 and IPv6 in one network namespace.

use core::ffi::{c_uint, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{to_result, Result};
use kernel::sync::Arc;
use kernel::types::Opaque;

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::net::pernet::Namespace;
use crate::net::rcu::GracePeriodStamp;
use crate::net::route::{self, RouteKind};
use crate::net::skb::{OwnedSkb, SkBuff};
use crate::net::Net;

/// What a hook decides for a packet. Only [`HookSkb::accept`] and [`HookSkb::steal`] make
/// one, each consuming the packet, so a packet is either handed back or kept, never both.
pub(crate) struct Verdict(VerdictKind);

enum VerdictKind {
    /// Let the packet continue untouched (`NF_ACCEPT`).
    Accept,
    /// The hook owns the packet now (`NF_STOLEN`).
    Stolen,
}

/// The packet a hook is called with: borrowed from netfilter until the hook either accepts
/// it or steals it. It can only be read until stolen.
///
/// # Invariants
///
/// `skb` is the valid `family` sk_buff netfilter passed to this hook call, owned by netfilter
/// for `'a`.
pub(crate) struct HookSkb<'a> {
    skb: NonNull<b::sk_buff>,
    family: Family,
    _borrow: PhantomData<&'a SkBuff>,
}

impl HookSkb<'_> {
    /// The packet's IP family.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// Hands the packet back to netfilter untouched.
    pub(crate) fn accept(self) -> Verdict {
        Verdict(VerdictKind::Accept)
    }

    /// Takes the packet over: netfilter forgets it (`NF_STOLEN`).
    pub(crate) fn steal(self) -> (OwnedSkb, Verdict) {
        // SAFETY: netfilter lets a hook keep the sk_buff when it returns `NF_STOLEN`; the
        // only `Verdict` left for this call is that one, since `self` is consumed.
        (unsafe { OwnedSkb::from_raw(self.skb, self.family) }, Verdict(VerdictKind::Stolen))
    }

    /// The route IPVS attached, if any, for the call: referenced, or (as IPVS attaches it)
    /// RCU-protected noref, valid inside `nf_hook`'s read-side section, which spans the call.
    fn route(&self) -> Option<NonNull<b::dst_entry>> {
        // SAFETY: the packet is valid for the hook call (type invariant).
        NonNull::new(unsafe { b::skb_dst(self.skb.as_ptr()) })
    }

    /// The real server IPVS routed this packet to, when its route says so: an on-link
    /// direct-routing destination (see [`route::known_next_hop`]).
    pub(crate) fn known_next_hop(&self) -> Option<InetAddr> {
        // SAFETY: the route is valid for the call (see `route`).
        self.route().and_then(|dst| unsafe { route::known_next_hop(dst.as_ptr(), self.family) })
    }

    /// Whether the packet's route delivers it to this host: IPVS passes direct-routing
    /// packets to a local real server on with `ipvs_property` set.
    pub(crate) fn route_is_local(&self) -> bool {
        // SAFETY: the route is valid for the call (see `route`).
        self.route().and_then(|dst| unsafe { route::kind_of(dst.as_ptr(), self.family) })
            == Some(RouteKind::Local)
    }
}

impl core::ops::Deref for HookSkb<'_> {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        // SAFETY: `skb` is valid for `'a` (type invariant); shared access only.
        unsafe { SkBuff::from_raw(self.skb.as_ptr()) }
    }
}

/// A per-namespace packet processor called at LOCAL_OUT for both IP families.
pub(crate) trait LocalOutHook: Send + Sync {
    fn local_out(&self, net: &Net, skb: HookSkb<'_>) -> Verdict;
}

/// Runs `T::local_out` for a packet netfilter hands over.
///
/// # Safety
///
/// Called by netfilter only, with `priv_` the `T` of a live [`Registration`].
unsafe extern "C" fn hook_trampoline<T: LocalOutHook, const V6: bool>(
    priv_: *mut c_void,
    skb: *mut b::sk_buff,
    state: *const b::nf_hook_state,
) -> c_uint {
    let Some(skb) = NonNull::new(skb) else {
        return b::NF_ACCEPT;
    };
    // SAFETY: `priv_` is the `T` a `Registration` holds a reference to until no CPU can be
    // in this function any more (see `Drop`); `state->net` is the namespace the hook runs in.
    let (hook, net) = unsafe { (&*priv_.cast::<T>(), Net::from_raw((*state).net)) };
    let family = if V6 { Family::V6 } else { Family::V4 };
    // INVARIANT: netfilter passes a valid sk_buff of the hook's family that it owns for the
    // duration of the call.
    let skb = HookSkb { skb, family, _borrow: PhantomData };
    match hook.local_out(net, skb).0 {
        VerdictKind::Accept => b::NF_ACCEPT,
        VerdictKind::Stolen => b::NF_STOLEN,
    }
}

/// LOCAL_OUT hooks (IPv4 and IPv6) of one namespace, calling `T`; unregistered on drop (or
/// earlier, by [`Registration::unregister`]), and `T` released only once no CPU can still be
/// running the hook.
///
/// # Invariants
///
/// While `unregistered` is `None`, both `ops` are registered in `net` with `priv_` pointing at
/// `*data`; once it is `Some(stamp)`, neither is, and a CPU can be running the hook only inside
/// an RCU read-side section that began before `stamp`. `net` lives for `'ns`, which `self`
/// cannot outlive.
pub(crate) struct Registration<'ns, T: LocalOutHook> {
    ops: KBox<[Opaque<b::nf_hook_ops>; 2]>,
    /// The hook's state, kept alive while a CPU may run the hook.
    _data: Arc<T>,
    net: NonNull<b::net>,
    unregistered: Option<GracePeriodStamp>,
    _ns: PhantomData<&'ns Net>,
}

// SAFETY: the registered ops are only read by netfilter; unregistering may happen on any
// thread; `data` is `Send + Sync`.
unsafe impl<T: LocalOutHook> Send for Registration<'_, T> {}
// SAFETY: `&Registration` only gives `&T`, and `T: Sync`.
unsafe impl<T: LocalOutHook> Sync for Registration<'_, T> {}

impl<'ns, T: LocalOutHook> Registration<'ns, T> {
    /// Registers `data` at LOCAL_OUT for IPv4 and IPv6 in the namespace, after IPVS and every
    /// other hook there (last priority), so packets arrive as IPVS left them.
    pub(crate) fn register(ns: &Namespace<'ns>, data: Arc<T>) -> Result<Self> {
        let priv_: *mut c_void = core::ptr::from_ref::<T>(&data).cast_mut().cast();
        let make = |pf: u32, priority: i32, hook: b::nf_hookfn| {
            let mut ops = b::nf_hook_ops::default();
            ops.hook = hook;
            ops.priv_ = priv_;
            ops.pf = pf as u8;
            ops.hooknum = b::nf_inet_hooks_NF_INET_LOCAL_OUT;
            ops.priority = priority;
            Opaque::new(ops)
        };
        let ops = KBox::new(
            [
                make(b::NFPROTO_IPV4, b::nf_ip_hook_priorities_NF_IP_PRI_LAST, Some(hook_trampoline::<T, false>)),
                make(b::NFPROTO_IPV6, b::nf_ip6_hook_priorities_NF_IP6_PRI_LAST, Some(hook_trampoline::<T, true>)),
            ],
            GFP_KERNEL,
        )?;
        let net = ns.net().as_raw();
        // SAFETY: `net` is live; `ops` is heap memory that stays put until `drop`, and its
        // `priv_` (`data`) lives at least as long.
        to_result(unsafe { b::nf_register_net_hook(net, ops[0].get()) })?;
        // SAFETY: as above.
        if let Err(e) = to_result(unsafe { b::nf_register_net_hook(net, ops[1].get()) }) {
            // SAFETY: the IPv4 hook was registered just above.
            unsafe { b::nf_unregister_net_hook(net, ops[0].get()) };
            // Unregistering does not wait for running hooks (see `unregister`): wait before
            // `ops` and `data` may go.
            GracePeriodStamp::now().wait();
            return Err(e);
        }
        // INVARIANT: both hooks are registered with `priv_` = `data`; `ns` lives for `'ns`.
        Ok(Self { ops, _data: data, net: NonNull::from(ns.net()).cast(), unregistered: None, _ns: PhantomData })
    }

    /// Stops new calls of the hook now; `T` is still released only on drop, after a grace
    /// period. Unregistering the hooks of many namespaces before dropping any lets one grace
    /// period cover them all: the first drop waits, the others find it elapsed.
    pub(crate) fn unregister(&mut self) {
        if self.unregistered.is_some() {
            return;
        }
        for ops in self.ops.iter() {
            // SAFETY: both hooks are registered in `net` (type invariant, `unregistered` is
            // `None`).
            unsafe { b::nf_unregister_net_hook(self.net.as_ptr(), ops.get()) };
        }
        // `nf_unregister_net_hook` swaps in a new hook blob and frees the old one with
        // `call_rcu`: it does not wait for CPUs still inside `nf_hook_slow` (an RCU read-side
        // section, `nf_hook`'s `rcu_read_lock`) running our hook, so they may have begun only
        // before this point.
        // INVARIANT: neither hook is registered any more; any running call began before the
        // stamp.
        self.unregistered = Some(GracePeriodStamp::now());
    }
}

impl<T: LocalOutHook> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        self.unregister();
        // Wait for CPUs still running the hook before `ops` and `data` are released; this
        // returns at once (almost always: RCU's polled state may miss an overlapping grace
        // period and wait for one more) if one has passed since `unregister`.
        if let Some(stamp) = &self.unregistered {
            stamp.wait();
        }
    }
}
