//! The `/proc/net/ipvs_gue` command language.

use gue_core::addr::InetAddr;
use gue_core::config::*;
use proptest::prelude::*;

fn a(s: &str) -> InetAddr {
    InetAddr::parse(s).unwrap()
}

fn err(line: &str) -> String {
    parse_command(line).expect_err(line).to_string()
}

#[test]
fn add_with_defaults() {
    assert_eq!(
        parse_command("add 10.0.1.2 port 5501"),
        Ok(Command::Add(
            a("10.0.1.2"),
            RealServerConfig {
                outer: a("10.0.1.2"),
                port: 5501,
                csum: ChecksumMode::None
            }
        ))
    );
}

#[test]
fn add_with_all_options_any_order_and_whitespace() {
    let expected = Command::Add(
        a("2001:db8::2"),
        RealServerConfig {
            outer: a("192.0.2.7"),
            port: 6080,
            csum: ChecksumMode::RemoteOffload,
        },
    );
    for line in [
        "add 2001:db8::2 port 6080 csum remcsum outer 192.0.2.7",
        "  add\t2001:db8::2 outer 192.0.2.7   csum remcsum port 6080\n",
        "add 2001:db8::2 csum remcsum port 6080 outer 192.0.2.7 # comment here\r\n",
    ] {
        assert_eq!(parse_command(line), Ok(expected), "{line:?}");
    }
}

#[test]
fn edit_del_flush_nothing() {
    assert_eq!(
        parse_command("edit 10.0.1.2 csum udp"),
        Ok(Command::Edit(
            a("10.0.1.2"),
            EditFields {
                csum: Some(ChecksumMode::Udp),
                ..Default::default()
            }
        ))
    );
    assert_eq!(parse_command("del ::1"), Ok(Command::Delete(a("::1"))));
    assert_eq!(parse_command("flush"), Ok(Command::Flush));
    assert_eq!(parse_command("flush # everything"), Ok(Command::Flush));
    for blank in ["", "   ", "\n", "# a comment", "   #x y z\n"] {
        assert_eq!(parse_command(blank), Ok(Command::Nothing), "{blank:?}");
    }
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        err("add 10.0.1.2 port 70000"),
        "port 70000 out of range 1-65535"
    );
    assert_eq!(err("add 10.0.1.2 port 0"), "port 0 out of range 1-65535");
    assert_eq!(
        err("add 10.0.1.2 port 99999999999999999999"),
        "port 99999999999999999999 out of range 1-65535"
    );
    assert_eq!(
        err("add 10.0.1.2 port http"),
        "invalid port 'http': expected a number 1-65535"
    );
    assert_eq!(
        err("add 10.0.1.2 port -1"),
        "invalid port '-1': expected a number 1-65535"
    );
    assert_eq!(
        err("add 10.0.1.2 port 1 foo 2"),
        "unknown keyword 'foo' (expected port, csum or outer)"
    );
    assert_eq!(
        err("add 10.0.0.300 port 1"),
        "'10.0.0.300' is not an IPv4 or IPv6 address"
    );
    assert_eq!(
        err("add 10.0.0.3 port 1 outer x"),
        "'x' is not an IPv4 or IPv6 address"
    );
    assert_eq!(err("add 10.0.1.2 port 1 port 2"), "duplicate option 'port'");
    assert_eq!(
        err("add 10.0.1.2 csum udp"),
        "missing port: add needs 'port <1-65535>'"
    );
    assert_eq!(err("add 10.0.1.2 port"), "missing value after 'port'");
    assert_eq!(
        err("add 10.0.1.2 port 1 csum"),
        "missing value after 'csum'"
    );
    assert_eq!(
        err("add 10.0.1.2 port 1 csum md5"),
        "unknown checksum mode 'md5' (expected none, udp or remcsum)"
    );
    assert_eq!(err("add"), "missing real server address after 'add'");
    assert_eq!(err("del"), "missing real server address after 'del'");
    assert_eq!(
        err("edit 10.0.1.2"),
        "nothing to edit: give at least one of port, csum, outer"
    );
    assert_eq!(err("del 10.0.1.2 now"), "trailing text 'now'");
    assert_eq!(err("flush all"), "trailing text 'all'");
    assert_eq!(
        err("ADD 10.0.1.2 port 1"),
        "unknown command 'ADD' (expected add, edit, del or flush)"
    );
    assert_eq!(
        err("add 10.0.1.2\0 port 1"),
        "invalid byte 0x00 at column 13: only printable ASCII is accepted"
    );
    assert_eq!(
        err("add é"),
        "invalid byte 0xc3 at column 5: only printable ASCII is accepted"
    );
    assert_eq!(
        err("flush\n\n"),
        "invalid byte 0x0a at column 6: only printable ASCII is accepted"
    );
}

