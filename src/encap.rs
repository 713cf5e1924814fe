// SPDX-License-Identifier: GPL-2.0

//! GUE encapsulation and transmission of one packet: the Rust counterpart of
//! `ip_vs_tunnel_xmit{,_v6}` with `ipvs_gue_encap` (net/netfilter/ipvs/ip_vs_xmit.c).
//! Differences from the C path are deliberate and listed in docs/design.md.

#![deny(unsafe_code)]

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::gue_core::checksum::{fold, ones_complement_sum, pseudo_header_sum, udp_checksum_from_sum};
use crate::gue_core::config::{ChecksumMode, FlowLabelMode, RealServerConfig};
use crate::gue_core::ecn::{ecn_encapsulate, ipv4_dsfield, ipv6_dsfield};
use crate::gue_core::flowlabel::flow_label_from_hash;
use crate::gue_core::gue::{GueHeader, RemoteChecksum};
use crate::gue_core::headers::{Ipv4Header, Ipv6Header, UdpHeader, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP};
use crate::gue_core::mtu::{encap_overhead, inner_limit, tunnel_mtu};
use crate::gue_core::ports::udp_flow_src_port;
use crate::gue_core::stats::DropReason;
use crate::net::rcu::RcuReadGuard;
use crate::net::route::{OutputRoute, RouteCache, RouteKind};
use crate::net::skb::{ChecksumState, Header, OwnedSkb, PrivateSkb, SkBuff};
use crate::net::Net;

/// What was sent, for the counters.
pub(crate) struct Transmitted {
    pub(crate) bytes: u64,
    pub(crate) gso: bool,
}

/// The inner header fields the outer header inherits, as `ip_vs_prepare_tunneled_skb` reads
/// them.
struct InnerFields {
    /// GUE `proto_ctype`: `IPPROTO_IPIP` or `IPPROTO_IPV6`.
    protocol: u8,
    dsfield: u8,
    ttl: u8,
    /// IPv4 DF; IPv6 never fragments on path.
    dont_fragment: bool,
}

fn inner_fields(skb: &SkBuff, family: Family) -> Option<InnerFields> {
    // The inner packet starts at `skb->data`, where IPVS leaves it at LOCAL_OUT.
    if skb.network_offset() != 0 {
        return None;
    }
    match family {
        Family::V4 => {
            let ip: [u8; 20] = skb.read_bytes(0)?;
            Some(InnerFields {
                protocol: IPPROTO_IPIP,
                dsfield: ipv4_dsfield(&ip)?,
                ttl: ip[8],
                dont_fragment: ip[6] & 0x40 != 0,
            })
        }
        Family::V6 => {
            let ip: [u8; 8] = skb.read_bytes(0)?;
            Some(InnerFields {
                protocol: IPPROTO_IPV6,
                dsfield: ipv6_dsfield(&ip)?,
                ttl: ip[7],
                dont_fragment: false,
            })
        }
    }
}

