// SPDX-License-Identifier: GPL-2.0

//! `-R`'s input: `-a` lines as `-S` prints them, in the command line's own syntax, read
//! whole and checked before anything is sent, so that a bad line changes nothing.

use std::collections::HashMap;
use std::ffi::OsString;

use gue_core::addr::InetAddr;
use gue_core::config::{Command, ConfigError, RealServerConfig};
use gue_core::table::MAX_REAL_SERVERS;

use crate::args::{parse_args, Mode, UsageError};

/// The servers to restore, in input order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restore {
    /// Each server's address and settings.
    pub servers: Vec<(InetAddr, RealServerConfig)>,
    /// The input line each server came from, to point at it if the module refuses it.
    pub lines: Vec<usize>,
}

/// Parses `input`: one `-a` line per server; blank lines and lines starting with `#` are
/// skipped. A bad line, a server listed twice or more than the table holds is an error
/// naming the line. Input without a server is refused: restoring it would empty the table,
/// which is what an empty file from a failed `-S` would do to a director (`-C` clears).
pub fn parse(input: &[u8]) -> Result<Restore, UsageError> {
    let mut restore = Restore::default();
    let mut first_seen: HashMap<InetAddr, usize> = HashMap::new();
    for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let at = |message: String| UsageError(format!("line {line}: {message}"));
        let raw = raw.trim_ascii();
        if raw.is_empty() || raw.starts_with(b"#") {
            continue;
        }
        let text = std::str::from_utf8(raw).map_err(|_| at("not valid UTF-8".into()))?;
        let args =
            parse_args(text.split_ascii_whitespace().map(OsString::from)).map_err(|e| at(e.0))?;
        let (addr, config) = match (args.mode, args.command()) {
            (Some(Mode::Add), Ok(Command::Add(addr, config))) => (addr, config),
            (Some(Mode::Add), Err(e)) => return Err(at(e.0)),
            (mode, _) => {
                let given = mode.map_or("no command", Mode::flag);
                return Err(at(format!("only -a lines can be restored, not {given}")));
            }
        };
        if let Some(first) = first_seen.insert(addr, line) {
            return Err(at(format!(
                "real server {addr} listed twice (first on line {first})"
            )));
        }
        if restore.servers.len() == MAX_REAL_SERVERS {
            return Err(at(ConfigError::TableFull.to_string()));
        }
        restore.servers.push((addr, config));
        restore.lines.push(line);
    }
    if restore.servers.is_empty() {
        return Err(UsageError(
            "the input lists no servers: restoring it would empty the table (-C clears it)".into(),
        ));
    }
    Ok(restore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::save;
    use ipvs_gue_ctl::wire::Server;
    use gue_core::config::{ChecksumMode, FlowLabelMode};
    use gue_core::stats::StatsSnapshot;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn addr() -> impl Strategy<Value = InetAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(InetAddr::v4),
            any::<[u8; 16]>().prop_map(InetAddr::v6)
        ]
    }

    proptest! {
        /// What `-S` prints, `-R` reads back to the same servers, in the same order.
        #[test]
        fn save_output_restores_the_same_servers(
            table in proptest::collection::hash_map(addr(), (addr(), 1u16.., select(ChecksumMode::ALL.to_vec()), select(FlowLabelMode::ALL.to_vec())), 1..50),
        ) {
            let rows: Vec<Server> = table
                .iter()
                .map(|(&addr, &(outer, port, csum, flow_label))| Server {
                    addr,
                    config: RealServerConfig { outer, port, csum, flow_label },
                    stats: StatsSnapshot::default(),
                })
                .collect();
            let restore = parse(save(&rows).as_bytes()).unwrap();
            let expected: Vec<_> = rows.iter().map(|r| (r.addr, r.config)).collect();
            prop_assert_eq!(restore.servers, expected);
            prop_assert_eq!(restore.lines, (1..=rows.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn skips_blank_and_comment_lines() {
        let input = b"# saved\n\n  -a -r 10.0.0.1 --gue-port 5501\r\n\t\n-a -r [2001:db8::1] --gue-port=6080 --csum remcsum";
        let restore = parse(input).unwrap();
        assert_eq!(restore.lines, [3, 5]);
        assert_eq!(restore.servers[1].1.csum, ChecksumMode::RemoteOffload);
    }

    #[test]
    fn an_input_without_servers_is_refused() {
        let refused = Err(UsageError(
            "the input lists no servers: restoring it would empty the table (-C clears it)".into(),
        ));
        assert_eq!(parse(b""), refused);
        assert_eq!(parse(b"# saved by ipvs-gue-ctl -S

"), refused);
    }

    #[test]
    fn bad_lines_are_named() {
        let cases: [(&[u8], &str); 8] = [
            (
                b"-a -r 10.0.0.1 --gue-port 1\n-d -r 10.0.0.1",
                "line 2: only -a lines can be restored, not -d",
            ),
            (
                b"\n\n-a -r 10.0.0.1 --gue-port 70000",
                "line 3: port 70000 out of range 1-65535",
            ),
            (b"-a -r 10.0.0.1", "line 1: -a needs --gue-port PORT"),
            (
                b"-a -r 10.0.0.1 --gue-port 1 # note",
                "line 1: unexpected argument '#'",
            ),
            (b"-L", "line 1: only -a lines can be restored, not -L"),
            (b"add 10.0.0.1 port 1", "line 1: unexpected argument 'add'"),
            (
                b"-a -r 10.0.0.1 --gue-port 1\n-a -r 10.0.0.1 --gue-port 2",
                "line 2: real server 10.0.0.1 listed twice (first on line 1)",
            ),
            (
                b"# \xff\n-a -r 10.0.0.\xff --gue-port 1",
                "line 2: not valid UTF-8",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(
                parse(input),
                Err(UsageError(message.into())),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