#[test]
fn long_tokens_are_truncated_in_messages() {
    let long = "x".repeat(200);
    let msg = err(&format!("add {long}"));
    assert_eq!(
        msg,
        format!(
            "'{}...' is not an IPv4 or IPv6 address",
            "x".repeat(TOKEN_CAPACITY)
        )
    );
    let t = Token::new(&"é".repeat(40)); // 80 bytes, cut on a char boundary
    assert_eq!(t.as_str(), "é".repeat(32));
    assert!(t.to_string().ends_with("..."), "a truncated token shows it");
}

#[test]
fn errno_values() {
    assert_eq!(parse_command("bogus").unwrap_err().errno(), EINVAL);
    assert_eq!(ConfigError::AlreadyExists(a("1.2.3.4")).errno(), EEXIST);
    assert_eq!(ConfigError::NotFound(a("1.2.3.4")).errno(), ENOENT);
    assert_eq!(ConfigError::TableFull.errno(), ENOSPC);
}

#[test]
fn bytes_entry_point() {
    assert_eq!(parse_command_bytes(b"flush\n"), Ok(Command::Flush));
    assert!(matches!(
        parse_command_bytes(b"flush\xff"),
        Err(ConfigError::InvalidByte {
            byte: 0xff,
            column: 6
        })
    ));
}

#[test]
fn checksum_mode_text() {
    for m in [
        ChecksumMode::None,
        ChecksumMode::Udp,
        ChecksumMode::RemoteOffload,
    ] {
        assert_eq!(m.to_string().parse::<ChecksumMode>(), Ok(m));
    }
    assert_eq!(ChecksumMode::RemoteOffload.as_str(), "remcsum");
}

fn addr_strategy() -> impl Strategy<Value = InetAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(InetAddr::v4),
        any::<[u8; 16]>().prop_map(InetAddr::v6)
    ]
}

fn csum_strategy() -> impl Strategy<Value = ChecksumMode> {
    prop_oneof![
        Just(ChecksumMode::None),
        Just(ChecksumMode::Udp),
        Just(ChecksumMode::RemoteOffload)
    ]
}

fn command_strategy() -> impl Strategy<Value = Command> {
    prop_oneof![
        (addr_strategy(), addr_strategy(), 1u16.., csum_strategy()).prop_map(
            |(addr, outer, port, csum)| Command::Add(addr, RealServerConfig { outer, port, csum })
        ),
        (
            addr_strategy(),
            proptest::option::of(1u16..),
            proptest::option::of(csum_strategy()),
            proptest::option::of(addr_strategy())
        )
            .prop_filter("edit needs a field", |(_, p, c, o)| p.is_some()
                || c.is_some()
                || o.is_some())
            .prop_map(|(addr, port, csum, outer)| Command::Edit(
                addr,
                EditFields { port, csum, outer }
            )),
        addr_strategy().prop_map(Command::Delete),
        Just(Command::Flush),
        Just(Command::Nothing),
    ]
}

proptest! {
    #[test]
    fn display_round_trips(cmd in command_strategy()) {
        prop_assert_eq!(parse_command(&cmd.to_string()), Ok(cmd));
    }

    #[test]
    fn never_panics(line in "\\PC{0,100}") {
        let _ = parse_command(&line);
        let _ = parse_command_bytes(line.as_bytes());
    }

    #[test]
    fn never_panics_on_bytes(line in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = parse_command_bytes(&line);
    }

    #[test]
    fn any_port_text(n: u64) {
        let r = parse_command(&format!("add 1.2.3.4 port {n}"));
        if (1..=65535).contains(&n) {
            prop_assert!(r.is_ok());
        } else {
            prop_assert_eq!(r.unwrap_err().to_string(), format!("port {n} out of range 1-65535"));
        }
    }
}
