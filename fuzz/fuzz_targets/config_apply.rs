// SPDX-License-Identifier: GPL-2.0
//! Configuration writes as the kernel applies them (`Netns::configure`): the
//! input is a sequence of writes separated by NUL bytes, each at most 4095
//! bytes (the proc limit) of `\n`-separated lines; every line is parsed and
//! applied to a copy of the table, which is kept only if all lines succeed.
//! Each command goes through both `apply` and `apply_in_place`, and the table
//! is compared with a plain model after every step (see `src/lib.rs`).
#![no_main]

use std::collections::HashSet;

use gue_core::addr::InetAddr;
use gue_core::config::parse_command_bytes;
use gue_core::table::RealServerTable;
use gue_core_fuzz::{apply_checked, check_table, command_addrs, Model};
use libfuzzer_sys::fuzz_target;

/// Longest write the proc layer passes on.
const MAX_WRITE: usize = 4095;

fuzz_target!(|data: &[u8]| {
    let mut table = RealServerTable::new();
    let mut model = Model::default();
    let mut probes: HashSet<InetAddr> = HashSet::new();
    for write in data.split(|&b| b == 0) {
        let write = &write[..write.len().min(MAX_WRITE)];
        let mut next = table.clone();
        let mut next_model = model.clone();
        let mut ok = true;
        for line in write.split(|&b| b == b'\n') {
            match parse_command_bytes(line) {
                Ok(cmd) => {
                    probes.extend(command_addrs(&cmd));
                    if !apply_checked(&mut next, &mut next_model, &cmd) {
                        ok = false;
                        break;
                    }
                }
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            table = next;
            model = next_model;
        }
        if let Err(msg) = check_table(&table, &model, &probes.iter().copied().collect::<Vec<_>>()) {
            panic!("table invariant broken after a write: {msg}");
        }
    }
});
