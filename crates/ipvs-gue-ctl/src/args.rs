// SPDX-License-Identifier: GPL-2.0

//! Command-line parsing (lexopt), ipvsadm style: one command option (`-a`,
//! `-e`, `-d`, `-C`, `-L`, `-S`, `-R`) plus its parameters. Short flags may be
//! clustered (`-Ln`), values may be attached (`-r10.0.0.1`, `--gue-port=5501`).
//! The same parser reads the lines of `-R`'s input.

use std::ffi::OsString;

use gue_core::addr::InetAddr;
use gue_core::config::{ChecksumMode, Command, EditFields, FlowLabelMode, RealServerConfig};

/// The command the user asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Add,
    Edit,
    Delete,
    Clear,
    List,
    Save,
    Restore,
    Help,
    Version,
}

impl Mode {
    /// The short option, for messages.
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Add => "-a",
            Mode::Edit => "-e",
            Mode::Delete => "-d",
            Mode::Clear => "-C",
            Mode::List => "-L",
            Mode::Save => "-S",
            Mode::Restore => "-R",
            Mode::Help => "-h",
            Mode::Version => "-V",
        }
    }
}

/// Parsed arguments; values are still text, validated by `gue_core`.
#[derive(Clone, Debug, Default)]
pub struct Args {
    pub mode: Option<Mode>,
    pub real_server: Option<String>,
    pub gue_port: Option<String>,
    pub csum: Option<String>,
    pub outer: Option<String>,
    pub flowlabel: Option<String>,
    pub numeric: bool,
    pub stats: bool,
    pub exact: bool,
    pub json: bool,
    pub verbose: bool,
}

/// A usage error message.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

pub const USAGE: &str = "\
Usage:
  ipvs-gue-ctl -a|--add-server -r|--real-server ADDR --gue-port PORT [--csum MODE] [--outer ADDR]
               [--flowlabel MODE]
  ipvs-gue-ctl -e|--edit-server -r|--real-server ADDR [--gue-port PORT] [--csum MODE] [--outer ADDR]
               [--flowlabel MODE]
  ipvs-gue-ctl -d|--delete-server -r|--real-server ADDR
  ipvs-gue-ctl -C|--clear
  ipvs-gue-ctl -L|-l|--list [-r|--real-server ADDR] [-n|--numeric] [--stats] [--exact] [--json]
  ipvs-gue-ctl -S|--save [-n|--numeric]
  ipvs-gue-ctl -R|--restore [-v|--verbose] < FILE
  ipvs-gue-ctl -h|--help | -V|--version

Configures GUE (IP/UDP/GUE) encapsulation of IPVS tunnel traffic per real
server in the current network namespace, through the ipvs_gue module's
generic netlink family.

-S prints the table as -a lines, one per server. -R reads such lines from
standard input (blank lines and # comment lines allowed) and makes them the
whole table in one change: all or nothing. Input without a server is refused
(-C clears the table).

Options:
  -r, --real-server ADDR  IPVS real server (destination) address, IPv4 or IPv6;
                          with -L, list only that server
      --gue-port PORT     UDP destination port of the receiver's GUE socket (1-65535)
      --csum MODE         outer checksum: none (default), udp, or remcsum
                          (GUE remote checksum offload)
      --outer ADDR        outer destination address (default: the real server)
      --flowlabel MODE    flow label of an IPv6 outer header: zero (default, as
                          IPVS's own GUE) or hash (from the inner flow, RFC 6438,
                          for fabrics that hash on it); unused with an IPv4 outer
  -n, --numeric           numeric output (addresses are never resolved; for
                          ipvsadm compatibility)
      --stats             show packet, byte and drop counters
      --exact             print exact counter values instead of K/M/G units
      --json              print a JSON array of the servers, counters included
  -v, --verbose           -R: say how many servers were sent, in how many bytes,
                          and how long the kernel took from request to answer

Exit status: 0 success, 1 runtime error, 2 usage error.
";

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

/// How the user spelled an option, for messages.
fn spelling(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        lexopt::Arg::Short(c) => format!("-{c}"),
        lexopt::Arg::Long(name) => format!("--{name}"),
        lexopt::Arg::Value(v) => v.to_string_lossy().into_owned(),
    }
}

