// SPDX-License-Identifier: GPL-2.0

//! Where the module's real server tables live: `kvmalloc`, since a 100 000-server table
//! takes megabytes.

#![deny(unsafe_code)]

use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec};

use crate::gue_core::table::{Bucket, RealServerTable, Slot, TableStorage};

/// [`TableStorage`] from `kvmalloc` (`kmalloc` for small tables, `vmalloc` beyond).
pub(crate) struct Kvmalloc;

impl TableStorage for Kvmalloc {
    type Slots = KVVec<Slot>;
    type Buckets = KVVec<Bucket>;

    fn hash_key() -> u32 {
        crate::net::random_u32()
    }

    fn slots(len: usize) -> Option<KVVec<Slot>> {
        KVVec::from_elem(Slot::FREE, len, GFP_KERNEL_ACCOUNT).ok()
    }

    fn buckets(len: usize) -> Option<KVVec<Bucket>> {
        KVVec::from_elem(Bucket::EMPTY, len, GFP_KERNEL_ACCOUNT).ok()
    }
}

/// A real server table in kernel memory.
pub(crate) type Table = RealServerTable<Kvmalloc>;
