// SPDX-License-Identifier: GPL-2.0
//! The outer IPv4, IPv6 and UDP header encoders with arbitrary field values
//! and buffer sizes: the written bytes hold exactly the fields (IPv4 with a
//! valid header checksum), nothing past the header is touched, and a failed
//! encode (short buffer, flow label over 20 bits) writes nothing.
#![no_main]

use gue_core::error::EncodeError;
use gue_core::headers::{Ipv4Header, Ipv6Header, UdpHeader};
use gue_core_fuzz::oracle::verifies;
use gue_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fn buffer(r: &mut Bytes<'_>) -> (Vec<u8>, u8) {
    let len = usize::from(r.u8()) % 64;
    let fill = r.u8();
    (vec![fill; len], fill)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn check_failed(out: &[u8], fill: u8, e: &EncodeError, needed: usize) {
    assert!(out.iter().all(|&b| b == fill), "failed encode wrote: {e:?}");
    if let EncodeError::BufferTooShort {
        needed: n,
        available,
    } = *e
    {
        assert_eq!((n, available), (needed, out.len()));
        assert!(available < needed);
    }
    assert!(!e.to_string().is_empty());
}

fn ipv4(r: &mut Bytes<'_>) {
    let h = Ipv4Header {
        dscp_ecn: r.u8(),
        total_len: r.u16(),
        id: r.u16(),
        dont_fragment: r.u8() & 1 != 0,
        ttl: r.u8(),
        protocol: r.u8(),
        saddr: r.array(),
        daddr: r.array(),
    };
    let (mut out, fill) = buffer(r);
    match h.encode(&mut out) {
        Ok(()) => {
            let o = &out[..Ipv4Header::LEN];
            assert_eq!(o[0], 0x45);
            assert_eq!(o[1], h.dscp_ecn);
            assert_eq!(be16(&o[2..]), h.total_len);
            assert_eq!(be16(&o[4..]), h.id);
            assert_eq!(be16(&o[6..]), if h.dont_fragment { 0x4000 } else { 0 });
            assert_eq!((o[8], o[9]), (h.ttl, h.protocol));
            assert_eq!((&o[12..16], &o[16..20]), (&h.saddr[..], &h.daddr[..]));
            assert!(verifies(o, 0), "IPv4 header checksum does not verify");
            assert!(out[Ipv4Header::LEN..].iter().all(|&b| b == fill));
        }
        Err(e) => {
            assert!(out.len() < Ipv4Header::LEN);
            check_failed(&out, fill, &e, Ipv4Header::LEN);
        }
    }
}

fn ipv6(r: &mut Bytes<'_>) {
    let h = Ipv6Header {
        traffic_class: r.u8(),
        // Mostly valid 20-bit labels, sometimes wider ones.
        flow_label: {
            let v = r.u32();
            if v & 0x8000_0000 != 0 {
                v
            } else {
                v & 0x000f_ffff
            }
        },
        payload_len: r.u16(),
        next_header: r.u8(),
        hop_limit: r.u8(),
        saddr: r.array(),
        daddr: r.array(),
    };
    let (mut out, fill) = buffer(r);
    match h.encode(&mut out) {
        Ok(()) => {
            assert!(h.flow_label <= 0x000f_ffff);
            let o = &out[..Ipv6Header::LEN];
            let word = u32::from_be_bytes([o[0], o[1], o[2], o[3]]);
            assert_eq!(word >> 28, 6);
            assert_eq!((word >> 20) as u8, h.traffic_class);
            assert_eq!(word & 0x000f_ffff, h.flow_label);
            assert_eq!(be16(&o[4..]), h.payload_len);
            assert_eq!((o[6], o[7]), (h.next_header, h.hop_limit));
            assert_eq!((&o[8..24], &o[24..40]), (&h.saddr[..], &h.daddr[..]));
            assert!(out[Ipv6Header::LEN..].iter().all(|&b| b == fill));
        }
        Err(e) => {
            let overflow = h.flow_label > 0x000f_ffff;
            assert!(overflow || out.len() < Ipv6Header::LEN);
            assert_eq!(matches!(e, EncodeError::FieldOverflow(_)), overflow);
            check_failed(&out, fill, &e, Ipv6Header::LEN);
        }
    }
}

fn udp(r: &mut Bytes<'_>) {
    let h = UdpHeader {
        src_port: r.u16(),
        dst_port: r.u16(),
        len: r.u16(),
        check: r.u16(),
    };
    let (mut out, fill) = buffer(r);
    match h.encode(&mut out) {
        Ok(()) => {
            let o = &out[..UdpHeader::LEN];
            assert_eq!(
                (be16(&o[0..]), be16(&o[2..]), be16(&o[4..]), be16(&o[6..])),
                (h.src_port, h.dst_port, h.len, h.check)
            );
            assert!(out[UdpHeader::LEN..].iter().all(|&b| b == fill));
        }
        Err(e) => {
            assert!(out.len() < UdpHeader::LEN);
            check_failed(&out, fill, &e, UdpHeader::LEN);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes::new(data);
    // The first byte orders the three encoders so each sees fresh field bytes.
    match r.u8() % 3 {
        0 => {
            ipv4(&mut r);
            ipv6(&mut r);
            udp(&mut r);
        }
        1 => {
            ipv6(&mut r);
            udp(&mut r);
            ipv4(&mut r);
        }
        _ => {
            udp(&mut r);
            ipv4(&mut r);
            ipv6(&mut r);
        }
    }
});
