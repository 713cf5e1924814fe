// SPDX-License-Identifier: GPL-2.0

//! Output routes: for the outer (tunnel) packet, and what the route a packet carries says.

use core::ptr::NonNull;

use kernel::error::{from_err_ptr, to_result, Result};

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
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

/// A referenced route with the source address the stack chose for it.
///
/// # Invariants
///
/// `dst` holds one reference to a valid `dst_entry` of family `family`, released on drop
/// unless handed to an sk_buff with [`OutputRoute::into_dst`].
pub(crate) struct OutputRoute {
    dst: NonNull<b::dst_entry>,
    family: Family,
    source: InetAddr,
    /// IPv6 routes carry no broadcast flag: a multicast destination is recorded at lookup.
    multicast: bool,
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
/// `rt6i_dst` is the destination. `None` for any other route (gateway routes, and cached IPv4
/// routes, which a nexthop exception for the destination yields).
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

impl OutputRoute {
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
        })
    }

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
        // SAFETY: `self.dst` is a valid referenced route of `self.family` (type invariant).
        unsafe { kind_of(self.dst.as_ptr(), self.family) }.unwrap_or(RouteKind::Broadcast)
    }

    /// The route's path MTU (`dst_mtu`).
    pub(crate) fn mtu(&self) -> u32 {
        // SAFETY: `self.dst` is a valid referenced route (type invariant).
        unsafe { b::dst_mtu(self.dst.as_ptr()) }
    }

    /// Link-layer headroom the egress device wants (`LL_RESERVED_SPACE`).
    pub(crate) fn device_headroom(&self) -> usize {
        // SAFETY: `self.dst` is valid (type invariant); its device is valid while the route
        // is referenced.
        unsafe { b::ipvs_gue_dst_ll_reserved_space(self.dst.as_ptr()) as usize }
    }

    /// Gives up ownership of the route reference (to `skb_dst_set`).
    pub(crate) fn into_dst(self) -> *mut b::dst_entry {
        let dst = self.dst.as_ptr();
        core::mem::forget(self);
        dst
    }
}

impl Drop for OutputRoute {
    fn drop(&mut self) {
        // SAFETY: `self.dst` holds a reference (type invariant) released exactly once here.
        unsafe { b::dst_release(self.dst.as_ptr()) };
    }
}