/// Stores a value option, refusing a second one.
fn set_once(slot: &mut Option<String>, name: &str, value: OsString) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage(format!("option '{name}' given twice")));
    }
    *slot = Some(
        value
            .into_string()
            .map_err(|v| usage(format!("option '{name}': {v:?} is not valid UTF-8")))?,
    );
    Ok(())
}

/// Parses the arguments after the program name.
pub fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Args, UsageError> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(raw);
    let mut args = Args::default();
    while let Some(arg) = parser.next()? {
        let name = spelling(&arg);
        let mode = match arg {
            Short('a') | Long("add-server") => Mode::Add,
            Short('e') | Long("edit-server") => Mode::Edit,
            Short('d') | Long("delete-server") => Mode::Delete,
            Short('C') | Long("clear") => Mode::Clear,
            Short('L' | 'l') | Long("list") => Mode::List,
            Short('S') | Long("save") => Mode::Save,
            Short('R') | Long("restore") => Mode::Restore,
            Short('h') | Long("help") => Mode::Help,
            Short('V') | Long("version") => Mode::Version,
            Short('r') | Long("real-server") => {
                set_once(&mut args.real_server, &name, parser.value()?)?;
                continue;
            }
            Long("gue-port") => {
                set_once(&mut args.gue_port, &name, parser.value()?)?;
                continue;
            }
            Long("csum") => {
                set_once(&mut args.csum, &name, parser.value()?)?;
                continue;
            }
            Long("outer") => {
                set_once(&mut args.outer, &name, parser.value()?)?;
                continue;
            }
            Long("flowlabel") => {
                set_once(&mut args.flowlabel, &name, parser.value()?)?;
                continue;
            }
            Short('n') | Long("numeric") => {
                args.numeric = true;
                continue;
            }
            Long("stats") => {
                args.stats = true;
                continue;
            }
            Long("exact") => {
                args.exact = true;
                continue;
            }
            Long("json") => {
                args.json = true;
                continue;
            }
            Short('v') | Long("verbose") => {
                args.verbose = true;
                continue;
            }
            Value(_) => return Err(usage(format!("unexpected argument '{name}'"))),
            _ => return Err(arg.unexpected().into()),
        };
        if let Some(prev) = args.mode.filter(|&p| p != mode) {
            return Err(usage(format!(
                "only one command may be given, not both {} and {}",
                prev.flag(),
                mode.flag()
            )));
        }
        args.mode = Some(mode);
    }
    check_combination(&args)?;
    Ok(args)
}

/// Rejects options that make no sense for the chosen command.
fn check_combination(args: &Args) -> Result<(), UsageError> {
    let mode = args
        .mode
        .ok_or_else(|| usage("no command given (one of -a, -e, -d, -C, -L, -S, -R, -h)"))?;
    let given = |present: bool, name: &str, allowed: &[Mode]| {
        if present && !allowed.contains(&mode) {
            Err(usage(format!(
                "option '{name}' is not valid with {}",
                mode.flag()
            )))
        } else {
            Ok(())
        }
    };
    use Mode::*;
    given(
        args.real_server.is_some(),
        "--real-server",
        &[Add, Edit, Delete, List],
    )?;
    given(args.gue_port.is_some(), "--gue-port", &[Add, Edit])?;
    given(args.csum.is_some(), "--csum", &[Add, Edit])?;
    given(args.outer.is_some(), "--outer", &[Add, Edit])?;
    given(args.flowlabel.is_some(), "--flowlabel", &[Add, Edit])?;
    given(args.numeric, "--numeric", &[List, Save])?;
    given(args.stats, "--stats", &[List])?;
    given(args.exact, "--exact", &[List])?;
    given(args.json, "--json", &[List])?;
    given(args.verbose, "--verbose", &[Restore])?;
    if matches!(mode, Add | Edit | Delete) && args.real_server.is_none() {
        return Err(usage(format!(
            "{} needs -r/--real-server ADDR",
            mode.flag()
        )));
    }
    if mode == Add && args.gue_port.is_none() {
        return Err(usage("-a needs --gue-port PORT"));
    }
    if mode == Edit
        && args.gue_port.is_none()
        && args.csum.is_none()
        && args.outer.is_none()
        && args.flowlabel.is_none()
    {
        return Err(usage(
            "nothing to edit: give at least one of --gue-port, --csum, --outer, --flowlabel",
        ));
    }
    Ok(())
}

