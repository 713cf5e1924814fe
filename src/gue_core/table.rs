// SPDX-License-Identifier: GPL-2.0

//! The real server table: a fixed-size map from IPVS destination address to
//! encapsulation settings, updated copy-on-write.
//!
//! Servers live in an array indexed by their stats slot, so the slot is the
//! server's identity for the per-server counters the kernel keeps outside
//! the table (they survive updates that replace the whole table). A small
//! open-addressing index (linear probing, backward-shift deletion, load at
//! most 1/2) maps address hashes to slots for O(1) expected lookups on the
//! packet path.

use core::fmt;

use super::addr::InetAddr;
use super::config::{Command, ConfigError, EditFields, RealServerConfig};

/// Most real servers the table holds.
pub const MAX_REAL_SERVERS: usize = 64;

/// Hash index buckets: a power of two, twice the capacity so probe
/// sequences stay short.
const INDEX_SLOTS: usize = 2 * MAX_REAL_SERVERS;
const INDEX_MASK: usize = INDEX_SLOTS - 1;
/// Marks an unused index bucket.
const EMPTY: u8 = u8::MAX;

/// One configured real server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RealServer {
    /// Its encapsulation settings.
    pub config: RealServerConfig,
    /// Its counters' index in `0..MAX_REAL_SERVERS`, unique in the table and
    /// fixed for the server's lifetime (edits keep it).
    pub stats_slot: u8,
}

#[derive(Clone, Copy)]
struct Entry {
    addr: InetAddr,
    server: RealServer,
}

/// A set of stats slots (bit `n` = slot `n`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SlotSet(u64);

impl SlotSet {
    /// The empty set.
    pub const EMPTY: SlotSet = SlotSet(0);

    /// The set as a bitmap.
    pub const fn bits(&self) -> u64 {
        self.0
    }

    fn insert(&mut self, slot: u8) {
        if slot < 64 {
            self.0 |= 1 << slot;
        }
    }
}

/// What [`RealServerTable::apply_in_place`] did to the stats slots: the caller zeroes
/// the counters of `allocated` slots before publishing the new table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Applied {
    /// Slots that now belong to a new server.
    pub allocated: SlotSet,
    /// Slots whose server was removed.
    pub freed: SlotSet,
}

impl Applied {
    /// Adds what `later` did to what `self` records.
    pub fn merge(&mut self, later: Applied) {
        self.allocated.0 |= later.allocated.0;
        self.freed.0 |= later.freed.0;
    }
}

/// Real servers keyed by IPVS destination address. Fixed size (a few KiB),
/// no heap, cheap to clone.
#[derive(Clone)]
pub struct RealServerTable {
    /// Indexed by stats slot.
    entries: [Option<Entry>; MAX_REAL_SERVERS],
    /// Hash buckets holding a stats slot, or `EMPTY`.
    index: [u8; INDEX_SLOTS],
    len: u8,
    /// Where the search for a free slot starts. Allocating round-robin
    /// rather than lowest-first delays reuse of a just-freed slot, whose
    /// counters readers of the previous table may still be bumping during
    /// the RCU grace period.
    next_slot: u8,
}

impl Default for RealServerTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RealServerTable {
    /// An empty table.
    pub const fn new() -> Self {
        RealServerTable {
            entries: [None; MAX_REAL_SERVERS],
            index: [EMPTY; INDEX_SLOTS],
            len: 0,
            next_slot: 0,
        }
    }

    /// Whether the table is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The server for destination `addr`.
    pub fn get(&self, addr: &InetAddr) -> Option<&RealServer> {
        let bucket = self.find(addr)?;
        let slot = *self.index.get(bucket)?;
        self.entry(slot).map(|e| &e.server)
    }

