// SPDX-License-Identifier: GPL-2.0

//! The real server table: a map from IPVS destination address to encapsulation settings,
//! updated copy-on-write, sized at run time.
//!
//! Servers live in an array of slots; a server's slot is its identity for the per-server
//! counters the kernel keeps outside the table (they survive copies of the table). An
//! open-addressing index (linear probing, backward-shift deletion, twice as many buckets as
//! slots, so load at most 1/2) maps address hashes to slots: lookups on the packet path cost
//! O(1) expected, whatever the table's size.
//!
//! The storage (slots and buckets) comes from the caller through [`TableStorage`]: the kernel
//! allocates it with `kvmalloc`, the userspace tests with `Vec`. A change is applied to a fresh
//! copy ([`RealServerTable::copy_from`]), which the caller publishes whole.

use core::fmt;
use core::ops::DerefMut;

use super::addr::InetAddr;
use super::config::{Command, ConfigError, EditFields, RealServerConfig};

/// Most real servers a table holds: 2^20 slots take 60 MiB (a slot and two index buckets,
/// 60 bytes, per slot of capacity).
pub const MAX_REAL_SERVERS: usize = 1 << 20;

/// Fewest slots a table has: small tables cost one page or two.
pub const MIN_CAPACITY: usize = 64;

/// One configured real server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RealServer {
    /// Its encapsulation settings.
    pub config: RealServerConfig,
    /// Its counters' index, below the table's capacity, unique in the table and fixed for the
    /// server's lifetime (edits, replacements that keep it, and copies keep it).
    pub stats_slot: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    addr: InetAddr,
    server: RealServer,
}

/// One slot of a table's storage.
#[derive(Clone, Copy)]
pub struct Slot(SlotState);

#[derive(Clone, Copy)]
enum SlotState {
    Free,
    /// Freed by the change being made. Readers of the previous table may still be counting
    /// packets in this slot until a grace period has passed, so the same change must not
    /// give it to another server; the next copy frees it (callers make the next copy only
    /// after the grace period that follows publishing this one: `RcuWriter::publish` waits).
    Retired,
    /// In use; `fresh` when the change being made allocated it (its counters start at 0).
    Used { entry: Entry, fresh: bool },
}

impl Slot {
    /// An unused slot: what storage is filled with.
    pub const FREE: Slot = Slot(SlotState::Free);
}

/// One bucket of a table's index: the slot of the server whose address hashes there (or
/// probed past it), or none.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bucket(u32);

impl Bucket {
    /// An unused bucket: what storage is filled with.
    pub const EMPTY: Bucket = Bucket(u32::MAX);
}

/// Where tables get their storage.
pub trait TableStorage {
    /// `capacity` slots.
    type Slots: DerefMut<Target = [Slot]>;
    /// `2 * capacity` buckets.
    type Buckets: DerefMut<Target = [Bucket]>;

    /// A key for a new table's address hash: random where addresses may come from someone
    /// who would like them to collide (see [`InetAddr::hash32`]).
    fn hash_key() -> u32;
    /// `len` free slots, or `None` without memory.
    fn slots(len: usize) -> Option<Self::Slots>;
    /// `len` empty buckets, or `None` without memory.
    fn buckets(len: usize) -> Option<Self::Buckets>;
}

/// Why a change was not made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// No memory for the new table.
    NoMemory,
    /// The change itself is invalid.
    Config(ConfigError),
}

/// Real servers keyed by IPVS destination address.
pub struct RealServerTable<A: TableStorage> {
    slots: A::Slots,
    buckets: A::Buckets,
    len: usize,
    /// The address hash's key, new with each table (each copy rebuilds its index).
    hash_key: u32,
    /// Where the search for a free slot starts. Allocating round-robin rather than
    /// lowest-first spreads reuse of freed slots over time.
    next_slot: usize,
}

/// The capacity of a table for `servers` servers: a power of two, at least [`MIN_CAPACITY`].
pub const fn capacity_for(servers: usize) -> usize {
    let wanted = if servers < MIN_CAPACITY { MIN_CAPACITY } else { servers };
    match wanted.checked_next_power_of_two() {
        Some(capacity) if capacity <= MAX_REAL_SERVERS => capacity,
        _ => MAX_REAL_SERVERS,
    }
}

impl<A: TableStorage> RealServerTable<A> {
    /// An empty table of `capacity` slots (rounded as [`capacity_for`]), or `None` without
    /// memory.
    pub fn with_capacity(capacity: usize) -> Option<Self> {
        let capacity = capacity_for(capacity);
        let mut slots = A::slots(capacity)?;
        let mut buckets = A::buckets(capacity.saturating_mul(2))?;
        // Whatever the storage held, the table starts empty.
        slots.fill(Slot::FREE);
        buckets.fill(Bucket::EMPTY);
        if slots.len() != capacity || buckets.len() != capacity.saturating_mul(2) {
            return None;
        }
        Some(RealServerTable { slots, buckets, len: 0, hash_key: A::hash_key(), next_slot: 0 })
    }

