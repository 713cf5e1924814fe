// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the IPVS GUE encapsulation module: header encoding,
//! checksums, MTU arithmetic, the configuration model, its netlink encoding
//! and the real server table.
//!
//! Everything here is `core`-only (no `alloc`, no `unsafe`, no panics on any
//! input) so the same files build inside the kernel module and in the
//! userspace `gue-core` crate, where they are unit-tested.

#![deny(unsafe_code)]

pub mod addr;
pub mod checksum;
pub mod config;
pub mod ecn;
pub mod error;
pub mod flow;
pub mod flowlabel;
pub mod gue;
pub mod headers;
pub mod listing;
pub mod mtu;
pub mod netlink;
pub mod ports;
pub mod stats;
pub mod table;
pub mod text;
