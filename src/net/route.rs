// SPDX-License-Identifier: GPL-2.0

//! Output routes: for the outer (tunnel) packet, and what the route a packet carries says.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::alloc::{flags::GFP_ATOMIC, KBox};
use kernel::error::{from_err_ptr, to_result, Result};

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::net::rcu::RcuReadGuard;
use crate::net::Net;

/// Where a route delivers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RouteKind {
    /// To another host.
    Unicast,
    /// To this host (a local address).
    Local,
    /// To a broadcast or multicast address.
    Broadcast,
}

/// A route with the source address the stack chose for it: referenced (a lookup's result)
/// or borrowed from a [`RouteCache`] for an RCU read-side section `'a`.
///
/// # Invariants
///
/// `dst` is a valid `dst_entry` of family `family` for `'a`. If `referenced`, `self` holds
/// one reference to it, released on drop unless handed to an sk_buff by
/// [`OutputRoute::attach`]; if not, it is a cache entry's route and `'a` lies inside an RCU
/// read-side section that found the entry published, so the entry and its reference stay
/// until after `'a` (see [`RouteCache`]).
pub(crate) struct OutputRoute<'a> {
    dst: NonNull<b::dst_entry>,
    family: Family,
    source: InetAddr,
    /// IPv6 routes carry no broadcast flag: a multicast destination is recorded at lookup.
    multicast: bool,
    referenced: bool,
    _rcu: PhantomData<&'a RcuReadGuard>,
}

/// Whether `dst` is a route of `family` (`dst->ops->family`).
///
/// # Safety
///
/// `dst` must be a valid route.
unsafe fn is_of_family(dst: *const b::dst_entry, family: Family) -> bool {
    let expected = match family {
        Family::V4 => b::AF_INET,
        Family::V6 => b::AF_INET6,
    };
    // SAFETY: `dst` is valid (caller); its ops are static.
    u32::from(unsafe { b::ipvs_gue_dst_family(dst) }) == expected
}

/// Where `dst`, a route of a packet of `family`, delivers; `None` if it is not a route of
/// that family.
///
/// # Safety
///
/// `dst` must be a valid route for the duration of the call.
pub(crate) unsafe fn kind_of(dst: *const b::dst_entry, family: Family) -> Option<RouteKind> {
    // SAFETY: `dst` is valid (caller).
    if !unsafe { is_of_family(dst, family) } {
        return None;
    }
    Some(match family {
        Family::V4 => {
            // SAFETY: an IPv4 route is the `dst` member (first) of a `struct rtable`.
            let flags = unsafe { (*dst.cast::<b::rtable>()).rt_flags };
            if flags & b::RTCF_LOCAL != 0 {
                RouteKind::Local
            } else if flags & (b::RTCF_BROADCAST | b::RTCF_MULTICAST) != 0 {
                RouteKind::Broadcast
            } else {
                RouteKind::Unicast
            }
        }
        // SAFETY: `dst` is valid (caller).
        Family::V6 if unsafe { b::ipvs_gue_dst_dev_is_loopback(dst) } => RouteKind::Local,
        Family::V6 => RouteKind::Unicast,
    })
}

/// The destination an on-link route made with `FLOWI_FLAG_KNOWN_NH` (how IPVS routes direct
/// routing) delivers to: for IPv4 an uncached route with `rt_gw4` set to the flow's
/// destination and no gateway; for IPv6 an `RTF_CACHE` clone without `RTF_GATEWAY`, whose
/// `rt6i_dst` is the destination (a nexthop exception for it gives the same: IPv4's
/// `rt_bind_exception` sets `rt_gw4` to it too). `None` for gateway routes and routes of
/// another family.
///
/// # Safety
///
/// `dst` must be a valid route for the duration of the call.
pub(crate) unsafe fn known_next_hop(dst: *const b::dst_entry, family: Family) -> Option<InetAddr> {
    // SAFETY: `dst` is valid (caller).
    if !unsafe { is_of_family(dst, family) } {
        return None;
    }
    match family {
        Family::V4 => {
            // SAFETY: an IPv4 route is the `dst` member (first) of a `struct rtable`.
            let rt = unsafe { &*dst.cast::<b::rtable>() };
            if rt.rt_uses_gateway != 0 || u32::from(rt.rt_gw_family) != b::AF_INET {
                return None;
            }
            // SAFETY: `rt_gw_family == AF_INET` says the IPv4 member of the union is set.
            Some(InetAddr::v4(unsafe { rt.__bindgen_anon_1.rt_gw4 }.to_ne_bytes()))
        }
        Family::V6 => {
            // SAFETY: an IPv6 route is the `dst` member (first) of a `struct rt6_info`.
            let rt = unsafe { &*dst.cast::<b::rt6_info>() };
            if rt.rt6i_flags & (b::RTF_GATEWAY | b::RTF_CACHE) != b::RTF_CACHE {
                return None;
            }
            // SAFETY: every bit pattern of the address union is valid bytes.
            Some(InetAddr::v6(unsafe { rt.rt6i_dst.addr.in6_u.u6_addr8 }))
        }
    }
}

