//! Shared by migrate-split's integration tests: fixtures on disk, an independent expectation of every
//! converted value, file checks, and child processes.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, NaiveDateTime};
use migrate_split::fixtures::{FixtureSummary, LegacySpec, build};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

/// Builds a legacy file `legacy.db` in `dir`.
pub fn legacy_file(dir: &Path, spec: &LegacySpec) -> (PathBuf, FixtureSummary) {
    let path = dir.join("legacy.db");
    let summary = build(spec, &path).expect("fixture builds");
    (path, summary)
}

/// A spec with every quirk switched on.
pub fn all_quirks(version: u32) -> LegacySpec {
    LegacySpec {
        unparseable_times: true,
        unknown_table: true,
        ..LegacySpec::small(version)
    }
}

pub fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read file");
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::file_mode as mode;

/// File names in `dir` (empty if it does not exist).
pub fn listing(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Bytes and mtime of every file under `dir` (folders walked), lock files aside.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    for name in listing(dir).into_iter().filter(|n| !n.ends_with(".lock")) {
        let p = dir.join(&name);
        if p.is_dir() {
            for (inner, v) in snapshot(&p) {
                files.insert(format!("{name}/{inner}"), v);
            }
            continue;
        }
        let bytes = std::fs::read(&p).expect("read");
        let mtime = std::fs::metadata(&p).expect("metadata").modified().expect("mtime");
        files.insert(name, (bytes, mtime));
    }
    files
}

/// A read-only connection that never creates anything beside the file (for files with no -wal/-shm, a
/// read-write connection without create: it removes the -wal/-shm it makes when it closes).
pub fn open_output(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).expect("open output")
}

pub fn open_legacy(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open legacy")
}

/// The legacy time columns and their output names.
pub const TIME_COLUMNS: &[(&str, &str)] = &[
    ("created_at", "created_at_ms"),
    ("last_synced_at", "last_synced_at_ms"),
    ("start_time", "start_time_ms"),
    ("end_time", "end_time_ms"),
    ("timestamp", "timestamp_ms"),
    ("updated_at", "updated_at_ms"),
];

/// What the test itself (with chrono, not the crate's parser) expects a legacy time to become:
/// `Some(None)` NULL, `Some(Some(ms))` a time, `None` not a time.
pub fn expected_ms(v: &Value) -> Option<Option<i64>> {
    match v {
        Value::Null => Some(None),
        Value::Integer(i) => Some(Some(*i)),
        Value::Text(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse().ok().map(Some);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(Some(t.timestamp_millis()));
            }
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| Some(t.and_utc().timestamp_millis()))
        }
        _ => None,
    }
}

/// The test's own list of credential markers.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_lowercase();
    ["token", "secret", "password", "api_key", "apikey", "credential"]
        .iter()
        .any(|m| k.contains(m))
}

/// Output tables by legacy version, with the file they live in.
pub fn tables(version: u32) -> Vec<(&'static str, &'static str)> {
    let mut t = vec![
        ("projects", "config.db"),
        ("project_domains", "config.db"),
        ("settings", "config.db"),
        ("activity_sessions", "activity.db"),
        ("activity_events", "activity.db"),
    ];
    if version >= 2 {
        t.extend([
            ("project_calendar_keywords", "config.db"),
            ("calendar_subscriptions", "config.db"),
            ("calendar_events", "config.db"),
        ]);
    }
    t
}

/// The rejects file as (table, id) -> parsed line.
pub fn rejects(path: &Path) -> BTreeMap<(String, i64), serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read rejects");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("every line is one JSON object");
            let table = v["table"].as_str().expect("table").to_string();
            let id = v["id"].as_i64().expect("id");
            assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{line}");
            assert!(v["row"].is_object(), "{line}");
            ((table, id), v)
        })
        .collect()
}

fn rows(conn: &Connection, sql: &str) -> Vec<BTreeMap<String, Value>> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map([], |r| {
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), r.get::<_, Value>(i).expect("value")))
            .collect())
    })
    .expect("query")
    .collect::<rusqlite::Result<_>>()
    .expect("rows")
}

