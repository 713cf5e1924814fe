// SPDX-License-Identifier: GPL-2.0
//! Configuration requests as the module answers them (`src/netlink.rs`):
//! server attributes decoded by `gue_core::netlink::decode_server`, each
//! request one change made with `RealServerTable::changed`, a
//! `table-replace` decoded whole before the table is replaced, all or
//! nothing. Every change is compared with a plain model. The body is in
//! `src/netlink_requests.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gue_core_fuzz::netlink_requests::run(data));