/// Encapsulates `skb` (an IPVS-scheduled packet of family `inner`, or an ICMP error IPVS
/// relays when `relayed_icmp`) for `server` and sends it, by the server's route `cache`
/// (its route borrowed for `rcu`, the hook's read-side section). On error the packet has been
/// freed as a drop (and, for PMTU, answered with ICMP unless it is an ICMP error itself).
pub(crate) fn transmit(
    net: &Net,
    mut skb: OwnedSkb,
    server: &RealServerConfig,
    cache: Option<&RouteCache>,
    rcu: &RcuReadGuard,
    relayed_icmp: bool,
) -> Result<Transmitted, DropReason> {
    let inner = skb.family();
    let fields = inner_fields(&skb, inner).ok_or(DropReason::BadPacket)?;
    let route = match cache {
        Some(cache) => cache.route(net, &server.outer, rcu),
        None => OutputRoute::lookup(net, &server.outer),
    };
    let Ok(route) = route else {
        // As C's `err_unreach` (`dst_link_failure`): the client learns at once, rather than
        // timing out. Never about an ICMP error.
        if !relayed_icmp {
            skb.send_unreachable(net);
        }
        return Err(DropReason::NoRoute);
    };
    // A tunnel endpoint that is this host or a broadcast address is a configuration error
    // (the hook lets packets for a local real server pass): never send GUE to ourselves or to
    // everyone.
    if route.kind() != RouteKind::Unicast {
        return Err(DropReason::NoRoute);
    }
    let outer = server.outer.family();
    // Like the C path, the option is only added where there is a checksum to offload.
    let remcsum = server.csum == ChecksumMode::RemoteOffload
        && skb.checksum_state() == ChecksumState::Partial;
    let path = PathMtu { mtu: route.mtu(), outer, remcsum };
    check_path_mtu(&mut skb, net, &fields, path, relayed_icmp)?;

    skb.drop_early_demux_socket();
    let headroom = route.device_headroom() + encap_overhead(outer, remcsum) as usize;
    let mut skb = skb.into_private(headroom).map_err(|()| DropReason::NoHeadroom)?;
    set_offload_state(&mut skb, fields.protocol, outer, server.csum, remcsum)?;
    push_gue(&mut skb, fields.protocol, remcsum)?;
    // One hash per flow gives both the outer source port and, if asked for, the flow label.
    let hash = match skb.flow_hash() {
        0 => Net::udp_flow_hash_seed(),
        hash => hash,
    };
    push_udp(&mut skb, net, server.port, hash)?;
    set_udp_checksum(&mut skb, server.csum != ChecksumMode::None, route.source(), &server.outer)?;
    let flow_label = match server.flow_label {
        FlowLabelMode::Zero => 0,
        FlowLabelMode::Hash => flow_label_from_hash(hash),
    };
    push_outer_ip(&mut skb, net, &fields, flow_label, route.source(), &server.outer)?;

    skb.reset_control_block(outer);
    // The outer header carries the inner DF; fragmenting the outer packet is the stack's job.
    skb.set_ignore_df();
    skb.prepare_tunnel_xmit();
    let sent = Transmitted { bytes: skb.len().into(), gso: skb.is_gso() };
    #[cfg(reproduce_silent_loss)]
    if silent_loss::strikes() {
        drop(skb);
        return Ok(sent);
    }
    // Drops past this point belong to the output path; the harness counts them there.
    skb.send(net, route).map_err(|()| DropReason::BadPacket)?;
    Ok(sent)
}

/// The tunnel's path: route MTU, outer family, and whether the remote checksum option is
/// added.
struct PathMtu {
    mtu: u32,
    outer: Family,
    remcsum: bool,
}

/// `ensure_mtu_is_adequate` for the tunnel: a packet that would exceed the path MTU once
/// encapsulated and may not be fragmented is answered with ICMP carrying the MTU left for it,
/// GSO packets segment by segment (`ip_vs_exceeds_mtu`). A reassembled IPv6 packet is judged
/// by its largest fragment, as `__mtu_check_toobig_v6` does: it leaves in fragments again.
/// ICMP errors IPVS relays are never answered: over IPv4 they are sent (and the outer packet
/// fragmented), over IPv6 dropped, both as C does.
fn check_path_mtu(
    skb: &mut OwnedSkb,
    net: &Net,
    fields: &InnerFields,
    path: PathMtu,
    relayed_icmp: bool,
) -> Result<(), DropReason> {
    let inner = skb.family();
    let tunnel = tunnel_mtu(path.mtu, path.outer, path.remcsum).ok_or(DropReason::Pmtu)?;
    let mtu = inner_limit(tunnel, inner);
    let fits = match skb.largest_fragment() {
        0 if skb.is_gso() => skb.gso_fits_mtu(mtu),
        0 => skb.len() <= mtu,
        largest_fragment if inner == Family::V6 => u32::from(largest_fragment) <= mtu,
        _ => skb.len() <= mtu,
    };
    match inner {
        _ if fits => Ok(()),
        Family::V4 if !fields.dont_fragment || relayed_icmp => Ok(()),
        Family::V6 if relayed_icmp => Err(DropReason::Pmtu),
        _ => {
            skb.send_packet_too_big(net, mtu);
            Err(DropReason::Pmtu)
        }
    }
}

