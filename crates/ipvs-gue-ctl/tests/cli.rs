//! Runs the binary: arguments and input are checked before anything is sent, and without
//! the module (this host) every command that needs it says so. The module's side is tested
//! in the guest (tests/guest).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with_input(args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipvs-gue-ctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool may exit before reading (bad arguments): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with_input(args, "")
}

/// The module is loaded here: commands would reach a real table, so the tests that expect
/// it absent are skipped.
fn module_loaded() -> bool {
    Path::new("/sys/module/ipvs_gue").exists()
}

const NO_FAMILY: &str = "ipvs-gue-ctl: generic netlink family ipvs_gue not found: is the ipvs_gue module loaded? (insmod ipvs_gue.ko)\n";

#[test]
fn without_the_module_every_command_says_so() {
    if module_loaded() {
        eprintln!("skipped: the ipvs_gue module is loaded");
        return;
    }
    let commands: &[&[&str]] = &[
        &["-L"],
        &["-Ln", "--stats"],
        &["-L", "--json"],
        &["-L", "-r", "10.0.0.3"],
        &["-S"],
        &["-C"],
        &["-a", "-r", "10.0.1.3", "--gue-port", "5501"],
        &["-e", "-r", "10.0.1.3", "--csum", "udp"],
        &["-d", "-r", "2001:db8::10"],
        &["-R"],
    ];
    for args in commands {
        let r = run_with_input(args, "-a -r 10.0.0.1 --gue-port 5501\n");
        assert_eq!(
            (r.code, r.stderr.as_str(), r.stdout.as_str()),
            (1, NO_FAMILY, ""),
            "{args:?}"
        );
    }
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
            "unknown checksum mode 'crc' (expected none, udp, remcsum)",
        ),
        (&["-a", "-r", "10.0.0.3"], "-a needs --gue-port PORT"),
        (
            &["-L", "-r", "10.0.0.300"],
            "'10.0.0.300' is not an IPv4 or IPv6 address",
        ),
        (
            &["-C", "-r", "10.0.0.3"],
            "option '--real-server' is not valid with -C",
        ),
        (&["-C", "-v"], "option '--verbose' is not valid with -C"),
        (
            &["-a", "-C"],
            "only one command may be given, not both -a and -C",
        ),
        (&["-S", "--json"], "option '--json' is not valid with -S"),
        (
            &["-L", "--proc", "/proc/net/ipvs_gue"],
            "invalid option '--proc'",
        ),
    ];
    for (args, msg) in cases {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}");
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            format!("ipvs-gue-ctl: {msg}"),
            "{args:?}"
        );
    }
}

#[test]
fn restore_checks_every_line_before_sending() {
    // A usage error, not "family not found": nothing was sent.
    let input = "# saved by ipvs-gue-ctl -S\n-a -r 10.0.0.1 --gue-port 5501\n\n-a -r 10.0.0.2 --gue-port 0\n";
    let r = run_with_input(&["-R"], input);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next(),
        Some("ipvs-gue-ctl: line 4: port 0 out of range 1-65535")
    );
    let r = run_with_input(&["--restore"], "-a -r 10.0.0.1 --gue-port 1\n-C\n");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next(),
        Some("ipvs-gue-ctl: line 2: only -a lines can be restored, not -C")
    );
}

#[test]
fn help_version_and_bad_usage() {
    let r = run(&["-h"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("Usage:"));
    for form in ["-S|--save", "-R|--restore", "--json"] {
        assert!(r.stdout.contains(form), "{form}");
    }
    let r = run(&["--version"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, concat!("ipvs-gue-ctl ", env!("CARGO_PKG_VERSION"), "\n"))
    );
    let r = run(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Try 'ipvs-gue-ctl -h'"));
}
