// SPDX-License-Identifier: GPL-2.0

//! The IPVS connection key of a packet, read from its header bytes: the arguments IPVS itself
//! passes to `ip_vs_conn_fill_param` for the packets it schedules or relays.
//!
//! Three kinds need more than "protocol and ports of this packet":
//! - AH and ESP have no ports; IPVS keys them on the IKE connection, UDP port 500 both ways
//!   (`ip_vs_proto_ah_esp.c`);
//! - ICMP errors about a connection's traffic are relayed to its real server
//!   (`ip_vs_in_icmp{,_v6}` → `ip_vs_icmp_xmit` → `cp->packet_xmit`). The embedded packet is
//!   the real server's reply (virtual service → client), so the key is its tuple, inverted;
//! - IPv6 extension headers sit between the fixed header and the ports.

use super::addr::{Family, InetAddr};
use super::headers::IPPROTO_UDP;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IP protocol number of ESP.
pub const IPPROTO_ESP: u8 = 50;
/// IP protocol number of AH.
pub const IPPROTO_AH: u8 = 51;
/// The IKE port IPVS keys AH/ESP on (`PORT_ISAKMP`).
pub const PORT_ISAKMP: u16 = 500;

/// Bytes of an ICMP error to read to classify it: ICMP header, the longest IPv4 header, ports.
pub const ICMP_ERROR_PREFIX_V4: usize = 8 + 60 + 4;
/// As [`ICMP_ERROR_PREFIX_V4`] for ICMPv6, with room for a few extension headers.
pub const ICMP_ERROR_PREFIX_V6: usize = 8 + 40 + 96 + 4;

/// An IPVS connection key: the client and the virtual service it talks to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlowKey {
    /// The protocol IPVS keys the connection on (UDP for AH/ESP).
    pub protocol: u8,
    /// Client address and port.
    pub client: InetAddr,
    /// Client port.
    pub client_port: u16,
    /// Virtual service address.
    pub virtual_addr: InetAddr,
    /// Virtual service port.
    pub virtual_port: u16,
    /// The packet is an ICMP error IPVS relays: it must never be answered with ICMP.
    pub icmp_relay: bool,
}

/// The key of a packet `source` → `destination` of `protocol`, whose transport header starts
/// `transport`. `None` when IPVS cannot have a connection for it (no ports, truncated).
pub fn forward_key(
    protocol: u8,
    source: InetAddr,
    destination: InetAddr,
    transport: &[u8],
) -> Option<FlowKey> {
    let (protocol, source_port, destination_port) = match protocol {
        IPPROTO_AH | IPPROTO_ESP => (IPPROTO_UDP, PORT_ISAKMP, PORT_ISAKMP),
        _ => {
            let ports = transport.get(..4)?;
            (
                protocol,
                u16::from_be_bytes([ports[0], ports[1]]),
                u16::from_be_bytes([ports[2], ports[3]]),
            )
        }
    };
    Some(FlowKey {
        protocol,
        client: source,
        client_port: source_port,
        virtual_addr: destination,
        virtual_port: destination_port,
        icmp_relay: false,
    })
}

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;

/// Whether IPVS can have a connection keyed on `protocol` (a [`FlowKey::protocol`]: AH/ESP
/// already mapped to UDP, an ICMP error to the protocol of the packet it is about). Other
/// protocols with `ipvs_property` set are IPVS's tunnelled-traffic pass-through, never
/// scheduled by it.
pub const fn ipvs_schedules(protocol: u8) -> bool {
    matches!(protocol, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
}

/// Whether ICMP(v6) `icmp_type` is an error IPVS relays to the connection's real server
/// (`ip_vs_in_icmp`: unreachable, source quench, time exceeded; `ip_vs_in_icmp_v6`: every
/// error type, i.e. below 128).
pub const fn is_relayed_icmp_error(family: Family, icmp_type: u8) -> bool {
    match family {
        Family::V4 => matches!(icmp_type, 3 | 4 | 11),
        Family::V6 => icmp_type < 128,
    }
}

/// The key of an ICMP error whose ICMP header starts `icmp` (as many bytes as the packet has,
/// up to [`ICMP_ERROR_PREFIX_V4`] / [`ICMP_ERROR_PREFIX_V6`]): the embedded packet's tuple,
/// inverted. `None` for anything else (echo, truncated, non-first embedded fragments).
pub fn icmp_relay_key(family: Family, icmp: &[u8]) -> Option<FlowKey> {
    if !is_relayed_icmp_error(family, *icmp.first()?) {
        return None;
    }
    let embedded = icmp.get(8..)?;
    let (protocol, source, destination, transport) = match family {
        Family::V4 => {
            let ip = embedded.get(..20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            if ip[0] >> 4 != 4 || ihl < 20 || fragment_offset != 0 {
                return None;
            }
            let source = InetAddr::v4([ip[12], ip[13], ip[14], ip[15]]);
            let destination = InetAddr::v4([ip[16], ip[17], ip[18], ip[19]]);
            (ip[9], source, destination, embedded.get(ihl..)?)
        }
        Family::V6 => {
            let ip = embedded.get(..40)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let mut source = [0u8; 16];
            let mut destination = [0u8; 16];
            source.copy_from_slice(&ip[8..24]);
            destination.copy_from_slice(&ip[24..40]);
            let (protocol, offset) = ipv6_upper_layer(ip[6], embedded.get(40..)?)?;
            let transport = embedded.get(40 + offset..)?;
            (protocol, InetAddr::v6(source), InetAddr::v6(destination), transport)
        }
    };
    // An error about an error is never relayed (RFC 1122 3.2.2, IPVS alike).
    if matches!(protocol, IPPROTO_ICMP | IPPROTO_ICMPV6) {
        return None;
    }
    let reply = forward_key(protocol, source, destination, transport)?;
    Some(FlowKey {
        protocol: reply.protocol,
        client: reply.virtual_addr,
        client_port: reply.virtual_port,
        virtual_addr: reply.client,
        virtual_port: reply.client_port,
        icmp_relay: true,
    })
}

/// Walks IPv6 extension headers from `next_header`, over `headers` (the bytes after the fixed
/// header): the upper-layer protocol and its offset in `headers`. `None` for a non-first
/// fragment (no ports), "no next header" (59, as `ipv6_find_hdr`), or headers that run past
/// `headers`.
pub fn ipv6_upper_layer(mut next_header: u8, headers: &[u8]) -> Option<(u8, usize)> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const DESTINATION: u8 = 60;
    const NO_NEXT_HEADER: u8 = 59;
    let mut offset = 0usize;
    // Bounded: each step advances by at least 8 bytes of a finite slice.
    // AH counts as an extension header, as in the kernel's `ipv6_find_hdr`, which IPVS uses.
    loop {
        if next_header == NO_NEXT_HEADER {
            return None;
        }
        if !matches!(next_header, HOP_BY_HOP | ROUTING | FRAGMENT | DESTINATION | IPPROTO_AH) {
            // The last extension header's length must lie within `headers` too.
            return (offset <= headers.len()).then_some((next_header, offset));
        }
        let header = headers.get(offset..offset + 8)?;
        let len = match next_header {
            FRAGMENT if u16::from_be_bytes([header[2], header[3]]) & 0xfff8 != 0 => return None,
            FRAGMENT => 8,
            IPPROTO_AH => (usize::from(header[1]) + 2) * 4,
            _ => (usize::from(header[1]) + 1) * 8,
        };
        next_header = header[0];
        offset += len;
    }
}
