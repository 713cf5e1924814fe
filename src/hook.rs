// SPDX-License-Identifier: GPL-2.0

//! The LOCAL_OUT hook: which packets are ours.
//!
//! IPVS sends direct-routing packets through `NF_HOOK(LOCAL_OUT)` with `skb->ipvs_property`
//! set, both the packets it schedules and the ICMP errors it relays to a connection's real
//! server. Such a packet is ours when its real server is in this namespace's GUE table;
//! everything else passes untouched after one bit test (or, while the table is empty, one
//! pointer load). Our own outer packets pass here too (IPVS's hooks skip them by the same
//! bit) and leave after a per-CPU compare.

#![deny(unsafe_code)]

use crate::encap;
use crate::gue_core::flow;
use crate::net::ipvs::{self, Connection};
use crate::net::netfilter::{HookSkb, LocalOutHook, Verdict};
use crate::net::rcu::RcuReadGuard;
use crate::net::Net;
use crate::netns::Netns;

impl LocalOutHook for Netns {
    fn local_out(&self, net: &Net, skb: HookSkb<'_>) -> Verdict {
        if !skb.ipvs_property() || skb.is_own_output() {
            return skb.accept();
        }
        let rcu = RcuReadGuard::new();
        let published = self.servers.read(&rcu);
        let servers = &published.table;
        // A real server that is this host gets the packet delivered locally by IPVS itself
        // (`ip_vs_send_or_cont(.., local)` accepts it into LOCAL_OUT), as C's tunnel path does.
        if servers.is_empty() || skb.route_is_local() {
            return skb.accept();
        }
        let Some(packet) = ipvs::classify(&skb, skb.family()) else {
            return skb.accept();
        };
        let real_server = match skb.known_next_hop() {
            // IPVS routes direct routing with FLOWI_FLAG_KNOWN_NH, so for an on-link real
            // server the route names it while the packet keeps the virtual address as its
            // destination (NAT and tunnel packets are addressed to their next hop itself):
            // no connection lookup needed. This also covers one-packet scheduling (`ipvsadm
            // -o`), whose connections are never hashed.
            Some(hop) if hop != packet.destination && flow::ipvs_schedules(packet.key.protocol) => hop,
            // A real server behind a router has the router as next hop: the connection
            // table says which server it is.
            _ => match ipvs::connection(net, skb.family(), &packet.key) {
                Connection::DirectRoute(addr) => addr,
                Connection::OtherMethod | Connection::NotFound => return skb.accept(),
            },
        };
        let Some(server) = servers.get(&real_server) else {
            return skb.accept();
        };
        let (skb, verdict) = skb.steal();
        let route_cache = published.slots.route_cache(server.stats_slot);
        let sent = encap::transmit(net, skb, &server.config, route_cache, &rcu, packet.key.icmp_relay);
        // After the send: this CPU's counters, on the CPU the sender now runs on.
        if let Some(stats) = published.slots.counters(server.stats_slot) {
            match sent {
                Ok(sent) => stats.record_tx(sent.bytes, sent.gso),
                Err(reason) => stats.record_drop(reason),
            }
        }
        verdict
    }
}
