// SPDX-License-Identifier: GPL-2.0
//! The body of the `config_apply` target: configuration writes as the kernel
//! applies them (`Netns::configure`). The input is a sequence of writes
//! separated by NUL bytes, each at most 4095 bytes (the proc limit) of
//! `\n`-separated lines. A write is one change, made with
//! `RealServerTable::changed`: every line is parsed and applied to a copy of
//! the table, which is grown (a fresh copy twice the size, the lines applied
//! again) while a line finds it full; the result replaces the table only if
//! every line succeeds. The model simulates the same (`Model::changed`), and
//! each command is also checked against the model as it is applied
//! (`apply_checked`).

use std::collections::HashSet;

use gue_core::addr::InetAddr;
use gue_core::config::parse_command_bytes;
use gue_core::table::MIN_CAPACITY;

use crate::{apply_checked, changed_checked, check_table, command_addrs, new_table_checked, Model};

/// Longest write the proc layer passes on.
pub const MAX_WRITE: usize = 4095;

/// Runs one input (see the module documentation); panics on any
/// disagreement with the model.
pub fn run(data: &[u8]) {
    let mut table = new_table_checked(0);
    let mut model = Model::new(MIN_CAPACITY);
    let mut probes: HashSet<InetAddr> = HashSet::new();
    for write in data.split(|&b| b == 0) {
        let write = &write[..write.len().min(MAX_WRITE)];
        let lines = || write.split(|&b| b == b'\n');
        // As the kernel sizes a write's copy: at most one new server a line.
        let adds = lines().count();
        let result = changed_checked(
            &table,
            &model,
            adds,
            |next, next_model| {
                for line in lines() {
                    let cmd = parse_command_bytes(line)?;
                    probes.extend(command_addrs(&cmd));
                    apply_checked(next, next_model, &cmd)?;
                }
                Ok(())
            },
            |next_model| {
                for line in lines() {
                    next_model.apply(&parse_command_bytes(line)?)?;
                }
                Ok(())
            },
        );
        // A refused write leaves the table as it was.
        if let Ok((next, next_model)) = result {
            table = next;
            model = next_model;
        }
        if let Err(msg) = check_table(&table, &model, &probes.iter().copied().collect::<Vec<_>>()) {
            panic!("table invariant broken after a write: {msg}");
        }
    }
}
