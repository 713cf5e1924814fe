// SPDX-License-Identifier: GPL-2.0

//! Outer UDP source port selection.

/// The UDP source port for a flow with `hash`, as Linux `udp_flow_src_port()`
/// (`include/net/udp.h`, `use_eth = false`) computes it, in host order.
///
/// Spreading flows over source ports gives ECMP routers and the receiver's
/// RSS entropy, while every packet of one flow keeps one port (no
/// reordering). `min..max` is normally the `ip_local_port_range` sysctl
/// (`inet_get_local_port_range()`); like the kernel the result is in
/// `min..max`, `max` excluded. `min == max` gives `min`; a reversed range is
/// swapped instead of wrapping around. The caller substitutes a random
/// per-boot value for a zero `hash` (`udp_flow_hashrnd()`), as Linux does.
pub const fn udp_flow_src_port(hash: u32, min: u16, max: u16) -> u16 {
    let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
    // Only the upper 16 bits matter below; mixing the low half in keeps
    // the full hash from being read back off the wire.
    let hash = hash ^ (hash << 16);
    let scaled = ((hash as u64) * ((hi - lo) as u64)) >> 32;
    // scaled < hi - lo, so the sum stays below hi.
    lo + scaled as u16
}
