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
fn netlink_requests_seeds() {
    replay("netlink_requests", gue_core_fuzz::netlink_requests::run);
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

/// Requests that mostly decode, over the sixteen pool addresses: adds,
/// edits, deletes, flushes and replacements that fill, empty and refill the
/// table; one attribute in twenty is random (bad lengths, unknown types).
#[test]
fn netlink_requests_mostly_valid() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..300 {
        let mut data = Vec::new();
        for _ in 0..rng.below(40) {
            let op = rng.below(5) as u8;
            data.push(op);
            let servers = if op == 4 { rng.below(12) as u8 } else { 1 };
            if op == 4 {
                data.push(servers);
            }
            if op == 3 {
                continue;
            }
            for _ in 0..servers {
                // The first N of address (pool), port, csum, outer (pool).
                let n = 1 + rng.below(4) as u8;
                data.push(n);
                for ty in 1..=n {
                    if rng.below(20) == 0 {
                        data.extend([rng.below(7) as u8, 4, 0, 0, 0, rng.below(256) as u8]);
                        continue;
                    }
                    match ty {
                        1 | 4 => data.extend([ty, 17, rng.below(16) as u8]),
                        2 => data.extend([ty, 2, 1 + rng.below(250) as u8, 0]),
                        _ => data.extend([ty, 1, rng.below(3) as u8]),
                    }
                }
            }
        }
        gue_core_fuzz::netlink_requests::run(&data);
    }
}

/// Random bytes are valid `netlink_requests` input too.
#[test]
fn netlink_requests_random_inputs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let data: Vec<u8> = (0..rng.below(1024)).map(|_| rng.below(256) as u8).collect();
        gue_core_fuzz::netlink_requests::run(&data);
    }
}
