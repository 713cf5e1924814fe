// SPDX-License-Identifier: GPL-2.0

//! Output routes for the outer (tunnel) packet.

use core::ptr::NonNull;

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::net::Net;

/// A route to a tunnel endpoint with the source address the stack chose for it.
///
/// # Invariants
///
/// `dst` holds one reference to a valid `dst_entry`, released on drop unless handed to an
/// sk_buff with [`OutputRoute::into_dst`].
pub(crate) struct OutputRoute {
    dst: NonNull<b::dst_entry>,
    source: InetAddr,
}

/// Linux encodes errors in returned pointers (`IS_ERR`).
fn is_err_ptr<T>(ptr: *mut T) -> bool {
    ptr.is_null() || (ptr as usize) >= (-4095isize) as usize
}

impl OutputRoute {
    /// Looks up the route to `daddr` in `net` as the tunnel's UDP flow would take it.
    pub(crate) fn lookup(net: &Net, daddr: &InetAddr) -> Option<Self> {
        match daddr.family() {
            Family::V4 => Self::lookup_v4(net, daddr.v4_octets()?),
            Family::V6 => Self::lookup_v6(net, daddr),
        }
    }

    fn lookup_v4(net: &Net, daddr: [u8; 4]) -> Option<Self> {
        let mut fl4 = b::flowi4::default();
        fl4.daddr = u32::from_ne_bytes(daddr);
        fl4.__fl_common.flowic_proto = crate::gue_core::headers::IPPROTO_UDP;
        // SAFETY: `net` is live and `fl4` is an initialised flow; on success the function
        // returns a referenced route and fills in `fl4.saddr`.
        let rt = unsafe { b::ip_route_output_flow(net.as_raw(), &mut fl4, core::ptr::null_mut()) };
        if is_err_ptr(rt) {
            return None;
        }
        // SAFETY: `rt` is a valid rtable, whose first member is its `dst_entry`.
        let dst = unsafe { core::ptr::addr_of_mut!((*rt).dst) };
        Some(Self {
            dst: NonNull::new(dst)?,
            source: InetAddr::v4(fl4.saddr.to_ne_bytes()),
        })
    }

    fn lookup_v6(net: &Net, daddr: &InetAddr) -> Option<Self> {
        let mut fl6 = b::flowi6::default();
        let mut octets = [0u8; 16];
        octets.copy_from_slice(daddr.octets());
        fl6.daddr.in6_u.u6_addr8 = octets;
        fl6.__fl_common.flowic_proto = crate::gue_core::headers::IPPROTO_UDP;
        let mut dst: *mut b::dst_entry = core::ptr::null_mut();
        // SAFETY: `net` is live; `fl6` and `dst` are valid out-parameters. On success `dst`
        // holds a referenced route and `fl6.saddr` the chosen source address.
        let err = unsafe { b::ip6_dst_lookup(net.as_raw(), core::ptr::null_mut(), &mut dst, &mut fl6) };
        let dst = NonNull::new(dst);
        if err != 0 {
            if let Some(dst) = dst {
                // SAFETY: a route returned with an error is still referenced.
                unsafe { b::dst_release(dst.as_ptr()) };
            }
            return None;
        }
        // SAFETY: reading the union member the lookup wrote.
        let saddr = unsafe { fl6.saddr.in6_u.u6_addr8 };
        Some(Self {
            dst: dst?,
            source: InetAddr::v6(saddr),
        })
    }

    /// The source address for the outer header.
    pub(crate) fn source(&self) -> &InetAddr {
        &self.source
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
