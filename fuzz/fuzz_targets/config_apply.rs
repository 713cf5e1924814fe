// SPDX-License-Identifier: GPL-2.0
//! Configuration writes as the kernel applies them (`Netns::configure`): the
//! input is a sequence of writes separated by NUL bytes, each at most 4095
//! bytes (the proc limit) of `\n`-separated lines, each write one change made
//! with `RealServerTable::changed` (a copy, grown while a line finds it
//! full), all or nothing. The result, every copy and every command are
//! compared with a plain model. The body is in `src/config_apply.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gue_core_fuzz::config_apply::run(data));
