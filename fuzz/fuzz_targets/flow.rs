// SPDX-License-Identifier: GPL-2.0
//! Packet classification (`flow.rs`) on arbitrary header bytes: never panics,
//! and what it returns is consistent with the bytes: `forward_key` reads the
//! ports (or uses UDP 500 for AH/ESP), `ipv6_upper_layer` stops at a
//! non-extension header, `icmp_relay_key` only keys relayed ICMP errors about
//! non-ICMP packets and returns the embedded tuple inverted.
#![no_main]

use gue_core::addr::{Family, InetAddr};
use gue_core::flow::{
    forward_key, icmp_relay_key, ipv6_upper_layer, is_relayed_icmp_error, IPPROTO_AH, IPPROTO_ESP,
    IPPROTO_ICMP, IPPROTO_ICMPV6, PORT_ISAKMP,
};
use gue_core::headers::IPPROTO_UDP;
use gue_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const EXTENSION: [u8; 5] = [0, 43, 44, 60, IPPROTO_AH];

fn check_forward(protocol: u8, src: InetAddr, dst: InetAddr, transport: &[u8]) {
    let key = forward_key(protocol, src, dst, transport);
    match protocol {
        IPPROTO_AH | IPPROTO_ESP => {
            let k = key.expect("AH/ESP always have a key");
            assert_eq!(
                (k.protocol, k.client_port, k.virtual_port),
                (IPPROTO_UDP, PORT_ISAKMP, PORT_ISAKMP)
            );
        }
        _ => match transport.get(..4) {
            None => assert!(key.is_none(), "key without ports"),
            Some(p) => {
                let k = key.expect("ports present");
                assert_eq!(k.protocol, protocol);
                assert_eq!(k.client_port, u16::from_be_bytes([p[0], p[1]]));
                assert_eq!(k.virtual_port, u16::from_be_bytes([p[2], p[3]]));
            }
        },
    }
    if let Some(k) = key {
        assert_eq!((k.client, k.virtual_addr, k.icmp_relay), (src, dst, false));
    }
}

fn check_icmp(family: Family, icmp: &[u8]) {
    let Some(k) = icmp_relay_key(family, icmp) else {
        return;
    };
    assert!(k.icmp_relay);
    assert!(
        is_relayed_icmp_error(family, icmp[0]),
        "keyed ICMP type {}",
        icmp[0]
    );
    assert!(!matches!(k.protocol, IPPROTO_ICMP | IPPROTO_ICMPV6));
    let embedded = &icmp[8..];
    assert_eq!(k.client.family(), family);
    assert_eq!(k.virtual_addr.family(), family);
    // The embedded packet went virtual service -> client: its source is our
    // key's virtual address.
    match family {
        Family::V4 => {
            assert_eq!(embedded[0] >> 4, 4);
            assert_eq!(k.virtual_addr.octets(), &embedded[12..16]);
            assert_eq!(k.client.octets(), &embedded[16..20]);
        }
        Family::V6 => {
            assert_eq!(embedded[0] >> 4, 6);
            assert_eq!(k.virtual_addr.octets(), &embedded[8..24]);
            assert_eq!(k.client.octets(), &embedded[24..40]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes::new(data);
    let sel = r.u8();
    let src4 = InetAddr::v4(r.array());
    let dst6 = InetAddr::v6(r.array());
    let rest = r.rest();

    // The whole input as an ICMP message of either family, and without the
    // selector byte (so the type byte is free).
    check_icmp(Family::V4, data);
    check_icmp(Family::V6, data);
    check_icmp(
        if sel & 1 == 0 { Family::V4 } else { Family::V6 },
        &data[data.len().min(1)..],
    );

    // Extension header walk.
    if let Some((proto, offset)) = ipv6_upper_layer(sel, rest) {
        assert!(
            !EXTENSION.contains(&proto),
            "stopped at extension header {proto}"
        );
        if EXTENSION.contains(&sel) {
            assert!(offset >= 8);
        } else {
            assert_eq!((proto, offset), (sel, 0));
        }
    }

    check_forward(sel, src4, dst6, rest);
    check_forward(sel, dst6, src4, data);
});
