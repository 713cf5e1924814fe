//! Tests of `gue-traffic send`, `icmp-error`, `udp-sink` and `run --bind` on
//! the loopback device. Raw-socket cases need CAP_NET_RAW: skipped (with a
//! message) when not running as root.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gue-traffic");

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

fn has_ipv6_loopback() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stdout {:?}, stderr {}", o.stdout, stderr(o)))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// A free UDP port on `ip` (bound and released).
fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `udp-sink`; returns once it reported "listening on".
fn start_sink(listen: &str, extra: &[&str]) -> Child {
    let mut child = Command::new(BIN)
        .args(["udp-sink", "--listen", listen, "--json", "-"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn udp-sink");
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("listening on "),
        "unexpected first line {line:?}"
    );
    // Keep draining stderr so the child never blocks on it.
    thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    child
}

fn udp_roundtrip(ip: &str) {
    let port = free_udp_port(ip);
    let listen = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    let sink = start_sink(&listen, &["--count", "5", "--timeout-ms", "5000"]);
    let from_port = free_udp_port(ip);
    let from = if ip.contains(':') {
        format!("[{ip}]:{from_port}")
    } else {
        format!("{ip}:{from_port}")
    };
    let out = Command::new(BIN)
        .args([
            "send", "--to", &listen, "--bind", &from, "--count", "5", "--size", "3000",
        ])
        .args(["--interval-ms", "1", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let j = json(&out);
    assert_eq!(u(&j, "sent"), 5);
    assert_eq!(u(&j, "bytes"), 15000);
    assert_eq!(u(&j, "errors"), 0);
    assert_eq!(j["proto"], "udp");
    assert_eq!(j["from"], from.as_str());
    assert!(
        stderr(&out).contains("sent 5/5 udp packets (15000 bytes)"),
        "{}",
        stderr(&out)
    );
    let s = sink.wait_with_output().unwrap();
    assert_eq!(s.status.code(), Some(0));
    let j = json(&s);
    assert_eq!(u(&j, "datagrams"), 5);
    assert_eq!(u(&j, "bytes"), 15000);
    assert_eq!(u(&j, "min_bytes"), 3000);
    assert_eq!(u(&j, "max_bytes"), 3000);
    assert_eq!(u(&j, "sources"), 1);
    assert!(j["error"].is_null());
}

#[test]
fn udp_send_to_sink_ipv4() {
    udp_roundtrip("127.0.0.1");
}

#[test]
fn udp_send_to_sink_ipv6() {
    if !has_ipv6_loopback() {
        eprintln!("no IPv6 loopback; skipping");
        return;
    }
    udp_roundtrip("::1");
}

#[test]
fn sink_times_out_short() {
    let port = free_udp_port("127.0.0.1");
    let start = Instant::now();
    let out = Command::new(BIN)
        .args([
            "udp-sink",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--count",
            "2",
        ])
        .args(["--timeout-ms", "300", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(3));
    let j = json(&out);
    assert_eq!(u(&j, "datagrams"), 0);
    assert!(j["min_bytes"].is_null());
    assert!(stderr(&out).contains("received 0 datagrams"));
}

/// Accepts one connection, checks the peer address, answers one request.
#[test]
fn run_binds_local_address() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        let mut hdr = [0u8; 8];
        s.read_exact(&mut hdr).unwrap();
        let mut body = vec![0u8; u64::from_be_bytes(hdr) as usize];
        s.read_exact(&mut body).unwrap();
        let d: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        s.write_all(format!("{} {d}\n", body.len()).as_bytes())
            .unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        peer
    });
    let out = Command::new(BIN)
        .args([
            "run",
            "--connect",
            &addr.to_string(),
            "--bind",
            "127.0.0.2",
            "--sizes",
            "1K",
        ])
        .args(["--timeout-ms", "5000", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(u(&json(&out), "total_ok"), 1);
    let peer = server.join().unwrap();
    assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
}

#[test]
fn run_bind_refused_is_error() {
    // A local address that is not ours: bind fails, reported per request.
    let out = Command::new(BIN)
        .args([
            "run",
            "--connect",
            "127.0.0.1:9",
            "--bind",
            "192.0.2.1",
            "--sizes",
            "1K",
        ])
        .args(["--timeout-ms", "1000", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(u(&j["sizes"][0], "errors"), 1);
    assert!(j["sizes"][0]["first_error"]
        .as_str()
        .unwrap()
        .contains("bind 192.0.2.1"));
}

/// A raw receive socket for `proto` on the family of `like`, 2 s timeout.
fn raw_rx(v6: bool, proto: i32) -> Option<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: valid socket and option value.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Some(fd)
}

/// Next packet on `fd` for which `want` holds (IPv4 raw sockets include the IP header).
fn recv_matching(fd: &OwnedFd, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert!(n >= 0, "recv: {}", std::io::Error::last_os_error());
        let p = &buf[..n as usize];
        if want(p) {
            return p.to_vec();
        }
    }
    panic!("no matching packet");
}

fn sum16(data: &[u8]) -> u16 {
    let mut s: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn esp_and_ah_packets() {
    if !is_root() {
        eprintln!("SKIP esp_and_ah_packets: needs root (CAP_NET_RAW) for raw sockets");
        return;
    }
    for (proto, num, spi) in [("esp", 50, 0x4242u32), ("51", 51, 0x4343)] {
        let rx = raw_rx(false, num).expect("raw socket");
        let out = Command::new(BIN)
            .args([
                "send",
                "--to",
                "127.0.0.1",
                "--proto",
                proto,
                "--count",
                "2",
            ])
            .args(["--spi", &spi.to_string(), "--json", "-"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        assert_eq!(u(&json(&out), "sent"), 2);
        let spi_at = if num == 50 { 0 } else { 4 };
        for seq in [1u32, 2] {
            let p = recv_matching(&rx, |p| {
                let ihl = usize::from(p[0] & 15) * 4;
                p.len() >= ihl + spi_at + 8
                    && p[ihl + spi_at..ihl + spi_at + 4] == spi.to_be_bytes()
                    && p[ihl + spi_at + 4..ihl + spi_at + 8] == seq.to_be_bytes()
            });
            assert_eq!(i32::from(p[9]), num);
            let len = p.len() - usize::from(p[0] & 15) * 4;
            assert_eq!(len, if num == 50 { 64 } else { 24 });
        }
    }
}

#[test]
fn icmp_frag_needed_on_loopback() {
    if !is_root() {
        eprintln!("SKIP icmp_frag_needed_on_loopback: needs root (CAP_NET_RAW)");
        return;
    }
    let rx = raw_rx(false, libc::IPPROTO_ICMP).expect("raw socket");
    let out = Command::new(BIN)
        .args([
            "icmp-error",
            "--to",
            "127.0.0.1",
            "--quote-src",
            "127.0.0.1:7000",
        ])
        .args([
            "--quote-dst",
            "127.0.0.3:41234",
            "--mtu",
            "1300",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let j = json(&out);
    assert_eq!(u(&j, "sent"), 1);
    assert_eq!(j["kind"], "frag-needed");
    let p = recv_matching(&rx, |p| {
        let ihl = usize::from(p[0] & 15) * 4;
        p.len() >= ihl + 36
            && p[ihl] == 3
            && p[ihl + 1] == 4
            && p[ihl + 8 + 16..ihl + 8 + 20] == [127, 0, 0, 3]
    });
    let icmp = &p[usize::from(p[0] & 15) * 4..];
    assert_eq!(icmp.len(), 36);
    assert_eq!(sum16(icmp), 0xffff, "ICMP checksum");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1300);
    let quoted = &icmp[8..28];
    assert_eq!(sum16(quoted), 0xffff, "quoted IPv4 header checksum");
    assert_eq!(u16::from_be_bytes([quoted[2], quoted[3]]), 1400);
    assert_eq!(u16::from_be_bytes([icmp[28], icmp[29]]), 7000);
    assert_eq!(u16::from_be_bytes([icmp[30], icmp[31]]), 41234);
}

#[test]
fn icmpv6_packet_too_big_on_loopback() {
    if !is_root() || !has_ipv6_loopback() {
        eprintln!("SKIP icmpv6_packet_too_big_on_loopback: needs root and IPv6 loopback");
        return;
    }
    let rx = raw_rx(true, libc::IPPROTO_ICMPV6).expect("raw socket");
    let out = Command::new(BIN)
        .args(["icmp-error", "--to", "::1", "--quote-src", "[::1]:7000"])
        .args([
            "--quote-dst",
            "[::1]:41235",
            "--quote-proto",
            "tcp",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(json(&out)["kind"], "packet-too-big");
    // IPv6 raw sockets deliver the ICMPv6 message without the IP header.
    let m = recv_matching(&rx, |m| {
        m.len() >= 8 + 40 + 20 && m[0] == 2 && u16::from_be_bytes([m[50], m[51]]) == 41235
    });
    assert_eq!(m.len(), 8 + 40 + 20);
    assert_ne!(
        u16::from_be_bytes([m[2], m[3]]),
        0,
        "the kernel fills the checksum"
    );
    assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1400);
    assert_eq!(m[8] >> 4, 6);
    assert_eq!(m[8 + 6], 6, "quoted next header TCP");
    assert_eq!(u16::from_be_bytes([m[48], m[49]]), 7000);
}

#[test]
fn new_subcommand_usage_errors_exit_2() {
    let bad: &[&[&str]] = &[
        &["send"],
        &["send", "--to", "127.0.0.1"],
        &["send", "--to", "127.0.0.1:9", "--proto", "gre"],
        &["send", "--to", "127.0.0.1:9", "--proto", "0"],
        &["send", "--to", "127.0.0.1:9", "--count", "0"],
        &["send", "--to", "127.0.0.1:9", "--size", "70000"],
        &["send", "--to", "127.0.0.1:9", "--bind", "[::1]:0"],
        &["send", "--to", "127.0.0.1", "--proto", "esp", "--spi", "0"],
        &["send", "--to", "host:9"],
        &["icmp-error", "--to", "127.0.0.1"],
        &[
            "icmp-error",
            "--to",
            "127.0.0.1",
            "--quote-src",
            "[::1]:1",
            "--quote-dst",
            "[::1]:2",
        ],
        &[
            "icmp-error",
            "--to",
            "127.0.0.1",
            "--quote-src",
            "127.0.0.1:1",
            "--quote-dst",
            "127.0.0.1:2",
            "--mtu",
            "70000",
        ],
        &[
            "icmp-error",
            "--to",
            "127.0.0.1",
            "--quote-src",
            "127.0.0.1:1",
            "--quote-dst",
            "127.0.0.1:2",
            "--quote-proto",
            "sctp",
        ],
        &[
            "icmp-error",
            "--to",
            "127.0.0.1",
            "--quote-src",
            "127.0.0.1:1",
            "--quote-dst",
            "127.0.0.1:2",
            "--quote-len",
            "10",
        ],
        &["udp-sink"],
        &["udp-sink", "--listen", "127.0.0.1"],
        &["udp-sink", "--listen", "127.0.0.1:0", "--timeout-ms", "0"],
        &[
            "run",
            "--connect",
            "127.0.0.1:1",
            "--sizes",
            "1K",
            "--bind",
            "[::1]:0",
        ],
    ];
    for args in bad {
        let out = Command::new(BIN).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).ends_with("Try 'gue-traffic --help' for more information.\n"),
            "{args:?}"
        );
    }
    for sub in ["send", "icmp-error", "udp-sink"] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("gue-traffic {sub} ")));
    }
}
