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