    /// The table `change` makes of `current`, on a copy: `current` is left as it was, and so
    /// is what readers see until the caller publishes the result. The copy has room for `adds`
    /// new servers beside `current`'s ([`Self::capacity_needed`]); should `change` still find it
    /// full (`adds` is a hint: the caller may not know), a copy twice the size is tried, up to
    /// [`MAX_REAL_SERVERS`]. `change` may so run more than once, each time on a fresh copy.
    pub fn changed<B: TableStorage>(
        current: &RealServerTable<B>,
        adds: usize,
        mut change: impl FnMut(&mut Self) -> Result<(), ConfigError>,
    ) -> Result<Self, Refusal> {
        let mut capacity = current.capacity_needed(adds);
        loop {
            let mut next = Self::with_capacity(capacity).ok_or(Refusal::NoMemory)?;
            match next.copy_from(current).and_then(|()| change(&mut next)) {
                Ok(()) => return Ok(next),
                Err(ConfigError::TableFull) if capacity < MAX_REAL_SERVERS => capacity = capacity.saturating_mul(2),
                Err(error) => return Err(Refusal::Config(error)),
            }
        }
    }

    /// Whether the table is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many servers the table holds.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// How many servers the table can hold without a bigger copy.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slots up to the last one in use: `0..span`.
    pub fn slot_span(&self) -> usize {
        self.iter_from(0).last().map_or(0, |(slot, _, _)| slot.saturating_add(1))
    }

    /// The capacity a copy of this table needs to take `adds` new servers: room for every
    /// slot in use, and beside the servers it holds (whose slots a change that removes them
    /// cannot give out again), `adds` more.
    pub fn capacity_needed(&self, adds: usize) -> usize {
        capacity_for(self.slot_span().max(self.len.saturating_add(adds)))
    }

    /// How many of `wanted`'s servers this table does not hold: what replacing it with
    /// `wanted` adds.
    pub fn missing_from<B: TableStorage>(&self, wanted: &RealServerTable<B>) -> usize {
        wanted.iter().filter(|(addr, _)| self.get(addr).is_none()).count()
    }

    /// The server for destination `addr`.
    pub fn get(&self, addr: &InetAddr) -> Option<&RealServer> {
        let bucket = self.find(addr)?;
        self.entry(self.bucket(bucket)).map(|e| &e.server)
    }