/// The skb state software GSO and checksum offload read (`iptunnel_handle_offloads` plus
/// what `ip_vs_tunnel_xmit` sets after it). The inner headers are where the inner packet's
/// headers are now; `inner_mac_header` must equal `inner_network_header`, because
/// `__skb_udp_tunnel_segment` takes `inner_mac_header - transport_header` as the tunnel
/// header length: left at the outer MAC offset it goes negative and every GSO packet is
/// dropped (the 2023 bug, fixed upstream by d7fce52fdf96).
fn set_offload_state(
    skb: &mut SkBuff,
    inner_protocol: u8,
    outer: Family,
    csum: ChecksumMode,
    remcsum: bool,
) -> Result<(), DropReason> {
    if !skb.encapsulation() {
        let (network, transport) = (skb.network_offset(), skb.transport_offset());
        skb.set_header_offsets(Header::InnerNetwork, network).ok_or(DropReason::BadPacket)?;
        skb.set_header_offsets(Header::InnerTransport, transport).ok_or(DropReason::BadPacket)?;
        set_inner_mac_header(skb)?;
        skb.set_encapsulation(true);
    }
    if skb.is_gso() {
        let mut gso_type = match outer {
            Family::V4 => b::SKB_GSO_IPXIP4,
            Family::V6 => b::SKB_GSO_IPXIP6,
        };
        gso_type |= match csum {
            ChecksumMode::None => b::SKB_GSO_UDP_TUNNEL,
            ChecksumMode::Udp | ChecksumMode::RemoteOffload => b::SKB_GSO_UDP_TUNNEL_CSUM,
        };
        if remcsum {
            gso_type |= b::SKB_GSO_TUNNEL_REMCSUM;
        }
        skb.add_gso_type(gso_type).map_err(|()| DropReason::NoHeadroom)?;
    } else if skb.checksum_state() != ChecksumState::Partial {
        // Nothing for a device to offload: keep drivers from looking at inner headers.
        skb.set_checksum_state(ChecksumState::None);
        skb.set_encapsulation(false);
    }
    skb.set_inner_ipproto(inner_protocol);
    Ok(())
}

#[cfg(not(reproduce_inner_mac_bug))]
fn set_inner_mac_header(skb: &mut SkBuff) -> Result<(), DropReason> {
    let network = skb.inner_network_offset();
    skb.set_header_offsets(Header::InnerMac, network).ok_or(DropReason::BadPacket)
}

/// Test-only build: the pre-d7fce52fdf96 behaviour, `inner_mac_header` at the outer MAC.
#[cfg(reproduce_inner_mac_bug)]
fn set_inner_mac_header(skb: &mut SkBuff) -> Result<(), DropReason> {
    let mac = skb.mac_offset();
    skb.set_header_offsets(Header::InnerMac, mac).ok_or(DropReason::BadPacket)
}

/// Pushes the GUE header (variant 0), with the remote checksum option when `remcsum`.
fn push_gue(skb: &mut PrivateSkb, protocol: u8, remcsum: bool) -> Result<(), DropReason> {
    let remcsum = if remcsum {
        let start = u16::try_from(skb.checksum_start_offset()).map_err(|_| DropReason::BadPacket)?;
        Some(RemoteChecksum { start, offset: skb.checksum_offset() })
    } else {
        None
    };
    let header = GueHeader { proto: protocol, remcsum };
    let buf = skb.push(header.len()).ok_or(DropReason::NoHeadroom)?;
    header.encode(buf).map_err(|_| DropReason::BadPacket)?;
    if remcsum.is_some() && !skb.is_gso() {
        // The receiver completes the inner checksum from the option.
        skb.set_checksum_state(ChecksumState::None);
        skb.set_encapsulation(false);
    }
    Ok(())
}

/// Pushes the UDP header; the source port spreads flows over ECMP/RSS like
/// `udp_flow_src_port(net, skb, 0, 0, false)` (`hash`: the flow's, never 0).
fn push_udp(skb: &mut PrivateSkb, net: &Net, port: u16, hash: u32) -> Result<(), DropReason> {
    let (low, high) = net.local_port_range();
    // A GSO packet's length does not fit 16 bits; segmentation rewrites it per segment.
    let len = (skb.len() as usize + UdpHeader::LEN) as u16;
    let header = UdpHeader {
        src_port: udp_flow_src_port(hash, low, high),
        dst_port: port,
        len,
        check: 0,
    };
    let buf = skb.push(UdpHeader::LEN).ok_or(DropReason::NoHeadroom)?;
    header.encode(buf).map_err(|_| DropReason::BadPacket)?;
    skb.set_header_offsets(Header::Transport, 0).ok_or(DropReason::BadPacket)?;
    Ok(())
}

