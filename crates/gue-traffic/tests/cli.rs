//! End-to-end tests of the gue-traffic binary.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gue-traffic");

/// A `gue-traffic serve` child, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(listen: &str) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("parse listening address");
    Server { child, addr }
}

fn run(args: &[&str]) -> (Output, Option<Value>) {
    let out = Command::new(BIN)
        .arg("run")
        .args(args)
        .args(["--json", "-"])
        .output()
        .expect("spawn run");
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn matrix(listen: &str) {
    let srv = start_server(listen);
    let target = srv.addr.to_string();
    let (out, json) = run(&[
        "--connect",
        &target,
        "--sizes",
        "0,1000,1K,64K,1M",
        "--requests",
        "6",
        "--connections",
        "4",
        "--deadline-ms",
        "1M=10000,*=10000",
        "--timeout-ms",
        "5000",
        "--seed",
        "7",
    ]);
    let j = json.unwrap_or_else(|| panic!("no JSON; stderr: {}", stderr(&out)));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let sizes = j["sizes"].as_array().unwrap();
    let expect = [0u64, 1000, 1024, 65536, 1 << 20];
    assert_eq!(sizes.len(), expect.len());
    for (s, &n) in sizes.iter().zip(&expect) {
        assert_eq!(u(s, "payload_bytes"), n);
        assert_eq!(u(s, "requests"), 6);
        assert_eq!(u(s, "ok"), 6);
        assert_eq!(u(s, "bytes_ok"), 6 * n);
        for k in ["mismatches", "timeouts", "errors", "over_deadline"] {
            assert_eq!(u(s, k), 0, "{k} in {s}");
        }
        let (p50, p99, max) = (
            s["p50_ms"].as_f64().unwrap(),
            s["p99_ms"].as_f64().unwrap(),
            s["max_ms"].as_f64().unwrap(),
        );
        assert!(p50 <= p99 && p99 <= max, "{s}");
        assert!(s["throughput_mbps"].as_f64().unwrap() >= 0.0);
        assert!(s["first_error"].is_null());
    }
    assert_eq!(u(&j, "total_ok"), 30);
    assert_eq!(u(&j, "total_requests"), 30);
    assert!(j["elapsed_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(j["passed"], Value::Bool(true));
    let err = stderr(&out);
    assert!(err.contains("1MiB: 6/6 ok, p50 "), "stderr: {err}");
    assert!(err.contains("Mbit/s"), "stderr: {err}");
}

#[test]
fn matrix_ipv4() {
    matrix("127.0.0.1:0");
}

#[test]
fn matrix_ipv6() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipping");
        return;
    }
    matrix("[::1]:0");
}

#[test]
fn json_to_file_and_large_payload() {
    let srv = start_server("127.0.0.1:0");
    let path = std::env::temp_dir().join(format!("gue-traffic-test-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args(["run", "--connect", &srv.addr.to_string(), "--sizes", "16M", "--requests", "2"])
        .args(["--connections", "2", "--json", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(out.stdout.is_empty());
    let j: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(u(&j["sizes"][0], "bytes_ok"), 32 << 20);
    assert!(stderr(&out).contains("16MiB: 2/2 ok"));
}

#[test]
fn server_survives_bad_clients() {
    let srv = start_server("127.0.0.1:0");
    // Truncated header, truncated body, and an absurd length followed by close.
    for junk in [&b"\x00\x00"[..], &b"\x00\x00\x00\x00\x00\x00\x00\x10abc"[..], &[0xff; 8][..]] {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(junk).unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    let (out, j) = run(&["--connect", &srv.addr.to_string(), "--sizes", "1K", "--requests", "3"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(u(&j.unwrap(), "total_ok"), 3);
}

/// Fake server: reads one request per loop iteration and lets `reply` decide
/// what to answer (None: never answer, keep the connection open).
fn fake_server(reply: fn(u64, String) -> Option<String>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            thread::spawn(move || loop {
                let mut hdr = [0u8; 8];
                if s.read_exact(&mut hdr).is_err() {
                    return;
                }
                let len = u64::from_be_bytes(hdr);
                let mut body = vec![0u8; len as usize];
                if s.read_exact(&mut body).is_err() {
                    return;
                }
                let digest: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
                match reply(len, digest) {
                    Some(r) => {
                        if s.write_all(r.as_bytes()).is_err() {
                            return;
                        }
                    }
                    None => thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    addr
}

#[test]
fn detects_wrong_hash() {
    let addr = fake_server(|len, _| Some(format!("{len} {}\n", "0".repeat(64))));
    let (out, j) = run(&["--connect", &addr.to_string(), "--sizes", "1K", "--timeout-ms", "2000"]);
    let j = j.expect("json");
    assert_eq!(out.status.code(), Some(1));
    let s = &j["sizes"][0];
    assert_eq!(u(s, "ok"), 0);
    assert_eq!(u(s, "mismatches"), 1);
    assert_eq!(u(s, "timeouts"), 0);
    assert_eq!(u(s, "errors"), 0);
    assert!(s["first_error"].as_str().unwrap().contains("sha256"));
    assert_eq!(j["passed"], Value::Bool(false));
    assert!(stderr(&out).contains("1KiB: 0/1 ok"));
    assert!(stderr(&out).contains("1 mismatches"));
}

#[test]
fn detects_wrong_length() {
    let addr = fake_server(|len, d| Some(format!("{} {d}\n", len + 1)));
    let (out, j) = run(&["--connect", &addr.to_string(), "--sizes", "100", "--requests", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(u(&j.unwrap()["sizes"][0], "mismatches"), 2);
}

#[test]
fn detects_garbage_reply() {
    let addr = fake_server(|_, _| Some("hello\n".into()));
    let (out, j) = run(&["--connect", &addr.to_string(), "--sizes", "100"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(u(&j.unwrap()["sizes"][0], "errors"), 1);
}

#[test]
fn detects_stall_within_timeout() {
    let addr = fake_server(|_, _| None);
    let t = Instant::now();
    let (out, j) = run(&["--connect", &addr.to_string(), "--sizes", "1K", "--timeout-ms", "500"]);
    let took = t.elapsed();
    let j = j.expect("json");
    assert_eq!(out.status.code(), Some(1));
    let s = &j["sizes"][0];
    assert_eq!(u(s, "timeouts"), 1);
    assert_eq!(u(s, "ok"), 0);
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(stderr(&out).contains("1 timeouts"));
}

#[test]
fn over_deadline_is_failure_but_ok() {
    let addr = fake_server(|len, d| {
        thread::sleep(Duration::from_millis(200));
        Some(format!("{len} {d}\n"))
    });
    let (out, j) = run(&["--connect", &addr.to_string(), "--sizes", "1K", "--deadline-ms", "1K=50"]);
    let s = &j.expect("json")["sizes"][0];
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(u(s, "ok"), 1);
    assert_eq!(u(s, "over_deadline"), 1);
    assert_eq!(u(s, "deadline_ms"), 50);
    assert!(s["p50_ms"].as_f64().unwrap() >= 190.0);
    assert!(stderr(&out).contains("1 over deadline 50 ms"));
}

#[test]
fn connection_refused_is_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (out, j) = run(&["--connect", &format!("127.0.0.1:{port}"), "--sizes", "1K", "--requests", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(u(&j.unwrap()["sizes"][0], "errors"), 2);
}

#[test]
fn usage_errors_exit_2() {
    let bad: &[&[&str]] = &[
        &[],
        &["bogus"],
        &["run"],
        &["run", "--connect", "127.0.0.1:1"],
        &["run", "--connect", "localhost:1", "--sizes", "1K"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1X"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1K", "--requests", "0"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1K", "--connections", "x"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1K", "--deadline-ms", "1M=5"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1K", "--timeout-ms", "0"],
        &["run", "--connect", "127.0.0.1:1", "--sizes", "1K", "--frobnicate"],
        &["serve"],
        &["serve", "--listen", "1.2.3.4"],
        // writes x percent must not overflow u64 (it did for --writes near u64::MAX)
        &["config-stress", "--writes", "18446744073709551615", "--single-pct", "100"],
    ];
    for args in bad {
        let out = Command::new(BIN).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&out).lines().count(), 2, "{args:?}");
        assert!(stderr(&out).ends_with(HINT), "{args:?}");
    }
    let out = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

const HINT: &str = "Try 'gue-traffic --help' for more information.\n";

/// The first stderr line of a usage error names the bad argument.
#[test]
fn usage_error_messages() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let first_line = |args: &[&OsStr]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out);
        assert!(text.ends_with(HINT), "{text}");
        text.lines().next().unwrap().to_owned()
    };
    let cases: &[(&str, &str)] = &[
        ("", "missing subcommand"),
        ("bogus", "unknown subcommand 'bogus'"),
        (
            "serve --listen 127.0.0.1:0 --bogus",
            "unknown option '--bogus'",
        ),
        ("serve --listen 127.0.0.1:0 -x", "invalid option '-x'"),
        (
            "serve --listen 127.0.0.1:0 extra",
            "unexpected argument 'extra'",
        ),
        (
            "serve --listen 127.0.0.1:0 --verbose=1",
            "unexpected argument for option '--verbose': \"1\"",
        ),
        ("serve --listen", "missing argument for option '--listen'"),
        (
            "serve --listen=1.2.3.4",
            "--listen: invalid address '1.2.3.4' (expected IPV4:PORT or [IPV6]:PORT, numeric only)",
        ),
        (
            "run --connect 127.0.0.1:1 --sizes 1K --connections 0",
            "--connections: must be between 1 and 4096",
        ),
        (
            "run --connect 127.0.0.1:1 --sizes 1K --json=",
            "--json: empty path",
        ),
        ("capture --iface lo --port 1 --pcap=", "--pcap: empty path"),
    ];
    for (args, msg) in cases {
        let args: Vec<&OsStr> = args.split_whitespace().map(OsStr::new).collect();
        assert_eq!(first_line(&args), format!("gue-traffic: {msg}"));
    }
    assert_eq!(
        first_line(&[
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::from_bytes(b"127.0.0.1:\xff")
        ]),
        "gue-traffic: --listen: \"127.0.0.1:\\xFF\" is not valid UTF-8"
    );
    assert_eq!(
        first_line(&[OsStr::from_bytes(b"r\xffn")]),
        "gue-traffic: unknown subcommand 'r\u{fffd}n'"
    );
}

/// `--help` (or `-h`) anywhere after the subcommand prints the usage and exits 0,
/// as the guest scripts' probes (`gue-traffic SUBCOMMAND --help | grep ...`) expect.
#[test]
fn help_anywhere() {
    for args in [
        &["config-stress", "--help"][..],
        &["serve", "--bogus", "-h"],
        &["capture", "--json", "--help"],
        &["help"],
        &["--help"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for sub in [
            "config-stress",
            "capture",
            "udp-rr",
            "sctp-run",
            "--pcap PATH",
        ] {
            assert!(text.contains(sub), "{args:?}: {sub}");
        }
    }
}
