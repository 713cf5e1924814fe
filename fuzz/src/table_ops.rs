// SPDX-License-Identifier: GPL-2.0
//! The body of the `table_ops` target: the real server table driven by
//! compact binary commands, so that short inputs fill it to capacity and
//! make the hash index (twice as many buckets as slots, linear probing,
//! backward-shift deletion) wrap and shift. It starts at the smallest
//! capacity (`MIN_CAPACITY`, 64 slots, 128 buckets). Addresses come from a
//! pool of 1024 (IPv4 and IPv6), or are any address.
//!
//! Commands apply in place, as a change does to its copy of the table:
//! slots freed by deletes and flushes stay retired, so adds eventually find
//! the table full. Other opcodes continue on a copy, as the kernel does for
//! every change (the copy frees the retired slots and may grow or shrink the
//! table), or make a whole-table replacement through `changed`. Every step
//! is checked against the model (`Model`, `check_table`).
//!
//! Input format, one opcode byte then its operands:
//! - `0x00..=0x9f` add (an odd opcode reads a separate outer address; the
//!   checksum mode is `op >> 1`, the flow label mode bit 3 of `op`), address,
//!   [outer], port (u16);
//! - `0xa0..=0xcf` edit: address, mask (bit 0 port, bit 1 csum mode
//!   `mask >> 2`, bit 6 flow label mode bit 5 of `mask`, bit 7 outer), [port],
//!   [outer];
//! - `0xd0..=0xfb` and `0xfd` delete: address;
//! - `0xfc` continue on a copy of `capacity_needed(1)` slots;
//! - `0xfe` one byte `how`, by `how % 5`: continue on a copy of half the
//!   capacity (refused while a server sits in the upper half); a copy made
//!   in the table the last copy replaced, whatever its capacity (`copy_from`
//!   must clear what it held; a new one of the same capacity if there is
//!   none); a copy of twice `capacity_needed(1)` (growth, up to
//!   `MAX_CAPACITY`); a copy of the same capacity (may leave no free slot);
//!   or `changed` with `replace_with` the table the last copy replaced (an
//!   empty one if there is none);
//! - `0xff` flush.
//!
//! An address is two bytes `a`, `b`: by `b & 7`, `2001:db8::{b>>3&1}:a`
//! (three in eight), `10.0.{b>>3&1}.a` (three in eight), or any IPv4 (four
//! more bytes) or IPv6 address (sixteen more bytes).

use std::collections::HashSet;
use std::mem;

use gue_core::addr::InetAddr;
use gue_core::config::{ChecksumMode, Command, EditFields, FlowLabelMode, RealServerConfig};
use gue_core::heap::HeapTable;
use gue_core::table::MIN_CAPACITY;

use crate::{
    apply_checked, changed_checked, check_table, copy_checked, new_table_checked, Bytes, Model,
};

/// Largest copy the opcodes ask for: 16 times the smallest, so that per-step
/// checks (linear in the capacity) stay cheap.
pub const MAX_CAPACITY: usize = 16 * MIN_CAPACITY;

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

fn flow_label(b: u8) -> FlowLabelMode {
    if b & 1 == 0 {
        FlowLabelMode::Zero
    } else {
        FlowLabelMode::Hash
    }
}

fn port(r: &mut Bytes<'_>) -> u16 {
    r.u16().max(1)
}

/// The table being changed, its model, and the pair the last copy replaced
/// (the published table, in the kernel's terms).
struct State {
    table: HeapTable,
    model: Model,
    previous: Option<(HeapTable, Model)>,
}

impl State {
    /// Continues on `next`, keeping the table it replaces.
    fn continue_on(&mut self, (table, model): (HeapTable, Model)) {
        let old_table = mem::replace(&mut self.table, table);
        let old_model = mem::replace(&mut self.model, model);
        self.previous = Some((old_table, old_model));
    }

    /// Copies the table into a new one of `requested` slots (rounded) and
    /// continues on the copy if it is made.
    fn copy(&mut self, requested: usize) {
        let into = new_table_checked(requested.min(MAX_CAPACITY));
        if let Some(next) = copy_checked(into, &self.table, &self.model) {
            self.continue_on(next);
        }
    }

    fn copy_op(&mut self, how: u8) {
        match how % 5 {
            0 => self.copy(self.table.capacity() / 2),
            1 => match self.previous.take() {
                Some((used, _)) => {
                    if let Some(next) = copy_checked(used, &self.table, &self.model) {
                        self.continue_on(next);
                    }
                }
                None => self.copy(self.table.capacity()),
            },
            2 => self.copy(self.table.capacity_needed(1).saturating_mul(2)),
            3 => self.copy(self.table.capacity()),
            _ => {
                let empty = (new_table_checked(0), Model::new(0));
                let (wanted, wanted_model) = self.previous.as_ref().unwrap_or(&empty);
                // Sized by what it adds, as the kernel's table-replace is.
                let adds = self.model.missing_from(wanted_model);
                assert_eq!(self.table.missing_from(wanted), adds, "missing_from");
                let next = changed_checked(
                    &self.table,
                    &self.model,
                    adds,
                    |next, model| {
                        let got = next.replace_with(wanted);
                        let want = model.replace_with(wanted_model);
                        if got != want {
                            panic!("replace_with: table gave {got:?}, model {want:?}");
                        }
                        if got.is_ok() {
                            if let Err(msg) = check_table(next, model, &[]) {
                                panic!("replace_with: {msg}");
                            }
                        }
                        got
                    },
                    |model| model.replace_with(wanted_model),
                );
                match next {
                    Ok(next) => self.continue_on(next),
                    // Replacing never fails below MAX_REAL_SERVERS servers.
                    Err(e) => panic!("replace_with through changed() failed: {e:?}"),
                }
            }
        }
    }
}

/// Runs one input (see the module documentation); panics on any
/// disagreement with the model.
pub fn run(data: &[u8]) {
    let mut r = Bytes::new(data);
    let mut s = State {
        table: new_table_checked(MIN_CAPACITY),
        model: Model::new(MIN_CAPACITY),
        previous: None,
    };
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
                        flow_label: flow_label(op >> 3),
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
                    flow_label: (mask & 0x40 != 0).then_some(flow_label(mask >> 5)),
                };
                Command::Edit(a, fields)
            }
            0xd0..=0xfb | 0xfd => Command::Delete(addr(&mut r)),
            0xfc => {
                // Continue on a copy, as the kernel does for every change.
                s.copy(s.table.capacity_needed(1));
                continue;
            }
            0xfe => {
                let how = r.u8();
                s.copy_op(how);
                continue;
            }
            0xff => Command::Flush,
        };
        if let Command::Add(a, _) | Command::Edit(a, _) | Command::Delete(a) = cmd {
            probes.insert(a);
        }
        // The answer is checked against the model; either is fine here.
        let _ = apply_checked(&mut s.table, &mut s.model, &cmd);
    }
    // Every address used, present or not, looked up in the final table.
    if let Err(msg) = check_table(
        &s.table,
        &s.model,
        &probes.iter().copied().collect::<Vec<_>>(),
    ) {
        panic!("table invariant broken at the end: {msg}");
    }
}