/// An IPv4 or IPv6 address, IPv6 optionally in brackets.
fn parse_addr(text: &str) -> Result<InetAddr, UsageError> {
    InetAddr::parse(unbracket(text)).map_err(|_| usage(format!("'{text}' is not an IPv4 or IPv6 address")))
}

/// A port: decimal, 1-65535.
fn parse_port(text: &str) -> Result<u16, UsageError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage(format!("invalid port '{text}': expected a number 1-65535")));
    }
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(usage(format!("port {text} out of range 1-65535"))),
    }
}

/// One of `modes`, by its listing name (`name`); `what` names the setting in the error.
fn parse_mode<M: Copy>(text: &str, modes: &[M], name: fn(M) -> &'static str, what: &str) -> Result<M, UsageError> {
    modes.iter().copied().find(|&mode| name(mode) == text).ok_or_else(|| {
        let names: Vec<&str> = modes.iter().map(|&mode| name(mode)).collect();
        usage(format!("unknown {what} mode '{text}' (expected {})", names.join(", ")))
    })
}

/// `none`, `udp` or `remcsum`.
fn parse_csum(text: &str) -> Result<ChecksumMode, UsageError> {
    parse_mode(text, &ChecksumMode::ALL, ChecksumMode::as_str, "checksum")
}

/// `zero` or `hash`.
fn parse_flowlabel(text: &str) -> Result<FlowLabelMode, UsageError> {
    parse_mode(text, &FlowLabelMode::ALL, FlowLabelMode::as_str, "flow label")
}

/// Strips the brackets of `[2001:db8::1]`, the form ipvsadm uses for IPv6.
fn unbracket(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
}

impl Args {
    /// `-r ADDR` (with -L: the one server to list).
    pub fn real_server_addr(&self) -> Result<Option<InetAddr>, UsageError> {
        self.real_server.as_deref().map(parse_addr).transpose()
    }

