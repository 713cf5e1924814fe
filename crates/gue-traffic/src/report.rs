//! JSON reports: where `--json PATH|-` sends them, one object per line
//! (serde_json), and the number formatting the harness's jq relies on.

use serde::{Serialize, Serializer};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Destination of `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum JsonDest {
    #[default]
    Stdout,
    File(PathBuf),
}

impl JsonDest {
    /// A writer for JSON lines (buffered for a file; every line is flushed by [`write_line`]).
    pub fn create(&self) -> io::Result<Box<dyn Write>> {
        Ok(match self {
            JsonDest::Stdout => Box::new(io::stdout()),
            JsonDest::File(path) => Box::new(BufWriter::new(File::create(path)?)),
        })
    }

    /// For messages: the path or "stdout".
    pub fn name(&self) -> String {
        match self {
            JsonDest::Stdout => "stdout".into(),
            JsonDest::File(path) => path.display().to_string(),
        }
    }
}

/// Writes `value` as one JSON line and flushes, so a reader sees whole lines.
pub fn write_line<T: Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the final report of `gue-traffic SUBCOMMAND` as one JSON line to `dest`;
/// false (after saying why on stderr) if that failed.
pub fn write_report<T: Serialize>(value: &T, dest: &JsonDest, subcommand: &str) -> bool {
    let written = dest
        .create()
        .and_then(|mut out| write_line(&mut *out, value));
    if let Err(e) = &written {
        eprintln!(
            "gue-traffic {subcommand}: cannot write JSON to {}: {e}",
            dest.name()
        );
    }
    written.is_ok()
}

/// Three decimal places (times in ms: microseconds), as the reports always had; a
/// non-finite value has no JSON number and becomes null.
fn three_places(v: f64) -> Option<f64> {
    v.is_finite().then(|| (v * 1e3).round() / 1e3)
}

/// `serialize_with` for an f64 field: see [`three_places`].
pub fn rounded<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    three_places(*v).serialize(s)
}

/// `serialize_with` for an `Option<f64>` field: None is null, else see [`three_places`].
pub fn rounded_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    v.and_then(three_places).serialize(s)
}

/// `value` as [`write_line`] writes it, checked to be one line, parsed back.
#[cfg(test)]
pub fn json_line<T: Serialize>(value: &T) -> serde_json::Value {
    let mut out = Vec::new();
    write_line(&mut out, value).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.find('\n'), Some(text.len() - 1), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Asserts that the JSON object `v` has exactly the keys `expected` (in any order).
#[cfg(test)]
pub fn assert_keys(v: &serde_json::Value, expected: &[&str]) {
    let mut want = expected.to_vec();
    want.sort_unstable();
    let got: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(got, want, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Times {
        #[serde(serialize_with = "rounded")]
        a: f64,
        #[serde(serialize_with = "rounded")]
        b: f64,
        #[serde(serialize_with = "rounded_opt")]
        c: Option<f64>,
        #[serde(serialize_with = "rounded_opt")]
        d: Option<f64>,
    }

    #[test]
    fn numbers_stay_numbers_and_non_finite_is_null() {
        let t = Times {
            a: 1.23456,
            b: f64::NAN,
            c: Some(f64::INFINITY),
            d: None,
        };
        let mut out = Vec::new();
        write_line(&mut out, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1.235,\"b\":null,\"c\":null,\"d\":null}\n"
        );
        let v = serde_json::to_value(Times {
            a: 2.0,
            b: 0.0004,
            c: Some(7.5),
            d: Some(12.0),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 2.0, "b": 0.0, "c": 7.5, "d": 12.0})
        );
    }

    #[test]
    fn report_to_a_file_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        assert!(write_report(
            &serde_json::json!({"k": "a\"b\n"}),
            &JsonDest::File(path.clone()),
            "test"
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"k\":\"a\\\"b\\n\"}\n"
        );
        assert!(!write_report(
            &1,
            &JsonDest::File(dir.path().join("missing/r.json")),
            "test"
        ));
    }
}
