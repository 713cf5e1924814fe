//! Command-line parsing: lexopt for the option syntax (long options only,
//! `--name VALUE` or `--name=VALUE`, no positional arguments) and the value
//! parsers (sizes with K/M/G suffixes, `SIZE=MS` deadline lists, numeric
//! addresses).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::report::JsonDest;

/// A usage error; reported on one line to stderr and mapped to exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, UsageError>;

pub fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(UsageError(msg.into()))
}

/// The options of one subcommand, read one at a time; the value readers
/// name the current option in their errors.
pub struct Options {
    parser: lexopt::Parser,
    /// The current option as spelled in messages: `--name`.
    option: String,
}

impl Options {
    pub fn new(args: impl IntoIterator<Item = OsString>) -> Self {
        Options {
            parser: lexopt::Parser::from_args(args),
            option: String::new(),
        }
    }

    /// The name (without `--`) of the next option; None after the last one.
    pub fn next(&mut self) -> Result<Option<String>> {
        use lexopt::Arg::{Long, Short, Value};
        match self.parser.next()? {
            None => Ok(None),
            Some(Long(name)) => {
                self.option = format!("--{name}");
                Ok(Some(name.to_owned()))
            }
            Some(Value(v)) => err(format!("unexpected argument '{}'", v.to_string_lossy())),
            Some(arg @ Short(_)) => Err(arg.unexpected().into()),
        }
    }

    /// The error for an option the subcommand does not know.
    pub fn unknown(&self) -> UsageError {
        UsageError(format!("unknown option '{}'", self.option))
    }

    /// An error about the current option's value.
    pub fn invalid<T>(&self, msg: impl std::fmt::Display) -> Result<T> {
        err(format!("{}: {msg}", self.option))
    }

    /// The current option's value, which may be any bytes (a path).
    pub fn os_value(&mut self) -> Result<OsString> {
        Ok(self.parser.value()?)
    }

    /// The current option's value as text.
    pub fn text(&mut self) -> Result<String> {
        let v = self.os_value()?;
        v.into_string()
            .or_else(|v| self.invalid(format!("{v:?} is not valid UTF-8")))
    }

    /// A non-empty path.
    pub fn path(&mut self) -> Result<PathBuf> {
        let v = self.os_value()?;
        if v.is_empty() {
            return self.invalid("empty path");
        }
        Ok(PathBuf::from(v))
    }

    /// `--json PATH|-`.
    pub fn json(&mut self) -> Result<JsonDest> {
        let path = self.path()?;
        Ok(if path.as_os_str() == "-" {
            JsonDest::Stdout
        } else {
            JsonDest::File(path)
        })
    }

    pub fn number(&mut self) -> Result<u64> {
        let v = self.text()?;
        parse_u64(&self.option, &v)
    }

    pub fn number_in(&mut self, lo: u64, hi: u64) -> Result<u64> {
        let n = self.number()?;
        if !(lo..=hi).contains(&n) {
            return self.invalid(format!("must be between {lo} and {hi}"));
        }
        Ok(n)
    }

    pub fn positive(&mut self) -> Result<u64> {
        let n = self.number()?;
        if n == 0 {
            return self.invalid("must be > 0");
        }
        Ok(n)
    }

    /// A timeout: milliseconds, > 0.
    pub fn millis(&mut self) -> Result<Duration> {
        Ok(Duration::from_millis(self.positive()?))
    }

    /// `IPV4:PORT` or `[IPV6]:PORT`.
    pub fn addr(&mut self) -> Result<SocketAddr> {
        let v = self.text()?;
        parse_addr(&self.option, &v)
    }

    /// An address with an optional port.
    pub fn endpoint(&mut self) -> Result<SocketAddr> {
        let v = self.text()?;
        parse_endpoint(&self.option, &v)
    }

    /// A size with an optional K/M/G suffix.
    pub fn size(&mut self) -> Result<u64> {
        let v = self.text()?;
        parse_size(&v).or_else(|e| self.invalid(e))
    }

