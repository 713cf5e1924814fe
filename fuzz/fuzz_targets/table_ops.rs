// SPDX-License-Identifier: GPL-2.0
//! The real server table driven by compact binary commands, so that short
//! inputs fill it (64 slots to start with) and make the hash index (128
//! buckets, linear probing, backward-shift deletion) wrap and shift, with
//! opcodes that continue on copies of other sizes (as every change does)
//! and replace the whole table. Every step is checked against the model.
//! The body and the input format are in `src/table_ops.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gue_core_fuzz::table_ops::run(data));
