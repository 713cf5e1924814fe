// SPDX-License-Identifier: GPL-2.0
//! The IPVS connection keys the module looks up (src/gue_core/flow.rs).

use gue_core::addr::{Family, InetAddr};
use gue_core::flow::*;

const CLIENT4: [u8; 4] = [10, 1, 0, 2];
const VIP4: [u8; 4] = [198, 51, 100, 10];

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = last;
    a
}

/// An ICMPv4 error of `icmp_type` embedding IPv4 `src:sport -> dst:dport` of `proto`.
fn icmp4(icmp_type: u8, proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut p = vec![icmp_type, 4, 0, 0, 0, 0, 0x05, 0xdc];
    p.extend_from_slice(&[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p
}

#[test]
fn tcp_and_udp_take_their_ports() {
    let key = forward_key(6, InetAddr::v4(CLIENT4), InetAddr::v4(VIP4), &[0x9c, 0x40, 0, 80]).unwrap();
    assert_eq!((key.protocol, key.client_port, key.virtual_port, key.icmp_relay), (6, 40000, 80, false));
    assert_eq!(forward_key(17, InetAddr::v4(CLIENT4), InetAddr::v4(VIP4), &[0, 1, 0]), None);
}

#[test]
fn ah_and_esp_are_keyed_on_the_ike_connection() {
    for proto in [IPPROTO_ESP, IPPROTO_AH] {
        let key = forward_key(proto, InetAddr::v4(CLIENT4), InetAddr::v4(VIP4), &[]).unwrap();
        assert_eq!((key.protocol, key.client_port, key.virtual_port), (17, 500, 500));
        assert_eq!(key.client, InetAddr::v4(CLIENT4));
    }
}

#[test]
fn icmp_error_is_keyed_on_the_embedded_reply_inverted() {
    // A router tells the VIP that its reply VIP:80 -> client:40000 was too big.
    let key = icmp_relay_key(Family::V4, &icmp4(3, 6, VIP4, 80, CLIENT4, 40000)).unwrap();
    assert_eq!(key.client, InetAddr::v4(CLIENT4));
    assert_eq!(key.virtual_addr, InetAddr::v4(VIP4));
    assert_eq!((key.protocol, key.client_port, key.virtual_port, key.icmp_relay), (6, 40000, 80, true));
    // Time exceeded and source quench are relayed too; echo and redirects are not.
    assert!(icmp_relay_key(Family::V4, &icmp4(11, 17, VIP4, 53, CLIENT4, 5353)).is_some());
    assert!(icmp_relay_key(Family::V4, &icmp4(4, 17, VIP4, 53, CLIENT4, 5353)).is_some());
    assert_eq!(icmp_relay_key(Family::V4, &icmp4(8, 6, VIP4, 80, CLIENT4, 40000)), None);
    assert_eq!(icmp_relay_key(Family::V4, &icmp4(5, 6, VIP4, 80, CLIENT4, 40000)), None);
}

#[test]
fn icmp_errors_about_icmp_and_truncated_errors_are_not_relayed() {
    assert_eq!(icmp_relay_key(Family::V4, &icmp4(3, 1, VIP4, 0, CLIENT4, 0)), None);
    let full = icmp4(3, 6, VIP4, 80, CLIENT4, 40000);
    for len in 0..8 + 20 + 4 {
        assert_eq!(icmp_relay_key(Family::V4, &full[..len]), None, "len {len}");
    }
    assert!(icmp_relay_key(Family::V4, &full[..8 + 20 + 4]).is_some());
    // A non-first embedded fragment has no ports.
    let mut frag = full.clone();
    frag[8 + 6] = 0x20;
    frag[8 + 7] = 0x10;
    assert_eq!(icmp_relay_key(Family::V4, &frag), None);
}

#[test]
fn icmpv6_error_walks_embedded_extension_headers() {
    let mut p = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    // Embedded: VIP6 -> client6, next header destination options (60), then a fragment header
    // (first fragment) and UDP.
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 40, 60, 64]);
    p.extend_from_slice(&v6(10));
    p.extend_from_slice(&v6(2));
    p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
    p.extend_from_slice(&[0x13, 0x88, 0x0f, 0xa0]);
    let key = icmp_relay_key(Family::V6, &p).unwrap();
    assert_eq!(key.client, InetAddr::v6(v6(2)));
    assert_eq!(key.virtual_addr, InetAddr::v6(v6(10)));
    assert_eq!((key.protocol, key.client_port, key.virtual_port), (17, 4000, 5000));
    // Informational messages (echo request 128) are not relayed.
    p[0] = 128;
    assert_eq!(icmp_relay_key(Family::V6, &p), None);
}

#[test]
fn ipv6_upper_layer_skips_extension_headers_and_stops_at_non_first_fragments() {
    assert_eq!(ipv6_upper_layer(6, &[]), Some((6, 0)));
    assert_eq!(ipv6_upper_layer(0, &[6, 0, 0, 0, 0, 0, 0, 0]), Some((6, 8)));
    assert_eq!(ipv6_upper_layer(44, &[17, 0, 0, 0, 0, 0, 0, 1]), Some((17, 8)));
    assert_eq!(ipv6_upper_layer(44, &[17, 0, 0x05, 0x01, 0, 0, 0, 1]), None);
    assert_eq!(ipv6_upper_layer(51, &[6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Some((6, 12)));
    assert_eq!(ipv6_upper_layer(0, &[6, 1, 0, 0]), None);
    // Found by fuzzing: a last extension header longer than the bytes there, and no next header.
    assert_eq!(ipv6_upper_layer(60, &[6, 255, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(ipv6_upper_layer(59, &[0; 8]), None);
    assert_eq!(ipv6_upper_layer(0, &[59, 0, 0, 0, 0, 0, 0, 0]), None);
}

#[test]
fn parsing_never_panics_on_any_prefix_or_byte() {
    let base = icmp4(3, 17, VIP4, 53, CLIENT4, 5353);
    for i in 0..base.len() {
        for b in [0u8, 0x0f, 0x40, 0x4f, 0x60, 0xff] {
            let mut p = base.clone();
            p[i] = b;
            let _ = icmp_relay_key(Family::V4, &p);
            let _ = icmp_relay_key(Family::V6, &p);
            let _ = ipv6_upper_layer(b, &p[i..]);
        }
    }
}

#[test]
fn only_keys_of_protocols_ipvs_schedules_skip_the_connection_lookup() {
    let key = |proto| forward_key(proto, InetAddr::v4(CLIENT4), InetAddr::v4(VIP4), &[0, 1, 0, 2]).unwrap();
    for proto in [IPPROTO_TCP, 17, IPPROTO_SCTP, IPPROTO_ESP, IPPROTO_AH] {
        assert!(ipvs_schedules(key(proto).protocol), "protocol {proto}");
    }
    // GRE, IPIP, IPv6-in-IPv4: IPVS only passes them through (`ignore_tunneled`).
    for proto in [47, 4, 41, 0, 255] {
        assert!(!ipvs_schedules(key(proto).protocol), "protocol {proto}");
    }
    // An ICMP error is keyed on the packet it is about.
    let err = icmp4(3, IPPROTO_TCP, VIP4, 80, CLIENT4, 40000);
    assert!(ipvs_schedules(icmp_relay_key(Family::V4, &err).unwrap().protocol));
}
