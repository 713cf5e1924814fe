// SPDX-License-Identifier: GPL-2.0

//! Userspace build of the `ipvs_gue` kernel module's pure logic.
//!
//! The sources live in `src/gue_core/` at the repository root and are
//! compiled here unchanged, `#![no_std]` and without `alloc`, exactly as the
//! kernel builds them; this crate exists so they can be tested with cargo.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

#[path = "../../../src/gue_core/mod.rs"]
mod gue_core_impl;

pub use gue_core_impl::*;

/// Address text, parsed by `std::net` (the module takes addresses as bytes).
#[cfg(feature = "std")]
mod addr_text {
    extern crate std;

    use std::net::{AddrParseError, IpAddr};

    use crate::addr::InetAddr;

    impl From<IpAddr> for InetAddr {
        fn from(addr: IpAddr) -> InetAddr {
            match addr {
                IpAddr::V4(v4) => InetAddr::v4(v4.octets()),
                IpAddr::V6(v6) => InetAddr::v6(v6.octets()),
            }
        }
    }

    impl InetAddr {
        /// Parses IPv4 or IPv6 text as `std::net` does.
        pub fn parse(text: &str) -> Result<InetAddr, AddrParseError> {
            text.parse::<IpAddr>().map(InetAddr::from)
        }
    }
}

/// Table storage on the userspace heap (the kernel uses `kvmalloc`).
#[cfg(feature = "std")]
pub mod heap {
    extern crate std;

    use std::vec::Vec;

    use crate::table::{Bucket, RealServerTable, Slot, TableStorage};

    /// [`TableStorage`] in `Vec`s.
    #[derive(Debug)]
    pub struct Heap;

    impl TableStorage for Heap {
        type Slots = Vec<Slot>;
        type Buckets = Vec<Bucket>;

        /// Fixed, so that tests are reproducible (the kernel's is random).
        fn hash_key() -> u32 {
            0x2545_f491
        }

        fn slots(len: usize) -> Option<Vec<Slot>> {
            Some(std::vec![Slot::FREE; len])
        }

        fn buckets(len: usize) -> Option<Vec<Bucket>> {
            Some(std::vec![Bucket::EMPTY; len])
        }
    }

    /// A table on the heap.
    pub type HeapTable = RealServerTable<Heap>;

    /// An empty table of the smallest capacity.
    pub fn empty_table() -> HeapTable {
        HeapTable::with_capacity(0).expect("Vec allocation aborts rather than fails")
    }
}
