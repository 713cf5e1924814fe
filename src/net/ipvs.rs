// SPDX-License-Identifier: GPL-2.0

//! Finding the real server IPVS chose for a packet, from its connection table.

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::gue_core::flow::{self, FlowKey, IPPROTO_ICMP, IPPROTO_ICMPV6};
use crate::net::skb::SkBuff;
use crate::net::Net;

/// What IPVS's connection table says about a packet.
pub(crate) enum Connection {
    /// A direct-routing connection to this real server.
    DirectRoute(InetAddr),
    /// A connection with another forwarding method.
    OtherMethod,
    /// No hashed connection: none at all, or one IPVS never hashes (one-packet scheduling).
    NotFound,
}

/// A packet IPVS may have sent: its connection key and its IP destination.
pub(crate) struct Classified {
    pub(crate) key: FlowKey,
    pub(crate) destination: InetAddr,
}

fn to_nf_inet_addr(addr: &InetAddr) -> b::nf_inet_addr {
    let mut raw = b::nf_inet_addr::default();
    let mut octets = [0u8; 16];
    octets[..addr.octets().len()].copy_from_slice(addr.octets());
    // Writing the byte view of the union covers both the IPv4 and IPv6 members.
    raw.all = [
        u32::from_ne_bytes([octets[0], octets[1], octets[2], octets[3]]),
        u32::from_ne_bytes([octets[4], octets[5], octets[6], octets[7]]),
        u32::from_ne_bytes([octets[8], octets[9], octets[10], octets[11]]),
        u32::from_ne_bytes([octets[12], octets[13], octets[14], octets[15]]),
    ];
    raw
}

fn from_nf_inet_addr(family: Family, raw: &b::nf_inet_addr) -> InetAddr {
    // SAFETY: every bit pattern is a valid `[u32; 4]`, whichever member IPVS wrote.
    let words = unsafe { raw.all };
    let mut octets = [0u8; 16];
    for (chunk, word) in octets.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    match family {
        Family::V4 => InetAddr::v4([octets[0], octets[1], octets[2], octets[3]]),
        Family::V6 => InetAddr::v6(octets),
    }
}

fn af_of(family: Family) -> u32 {
    match family {
        Family::V4 => b::AF_INET,
        Family::V6 => b::AF_INET6,
    }
}

/// Looks `key` up in the namespace's IPVS connection table (`ip_vs_conn_in_get`), as IPVS
/// itself keyed the connection.
pub(crate) fn connection(net: &Net, family: Family, key: &FlowKey) -> Connection {
    let caddr = to_nf_inet_addr(&key.client);
    let vaddr = to_nf_inet_addr(&key.virtual_addr);
    let mut param = b::ip_vs_conn_param::default();
    // SAFETY: `net` is live; `net_ipvs` returns its IPVS state (never null when IPVS is built
    // in or loaded, which our symbol dependency on it guarantees).
    let ipvs = unsafe { b::net_ipvs(net.as_raw()) };
    if ipvs.is_null() {
        return Connection::NotFound;
    }
    // SAFETY: all pointers are valid for the duration of the call, which only stores them.
    unsafe {
        b::ip_vs_conn_fill_param(
            ipvs,
            af_of(family) as i32,
            key.protocol.into(),
            &caddr,
            key.client_port.to_be(),
            &vaddr,
            key.virtual_port.to_be(),
            &mut param,
        )
    };
    // SAFETY: `param` points to addresses that live until the call returns; a non-null result
    // holds a reference we release below.
    let conn = unsafe { b::ip_vs_conn_in_get(&param) };
    if conn.is_null() {
        return Connection::NotFound;
    }
    // SAFETY: `conn` is a referenced, valid connection until `ip_vs_conn_put`.
    unsafe {
        let flags = core::ptr::read_volatile(core::ptr::addr_of!((*conn).flags));
        let daf = (*conn).daf;
        let direct = flags & b::IP_VS_CONN_F_FWD_MASK == b::IP_VS_CONN_F_DROUTE;
        let family = if u32::from(daf) == b::AF_INET6 { Family::V6 } else { Family::V4 };
        let addr = from_nf_inet_addr(family, &(*conn).daddr);
        b::ip_vs_conn_put(conn);
        if direct {
            Connection::DirectRoute(addr)
        } else {
            Connection::OtherMethod
        }
    }
}

/// Reads the IPVS connection key from a packet's headers: its own ports, the IKE connection
/// for AH/ESP, or for an ICMP error the embedded reply's tuple inverted. `None` for anything
/// IPVS cannot have scheduled or relayed (non-first fragments, no ports, truncated headers).
pub(crate) fn classify(skb: &SkBuff, family: Family) -> Option<Classified> {
    let nh = usize::try_from(skb.network_offset()).ok()?;
    let (protocol, source, destination, l4) = match family {
        Family::V4 => {
            let ip: [u8; 20] = skb.read_bytes(nh)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            if ihl < 20 || frag != 0 {
                return None;
            }
            let src = InetAddr::v4([ip[12], ip[13], ip[14], ip[15]]);
            let dst = InetAddr::v4([ip[16], ip[17], ip[18], ip[19]]);
            (ip[9], src, dst, nh + ihl)
        }
        Family::V6 => {
            let ip: [u8; 40] = skb.read_bytes(nh)?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            let (protocol, l4) = ipv6_upper_layer(skb)?;
            (protocol, InetAddr::v6(src), InetAddr::v6(dst), l4)
        }
    };
    let key = match (family, protocol) {
        (Family::V4, IPPROTO_ICMP) => {
            let mut buf = [0u8; flow::ICMP_ERROR_PREFIX_V4];
            flow::icmp_relay_key(family, skb.read_prefix(l4, &mut buf)?)?
        }
        (Family::V6, IPPROTO_ICMPV6) => {
            let mut buf = [0u8; flow::ICMP_ERROR_PREFIX_V6];
            flow::icmp_relay_key(family, skb.read_prefix(l4, &mut buf)?)?
        }
        _ => {
            let mut ports = [0u8; 4];
            flow::forward_key(protocol, source, destination, skb.read_prefix(l4, &mut ports)?)?
        }
    };
    Some(Classified { key, destination })
}

/// Skips IPv6 extension headers (`ipv6_find_hdr`): upper-layer protocol and its offset.
fn ipv6_upper_layer(skb: &SkBuff) -> Option<(u8, usize)> {
    let mut offset: u32 = 0;
    let mut fragoff: u16 = 0;
    // SAFETY: `skb` is a valid IPv6 packet; the out-parameters are valid. `target` -1 asks for
    // the first upper-layer header.
    let proto = unsafe {
        b::ipv6_find_hdr(skb.as_raw(), &mut offset, -1, &mut fragoff, core::ptr::null_mut())
    };
    if proto < 0 || fragoff != 0 {
        return None;
    }
    // The offset is relative to `skb->data`, like every offset `SkBuff` takes.
    Some((proto as u8, usize::try_from(offset).ok()?))
}
