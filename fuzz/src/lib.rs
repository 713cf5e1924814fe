// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the fuzz targets in `fuzz_targets/`: a byte reader that
//! never runs dry, a plain model of the real server table that every change
//! is checked against, independent oracles (`oracle`) for what gue_core
//! encodes, and the bodies of the two table targets (`table_ops`,
//! `netlink_requests`), which live here so that `tests/seeds.rs` can replay their
//! seed corpora without libFuzzer.
//!
//! Only the public API of `gue_core` is used (it is `no_std` and ships just
//! what the module needs, so the oracles are written here from the RFCs and
//! `net/ipv4/fou_core.c`).

pub mod netlink_requests;
pub mod oracle;
pub mod table_ops;

use std::collections::HashSet;

use gue_core::addr::InetAddr;
use gue_core::config::{Command, ConfigError, EditFields, RealServerConfig};
use gue_core::heap::HeapTable;
use gue_core::table::{capacity_for, RealServer, Refusal, MAX_REAL_SERVERS, MIN_CAPACITY};

/// Reads fields from fuzzer input; past the end it yields zeros, so every
/// input maps to some value of every field.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The unread rest.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.u8();
        }
        out
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }
}

/// The capacity the table documents for `servers` servers: the smallest power
/// of two that holds them, at least `MIN_CAPACITY`, at most
/// `MAX_REAL_SERVERS`.
pub fn model_capacity_for(servers: usize) -> usize {
    let mut capacity = MIN_CAPACITY;
    while capacity < servers && capacity < MAX_REAL_SERVERS {
        capacity *= 2;
    }
    capacity
}

/// What the model holds for one server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModelEntry {
    /// The IPVS destination address.
    pub addr: InetAddr,
    /// Its settings.
    pub config: RealServerConfig,
    /// Its slot (and stats slot).
    pub slot: usize,
    /// Whether the change being made gave it its slot.
    pub fresh: bool,
}

impl ModelEntry {
    /// What the table must return for this server.
    pub fn server(&self) -> RealServer {
        RealServer {
            config: self.config,
            stats_slot: u32::try_from(self.slot).expect("slots are below MAX_REAL_SERVERS"),
        }
    }
}

/// The obvious implementation of the table's documented behaviour: a list
/// of servers with their slots, the slots freed by the change being made
/// (retired: not given out again until the next copy), and the allocation
/// cursor (a new server gets the first slot at or after the cursor, wrapping,
/// that is neither used nor retired; the cursor then moves past it).
#[derive(Clone, Debug)]
pub struct Model {
    /// Slots: a power of two.
    pub capacity: usize,
    /// Where the search for a free slot starts, below `capacity`.
    pub cursor: usize,
    /// The servers, in no particular order.
    pub entries: Vec<ModelEntry>,
    /// Slots freed since the last copy.
    pub retired: HashSet<usize>,
}

impl Model {
    /// An empty table of `capacity` slots (rounded as `capacity_for`).
    pub fn new(capacity: usize) -> Model {
        Model {
            capacity: model_capacity_for(capacity),
            cursor: 0,
            entries: Vec::new(),
            retired: HashSet::new(),
        }
    }

    fn position(&self, addr: &InetAddr) -> Option<usize> {
        self.entries.iter().position(|e| e.addr == *addr)
    }

