//! Packets `send` and `icmp-error` put on the wire: IP payloads only (the
//! kernel writes the outer IP header of a raw socket's packets).

use std::net::{IpAddr, SocketAddr};

pub use gue_core::flow::{IPPROTO_AH, IPPROTO_ESP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
pub use gue_core::headers::IPPROTO_UDP;
/// IPv6 "no next header", the AH next header we claim.
const IPPROTO_NONE: u8 = 59;

pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMPV6_PKT_TOOBIG: u8 = 2;

/// RFC 1071 Internet checksum of `data` (odd length padded with a zero byte).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Payload for a datagram or packet of `size` bytes: the 1-based sequence
/// number (big-endian u32, as far as it fits) then a fixed filler.
pub fn datagram_payload(seq: u32, size: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let n = size.min(4);
    p[..n].copy_from_slice(&seq.to_be_bytes()[..n]);
    p
}

/// An ESP packet body (RFC 4303): SPI, sequence number, then opaque bytes up
/// to `size` (at least 8). Nothing on the path decrypts it.
pub fn esp_packet(spi: u32, seq: u32, size: usize) -> Vec<u8> {
    let size = size.max(8);
    let mut p = vec![0u8; size];
    p[0..4].copy_from_slice(&spi.to_be_bytes());
    p[4..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// An AH header (RFC 4302) with a zero ICV, `size` rounded up to a multiple
/// of 4 and at least 12 + 4: next header "none", SPI, sequence number.
pub fn ah_packet(spi: u32, seq: u32, size: usize) -> Vec<u8> {
    let size = size.max(16).div_ceil(4) * 4;
    let mut p = vec![0u8; size];
    p[0] = IPPROTO_NONE;
    // Payload Len: AH length in 32-bit words minus 2.
    p[1] = u8::try_from(size / 4 - 2).unwrap_or(u8::MAX);
    p[4..8].copy_from_slice(&spi.to_be_bytes());
    p[8..12].copy_from_slice(&seq.to_be_bytes());
    p
}

/// The packet an ICMP error quotes: the header of a too-big packet from
/// `src` to `dst` plus the first bytes of its transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `IPPROTO_UDP` or `IPPROTO_TCP`.
    pub protocol: u8,
    /// Total length of the quoted packet as its IP header states it.
    pub len: u16,
}

/// The first bytes of the quoted transport header: UDP's 8, TCP's 20.
fn quoted_transport(q: &Quoted, ip_header_len: u16) -> Vec<u8> {
    let (sport, dport) = (q.src.port().to_be_bytes(), q.dst.port().to_be_bytes());
    match q.protocol {
        IPPROTO_TCP => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&sport);
            t[2..4].copy_from_slice(&dport);
            t[4..8].copy_from_slice(&1u32.to_be_bytes()); // seq
            t[8..12].copy_from_slice(&1u32.to_be_bytes()); // ack
            t[12] = 5 << 4; // data offset
            t[13] = 0x10; // ACK
            t[14..16].copy_from_slice(&0xffffu16.to_be_bytes()); // window
            t
        }
        _ => {
            let mut t = vec![0u8; 8];
            t[0..2].copy_from_slice(&sport);
            t[2..4].copy_from_slice(&dport);
            t[4..6].copy_from_slice(&q.len.saturating_sub(ip_header_len).to_be_bytes());
            t
        }
    }
}

/// ICMP "destination unreachable / fragmentation needed" (type 3 code 4)
/// with next-hop `mtu`, quoting the IPv4 packet `q`; checksums complete.
pub fn icmp_frag_needed(q: &Quoted, mtu: u16) -> Option<Vec<u8>> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (q.src.ip(), q.dst.ip()) else {
        return None;
    };
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&q.len.to_be_bytes());
    ip[4..6].copy_from_slice(&0x4755u16.to_be_bytes()); // identification
    ip[6] = 0x40; // DF: the reason it could not be forwarded
    ip[8] = 64;
    ip[9] = q.protocol;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());

    let mut m = vec![ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0];
    m.extend_from_slice(&mtu.to_be_bytes());
    m.extend_from_slice(&ip);
    m.extend_from_slice(&quoted_transport(q, 20));
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    Some(m)
}

