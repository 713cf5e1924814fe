// SPDX-License-Identifier: GPL-2.0

//! The LOCAL_OUT hook: which packets are ours.
//!
//! IPVS sends direct-routing packets through `NF_HOOK(LOCAL_OUT)` with `skb->ipvs_property`
//! set. Such a packet is ours when its IPVS connection's real server is in this namespace's
//! GUE table; everything else passes untouched after one bit test (or, while the table is
//! empty, one pointer load).

use crate::encap;
use crate::gue_core::addr::Family;
use crate::net::ipvs;
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
        // The connection table, not the route's next hop: a real server behind a router has
        // the router as next hop.
        let Some(real_server) = ipvs::flow_key(&skb, family)
            .and_then(|key| ipvs::direct_route_destination(net, &key))
        else {
            return Verdict::Accept;
        };
        let Some(server) = servers.get(&real_server) else {
            return Verdict::Accept;
        };
        let stats = &self.stats[usize::from(server.stats_slot)];
        let (skb, stolen) = skb.steal();
        match encap::transmit(net, family, skb, &server.config) {
            Ok(sent) => stats.record_tx(sent.bytes, sent.gso),
            Err(reason) => stats.record_drop(reason),
        }
        Verdict::Stolen(stolen)
    }
}