    /// The change `-a`, `-e`, `-d` or `-C` asks for.
    pub fn command(&self) -> Result<Command, UsageError> {
        let real = self.real_server_addr()?;
        let outer = self.outer.as_deref().map(parse_addr).transpose()?;
        let port = self.gue_port.as_deref().map(parse_port).transpose()?;
        let csum = self.csum.as_deref().map(parse_csum).transpose()?;
        let flow_label = self.flowlabel.as_deref().map(parse_flowlabel).transpose()?;
        let need_real = || real.ok_or_else(|| usage("missing -r/--real-server"));
        Ok(match self.mode {
            Some(Mode::Add) => {
                let real = need_real()?;
                let port = port.ok_or_else(|| usage("-a needs --gue-port PORT"))?;
                Command::Add(
                    real,
                    RealServerConfig {
                        outer: outer.unwrap_or(real),
                        port,
                        csum: csum.unwrap_or_default(),
                        flow_label: flow_label.unwrap_or_default(),
                    },
                )
            }
            Some(Mode::Edit) => Command::Edit(need_real()?, EditFields { port, csum, outer, flow_label }),
            Some(Mode::Delete) => Command::Delete(need_real()?),
            Some(Mode::Clear) => Command::Flush,
            Some(other) => return Err(usage(format!("{} is not a change", other.flag()))),
            None => return Err(usage("no command given")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gue_core::addr::InetAddr;

    fn p(args: &[&str]) -> Result<Args, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn clustered_and_attached_forms() {
        let a = p(&["-Ln", "--stats"]).unwrap();
        assert_eq!(a.mode, Some(Mode::List));
        assert!(a.numeric && a.stats);
        let a = p(&["-ar10.0.0.1", "--gue-port=5501", "--csum", "udp"]).unwrap();
        assert_eq!(a.mode, Some(Mode::Add));
        assert_eq!(a.real_server.as_deref(), Some("10.0.0.1"));
        assert_eq!(a.gue_port.as_deref(), Some("5501"));
        assert_eq!(a.csum.as_deref(), Some("udp"));
    }

    #[test]
    fn usage_errors() {
        let e = |args: &[&str]| p(args).unwrap_err().0;
        assert_eq!(
            e(&[]),
            "no command given (one of -a, -e, -d, -C, -L, -S, -R, -h)"
        );
        assert_eq!(
            e(&["-a", "-d"]),
            "only one command may be given, not both -a and -d"
        );
        assert_eq!(e(&["-x"]), "invalid option '-x'");
        assert_eq!(e(&["--frob"]), "invalid option '--frob'");
        assert_eq!(e(&["-a", "-r"]), "missing argument for option '-r'");
        assert_eq!(
            e(&["-d", "-r", "1.2.3.4", "--gue-port", "1"]),
            "option '--gue-port' is not valid with -d"
        );
        assert_eq!(e(&["-a", "-r", "1.2.3.4"]), "-a needs --gue-port PORT");
        assert_eq!(
            e(&["-e", "-r", "1.2.3.4"]),
            "nothing to edit: give at least one of --gue-port, --csum, --outer, --flowlabel"
        );
        assert_eq!(
            e(&["-d", "-r", "1.2.3.4", "--flowlabel", "hash"]),
            "option '--flowlabel' is not valid with -d"
        );
        assert_eq!(e(&["-a", "-r", "1", "-r", "2"]), "option '-r' given twice");
        assert_eq!(e(&["-C", "extra"]), "unexpected argument 'extra'");
        assert_eq!(
            e(&["--clear=1"]),
            "unexpected argument for option '--clear': \"1\""
        );
        assert_eq!(
            e(&["-S", "--stats"]),
            "option '--stats' is not valid with -S"
        );
        assert_eq!(e(&["-R", "-n"]), "option '--numeric' is not valid with -R");
        assert_eq!(e(&["-C", "--json"]), "option '--json' is not valid with -C");
        assert_eq!(
            e(&["-R", "-r", "1.2.3.4"]),
            "option '--real-server' is not valid with -R"
        );
        assert_eq!(e(&["--proc", "/x", "-L"]), "invalid option '--proc'");
    }

    #[test]
    fn save_restore_and_json_modes() {
        assert_eq!(p(&["-Sn"]).unwrap().mode, Some(Mode::Save));
        assert_eq!(p(&["--restore"]).unwrap().mode, Some(Mode::Restore));
        let a = p(&["--list", "--json", "--stats"]).unwrap();
        assert!(a.json && a.stats && a.mode == Some(Mode::List));
    }

    #[test]
    fn commands_from_arguments() {
        let c = |args: &[&str]| p(args).unwrap().command();
        let v6 = InetAddr::parse("2001:db8::1").unwrap();
        assert_eq!(
            c(&[
                "-a",
                "-r",
                "[2001:DB8::0:1]",
                "--gue-port",
                "6080",
                "--outer",
                "192.0.2.1"
            ]),
            Ok(Command::Add(
                v6,
                RealServerConfig {
                    outer: InetAddr::v4([192, 0, 2, 1]),
                    port: 6080,
                    csum: ChecksumMode::None,
                    flow_label: FlowLabelMode::Zero,
                }
            ))
        );
        assert_eq!(
            c(&["-e", "-r", "2001:db8::1", "--csum", "udp"]),
            Ok(Command::Edit(
                v6,
                EditFields {
                    csum: Some(ChecksumMode::Udp),
                    ..EditFields::default()
                }
            ))
        );
        assert_eq!(
            c(&["-e", "-r", "2001:db8::1", "--flowlabel", "hash"]),
            Ok(Command::Edit(
                v6,
                EditFields {
                    flow_label: Some(FlowLabelMode::Hash),
                    ..EditFields::default()
                }
            ))
        );
        assert_eq!(
            c(&["-e", "-r", "2001:db8::1", "--flowlabel", "random"]),
            Err(UsageError("unknown flow label mode 'random' (expected zero, hash)".into()))
        );
        assert_eq!(c(&["-d", "-r", "2001:db8::1"]), Ok(Command::Delete(v6)));
        assert_eq!(c(&["-C"]), Ok(Command::Flush));
        assert_eq!(c(&["-L"]), Err(UsageError("-L is not a change".into())));
        assert_eq!(
            c(&["-a", "-r", "10.0.0.3", "--gue-port", "70000"]),
            Err(UsageError("port 70000 out of range 1-65535".into()))
        );
    }

    #[test]
    fn arguments_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'1', 0xff]);
        let e = parse_args([OsString::from("-d"), OsString::from("-r"), bad()])
            .unwrap_err()
            .0;
        assert_eq!(e, "option '-r': \"1\\xFF\" is not valid UTF-8");
    }
}
