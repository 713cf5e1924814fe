// SPDX-License-Identifier: GPL-2.0

//! The flow label of an IPv6 outer header, for real servers set to `hash`.

/// The flow label for a flow with `hash` (RFC 6438: a tunnel ingress labels the outer header
/// from the inner flow's identity), in host order, 20 bits.
///
/// Derived as Linux `ip6_make_flowlabel()` derives automatic labels: the hash rotated by 16
/// bits (Linux's way of not putting the hash on the wire as it is), cut to 20 bits. Linux cuts
/// the rotated value in memory order, so its labels differ between little- and big-endian
/// hosts; this one is the same on every host (Linux's big-endian value). The caller passes the
/// hash the outer source port is chosen from: one flow, one port, one label.
pub const fn flow_label_from_hash(hash: u32) -> u32 {
    hash.rotate_left(16) & FLOW_LABEL_MASK
}

/// The 20 bits of the flow label.
pub const FLOW_LABEL_MASK: u32 = 0x000f_ffff;