    /// The servers in slot order.
    pub fn sorted(&self) -> Vec<ModelEntry> {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|e| e.slot);
        entries
    }

    /// One past the highest slot in use (0 if none).
    pub fn slot_span(&self) -> usize {
        self.entries.iter().map(|e| e.slot + 1).max().unwrap_or(0)
    }

    /// The capacity a copy needs to take `adds` new servers: every used
    /// slot, and room for `adds` more beside the servers it holds.
    pub fn capacity_needed(&self, adds: usize) -> usize {
        model_capacity_for(self.slot_span().max(self.entries.len() + adds))
    }

    /// How many of `wanted`'s servers this model does not hold.
    pub fn missing_from(&self, wanted: &Model) -> usize {
        wanted.entries.iter().filter(|w| self.entries.iter().all(|e| e.addr != w.addr)).count()
    }

    /// Applies `cmd`, or returns the error the table must fail with (the
    /// model is then unchanged).
    pub fn apply(&mut self, cmd: &Command) -> Result<(), ConfigError> {
        match *cmd {
            Command::Add(addr, config) => {
                if self.position(&addr).is_some() {
                    return Err(ConfigError::AlreadyExists(addr));
                }
                let taken: HashSet<usize> = self
                    .entries
                    .iter()
                    .map(|e| e.slot)
                    .chain(self.retired.iter().copied())
                    .collect();
                let slot = (0..self.capacity)
                    .map(|i| (self.cursor + i) % self.capacity)
                    .find(|s| !taken.contains(s))
                    .ok_or(ConfigError::TableFull)?;
                self.entries.push(ModelEntry {
                    addr,
                    config,
                    slot,
                    fresh: true,
                });
                self.cursor = (slot + 1) % self.capacity;
            }
            Command::Edit(addr, fields) => {
                let i = self.position(&addr).ok_or(ConfigError::NotFound(addr))?;
                let e = &mut self.entries[i];
                e.config = fields.apply_to(&e.config);
            }
            Command::Delete(addr) => {
                let i = self.position(&addr).ok_or(ConfigError::NotFound(addr))?;
                self.retired.insert(self.entries.swap_remove(i).slot);
            }
            Command::Flush => {
                for e in self.entries.drain(..) {
                    self.retired.insert(e.slot);
                }
            }
        }
        Ok(())
    }

    /// A copy of `capacity` slots (rounded as `capacity_for`) to make the
    /// next change on: the same servers in the same slots, none fresh, no
    /// slot retired, the cursor taken modulo the new capacity. `TableFull`
    /// if a server's slot is beyond the capacity.
    pub fn copy(&self, capacity: usize) -> Result<Model, ConfigError> {
        let capacity = model_capacity_for(capacity);
        if self.entries.iter().any(|e| e.slot >= capacity) {
            return Err(ConfigError::TableFull);
        }
        Ok(Model {
            capacity,
            cursor: self.cursor % capacity,
            entries: self
                .entries
                .iter()
                .map(|e| ModelEntry { fresh: false, ..*e })
                .collect(),
            retired: HashSet::new(),
        })
    }

    /// The table `change` makes of this one, as `RealServerTable::changed`
    /// documents it: on a copy of `capacity_needed(adds)` slots, and while
    /// `change` finds the copy full, on a fresh copy twice the size, up to
    /// `MAX_REAL_SERVERS`. Also returns the capacities `change` ran at.
    pub fn changed(
        &self,
        adds: usize,
        mut change: impl FnMut(&mut Model) -> Result<(), ConfigError>,
    ) -> (Result<Model, ConfigError>, Vec<usize>) {
        let mut capacity = self.capacity_needed(adds);
        let mut tries = Vec::new();
        loop {
            let result = self.copy(capacity).and_then(|mut next| {
                tries.push(next.capacity);
                change(&mut next).map(|()| next)
            });
            match result {
                Err(ConfigError::TableFull) if capacity < MAX_REAL_SERVERS => capacity *= 2,
                result => return (result, tries),
            }
        }
    }

    /// Makes the model list exactly the servers of `wanted` with their
    /// settings: servers in both keep their slots (edited), the others are
    /// deleted, and `wanted`'s new servers are added in `wanted`'s slot
    /// order. On error the model may be half changed, like the table.
    pub fn replace_with(&mut self, wanted: &Model) -> Result<(), ConfigError> {
        for e in self.sorted() {
            if wanted.position(&e.addr).is_none() {
                self.apply(&Command::Delete(e.addr))?;
            }
        }
        for w in wanted.sorted() {
            let cmd = match self.position(&w.addr) {
                Some(_) => Command::Edit(w.addr, EditFields::from(w.config)),
                None => Command::Add(w.addr, w.config),
            };
            self.apply(&cmd)?;
        }
        Ok(())
    }

    /// The model's own invariants (a failure here is a bug in the model).
    fn check(&self) -> Result<(), String> {
        let capacity = self.capacity;
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_REAL_SERVERS).contains(&capacity) {
            return Err(format!("model capacity {capacity}"));
        }
        if self.cursor >= capacity {
            return Err(format!(
                "model cursor {} >= capacity {capacity}",
                self.cursor
            ));
        }
        let slots: HashSet<usize> = self.entries.iter().map(|e| e.slot).collect();
        let addrs: HashSet<InetAddr> = self.entries.iter().map(|e| e.addr).collect();
        if slots.len() != self.entries.len() || addrs.len() != self.entries.len() {
            return Err("model has a slot or an address twice".into());
        }
        if slots.iter().chain(&self.retired).any(|&s| s >= capacity)
            || !slots.is_disjoint(&self.retired)
        {
            return Err(format!(
                "model slots {slots:?} / retired {:?} out of place",
                self.retired
            ));
        }
        Ok(())
    }
}

