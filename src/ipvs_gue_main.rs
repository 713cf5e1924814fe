// SPDX-License-Identifier: GPL-2.0

//! ipvs_gue: Generic UDP Encapsulation (GUE) transmit for IPVS real servers, in Rust.
//!
//! IPVS schedules a connection to a real server in direct-routing mode (`ipvsadm ... -g`);
//! if that real server is listed in the namespace's `/proc/net/ipvs_gue`, this module takes
//! the packet at LOCAL_OUT and sends it inside IP/UDP/GUE instead, with every sk_buff field
//! set for software GSO and checksum offload. See docs/design.md.

#![deny(unsafe_code)]

use kernel::prelude::*;

// `unsafe` lives only in the raw bindings and the abstraction layer `net`; everything above
// them denies it.
#[allow(unsafe_code)]
mod bindings;
mod encap;
// Shared verbatim with the userspace crate, whose CLI and tests use the parts the module does
// not; its `pub` API is crate-private here.
#[allow(unreachable_pub)]
#[path = "gue_core/mod.rs"]
mod gue_core;
mod hook;
#[allow(unsafe_code)]
mod net;
mod netlink;
mod netns;
mod slots;
mod table_storage;

module! {
    type: IpvsGue,
    name: "ipvs_gue",
    author: "ipvs-gue developers",
    description: "GUE encapsulation for IPVS direct-routing real servers",
    license: "GPL",
}

struct IpvsGue {
    /// The per-namespace state (hooks, proc file) and the netlink family that configures it.
    _family: net::genetlink::Registration<netns::GueNamespaces>,
    /// Dropped after `_family` (fields drop in order): once no namespace state is left, waits
    /// for the route cache entries still being freed.
    _callbacks: net::rcu::CallbackBarrier,
}

impl kernel::Module for IpvsGue {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // Made first, so that it also waits if registering fails after traffic began.
        let callbacks = net::rcu::CallbackBarrier::new();
        // Last fallible step: dumps may start as soon as the family is registered.
        let family = net::genetlink::Registration::register(module)?;
        if cfg!(reproduce_inner_mac_bug) {
            pr_warn!("TEST BUILD: reproduces the 2023 inner_mac_header bug; GSO packets WILL be dropped\n");
        }
        pr_info!("loaded: GUE for IPVS real servers, configure via generic netlink family ipvs_gue (ipvs-gue-ctl), list in /proc/net/ipvs_gue\n");
        Ok(IpvsGue { _family: family, _callbacks: callbacks })
    }
}

impl Drop for IpvsGue {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