/// ICMPv6 "packet too big" (type 2) with `mtu`, quoting the IPv6 packet `q`.
/// The checksum is left 0: a raw ICMPv6 socket always fills it in (it
/// covers a pseudo-header with the source address the kernel picks).
pub fn icmpv6_packet_too_big(q: &Quoted, mtu: u32) -> Option<Vec<u8>> {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (q.src.ip(), q.dst.ip()) else {
        return None;
    };
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&q.len.saturating_sub(40).to_be_bytes());
    ip[6] = q.protocol;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());

    let mut m = vec![ICMPV6_PKT_TOOBIG, 0, 0, 0];
    m.extend_from_slice(&mtu.to_be_bytes());
    m.extend_from_slice(&ip);
    m.extend_from_slice(&quoted_transport(q, 40));
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn checksum_rfc1071() {
        // RFC 1071 section 3 example: sum 0xddf2, checksum its complement.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(internet_checksum(&[]), 0xffff);
        assert_eq!(internet_checksum(&[0xff]), !0xff00);
        // A classic IPv4 header (checksum field zero) -> 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&h), 0xb861);
    }

    #[test]
    fn frag_needed_is_valid() {
        let q = Quoted {
            src: sa("10.10.10.10:7000"),
            dst: sa("10.1.0.1:40000"),
            protocol: IPPROTO_UDP,
            len: 1500,
        };
        let m = icmp_frag_needed(&q, 1400).unwrap();
        assert_eq!(m.len(), 8 + 20 + 8);
        assert_eq!((m[0], m[1]), (3, 4));
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), 1400);
        // Whole message and quoted IP header each sum to zero with their checksums.
        assert_eq!(internet_checksum(&m), 0);
        let ip = &m[8..28];
        assert_eq!(internet_checksum(ip), 0);
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 1500);
        assert_eq!(ip[6] & 0x40, 0x40);
        assert_eq!(ip[9], IPPROTO_UDP);
        assert_eq!(ip[12..16], [10, 10, 10, 10]);
        assert_eq!(ip[16..20], [10, 1, 0, 1]);
        let udp = &m[28..36];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 7000);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 40000);
        assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 1480);
        let q6 = Quoted {
            src: sa("[fd10::10]:1"),
            ..q
        };
        assert!(icmp_frag_needed(&q6, 1400).is_none());
    }

    #[test]
    fn frag_needed_tcp() {
        let q = Quoted {
            src: sa("10.10.10.10:8080"),
            dst: sa("10.1.0.1:40001"),
            protocol: IPPROTO_TCP,
            len: 1600,
        };
        let m = icmp_frag_needed(&q, 1468).unwrap();
        assert_eq!(m.len(), 8 + 20 + 20);
        assert_eq!(internet_checksum(&m), 0);
        assert_eq!(m[8 + 9], IPPROTO_TCP);
        assert_eq!(u16::from_be_bytes([m[28], m[29]]), 8080);
        assert_eq!(u16::from_be_bytes([m[30], m[31]]), 40001);
    }

    #[test]
    fn packet_too_big_layout() {
        let q = Quoted {
            src: sa("[fd10::10]:7000"),
            dst: sa("[fd01::1]:40000"),
            protocol: IPPROTO_UDP,
            len: 1600,
        };
        let m = icmpv6_packet_too_big(&q, 1400).unwrap();
        assert_eq!(m.len(), 8 + 40 + 8);
        assert_eq!((m[0], m[1], m[2], m[3]), (2, 0, 0, 0));
        assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1400);
        let ip = &m[8..48];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 1560);
        assert_eq!(ip[6], IPPROTO_UDP);
        assert_eq!(ip[8..10], [0xfd, 0x10]);
        assert_eq!(ip[24..26], [0xfd, 0x01]);
        assert_eq!(u16::from_be_bytes([m[48], m[49]]), 7000);
        assert_eq!(u16::from_be_bytes([m[50], m[51]]), 40000);
        assert_eq!(u16::from_be_bytes([m[52], m[53]]), 1560);
        let q4 = Quoted {
            src: sa("10.10.10.10:1"),
            ..q
        };
        assert!(icmpv6_packet_too_big(&q4, 1400).is_none());
    }

    #[test]
    fn ipsec_bodies() {
        let e = esp_packet(0x1000, 7, 64);
        assert_eq!(e.len(), 64);
        assert_eq!(e[0..8], [0, 0, 0x10, 0, 0, 0, 0, 7]);
        assert_eq!(esp_packet(1, 1, 2).len(), 8);
        let a = ah_packet(0x1000, 3, 24);
        assert_eq!(a.len(), 24);
        assert_eq!((a[0], a[1]), (IPPROTO_NONE, 4));
        assert_eq!(a[4..12], [0, 0, 0x10, 0, 0, 0, 0, 3]);
        assert_eq!(ah_packet(1, 1, 17).len(), 20);
    }

    #[test]
    fn payloads() {
        let p = datagram_payload(0x01020304, 10);
        assert_eq!(p[..4], [1, 2, 3, 4]);
        assert_eq!(p.len(), 10);
        assert_eq!(datagram_payload(5, 2), vec![0, 0]);
        assert!(datagram_payload(1, 0).is_empty());
    }
}
