//! Pure decoder for captured Ethernet frames carrying GUE (Generic UDP
//! Encapsulation, Linux include/net/gue.h) over UDP over IPv4/IPv6.
//!
//! `decode()` never panics on short or malformed input: every access is
//! bounds-checked and reported as a `DecodeError`.
//!
//! This decoder is an independent instrument on purpose: it shares no code with
//! the encoder it checks (the module's header code in `src/gue_core/`), so a
//! misreading of the GUE format in one cannot hide the same mistake in the
//! other. Keep it that way: do not replace it with `gue_core` or a GUE crate.

use serde::Serialize;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

/// GUE flags (bytes 2-3, big endian) and private flags (gue.h).
pub const GUE_FLAG_PRIV: u16 = 0x0001;
pub const GUE_PFLAG_REMCSUM: u32 = 0x8000_0000;

/// Per-frame metadata delivered by the kernel next to the bytes
/// (from the virtio_net_hdr that PACKET_VNET_HDR prepends).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// CHECKSUM_PARTIAL: a checksum is still to be completed by the device;
    /// (csum_start from the frame start, csum_offset from csum_start).
    pub pending_csum: Option<(u16, u16)>,
    /// GSO super-packet: (virtio gso_type, gso_size).
    pub gso: Option<(u8, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub msg: String,
    /// The frame was UDP to the wanted port before decoding failed.
    pub port_matched: bool,
}

fn fail<T>(port_matched: bool, msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError {
        msg: msg.into(),
        port_matched,
    })
}

