//! migrate-split against the floor: plain SQLite copying the same legacy tables into two new files with
//! `ATTACH` + `CREATE TABLE ... AS SELECT` (no conversion, no indexes, no checks), through rusqlite, on the
//! same file, with the same journal mode (rollback) and synchronous=NORMAL.
//!
//! `cargo bench --bench split` builds a medium legacy file (about 35 MB, 220,000 rows). To measure another
//! file (e.g. the ~1 GB one `cargo run --release -p migrate-split --example build_fixture -- PATH large`
//! writes), set `SPLIT_BENCH_LEGACY=PATH`. `benches/split-vs-sqlite3.sh` times the split of such a file against
//! sqlite3 doing the same work (`benches/split-equal-work.sql`) and a bare CREATE TABLE AS, with peak RSS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use migrate_split::fixtures::{LegacySpec, build};
use migrate_split::{Options, split};
use rusqlite::{Connection, OpenFlags};

const TABLES: &[(&str, &str)] = &[
    ("c", "projects"),
    ("c", "calendar_subscriptions"),
    ("c", "project_domains"),
    ("c", "project_calendar_keywords"),
    ("c", "calendar_events"),
    ("c", "settings"),
    ("a", "activity_sessions"),
    ("a", "activity_events"),
];

/// The floor: every legacy table copied as it is into activity/config files, in SQLite alone. The legacy
/// file is attached read-only, as migrate-split opens it.
fn create_table_as(legacy: &Path, out: &Path) {
    let conn = Connection::open_in_memory_with_flags(
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let attach = |uri: String, alias: &str| {
        conn.execute(&format!("ATTACH DATABASE ?1 AS {alias}"), [uri]).unwrap();
    };
    attach(format!("file:{}?mode=ro", legacy.display()), "l");
    for (file, alias) in [("activity.db", "a"), ("config.db", "c")] {
        attach(format!("file:{}?mode=rwc", out.join(file).display()), alias);
        conn.execute_batch(&format!(
            "PRAGMA {alias}.synchronous = NORMAL; PRAGMA {alias}.journal_mode = DELETE;"
        ))
        .unwrap();
    }
    for (alias, table) in TABLES {
        conn.execute_batch(&format!("CREATE TABLE {alias}.{table} AS SELECT * FROM l.{table}"))
            .unwrap();
    }
}

fn legacy_file(scratch: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("SPLIT_BENCH_LEGACY") {
        return PathBuf::from(path);
    }
    let path = scratch.join("legacy.db");
    build(&LegacySpec::medium(3), &path).unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let scratch = tempfile::tempdir().unwrap();
    let legacy = legacy_file(scratch.path());
    let mut group = c.benchmark_group("split");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("migrate_split::split", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(scratch.path()).unwrap(),
            |out| {
                let report = split(&legacy, &out.path().join("data"), &Options::default()).unwrap();
                assert_eq!(report.outcome, migrate_split::Outcome::Split);
                out
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("rusqlite ATTACH + CREATE TABLE AS", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(scratch.path()).unwrap(),
            |out| {
                create_table_as(&legacy, out.path());
                out
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