/// Checks every observable property of `table` against `model`; `probes`
/// are addresses to look up (present or not).
pub fn check_table(table: &HeapTable, model: &Model, probes: &[InetAddr]) -> Result<(), String> {
    model.check()?;
    let n = model.entries.len();
    if table.capacity() != model.capacity {
        return Err(format!(
            "capacity() {}, model {}",
            table.capacity(),
            model.capacity
        ));
    }
    if table.len() != n || table.is_empty() != (n == 0) {
        return Err(format!(
            "len() {} is_empty() {}, model has {n}",
            table.len(),
            table.is_empty()
        ));
    }
    // iter_from(0): exactly the model's servers, in slot order, each with its
    // slot as stats slot; iter() is the same without the slot numbers.
    let want = model.sorted();
    let want_all: Vec<(usize, InetAddr, RealServer)> =
        want.iter().map(|e| (e.slot, e.addr, e.server())).collect();
    let got: Vec<(usize, InetAddr, RealServer)> =
        table.iter_from(0).map(|(s, a, r)| (s, *a, *r)).collect();
    if got != want_all {
        return Err(format!(
            "iter_from(0) = {got:?}\nmodel        = {want_all:?}"
        ));
    }
    let got: Vec<(InetAddr, RealServer)> = table.iter().map(|(a, r)| (*a, *r)).collect();
    if got.len() != n || got.iter().zip(&want_all).any(|(g, w)| *g != (w.1, w.2)) {
        return Err(format!("iter() = {got:?}\nmodel  = {want_all:?}"));
    }
    // iter_from(k) resumes at slot k: from the middle server, just past it,
    // from the cursor, and from the end.
    let middle = want.get(n / 2).map(|e| e.slot);
    let firsts = [
        middle,
        middle.map(|s| s + 1),
        Some(model.cursor),
        Some(model.capacity),
        Some(usize::MAX),
    ];
    for first in firsts.into_iter().flatten() {
        let got: Vec<(usize, InetAddr, RealServer)> = table
            .iter_from(first)
            .map(|(s, a, r)| (s, *a, *r))
            .collect();
        let want_from: Vec<_> = want_all
            .iter()
            .filter(|(s, _, _)| *s >= first)
            .copied()
            .collect();
        if got != want_from {
            return Err(format!(
                "iter_from({first}) = {got:?}\nmodel = {want_from:?}"
            ));
        }
    }
    for e in &want {
        if table.get(&e.addr) != Some(&e.server()) {
            return Err(format!(
                "get({}) = {:?}, want {:?}",
                e.addr,
                table.get(&e.addr),
                e.server()
            ));
        }
    }
    let fresh: Vec<usize> = table.fresh_slots().collect();
    let want_fresh: Vec<usize> = want.iter().filter(|e| e.fresh).map(|e| e.slot).collect();
    if fresh != want_fresh {
        return Err(format!("fresh_slots() = {fresh:?}, model {want_fresh:?}"));
    }
    if table.slot_span() != model.slot_span() || table.capacity_needed(1) != model.capacity_needed(1)
    {
        return Err(format!(
            "slot_span() {} capacity_needed() {}, model {} {}",
            table.slot_span(),
            table.capacity_needed(1),
            model.slot_span(),
            model.capacity_needed(1)
        ));
    }
    for p in probes {
        let want = model.position(p).map(|i| model.entries[i].server());
        if table.get(p).copied() != want {
            return Err(format!("get({p}) = {:?}, model {want:?}", table.get(p)));
        }
    }
    Ok(())
}

