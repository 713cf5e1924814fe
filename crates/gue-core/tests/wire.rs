//! Header encoders, GUE, checksums, ECN, source ports and MTU arithmetic.

use gue_core::addr::Family;
use gue_core::checksum::*;
use gue_core::ecn::*;
use gue_core::error::EncodeError;
use gue_core::gue::*;
use gue_core::headers::*;
use gue_core::mtu::*;
use gue_core::ports::udp_flow_src_port;
use proptest::prelude::*;

mod oracle;
use oracle::checksum::*;
use oracle::fou::{decode as fou_decode, DecodeError};

/// Straightforward RFC 1071 reference: sum 16-bit words, fold, complement.
fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for (i, b) in data.iter().enumerate() {
        sum += if i % 2 == 0 {
            u64::from(*b) << 8
        } else {
            u64::from(*b)
        };
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn gue_plain_header_bytes() {
    let h = GueHeader {
        proto: IPPROTO_IPIP,
        remcsum: None,
    };
    let mut buf = [0xaa; 16];
    assert_eq!(h.len(), 4);
    assert_eq!(h.encode(&mut buf), Ok(4));
    assert_eq!(&buf[..4], &[0x00, 0x04, 0x00, 0x00]);
    assert_eq!(buf[4], 0xaa, "nothing written past the header");
    assert_eq!(fou_decode(&buf[..4]), Ok((h, 4)));
}

#[test]
fn gue_remcsum_header_bytes_match_ipvs_gue_encap() {
    // Inner IPv6/TCP: checksum starts after the 40-byte IPv6 header, the
    // TCP checksum field is 16 bytes in: pd[0] = 40, pd[1] = 56.
    let h = GueHeader {
        proto: IPPROTO_IPV6,
        remcsum: Some(RemoteChecksum {
            start: 40,
            offset: 16,
        }),
    };
    let mut buf = [0u8; 12];
    assert_eq!(h.len(), GUE_HEADER_LEN + GUE_PRIV_LEN + GUE_REMCSUM_LEN);
    assert_eq!(h.encode(&mut buf), Ok(12));
    assert_eq!(buf, [0x02, 41, 0x00, 0x01, 0x80, 0, 0, 0, 0, 40, 0, 56]);
    assert_eq!(fou_decode(&buf), Ok((h, 12)));
}

#[test]
fn gue_encode_errors() {
    let h = GueHeader {
        proto: 4,
        remcsum: Some(RemoteChecksum {
            start: 1,
            offset: 2,
        }),
    };
    let mut short = [0u8; 11];
    assert_eq!(
        h.encode(&mut short),
        Err(EncodeError::BufferTooShort {
            needed: 12,
            available: 11
        })
    );
    assert_eq!(short, [0; 11], "failed encode writes nothing");
    let over = GueHeader {
        proto: 4,
        remcsum: Some(RemoteChecksum {
            start: 0xfff0,
            offset: 0x10,
        }),
    };
    assert!(matches!(
        over.encode(&mut [0u8; 12]),
        Err(EncodeError::FieldOverflow(_))
    ));
    let edge = GueHeader {
        proto: 4,
        remcsum: Some(RemoteChecksum {
            start: 0xfff0,
            offset: 0x0f,
        }),
    };
    assert_eq!(edge.encode(&mut [0u8; 12]), Ok(12));
}

#[test]
fn gue_decode_rejects_what_linux_would_not_send() {
    use DecodeError::*;
    let d = fou_decode;
    assert_eq!(d(&[]), Err(Truncated));
    assert_eq!(d(&[0, 4, 0]), Err(Truncated));
    assert_eq!(d(&[0x40, 4, 0, 0]), Err(UnsupportedVersion(1)));
    assert_eq!(d(&[0xc0, 4, 0, 0]), Err(UnsupportedVersion(3)));
    assert_eq!(d(&[0x20, 0, 0, 0]), Err(ControlMessage));
    assert_eq!(d(&[0, 4, 0x80, 0]), Err(UnknownFlags(0x8000)));
    assert_eq!(d(&[0, 4, 0, 0x03]), Err(UnknownFlags(0x0003)));
    // hlen says 2 words, only 1 present.
    assert_eq!(d(&[0x02, 4, 0, 1, 0x80, 0, 0, 0]), Err(Truncated));
    // PRIV flag without option space.
    assert_eq!(d(&[0x00, 4, 0, 1]), Err(BadHeaderLength));
    // Options present but no flags announce them.
    assert_eq!(d(&[0x01, 4, 0, 0, 0, 0, 0, 0]), Err(BadHeaderLength));
    // REMCSUM announced, option missing.
    assert_eq!(d(&[0x01, 4, 0, 1, 0x80, 0, 0, 0]), Err(BadHeaderLength));
    // PRIV with no private flags: valid, 8 bytes.
    assert_eq!(
        d(&[0x01, 4, 0, 1, 0, 0, 0, 0]),
        Ok((
            GueHeader {
                proto: 4,
                remcsum: None
            },
            8
        ))
    );
    assert_eq!(
        d(&[0x01, 4, 0, 1, 0x40, 0, 0, 0]),
        Err(UnknownPrivateFlags(0x4000_0000))
    );
    // end < start (validate_gue_flags' check).
    assert_eq!(
        d(&[0x02, 4, 0, 1, 0x80, 0, 0, 0, 0, 20, 0, 19]),
        Err(BadRemoteChecksum)
    );
}

#[test]
fn udp_header_bytes() {
    let mut buf = [0u8; 8];
    UdpHeader {
        src_port: 0xc000,
        dst_port: 5501,
        len: 0x0123,
        check: 0xbeef,
    }
    .encode(&mut buf)
    .unwrap();
    assert_eq!(buf, [0xc0, 0x00, 0x15, 0x7d, 0x01, 0x23, 0xbe, 0xef]);
    assert!(UdpHeader {
        src_port: 0,
        dst_port: 0,
        len: 0,
        check: 0
    }
    .encode(&mut [0u8; 7])
    .is_err());
}

#[test]
fn ipv4_header_known_checksum() {
    // The classic example: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
    let h = Ipv4Header {
        dscp_ecn: 0,
        total_len: 0x73,
        id: 0,
        dont_fragment: true,
        ttl: 64,
        protocol: IPPROTO_UDP,
        saddr: [192, 168, 0, 1],
        daddr: [192, 168, 0, 199],
    };
    let mut buf = [0u8; Ipv4Header::LEN];
    h.encode(&mut buf).unwrap();
    assert_eq!(
        buf,
        [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 192, 168, 0, 1, 192, 168, 0,
            199
        ]
    );
    assert_eq!(internet_checksum(&buf), 0, "a valid header sums to zero");
}

#[test]
fn ipv6_header_bytes() {
    let h = Ipv6Header {
        traffic_class: 0xb8,
        flow_label: 0x12345,
        payload_len: 100,
        next_header: IPPROTO_UDP,
        hop_limit: 64,
        saddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        daddr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    };
    let mut buf = [0u8; Ipv6Header::LEN];
    h.encode(&mut buf).unwrap();
    assert_eq!(&buf[..8], &[0x6b, 0x81, 0x23, 0x45, 0, 100, 17, 64]);
    assert_eq!(&buf[8..24], &h.saddr);
    assert_eq!(&buf[24..40], &h.daddr);
    assert_eq!(ipv6_dsfield(&buf), Some(0xb8));
    let bad = Ipv6Header {
        flow_label: 0x10_0000,
        ..h
    };
    assert_eq!(
        bad.encode(&mut buf),
        Err(EncodeError::FieldOverflow("flow_label"))
    );
}

#[test]
fn udp_checksum_zero_is_sent_as_ffff() {
    assert_eq!(udp_checksum_from_sum(0xffff), 0xffff);
    assert_eq!(udp_checksum_from_sum(0), 0xffff); // !fold(0) = 0xffff
    assert_eq!(udp_checksum_from_sum(0xfffe), 0x0001);
}

#[test]
fn fold_handles_carries() {
    assert_eq!(fold(0), 0);
    assert_eq!(fold(0xffff), 0xffff);
    assert_eq!(fold(0x1_0000), 1);
    assert_eq!(fold(0xffff_ffff), 0xffff);
    assert_eq!(fold(0x0001_fffe), 0xffff);
}

#[test]
fn ecn_encapsulation_table() {
    // (outer, inner) -> result; outer DSCP is kept.
    assert_eq!(ecn_encapsulate(0xb8, 0b00), 0xb8);
    assert_eq!(ecn_encapsulate(0xb8, ECN_ECT_0), 0xba);
    assert_eq!(ecn_encapsulate(0xb8, 0b01), 0xb9);
    assert_eq!(ecn_encapsulate(0xb8, ECN_CE), 0xba, "CE is not copied out");
    assert_eq!(
        ecn_encapsulate(0xbb, 0x00),
        0xb8,
        "outer ECN bits are replaced"
    );
    assert_eq!(ecn_encapsulate(0, 0xff), ECN_ECT_0);
}

#[test]
fn dsfield_helpers() {
    assert_eq!(ipv4_dsfield(&[0x45, 0x2e]), Some(0x2e));
    assert_eq!(ipv4_dsfield(&[0x45]), None);
    assert_eq!(ipv6_dsfield(&[0x6a, 0xb0]), Some(0xab));
    assert_eq!(ipv6_dsfield(&[0x6a]), None);
    assert_eq!(ipv4_dsfield(&[0x45, 0x2e]), Some(0x2e));
    assert_eq!(ipv6_dsfield(&[0x6a, 0xb0, 0, 0]), Some(0xab));
    assert_eq!(ipv4_dsfield(&[0x45]), None);
    assert_eq!(ipv6_dsfield(&[]), None);
}

#[test]
fn src_port_matches_linux_formula() {
    // Hand-computed with the kernel expression for the default range.
    let (min, max) = (32768u16, 60999u16);
    for hash in [0u32, 1, 0x1234_5678, 0xdead_beef, u32::MAX] {
        let h = hash ^ (hash << 16);
        let expected = ((u64::from(h) * u64::from(max - min)) >> 32) as u16 + min;
        assert_eq!(udp_flow_src_port(hash, min, max), expected);
    }
    assert_eq!(udp_flow_src_port(0xffff_ffff, 1000, 1000), 1000);
    assert_eq!(
        udp_flow_src_port(0x8000_0000, 2000, 1000),
        udp_flow_src_port(0x8000_0000, 1000, 2000)
    );
}

#[test]
fn mtu_overheads() {
    assert_eq!(encap_overhead(Family::V4, false), 32);
    assert_eq!(encap_overhead(Family::V4, true), 40);
    assert_eq!(encap_overhead(Family::V6, false), 52);
    assert_eq!(encap_overhead(Family::V6, true), 60);
    assert_eq!(inner_mtu(1500, Family::V4, false), Some(1468));
    assert_eq!(inner_mtu(1500, Family::V6, true), Some(1440));
    assert_eq!(inner_mtu(40, Family::V6, false), None);
}

#[test]
fn tunnel_mtu_floor_is_the_outer_family_minimum() {
    // IPv6 inside IPv4 on a 1300-byte path: 1268 bytes left, under IPv6's 1280 but a usable
    // IPv4 tunnel (C: `mtu < 68` only); SYNs and small packets must pass.
    assert_eq!(tunnel_mtu(1300, Family::V4, false), Some(1268));
    assert_eq!(tunnel_mtu(100, Family::V4, false), Some(IPV4_MIN_MTU));
    assert_eq!(tunnel_mtu(99, Family::V4, false), None);
    // IPv6 outer: the tunnel itself must leave IPv6's minimum.
    assert_eq!(tunnel_mtu(1332, Family::V6, false), Some(IPV6_MIN_MTU));
    assert_eq!(tunnel_mtu(1331, Family::V6, false), None);
    assert_eq!(tunnel_mtu(1340, Family::V6, true), Some(IPV6_MIN_MTU));
    assert_eq!(tunnel_mtu(20, Family::V4, false), None);
}

#[test]
fn ipv6_inner_is_never_limited_below_1280() {
    assert_eq!(inner_limit(1268, Family::V6), IPV6_MIN_MTU);
    assert_eq!(inner_limit(1400, Family::V6), 1400);
    assert_eq!(inner_limit(1268, Family::V4), 1268);
    assert_eq!(inner_limit(68, Family::V4), 68);
}

proptest! {
    #[test]
    fn gue_round_trips(proto: u8, rc in proptest::option::of((any::<u16>(), any::<u16>()))) {
        let h = GueHeader { proto, remcsum: rc.map(|(start, offset)| RemoteChecksum { start, offset }) };
        let mut buf = [0u8; 12];
        match h.encode(&mut buf) {
            Ok(n) => prop_assert_eq!(fou_decode(&buf[..n]), Ok((h, n))),
            Err(e) => {
                let (s, o) = rc.unwrap();
                prop_assert!(u32::from(s) + u32::from(o) > 0xffff);
                prop_assert!(matches!(e, EncodeError::FieldOverflow(_)));
            }
        }
    }

    #[test]
    fn gue_decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok((h, n)) = fou_decode(&buf) {
            prop_assert!(n <= buf.len());
            prop_assert_eq!(h.len(), n);
        }
    }

    #[test]
    fn checksum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(internet_checksum(&data), reference_checksum(&data));
    }

    #[test]
    fn partial_sums_compose(a in proptest::collection::vec(any::<u8>(), 0..100),
                            b in proptest::collection::vec(any::<u8>(), 0..100)) {
        // Splitting at an even offset gives the same sum as one pass.
        let mut a = a;
        if a.len() % 2 == 1 { a.pop(); }
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        prop_assert_eq!(fold(ones_complement_sum(&b, ones_complement_sum(&a, 0))),
                        fold(ones_complement_sum(&whole, 0)));
    }

    #[test]
    fn ipv4_header_always_verifies(tos: u8, len: u16, id: u16, df: bool, ttl: u8, proto: u8,
                                   s: [u8; 4], d: [u8; 4]) {
        let mut buf = [0u8; 20];
        Ipv4Header { dscp_ecn: tos, total_len: len, id, dont_fragment: df, ttl, protocol: proto,
                     saddr: s, daddr: d }.encode(&mut buf).unwrap();
        prop_assert_eq!(internet_checksum(&buf), 0);
    }

    #[test]
    fn udp_v4_checksum_verifies(s: [u8; 4], d: [u8; 4], sport: u16, dport: u16,
                                payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let len = (8 + payload.len()) as u16;
        let mut seg = vec![0u8; 8];
        UdpHeader { src_port: sport, dst_port: dport, len, check: 0x1234 }.encode(&mut seg).unwrap();
        seg.extend_from_slice(&payload);
        let c = udp_checksum_v4(s, d, &seg);
        prop_assert_ne!(c, 0);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        // Receiver check: pseudo header + segment sums to 0xffff.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&s);
        pseudo.extend_from_slice(&d);
        pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
        pseudo.extend_from_slice(&len.to_be_bytes());
        pseudo.extend_from_slice(&seg);
        prop_assert_eq!(reference_checksum(&pseudo), 0);
        prop_assert_eq!(pseudo_header_sum_v4(s, d, IPPROTO_UDP, len) as u64 % 0xffff,
                        (ones_complement_sum(&pseudo[..12], 0) as u64) % 0xffff);
    }

    #[test]
    fn udp_v6_checksum_verifies(s: [u8; 16], d: [u8; 16],
                                payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let len = 8 + payload.len() as u32;
        let mut seg = vec![0u8; 8];
        UdpHeader { src_port: 1, dst_port: 2, len: len as u16, check: 0 }.encode(&mut seg).unwrap();
        seg.extend_from_slice(&payload);
        let c = udp_checksum_v6(&s, &d, &seg);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&s);
        pseudo.extend_from_slice(&d);
        pseudo.extend_from_slice(&len.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_UDP]);
        pseudo.extend_from_slice(&seg);
        prop_assert_eq!(reference_checksum(&pseudo), 0);
    }

    #[test]
    fn src_port_in_range(hash: u32, a: u16, b: u16) {
        let (lo, hi) = (a.min(b), a.max(b));
        let p = udp_flow_src_port(hash, a, b);
        prop_assert!(p >= lo && (p < hi || lo == hi));
    }

    #[test]
    fn ecn_keeps_dscp(outer: u8, inner: u8) {
        let r = ecn_encapsulate(outer, inner);
        prop_assert_eq!(r & !ECN_MASK, outer & !ECN_MASK);
        prop_assert_eq!(r & ECN_MASK, if inner & 3 == 3 { 2 } else { inner & 3 });
    }

    #[test]
    fn inner_mtu_consistent(mtu: u32, v6: bool, rc: bool) {
        let fam = if v6 { Family::V6 } else { Family::V4 };
        match inner_mtu(mtu, fam, rc) {
            Some(m) => prop_assert_eq!(m + encap_overhead(fam, rc), mtu),
            None => prop_assert!(mtu < encap_overhead(fam, rc)),
        }
    }
}

