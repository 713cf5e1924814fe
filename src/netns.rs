// SPDX-License-Identifier: GPL-2.0

//! What the module keeps per network namespace: the GUE real server table (read lock-free by
//! the packet hook), per-server counters, and the read-only listing file that shows them.

#![deny(unsafe_code)]

use core::fmt;

use kernel::alloc::{flags::GFP_KERNEL, flags::GFP_KERNEL_ACCOUNT, KBox};
use kernel::c_str;
use kernel::error::{code::ENOMEM, Error, Result};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::gue_core::addr::InetAddr;
use crate::gue_core::config::ConfigError;
use crate::gue_core::stats::{format_listing_header, format_listing_row, StatsSnapshot};
use crate::gue_core::table::{RealServer, Refusal, MAX_REAL_SERVERS};
use crate::net::netfilter::Registration;
use crate::net::pernet::{Namespace, PernetId, PernetState};
use crate::net::proc::{ProcEntry, ProcFileHandler, SeqFile};
use crate::net::rcu::{RcuBox, RcuReadGuard};
use crate::slots::ServerSlots;
use crate::table_storage::Table;

/// A version of the configuration, published whole.
pub(crate) struct Published {
    /// Real servers by IPVS destination address.
    pub(crate) table: Table,
    /// The counters and cached routes of the table's slots; shared with the versions before
    /// and after.
    pub(crate) slots: ServerSlots,
    /// Bumped by every change, never 0; published with the table it numbers, so a listing
    /// read under one RCU guard never pairs a table with another version's number.
    generation: u32,
}

/// One namespace's GUE configuration and counters.
#[pin_data]
pub(crate) struct Netns {
    /// The configuration; replaced whole on every change.
    #[pin]
    pub(crate) servers: RcuBox<Published, ()>,
}

/// A consistent view of one version of the configuration, for listings: valid inside the
/// RCU read-side section it was taken in.
pub(crate) struct Listing<'a> {
    published: &'a Published,
}

impl Listing<'_> {
    pub(crate) fn generation(&self) -> u32 {
        self.published.generation
    }

    /// The servers in slots `first..`, in slot order, with their counters.
    pub(crate) fn servers_from(
        &self,
        first: usize,
    ) -> impl Iterator<Item = (usize, &InetAddr, &RealServer, StatsSnapshot)> + '_ {
        self.published
            .table
            .iter_from(first)
            .map(|(slot, addr, server)| (slot, addr, server, self.published.slots.snapshot(server.stats_slot)))
    }
}

/// The table's size and version, as `table-get` shows them.
#[derive(Clone, Copy)]
pub(crate) struct TableSummary {
    /// Bumped by every published change; never 0.
    pub(crate) generation: u32,
    pub(crate) count: usize,
    /// Most servers the table may hold.
    pub(crate) capacity: usize,
}

impl Published {
    fn summary(&self) -> TableSummary {
        TableSummary { generation: self.generation, count: self.table.len(), capacity: MAX_REAL_SERVERS }
    }
}

impl Netns {
    fn new() -> Result<impl PinInit<Self, Error>> {
        let table = Table::with_capacity(0).ok_or(ENOMEM)?;
        let slots = ServerSlots::covering(None, table.slot_span())?;
        let first = KBox::new(Published { table, slots, generation: 1 }, GFP_KERNEL_ACCOUNT)?;
        Ok(try_pin_init!(Self {
            servers <- RcuBox::new(first, new_mutex!(())),
        }? Error))
    }