    /// The servers with their addresses, in stats slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&InetAddr, &RealServer)> {
        self.iter_from(0).map(|(_, addr, server)| (addr, server))
    }

    /// The servers in slots `first..`, with their addresses, in stats slot order: a listing
    /// split over several calls resumes after the last slot it showed.
    pub fn iter_from(&self, first: usize) -> impl Iterator<Item = (usize, &InetAddr, &RealServer)> {
        self.entries
            .iter()
            .enumerate()
            .skip(first)
            .filter_map(|(slot, e)| e.as_ref().map(|e| (slot, &e.addr, &e.server)))
    }

    /// How many servers the table holds.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Most servers the table holds.
    pub const fn capacity(&self) -> usize {
        MAX_REAL_SERVERS
    }

    /// Makes this table list exactly the servers of `wanted`, with their settings. Servers
    /// listed in both keep their stats slots (and so their counters); the others are removed
    /// or added. Works in place: on error (none is possible while `wanted` fits) the table may
    /// be half changed, so callers apply it to a copy, as they do every command.
    pub fn replace_with(&mut self, wanted: &RealServerTable) -> Result<Applied, ConfigError> {
        let mut applied = Applied::default();
        for slot in 0..MAX_REAL_SERVERS {
            let Some(entry) = self.entries[slot] else { continue };
            if wanted.get(&entry.addr).is_none() {
                applied.merge(self.apply_in_place(&Command::Delete(entry.addr))?);
            }
        }
        for (addr, server) in wanted.iter() {
            let command = match self.get(addr) {
                Some(_) => Command::Edit(
                    *addr,
                    EditFields {
                        port: Some(server.config.port),
                        csum: Some(server.config.csum),
                        outer: Some(server.config.outer),
                    },
                ),
                None => Command::Add(*addr, server.config),
            };
            applied.merge(self.apply_in_place(&command)?);
        }
        Ok(applied)
    }

    /// The stats slots in use.
    pub fn used_slots(&self) -> SlotSet {
        let mut set = SlotSet::EMPTY;
        for (_, server) in self.iter() {
            set.insert(server.stats_slot);
        }
        set
    }

    /// Applies `cmd` to this table; on error the table is left unchanged.
    /// Lets the kernel fill a heap copy without a large stack temporary.
    pub fn apply_in_place(&mut self, cmd: &Command) -> Result<Applied, ConfigError> {
        let mut applied = Applied::default();
        match *cmd {
            Command::Add(addr, config) => {
                if self.find(&addr).is_some() {
                    return Err(ConfigError::AlreadyExists(addr));
                }
                let slot = self.free_slot().ok_or(ConfigError::TableFull)?;
                self.insert(
                    addr,
                    RealServer {
                        config,
                        stats_slot: slot,
                    },
                );
                applied.allocated.insert(slot);
            }
            Command::Edit(addr, fields) => {
                let bucket = self.find(&addr).ok_or(ConfigError::NotFound(addr))?;
                let entry = self
                    .index
                    .get(bucket)
                    .and_then(|&s| self.entries.get_mut(usize::from(s)));
                if let Some(Some(entry)) = entry {
                    entry.server.config = fields.apply_to(&entry.server.config);
                }
            }
            Command::Delete(addr) => {
                let bucket = self.find(&addr).ok_or(ConfigError::NotFound(addr))?;
                applied.freed.insert(self.remove(bucket));
            }
            Command::Flush => {
                applied.freed = self.used_slots();
                self.entries = [None; MAX_REAL_SERVERS];
                self.index = [EMPTY; INDEX_SLOTS];
                self.len = 0;
            }
            Command::Nothing => {}
        }
        Ok(applied)
    }

    fn entry(&self, slot: u8) -> Option<&Entry> {
        self.entries.get(usize::from(slot))?.as_ref()
    }

    fn home(addr: &InetAddr) -> usize {
        addr.hash32() as usize & INDEX_MASK
    }

    /// The index bucket holding `addr`.
    fn find(&self, addr: &InetAddr) -> Option<usize> {
        let mut bucket = Self::home(addr);
        // The index is never full, so an empty bucket always ends the probe;
        // the bound is only a guard.
        for _ in 0..INDEX_SLOTS {
            let slot = self.index[bucket];
            if slot == EMPTY {
                return None;
            }
            if self.entry(slot).is_some_and(|e| e.addr == *addr) {
                return Some(bucket);
            }
            bucket = (bucket + 1) & INDEX_MASK;
        }
        None
    }

    /// The first free stats slot at or after the allocation cursor.
    fn free_slot(&self) -> Option<u8> {
        (0..MAX_REAL_SERVERS)
            .map(|i| ((usize::from(self.next_slot) + i) % MAX_REAL_SERVERS) as u8)
            .find(|&s| matches!(self.entries.get(usize::from(s)), Some(None)))
    }

    fn insert(&mut self, addr: InetAddr, server: RealServer) {
        let slot = server.stats_slot;
        let mut bucket = Self::home(&addr);
        while self.index[bucket] != EMPTY {
            bucket = (bucket + 1) & INDEX_MASK;
        }
        self.index[bucket] = slot;
        if let Some(e) = self.entries.get_mut(usize::from(slot)) {
            *e = Some(Entry { addr, server });
        }
        self.len = self.len.saturating_add(1);
        self.next_slot = ((usize::from(slot) + 1) % MAX_REAL_SERVERS) as u8;
    }

    /// Removes the server in `bucket` and returns its stats slot. Later
    /// members of the probe run are shifted back, so lookups never need
    /// tombstones.
    fn remove(&mut self, bucket: usize) -> u8 {
        let slot = self.index[bucket];
        if let Some(e) = self.entries.get_mut(usize::from(slot)) {
            *e = None;
        }
        self.len = self.len.saturating_sub(1);
        let mut hole = bucket;
        let mut next = bucket;
        loop {
            next = (next + 1) & INDEX_MASK;
            let moving = self.index[next];
            let Some(entry) = self.entry(moving) else {
                break;
            };
            let home = Self::home(&entry.addr);
            // An entry may fill the hole only if its home bucket is not
            // cyclically within (hole, next]; otherwise moving it would put
            // it before its home and make it unreachable.
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.index[hole] = moving;
                hole = next;
            }
        }
        self.index[hole] = EMPTY;
        slot
    }
}

impl fmt::Debug for RealServerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
