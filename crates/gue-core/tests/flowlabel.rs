//! The outer IPv6 flow label of a `hash` server (what the module's transmit path puts on the
//! wire).

use gue_core::flowlabel::{flow_label_from_hash, FLOW_LABEL_MASK};
use gue_core::ports::udp_flow_src_port;

#[test]
fn the_label_is_the_rotated_hash_cut_to_20_bits() {
    // rol32(0x12345678, 16) = 0x56781234, whose low 20 bits are 0x81234.
    assert_eq!(flow_label_from_hash(0x1234_5678), 0x8_1234);
    assert_eq!(flow_label_from_hash(0xffff_ffff), FLOW_LABEL_MASK);
    assert_eq!(flow_label_from_hash(0x0001_0000), 1);
    assert_eq!(flow_label_from_hash(0x0000_0001), 0x1_0000);
    assert_eq!(flow_label_from_hash(0xfff0_0000), 0xfff0);
}

/// The label Linux's `ip6_make_flowlabel()` puts on the wire, written out from its source
/// (include/net/ipv6.h): the rotated hash's bytes in the host's memory order (`in_memory`)
/// taken as a `__be32` and masked with `IPV6_FLOWLABEL_MASK` (`htonl(0x000fffff)`).
fn linux_label(hash: u32, in_memory: fn(u32) -> [u8; 4]) -> u32 {
    u32::from_be_bytes(in_memory(hash.rotate_left(16))) & 0x000f_ffff
}

#[test]
fn matches_linux_automatic_labels_on_a_big_endian_host_only() {
    let mut hash = 0x9e37_79b9u32;
    let mut differ_on_little_endian = 0;
    for _ in 0..10_000 {
        assert_eq!(flow_label_from_hash(hash), linux_label(hash, u32::to_be_bytes));
        if flow_label_from_hash(hash) != linux_label(hash, u32::to_le_bytes) {
            differ_on_little_endian += 1;
        }
        hash = hash.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f);
    }
    // The documented difference: an x86 Linux host labels the same flow differently.
    assert_eq!(linux_label(0x1234_5678, u32::to_le_bytes), 0x2_7856);
    assert!(differ_on_little_endian > 9_900, "{differ_on_little_endian}");
}

/// What a fabric hashing on the label sees: distinct flows get distinct labels about as often
/// as they get distinct source ports, so the label spreads them as the port does.
#[test]
fn distinct_flows_get_distinct_labels() {
    let mut hash = 1u32;
    let mut labels = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..1000 {
        hash = hash.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f);
        labels.insert(flow_label_from_hash(hash));
        ports.insert(udp_flow_src_port(hash, 32768, 60999));
    }
    assert!(labels.len() >= 995, "{} distinct labels of 1000 flows", labels.len());
    assert!(ports.len() >= 970, "{} distinct ports of 1000 flows", ports.len());
}