impl OutputRoute<'static> {
    /// Looks up the route to `daddr` in `net` as a UDP flow from this host would take it.
    pub(crate) fn lookup(net: &Net, daddr: &InetAddr) -> Result<Self> {
        match (daddr.v4_octets(), daddr.v6_octets()) {
            (Some(v4), _) => Self::lookup_v4(net, v4),
            (None, Some(v6)) => Self::lookup_v6(net, v6),
            (None, None) => Err(kernel::error::code::EINVAL),
        }
    }

    fn lookup_v4(net: &Net, daddr: [u8; 4]) -> Result<Self> {
        let mut fl4 = b::flowi4::default();
        fl4.daddr = u32::from_ne_bytes(daddr);
        fl4.__fl_common.flowic_proto = crate::gue_core::headers::IPPROTO_UDP;
        // SAFETY: `net` is live and `fl4` is an initialised flow; on success the function
        // returns a referenced route and fills in `fl4.saddr`.
        let rt = from_err_ptr(unsafe { b::ip_route_output_flow(net.as_raw(), &mut fl4, core::ptr::null_mut()) })?;
        // SAFETY: `rt` is a valid rtable, whose first member is its `dst_entry`.
        let dst = unsafe { core::ptr::addr_of_mut!((*rt).dst) };
        // INVARIANT: the lookup returned one reference to an IPv4 route.
        Ok(Self {
            dst: NonNull::new(dst).ok_or(kernel::error::code::EINVAL)?,
            family: Family::V4,
            source: InetAddr::v4(fl4.saddr.to_ne_bytes()),
            multicast: false,
            referenced: true,
            _rcu: PhantomData,
        })
    }

    fn lookup_v6(net: &Net, daddr: [u8; 16]) -> Result<Self> {
        let mut fl6 = b::flowi6::default();
        fl6.daddr.in6_u.u6_addr8 = daddr;
        fl6.__fl_common.flowic_proto = crate::gue_core::headers::IPPROTO_UDP;
        let mut dst: *mut b::dst_entry = core::ptr::null_mut();
        // SAFETY: `net` is live; `fl6` and `dst` are valid out-parameters. On success `dst`
        // holds a referenced route and `fl6.saddr` the chosen source address; on failure it
        // holds no reference.
        to_result(unsafe { b::ip6_dst_lookup(net.as_raw(), core::ptr::null_mut(), &mut dst, &mut fl6) })?;
        // SAFETY: reading the union member the lookup wrote.
        let saddr = unsafe { fl6.saddr.in6_u.u6_addr8 };
        // INVARIANT: the lookup returned one reference to an IPv6 route.
        Ok(Self {
            dst: NonNull::new(dst).ok_or(kernel::error::code::EINVAL)?,
            family: Family::V6,
            source: InetAddr::v6(saddr),
            multicast: daddr[0] == 0xff,
            referenced: true,
            _rcu: PhantomData,
        })
    }
}

impl OutputRoute<'_> {
    /// The route's family.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// The source address for the outer header.
    pub(crate) fn source(&self) -> &InetAddr {
        &self.source
    }

    /// Where the route delivers (`RTCF_LOCAL`/`RTCF_BROADCAST`, or for IPv6 the loopback
    /// device, as IPVS's `__ip_vs_is_local_route6` decides, or a multicast destination).
    pub(crate) fn kind(&self) -> RouteKind {
        if self.multicast {
            return RouteKind::Broadcast;
        }
        // SAFETY: `self.dst` is a valid route of `self.family` (type invariant).
        unsafe { kind_of(self.dst.as_ptr(), self.family) }.unwrap_or(RouteKind::Broadcast)
    }

    /// The route's path MTU (`dst_mtu`).
    pub(crate) fn mtu(&self) -> u32 {
        // SAFETY: `self.dst` is a valid route (type invariant).
        unsafe { b::dst_mtu(self.dst.as_ptr()) }
    }

    /// Link-layer headroom the egress device wants (`LL_RESERVED_SPACE`).
    pub(crate) fn device_headroom(&self) -> usize {
        // SAFETY: `self.dst` is valid (type invariant); so is its device while it is (a route
        // whose device goes gets `blackhole_netdev`, `dst_dev_put`).
        unsafe { b::ipvs_gue_dst_ll_reserved_space(self.dst.as_ptr()) as usize }
    }

    /// Makes the route `skb`'s route, releasing the one it had: with its reference
    /// (`skb_dst_set`), or a borrowed route without one (`skb_dst_set_noref`, as IPVS attaches
    /// its cached routes); the stack takes a reference of its own before the packet outlives
    /// the RCU read-side section (`skb_dst_force` when it is queued).
    ///
    /// # Safety
    ///
    /// `skb` must be a valid sk_buff, exclusively the caller's, sent (or freed) within `'a` if
    /// the route is borrowed.
    pub(crate) unsafe fn attach(self, skb: *mut b::sk_buff) {
        let dst = self.dst.as_ptr();
        let referenced = self.referenced;
        core::mem::forget(self);
        // SAFETY: `skb` is valid and the caller's (caller); its old route is released.
        unsafe { b::skb_dst_drop(skb) };
        if referenced {
            // SAFETY: `skb` is valid and the caller's (caller); the reference passes to it.
            unsafe { b::skb_dst_set(skb, dst) };
        } else {
            // SAFETY: as above; `dst` stays valid for `'a` (type invariant), the RCU
            // read-side section the packet is sent in (caller).
            unsafe { b::skb_dst_set_noref(skb, dst) };
        }
    }
}

