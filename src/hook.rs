// SPDX-License-Identifier: GPL-2.0

//! The LOCAL_OUT hook: which packets are ours.
//!
//! IPVS sends direct-routing packets through `NF_HOOK(LOCAL_OUT)` with `skb->ipvs_property`
//! set, both the packets it schedules and the ICMP errors it relays to a connection's real
//! server. Such a packet is ours when its real server is in this namespace's GUE table;
//! everything else passes untouched after one bit test (or, while the table is empty, one
//! pointer load).

#![deny(unsafe_code)]

use crate::encap;
use crate::gue_core::addr::Family;
use crate::net::ipvs::{self, Connection};
use crate::net::netfilter::{HookSkb, LocalOutHook, Verdict};
use crate::net::rcu::RcuReadGuard;
use crate::net::Net;
use crate::netns::Netns;

impl LocalOutHook for Netns {
    fn local_out(&self, net: &Net, family: Family, skb: HookSkb<'_>) -> Verdict {
        if !skb.ipvs_property() {
            return Verdict::Accept;
        }
        let rcu = RcuReadGuard::new();
        let servers = self.servers.read(&rcu);
        if servers.is_empty() {
            return Verdict::Accept;
        }
        let Some(packet) = ipvs::classify(&skb, family) else {
            return Verdict::Accept;
        };
        // The connection table, not the route's next hop: a real server behind a router has
        // the router as next hop.
        let real_server = match ipvs::connection(net, family, &packet.key) {
            Connection::DirectRoute(addr) => addr,
            Connection::OtherMethod => return Verdict::Accept,
            // One-packet scheduling (`ipvsadm -o`) never hashes its connections. IPVS routes
            // direct-routing packets to the real server with FLOWI_FLAG_KNOWN_NH, so for an
            // on-link real server the next hop is that server, while the packet keeps the
            // virtual address as destination (NAT and tunnel packets are addressed to the
            // next hop itself, so they never match).
            Connection::NotFound => match skb.route_next_hop(family) {
                Some(hop) if hop != packet.destination => hop,
                _ => return Verdict::Accept,
            },
        };
        let Some(server) = servers.get(&real_server) else {
            return Verdict::Accept;
        };
        let stats = &self.stats[usize::from(server.stats_slot)];
        let (skb, stolen) = skb.steal();
        let relayed_icmp = packet.key.icmp_relay;
        match encap::transmit(net, family, skb, &server.config, relayed_icmp) {
            Ok(sent) => stats.record_tx(sent.bytes, sent.gso),
            Err(reason) => stats.record_drop(reason),
        }
        Verdict::Stolen(stolen)
    }
}