/// The outer IP header; serialized (in capture's JSON lines) as its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OuterIp {
    V4 {
        tos: u8,
        df: bool,
        mf: bool,
        frag_offset: u16,
        ttl: u8,
        protocol: u8,
        id: u16,
        ihl: u8,
        total_length: u16,
        hdr_csum: u16,
        hdr_csum_valid: bool,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    },
    V6 {
        traffic_class: u8,
        flow_label: u32,
        hop_limit: u8,
        next_header: u8,
        payload_length: u16,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumState {
    Zero,
    Valid,
    Bad,
    /// Non-zero checksum of a GSO super-packet: set per segment later, not checkable here.
    Gso,
}

impl CsumState {
    pub fn name(self) -> &'static str {
        match self {
            CsumState::Zero => "zero",
            CsumState::Valid => "valid",
            CsumState::Bad => "bad",
            CsumState::Gso => "gso",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    pub length: u16,
    pub length_ok: bool,
    pub csum: u16,
    pub csum_state: CsumState,
    /// Offset (from frame start) of a device-pending checksum that was
    /// completed in a copy before verifying, as the NIC would have done.
    pub completed_pending_at: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remcsum {
    /// First option u16: csum_start (relative to the start of the inner packet).
    pub start: u16,
    /// Second option u16: csum_start + csum_offset.
    pub end: u16,
}

impl Remcsum {
    pub fn offset(&self) -> i32 {
        i32::from(self.end) - i32::from(self.start)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gue {
    pub version: u8,
    pub control: bool,
    pub hlen: u8,
    pub proto_ctype: u8,
    pub flags: u16,
    pub priv_flags: Option<u32>,
    pub remcsum: Option<Remcsum>,
    /// Length of GUE header including options (0 for version 1 / direct IP).
    pub header_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inner {
    pub version: u8,
    pub protocol: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub total_length: u32,
    pub ttl: u8,
    /// Inner TCP/UDP ports (None if not TCP/UDP, fragmented or truncated).
    pub ports: Option<(u16, u16)>,
    /// The inner IP length equals the bytes after the GUE header.
    pub length_ok: bool,
    /// IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN).
    pub dsfield: u8,
    /// IPv4: the option bytes (IHL > 5). IPv6: the extension headers between the fixed header
    /// and the upper layer (hop-by-hop, routing, destination options, fragment), as sent.
    pub options: Vec<u8>,
    /// IPv6: the extension header types in order (empty for IPv4).
    pub ext_headers: Vec<u8>,
    /// The upper-layer protocol after any IPv6 extension headers (IPv4: `protocol`).
    pub upper_protocol: u8,
}

/// IPv6 extension headers walked to find the upper layer (the ones with the generic
/// next-header/length layout, and the fixed-size fragment header).
const IPV6_EXT_HOP: u8 = 0;
const IPV6_EXT_ROUTING: u8 = 43;
const IPV6_EXT_FRAGMENT: u8 = 44;
const IPV6_EXT_DSTOPTS: u8 = 60;

/// Walks the extension headers after a fixed IPv6 header: (types, bytes they span, upper
/// protocol, the upper layer is at offset 0 of a first fragment or unfragmented packet).
/// None if a header is truncated.
fn ipv6_ext_chain(after: &[u8], first: u8) -> Option<(Vec<u8>, usize, u8, bool)> {
    let (mut nh, mut off, mut types, mut first_frag) = (first, 0usize, Vec::new(), true);
    while matches!(
        nh,
        IPV6_EXT_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DSTOPTS | IPV6_EXT_FRAGMENT
    ) && types.len() < 16
    {
        let h = after.get(off..off + 8)?;
        types.push(nh);
        let len = if nh == IPV6_EXT_FRAGMENT {
            first_frag = u16::from_be_bytes([h[2], h[3]]) & 0xfff8 == 0;
            8
        } else {
            (usize::from(h[1]) + 1) * 8
        };
        after.get(off..off + len)?;
        nh = h[0];
        off += len;
    }
    Some((types, off, nh, first_frag))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerKind {
    Ip(Inner),
    /// GUE control message (C bit set).
    Control,
    /// proto_ctype not IPv4/IPv6.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub frame_len: usize,
    pub meta: Meta,
    pub ip: OuterIp,
    pub udp: Udp,
    pub gue: Gue,
    pub inner: InnerKind,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Ones' complement sum (unfolded, 32-bit carry space in u64).
pub fn csum_add(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

pub fn csum_fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Internet checksum to put in a header whose checksum field is zero.
#[cfg(test)]
pub fn inet_csum(data: &[u8]) -> u16 {
    !csum_fold(csum_add(data, 0))
}

fn pseudo_sum(ip: &OuterIp, l4_len: u32) -> u64 {
    match ip {
        OuterIp::V4 { src, dst, .. } => {
            let acc = csum_add(&src.octets(), 0);
            let acc = csum_add(&dst.octets(), acc);
            acc + u64::from(IPPROTO_UDP) + u64::from(l4_len)
        }
        OuterIp::V6 { src, dst, .. } => {
            let acc = csum_add(&src.octets(), 0);
            let acc = csum_add(&dst.octets(), acc);
            acc + u64::from(l4_len >> 16) + u64::from(l4_len & 0xffff) + u64::from(IPPROTO_UDP)
        }
    }
}

/// Decodes one frame. Ok(None): not UDP to `port` (or not IPv4/IPv6 at all).
pub fn decode(frame: &[u8], port: u16, meta: Meta) -> Result<Option<Packet>, DecodeError> {
    // Ethernet (+ up to two VLAN tags).
    let Some(mut ethertype) = be16(frame, 12) else {
        return fail(
            false,
            format!("truncated Ethernet header ({} bytes)", frame.len()),
        );
    };
    let mut l3 = 14;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(t) = be16(frame, l3 + 2) else {
            return fail(false, "truncated VLAN tag");
        };
        ethertype = t;
        l3 += 4;
    }

    let (ip, l4, ip_end) = match ethertype {
        ETH_P_IP => {
            let h = &frame[l3..];
            if h.len() < 20 {
                return fail(false, format!("truncated IPv4 header ({} bytes)", h.len()));
            }
            if h[0] >> 4 != 4 {
                return fail(
                    false,
                    format!("IPv4 ethertype but IP version {}", h[0] >> 4),
                );
            }
            let ihl = h[0] & 0x0f;
            let hl = usize::from(ihl) * 4;
            if ihl < 5 || h.len() < hl {
                return fail(
                    false,
                    format!(
                        "bad or truncated IPv4 header (ihl={ihl}, {} bytes)",
                        h.len()
                    ),
                );
            }
            let total = be16(h, 2).unwrap_or(0);
            if usize::from(total) < hl {
                return fail(
                    false,
                    format!("IPv4 total length {total} < header length {hl}"),
                );
            }
            if usize::from(total) > h.len() {
                return fail(
                    false,
                    format!(
                        "truncated IPv4 packet: total length {total}, captured {}",
                        h.len()
                    ),
                );
            }
            let frag = be16(h, 6).unwrap_or(0);
            let protocol = h[9];
            let frag_offset = frag & 0x1fff;
            if protocol != IPPROTO_UDP || frag_offset != 0 {
                return Ok(None);
            }
            let ip = OuterIp::V4 {
                tos: h[1],
                df: frag & 0x4000 != 0,
                mf: frag & 0x2000 != 0,
                frag_offset,
                ttl: h[8],
                protocol,
                id: be16(h, 4).unwrap_or(0),
                ihl,
                total_length: total,
                hdr_csum: be16(h, 10).unwrap_or(0),
                hdr_csum_valid: csum_fold(csum_add(&h[..hl], 0)) == 0xffff,
                src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
                dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            };
            (ip, l3 + hl, l3 + usize::from(total))
        }
        ETH_P_IPV6 => {
            let h = &frame[l3..];
            if h.len() < 40 {
                return fail(false, format!("truncated IPv6 header ({} bytes)", h.len()));
            }
            if h[0] >> 4 != 6 {
                return fail(
                    false,
                    format!("IPv6 ethertype but IP version {}", h[0] >> 4),
                );
            }
            let w0 = be32(h, 0).unwrap_or(0);
            let plen = be16(h, 4).unwrap_or(0);
            if 40 + usize::from(plen) > h.len() {
                return fail(
                    false,
                    format!(
                        "truncated IPv6 packet: payload length {plen}, captured {}",
                        h.len() - 40
                    ),
                );
            }
            let next_header = h[6];
            if next_header != IPPROTO_UDP {
                // Extension headers are not expected on the (plain) outer header.
                return Ok(None);
            }
            let octets = |at: usize| -> Ipv6Addr {
                let mut a = [0u8; 16];
                a.copy_from_slice(&h[at..at + 16]);
                Ipv6Addr::from(a)
            };
            let ip = OuterIp::V6 {
                traffic_class: ((w0 >> 20) & 0xff) as u8,
                flow_label: w0 & 0xf_ffff,
                hop_limit: h[7],
                next_header,
                payload_length: plen,
                src: octets(8),
                dst: octets(24),
            };
            (ip, l3 + 40, l3 + 40 + usize::from(plen))
        }
        _ => return Ok(None),
    };

    // UDP.
    let ip_payload_len = ip_end - l4;
    if ip_payload_len < 8 {
        return fail(
            false,
            format!("truncated UDP header ({ip_payload_len} bytes of IP payload)"),
        );
    }
    let u = &frame[l4..ip_end];
    let (sport, dport, ulen, ucsum) = (
        be16(u, 0).unwrap_or(0),
        be16(u, 2).unwrap_or(0),
        be16(u, 4).unwrap_or(0),
        be16(u, 6).unwrap_or(0),
    );
    if dport != port {
        return Ok(None);
    }
    let length_ok = usize::from(ulen) == ip_payload_len;
    let ulen_usable = usize::from(ulen) >= 8 && usize::from(ulen) <= ip_payload_len;

    let mut completed_pending_at = None;
    let csum_state = if ucsum == 0 {
        CsumState::Zero
    } else if meta.gso.is_some() {
        CsumState::Gso
    } else if !ulen_usable {
        CsumState::Bad
    } else {
        // Complete a checksum the device would still fill in (CHECKSUM_PARTIAL)
        // in a copy, then verify the outer UDP checksum over the result.
        let completed = meta.pending_csum.and_then(|(start, off)| {
            complete_pending(&frame[..ip_end], usize::from(start), usize::from(off))
        });
        let bytes: &[u8] = match &completed {
            Some((buf, at)) => {
                completed_pending_at = Some(*at);
                buf
            }
            None => &frame[..ip_end],
        };
        verdict(csum_add(
            &bytes[l4..l4 + usize::from(ulen)],
            pseudo_sum(&ip, u32::from(ulen)),
        ))
    };
    let udp = Udp {
        sport,
        dport,
        length: ulen,
        length_ok,
        csum: ucsum,
        csum_state,
        completed_pending_at,
    };
    decode_gue(frame, meta, ip, udp, l4, ip_end)
}

/// Does what skb_checksum_help() / a NETIF_F_HW_CSUM device does for a
/// CHECKSUM_PARTIAL packet: sum from csum_start to the end of the packet,
/// fold, complement (0 -> 0xffff) and store at csum_start + csum_offset.
fn complete_pending(pkt: &[u8], start: usize, off: usize) -> Option<(Vec<u8>, usize)> {
    let at = start + off;
    if start >= pkt.len() || at + 2 > pkt.len() {
        return None;
    }
    let mut copy = pkt.to_vec();
    let mut c = !csum_fold(csum_add(&copy[start..], 0));
    if c == 0 {
        c = 0xffff;
    }
    copy[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Some((copy, at))
}

fn verdict(acc: u64) -> CsumState {
    if csum_fold(acc) == 0xffff {
        CsumState::Valid
    } else {
        CsumState::Bad
    }
}

fn decode_gue(
    frame: &[u8],
    meta: Meta,
    ip: OuterIp,
    udp: Udp,
    l4: usize,
    ip_end: usize,
) -> Result<Option<Packet>, DecodeError> {
    let ulen = udp.length;
    // GUE payload: bounded by the UDP length when sane, else by the IP payload.
    let payload_end = if usize::from(ulen) >= 8 && l4 + usize::from(ulen) <= ip_end {
        l4 + usize::from(ulen)
    } else {
        ip_end
    };
    let g = &frame[l4 + 8..payload_end];
    let Some(&b0) = g.first() else {
        return fail(true, "empty UDP payload: no GUE header");
    };
    let version = b0 >> 6;
    let (gue, inner_bytes) = match version {
        0 => {
            if g.len() < 4 {
                return fail(true, format!("truncated GUE header ({} bytes)", g.len()));
            }
            let hlen = b0 & 0x1f;
            let hdr_len = 4 + usize::from(hlen) * 4;
            if g.len() < hdr_len {
                return fail(
                    true,
                    format!(
                        "truncated GUE options: hlen={hlen} needs {hdr_len} bytes, have {}",
                        g.len()
                    ),
                );
            }
            let flags = be16(g, 2).unwrap_or(0);
            let mut opt = 4;
            let mut priv_flags = None;
            let mut remcsum = None;
            if flags & GUE_FLAG_PRIV != 0 {
                let Some(p) = be32(g, opt).filter(|_| opt + 4 <= hdr_len) else {
                    return fail(true, format!("GUE PRIV flag set but hlen={hlen} leaves no room for the private flags"));
                };
                priv_flags = Some(p);
                opt += 4;
                if p & GUE_PFLAG_REMCSUM != 0 {
                    if opt + 4 > hdr_len {
                        return fail(
                            true,
                            format!(
                                "GUE REMCSUM set but hlen={hlen} leaves no room for its option"
                            ),
                        );
                    }
                    remcsum = Some(Remcsum {
                        start: be16(g, opt).unwrap_or(0),
                        end: be16(g, opt + 2).unwrap_or(0),
                    });
                }
            }
            let gue = Gue {
                version,
                control: b0 & 0x20 != 0,
                hlen,
                proto_ctype: g[1],
                flags,
                priv_flags,
                remcsum,
                header_len: hdr_len,
            };
            (gue, &g[hdr_len..])
        }
        1 => {
            // GUE version 1: direct IP encapsulation, the first nibble is the IP version.
            let proto = match b0 >> 4 {
                4 => IPPROTO_IPIP,
                _ => IPPROTO_IPV6,
            };
            let gue = Gue {
                version,
                control: false,
                hlen: 0,
                proto_ctype: proto,
                flags: 0,
                priv_flags: None,
                remcsum: None,
                header_len: 0,
            };
            (gue, g)
        }
        v => return fail(true, format!("unsupported GUE version {v}")),
    };

    let inner = if gue.control {
        InnerKind::Control
    } else {
        match gue.proto_ctype {
            IPPROTO_IPIP | IPPROTO_IPV6 => {
                InnerKind::Ip(decode_inner(inner_bytes, gue.proto_ctype)?)
            }
            _ => InnerKind::Unknown,
        }
    };
    Ok(Some(Packet {
        frame_len: frame.len(),
        meta,
        ip,
        udp,
        gue,
        inner,
    }))
}

fn decode_inner(b: &[u8], proto: u8) -> Result<Inner, DecodeError> {
    let Some(&b0) = b.first() else {
        return fail(true, "GUE payload empty: no inner packet");
    };
    let want = if proto == IPPROTO_IPIP { 4 } else { 6 };
    if b0 >> 4 != want {
        return fail(
            true,
            format!("GUE proto {proto} but inner IP version {}", b0 >> 4),
        );
    }
    let ports = |l4: &[u8], protocol: u8| -> Option<(u16, u16)> {
        if protocol == IPPROTO_TCP || protocol == IPPROTO_UDP {
            Some((be16(l4, 0)?, be16(l4, 2)?))
        } else {
            None
        }
    };
    if want == 4 {
        if b.len() < 20 {
            return fail(
                true,
                format!("truncated inner IPv4 header ({} bytes)", b.len()),
            );
        }
        let hl = usize::from(b0 & 0x0f) * 4;
        if hl < 20 || b.len() < hl {
            return fail(
                true,
                format!("bad or truncated inner IPv4 header (ihl={})", b0 & 0x0f),
            );
        }
        let total = be16(b, 2).unwrap_or(0);
        let frag = be16(b, 6).unwrap_or(0);
        let protocol = b[9];
        let ports = if frag & 0x1fff == 0 {
            ports(&b[hl..], protocol)
        } else {
            None
        };
        if ports.is_none()
            && (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP)
            && frag & 0x1fff == 0
        {
            return fail(true, "truncated inner L4 header");
        }
        if usize::from(total) > b.len() {
            return fail(
                true,
                format!(
                    "truncated inner IPv4 packet: total length {total}, have {}",
                    b.len()
                ),
            );
        }
        Ok(Inner {
            length_ok: usize::from(total) == b.len(),
            version: 4,
            protocol,
            src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
            dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
            total_length: u32::from(total),
            ttl: b[8],
            ports,
            dsfield: b[1],
            options: b[20..hl].to_vec(),
            ext_headers: Vec::new(),
            upper_protocol: protocol,
        })
    } else {
        if b.len() < 40 {
            return fail(
                true,
                format!("truncated inner IPv6 header ({} bytes)", b.len()),
            );
        }
        let addr = |at: usize| -> IpAddr {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        };
        let protocol = b[6];
        let Some((ext_headers, ext_len, upper, first_frag)) = ipv6_ext_chain(&b[40..], protocol)
        else {
            return fail(true, "truncated inner IPv6 extension header");
        };
        let ports = if first_frag {
            ports(&b[40 + ext_len..], upper)
        } else {
            None
        };
        if ports.is_none() && first_frag && (upper == IPPROTO_TCP || upper == IPPROTO_UDP) {
            return fail(true, "truncated inner L4 header");
        }
        let total = 40 + usize::from(be16(b, 4).unwrap_or(0));
        if total > b.len() {
            return fail(
                true,
                format!(
                    "truncated inner IPv6 packet: length {total}, have {}",
                    b.len()
                ),
            );
        }
        Ok(Inner {
            length_ok: total == b.len(),
            version: 6,
            protocol,
            src: addr(8),
            dst: addr(24),
            total_length: total as u32,
            ttl: b[7],
            ports,
            dsfield: (b[0] << 4) | (b[1] >> 4),
            options: b[40..40 + ext_len].to_vec(),
            ext_headers,
            upper_protocol: upper,
        })
    }
}

impl Packet {
    /// The part of the packet that two correct GUE encapsulators must agree on
    /// for the same flow. Per-packet or per-implementation values (IP id,
    /// header checksum value, UDP source port, absolute lengths, flow label)
    /// are left out. Markers for abnormal cases (fragmentation, IPv4 options,
    /// bad IPv4 header checksum) appear only when present.
    pub fn layout(&self) -> String {
        let mut s = String::new();
        match &self.ip {
            OuterIp::V4 {
                tos,
                df,
                mf,
                ttl,
                protocol,
                ihl,
                hdr_csum_valid,
                ..
            } => {
                let _ = write!(
                    s,
                    "ipv4 tos=0x{tos:02x} df={} ttl={ttl} proto={protocol}",
                    u8::from(*df)
                );
                if *ihl != 5 {
                    let _ = write!(s, " ihl={ihl}");
                }
                if *mf {
                    s.push_str(" frag");
                }
                if !hdr_csum_valid {
                    s.push_str(" ipcsum=bad");
                }
            }
            OuterIp::V6 {
                traffic_class,
                hop_limit,
                next_header,
                ..
            } => {
                let _ = write!(
                    s,
                    "ipv6 tc=0x{traffic_class:02x} hlim={hop_limit} nh={next_header}"
                );
            }
        }
        let _ = write!(
            s,
            " | udp dport={} len={} csum={}",
            self.udp.dport,
            if self.udp.length_ok { "ok" } else { "bad" },
            self.udp.csum_state.name()
        );
        let g = &self.gue;
        if g.version == 1 {
            let _ = write!(s, " | gue v=1 direct proto={}", g.proto_ctype);
        } else {
            let _ = write!(
                s,
                " | gue v={} c={} hlen={} proto={} flags=0x{:04x}",
                g.version,
                u8::from(g.control),
                g.hlen,
                g.proto_ctype,
                g.flags
            );
            if let Some(p) = g.priv_flags {
                let _ = write!(s, " priv=0x{p:08x}");
            }
            if let Some(r) = &g.remcsum {
                let _ = write!(s, " remcsum={}/{}", r.start, r.offset());
            }
        }
        match &self.inner {
            InnerKind::Control => s.push_str(" | inner=control"),
            InnerKind::Unknown => s.push_str(" | inner=unknown"),
            InnerKind::Ip(i) => {
                let l4 = match i.protocol {
                    IPPROTO_TCP => "tcp".to_string(),
                    IPPROTO_UDP => "udp".to_string(),
                    p => format!("proto={p}"),
                };
                let _ = write!(s, " | inner=ipv{}/{l4}", i.version);
                if !i.length_ok {
                    s.push_str(" innerlen=bad");
                }
            }
        }
        s
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const PORT: u16 = 5501;

    /// Inner IPv4/TCP packet (SYN-less data segment) with `payload` bytes.
    pub fn inner_v4_tcp(payload: usize) -> Vec<u8> {
        let total = 20 + 20 + payload;
        let mut p = vec![
            0x45,
            0x00,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0x40,
            0x00,
            64,
            IPPROTO_TCP,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        let c = inet_csum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        // TCP 40000 -> 8080, doff=5, ACK|PSH.
        p.extend_from_slice(&[
            0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        p.extend((0..payload).map(|i| i as u8));
        p
    }

    pub fn gue_hdr(proto: u8, remcsum: Option<(u16, u16)>) -> Vec<u8> {
        match remcsum {
            None => vec![0x00, proto, 0, 0],
            Some((start, end)) => {
                let mut g = vec![0x02, proto, 0x00, 0x01, 0x80, 0, 0, 0];
                g.extend_from_slice(&start.to_be_bytes());
                g.extend_from_slice(&end.to_be_bytes());
                g
            }
        }
    }

    fn udp(sport: u16, payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&PORT.to_be_bytes());
        u.extend_from_slice(&(len as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    /// Ethernet + IPv4 (DF, ttl 64) + UDP + `payload`; checksum computed if `csum`.
    pub fn frame_v4(payload: &[u8], csum: bool) -> Vec<u8> {
        let mut u = udp(49152, payload);
        let (src, dst) = ([192, 168, 1, 1], [192, 168, 1, 2]);
        if csum {
            let mut acc = csum_add(&src, 0);
            acc = csum_add(&dst, acc) + u64::from(IPPROTO_UDP) + u.len() as u64;
            let mut c = !csum_fold(csum_add(&u, acc));
            if c == 0 {
                c = 0xffff;
            }
            u[6..8].copy_from_slice(&c.to_be_bytes());
        }
        let total = 20 + u.len();
        let mut ip = vec![
            0x45,
            0x00,
            (total >> 8) as u8,
            total as u8,
            0xab,
            0xcd,
            0x40,
            0x00,
            64,
            IPPROTO_UDP,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = inet_csum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend(ip);
        f.extend(u);
        f
    }

    /// Ethernet + IPv6 (traffic class 0x2e, flow label 0x12345) + UDP (checksum) + `payload`.
    pub fn frame_v6(payload: &[u8]) -> Vec<u8> {
        let u = udp(50000, payload);
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src[..2].copy_from_slice(&[0xfd, 0x00]);
        src[15] = 1;
        dst[..2].copy_from_slice(&[0xfd, 0x00]);
        dst[15] = 2;
        let mut acc = csum_add(&src, 0);
        acc = csum_add(&dst, acc) + u.len() as u64 + u64::from(IPPROTO_UDP);
        let mut u = u;
        let c = !csum_fold(csum_add(&u, acc));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        // tc = 0x2e (DSCP 11, ECN 2), flow label 0x12345.
        let w0: u32 = (6 << 28) | (0x2e << 20) | 0x12345;
        let mut ip = w0.to_be_bytes().to_vec();
        ip.extend_from_slice(&(u.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[IPPROTO_UDP, 63]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
        f.extend(ip);
        f.extend(u);
        f
    }

    fn payload(remcsum: Option<(u16, u16)>) -> Vec<u8> {
        let mut p = gue_hdr(IPPROTO_IPIP, remcsum);
        p.extend(inner_v4_tcp(100));
        p
    }

    fn dec(f: &[u8]) -> Packet {
        decode(f, PORT, Meta::default())
            .expect("decode")
            .expect("match")
    }

    #[test]
    fn known_answer_ipv4_header_checksum() {
        // Classic example header, checksum 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(inet_csum(&h), 0xb861);
    }

    #[test]
    fn ipv4_zero_checksum() {
        let f = frame_v4(&payload(None), false);
        let p = dec(&f);
        assert_eq!(
            p.layout(),
            "ipv4 tos=0x00 df=1 ttl=64 proto=17 | udp dport=5501 len=ok csum=zero | gue v=0 c=0 hlen=0 proto=4 flags=0x0000 | inner=ipv4/tcp"
        );
        let OuterIp::V4 {
            hdr_csum_valid, id, ..
        } = p.ip
        else {
            panic!()
        };
        assert!(hdr_csum_valid);
        assert_eq!(id, 0xabcd);
        assert_eq!(p.udp.sport, 49152);
        let InnerKind::Ip(i) = &p.inner else { panic!() };
        assert_eq!(i.ports, Some((40000, 8080)));
        assert_eq!(i.total_length, 140);
        assert_eq!(i.src.to_string(), "10.0.0.1");
        assert_eq!(i.dst.to_string(), "10.0.0.2");
        // Not our port / not UDP / not IP: no match.
        assert_eq!(decode(&f, 5502, Meta::default()), Ok(None));
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(decode(&arp, PORT, Meta::default()), Ok(None));
    }

    #[test]
    fn ipv4_valid_and_bad_checksum() {
        let mut f = frame_v4(&payload(None), true);
        let p = dec(&f);
        assert_ne!(p.udp.csum, 0);
        assert_eq!(p.udp.csum_state, CsumState::Valid);
        assert!(p.layout().contains("| udp dport=5501 len=ok csum=valid |"));
        // Flip a payload byte: checksum no longer verifies.
        let n = f.len();
        f[n - 1] ^= 0x55;
        assert_eq!(dec(&f).udp.csum_state, CsumState::Bad);
        // Corrupt the outer IPv4 header checksum: flagged in the layout.
        f[14 + 10] ^= 1;
        assert!(dec(&f).layout().contains(" ipcsum=bad |"));
    }

    #[test]
    fn pending_checksum_is_completed() {
        // Outer UDP checksum left to the device: field holds the pseudo-header sum.
        let mut f = frame_v4(&payload(None), false);
        let ulen = (f.len() - 34) as u64;
        let seed = csum_fold(csum_add(&f[26..34], 0) + 17 + ulen);
        f[40..42].copy_from_slice(&seed.to_be_bytes());
        assert_eq!(dec(&f).udp.csum_state, CsumState::Bad);
        let meta = Meta {
            pending_csum: Some((34, 6)),
            gso: None,
        };
        let p = decode(&f, PORT, meta).unwrap().unwrap();
        assert_eq!(p.udp.csum_state, CsumState::Valid);
        assert_eq!(p.udp.completed_pending_at, Some(40));
        let gso = Meta {
            pending_csum: None,
            gso: Some((1, 1448)),
        };
        assert_eq!(
            decode(&f, PORT, gso).unwrap().unwrap().udp.csum_state,
            CsumState::Gso
        );
    }

    #[test]
    fn ipv6_outer() {
        let f = frame_v6(&payload(None));
        let p = dec(&f);
        assert_eq!(
            p.layout(),
            "ipv6 tc=0x2e hlim=63 nh=17 | udp dport=5501 len=ok csum=valid | gue v=0 c=0 hlen=0 proto=4 flags=0x0000 | inner=ipv4/tcp"
        );
        let OuterIp::V6 { flow_label, .. } = p.ip else {
            panic!()
        };
        assert_eq!(flow_label, 0x12345);
    }

    #[test]
    fn remcsum() {
        let f = frame_v4(&payload(Some((20, 36))), true);
        let p = dec(&f);
        assert_eq!(
            p.layout(),
            "ipv4 tos=0x00 df=1 ttl=64 proto=17 | udp dport=5501 len=ok csum=valid | gue v=0 c=0 hlen=2 proto=4 flags=0x0001 priv=0x80000000 remcsum=20/16 | inner=ipv4/tcp"
        );
        assert_eq!(p.gue.header_len, 12);
        let InnerKind::Ip(i) = &p.inner else { panic!() };
        assert_eq!(i.ports, Some((40000, 8080)));
        // REMCSUM flag but hlen too small for its option.
        let mut bad = payload(Some((20, 36)));
        bad[0] = 0x01;
        let f = frame_v4(&bad, false);
        let e = decode(&f, PORT, Meta::default()).unwrap_err();
        assert!(e.port_matched && e.msg.contains("REMCSUM"), "{e:?}");
    }

    #[test]
    fn inner_ipv6_and_control() {
        let mut inner = vec![0x60, 0, 0, 0, 0, 20, IPPROTO_TCP, 64];
        inner.extend([0u8; 32]);
        inner.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        inner.extend([0u8; 16]);
        let mut pl = gue_hdr(IPPROTO_IPV6, None);
        pl.extend(&inner);
        let p = dec(&frame_v4(&pl, false));
        assert!(
            p.layout()
                .ends_with("proto=41 flags=0x0000 | inner=ipv6/tcp"),
            "{}",
            p.layout()
        );
        let p = dec(&frame_v4(&[0x20, 7, 0, 0], false));
        assert!(
            p.layout()
                .ends_with("c=1 hlen=0 proto=7 flags=0x0000 | inner=control"),
            "{}",
            p.layout()
        );
        // proto/version mismatch is an error.
        let mut pl = gue_hdr(IPPROTO_IPIP, None);
        pl.extend(&inner);
        assert!(decode(&frame_v4(&pl, false), PORT, Meta::default()).is_err());
    }

    #[test]
    fn inner_fields_options_and_extension_headers() {
        // IPv4 inner with TOS 0xb9 and a NOP + record-route option (3 slots, one filled).
        let mut v4 = inner_v4_tcp(10);
        v4[1] = 0xb9;
        let opts = [1u8, 7, 15, 8, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        v4.splice(20..20, opts);
        v4[0] = 0x45 + 4;
        let total = v4.len() as u16;
        v4[2..4].copy_from_slice(&total.to_be_bytes());
        let mut pl = gue_hdr(IPPROTO_IPIP, None);
        pl.extend(&v4);
        let p = dec(&frame_v4(&pl, false));
        let InnerKind::Ip(i) = &p.inner else { panic!() };
        assert_eq!((i.dsfield, i.ports), (0xb9, Some((40000, 8080))));
        assert_eq!(i.options, opts);
        assert_eq!(i.upper_protocol, IPPROTO_TCP);
        assert!(i.ext_headers.is_empty());
        // IPv6 inner (tc 0x2f) with hop-by-hop and destination options before UDP.
        let ext = [
            60u8,
            0,
            0x1e,
            4,
            1,
            2,
            3,
            4,
            IPPROTO_UDP,
            0,
            0x1e,
            4,
            5,
            6,
            7,
            8,
        ];
        let udp = [0x9c, 0x41, 0x1f, 0x91, 0, 12, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        let plen = (ext.len() + udp.len()) as u16;
        let mut v6 = vec![0x62, 0xf0, 0, 0];
        v6.extend_from_slice(&plen.to_be_bytes());
        v6.extend_from_slice(&[IPV6_EXT_HOP, 64]);
        v6.extend([0u8; 32]);
        v6.extend_from_slice(&ext);
        v6.extend_from_slice(&udp);
        let mut pl = gue_hdr(IPPROTO_IPV6, None);
        pl.extend(&v6);
        let p = dec(&frame_v4(&pl, false));
        let InnerKind::Ip(i) = &p.inner else { panic!() };
        assert_eq!(i.dsfield, 0x2f);
        assert_eq!(i.ext_headers, vec![IPV6_EXT_HOP, IPV6_EXT_DSTOPTS]);
        assert_eq!(i.options, ext);
        assert_eq!(
            (i.upper_protocol, i.ports),
            (IPPROTO_UDP, Some((40001, 8081)))
        );
        assert!(
            p.layout().ends_with("| inner=ipv6/proto=0"),
            "{}",
            p.layout()
        );
        // A chain cut inside an extension header is an error, not a panic.
        let mut cut = gue_hdr(IPPROTO_IPV6, None);
        let mut short = v6[..40 + 12].to_vec();
        short[4..6].copy_from_slice(&12u16.to_be_bytes());
        cut.extend(&short);
        assert!(decode(&frame_v4(&cut, false), PORT, Meta::default()).is_err());
        // A non-first fragment has no ports to report.
        assert_eq!(
            ipv6_ext_chain(&[IPPROTO_UDP, 0, 0x05, 0x01, 0, 0, 0, 1], IPV6_EXT_FRAGMENT),
            Some((vec![IPV6_EXT_FRAGMENT], 8, IPPROTO_UDP, false))
        );
    }

    #[test]
    fn truncated_never_panics() {
        for f in [
            frame_v4(&payload(None), false),
            frame_v4(&payload(Some((20, 36))), true),
            frame_v6(&payload(None)),
        ] {
            assert!(dec(&f).udp.length_ok);
            for n in 0..f.len() {
                let r = decode(&f[..n], PORT, Meta::default());
                assert!(r.is_err(), "prefix of {n} bytes: {r:?}");
            }
            // Frame cut inside the inner packet but IP lengths patched to agree.
            let mut short = f[..f.len() - 110].to_vec();
            let v6 = short[12] == 0x86;
            let l3 = 14;
            if v6 {
                let pl = (short.len() - l3 - 40) as u16;
                short[l3 + 4..l3 + 6].copy_from_slice(&pl.to_be_bytes());
                short[l3 + 44..l3 + 46].copy_from_slice(&pl.to_be_bytes());
            } else {
                let tl = (short.len() - l3) as u16;
                short[l3 + 2..l3 + 4].copy_from_slice(&tl.to_be_bytes());
                short[l3 + 24..l3 + 26].copy_from_slice(&(tl - 20).to_be_bytes());
            }
            let e = decode(&short, PORT, Meta::default()).unwrap_err();
            assert!(e.port_matched, "{e:?}");
        }
        // Garbage of all sizes.
        let junk: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for n in 0..junk.len() {
            let _ = decode(&junk[..n], PORT, Meta::default());
        }
    }
}