    /// The servers with their addresses, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&InetAddr, &RealServer)> {
        self.iter_from(0).map(|(_, addr, server)| (addr, server))
    }

    /// The servers in slots `first..`, with their addresses, in slot order: a listing split
    /// over several calls resumes after the last slot it showed.
    pub fn iter_from(&self, first: usize) -> impl Iterator<Item = (usize, &InetAddr, &RealServer)> {
        self.slots.iter().enumerate().skip(first).filter_map(|(slot, s)| match &s.0 {
            SlotState::Used { entry, .. } => Some((slot, &entry.addr, &entry.server)),
            _ => None,
        })
    }

    /// The slots the change being made gave to new servers: their counters must be zeroed
    /// before the table is published.
    pub fn fresh_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| matches!(s.0, SlotState::Used { fresh: true, .. }).then_some(slot))
    }

    /// Makes this table a copy of `other`, to make the next change on: same servers in the
    /// same slots; slots `other`'s change freed are free again (a grace period has passed
    /// since `other` was published). Fails with [`ConfigError::TableFull`] if a slot of
    /// `other` is beyond this table's capacity.
    pub fn copy_from<B: TableStorage>(&mut self, other: &RealServerTable<B>) -> Result<(), ConfigError> {
        self.slots.fill(Slot::FREE);
        self.buckets.fill(Bucket::EMPTY);
        self.len = 0;
        for (slot, addr, server) in other.iter_from(0) {
            if slot >= self.capacity() {
                return Err(ConfigError::TableFull);
            }
            self.insert(slot, Entry { addr: *addr, server: *server }, false);
        }
        self.next_slot = other.next_slot & self.slot_mask();
        Ok(())
    }

    /// Makes this table list exactly the servers of `wanted`, with their settings. Servers
    /// listed in both keep their slots (and so their counters); the others are removed or
    /// added. On error the table may be half changed: callers apply every change to a copy.
    pub fn replace_with<B: TableStorage>(&mut self, wanted: &RealServerTable<B>) -> Result<(), ConfigError> {
        for slot in 0..self.capacity() {
            if let Some(Slot(SlotState::Used { entry, .. })) = self.slots.get(slot).copied() {
                if wanted.get(&entry.addr).is_none() {
                    self.apply(&Command::Delete(entry.addr))?;
                }
            }
        }
        for (addr, server) in wanted.iter() {
            let command = match self.get(addr) {
                Some(_) => Command::Edit(*addr, EditFields::from(server.config)),
                None => Command::Add(*addr, server.config),
            };
            self.apply(&command)?;
        }
        Ok(())
    }

    /// Applies `cmd` to this table; on error the table is left unchanged.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), ConfigError> {
        match *cmd {
            Command::Add(addr, config) => {
                if self.find(&addr).is_some() {
                    return Err(ConfigError::AlreadyExists(addr));
                }
                let slot = self.free_slot().ok_or(ConfigError::TableFull)?;
                let stats_slot = u32::try_from(slot).map_err(|_| ConfigError::TableFull)?;
                self.insert(slot, Entry { addr, server: RealServer { config, stats_slot } }, true);
                self.next_slot = slot.wrapping_add(1) & self.slot_mask();
            }
            Command::Edit(addr, fields) => {
                let bucket = self.find(&addr).ok_or(ConfigError::NotFound(addr))?;
                let slot = self.bucket(bucket).0 as usize;
                if let Some(Slot(SlotState::Used { entry, .. })) = self.slots.get_mut(slot) {
                    entry.server.config = fields.apply_to(&entry.server.config);
                }
            }
            Command::Delete(addr) => {
                let bucket = self.find(&addr).ok_or(ConfigError::NotFound(addr))?;
                self.remove(bucket);
            }
            Command::Flush => {
                for slot in self.slots.iter_mut() {
                    if matches!(slot.0, SlotState::Used { .. }) {
                        *slot = Slot(SlotState::Retired);
                    }
                }
                self.buckets.fill(Bucket::EMPTY);
                self.len = 0;
            }
        }
        Ok(())
    }

    fn entry(&self, bucket: Bucket) -> Option<&Entry> {
        match &self.slots.get(bucket.0 as usize)?.0 {
            SlotState::Used { entry, .. } => Some(entry),
            _ => None,
        }
    }

    /// The bucket at `index`; empty if out of range (never, as indices are masked).
    fn bucket(&self, index: usize) -> Bucket {
        self.buckets.get(index).copied().unwrap_or(Bucket::EMPTY)
    }

    fn set_bucket(&mut self, index: usize, value: Bucket) {
        if let Some(bucket) = self.buckets.get_mut(index) {
            *bucket = value;
        }
    }

    fn set_slot(&mut self, index: usize, value: Slot) {
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = value;
        }
    }

    /// Bucket counts are powers of two: a hash masked with this is a bucket index.
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Capacities are powers of two: a number masked with this is a slot index.
    fn slot_mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn home(&self, addr: &InetAddr) -> usize {
        addr.hash32(self.hash_key) as usize & self.mask()
    }

    /// The index bucket holding `addr`.
    fn find(&self, addr: &InetAddr) -> Option<usize> {
        let mut bucket = self.home(addr);
        // The index is never more than half full, so an empty bucket always ends the probe;
        // the bound is only a guard.
        for _ in 0..self.buckets.len() {
            let found = self.bucket(bucket);
            if found == Bucket::EMPTY {
                return None;
            }
            if self.entry(found).is_some_and(|e| e.addr == *addr) {
                return Some(bucket);
            }
            bucket = bucket.wrapping_add(1) & self.mask();
        }
        None
    }

    /// The first free slot at or after the allocation cursor.
    fn free_slot(&self) -> Option<usize> {
        (0..self.capacity())
            .map(|i| self.next_slot.wrapping_add(i) & self.slot_mask())
            .find(|&s| matches!(self.slots.get(s), Some(Slot(SlotState::Free))))
    }

    /// Puts `entry` in the free `slot` and indexes it.
    fn insert(&mut self, slot: usize, entry: Entry, fresh: bool) {
        let mut bucket = self.home(&entry.addr);
        // The index is never full (twice as many buckets as slots): the probe ends.
        while self.bucket(bucket) != Bucket::EMPTY {
            bucket = bucket.wrapping_add(1) & self.mask();
        }
        // `slot` is below the capacity, which is at most `MAX_REAL_SERVERS`.
        self.set_bucket(bucket, Bucket(slot as u32));
        self.set_slot(slot, Slot(SlotState::Used { entry, fresh }));
        self.len = self.len.saturating_add(1);
    }

    /// Removes the server in `bucket`, retiring its slot. Later members of the probe run are
    /// shifted back, so lookups never need tombstones.
    fn remove(&mut self, bucket: usize) {
        let slot = self.bucket(bucket).0 as usize;
        self.set_slot(slot, Slot(SlotState::Retired));
        self.len = self.len.saturating_sub(1);
        let mut hole = bucket;
        let mut next = bucket;
        loop {
            next = next.wrapping_add(1) & self.mask();
            let moving = self.bucket(next);
            let Some(entry) = self.entry(moving) else {
                break;
            };
            let home = self.home(&entry.addr);
            // An entry may fill the hole only if its home bucket is not cyclically within
            // (hole, next]; otherwise moving it would put it before its home and make it
            // unreachable.
            let stays = if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !stays {
                self.set_bucket(hole, moving);
                hole = next;
            }
        }
        self.set_bucket(hole, Bucket::EMPTY);
    }
}

impl<A: TableStorage> Clone for RealServerTable<A>
where
    A::Slots: Clone,
    A::Buckets: Clone,
{
    fn clone(&self) -> Self {
        RealServerTable {
            slots: self.slots.clone(),
            buckets: self.buckets.clone(),
            len: self.len,
            hash_key: self.hash_key,
            next_slot: self.next_slot,
        }
    }
}

impl<A: TableStorage> fmt::Debug for RealServerTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