impl Drop for OutputRoute<'_> {
    fn drop(&mut self) {
        if self.referenced {
            // SAFETY: `self.dst` holds a reference (type invariant) released exactly once here.
            unsafe { b::dst_release(self.dst.as_ptr()) };
        }
    }
}

/// A route cache entry: the route to `endpoint` and what revalidates it, as IPVS's
/// `struct ip_vs_dest_dst`. Published in a [`RouteCache`].
///
/// # Invariants
///
/// `dst` holds one reference to a valid route of `endpoint`'s family to `endpoint`, released
/// when the entry is freed.
#[repr(C)]
struct CachedRoute {
    /// First, for `call_rcu`'s callback to find the entry (`container_of` at offset 0).
    rcu: b::callback_head,
    dst: NonNull<b::dst_entry>,
    /// What `dst_check` compares: 0 for IPv4, the fib6 node's serial number for IPv6.
    cookie: u32,
    /// The namespace's IPv6 route generation before the lookup (see [`route_generation`]).
    generation: i32,
    source: InetAddr,
    endpoint: InetAddr,
}

/// What must not change for a cached route of `family` to stay valid beyond its own
/// `dst_check`. IPv4: nothing (`ipv4_dst_check` compares the namespace's route generation,
/// which every IPv4 route change in any table bumps). IPv6: the namespace's fib6 serial
/// number (`rt_genid_ipv6`), bumped by every route added or deleted in any table and by
/// address changes; the route's cookie covers only its own fib6 tree, so a route added to a
/// policy routing table, or a local address, would otherwise leave it valid (IPVS's own
/// cache has that gap).
fn route_generation(net: &Net, family: Family) -> i32 {
    match family {
        Family::V4 => 0,
        // SAFETY: `net` is live; reads one counter.
        Family::V6 => unsafe { b::rt_genid_ipv6(net.as_raw()) },
    }
}

impl Drop for CachedRoute {
    fn drop(&mut self) {
        // SAFETY: the entry's reference (type invariant), released once.
        unsafe { b::dst_release(self.dst.as_ptr()) };
    }
}

/// Frees an entry a grace period after it was unpublished.
///
/// # Safety
///
/// Called by RCU only, with the `rcu` member of a `CachedRoute` that [`RouteCache::retire`]
/// passed to `call_rcu`.
unsafe extern "C" fn free_cached_route(head: *mut b::callback_head) {
    // SAFETY: `head` is the first member of a `CachedRoute` leaked from a `KBox` (caller),
    // which no reader can still see after the grace period; freed once.
    drop(unsafe { KBox::from_raw(head.cast::<CachedRoute>()) });
}

/// One real server's cached route to its tunnel endpoint: the per-packet route lookup
/// replaced by a pointer load and a validity check, as IPVS caches its destinations' routes
/// (`__ip_vs_get_out_rt`). Filled by the first packet; a packet that finds it stale (routes
/// or devices changed: `dst_check`, [`route_generation`]) or for another endpoint (the
/// server was edited, or its slot reused) looks up again and replaces it.
///
/// # Invariants
///
/// `entry` is null or a `CachedRoute` leaked from a `KBox`, owned by `self`. An entry
/// replaced by another is freed a grace period later (`call_rcu`), never sooner, so a reader
/// inside an RCU read-side section keeps a valid entry. Whoever drops `self` guarantees that
/// no reader can reach it any more.
pub(crate) struct RouteCache {
    entry: AtomicPtr<CachedRoute>,
}

