// SPDX-License-Identifier: GPL-2.0

//! Command-line parsing, ipvsadm style: one command option (`-a`, `-e`,
//! `-d`, `-C`, `-L`) plus its parameters. Short flags may be clustered
//! (`-Ln`), values may be attached (`-r10.0.0.1`, `--gue-port=5501`).

use std::ffi::OsString;
use std::path::PathBuf;

/// Default location of the module's control file.
pub const DEFAULT_PROC: &str = "/proc/net/ipvs_gue";

/// The command the user asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Add,
    Edit,
    Delete,
    Clear,
    List,
    Help,
    Version,
}

impl Mode {
    fn flag(self) -> &'static str {
        match self {
            Mode::Add => "-a",
            Mode::Edit => "-e",
            Mode::Delete => "-d",
            Mode::Clear => "-C",
            Mode::List => "-L",
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
    pub numeric: bool,
    pub stats: bool,
    pub exact: bool,
    pub proc_path: Option<PathBuf>,
}

/// A usage error message.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

pub const USAGE: &str = "\
Usage:
  ipvs-gue-ctl -a|--add-server -r|--real-server ADDR --gue-port PORT [--csum MODE] [--outer ADDR]
  ipvs-gue-ctl -e|--edit-server -r|--real-server ADDR [--gue-port PORT] [--csum MODE] [--outer ADDR]
  ipvs-gue-ctl -d|--delete-server -r|--real-server ADDR
  ipvs-gue-ctl -C|--clear
  ipvs-gue-ctl -L|-l|--list [-n|--numeric] [--stats] [--exact]
  ipvs-gue-ctl -h|--help | -V|--version

Configures GUE (IP/UDP/GUE) encapsulation of IPVS tunnel traffic per real
server through the ipvs_gue module's control file in the current network
namespace.

Options:
  -r, --real-server ADDR  IPVS real server (destination) address, IPv4 or IPv6
      --gue-port PORT     UDP destination port of the receiver's GUE socket (1-65535)
      --csum MODE         outer checksum: none (default), udp, or remcsum
                          (GUE remote checksum offload)
      --outer ADDR        outer destination address (default: the real server)
  -n, --numeric           numeric output (addresses are never resolved; for
                          ipvsadm compatibility)
      --stats             show packet, byte and drop counters
      --exact             print exact counter values instead of K/M/G units
      --proc PATH         control file (default /proc/net/ipvs_gue, or $IPVS_GUE_PROC)

Exit status: 0 success, 1 runtime error, 2 usage error.
";

enum Opt {
    Mode(Mode),
    RealServer,
    GuePort,
    Csum,
    Outer,
    Numeric,
    Stats,
    Exact,
    Proc,
}

fn long_opt(name: &str) -> Option<Opt> {
    Some(match name {
        "add-server" => Opt::Mode(Mode::Add),
        "edit-server" => Opt::Mode(Mode::Edit),
        "delete-server" => Opt::Mode(Mode::Delete),
        "clear" => Opt::Mode(Mode::Clear),
        "list" => Opt::Mode(Mode::List),
        "help" => Opt::Mode(Mode::Help),
        "version" => Opt::Mode(Mode::Version),
        "real-server" => Opt::RealServer,
        "gue-port" => Opt::GuePort,
        "csum" => Opt::Csum,
        "outer" => Opt::Outer,
        "numeric" => Opt::Numeric,
        "stats" => Opt::Stats,
        "exact" => Opt::Exact,
        "proc" => Opt::Proc,
        _ => return None,
    })
}

fn short_opt(c: char) -> Option<Opt> {
    Some(match c {
        'a' => Opt::Mode(Mode::Add),
        'e' => Opt::Mode(Mode::Edit),
        'd' => Opt::Mode(Mode::Delete),
        'C' => Opt::Mode(Mode::Clear),
        'L' | 'l' => Opt::Mode(Mode::List),
        'h' => Opt::Mode(Mode::Help),
        'V' => Opt::Mode(Mode::Version),
        'r' => Opt::RealServer,
        'n' => Opt::Numeric,
        _ => return None,
    })
}

fn takes_value(opt: &Opt) -> bool {
    matches!(
        opt,
        Opt::RealServer | Opt::GuePort | Opt::Csum | Opt::Outer | Opt::Proc
    )
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses the arguments after the program name.
pub fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Args, UsageError> {
    let mut raw = raw.into_iter();
    let mut args = Args::default();
    while let Some(arg) = raw.next() {
        let arg = arg
            .into_string()
            .map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))?;
        // (display name, option, attached value)
        let mut items: Vec<(String, Opt, Option<String>)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let opt = long_opt(name).ok_or_else(|| usage(format!("unknown option '--{name}'")))?;
            if value.is_some() && !takes_value(&opt) {
                return Err(usage(format!("option '--{name}' takes no value")));
            }
            items.push((format!("--{name}"), opt, value));
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                let opt = short_opt(c).ok_or_else(|| usage(format!("unknown option '-{c}'")))?;
                if takes_value(&opt) {
                    let rest = &shorts[i + c.len_utf8()..];
                    let value = (!rest.is_empty()).then(|| rest.to_string());
                    items.push((format!("-{c}"), opt, value));
                    break;
                }
                items.push((format!("-{c}"), opt, None));
            }
        } else {
            return Err(usage(format!("unexpected argument '{arg}'")));
        }
        for (name, opt, value) in items {
            let mut value = || -> Result<String, UsageError> {
                match value.clone() {
                    Some(v) => Ok(v),
                    None => raw
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| usage(format!("option '{name}' needs a value"))),
                }
            };
            let slot = match opt {
                Opt::Mode(m) => {
                    if let Some(prev) = args.mode.filter(|&p| p != m) {
                        return Err(usage(format!(
                            "only one command may be given, not both {} and {}",
                            prev.flag(),
                            m.flag()
                        )));
                    }
                    args.mode = Some(m);
                    continue;
                }
                Opt::Numeric => {
                    args.numeric = true;
                    continue;
                }
                Opt::Stats => {
                    args.stats = true;
                    continue;
                }
                Opt::Exact => {
                    args.exact = true;
                    continue;
                }
                Opt::Proc => {
                    args.proc_path = Some(PathBuf::from(value()?));
                    continue;
                }
                Opt::RealServer => &mut args.real_server,
                Opt::GuePort => &mut args.gue_port,
                Opt::Csum => &mut args.csum,
                Opt::Outer => &mut args.outer,
            };
            if slot.is_some() {
                return Err(usage(format!("option '{name}' given twice")));
            }
            *slot = Some(value()?);
        }
    }
    check_combination(&args)?;
    Ok(args)
}

