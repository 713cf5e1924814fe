//! The real server table against a `HashMap` model.

use std::collections::{BTreeSet, HashMap};

use gue_core::addr::InetAddr;
use gue_core::config::*;
use gue_core::heap::{empty_table, HeapTable};
use gue_core::table::*;
use proptest::prelude::*;

/// What these tests use of the table, as the module uses it: every change made on a copy.
trait TableExt: Sized {
    fn apply_copy(&self, cmd: &Command) -> Result<Self, ConfigError>;
    /// A copy with no change, as the next change starts from.
    fn copy(&self) -> Self;
}

impl TableExt for HeapTable {
    fn apply_copy(&self, cmd: &Command) -> Result<HeapTable, ConfigError> {
        let adds = usize::from(matches!(cmd, Command::Add(..)));
        HeapTable::changed(self, adds, |next| next.apply(cmd)).map_err(|refusal| match refusal {
            Refusal::Config(error) => error,
            Refusal::NoMemory => unreachable!("Vec aborts rather than fails"),
        })
    }

    fn copy(&self) -> HeapTable {
        HeapTable::changed(self, 0, |_| Ok(())).unwrap_or_else(|_| unreachable!("no change is refused"))
    }
}

fn fresh(table: &HeapTable) -> Vec<usize> {
    table.fresh_slots().collect()
}

fn slot_of(table: &HeapTable, addr: &InetAddr) -> usize {
    table.get(addr).unwrap().stats_slot as usize
}

fn a(s: &str) -> InetAddr {
    InetAddr::parse(s).unwrap()
}

fn add(addr: &str, port: u16) -> Command {
    let addr = a(addr);
    Command::Add(addr, RealServerConfig { outer: addr, port, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero })
}

