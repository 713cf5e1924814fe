// SPDX-License-Identifier: GPL-2.0

//! What the module keeps per real server slot beside the table: counters, one copy per CPU
//! (the hook bumps its CPU's copy for every packet, so no counter's cache line bounces
//! between CPUs; listings add the copies up), and the cached route to the server's tunnel
//! endpoint.

#![deny(unsafe_code)]

use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec};
use kernel::error::Result;
use kernel::sync::Arc;

use crate::gue_core::stats::{ServerStats, StatsSnapshot};
use crate::net::percpu::{PerCpuArray, MAX_BYTES};
use crate::net::route::RouteCache;

/// Servers whose state shares one allocation (a power of two, so a slot's block is a shift
/// away).
const SERVERS_PER_BLOCK: usize = 512;
const _: () = assert!(SERVERS_PER_BLOCK * core::mem::size_of::<ServerStats>() <= MAX_BYTES);

/// The state of [`SERVERS_PER_BLOCK`] slots.
struct SlotBlock {
    stats: PerCpuArray<ServerStats>,
    routes: KVVec<RouteCache>,
}

impl SlotBlock {
    fn new() -> Result<Self> {
        let stats = PerCpuArray::new(SERVERS_PER_BLOCK, ServerStats::new)?;
        let mut routes = KVVec::with_capacity(SERVERS_PER_BLOCK, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..SERVERS_PER_BLOCK {
            routes.push(RouteCache::new(), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { stats, routes })
    }
}

/// The slot state of one table version, in blocks of [`SERVERS_PER_BLOCK`]. Versions share
/// the blocks they both cover (reference-counted), so counts and cached routes survive table
/// changes; a block is freed with the last version that covers it, which no reader can
/// reach any more (versions are freed a grace period after they are replaced, or after the
/// hooks are gone).
pub(crate) struct ServerSlots {
    blocks: KVVec<Arc<SlotBlock>>,
}

impl ServerSlots {
    /// State for slots `0..span`: `previous`'s blocks where it has them, new (zero, empty)
    /// blocks after. Sleeps.
    pub(crate) fn covering(previous: Option<&ServerSlots>, span: usize) -> Result<ServerSlots> {
        let wanted = span.div_ceil(SERVERS_PER_BLOCK);
        let mut blocks = KVVec::with_capacity(wanted, GFP_KERNEL_ACCOUNT)?;
        for index in 0..wanted {
            let block = match previous.and_then(|p| p.blocks.get(index)) {
                Some(block) => block.clone(),
                None => Arc::new(SlotBlock::new()?, GFP_KERNEL_ACCOUNT)?,
            };
            blocks.push(block, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(ServerSlots { blocks })
    }

    /// This CPU's counters of `slot`.
    pub(crate) fn counters(&self, slot: u32) -> Option<&ServerStats> {
        let (block, index) = Self::locate(slot);
        self.blocks.get(block)?.stats.this_cpu().get(index)
    }

    /// The route cache of `slot`.
    pub(crate) fn route_cache(&self, slot: u32) -> Option<&RouteCache> {
        let (block, index) = Self::locate(slot);
        self.blocks.get(block)?.routes.get(index)
    }

    /// The counts of `slot`, summed over CPUs.
    pub(crate) fn snapshot(&self, slot: u32) -> StatsSnapshot {
        let mut sum = StatsSnapshot::default();
        self.each_cpu(slot, |stats| sum.accumulate(&stats.snapshot()));
        sum
    }

    /// Zeroes `slot`'s counters on every CPU and forgets its route, for a server new in it.
    /// Nothing may count in the slot meanwhile: no published table lists a server there.
    pub(crate) fn reset(&self, slot: u32) {
        self.each_cpu(slot, ServerStats::reset);
        if let Some(route_cache) = self.route_cache(slot) {
            route_cache.clear();
        }
    }

    fn each_cpu(&self, slot: u32, mut visit: impl FnMut(&ServerStats)) {
        let (block, index) = Self::locate(slot);
        if let Some(block) = self.blocks.get(block) {
            block.stats.each_cpu().filter_map(|copy| copy.get(index)).for_each(&mut visit);
        }
    }

    const fn locate(slot: u32) -> (usize, usize) {
        let slot = slot as usize;
        (slot / SERVERS_PER_BLOCK, slot % SERVERS_PER_BLOCK)
    }
}
