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

/// Linux's `ip6_make_flowlabel()` on a big-endian host, written out from its source: the
/// rotated hash taken as `__be32` and masked with `IPV6_FLOWLABEL_MASK`.
fn linux_big_endian(hash: u32) -> u32 {
    let wire = hash.rotate_left(16).to_be_bytes();
    u32::from_be_bytes(wire) & 0x000f_ffff
}

#[test]
fn matches_linux_automatic_labels_on_a_big_endian_host() {
    let mut hash = 0x9e37_79b9u32;
    for _ in 0..10_000 {
        assert_eq!(flow_label_from_hash(hash), linux_big_endian(hash));
        hash = hash.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f);
    }
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
