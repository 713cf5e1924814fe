// SPDX-License-Identifier: GPL-2.0

//! Per-real-server counters.

use core::sync::atomic::{AtomicU64, Ordering};

pub use super::listing::{format_listing_header, format_listing_row};

/// Why a packet for a real server was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DropReason {
    /// Too big for the path MTU once encapsulated (ICMP error sent).
    Pmtu,
    /// No route to the outer destination.
    NoRoute,
    /// Could not get headroom for the outer headers (allocation failure).
    NoHeadroom,
    /// The inner packet was malformed or of an unexpected kind.
    BadPacket,
}

/// Live counters of one real server on one CPU (the kernel keeps one per CPU per server, and
/// a listing sums them).
///
/// A CPU's packets mostly bump its own copy, so no cache line bounces between CPUs; the
/// counters are still atomic because a preempted sender may resume on another CPU while
/// bumping the copy it started on. Counters are independent statistics, so `Relaxed`
/// ordering suffices; a snapshot is not atomic across fields.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Packets encapsulated and sent (a GSO packet counts once).
    pub packets: AtomicU64,
    /// Bytes sent, outer headers included.
    pub bytes: AtomicU64,
    /// How many of `packets` were GSO super-packets.
    pub gso_packets: AtomicU64,
    /// Drops for [`DropReason::Pmtu`].
    pub drop_pmtu: AtomicU64,
    /// Drops for [`DropReason::NoRoute`].
    pub drop_no_route: AtomicU64,
    /// Drops for [`DropReason::NoHeadroom`].
    pub drop_no_headroom: AtomicU64,
    /// Drops for [`DropReason::BadPacket`].
    pub drop_bad_packet: AtomicU64,
}

/// A plain copy of [`ServerStats`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct StatsSnapshot {
    /// See [`ServerStats::packets`].
    pub packets: u64,
    /// See [`ServerStats::bytes`].
    pub bytes: u64,
    /// See [`ServerStats::gso_packets`].
    pub gso_packets: u64,
    /// See [`ServerStats::drop_pmtu`].
    pub drop_pmtu: u64,
    /// See [`ServerStats::drop_no_route`].
    pub drop_no_route: u64,
    /// See [`ServerStats::drop_no_headroom`].
    pub drop_no_headroom: u64,
    /// See [`ServerStats::drop_bad_packet`].
    pub drop_bad_packet: u64,
}

impl StatsSnapshot {
    /// Adds `other`'s counts (another CPU's) to these, wrapping as the counters do.
    pub fn accumulate(&mut self, other: &StatsSnapshot) {
        let sum = |a: &mut u64, b: u64| *a = a.wrapping_add(b);
        sum(&mut self.packets, other.packets);
        sum(&mut self.bytes, other.bytes);
        sum(&mut self.gso_packets, other.gso_packets);
        sum(&mut self.drop_pmtu, other.drop_pmtu);
        sum(&mut self.drop_no_route, other.drop_no_route);
        sum(&mut self.drop_no_headroom, other.drop_no_headroom);
        sum(&mut self.drop_bad_packet, other.drop_bad_packet);
    }
}

impl ServerStats {
    /// All counters zero.
    pub const fn new() -> Self {
        ServerStats {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            gso_packets: AtomicU64::new(0),
            drop_pmtu: AtomicU64::new(0),
            drop_no_route: AtomicU64::new(0),
            drop_no_headroom: AtomicU64::new(0),
            drop_bad_packet: AtomicU64::new(0),
        }
    }

    /// Sets every counter to zero (a newly allocated stats slot).
    pub fn reset(&self) {
        for counter in self.counters() {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Counts one sent packet of `bytes` bytes (wrapping, never panicking).
    pub fn record_tx(&self, bytes: u64, gso: bool) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if gso {
            self.gso_packets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one dropped packet.
    pub fn record_drop(&self, reason: DropReason) {
        self.drop_counter(reason).fetch_add(1, Ordering::Relaxed);
    }

    /// The counter for `reason`.
    pub const fn drop_counter(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::Pmtu => &self.drop_pmtu,
            DropReason::NoRoute => &self.drop_no_route,
            DropReason::NoHeadroom => &self.drop_no_headroom,
            DropReason::BadPacket => &self.drop_bad_packet,
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            packets: get(&self.packets),
            bytes: get(&self.bytes),
            gso_packets: get(&self.gso_packets),
            drop_pmtu: get(&self.drop_pmtu),
            drop_no_route: get(&self.drop_no_route),
            drop_no_headroom: get(&self.drop_no_headroom),
            drop_bad_packet: get(&self.drop_bad_packet),
        }
    }

    fn counters(&self) -> [&AtomicU64; 7] {
        [
            &self.packets,
            &self.bytes,
            &self.gso_packets,
            &self.drop_pmtu,
            &self.drop_no_route,
            &self.drop_no_headroom,
            &self.drop_bad_packet,
        ]
    }
}