/// `udp_set_csum`/`udp6_set_csum` for the UDP header at `skb->data`.
fn set_udp_checksum(
    skb: &mut PrivateSkb,
    enabled: bool,
    source: &InetAddr,
    destination: &InetAddr,
) -> Result<(), DropReason> {
    let check = if !enabled {
        0
    } else {
        let pseudo = pseudo_header_sum(source, destination, skb.len()).ok_or(DropReason::BadPacket)?;
        if skb.is_gso() {
            // Segmentation completes each segment's checksum from the pseudo-header sum.
            fold(pseudo)
        } else if skb.checksum_state() == ChecksumState::Partial {
            // Local checksum offload: the inner checksum is still to be filled in, which
            // lets us compute ours now (`lco_csum`).
            let inner = local_checksum_offload_sum(skb).ok_or(DropReason::BadPacket)?;
            udp_checksum_from_sum(ones_complement_sum(&inner.to_be_bytes(), pseudo))
        } else {
            skb.request_checksum(0, 6).ok_or(DropReason::BadPacket)?;
            fold(pseudo)
        }
    };
    let udp = skb.linear_mut(0).ok_or(DropReason::BadPacket)?;
    udp.get_mut(6..8).ok_or(DropReason::BadPacket)?.copy_from_slice(&check.to_be_bytes());
    Ok(())
}

/// `lco_csum`: the sum of our headers up to the inner checksum start, plus the complement
/// of the inner pseudo-header sum already stored in the inner checksum field. With it the
/// outer checksum is known before the inner one is computed.
fn local_checksum_offload_sum(skb: &mut PrivateSkb) -> Option<u32> {
    let start = usize::try_from(skb.checksum_start_offset()).ok()?;
    let field = start + usize::from(skb.checksum_offset());
    let linear = skb.linear_mut(0)?;
    let inner = linear.get(field..field + 2)?;
    let inner = u16::from_be_bytes([inner[0], inner[1]]);
    Some(ones_complement_sum(linear.get(..start)?, u32::from(!inner)))
}

/// Pushes the outer IPv4 or IPv6 header towards `destination` (`flow_label`: IPv6 only).
fn push_outer_ip(
    skb: &mut PrivateSkb,
    net: &Net,
    fields: &InnerFields,
    flow_label: u32,
    source: &InetAddr,
    destination: &InetAddr,
) -> Result<(), DropReason> {
    // ECN: copy the inner codepoint, but never propagate CE (RFC 6040 "normal mode").
    let dsfield = ecn_encapsulate(fields.dsfield, fields.dsfield);
    let payload_len = skb.len();
    match (source.v4_octets(), destination.v4_octets()) {
        (Some(saddr), Some(daddr)) => {
            let header = Ipv4Header {
                dscp_ecn: dsfield,
                // ip_local_out rewrites it (GSO packets may exceed 16 bits).
                total_len: (payload_len as usize + Ipv4Header::LEN) as u16,
                id: 0,
                dont_fragment: fields.dont_fragment,
                ttl: fields.ttl,
                protocol: IPPROTO_UDP,
                saddr,
                daddr,
            };
            skb.push_ipv4_header(net, &header).ok_or(DropReason::NoHeadroom)?;
        }
        _ => {
            let header = Ipv6Header {
                traffic_class: dsfield,
                flow_label,
                // ip6_local_out rewrites it (0 above 64 KiB, as for jumbograms).
                payload_len: u16::try_from(payload_len).unwrap_or(0),
                next_header: IPPROTO_UDP,
                hop_limit: fields.ttl,
                saddr: source.v6_octets().ok_or(DropReason::BadPacket)?,
                daddr: destination.v6_octets().ok_or(DropReason::BadPacket)?,
            };
            skb.push_ipv6_header(&header).ok_or(DropReason::NoHeadroom)?;
        }
    }
    Ok(())
}

/// Test-only build (`REPRODUCE_SILENT_LOSS=1`): loses one transmitted packet in fifty without
/// counting it anywhere, to prove the harness's end-to-end accounting catches silent loss.
#[cfg(reproduce_silent_loss)]
mod silent_loss {
    use core::sync::atomic::{AtomicU32, Ordering};

    static SENT: AtomicU32 = AtomicU32::new(0);

    pub(super) fn strikes() -> bool {
        SENT.fetch_add(1, Ordering::Relaxed) % 50 == 49
    }
}
