// SPDX-License-Identifier: GPL-2.0

//! ECN/DSCP handling for the outer header (RFC 6040 normal mode, as Linux
//! `include/net/inet_ecn.h` does it).

/// Mask of the ECN bits in a TOS / traffic class byte.
pub const ECN_MASK: u8 = 0b11;
/// ECN-capable transport (0).
pub const ECN_ECT_0: u8 = 0b10;
/// Congestion experienced.
pub const ECN_CE: u8 = 0b11;

/// The outer TOS for `outer_tos` carrying a packet with `inner_tos`, exactly
/// `INET_ECN_encapsulate()`: keep the outer DSCP, copy the inner ECN bits,
/// except that CE becomes ECT(0) so a congestion mark is not duplicated by
/// decapsulators that merge it back.
pub const fn ecn_encapsulate(outer_tos: u8, inner_tos: u8) -> u8 {
    let inner_ecn = inner_tos & ECN_MASK;
    let ecn = if inner_ecn == ECN_CE {
        ECN_ECT_0
    } else {
        inner_ecn
    };
    (outer_tos & !ECN_MASK) | ecn
}

/// The TOS byte of an IPv4 header (`ipv4_get_dsfield()`), or `None` if
/// `header` is shorter than two bytes.
pub fn ipv4_dsfield(header: &[u8]) -> Option<u8> {
    header.get(1).copied()
}

/// The traffic class of an IPv6 header (`ipv6_get_dsfield()`): it straddles
/// the first two bytes after the 4-bit version. `None` if `header` is
/// shorter than two bytes.
pub fn ipv6_dsfield(header: &[u8]) -> Option<u8> {
    match header {
        [b0, b1, ..] => Some((b0 << 4) | (b1 >> 4)),
        _ => None,
    }
}
