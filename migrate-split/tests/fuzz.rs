//! Property test over legacy-file bytes: a small fixture legacy file of each version is damaged (bytes
//! overwritten at random offsets, the 100-byte header damaged, whole pages overwritten, the file truncated) and
//! split into a fresh data directory. Whatever the damage, `split` never panics and never writes the legacy
//! file, and it either
//! - refuses: a `Refused` error naming the legacy file (exit code 1), and nothing in the data directory but
//!   the owner lock files (no database, no rejects file, no temporary file); or
//! - succeeds, only on a file that passes `quick_check`: both outputs pass integrity_check, and per table
//!   legacy = copied + rejected, with exactly `copied` rows in the output table and one line per rejected row
//!   in the rejects file.
//!
//! CI runs 64 cases (under a second in a debug build), the same ones every run (the seed in
//! `.cargo/config.toml`). A longer run over other cases:
//! `PROPTEST_RNG_SEED=$RANDOM PROPTEST_CASES=5000 cargo test --release -p migrate-split --test fuzz -- --nocapture`

mod common;

use std::cell::Cell;
use std::sync::OnceLock;

use common::*;
use migrate_split::fixtures::{LegacySpec, build};
use migrate_split::{Options, Outcome, SplitError, split};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PAGE: usize = 4096;

/// One kind of damage to the file's bytes.
#[derive(Debug, Clone)]
enum Damage {
    /// Bytes overwritten at random offsets anywhere in the file.
    Bytes(Vec<(Index, u8)>),
    /// Bytes overwritten inside SQLite's 100-byte header.
    Header(Vec<(u8, u8)>),
    /// A whole page overwritten with one byte value.
    Page(Index, u8),
    /// The file cut at a random length.
    Truncate(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => proptest::collection::vec((any::<Index>(), any::<u8>()), 1..16).prop_map(Damage::Bytes),
        2 => proptest::collection::vec((0u8..100, any::<u8>()), 1..4).prop_map(Damage::Header),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Page(i, b)),
        1 => any::<Index>().prop_map(Damage::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match damage {
        Damage::Bytes(writes) => {
            for (at, value) in writes {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
        }
        Damage::Header(writes) => {
            for (at, value) in writes {
                if let Some(b) = bytes.get_mut(usize::from(*at)) {
                    *b = *value;
                }
            }
        }
        Damage::Page(page, value) => {
            let start = page.index(bytes.len().div_ceil(PAGE)) * PAGE;
            let end = (start + PAGE).min(bytes.len());
            bytes[start..end].fill(*value);
        }
        Damage::Truncate(at) => bytes.truncate(at.index(bytes.len())),
    }
}

/// The pristine fixture of each legacy version (index 0 is version 1), built once.
fn pristine(version: u32) -> &'static [u8] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        (1..=3)
            .map(|v| {
                let path = dir.path().join(format!("legacy-v{v}.db"));
                build(&LegacySpec::small(v), &path).unwrap();
                std::fs::read(&path).unwrap()
            })
            .collect()
    });
    &files[version as usize - 1]
}

/// The table's output file for a legacy table.
fn output_of(table: &str) -> &'static str {
    if table.starts_with("activity_") {
        "activity.db"
    } else {
        "config.db"
    }
}

/// One case: checks everything the module doc promises; returns whether the split succeeded.
fn run_case(version: u32, damages: &[Damage]) -> Result<bool, TestCaseError> {
    let mut bytes = pristine(version).to_vec();
    for d in damages {
        apply(&mut bytes, d);
    }
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    std::fs::write(&legacy, &bytes).unwrap();
    let data = dir.path().join("data");

    let result = split(&legacy, &data, &Options::default());

    prop_assert_eq!(&std::fs::read(&legacy).unwrap(), &bytes, "the legacy file was written");
    let beside: Vec<String> = listing(dir.path()).into_iter().collect();
    prop_assert!(
        beside.iter().all(|n| n == "legacy.db" || n == "data"),
        "files appeared beside the legacy file: {:?}",
        beside
    );
    match result {
        Ok(report) => {
            prop_assert_eq!(report.outcome, Outcome::Split);
            let problems = store_core::check::quick_check(&open_legacy(&legacy)).unwrap();
            prop_assert!(
                problems.is_empty(),
                "split a legacy file that fails quick_check: {:?}",
                problems
            );
            for db in ["activity.db", "config.db"] {
                let conn = open_legacy(&data.join(db));
                let problems = store_core::check::integrity_check(&conn).unwrap();
                prop_assert!(problems.is_empty(), "{}: {:?}", db, problems);
            }
            prop_assert!(!report.tables.is_empty());
            for (table, c) in &report.tables {
                prop_assert_eq!(c.legacy, c.copied + c.rejected, "{}: {:?}", table, c);
                let conn = open_legacy(&data.join(output_of(table)));
                let rows: i64 = conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .unwrap();
                prop_assert_eq!(rows as u64, c.copied, "{}: rows in the output", table);
            }
            let rejected = report.rejected();
            match &report.rejects_file {
                Some(path) => {
                    let lines = std::fs::read_to_string(path).unwrap().lines().count() as u64;
                    prop_assert_eq!(lines, rejected, "rejects file lines");
                    prop_assert_eq!(rejects(path).len() as u64, rejected, "one line per (table, id)");
                }
                None => prop_assert_eq!(rejected, 0),
            }
            let temp: Vec<String> = listing(&data)
                .into_iter()
                .filter(|n| n.starts_with(migrate_split::TEMP_PREFIX))
                .collect();
            prop_assert!(temp.is_empty(), "temporary files left: {:?}", temp);
            Ok(true)
        }
        Err(e) => {
            let leftovers: Vec<String> = listing(&data).into_iter().filter(|n| !n.ends_with(".lock")).collect();
            prop_assert!(
                leftovers.is_empty(),
                "{} left files in the data directory: {:?}",
                e,
                leftovers
            );
            let SplitError::Refused { ref path, .. } = e else {
                return Err(TestCaseError::fail(format!("damage must be refused, not: {e:?}")));
            };
            prop_assert_eq!(path, &legacy);
            prop_assert_eq!(e.exit_code(), 1);
            let text = e.to_string();
            prop_assert!(
                text.starts_with(&format!(
                    "{} is not a legacy database this tool converts: ",
                    legacy.display()
                )),
                "{}",
                text
            );
            Ok(false)
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

#[test]
fn damaged_legacy_bytes_are_refused_or_split_completely_and_never_panic() {
    let cases = cases();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // (split, refused)
    let tally = Cell::new((0u32, 0u32));
    let strategy = (1u32..=3, proptest::collection::vec(damage(), 1..4));
    let outcome = runner.run(&strategy, |(version, damages)| {
        let (split, refused) = tally.get();
        tally.set(if run_case(version, &damages)? {
            (split + 1, refused)
        } else {
            (split, refused + 1)
        });
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let (split, refused) = tally.get();
    eprintln!("fuzz: {cases} cases: {split} split, {refused} refused");
    if cases >= 32 {
        // Both branches of the property ran (with fewer cases, chance may leave one out).
        assert!(split > 0 && refused > 0, "{split} split, {refused} refused");
    }
}