/// Applies `cmd` to the table (in place, as a change does to its copy) and to
/// the model, and checks the answer and the whole table (looking up the
/// addresses `cmd` names, present or not). The model is unchanged by a
/// failed command, so this also checks that a failed command leaves the
/// table as it was. Panics (a fuzzer crash) on any disagreement; returns the
/// table's answer.
pub fn apply_checked(
    table: &mut HeapTable,
    model: &mut Model,
    cmd: &Command,
) -> Result<(), ConfigError> {
    let got = table.apply(cmd);
    let want = model.apply(cmd);
    if got != want {
        panic!("model mismatch: {cmd:?}: table gave {got:?}, model {want:?}");
    }
    if let Err(msg) = check_table(table, model, &command_addrs(cmd)) {
        panic!("table invariant broken after {cmd:?} ({got:?}): {msg}");
    }
    got
}

/// An empty table from `with_capacity(requested)`, checked: its capacity is
/// `capacity_for(requested)` as the model computes it.
pub fn new_table_checked(requested: usize) -> HeapTable {
    let table =
        HeapTable::with_capacity(requested).expect("Vec allocation aborts rather than fails");
    let model = Model::new(requested);
    if capacity_for(requested) != model.capacity {
        panic!(
            "capacity_for({requested}) = {}, model {}",
            capacity_for(requested),
            model.capacity
        );
    }
    if let Err(msg) = check_table(&table, &model, &[]) {
        panic!("with_capacity({requested}): {msg}");
    }
    table
}

/// Makes `into` (new, or a table used before) a copy of `table` with
/// `copy_from`, and checks it against the model's copy at `into`'s
/// capacity. Returns the copy and its model, or `None` if both refused
/// (`TableFull`: a server's slot is beyond `into`'s capacity).
pub fn copy_checked(
    mut into: HeapTable,
    table: &HeapTable,
    model: &Model,
) -> Option<(HeapTable, Model)> {
    let capacity = into.capacity();
    let got = into.copy_from(table);
    match (got, model.copy(capacity)) {
        (Ok(()), Ok(copy)) => {
            if let Err(msg) = check_table(&into, &copy, &[]) {
                panic!("copy_from into capacity {capacity}: {msg}");
            }
            Some((into, copy))
        }
        (Err(e), Err(w)) if e == w => None,
        (got, want) => {
            panic!("copy_from into capacity {capacity}: table gave {got:?}, model {want:?}")
        }
    }
}

/// Makes a change the way the kernel does, with `RealServerTable::changed`,
/// and checks it against `Model::changed`. `change` makes the change on the
/// table's copy and on the model's copy of the same capacity (given), and
/// checks them as it goes; `change_model` makes it on the model alone, for
/// the independent simulation of the whole change. Each copy `changed`
/// makes is checked against the model's copy, the capacities the change ran
/// at must be the model's, and the result (the new table, or the error) must
/// be the model's. Panics on any disagreement.
pub fn changed_checked(
    table: &HeapTable,
    model: &Model,
    adds: usize,
    mut change: impl FnMut(&mut HeapTable, &mut Model) -> Result<(), ConfigError>,
    change_model: impl FnMut(&mut Model) -> Result<(), ConfigError>,
) -> Result<(HeapTable, Model), ConfigError> {
    let (want, want_tries) = model.changed(adds, change_model);
    let mut tries = Vec::new();
    let got = HeapTable::changed(table, adds, |next| {
        let capacity = next.capacity();
        tries.push(capacity);
        let mut copy = model.copy(capacity).unwrap_or_else(|e| {
            panic!("changed() copied into capacity {capacity}, which the model refuses: {e:?}")
        });
        if let Err(msg) = check_table(next, &copy, &[]) {
            panic!("changed(): the copy at capacity {capacity}: {msg}");
        }
        change(next, &mut copy)
    });
    if tries != want_tries {
        panic!("changed() ran the change at capacities {tries:?}, model {want_tries:?}");
    }
    match (got, want) {
        (Ok(next), Ok(next_model)) => {
            if let Err(msg) = check_table(&next, &next_model, &[]) {
                panic!("changed(): the result: {msg}");
            }
            Ok((next, next_model))
        }
        (Err(Refusal::Config(e)), Err(w)) if e == w => Err(e),
        (got, want) => panic!("changed(): table gave {got:?}, model {want:?}"),
    }
}

/// The addresses a command names (for `get` probes of absent servers).
pub fn command_addrs(cmd: &Command) -> Vec<InetAddr> {
    match *cmd {
        Command::Add(a, c) => vec![a, c.outer],
        Command::Edit(a, f) => f.outer.into_iter().chain([a]).collect(),
        Command::Delete(a) => vec![a],
        Command::Flush => vec![],
    }
}
