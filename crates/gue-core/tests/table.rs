//! The real server table against a `HashMap` model.

use std::collections::{BTreeSet, HashMap};

use gue_core::addr::InetAddr;
use gue_core::config::*;
use gue_core::table::*;
use proptest::prelude::*;

/// The table's API as these tests use it, built on what the module runs.
trait TableExt {
    fn apply(&self, cmd: &Command) -> Result<(RealServerTable, Applied), ConfigError>;
}

impl TableExt for RealServerTable {
    fn apply(&self, cmd: &Command) -> Result<(RealServerTable, Applied), ConfigError> {
        let mut next = self.clone();
        let applied = next.apply_in_place(cmd)?;
        Ok((next, applied))
    }
}

trait SlotSetExt {
    fn contains(&self, slot: u8) -> bool;
    fn is_empty(&self) -> bool;
    fn len(&self) -> usize;
    fn iter(&self) -> impl Iterator<Item = u8>;
}

impl SlotSetExt for SlotSet {
    fn contains(&self, slot: u8) -> bool {
        slot < 64 && self.bits() & (1 << slot) != 0
    }
    fn is_empty(&self) -> bool {
        self.bits() == 0
    }
    fn len(&self) -> usize {
        self.bits().count_ones() as usize
    }
    fn iter(&self) -> impl Iterator<Item = u8> {
        let bits = self.bits();
        (0u8..64).filter(move |&s| bits & (1 << s) != 0)
    }
}

fn a(s: &str) -> InetAddr {
    InetAddr::parse(s).unwrap()
}

fn add(addr: &str, port: u16) -> Command {
    parse_command(&format!("add {addr} port {port}")).unwrap()
}

#[test]
fn stays_small_and_heap_free() {
    assert!(std::mem::size_of::<RealServerTable>() < 16 * 1024);
    println!(
        "size_of RealServerTable = {}",
        std::mem::size_of::<RealServerTable>()
    );
}

#[test]
fn add_get_edit_delete() {
    let t = RealServerTable::new();
    let (t1, ap) = t.apply(&add("10.0.1.2", 5501)).unwrap();
    assert!(t.is_empty(), "apply leaves the original alone");
    assert_eq!(t1.len(), 1);
    let s = *t1.get(&a("10.0.1.2")).unwrap();
    assert_eq!(s.config.port, 5501);
    assert_eq!(ap.allocated.iter().collect::<Vec<_>>(), vec![s.stats_slot]);
    assert!(ap.freed.is_empty());

    let (t2, ap) = t1
        .apply(&parse_command("edit 10.0.1.2 port 6000 csum udp outer ::1").unwrap())
        .unwrap();
    let s2 = *t2.get(&a("10.0.1.2")).unwrap();
    assert_eq!(s2.stats_slot, s.stats_slot, "edit keeps the slot");
    assert_eq!(
        s2.config,
        RealServerConfig {
            outer: a("::1"),
            port: 6000,
            csum: ChecksumMode::Udp
        }
    );
    assert_eq!(ap, Applied::default());

    let (t3, ap) = t2.apply(&Command::Delete(a("10.0.1.2"))).unwrap();
    assert!(t3.is_empty());
    assert!(t3.get(&a("10.0.1.2")).is_none());
    assert!(ap.freed.contains(s.stats_slot));
}

#[test]
fn error_messages() {
    let (t, _) = RealServerTable::new().apply(&add("10.0.1.2", 1)).unwrap();
    let e = t.apply(&add("10.0.1.2", 2)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "real server 10.0.1.2 already exists; use edit"
    );
    assert_eq!(e.errno(), EEXIST);
    let e = t.apply(&Command::Delete(a("10.0.1.3"))).unwrap_err();
    assert_eq!(e.to_string(), "real server 10.0.1.3 does not exist");
    let e = t
        .apply(&parse_command("edit 2001:db8::1 port 3").unwrap())
        .unwrap_err();
    assert_eq!(e.to_string(), "real server 2001:db8::1 does not exist");
}

