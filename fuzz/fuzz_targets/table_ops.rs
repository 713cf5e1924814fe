// SPDX-License-Identifier: GPL-2.0
//! The real server table driven by compact binary commands, so that short
//! inputs fill it to capacity (64) and make the hash index (128 buckets,
//! linear probing, backward-shift deletion) wrap and shift: addresses come
//! from a pool of 1024 (IPv4 and IPv6), or any address. Every step
//! is checked against the model; one opcode continues on a clone of the
//! table (the kernel copies it for every write).
#![no_main]

use std::collections::HashSet;

use gue_core::addr::InetAddr;
use gue_core::config::{ChecksumMode, Command, EditFields, RealServerConfig};
use gue_core::table::RealServerTable;
use gue_core_fuzz::{apply_checked, check_table, Bytes, Model};
use libfuzzer_sys::fuzz_target;

/// An address from a pool of 1024 (2 x 256 per family), so that commands
/// collide; one in four is any address of either family.
fn addr(r: &mut Bytes<'_>) -> InetAddr {
    let a = r.u8();
    let b = r.u8();
    let pool = b >> 3 & 1;
    match b & 7 {
        0..=2 => InetAddr::v6([
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, pool, a,
        ]),
        3..=5 => InetAddr::v4([10, 0, pool, a]),
        6 => InetAddr::v4(r.array()),
        _ => InetAddr::v6(r.array()),
    }
}

fn csum(b: u8) -> ChecksumMode {
    match b % 3 {
        0 => ChecksumMode::None,
        1 => ChecksumMode::Udp,
        _ => ChecksumMode::RemoteOffload,
    }
}

fn port(r: &mut Bytes<'_>) -> u16 {
    r.u16().max(1)
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes::new(data);
    let mut table = RealServerTable::new();
    let mut model = Model::default();
    let mut probes: HashSet<InetAddr> = HashSet::new();
    while !r.is_empty() {
        let op = r.u8();
        let cmd = match op {
            0x00..=0x9f => {
                let a = addr(&mut r);
                let outer = if op & 1 == 0 { a } else { addr(&mut r) };
                Command::Add(
                    a,
                    RealServerConfig {
                        outer,
                        port: port(&mut r),
                        csum: csum(op >> 1),
                    },
                )
            }
            0xa0..=0xcf => {
                let a = addr(&mut r);
                let mask = r.u8();
                let fields = EditFields {
                    port: (mask & 1 != 0).then(|| port(&mut r)),
                    csum: (mask & 2 != 0).then_some(csum(mask >> 2)),
                    outer: (mask & 0x80 != 0).then(|| addr(&mut r)),
                };
                Command::Edit(a, fields)
            }
            0xd0..=0xfb => Command::Delete(addr(&mut r)),
            0xfc => {
                // Continue on a copy, as the kernel does for every write.
                let mut copy = RealServerTable::new();
                copy.clone_from(&table);
                table = copy;
                continue;
            }
            0xfd => Command::Nothing,
            _ => Command::Flush,
        };
        if let Command::Add(a, _) | Command::Edit(a, _) | Command::Delete(a) = cmd {
            probes.insert(a);
        }
        apply_checked(&mut table, &mut model, &cmd);
    }
    // Every address used, present or not, looked up in the final table.
    if let Err(msg) = check_table(&table, &model, &probes.iter().copied().collect::<Vec<_>>()) {
        panic!("table invariant broken at the end: {msg}");
    }
});