/// Compares every column of every row of every table between the legacy file and the outputs: each
/// legacy row is either in its output table with the same id and values (times converted as
/// [`expected_ms`] says, columns older files lack at their defaults, `secret` as [`looks_secret`] says,
/// `end_reason` `ended` for a session with an end), or
/// in the rejects file and not in the output. Returns the rejected (table, id) pairs.
pub fn assert_rows_match(legacy: &Path, data: &Path, version: u32) -> HashSet<(String, i64)> {
    let legacy_conn = open_legacy(legacy);
    let rejects_path = data.join("split-rejects.jsonl");
    let rejected: HashSet<(String, i64)> = if rejects_path.exists() {
        rejects(&rejects_path).into_keys().collect()
    } else {
        HashSet::new()
    };
    for (table, file) in tables(version) {
        let out = open_output(&data.join(file));
        let key = if table == "settings" { "rowid" } else { "id" };
        let legacy_rows = rows(
            &legacy_conn,
            &format!("SELECT {key} AS k, * FROM {table} ORDER BY {key}"),
        );
        let out_rows: BTreeMap<i64, BTreeMap<String, Value>> =
            rows(&out, &format!("SELECT {key} AS k, * FROM {table} ORDER BY {key}"))
                .into_iter()
                .map(|r| {
                    let Value::Integer(k) = r["k"] else { panic!("key") };
                    (k, r)
                })
                .collect();
        let mut copied = 0;
        for lrow in &legacy_rows {
            let Value::Integer(k) = lrow["k"] else {
                panic!("legacy key")
            };
            if rejected.contains(&(table.to_string(), k)) {
                assert!(!out_rows.contains_key(&k), "{table} {k} is both rejected and copied");
                continue;
            }
            let orow = out_rows
                .get(&k)
                .unwrap_or_else(|| panic!("{table} {k} is neither copied nor rejected"));
            copied += 1;
            for (col, oval) in orow {
                if col == "k" {
                    continue;
                }
                let expected = if let Some((lcol, _)) = TIME_COLUMNS.iter().find(|(_, o)| o == col) {
                    match lrow.get(*lcol) {
                        None => Value::Null,
                        Some(v) => match expected_ms(v) {
                            Some(Some(ms)) => Value::Integer(ms),
                            Some(None) => Value::Null,
                            None => panic!("{table} {k}: {lcol} is not a time, yet the row was copied"),
                        },
                    }
                } else if col == "end_reason" {
                    // A legacy session with an end was ended by the legacy app; an open one stays open.
                    match lrow.get("end_time").map(expected_ms) {
                        Some(Some(Some(_))) => Value::Text("ended".into()),
                        _ => Value::Null,
                    }
                } else if col == "secret" {
                    let Value::Text(key) = &lrow["key"] else {
                        panic!("settings key")
                    };
                    Value::Integer(i64::from(looks_secret(key)))
                } else {
                    match lrow.get(col.as_str()) {
                        Some(v) => v.clone(),
                        None => match col.as_str() {
                            "archived" | "is_idle" => Value::Integer(0),
                            "idle_seconds" => Value::Null,
                            other => panic!("{table}: output column {other} has no legacy source"),
                        },
                    }
                };
                assert_eq!(oval, &expected, "{table} {k} column {col}");
            }
        }
        assert_eq!(
            out_rows.len(),
            copied,
            "{table}: rows in the output that the legacy file does not have"
        );
    }
    rejected
}

#[allow(unused_imports)]
pub use store_core::testing::{
    child_role, core_limit_at_exit, kill9, output_within, spawn_child, wait_for_file, wait_within,
};

/// The real binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migrate-split"))
}

/// Runs the binary to completion; a run that takes more than two minutes is a hang and fails the test.
pub fn run_bin(args: &[&std::ffi::OsStr]) -> Output {
    output_within(bin().args(args), std::time::Duration::from_secs(120))
}