#[test]
fn fills_up_to_capacity_then_refuses() {
    let mut t = RealServerTable::new();
    for i in 0..MAX_REAL_SERVERS {
        t.apply_in_place(&add(&format!("10.0.{}.{}", i / 8, i % 8), 1))
            .unwrap();
    }
    assert_eq!(t.len(), MAX_REAL_SERVERS);
    let slots: BTreeSet<u8> = t.iter().map(|(_, s)| s.stats_slot).collect();
    assert_eq!(slots, (0..MAX_REAL_SERVERS as u8).collect());
    let e = t.apply_in_place(&add("10.9.9.9", 1)).unwrap_err();
    assert_eq!(e.to_string(), "table full: at most 64 real servers");
    assert_eq!(e.errno(), ENOSPC);
    assert_eq!(
        t.len(),
        MAX_REAL_SERVERS,
        "failed add leaves the table unchanged"
    );
    let ap = t.apply_in_place(&Command::Flush).unwrap();
    assert_eq!(ap.freed.len(), MAX_REAL_SERVERS);
    assert!(t.is_empty());
    assert_eq!(t.iter().count(), 0);
}

#[test]
fn freed_slot_is_not_reused_at_once() {
    let mut t = RealServerTable::new();
    t.apply_in_place(&add("10.0.0.1", 1)).unwrap();
    t.apply_in_place(&add("10.0.0.2", 1)).unwrap();
    let freed = t
        .apply_in_place(&Command::Delete(a("10.0.0.1")))
        .unwrap()
        .freed;
    let got = t.apply_in_place(&add("10.0.0.3", 1)).unwrap().allocated;
    assert!(!got.is_empty());
    assert_ne!(got, freed);
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u16),
    Edit(u8, u16),
    Del(u8),
    Flush,
}

/// Addresses drawn from a small pool (both families) so ops collide.
fn pool_addr(i: u8) -> InetAddr {
    if i.is_multiple_of(3) {
        InetAddr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i])
    } else {
        InetAddr::v4([10, 0, i / 16, i])
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..100, 1u16..).prop_map(|(i, p)| Op::Add(i, p)),
        2 => (0u8..100, 1u16..).prop_map(|(i, p)| Op::Edit(i, p)),
        3 => (0u8..100).prop_map(Op::Del),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec(op_strategy(), 1..300)) {
        let mut table = RealServerTable::new();
        let mut model: HashMap<InetAddr, (u16, u8)> = HashMap::new();
        for op in ops {
            let cmd = match op {
                Op::Add(i, p) => Command::Add(pool_addr(i),
                    RealServerConfig { outer: pool_addr(i), port: p, csum: ChecksumMode::None }),
                Op::Edit(i, p) => Command::Edit(pool_addr(i), EditFields { port: Some(p), ..Default::default() }),
                Op::Del(i) => Command::Delete(pool_addr(i)),
                Op::Flush => Command::Flush,
            };
            let before = table.clone();
            let result = table.apply(&cmd);
            match (&cmd, result) {
                (Command::Add(addr, cfg), Ok((next, ap))) => {
                    prop_assert!(!model.contains_key(addr) && model.len() < MAX_REAL_SERVERS);
                    prop_assert_eq!(ap.allocated.len(), 1);
                    let slot = ap.allocated.iter().next().unwrap();
                    prop_assert!(model.values().all(|&(_, s)| s != slot), "slot reused while live");
                    model.insert(*addr, (cfg.port, slot));
                    table = next;
                }
                (Command::Add(addr, _), Err(e)) => {
                    if model.contains_key(addr) {
                        prop_assert_eq!(e, ConfigError::AlreadyExists(*addr));
                    } else {
                        prop_assert_eq!(model.len(), MAX_REAL_SERVERS);
                        prop_assert_eq!(e, ConfigError::TableFull);
                    }
                }
                (Command::Edit(addr, f), Ok((next, ap))) => {
                    prop_assert_eq!(ap, Applied::default());
                    model.get_mut(addr).unwrap().0 = f.port.unwrap();
                    table = next;
                }
                (Command::Delete(addr), Ok((next, ap))) => {
                    let (_, slot) = model.remove(addr).unwrap();
                    prop_assert_eq!(ap.freed.iter().collect::<Vec<_>>(), vec![slot]);
                    table = next;
                }
                (Command::Edit(addr, _) | Command::Delete(addr), Err(e)) => {
                    prop_assert!(!model.contains_key(addr));
                    prop_assert_eq!(e, ConfigError::NotFound(*addr));
                }
                (Command::Flush, Ok((next, ap))) => {
                    let slots: BTreeSet<u8> = model.values().map(|&(_, s)| s).collect();
                    prop_assert_eq!(ap.freed.iter().collect::<BTreeSet<_>>(), slots);
                    model.clear();
                    table = next;
                }
                (c, r) => prop_assert!(false, "unexpected {:?} -> {:?}", c, r),
            }
            // The pre-apply copy is untouched (copy-on-write contract).
            prop_assert_eq!(before.len(), before.iter().count());
            // Full consistency check after every step.
            prop_assert_eq!(table.len(), model.len());
            prop_assert_eq!(table.iter().count(), model.len());
            for i in 0..100u8 {
                let addr = pool_addr(i);
                let got = table.get(&addr).map(|s| (s.config.port, s.stats_slot));
                prop_assert_eq!(got, model.get(&addr).copied(), "lookup of {}", addr);
            }
            let slots: BTreeSet<u8> = table.iter().map(|(_, s)| s.stats_slot).collect();
            prop_assert_eq!(slots.len(), model.len(), "slots unique");
            prop_assert!(slots.iter().all(|&s| usize::from(s) < MAX_REAL_SERVERS));
            prop_assert_eq!(table.used_slots().len(), model.len());
        }
    }
}

