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
/// `remcsum` (the option is added, as in the C path, only to packets with a
/// checksum left to offload: `CHECKSUM_PARTIAL`).
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

/// The MTU left for the inner packet on a tunnel whose path MTU is `path_mtu`, or `None` when
/// the tunnel cannot be used. Like `__ip_vs_get_out_rt{,_v6}`, the floor is the *outer* family's
/// minimum (68 for IPv4, 1280 for IPv6): an IPv6 packet inside IPv4 may well have less than
/// 1280 bytes left (see [`inner_limit`]), and is never refused outright.
pub const fn tunnel_mtu(path_mtu: u32, outer: Family, remcsum: bool) -> Option<u32> {
    match inner_mtu(path_mtu, outer, remcsum) {
        Some(mtu) if mtu >= min_mtu(outer) => Some(mtu),
        _ => None,
    }
}

/// The largest inner packet of `inner` family sent whole through a tunnel with `tunnel_mtu`
/// left: that MTU, except that an IPv6 packet of up to 1280 bytes always is (RFC 8200 section 5:
/// a link that cannot carry 1280 bytes must fragment below IPv6; the outer IPv4 packet is
/// fragmented, as `ignore_df` allows). Without this an IPv6 sender told less than 1280 would
/// stay at 1280 and be refused for ever.
pub const fn inner_limit(tunnel_mtu: u32, inner: Family) -> u32 {
    match inner {
        Family::V6 if tunnel_mtu < IPV6_MIN_MTU => IPV6_MIN_MTU,
        _ => tunnel_mtu,
    }
}
