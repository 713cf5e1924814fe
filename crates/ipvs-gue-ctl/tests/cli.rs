//! Runs the binary against a regular file standing in for /proc/net/ipvs_gue.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const SAMPLE: &str = "\
# addr outer port csum packets bytes gso_packets drop_pmtu drop_no_route drop_no_headroom drop_bad_packet
10.0.1.2 10.0.1.2 5501 none 12 34567 3 0 0 0 0
2001:db8::10 192.0.2.10 6080 remcsum 123456789 98765432100 5 1 2 3 4
";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(proc_file: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_ipvs-gue-ctl"))
        .args(args)
        .arg("--proc")
        .arg(proc_file)
        .env_remove("IPVS_GUE_PROC")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs with a fresh proc file holding `initial`; returns the run and what
/// the tool appended.
fn run(initial: &str, args: &[&str]) -> (Run, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipvs_gue");
    fs::write(&path, initial).unwrap();
    let r = run_with(&path, args);
    let after = fs::read_to_string(&path).unwrap();
    let written = after
        .strip_prefix(initial)
        .expect("only appends")
        .to_string();
    (r, written)
}

#[test]
fn add_writes_one_canonical_line() {
    let (r, w) = run(SAMPLE, &["-a", "-r", "10.0.1.3", "--gue-port", "5501"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(w, "add 10.0.1.3 port 5501 csum none outer 10.0.1.3\n");

    let (r, w) = run(
        "",
        &[
            "--add-server",
            "--real-server=[2001:DB8::0:1]",
            "--gue-port=6080",
            "--csum",
            "remcsum",
            "--outer",
            "192.0.2.1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w,
        "add 2001:db8::1 port 6080 csum remcsum outer 192.0.2.1\n"
    );
}

#[test]
fn edit_delete_clear_lines() {
    let (r, w) = run(SAMPLE, &["-e", "-r", "10.0.1.2", "--csum", "udp"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w, "edit 10.0.1.2 csum udp\n");
    let (r, w) = run(SAMPLE, &["-d", "-r", "2001:db8::10"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w, "del 2001:db8::10\n");
    let (r, w) = run(SAMPLE, &["-C"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w, "flush\n");
}

#[test]
fn invalid_values_are_usage_errors_with_module_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-a", "-r", "10.0.1.3", "--gue-port", "70000"],
            "port 70000 out of range 1-65535",
        ),
        (
            &["-a", "-r", "10.0.0.300", "--gue-port", "1"],
            "'10.0.0.300' is not an IPv4 or IPv6 address",
        ),
        (
            &["-a", "-r", "10.0.0.3 port 9", "--gue-port", "1"],
            "'10.0.0.3 port 9' is not an IPv4 or IPv6 address",
        ),
        (
            &["-a", "-r", "10.0.0.3", "--gue-port", "1", "--csum", "crc"],
            "unknown checksum mode 'crc' (expected none, udp or remcsum)",
        ),
        (&["-a", "-r", "10.0.0.3"], "-a needs --gue-port PORT"),
        (
            &["-L", "-r", "10.0.0.3"],
            "option '--real-server' is not valid with -L",
        ),
        (
            &["-a", "-C"],
            "only one command may be given, not both -a and -C",
        ),
    ];
    for (args, msg) in cases {
        let (r, w) = run(SAMPLE, args);
        assert_eq!(r.code, 2, "{args:?}");
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            format!("ipvs-gue-ctl: {msg}"),
            "{args:?}"
        );
        assert_eq!(w, "", "nothing written for {args:?}");
    }
}

#[test]
fn table_errors_are_caught_before_writing() {
    let (r, w) = run(SAMPLE, &["-a", "-r", "10.0.1.2", "--gue-port", "1"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "ipvs-gue-ctl: real server 10.0.1.2 already exists; use edit\n"
    );
    assert_eq!(w, "");
    let (r, _) = run(SAMPLE, &["-d", "-r", "10.9.9.9"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "ipvs-gue-ctl: real server 10.9.9.9 does not exist\n"
    );
}

#[test]
fn missing_proc_file_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    for args in [&["-C"][..], &["-L"][..]] {
        let r = run_with(&path, args);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.stderr,
            format!(
                "ipvs-gue-ctl: {} not found: is the ipvs_gue module loaded? (insmod ipvs_gue.ko)\n",
                path.display()
            )
        );
    }
}

#[test]
fn env_var_selects_the_proc_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    fs::write(&path, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipvs-gue-ctl"))
        .arg("-C")
        .env("IPVS_GUE_PROC", &path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(fs::read_to_string(&path).unwrap(), "flush\n");
}

#[test]
fn list_plain_and_stats() {
    let (r, _) = run(SAMPLE, &["-Ln"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "\
IPVS GUE real servers (2 of 64)
RealServer        Outer      GuePort Csum
  -> 10.0.1.2     10.0.1.2      5501 none
  -> 2001:db8::10 192.0.2.10    6080 remcsum
"
    );
    let (r, _) = run(SAMPLE, &["-L", "-n", "--stats"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[1],
        "RealServer        Outer      GuePort Csum         Pkts     Bytes   GsoPkts  DropPmtu DropRoute  DropHdrm   DropBad"
    );
    assert_eq!(
        lines[3],
        "  -> 2001:db8::10 192.0.2.10    6080 remcsum   123456K    98765M         5         1         2         3         4"
    );
    let (r, _) = run(SAMPLE, &["--list", "--stats", "--exact"]);
    assert!(r.stdout.contains(" 123456789 98765432100 "), "{}", r.stdout);
}

#[test]
fn list_warns_about_bad_lines_but_shows_the_rest() {
    let (r, _) = run(&format!("{SAMPLE}garbage here\n"), &["-L"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    assert!(r.stdout.contains("(2 of 64)"));
}

#[test]
fn help_and_bad_usage() {
    let (r, _) = run("", &["-h"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("Usage:"));
    let (r, _) = run("", &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Try 'ipvs-gue-ctl -h'"));
}