fn v4(last: u8) -> InetAddr {
    InetAddr::v4([10, 8, 0, last])
}

fn server(port: u16) -> RealServerConfig {
    RealServerConfig { outer: v4(99), port, csum: ChecksumMode::None }
}

fn table_of(servers: &[(u8, u16)]) -> RealServerTable {
    let mut table = RealServerTable::new();
    for &(last, port) in servers {
        table.apply_in_place(&Command::Add(v4(last), server(port))).unwrap();
    }
    table
}

#[test]
fn replace_with_keeps_the_slots_of_servers_listed_before() {
    let mut table = table_of(&[(1, 1), (2, 2), (3, 3)]);
    let slot_of = |t: &RealServerTable, last| t.get(&v4(last)).unwrap().stats_slot;
    let (slot2, slot3) = (slot_of(&table, 2), slot_of(&table, 3));
    let applied = table.replace_with(&table_of(&[(2, 20), (3, 3), (4, 4)])).unwrap();
    assert_eq!(table.len(), 3);
    assert!(table.get(&v4(1)).is_none());
    assert_eq!(slot_of(&table, 2), slot2, "kept its counters' slot");
    assert_eq!(slot_of(&table, 3), slot3);
    assert_eq!(table.get(&v4(2)).unwrap().config.port, 20, "took the new settings");
    assert_eq!(applied.allocated.iter().collect::<Vec<_>>(), vec![slot_of(&table, 4)]);
    assert_eq!(applied.freed.len(), 1);
}

#[test]
fn replace_with_an_empty_table_flushes() {
    let mut table = table_of(&[(1, 1), (2, 2)]);
    table.replace_with(&RealServerTable::new()).unwrap();
    assert!(table.is_empty());
}

#[test]
fn iter_from_resumes_after_the_last_slot_shown() {
    let table = table_of(&(1..=10).map(|i| (i, u16::from(i))).collect::<Vec<_>>());
    let all: Vec<usize> = table.iter_from(0).map(|(slot, _, _)| slot).collect();
    assert_eq!(all.len(), 10);
    let rest: Vec<usize> = table.iter_from(all[4]).map(|(slot, _, _)| slot).collect();
    assert_eq!(rest, all[4..]);
    assert_eq!(table.iter_from(MAX_REAL_SERVERS).count(), 0);
    assert_eq!(table.iter_from(usize::MAX).count(), 0);
}

proptest! {
    /// Whatever the table held, replacing it gives exactly the wanted servers and settings.
    #[test]
    fn replace_with_lists_exactly_the_wanted_servers(
        before in proptest::collection::btree_map(0u8..40, 1u16..100, 0..30),
        wanted in proptest::collection::btree_map(0u8..40, 1u16..100, 0..30),
    ) {
        let mut table = table_of(&before.iter().map(|(&a, &p)| (a, p)).collect::<Vec<_>>());
        table.replace_with(&table_of(&wanted.iter().map(|(&a, &p)| (a, p)).collect::<Vec<_>>())).unwrap();
        let listed: BTreeSet<(Vec<u8>, u16)> = table.iter().map(|(a, s)| (a.octets().to_vec(), s.config.port)).collect();
        let expected: BTreeSet<(Vec<u8>, u16)> = wanted.iter().map(|(&a, &p)| (v4(a).octets().to_vec(), p)).collect();
        prop_assert_eq!(listed, expected);
    }
}