impl RouteCache {
    pub(crate) const fn new() -> Self {
        // INVARIANT: empty.
        Self { entry: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// The route to `endpoint` in `net`: the cached one while it is valid, borrowed for the
    /// read-side section `rcu`, else a new lookup, cached if it is unicast.
    pub(crate) fn route<'a>(&'a self, net: &Net, endpoint: &InetAddr, rcu: &'a RcuReadGuard) -> Result<OutputRoute<'a>> {
        // Read before the lookup: a change during it makes the entry stale at once.
        let generation = route_generation(net, endpoint.family());
        if let Some(route) = self.cached(endpoint, generation, rcu) {
            return Ok(route);
        }
        let route = OutputRoute::lookup(net, endpoint)?;
        if route.kind() == RouteKind::Unicast {
            self.store(endpoint, &route, generation);
        }
        Ok(route)
    }

    /// The cached route to `endpoint`, if one is cached and still valid.
    fn cached<'a>(&'a self, endpoint: &InetAddr, generation: i32, _rcu: &'a RcuReadGuard) -> Option<OutputRoute<'a>> {
        let entry = self.entry.load(Ordering::Acquire);
        if entry.is_null() {
            return None;
        }
        // SAFETY: a published entry stays valid until a grace period after it is replaced
        // (type invariant), and `_rcu` is a read-side section that found it published.
        let entry = unsafe { &*entry };
        if entry.endpoint != *endpoint || entry.generation != generation {
            return None;
        }
        // SAFETY: the entry's route is valid while the entry is (type invariant of
        // `CachedRoute`); `dst_check` returns it if still valid, else null.
        if unsafe { b::dst_check(entry.dst.as_ptr(), entry.cookie) }.is_null() {
            return None;
        }
        // INVARIANT: the entry was found published inside `_rcu`.
        Some(OutputRoute {
            dst: entry.dst,
            family: endpoint.family(),
            source: entry.source,
            multicast: false,
            referenced: false,
            _rcu: PhantomData,
        })
    }

    /// Caches `route`, looked up for `endpoint` after `generation` was read, replacing the
    /// current entry. Best effort: a route stale from birth (e.g. an xfrm larval blackhole)
    /// is not cached, and if no memory is to be had at once nothing is; the next packet looks
    /// up again.
    fn store(&self, endpoint: &InetAddr, route: &OutputRoute<'_>, generation: i32) {
        let dst = route.dst;
        let cookie = match route.family {
            Family::V4 => 0,
            // SAFETY: an IPv6 route is the `dst` member (first) of a `struct rt6_info`, valid
            // while `route` is.
            Family::V6 => unsafe { b::rt6_get_cookie(dst.as_ptr().cast::<b::rt6_info>()) },
        };
        // SAFETY: `dst` is valid while `route` is.
        if unsafe { b::dst_check(dst.as_ptr(), cookie) }.is_null() {
            return;
        }
        // SAFETY: `dst` is valid while `route` is; the entry gets a reference of its own.
        unsafe { b::dst_hold(dst.as_ptr()) };
        // INVARIANT: one reference to `route`, a route of `endpoint`'s family to `endpoint`.
        let entry = CachedRoute {
            rcu: b::callback_head::default(),
            dst,
            cookie,
            generation,
            source: route.source,
            endpoint: *endpoint,
        };
        // On failure the entry is dropped, releasing its reference.
        let Ok(entry) = KBox::new(entry, GFP_ATOMIC) else {
            return;
        };
        let old = self.entry.swap(KBox::into_raw(entry), Ordering::AcqRel);
        self.retire(old);
    }

    /// Empties the cache (a new server in the slot, or none): frees the entry a grace period
    /// later.
    pub(crate) fn clear(&self) {
        let old = self.entry.swap(core::ptr::null_mut(), Ordering::AcqRel);
        self.retire(old);
    }

    /// Frees `old`, just replaced, once readers that may have found it are done.
    fn retire(&self, old: *mut CachedRoute) {
        if old.is_null() {
            return;
        }
        // The callback runs after every read-side section that may have found `old`; the
        // module waits for callbacks before its code goes (`rcu::CallbackBarrier`).
        // SAFETY: `old` was swapped out, so it is no longer published and only this call
        // frees it; its `rcu` member is unused until now.
        unsafe { b::call_rcu(core::ptr::addr_of_mut!((*old).rcu), Some(free_cached_route)) };
    }
}

impl Drop for RouteCache {
    fn drop(&mut self) {
        let entry = *self.entry.get_mut();
        if !entry.is_null() {
            // SAFETY: owned by `self`, leaked from a `KBox` (type invariant); no reader can
            // reach it any more (whoever drops `self` guarantees it).
            drop(unsafe { KBox::from_raw(entry) });
        }
    }
}
