// SPDX-License-Identifier: GPL-2.0

//! The real servers' counters, one copy per CPU: the hook bumps its CPU's copy for every
//! packet, so no counter's cache line bounces between CPUs; listings add the copies up.

#![deny(unsafe_code)]

use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec};
use kernel::error::Result;
use kernel::sync::Arc;

use crate::gue_core::stats::{ServerStats, StatsSnapshot};
use crate::net::percpu::{PerCpuArray, MAX_BYTES};

/// Servers whose counters share one per-CPU allocation (a power of two, so a slot's block
/// is a shift away).
const SERVERS_PER_BLOCK: usize = 512;
const _: () = assert!(SERVERS_PER_BLOCK * core::mem::size_of::<ServerStats>() <= MAX_BYTES);

/// Counters of the slots of one table version, in blocks of [`SERVERS_PER_BLOCK`]. Versions
/// share the blocks they both cover (reference-counted), so counts survive table changes;
/// a block is freed with the last version that covers it.
pub(crate) struct Counters {
    blocks: KVVec<Arc<PerCpuArray<ServerStats>>>,
}

impl Counters {
    /// Counters for slots `0..span`: `previous`'s blocks where it has them, new (zero)
    /// blocks after. Sleeps.
    pub(crate) fn covering(previous: Option<&Counters>, span: usize) -> Result<Counters> {
        let wanted = span.div_ceil(SERVERS_PER_BLOCK);
        let mut blocks = KVVec::with_capacity(wanted, GFP_KERNEL_ACCOUNT)?;
        for index in 0..wanted {
            let block = match previous.and_then(|p| p.blocks.get(index)) {
                Some(block) => block.clone(),
                None => Arc::new(PerCpuArray::new(SERVERS_PER_BLOCK, ServerStats::new)?, GFP_KERNEL_ACCOUNT)?,
            };
            blocks.push(block, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Counters { blocks })
    }

    /// This CPU's counters of `slot`.
    pub(crate) fn this_cpu(&self, slot: u32) -> Option<&ServerStats> {
        let (block, index) = Self::locate(slot);
        self.blocks.get(block)?.this_cpu().get(index)
    }

    /// The counts of `slot`, summed over CPUs.
    pub(crate) fn snapshot(&self, slot: u32) -> StatsSnapshot {
        let mut sum = StatsSnapshot::default();
        self.each_cpu(slot, |stats| sum.accumulate(&stats.snapshot()));
        sum
    }

    /// Zeroes `slot`'s counters on every CPU, for a server new in it. Nothing may count in
    /// the slot meanwhile: no published table lists a server there.
    pub(crate) fn reset(&self, slot: u32) {
        self.each_cpu(slot, ServerStats::reset);
    }

    fn each_cpu(&self, slot: u32, mut visit: impl FnMut(&ServerStats)) {
        let (block, index) = Self::locate(slot);
        if let Some(block) = self.blocks.get(block) {
            block.each_cpu().filter_map(|copy| copy.get(index)).for_each(&mut visit);
        }
    }

    const fn locate(slot: u32) -> (usize, usize) {
        let slot = slot as usize;
        (slot / SERVERS_PER_BLOCK, slot % SERVERS_PER_BLOCK)
    }
}