proptest! {
    /// The outer UDP pseudo-header sum the module ships equals the RFC 768 / RFC 8200 sum for
    /// every length that fits 16 bits, and carries the 32-bit length beyond (GSO packets).
    #[test]
    fn shipped_pseudo_header_sum_matches_the_rfc(s in any::<[u8; 4]>(), d in any::<[u8; 4]>(),
                                                 s6 in any::<[u8; 16]>(), d6 in any::<[u8; 16]>(),
                                                 len in 8u32..=0xffff, big in 0x1_0000u32..0x4_0000) {
        use gue_core::addr::InetAddr;
        let (v4s, v4d) = (InetAddr::v4(s), InetAddr::v4(d));
        let ours = pseudo_header_sum(&v4s, &v4d, len).unwrap();
        prop_assert_eq!(fold(ours), fold(pseudo_header_sum_v4(s, d, IPPROTO_UDP, len as u16)));
        let big_sum = pseudo_header_sum(&v4s, &v4d, big).unwrap();
        prop_assert_eq!(fold(big_sum), fold(ones_complement_sum(&big.to_be_bytes(), pseudo_header_sum_v4(s, d, IPPROTO_UDP, 0))));
        let (v6s, v6d) = (InetAddr::v6(s6), InetAddr::v6(d6));
        prop_assert_eq!(pseudo_header_sum(&v6s, &v6d, big), Some(pseudo_header_sum_v6(&s6, &d6, IPPROTO_UDP, big)));
        prop_assert_eq!(pseudo_header_sum(&v4s, &v6d, len), None);
    }
}