/// The n-th of many distinct addresses.
fn nth(i: usize) -> InetAddr {
    InetAddr::v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

fn add_nth(i: usize) -> Command {
    Command::Add(nth(i), RealServerConfig { outer: nth(i), port: 1 + (i % 60000) as u16, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero })
}

#[test]
fn memory_per_slot() {
    // Stated in docs/design.md: storage per slot of capacity (capacity is a power of two
    // between n and 2n servers).
    let slot_bytes = std::mem::size_of::<Slot>() + 2 * std::mem::size_of::<Bucket>();
    println!("bytes per slot = {slot_bytes}");
    assert_eq!(slot_bytes, 60, "update MAX_REAL_SERVERS' doc and docs/design.md");
}

#[test]
fn add_get_edit_delete() {
    let t = empty_table();
    let t1 = t.apply_copy(&add("10.0.1.2", 5501)).unwrap();
    assert!(t.is_empty(), "a change leaves the original alone");
    assert_eq!(t1.len(), 1);
    let s = *t1.get(&a("10.0.1.2")).unwrap();
    assert_eq!(s.config.port, 5501);
    assert_eq!(fresh(&t1), vec![s.stats_slot as usize]);

    let t2 = t1
        .apply_copy(&Command::Edit(
            a("10.0.1.2"),
            EditFields {
                port: Some(6000),
                csum: Some(ChecksumMode::Udp),
                outer: Some(a("::1")),
                flow_label: Some(FlowLabelMode::Hash),
            },
        ))
        .unwrap();
    let s2 = *t2.get(&a("10.0.1.2")).unwrap();
    assert_eq!(s2.stats_slot, s.stats_slot, "edit keeps the slot");
    assert_eq!(
        s2.config,
        RealServerConfig {
            outer: a("::1"),
            port: 6000,
            csum: ChecksumMode::Udp,
            flow_label: FlowLabelMode::Hash,
        }
    );
    assert!(fresh(&t2).is_empty(), "an edit keeps the counters");

    let t3 = t2.apply_copy(&Command::Delete(a("10.0.1.2"))).unwrap();
    assert!(t3.is_empty());
    assert!(t3.get(&a("10.0.1.2")).is_none());
}

#[test]
fn error_messages() {
    let t = empty_table().apply_copy(&add("10.0.1.2", 1)).unwrap();
    let e = t.apply_copy(&add("10.0.1.2", 2)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "real server 10.0.1.2 already exists; use edit"
    );
    assert_eq!(e.errno(), EEXIST);
    let e = t.apply_copy(&Command::Delete(a("10.0.1.3"))).unwrap_err();
    assert_eq!(e.to_string(), "real server 10.0.1.3 does not exist");
    let e = t
        .apply_copy(&Command::Edit(a("2001:db8::1"), EditFields { port: Some(3), ..EditFields::default() }))
        .unwrap_err();
    assert_eq!(e.to_string(), "real server 2001:db8::1 does not exist");
}

#[test]
fn a_full_copy_refuses_and_changed_grows_it() {
    let mut t = HeapTable::with_capacity(MIN_CAPACITY).unwrap();
    for i in 0..MIN_CAPACITY {
        t.apply(&add_nth(i)).unwrap();
    }
    assert_eq!(t.capacity(), MIN_CAPACITY);
    let slots: BTreeSet<u32> = t.iter().map(|(_, s)| s.stats_slot).collect();
    assert_eq!(slots, (0..MIN_CAPACITY as u32).collect());
    let e = t.apply(&add_nth(MIN_CAPACITY)).unwrap_err();
    assert_eq!(e, ConfigError::TableFull);
    assert_eq!(e.to_string(), "table full: at most 1048576 real servers");
    assert_eq!(e.errno(), ENOSPC);
    assert_eq!(t.len(), MIN_CAPACITY, "a refused add leaves the table unchanged");
    let grown = t.apply_copy(&add_nth(MIN_CAPACITY)).unwrap();
    assert_eq!(grown.len(), MIN_CAPACITY + 1);
    assert_eq!(grown.capacity(), 2 * MIN_CAPACITY);
    for i in 0..MIN_CAPACITY {
        assert_eq!(slot_of(&grown, &nth(i)), slot_of(&t, &nth(i)), "a bigger copy keeps every slot");
    }
    let flushed = grown.apply_copy(&Command::Flush).unwrap();
    assert!(flushed.is_empty());
    assert_eq!(flushed.iter().count(), 0);
    assert_eq!(flushed.copy().capacity(), MIN_CAPACITY, "an empty table shrinks");
}

#[test]
fn holds_a_hundred_thousand_servers_at_o1_lookup() {
    const N: usize = 100_000;
    let mut t = HeapTable::with_capacity(N).unwrap();
    for i in 0..N {
        t.apply(&add_nth(i)).unwrap();
    }
    assert_eq!((t.len(), t.capacity(), t.slot_span()), (N, 131_072, N));
    assert_eq!(empty_table().slot_span(), 0);
    // Every server is found (probe runs stay correct with 100 000 neighbouring addresses).
    for i in (0..N).step_by(7) {
        assert_eq!(t.get(&nth(i)).unwrap().config.outer, nth(i));
    }
    assert!(t.get(&nth(N)).is_none());
    // One more server: the copy doubles.
    let t2 = t.apply_copy(&add_nth(N)).unwrap();
    assert_eq!(t2.len(), N + 1);
    assert_eq!(t2.capacity(), 131_072);
    let t3 = t2.apply_copy(&Command::Delete(nth(5))).unwrap();
    assert_eq!(t3.len(), N);
    assert!(t3.get(&nth(5)).is_none() && t3.get(&nth(6)).is_some());
}

#[test]
fn the_limit_is_max_real_servers() {
    let mut t = HeapTable::with_capacity(MAX_REAL_SERVERS).unwrap();
    for i in 0..MAX_REAL_SERVERS {
        t.apply(&add_nth(i)).unwrap();
    }
    assert_eq!(t.apply_copy(&add_nth(MAX_REAL_SERVERS)).unwrap_err(), ConfigError::TableFull);
    assert_eq!(capacity_for(MAX_REAL_SERVERS + 1), MAX_REAL_SERVERS);
    assert_eq!(capacity_for(usize::MAX), MAX_REAL_SERVERS);
    assert_eq!(capacity_for(0), MIN_CAPACITY);
    assert_eq!(capacity_for(65), 128);
}

#[test]
fn a_slot_freed_by_a_change_is_not_given_out_by_the_same_change() {
    // Readers of the table before the change may still count packets for the removed server
    // in its slot until the change's grace period ends; a new server there would get them.
    let full: Vec<usize> = (0..MIN_CAPACITY).collect();
    let mut t = HeapTable::with_capacity(MIN_CAPACITY).unwrap();
    for &i in &full {
        t.apply(&add_nth(i)).unwrap();
    }
    let old_slot = slot_of(&t, &nth(3));
    t.apply(&Command::Delete(nth(3))).unwrap();
    assert_eq!(t.apply(&add_nth(1000)).unwrap_err(), ConfigError::TableFull, "the retired slot stays out");
    // The next change, on a copy made after the grace period, may reuse it.
    let t2 = t.copy();
    let t3 = t2.apply_copy(&add_nth(1000)).unwrap();
    assert_eq!(t3.capacity(), MIN_CAPACITY);
    assert_eq!(slot_of(&t3, &nth(1000)), old_slot);
    assert_eq!(fresh(&t3), vec![old_slot]);
}

#[test]
fn a_freed_slot_is_not_reused_at_once() {
    let t = empty_table().apply_copy(&add_nth(1)).unwrap();
    let t = t.apply_copy(&add_nth(2)).unwrap();
    let freed = slot_of(&t, &nth(1));
    let t = t.apply_copy(&Command::Delete(nth(1))).unwrap();
    let t = t.apply_copy(&add_nth(3)).unwrap();
    assert_ne!(slot_of(&t, &nth(3)), freed);
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
        let mut table = empty_table();
        let mut model: HashMap<InetAddr, (u16, u32)> = HashMap::new();
        for op in ops {
            let cmd = match op {
                Op::Add(i, p) => Command::Add(pool_addr(i),
                    RealServerConfig { outer: pool_addr(i), port: p, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero }),
                Op::Edit(i, p) => Command::Edit(pool_addr(i), EditFields { port: Some(p), ..Default::default() }),
                Op::Del(i) => Command::Delete(pool_addr(i)),
                Op::Flush => Command::Flush,
            };
            let before = table.clone();
            let result = table.apply_copy(&cmd);
            match (&cmd, result) {
                (Command::Add(addr, cfg), Ok(next)) => {
                    prop_assert!(!model.contains_key(addr));
                    let added = fresh(&next);
                    prop_assert_eq!(added.len(), 1);
                    let slot = added[0] as u32;
                    prop_assert!(model.values().all(|&(_, s)| s != slot), "slot reused while live");
                    model.insert(*addr, (cfg.port, slot));
                    table = next;
                }
                (Command::Add(addr, _), Err(e)) => {
                    prop_assert!(model.contains_key(addr));
                    prop_assert_eq!(e, ConfigError::AlreadyExists(*addr));
                }
                (Command::Edit(addr, f), Ok(next)) => {
                    prop_assert!(fresh(&next).is_empty());
                    model.get_mut(addr).unwrap().0 = f.port.unwrap();
                    table = next;
                }
                (Command::Delete(addr), Ok(next)) => {
                    model.remove(addr).unwrap();
                    table = next;
                }
                (Command::Edit(addr, _) | Command::Delete(addr), Err(e)) => {
                    prop_assert!(!model.contains_key(addr));
                    prop_assert_eq!(e, ConfigError::NotFound(*addr));
                }
                (Command::Flush, Ok(next)) => {
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
            let slots: BTreeSet<u32> = table.iter().map(|(_, s)| s.stats_slot).collect();
            prop_assert_eq!(slots.len(), model.len(), "slots unique");
            prop_assert!(slots.iter().all(|&s| (s as usize) < table.capacity()));
        }
    }
}

fn v4(last: u8) -> InetAddr {
    InetAddr::v4([10, 8, 0, last])
}

fn server(port: u16) -> RealServerConfig {
    RealServerConfig { outer: v4(99), port, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero }
}

fn table_of(servers: &[(u8, u16)]) -> HeapTable {
    let mut table = empty_table();
    for &(last, port) in servers {
        table.apply(&Command::Add(v4(last), server(port))).unwrap();
    }
    table
}

#[test]
fn replace_with_keeps_the_slots_of_servers_listed_before() {
    let before = table_of(&[(1, 1), (2, 2), (3, 3)]);
    let wanted = table_of(&[(2, 20), (3, 3), (4, 4)]);
    let table = HeapTable::changed(&before, before.missing_from(&wanted), |next| next.replace_with(&wanted)).unwrap();
    assert_eq!(table.len(), 3);
    assert!(table.get(&v4(1)).is_none());
    assert_eq!(slot_of(&table, &v4(2)), slot_of(&before, &v4(2)), "kept its counters' slot");
    assert_eq!(slot_of(&table, &v4(3)), slot_of(&before, &v4(3)));
    assert_eq!(table.get(&v4(2)).unwrap().config.port, 20, "took the new settings");
    assert_eq!(fresh(&table), vec![slot_of(&table, &v4(4))]);
    assert_ne!(slot_of(&table, &v4(4)), slot_of(&before, &v4(1)), "not the slot freed by the same change");
}

#[test]
fn replace_with_gives_a_kept_server_every_new_setting() {
    let before = table_of(&[(1, 1)]);
    let changed = RealServerConfig {
        outer: InetAddr::parse("fd08::99").unwrap(),
        port: 2,
        csum: ChecksumMode::RemoteOffload,
        flow_label: FlowLabelMode::Hash,
    };
    let mut wanted = empty_table();
    wanted.apply(&Command::Add(v4(1), changed)).unwrap();
    let table = HeapTable::changed(&before, 0, |next| next.replace_with(&wanted)).unwrap();
    assert_eq!(table.get(&v4(1)).unwrap().config, changed);
    assert_eq!(slot_of(&table, &v4(1)), slot_of(&before, &v4(1)), "kept its counters' slot");
}

#[test]
fn replace_with_an_empty_table_flushes() {
    let mut table = table_of(&[(1, 1), (2, 2)]);
    table.replace_with(&empty_table()).unwrap();
    assert!(table.is_empty());
}

#[test]
fn iter_from_resumes_after_the_last_slot_shown() {
    let table = table_of(&(1..=10).map(|i| (i, u16::from(i))).collect::<Vec<_>>());
    assert_eq!(table.iter_from(table.capacity()).count(), 0);
    let all: Vec<usize> = table.iter_from(0).map(|(slot, _, _)| slot).collect();
    assert_eq!(all.len(), 10);
    let rest: Vec<usize> = table.iter_from(all[4]).map(|(slot, _, _)| slot).collect();
    assert_eq!(rest, all[4..]);
    assert_eq!(table.iter_from(usize::MAX).count(), 0);
}

proptest! {
    /// Whatever the table held, replacing it gives exactly the wanted servers and settings.
    #[test]
    fn replace_with_lists_exactly_the_wanted_servers(
        before in proptest::collection::btree_map(0u8..40, 1u16..100, 0..30),
        wanted in proptest::collection::btree_map(0u8..40, 1u16..100, 0..30),
    ) {
        let before_table = table_of(&before.iter().map(|(&a, &p)| (a, p)).collect::<Vec<_>>());
        let wanted_table = table_of(&wanted.iter().map(|(&a, &p)| (a, p)).collect::<Vec<_>>());
        let adds = before_table.missing_from(&wanted_table);
        let table = HeapTable::changed(&before_table, adds, |next| next.replace_with(&wanted_table)).unwrap();
        let listed: BTreeSet<(Vec<u8>, u16)> = table.iter().map(|(a, s)| (a.octets().to_vec(), s.config.port)).collect();
        let expected: BTreeSet<(Vec<u8>, u16)> = wanted.iter().map(|(&a, &p)| (v4(a).octets().to_vec(), p)).collect();
        prop_assert_eq!(listed, expected);
    }
}

#[test]
fn a_replacement_sized_by_what_it_adds_runs_once() {
    const N: usize = 100_000;
    let mut wanted = HeapTable::with_capacity(N).unwrap();
    for i in 0..N {
        wanted.apply(&add_nth(i)).unwrap();
    }
    let empty = empty_table();
    let mut runs = 0;
    let table = HeapTable::changed(&empty, empty.missing_from(&wanted), |next| {
        runs += 1;
        next.replace_with(&wanted)
    })
    .unwrap();
    assert_eq!((runs, table.len(), table.capacity()), (1, N, 131_072));
    // Pushing the same servers again adds none: the copy stays at the same size.
    let mut runs = 0;
    let again = HeapTable::changed(&table, table.missing_from(&wanted), |next| {
        runs += 1;
        next.replace_with(&wanted)
    })
    .unwrap();
    assert_eq!((runs, again.capacity()), (1, 131_072));
    // Without the hint the copy grows by doubling: the change runs once per size.
    let mut runs = 0;
    HeapTable::changed(&empty, 0, |next| {
        runs += 1;
        next.replace_with(&wanted)
    })
    .unwrap();
    assert_eq!(runs, 12);
}

#[test]
fn the_address_hash_is_keyed() {
    // Addresses chosen to share one bucket (of 128) under one key spread under another: with a
    // key of its own per table, nobody can choose addresses that pile up in its index.
    let bucket = |addr: &InetAddr, key: u32| addr.hash32(key) & 127;
    let target = bucket(&nth(0), 1);
    let crafted: Vec<InetAddr> = (0..100_000).map(nth).filter(|a| bucket(a, 1) == target).take(32).collect();
    assert_eq!(crafted.len(), 32);
    let spread: BTreeSet<u32> = crafted.iter().map(|a| bucket(a, 2)).collect();
    assert!(spread.len() > 16, "{} buckets under another key", spread.len());
}