/// Rejects options that make no sense for the chosen command.
fn check_combination(args: &Args) -> Result<(), UsageError> {
    let mode = args
        .mode
        .ok_or_else(|| usage("no command given (one of -a, -e, -d, -C, -L, -h)"))?;
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
        &[Add, Edit, Delete],
    )?;
    given(args.gue_port.is_some(), "--gue-port", &[Add, Edit])?;
    given(args.csum.is_some(), "--csum", &[Add, Edit])?;
    given(args.outer.is_some(), "--outer", &[Add, Edit])?;
    given(args.numeric, "--numeric", &[List])?;
    given(args.stats, "--stats", &[List])?;
    given(args.exact, "--exact", &[List])?;
    if matches!(mode, Add | Edit | Delete) && args.real_server.is_none() {
        return Err(usage(format!(
            "{} needs -r/--real-server ADDR",
            mode.flag()
        )));
    }
    if mode == Add && args.gue_port.is_none() {
        return Err(usage("-a needs --gue-port PORT"));
    }
    if mode == Edit && args.gue_port.is_none() && args.csum.is_none() && args.outer.is_none() {
        return Err(usage(
            "nothing to edit: give at least one of --gue-port, --csum, --outer",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e(&[]), "no command given (one of -a, -e, -d, -C, -L, -h)");
        assert_eq!(
            e(&["-a", "-d"]),
            "only one command may be given, not both -a and -d"
        );
        assert_eq!(e(&["-x"]), "unknown option '-x'");
        assert_eq!(e(&["--frob"]), "unknown option '--frob'");
        assert_eq!(e(&["-a", "-r"]), "option '-r' needs a value");
        assert_eq!(
            e(&["-d", "-r", "1.2.3.4", "--gue-port", "1"]),
            "option '--gue-port' is not valid with -d"
        );
        assert_eq!(e(&["-a", "-r", "1.2.3.4"]), "-a needs --gue-port PORT");
        assert_eq!(
            e(&["-e", "-r", "1.2.3.4"]),
            "nothing to edit: give at least one of --gue-port, --csum, --outer"
        );
        assert_eq!(e(&["-a", "-r", "1", "-r", "2"]), "option '-r' given twice");
        assert_eq!(e(&["-C", "extra"]), "unexpected argument 'extra'");
        assert_eq!(e(&["--clear=1"]), "option '--clear' takes no value");
    }
}