    /// `--sizes SIZE[,SIZE...]`.
    pub fn sizes(&mut self) -> Result<Vec<u64>> {
        parse_sizes(&self.text()?)
    }
}

/// Options from string literals, for the parsers' tests.
#[cfg(test)]
pub fn options(args: &[&str]) -> Options {
    Options::new(args.iter().map(OsString::from))
}

/// Parses a numeric socket address: `1.2.3.4:80`, `[fd00::1]:80`.
/// Host names are rejected on purpose: the binary is linked statically against
/// glibc and name resolution would need NSS modules that the guest lacks.
pub fn parse_addr(opt: &str, s: &str) -> Result<SocketAddr> {
    s.parse::<SocketAddr>().or_else(|_| {
        err(format!(
            "{opt}: invalid address '{s}' (expected IPV4:PORT or [IPV6]:PORT, numeric only)"
        ))
    })
}

/// Parses an address with an optional port: `1.2.3.4`, `1.2.3.4:80`,
/// `fd00::1`, `[fd00::1]:80` (no port: 0). Numeric only, like [`parse_addr`].
pub fn parse_endpoint(opt: &str, s: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 0)),
        Err(_) => err(format!(
            "{opt}: invalid address '{s}' (expected IPV4[:PORT], IPV6 or [IPV6]:PORT, numeric only)"
        )),
    }
}

pub fn parse_u64(opt: &str, s: &str) -> Result<u64> {
    s.trim()
        .parse::<u64>()
        .or_else(|_| err(format!("{opt}: invalid number '{s}'")))
}

/// Parses a size: plain bytes, or with a K/M/G suffix (binary multiples,
/// case-insensitive, optionally followed by "iB" or "B"): `512`, `1K`, `64KiB`, `16M`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("invalid size '{s}'"));
    }
    let n: u64 = num.parse().map_err(|_| format!("invalid size '{s}'"))?;
    let mult: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size suffix in '{s}' (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' too large"))
}

/// Human form of a byte count: `16MiB`, `64KiB`, `1000B`.
pub fn format_size(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// Parses `--sizes 1K,64K,1M`.
pub fn parse_sizes(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            return err(format!("--sizes: empty entry in '{s}'"));
        }
        let n = parse_size(part).or_else(|e| err(format!("--sizes: {e}")))?;
        if out.contains(&n) {
            return err(format!("--sizes: duplicate size '{}'", part.trim()));
        }
        out.push(n);
    }
    Ok(out)
}

/// Per-size deadlines from `--deadline-ms 1K=5,1M=50,*=1000`.
/// `*` sets the deadline for every size without an explicit entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deadlines {
    pub per_size: BTreeMap<u64, u64>,
    pub default: Option<u64>,
}

impl Deadlines {
    pub fn get(&self, size: u64) -> Option<u64> {
        self.per_size.get(&size).copied().or(self.default)
    }
}