    /// Applies `change` to a copy of the table and publishes the copy only if it succeeds:
    /// a refused change leaves the configuration exactly as it was. `adds` says how many
    /// servers the change may add to the current table (sizes the copy; a hint), and
    /// `change` may run more than once (on a bigger copy when one is full). `announce` runs
    /// after the change is published, before the next writer's change: announcements keep
    /// their order.
    pub(crate) fn update(
        &self,
        adds: impl FnOnce(&Table) -> usize,
        change: impl FnMut(&mut Table) -> core::result::Result<(), ConfigError>,
        announce: impl FnOnce(&TableSummary),
    ) -> core::result::Result<TableSummary, Refusal> {
        let mut writer = self.servers.write();
        // Under the writers' lock the current version cannot change, so the copy is made
        // outside any RCU read-side section: allocating it may sleep.
        let current = writer.current();
        let table = Table::changed(&current.table, adds(&current.table), change)?;
        let slots = ServerSlots::covering(Some(&current.slots), table.slot_span()).map_err(|_| Refusal::NoMemory)?;
        // A fresh slot was free or retired before this change; readers of the current
        // version stopped counting in it when the change that retired it was published.
        for slot in table.fresh_slots() {
            slots.reset(slot as u32);
        }
        let generation = match current.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        let next =
            KBox::new(Published { table, slots, generation }, GFP_KERNEL_ACCOUNT).map_err(|_| Refusal::NoMemory)?;
        let summary = next.summary();
        writer.publish(next);
        announce(&summary);
        Ok(summary)
    }

    /// Calls `show` with a consistent view of the current configuration, inside an RCU
    /// read-side section: `show` must not sleep.
    pub(crate) fn listing<R>(&self, show: impl FnOnce(&Listing<'_>) -> R) -> R {
        let rcu = RcuReadGuard::new();
        show(&Listing { published: self.servers.read(&rcu) })
    }

    /// The table's size and version.
    pub(crate) fn summary(&self) -> TableSummary {
        self.listing(|listing| listing.published.summary())
    }

    /// The server listed for `addr`, with its counters.
    pub(crate) fn server(&self, addr: &InetAddr) -> Option<(RealServer, StatsSnapshot)> {
        self.listing(|listing| {
            let server = *listing.published.table.get(addr)?;
            Some((server, listing.published.slots.snapshot(server.stats_slot)))
        })
    }
}

impl ProcFileHandler for Netns {
    fn show(&self, out: &mut SeqFile) -> fmt::Result {
        format_listing_header(out)?;
        self.listing(|listing| {
            listing.servers_from(0).try_for_each(|(_, addr, server, stats)| format_listing_row(out, addr, server, &stats))
        })
    }
}

/// The `net_generic` id of [`GueNamespaces`].
static NETNS_ID: PernetId = PernetId::new();

/// Everything the module holds for one namespace. The hooks are unregistered first
/// (`quiesce`); on drop, the file and the hooks each wait for their running callbacks before
/// they release the state they share.
pub(crate) struct NetnsSlot<'ns> {
    _proc: ProcEntry<'ns, Netns>,
    hooks: Registration<'ns, Netns>,
    /// For the netlink family, whose callbacks reach the state through the slot.
    state: Arc<Netns>,
}

impl NetnsSlot<'_> {
    pub(crate) fn netns(&self) -> &Netns {
        &self.state
    }
}

/// The module's per-namespace subsystem.
pub(crate) struct GueNamespaces;

impl PernetState for GueNamespaces {
    type State<'ns> = NetnsSlot<'ns>;

    fn id() -> &'static PernetId {
        &NETNS_ID
    }

    fn init<'ns>(ns: &Namespace<'ns>) -> Result<KBox<NetnsSlot<'ns>>> {
        let state = Arc::pin_init(Netns::new()?, GFP_KERNEL)?;
        let hooks = Registration::register(ns, state.clone())?;
        let proc = ProcEntry::create(ns, c_str!("ipvs_gue"), state.clone())?;
        Ok(KBox::new(NetnsSlot { _proc: proc, hooks, state }, GFP_KERNEL)?)
    }

    /// Unhooks every namespace of a teardown batch before any is dropped: unloading with many
    /// namespaces (or destroying many at once) then waits for one grace period, not one each.
    fn quiesce(slot: &mut NetnsSlot<'_>) {
        slot.hooks.unregister();
    }
}
