//! Tests of `gue-traffic udp-echo` / `udp-rr` on the loopback device: integrity, the TOS /
//! traffic class and IP options / IPv6 extension headers the receiver reports, and that each
//! check fails when the other side lies. IPv6 extension-header cases need CAP_NET_RAW (root):
//! skipped with a message otherwise.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gue-traffic");

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stdout {:?}, stderr {}", o.stdout, stderr(o)))
}

fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `udp-echo` and waits until it is bound; returns the child (stdout: JSON).
fn echo(listen: &str, count: u32) -> Child {
    let mut c = Command::new(BIN)
        .args([
            "udp-echo",
            "--listen",
            listen,
            "--count",
            &count.to_string(),
            "--timeout-ms",
            "8000",
            "--json",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn udp-echo");
    let mut r = BufReader::new(c.stderr.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line:?}");
    // Keep draining stderr: the server reports there when it stops.
    thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut rest);
    });
    c
}

fn rr(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("udp-rr")
        .args(args)
        .args(["--json", "-"])
        .output()
        .expect("spawn udp-rr")
}

#[test]
fn ipv4_round_trip_with_tos_and_options() {
    let port = free_udp_port("127.0.0.1");
    let to = format!("127.0.0.1:{port}");
    let srv = echo(&to, 8);
    // NOP + record route with 3 slots: the sender fills slot 1 with its source address and the
    // receiver slot 2 with the destination (RFC 791 as Linux implements it).
    let o = rr(&[
        "--to",
        &to,
        "--sizes",
        "64,3000",
        "--requests",
        "4",
        "--flows",
        "2",
        "--tos",
        "0x00,0x01,0x02,0xbb",
        "--ip-options",
        "01070f04000000000000000000000000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["requests"], 8);
    assert_eq!(j["ok"], 8);
    assert_eq!(j["local_ports"].as_array().unwrap().len(), 2);
    assert_ne!(j["local_ports"][0], j["local_ports"][1]);
    for s in j["sizes"].as_array().unwrap() {
        assert_eq!(
            (
                s["lost"].as_u64(),
                s["mismatches"].as_u64(),
                s["tos_mismatches"].as_u64()
            ),
            (Some(0), Some(0), Some(0))
        );
    }
    let out = srv.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let e = json(&out);
    assert_eq!(e["datagrams"], 8);
    assert_eq!(e["replies"], 8);
    assert_eq!(
        (e["min_bytes"].as_u64(), e["max_bytes"].as_u64()),
        (Some(64), Some(3000))
    );
    for t in ["0x00", "0x01", "0x02", "0xbb"] {
        assert_eq!(e["tos"][t], 2, "{}", e["tos"]);
    }
    // Slot 1: the sender's source; slot 2: the receiver (spec_dst); pointer 12.
    let want = "01070f0c7f0000017f00000100000000";
    let got = e["ip_options"].as_object().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let (blob, n) = got.iter().next().unwrap();
    assert_eq!(n, 8);
    assert_eq!(blob, want);
}

#[test]
fn ipv6_extension_headers_are_reported() {
    if !is_root() {
        eprintln!("skipping: IPV6_HOPOPTS/IPV6_DSTOPTS need CAP_NET_RAW");
        return;
    }
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let port = free_udp_port("[::1]");
    let to = format!("[::1]:{port}");
    let srv = echo(&to, 3);
    let o = rr(&[
        "--to",
        &to,
        "--sizes",
        "100",
        "--requests",
        "3",
        "--tos",
        "0x2f",
        "--hopopts",
        "00001e0445444745",
        "--dstopts",
        "00001e0444535421",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["ok"], 3);
    let e = json(&srv.wait_with_output().unwrap());
    assert_eq!(e["tos"]["0x2f"], 3, "{e}");
    // The kernel writes the next-header byte: hop-by-hop -> destination options (60) -> UDP (17).
    assert_eq!(e["hopopts"]["3c001e0445444745"], 3, "{e}");
    assert_eq!(e["dstopts"]["11001e0444535421"], 3, "{e}");
}

/// A fake server that answers with a wrong digest, then with a wrong TOS: both must fail.
#[test]
fn lies_are_caught() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = s.local_addr().unwrap().to_string();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for i in 0..2 {
            let (n, from) = s.recv_from(&mut buf).unwrap();
            let mut r = [0u8; 48];
            r[..4].copy_from_slice(b"GUER");
            r[4..8].copy_from_slice(&buf[4..8]);
            r[8..12].copy_from_slice(&(n as u32).to_be_bytes());
            if i == 1 {
                // Right digest, wrong TOS.
                use sha2::Digest;
                r[16..].copy_from_slice(&sha2::Sha256::digest(&buf[..n]));
                r[12] = 0x03;
                r[13] = 1;
            }
            s.send_to(&r, from).unwrap();
        }
    });
    let o = rr(&[
        "--to",
        &to,
        "--sizes",
        "64",
        "--requests",
        "2",
        "--tos",
        "0x02",
        "--timeout-ms",
        "2000",
    ]);
    t.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["ok"], 0);
    assert_eq!(j["sizes"][0]["mismatches"], 1);
    assert_eq!(j["sizes"][0]["tos_mismatches"], 1);
    assert_eq!(j["passed"], false);
}

#[test]
fn nobody_listening_is_lost() {
    let port = free_udp_port("127.0.0.1");
    let o = rr(&[
        "--to",
        &format!("127.0.0.1:{port}"),
        "--sizes",
        "64",
        "--requests",
        "2",
        "--timeout-ms",
        "300",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let j = json(&o);
    assert_eq!(j["sizes"][0]["lost"], 2);
    // --no-reply only counts what was sent.
    let o = rr(&[
        "--to",
        &format!("127.0.0.1:{port}"),
        "--sizes",
        "64",
        "--requests",
        "2",
        "--no-reply",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The echo server with a count exits 1 when too few arrive.
    let srv = Command::new(BIN)
        .args([
            "udp-echo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--count",
            "2",
            "--timeout-ms",
            "300",
        ])
        .output()
        .unwrap();
    assert_eq!(srv.status.code(), Some(1));
    assert_eq!(json(&srv)["datagrams"], 0);
    thread::sleep(Duration::from_millis(10));
}

#[test]
fn fixed_source_ports() {
    let port = free_udp_port("127.0.0.1");
    let to = format!("127.0.0.1:{port}");
    let base = free_udp_port("127.0.0.1");
    let srv = echo(&to, 3);
    let o = rr(&[
        "--to",
        &to,
        "--sizes",
        "64",
        "--requests",
        "3",
        "--flows",
        "3",
        "--src-port",
        &base.to_string(),
        "--bind",
        "127.0.0.1",
    ]);
    let _ = srv.wait_with_output();
    if !o.status.success() && stderr(&o).contains("Address already in use") {
        eprintln!("skipping: port range {base}.. busy");
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    let ports: Vec<u64> = j["local_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(
        ports,
        vec![u64::from(base), u64::from(base) + 1, u64::from(base) + 2]
    );
}

#[test]
fn usage_errors_exit_2() {
    for a in [
        vec!["udp-rr", "--sizes", "64"],
        vec!["udp-rr", "--to", "127.0.0.1:9", "--sizes", "4"],
        vec!["udp-echo"],
        vec!["udp-echo", "--listen", "127.0.0.1:9", "--bogus"],
        vec!["sctp-run", "--connect", "127.0.0.1:9"],
        vec!["sctp-serve"],
    ] {
        let o = Command::new(BIN).args(&a).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
    }
    let h = Command::new(BIN)
        .args(["udp-rr", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&h.stdout).contains("udp-rr --to"));
}
