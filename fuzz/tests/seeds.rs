// SPDX-License-Identifier: GPL-2.0
//! Replays the seed corpora of the table targets without libFuzzer (no
//! coverage flags needed): `cargo test --manifest-path fuzz/Cargo.toml`.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus directory").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    for seed in &seeds {
        let data = fs::read(seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        println!("{target}: {} ({} bytes)", seed.display(), data.len());
        run(&data);
    }
    println!("{target}: {} seeds replayed", seeds.len());
}

#[test]
fn table_ops_seeds() {
    replay("table_ops", gue_core_fuzz::table_ops::run);
}

#[test]
fn config_apply_seeds() {
    replay("config_apply", gue_core_fuzz::config_apply::run);
}

/// A fixed-seed xorshift generator: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random bytes are valid `table_ops` input; a small address pool (the
/// second address byte picks it) makes commands collide.
#[test]
fn table_ops_random_inputs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let len = rng.below(2048) as usize;
        let data: Vec<u8> = (0..len)
            .map(|i| match i % 3 {
                // Mostly pool addresses: low bits of the second byte below 6.
                2 => (rng.below(256) as u8) & !7 | rng.below(6) as u8,
                _ => rng.below(256) as u8,
            })
            .collect();
        gue_core_fuzz::table_ops::run(&data);
    }
}

/// Writes of random command lines over 300 addresses, mostly valid against
/// what the table holds (the generator keeps track), so that writes fill,
/// flush and grow the table; one in five writes ends with a bad line and is
/// refused as a whole.
#[test]
fn config_apply_random_writes() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let addr = |a: u64| {
        if a.is_multiple_of(2) {
            format!("10.9.{}.{}", a / 100, a % 100)
        } else {
            format!("2001:db8::{a:x}")
        }
    };
    for _ in 0..60 {
        let mut present = std::collections::BTreeSet::new();
        let mut writes = Vec::new();
        let mut total = 0;
        while total < 3800 {
            let mut next = present.clone();
            let mut write = String::new();
            for _ in 0..rng.below(120) {
                let a = rng.below(300);
                let line = match (rng.below(100), next.contains(&a)) {
                    (0, _) => {
                        next.clear();
                        "flush".to_string()
                    }
                    (1..=5, _) => "# comment".to_string(),
                    (6..=60, false) => {
                        next.insert(a);
                        format!("add {} port {}", addr(a), 1 + rng.below(9))
                    }
                    (_, false) => continue,
                    (6..=80, true) => {
                        format!("edit {} port {} csum udp", addr(a), 1 + rng.below(9))
                    }
                    (_, true) => {
                        next.remove(&a);
                        format!("del {}", addr(a))
                    }
                };
                write.push_str(&line);
                write.push('\n');
            }
            if rng.below(5) == 0 {
                write.push_str(
                    [
                        "bogus",
                        "del 192.0.2.1",
                        "add 10.9.0.0 port 0",
                        "edit 192.0.2.2 port 1",
                    ][rng.below(4) as usize],
                );
            } else {
                present = next;
            }
            total += write.len() + 1;
            writes.push(write);
        }
        gue_core_fuzz::config_apply::run(writes.join("\0").as_bytes());
    }
}