pub fn parse_deadlines(s: &str, sizes: &[u64]) -> Result<Deadlines> {
    let mut d = Deadlines::default();
    for part in s.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            return err(format!("--deadline-ms: entry '{part}' is not SIZE=MS"));
        };
        let ms = parse_u64("--deadline-ms", v)?;
        if ms == 0 {
            return err(format!("--deadline-ms: deadline for '{k}' must be > 0"));
        }
        if k.trim() == "*" {
            if d.default.replace(ms).is_some() {
                return err("--deadline-ms: '*' given twice");
            }
            continue;
        }
        let size = parse_size(k).or_else(|e| err(format!("--deadline-ms: {e}")))?;
        if !sizes.contains(&size) {
            return err(format!(
                "--deadline-ms: size '{}' is not in --sizes",
                k.trim()
            ));
        }
        if d.per_size.insert(size, ms).is_some() {
            return err(format!("--deadline-ms: size '{}' given twice", k.trim()));
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert_eq!(
            parse_sizes("1K,64K,1M,16M").unwrap(),
            vec![1024, 65536, 1 << 20, 16 << 20]
        );
        assert!(parse_sizes("1K,,1M").is_err());
        assert!(parse_sizes("1K,1024").is_err());
    }

    #[test]
    fn size_names() {
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1536), "1536B");
    }

    #[test]
    fn deadlines() {
        let sizes = parse_sizes("1K,1M").unwrap();
        let d = parse_deadlines("1K=5,1M=50", &sizes).unwrap();
        assert_eq!(d.get(1024), Some(5));
        assert_eq!(d.get(1 << 20), Some(50));
        let d = parse_deadlines("1M=50,*=7", &sizes).unwrap();
        assert_eq!(d.get(1024), Some(7));
        assert!(parse_deadlines("64K=5", &sizes).is_err());
        assert!(parse_deadlines("1K", &sizes).is_err());
        assert!(parse_deadlines("1K=x", &sizes).is_err());
        assert!(parse_deadlines("1K=0", &sizes).is_err());
        assert!(parse_deadlines("1K=1,1024=2", &sizes).is_err());
    }

    #[test]
    fn addrs() {
        assert!(parse_addr("--connect", "127.0.0.1:80").is_ok());
        assert!(parse_addr("--connect", "[fd00::1]:80").is_ok());
        assert!(parse_addr("--connect", "fd00::1:80").is_err());
        assert!(parse_addr("--connect", "localhost:80").is_err());
        let ep = |s: &str| parse_endpoint("--to", s);
        assert_eq!(ep("10.1.0.1").unwrap(), "10.1.0.1:0".parse().unwrap());
        assert_eq!(ep("10.1.0.1:500").unwrap(), "10.1.0.1:500".parse().unwrap());
        assert_eq!(ep("fd10::10").unwrap(), "[fd10::10]:0".parse().unwrap());
        assert_eq!(ep("[fd10::10]").unwrap(), "[fd10::10]:0".parse().unwrap());
        assert_eq!(ep("[fd10::10]:9").unwrap(), "[fd10::10]:9".parse().unwrap());
        assert!(ep("host").is_err());
        assert!(ep("10.1.0.1:x").is_err());
    }

    #[test]
    fn options_and_values() {
        let mut a = options(&[
            "--n",
            "5",
            "--n=0",
            "--ms=7",
            "--json",
            "-",
            "--json=out.json",
            "--flag",
        ]);
        assert_eq!(a.next().unwrap().as_deref(), Some("n"));
        assert_eq!(a.number_in(1, 9), Ok(5));
        assert_eq!(a.next().unwrap().as_deref(), Some("n"));
        assert_eq!(a.positive(), err("--n: must be > 0"));
        assert_eq!(a.next().unwrap().as_deref(), Some("ms"));
        assert_eq!(a.millis(), Ok(Duration::from_millis(7)));
        a.next().unwrap();
        assert_eq!(a.json(), Ok(JsonDest::Stdout));
        a.next().unwrap();
        assert_eq!(a.json(), Ok(JsonDest::File("out.json".into())));
        assert_eq!(a.next().unwrap().as_deref(), Some("flag"));
        assert_eq!(a.unknown(), UsageError("unknown option '--flag'".into()));
        assert_eq!(a.next(), Ok(None));

        let mut a = options(&["--n", "10"]);
        a.next().unwrap();
        assert_eq!(a.number_in(1, 9), err("--n: must be between 1 and 9"));
    }

    #[test]
    fn paths_may_be_any_bytes_text_may_not() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = || OsString::from_vec(b"/tmp/x\xff".to_vec());
        let mut a = Options::new([
            OsString::from("--pcap"),
            bytes(),
            OsString::from("--iface"),
            bytes(),
        ]);
        a.next().unwrap();
        assert_eq!(a.path(), Ok(PathBuf::from(bytes())));
        a.next().unwrap();
        assert_eq!(a.text(), err("--iface: \"/tmp/x\\xFF\" is not valid UTF-8"));
    }
}
