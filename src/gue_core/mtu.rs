// SPDX-License-Identifier: GPL-2.0

//! Encapsulation overhead and the MTU left for the inner packet, matching
//! the GUE branch of `__ip_vs_get_out_rt()` / `__ip_vs_get_out_rt_v6()`.

use super::addr::Family;
use super::gue::{GUE_HEADER_LEN, GUE_PRIV_LEN, GUE_REMCSUM_LEN};
use super::headers::{Ipv4Header, Ipv6Header, UdpHeader};

/// Smallest MTU an IPv4 link may have (RFC 791).
pub const IPV4_MIN_MTU: u32 = 68;
/// Smallest MTU an IPv6 link may have (RFC 8200).
pub const IPV6_MIN_MTU: u32 = 1280;

/// The minimum MTU of `family`.
pub const fn min_mtu(family: Family) -> u32 {
    match family {
        Family::V4 => IPV4_MIN_MTU,
        Family::V6 => IPV6_MIN_MTU,
    }
}

/// Bytes added in front of the inner packet: outer IP header, UDP header and
/// GUE header, plus the private-flags word and remote checksum option when
/// remote checksum offload is configured. The kernel reserves the option
/// space whenever remcsum is configured, even for packets that end up
/// without it, so the advertised MTU does not flap per packet.
pub const fn encap_overhead(outer: Family, remcsum: bool) -> u32 {
    let ip = match outer {
        Family::V4 => Ipv4Header::LEN,
        Family::V6 => Ipv6Header::LEN,
    };
    let opts = if remcsum {
        GUE_PRIV_LEN + GUE_REMCSUM_LEN
    } else {
        0
    };
    (ip + UdpHeader::LEN + GUE_HEADER_LEN + opts) as u32
}

/// The largest inner packet that fits `path_mtu` once encapsulated, or
/// `None` if the overhead alone exceeds it.
pub const fn inner_mtu(path_mtu: u32, outer: Family, remcsum: bool) -> Option<u32> {
    path_mtu.checked_sub(encap_overhead(outer, remcsum))
}

/// Whether an inner packet of `inner_len` bytes is too big for `path_mtu`
/// after encapsulation (and so must be answered with ICMP "fragmentation
/// needed" / "packet too big" if it may not be fragmented).
pub const fn exceeds_mtu(inner_len: u32, path_mtu: u32, outer: Family, remcsum: bool) -> bool {
    match inner_mtu(path_mtu, outer, remcsum) {
        Some(mtu) => inner_len > mtu,
        None => true,
    }
}

/// The MTU to report in the ICMP error to a sender of `inner` family: the
/// inner MTU, raised to the family's minimum (a sender cannot go lower; for
/// IPv6 the kernel then fragments the outer packet instead).
pub const fn icmp_mtu(path_mtu: u32, outer: Family, remcsum: bool, inner: Family) -> u32 {
    let floor = min_mtu(inner);
    match inner_mtu(path_mtu, outer, remcsum) {
        Some(mtu) if mtu > floor => mtu,
        _ => floor,
    }
}
