//! Live test of `gue-traffic capture` on the loopback device. Needs
//! CAP_NET_RAW: skipped (with a message) when not running as root.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gue-traffic");

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// GUE (v0, proto 4) + inner IPv4/TCP 10.0.0.1:40000 -> 10.0.0.2:8080, 8 bytes of data.
fn gue_payload() -> Vec<u8> {
    let mut p = vec![0x00, 4, 0, 0];
    p.extend_from_slice(&[
        0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    p.extend_from_slice(&[
        0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(b"gue-test");
    p
}

#[test]
fn capture_on_loopback() {
    if !is_root() {
        eprintln!("SKIP capture_on_loopback: needs root (CAP_NET_RAW) for AF_PACKET");
        return;
    }
    // The receiver keeps the port open so the kernel sends no ICMP unreachable.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("lo.pcap");
    let mut child = Command::new(BIN)
        .args(["capture", "--iface", "lo", "--port", &port.to_string()])
        .arg("--pcap")
        .arg(&pcap)
        .args([
            "--count",
            "2",
            "--timeout-ms",
            "5000",
            "--direction",
            "out",
            "--summary",
            "--json",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn capture");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    if line.contains("cannot open AF_PACKET socket") {
        let _ = child.wait();
        eprintln!("SKIP capture_on_loopback: {}", line.trim());
        return;
    }
    assert!(
        line.contains("capturing on lo"),
        "unexpected first stderr line {line:?}"
    );

    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Noise to another port first: must be ignored.
    tx.send_to(b"noise", ("127.0.0.1", port.wrapping_add(1).max(1)))
        .unwrap();
    // 1: UDP checksum disabled (SO_NO_CHECK) -> zero; 2: normal -> valid.
    let one: libc::c_int = 1;
    // SAFETY: valid socket and option value.
    let r = unsafe {
        libc::setsockopt(
            tx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    tx.send_to(&gue_payload(), ("127.0.0.1", port)).unwrap();
    let tx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx2.send_to(&gue_payload(), ("127.0.0.1", port)).unwrap();

    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(
        out.status.success(),
        "status {:?}, stderr: {rest}",
        out.status
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let tail = "| gue v=0 c=0 hlen=0 proto=4 flags=0x0000 | inner=ipv4/tcp";
    let want = |csum: &str| {
        format!("ipv4 tos=0x00 df=1 ttl=64 proto=17 | udp dport={port} len=ok csum={csum} {tail}")
    };
    assert_eq!(lines[0]["layout"], want("zero"), "{}", lines[0]);
    assert_eq!(lines[1]["layout"], want("valid"), "{}", lines[1]);
    for l in &lines {
        assert_eq!(l["dir"], "out");
        assert_eq!(l["inner"]["sport"], 40000);
        assert_eq!(l["inner"]["dport"], 8080);
        assert_eq!(l["inner"]["total_length"], 48);
        assert_eq!(l["udp"]["dport"], port);
    }
    assert!(
        rest.contains(&format!("layout x1: {}", want("zero"))),
        "{rest}"
    );
    assert!(rest.contains("captured 2 packets on lo"), "{rest}");

    // The pcap holds the same two frames, as tcpdump would have captured them.
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    for l in &lines {
        let p = r.next_packet().expect("a packet per JSON line").unwrap();
        assert_eq!(p.data.len() as u64, l["frame_len"].as_u64().unwrap());
        assert_eq!(p.orig_len as usize, p.data.len());
        assert_eq!(&p.data[12..14], &[0x08, 0x00], "IPv4 ethertype");
        assert!(p.data.ends_with(&gue_payload()));
    }
    assert!(r.next_packet().is_none());
}

#[test]
fn capture_times_out_with_nothing() {
    if !is_root() {
        eprintln!("SKIP capture_times_out_with_nothing: needs root (CAP_NET_RAW) for AF_PACKET");
        return;
    }
    // A port nobody sends to: exit 1 with a clear message, no hang.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let start = std::time::Instant::now();
    let out = Command::new(BIN)
        .args([
            "capture",
            "--iface",
            "lo",
            "--port",
            &port.to_string(),
            "--timeout-ms",
            "300",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("cannot open AF_PACKET socket") {
        eprintln!("SKIP capture_times_out_with_nothing: {}", stderr.trim());
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no UDP packets to port"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(out.stdout.is_empty());
}

#[test]
fn capture_usage_errors() {
    let run = |a: &[&str]| Command::new(BIN).arg("capture").args(a).output().unwrap();
    assert_eq!(run(&["--port", "1"]).status.code(), Some(2));
    assert_eq!(run(&["--iface", "lo"]).status.code(), Some(2));
    assert_eq!(
        run(&["--iface", "lo", "--port", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["--iface", "lo", "--port", "1", "--direction", "up"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["--iface", "lo", "--port", "1", "--count", "0"])
            .status
            .code(),
        Some(2)
    );
    let o = run(&[
        "--iface",
        "nonexistent0",
        "--port",
        "1",
        "--timeout-ms",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such interface"));
}
