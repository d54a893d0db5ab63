//! `repair --salvage` on real damaged files: a damaged leaf page of the events table, a damaged index page,
//! a truncated tail (no backup); a backup older than the damage (backup rows plus newer salvaged rows, ids
//! never reused); an injected failure (nothing left behind, nothing moved); a salvage killed mid-copy (the
//! next repair removes its output and salvages); one killed while it is put in place (undone by the next
//! start like a restore: no row lost); config.db; and the CLI.
//! Each test prints what it recovered (`cargo test --test salvage -- --nocapture`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use activity_store::{ActivityWriter, CheckpointMode, NewEvent, WriterOptions};
use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde_json::Value as Json;
use splitstore::operations::{RepairAction, RepairOptions, backup, repair};
use store_core::ErrorKind;
use store_core::provenance::{Provenance, lineage_of};
use store_core::salvage::SalvageReport;
use support::*;

/// Events in the fixture database.
const EVENTS: i64 = 100_000;

fn at(i: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000).unwrap() + Duration::seconds(i)
}

/// Records events `from..to` (ids `from+1..=to` in a fresh file) in batches, then checkpoints so every page
/// is in the main file, and closes.
fn record_events(path: &Path, from: i64, to: i64) {
    record_events_with(path, from, to, &WriterOptions::default());
}

/// [`record_events`] through a writer opened with `options` (a key).
fn record_events_with(path: &Path, from: i64, to: i64, options: &WriterOptions) {
    let mut writer = ActivityWriter::open_with(path, options).unwrap();
    for start in (from..to).step_by(10_000) {
        let batch: Vec<NewEvent> = (start..(start + 10_000).min(to))
            .map(|i| NewEvent {
                app: Some(format!("app-{}", i % 17)),
                title: Some(format!("window title number {i} of the fixture")),
                ..NewEvent::new(Some(1 + i / 50), "focus", at(i))
            })
            .collect();
        writer.record_batch(&batch).unwrap();
    }
    writer.checkpoint(CheckpointMode::Truncate).unwrap();
}

/// A folder for what this test process builds once and keeps to its end (the templates), removed when the
/// process exits. A `TempDir` kept in a `static` is never dropped: every run left its templates in /tmp
/// (11 MB each, hundreds of them on a machine that ran the tests often).
fn process_scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove_at_exit() {
        if let Some(dir) = DIR.get() {
            let _ = fs::remove_dir_all(dir);
        }
    }
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        // SAFETY: registers a function with no arguments that only removes a folder this process made.
        assert_eq!(unsafe { libc::atexit(remove_at_exit) }, 0, "atexit");
        dir
    })
}

/// A healthy activity.db holding [`EVENTS`] events, built once per test binary; tests copy it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = process_scratch().join("template");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("activity.db");
        record_events(&path, 0, EVENTS);
        path
    })
}

/// A data directory whose activity.db is a copy of the template.
fn data_dir_with_events(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    store_core::files::create_private_dir_all(&data).unwrap();
    fs::copy(template(), data.join("activity.db")).unwrap();
    data
}

/// A data directory whose activity.db is a copy of the template with one leaf of `activity_events` damaged,
/// the one a `divisor`-th of the way through the leaves in page order (2: the middle one): (data, activity.db).
fn data_dir_with_a_damaged_leaf(dir: &Path, divisor: usize) -> (PathBuf, PathBuf) {
    let data = data_dir_with_events(dir);
    let db = data.join("activity.db");
    let leaves = pages_of(&db, "activity_events", "leaf");
    damage_page(&db, leaves[leaves.len() / divisor]);
    (data, db)
}

/// The pages of `object` (a table or index) of a given type (`leaf`, `internal`), in page order, from
/// SQLite's own `dbstat` on the healthy file.
fn pages_of(db: &Path, object: &str, page_type: &str) -> Vec<i64> {
    pages_through(&read_only(db), object, page_type)
}

/// [`pages_of`] through `conn` (a keyed connection to an encrypted file).
fn pages_through(conn: &Connection, object: &str, page_type: &str) -> Vec<i64> {
    let mut stmt = conn
        .prepare("SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = ?2 ORDER BY pageno")
        .unwrap();
    stmt.query_map([object, page_type], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The interior pages of the events b-tree below its root (in page order), read through `conn`.
fn events_interior_pages(conn: &Connection) -> Vec<i64> {
    let root = query_i64(
        conn,
        "SELECT rootpage FROM sqlite_schema WHERE name = 'activity_events'",
    );
    let below: Vec<i64> = pages_through(conn, "activity_events", "internal")
        .into_iter()
        .filter(|p| *p != root)
        .collect();
    assert!(
        !below.is_empty(),
        "the fixture's events b-tree has interior pages below its root"
    );
    below
}

/// Overwrites the middle one of the events b-tree's interior pages below its root ([`damage_page`]), hiding
/// the leaves below it; returns how many such interior pages there are.
fn damage_a_middle_interior_page(db: &Path) -> usize {
    let interior = events_interior_pages(&read_only(db));
    damage_page(db, interior[interior.len() / 2]);
    interior.len()
}

/// Overwrites page `page` (1-based) of `db` with 0x5A bytes, as a bad sector or a stray write would.
fn damage_page(db: &Path, page: i64) {
    damage_page_of_size(db, query_i64(&read_only(db), "PRAGMA page_size") as usize, page);
}

/// [`damage_page`] in a file whose pages are `size` bytes (an encrypted file's header is ciphertext).
fn damage_page_of_size(db: &Path, size: usize, page: i64) {
    let mut bytes = fs::read(db).unwrap();
    let start = (page as usize - 1) * size;
    bytes[start..start + size].fill(0x5A);
    fs::write(db, &bytes).unwrap();
}

/// The line of `table` in `repair --salvage`'s table, and its numbers: salvaged, from backup, known lost.
fn table_row<'a>(stdout: &'a str, table: &str) -> (&'a str, [u64; 3]) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{table} ")))
        .unwrap_or_else(|| panic!("no row of {table} in {stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    (line, numbers.try_into().unwrap())
}

fn salvage_options() -> RepairOptions {
    RepairOptions {
        salvage: true,
        ..RepairOptions::default()
    }
}

/// Repairs `data` with salvage and returns the activity.db action's report and where the damaged file went.
fn salvage_activity(data: &Path) -> (SalvageReport, PathBuf) {
    let actions = repair(data, &data.join("backups"), &salvage_options()).unwrap();
    match &actions[0] {
        RepairAction::Salvaged {
            database: "activity.db",
            quarantined: Some(q),
            report,
        } => (report.clone(), q.clone()),
        other => panic!("{other:?}"),
    }
}

/// The report matches the file: each table holds `from_backup + salvaged + derived` rows, and the file is
/// sound.
#[track_caller]
fn assert_report_matches(db: &Path, report: &SalvageReport) {
    assert_integrity_ok(db);
    // The output's schema is a fresh file's: every index the copy set aside was built again, as created.
    assert_eq!(
        store_core::testing::fingerprint_of(db),
        fresh_fingerprint(report.database),
        "{}",
        db.display()
    );
    let conn = read_only(db);
    assert!(store_core::check::foreign_key_violations(&conn).unwrap().is_empty());
    for (table, t) in &report.tables {
        let n = query_i64(&conn, &format!("SELECT count(*) FROM {table}")) as u64;
        assert_eq!(n, t.from_backup + t.salvaged + t.derived, "{table}: {t:?}");
    }
    assert_eq!(report.out, db);
}

/// The schema fingerprint of a fresh `activity.db` or `config.db`, created once per test binary.
fn fresh_fingerprint(database: &str) -> String {
    static FRESH: OnceLock<(String, String)> = OnceLock::new();
    let (activity, config) = FRESH.get_or_init(|| {
        let dir = process_scratch().join("fresh");
        fs::create_dir(&dir).unwrap();
        drop(ActivityWriter::open(&dir.join("activity.db")).unwrap());
        drop(config_store::ConfigStore::open_in(&dir).unwrap());
        let of = |name: &str| store_core::testing::fingerprint_of(&dir.join(name));
        (of("activity.db"), of("config.db"))
    });
    match database {
        "activity.db" => activity.clone(),
        "config.db" => config.clone(),
        other => panic!("no fresh file for {other}"),
    }
}

/// Events whose values are not what [`record_events`] wrote for their id.
fn events_not_as_written(conn: &Connection) -> i64 {
    query_i64(
        conn,
        "SELECT count(*) FROM activity_events WHERE timestamp_ms <> 1700000000000 + (id - 1) * 1000
            OR title <> 'window title number ' || (id - 1) || ' of the fixture'",
    )
}

/// The report says rows were read one by one from leaf pages a damaged interior page hid.
#[track_caller]
fn assert_leaves_read_one_by_one(report: &SalvageReport) {
    assert!(
        report.notes.iter().any(|n| n.contains("read directly from leaf pages")),
        "{:?}",
        report.notes
    );
}

fn events_in(db: &Path) -> i64 {
    query_i64(&read_only(db), "SELECT count(*) FROM activity_events")
}

#[test]
fn a_damaged_leaf_page_of_the_events_table_loses_only_that_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_events(dir.path());
    let db = data.join("activity.db");
    let leaves = pages_of(&db, "activity_events", "leaf");
    let lineage = store_core::provenance::lineage_of(&db, None);
    assert!(lineage.is_some(), "an owner's open gives the file a lineage");
    damage_page(&db, leaves[leaves.len() / 2]);
    let damaged = fs::read(&db).unwrap();

    let (report, quarantined) = salvage_activity(&data);
    assert_eq!(
        fs::read(&quarantined).unwrap(),
        damaged,
        "the damaged file is kept as it was"
    );
    assert_report_matches(&db, &report);
    assert_eq!(
        store_core::provenance::lineage_of(&db, None),
        lineage,
        "the output stands for the damaged file: its backups stay its own"
    );
    let events = &report.tables["activity_events"];
    let kept = events_in(&db);
    assert_eq!(kept as u64, events.salvaged);
    assert_eq!(events.from_backup, 0);
    assert!(kept * 100 >= EVENTS * 90, "{kept} of {EVENTS}");
    // The index of the damaged file still lists every row: the loss is counted exactly.
    assert_eq!(
        events.known_lost_basis.as_deref().map(|b| b.starts_with("index ")),
        Some(true),
        "{events:?}"
    );
    assert_eq!(events.salvaged + events.known_lost, EVENTS as u64, "{events:?}");
    assert_eq!(events.unreadable_ranges.len(), 1, "{events:?}");
    // Rows on both sides of the damaged page are there.
    let (lo, hi) = events.unreadable_ranges[0];
    let conn = read_only(&db);
    assert_eq!(
        query_i64(&conn, &format!("SELECT count(*) FROM activity_events WHERE id < {lo}")),
        lo - 1
    );
    assert_eq!(
        query_i64(&conn, &format!("SELECT count(*) FROM activity_events WHERE id > {hi}")),
        EVENTS - hi
    );
    eprintln!(
        "salvage, damaged leaf page of activity_events: {kept} of {EVENTS} events ({:.3}%), {} known lost, \
         unreadable ids {lo}..={hi}",
        kept as f64 * 100.0 / EVENTS as f64,
        events.known_lost
    );
}

/// Encrypted files (`--features encryption`): the same damage, read through SQLCipher.
#[cfg(feature = "encryption")]
mod encrypted {
    use super::*;
    use store_core::Key;

    /// A data directory whose activity.db holds [`EVENTS`] events under a new key, and the key.
    fn data_dir_with_events(dir: &Path) -> (PathBuf, Key) {
        let data = dir.join("data");
        store_core::files::create_private_dir_all(&data).unwrap();
        let key = Key::generate().unwrap();
        let options = WriterOptions {
            open: store_core::OpenOptions {
                key: Some(key.clone()),
                ..store_core::OpenOptions::default()
            },
            ..WriterOptions::default()
        };
        record_events_with(&data.join("activity.db"), 0, EVENTS, &options);
        (data, key)
    }

    fn keyed(db: &Path, key: &Key) -> Connection {
        store_core::read_pool::open_read_only(db, &activity_store::SCHEMA, Some(key)).unwrap()
    }

    /// Damages the pages `pick` chooses (through a keyed connection to the healthy file), as [`damage_page`]
    /// does.
    fn damage(db: &Path, key: &Key, pick: impl Fn(&Connection) -> Vec<i64>) {
        let conn = keyed(db, key);
        let pages = pick(&conn);
        // (SQLCipher answers `PRAGMA page_size` itself, as text.)
        let page_size = query_i64(&conn, "SELECT pgsize FROM dbstat WHERE name = 'sqlite_schema'") as usize;
        drop(conn);
        for page in pages {
            damage_page_of_size(db, page_size, page);
        }
    }

    /// Repairs `data` with salvage under `key`; the activity.db action's report.
    fn salvage(data: &Path, key: &Key) -> SalvageReport {
        let options = RepairOptions {
            key: Some(key.clone()),
            ..salvage_options()
        };
        let actions = repair(data, &data.join("backups"), &options).unwrap();
        match &actions[0] {
            RepairAction::Salvaged {
                database: "activity.db",
                report,
                ..
            } => report.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// The salvaged file is sound, holds what the report says, and every event in it is the one written.
    #[track_caller]
    fn assert_sound(db: &Path, key: &Key, report: &SalvageReport) -> u64 {
        let conn = keyed(db, key);
        assert!(store_core::check::integrity_check(&conn).unwrap().is_empty());
        let kept = query_i64(&conn, "SELECT count(*) FROM activity_events") as u64;
        let events = &report.tables["activity_events"];
        assert_eq!(kept, events.salvaged, "{events:?}");
        assert_eq!(events.salvaged + events.known_lost, EVENTS as u64, "{events:?}");
        assert_eq!(events_not_as_written(&conn), 0);
        kept
    }

    /// SQLCipher takes a page that fails its authentication (any damage to an encrypted file) as the end of
    /// the connection that read it: every later read on that connection fails, with "out of memory". A
    /// salvage still reads on around each damaged page, as in a plaintext file, and loses only those pages.
    #[test]
    fn damaged_leaf_pages_lose_only_those_pages() {
        let dir = tempfile::tempdir().unwrap();
        let (data, key) = data_dir_with_events(dir.path());
        let db = data.join("activity.db");
        damage(&db, &key, |conn| {
            let leaves = pages_through(conn, "activity_events", "leaf");
            vec![leaves[leaves.len() / 3], leaves[2 * leaves.len() / 3]]
        });
        // doctor names the two damaged pages (SQLCipher's page check), not the pages quick_check could no
        // longer read once SQLCipher stopped reading at the first.
        let inspect = store_core::diagnostics::InspectOptions {
            key: Some(key.clone()),
            ..store_core::diagnostics::InspectOptions::default()
        };
        let health = store_core::diagnostics::inspect(&db, &activity_store::SCHEMA, &inspect);
        let damage = health.problems.iter().find(|p| p.code == ErrorKind::Corrupt);
        let two_pages = "found 2 page(s) that fail: HMAC verification failed for page";
        assert!(
            damage.is_some_and(|d| d.message.contains(two_pages)),
            "{:?}",
            health.problems
        );
        // So does the verification a restore (or a key rotation) makes of such a file.
        let err = store_core::restore::verify_backup(&db, &activity_store::SCHEMA, Some(&key)).unwrap_err();
        assert!(
            err.kind() == ErrorKind::Corrupt && err.to_string().contains(two_pages),
            "{err}"
        );

        let report = salvage(&data, &key);
        let events = &report.tables["activity_events"];
        assert_eq!(events.unreadable_ranges.len(), 2, "{events:?} {:?}", report.notes);
        assert_eq!(
            events.known_lost_basis.as_deref().map(|b| b.starts_with("index ")),
            Some(true),
            "{events:?}"
        );
        // Two pages of rows, not the rest of the file.
        assert!(events.known_lost <= 400, "{events:?}");
        assert_sound(&db, &key, &report);
        eprintln!(
            "salvage, two damaged leaf pages of an encrypted activity_events: {} of {EVENTS} events, {} known \
             lost, unreadable ids {:?}",
            events.salvaged, events.known_lost, events.unreadable_ranges
        );
    }

    /// The leaves a damaged interior page hides are intact: they are read one by one through SQLite's pager
    /// (`sqlite_dbpage`), where SQLCipher decrypts them, as a plaintext file's are read from disk.
    #[test]
    fn a_damaged_interior_page_hides_intact_leaves_that_are_read_through_the_pager() {
        let dir = tempfile::tempdir().unwrap();
        let (data, key) = data_dir_with_events(dir.path());
        let db = data.join("activity.db");
        damage(&db, &key, |conn| {
            let interior = events_interior_pages(conn);
            vec![interior[interior.len() / 2]]
        });

        let report = salvage(&data, &key);
        let kept = assert_sound(&db, &key, &report);
        assert!(kept * 100 >= EVENTS as u64 * 99, "{kept} of {EVENTS}: {report:?}");
        assert_leaves_read_one_by_one(&report);
        eprintln!(
            "salvage, damaged interior page of an encrypted activity_events: {kept} of {EVENTS} events, {} known \
             lost",
            report.tables["activity_events"].known_lost
        );
    }
}

#[test]
fn a_damaged_index_page_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_events(dir.path());
    let db = data.join("activity.db");
    let leaves = pages_of(&db, "activity_events_timestamp", "leaf");
    damage_page(&db, leaves[leaves.len() / 2]);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    let events = &report.tables["activity_events"];
    assert_eq!(events.salvaged, EVENTS as u64, "{events:?}");
    assert_eq!(events.known_lost, 0);
    assert!(events.unreadable_ranges.is_empty());
    assert_eq!(events_in(&db), EVENTS);
    // The rebuilt index answers as the table does.
    let conn = read_only(&db);
    assert_eq!(
        query_i64(
            &conn,
            "SELECT count(*) FROM activity_events INDEXED BY activity_events_timestamp WHERE timestamp_ms > 0"
        ),
        EVENTS
    );
    eprintln!(
        "salvage, damaged index page: {} of {EVENTS} events (100%)",
        events.salvaged
    );
}

#[test]
fn a_damaged_interior_page_hides_intact_leaves_that_are_read_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_events(dir.path());
    let db = data.join("activity.db");
    let interior = damage_a_middle_interior_page(&db);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    let events = &report.tables["activity_events"];
    let kept = events_in(&db);
    assert_eq!(events.salvaged + events.known_lost, EVENTS as u64, "{events:?}");
    assert!(kept * 100 >= EVENTS * 90, "{kept} of {EVENTS}: {report:?}");
    assert_leaves_read_one_by_one(&report);
    // The rows read from the pages are the rows that were written.
    let conn = read_only(&db);
    assert_eq!(events_not_as_written(&conn), 0);
    eprintln!(
        "salvage, damaged interior page of activity_events ({} interior pages below the root): {kept} of {EVENTS} \
         events ({:.3}%), {} known lost",
        interior,
        kept as f64 * 100.0 / EVENTS as f64,
        events.known_lost
    );
}

/// A file a crash left with committed pages in its `-wal`: the file's own copy of a page may be older than
/// the WAL's, so the leaves a damaged interior page hides are read through SQLite's pager
/// (`sqlite_dbpage`), which reads the WAL too, rather than from disk.
#[test]
fn with_pages_in_the_wal_hidden_leaves_are_read_through_the_pager() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = data_dir_with_events(dir.path());
    let db = healthy.join("activity.db");
    damage_a_middle_interior_page(&db);
    // A commit after the damage, still in the WAL: the file and its -wal copied as a crash leaves them,
    // while the writer is open (it checkpoints on closing).
    let data = dir.path().join("crashed");
    store_core::files::create_private_dir_all(&data).unwrap();
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             INSERT INTO activity_sessions (app, start_time_ms) VALUES ('after the damage', 1800000000000);",
        )
        .unwrap();
    for suffix in ["", "-wal"] {
        let name = format!("activity.db{suffix}");
        fs::copy(healthy.join(&name), data.join(&name)).unwrap();
    }
    drop(writer);
    let db = data.join("activity.db");
    assert!(fs::metadata(data.join("activity.db-wal")).unwrap().len() > 0);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    let kept = events_in(&db);
    assert!(kept * 100 >= EVENTS * 99, "{kept} of {EVENTS}: {report:?}");
    assert_leaves_read_one_by_one(&report);
    assert_eq!(events_not_as_written(&read_only(&db)), 0);
    assert_eq!(
        query_i64(
            &read_only(&db),
            "SELECT count(*) FROM activity_sessions WHERE app = 'after the damage'"
        ),
        1,
        "the commit in the WAL is kept"
    );
}

#[test]
fn a_truncated_file_keeps_what_lies_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_events(dir.path());
    let db = data.join("activity.db");
    let len = fs::metadata(&db).unwrap().len();
    let cut = len * 2 / 3 / 4096 * 4096;
    fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    let events = &report.tables["activity_events"];
    let kept = events_in(&db);
    assert!(kept > 0, "{events:?}");
    assert!(events.salvaged + events.known_lost <= EVENTS as u64, "{events:?}");
    eprintln!(
        "salvage, file truncated to {cut} of {len} bytes: {kept} of {EVENTS} events ({:.1}%), {} known lost ({})",
        kept as f64 * 100.0 / EVENTS as f64,
        events.known_lost,
        events.known_lost_basis.as_deref().unwrap_or("-")
    );
}

#[test]
fn with_an_older_backup_the_result_is_its_rows_plus_newer_salvaged_ones_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("activity.db");
    store_core::files::create_private_dir_all(&data).unwrap();
    record_events(&db, 0, 40_000);
    let backups = data.join("backups");
    backup(&data, &backups, 5).unwrap();
    record_events(&db, 40_000, 60_000);
    // Damage the last leaf: the highest ids are lost, and must never be handed out again.
    let leaves = pages_of(&db, "activity_events", "leaf");
    let last_leaf = *leaves.iter().max().unwrap();
    damage_page(&db, last_leaf);
    let highest_ever = 60_000;

    let (report, quarantined) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    assert!(report.base_backup.is_some(), "{report:?}");
    let events = &report.tables["activity_events"];
    assert_eq!(events.from_backup, 40_000, "{events:?}");
    assert!(events.salvaged > 0 && events.salvaged < 20_000, "{events:?}");
    let conn = read_only(&db);
    assert_eq!(
        query_i64(&conn, "SELECT count(*) FROM activity_events WHERE id > 40000") as u64,
        events.salvaged,
        "salvaged rows are exactly those newer than the backup"
    );
    assert_eq!(
        query_i64(&conn, "SELECT count(*) FROM activity_events WHERE id <= 40000"),
        40_000
    );
    assert!(query_i64(&conn, "SELECT max(id) FROM activity_events") < highest_ever);
    assert_eq!(events.salvaged + events.known_lost, 20_000, "{events:?}");
    drop(conn);
    // The provenance of the file says where it came from.
    let detail: String = read_only(&db)
        .query_row(
            "SELECT source_path FROM provenance WHERE event = 'salvage' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(detail, quarantined.display().to_string());

    let mut writer = ActivityWriter::open(&db).unwrap();
    let id = writer.record_event(&NewEvent::new(None, "focus", at(70_000))).unwrap();
    assert!(
        id > highest_ever,
        "new id {id} reuses an id that existed (up to {highest_ever})"
    );
    eprintln!(
        "salvage on top of a backup: {} from the backup + {} salvaged of 20000 newer events, {} known lost; next id \
         {id}",
        events.from_backup, events.salvaged, events.known_lost
    );
}

#[test]
fn a_failed_salvage_leaves_no_output_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db) = data_dir_with_a_damaged_leaf(dir.path(), 3);
    let damaged = fs::read(&db).unwrap();
    let opts = RepairOptions {
        salvage: true,
        salvage_hook: Some(Arc::new(|_: &Connection| Err("the disk went away".to_string()))),
        ..RepairOptions::default()
    };
    let err = repair(&data, &data.join("backups"), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VerificationFailed, "{err}");
    assert!(err.to_string().contains("the disk went away"), "{err}");
    assert_eq!(
        fs::read(&db).unwrap(),
        damaged,
        "the damaged file is where it was, unchanged"
    );
    let names: Vec<String> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("salvaging") && !n.contains(".corrupt-")),
        "{names:?}"
    );

    // The same through the library call: `out` and its sidecars are removed.
    let out = dir.path().join("out.db");
    let err = store_core::salvage::salvage_with(
        &db,
        &activity_store::SCHEMA,
        None,
        &out,
        &store_core::salvage::SalvageOptions {
            before_verify: Some(Arc::new(|_: &Connection| Err("made to fail".into()))),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VerificationFailed, "{err}");
    assert_eq!(err.path(), out);
    for p in [
        out.clone(),
        store_core::files::with_suffix(&out, "-wal"),
        store_core::files::with_suffix(&out, ".lock"),
    ] {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    // An output that already exists is refused before anything is read or written.
    fs::write(&out, b"mine").unwrap();
    let err = store_core::salvage::salvage(&db, &activity_store::SCHEMA, None, &out).unwrap_err();
    assert_eq!(fs::read(&out).unwrap(), b"mine", "{err}");
}

#[test]
fn config_db_may_be_salvaged_and_the_no_backup_remedy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    {
        let mut store = config_store::ConfigStore::open_in(&data).unwrap();
        for i in 0..2000 {
            store.set_setting(&format!("key.{i:05}"), &"v".repeat(100)).unwrap();
        }
    }
    let config = data.join("config.db");
    let before = query_i64(&read_only(&config), "SELECT count(*) FROM settings");
    let leaves = pages_of(&config, "settings", "leaf");
    damage_page(&config, leaves[leaves.len() / 2]);
    let err = repair(&data, &data.join("backups"), &RepairOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoBackup);
    assert!(err.remedy().contains("--salvage"), "{err}");

    let report = salvaged_config(&data);
    let settings = &report.tables["settings"];
    let after = query_i64(&read_only(&config), "SELECT count(*) FROM settings");
    assert_eq!(after as u64, settings.salvaged);
    assert_eq!(settings.salvaged + settings.known_lost, before as u64, "{settings:?}");
    assert!(after * 100 >= before * 90, "{after} of {before}");
    // The server opens it.
    config_store::ConfigStore::open_in(&data).unwrap();
    eprintln!("salvage of config.db, damaged settings page: {after} of {before} settings");
}

/// Creates `data`/config.db holding 400 projects and nothing else, and returns their ids: no server's projects,
/// which come and go at random, so a damaged page and the ids on it are the same at every run.
fn config_of_400_projects(data: &Path) -> Vec<i64> {
    let mut store = config_store::ConfigStore::open_in(data).unwrap();
    (0..400)
        .map(|i| {
            store
                .create_project(&config_store::projects::NewProject::named(format!("project {i:03}")))
                .unwrap()
                .id
        })
        .collect()
}

/// [`config_of_400_projects`] with an activity.db beside it, as every data directory has (doctor wants
/// both); returns the projects' ids.
fn data_dir_of_400_projects(data: &Path) -> Vec<i64> {
    let ids = config_of_400_projects(data);
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(data)]);
    assert!(daemon.status.success(), "{daemon:?}");
    ids
}

/// `repair --salvage` of `data` (no backup) where only config.db is damaged: activity.db left alone, and
/// config.db's salvage report, which matches the file put in place ([`assert_report_matches`]).
fn salvaged_config(data: &Path) -> SalvageReport {
    let actions = repair(data, &data.join("backups"), &salvage_options()).unwrap();
    assert!(matches!(actions[0], RepairAction::Healthy { .. }), "{actions:?}");
    let Some(RepairAction::Salvaged { report, .. }) = actions.get(1) else {
        panic!("{actions:?}")
    };
    assert_report_matches(&data.join("config.db"), report);
    report.clone()
}

/// Projects on a damaged page of config.db that a salvage could not read: a report names the time recorded
/// for them as lost with the damage, not as time of projects the user deleted.
#[test]
fn a_report_names_projects_a_salvage_of_config_db_lost_to_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = config_of_400_projects(&data);
    // The first project, deleted: on the first leaf, far from the damaged one (an id deleted next to a page
    // a salvage cannot read is among its unreadable ids: nothing tells the two apart).
    let deleted = ids[0];
    assert!(
        config_store::ConfigStore::open_in(&data)
            .unwrap()
            .delete_project(deleted)
            .unwrap()
    );
    let leaves = pages_of(&config, "projects", "leaf");
    damage_page(&config, leaves[leaves.len() / 2]);

    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let kept: Vec<i64> = config_store::ConfigReader::open_in(&data)
        .project_summaries()
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    let lost: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !kept.contains(id) && *id != deleted)
        .collect();
    assert!(!lost.is_empty() && lost.len() < ids.len() / 2, "{lost:?}");
    let project_ids = format!("{},{},{deleted},{}", lost[0], lost[lost.len() - 1], kept[0]);
    let daemon = run_splitstore([
        "daemon",
        "--events",
        "400",
        "--project-ids",
        &project_ids,
        "--data-dir",
        utf8(&data),
    ]);
    assert!(daemon.status.success(), "{daemon:?}");

    let status = |id: i64| reported_project(&data, id).1;
    assert_eq!(status(lost[lost.len() - 1]), "lost_to_damage");
    assert_eq!(status(deleted), "deleted");
    assert_eq!(status(kept[0]), "active");
    let (name, status, line) = reported_project(&data, lost[0]);
    assert_eq!((name, status.as_str()), (None, "lost_to_damage"));
    assert!(line.contains("(lost with config.db damage)"), "{line}");
}

/// A salvage of config.db with no backup to stand on keeps what the damaged file recorded of ids it lacked: a
/// project a restore of config.db left out still reads as left out. The output started from a fresh schema
/// and carried only the damaged file's lineage and the ids it could not read itself: the project, never
/// deleted, read as deleted.
#[test]
fn a_salvage_of_config_db_keeps_the_projects_a_restore_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let d = utf8(&data).to_string();
    let kept = data_dir_of_400_projects(&data)[0];
    let config_backup = config_backup_taken(&data);
    let after = *config_of_400_projects(&data).last().unwrap();
    let ids = format!("{kept},{after}");
    let daemon = run_splitstore(["daemon", "--events", "200", "--project-ids", &ids, "--data-dir", &d]);
    assert!(daemon.status.success(), "{daemon:?}");
    let out = run_splitstore(["restore", "--data-dir", &d, "--from", utf8(&config_backup)]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert_eq!(reported_project(&data, after).1, "left_out_by_restore");
    // No backup left to stand on (kept on another disk, say), and a page of the projects damaged.
    fs::remove_dir_all(data.join("backups")).unwrap();
    let leaves = pages_of(&config, "projects", "leaf");
    damage_page(&config, leaves[leaves.len() / 2]);

    let out = run_splitstore(["repair", "--data-dir", &d, "--salvage"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let (name, status, line) = reported_project(&data, after);
    assert_eq!((name, status.as_str()), (None, "left_out_by_restore"));
    assert!(line.contains("(left out by a config restore)"), "{line}");
    assert_eq!(reported_project(&data, kept).1, "active");
}

/// A project deleted before the backup a salvage of config.db stands on, whose id lies on the damaged page:
/// a report says it deleted, not lost with the damage (every row the backup holds is in the salvage, so an id
/// up to the backup's counters that the salvage lacks was deleted). It was said lost.
#[test]
fn a_project_deleted_before_the_backup_a_salvage_stands_on_is_said_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = config_of_400_projects(&data);
    let damaged_leaf = {
        let leaves = pages_of(&config, "projects", "leaf");
        leaves[leaves.len() / 2]
    };
    // Which ids that leaf holds: those a salvage of a copy, with no backup, loses.
    let probe = copy_data_dir(&data, dir.path().join("probe"));
    damage_page(&probe.join("config.db"), damaged_leaf);
    let out = run_splitstore(["repair", "--data-dir", utf8(&probe), "--salvage"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let kept = config_store::ConfigReader::open_in(&probe).project_summaries().unwrap();
    let on_the_leaf: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !kept.iter().any(|p| p.id == *id))
        .collect();
    assert!(
        on_the_leaf.len() > 2 && on_the_leaf.len() < ids.len() / 2,
        "{on_the_leaf:?}"
    );

    // One of them deleted, then a backup, then the same leaf damaged: the salvage stands on the backup.
    let deleted = on_the_leaf[on_the_leaf.len() / 2];
    assert!(
        config_store::ConfigStore::open_in(&data)
            .unwrap()
            .delete_project(deleted)
            .unwrap()
    );
    let out = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert!(pages_of(&config, "projects", "leaf").contains(&damaged_leaf));
    damage_page(&config, damaged_leaf);
    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(" on top of the backup "), "{stdout}");
    let project_ids = format!("{deleted},{}", on_the_leaf[0]);
    let daemon = run_splitstore([
        "daemon",
        "--events",
        "200",
        "--project-ids",
        &project_ids,
        "--data-dir",
        utf8(&data),
    ]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(reported_project(&data, deleted).1, "deleted");
    assert_eq!(
        reported_project(&data, on_the_leaf[0]).1,
        "active",
        "kept from the backup"
    );
}

/// The projects of config.db as a salvage left them, (id, name), read as the application reads them.
fn salvaged_projects(data: &Path) -> Vec<(i64, String)> {
    config_store::ConfigReader::open_in(data)
        .project_summaries()
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect()
}

/// After a salvage of `data`'s config.db: `report` reads it, and `doctor --full` finds it healthy, as the
/// application's reads do.
fn report_and_doctor_agree(data: &Path) {
    let report = run_splitstore(["report", "--data-dir", utf8(data), "--json"]);
    assert!(report.status.success(), "{:?}", texts(&report));
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(data), "--full"]);
    let (stdout, stderr) = texts(&doctor);
    assert!(doctor.status.success(), "{stdout}{stderr}");
}

/// Each project is one config.db had, under its own id and name: never a row of another b-tree.
#[track_caller]
fn only_real_projects(kept: &[(i64, String)], ids: &[i64]) {
    for (id, name) in kept {
        let i = ids.iter().position(|x| x == id);
        assert_eq!(
            i.map(|i| format!("project {i:03}")).as_deref(),
            Some(name.as_str()),
            "project {id}: {kept:?}"
        );
    }
}

/// config.db cut short at 20,000 bytes: page 1 (the schema) and the roots of the first tables remain, the
/// root page of `projects` and all its rows are gone. Page 1's rows (sqlite_schema: five columns, as
/// `projects` has) were read page by page as projects: the output held `schema_migrations` and the other
/// tables as projects, passed its verification and doctor, and every report failed on them ("Invalid column
/// type Text at index: 4, name: archived").
#[test]
fn a_config_db_cut_short_never_takes_its_schema_rows_for_projects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = data_dir_of_400_projects(&data);
    let root = query_i64(
        &read_only(&config),
        "SELECT rootpage FROM sqlite_schema WHERE name = 'projects'",
    );
    assert!(
        20_000 / 4096 < root,
        "the cut lies before the root of projects ({root})"
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len(20_000)
        .unwrap();

    let report = &salvaged_config(&data);
    let projects = &report.tables["projects"];
    assert_eq!((projects.salvaged, projects.rejected), (0, 0), "{report:?}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n == "projects: no row could be read, and nothing shows how many there were"),
        "{:?}",
        report.notes
    );
    let kept = salvaged_projects(&data);
    assert!(kept.is_empty(), "{kept:?}");
    only_real_projects(&kept, &ids);
    report_and_doctor_agree(&data);
}

/// The root page of `projects` damaged: its leaves, intact, are read page by page, and every project comes
/// back as it was. Page 1 (the schema's rows, five columns like projects') was taken too, first: projects 1
/// to 17 became the schema's tables, and the real ones under those ids were dropped as already read.
#[test]
fn a_damaged_root_page_of_projects_gives_back_the_projects_and_never_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = data_dir_of_400_projects(&data);
    let root = query_i64(
        &read_only(&config),
        "SELECT rootpage FROM sqlite_schema WHERE name = 'projects'",
    );
    assert_eq!(pages_of(&config, "projects", "internal"), [root]);
    damage_page(&config, root);

    let report = &salvaged_config(&data);
    let kept = salvaged_projects(&data);
    only_real_projects(&kept, &ids);
    assert_eq!(kept.len(), ids.len(), "{report:?}");
    let projects = &report.tables["projects"];
    assert_eq!(
        (projects.salvaged, projects.rejected),
        (ids.len() as u64, 0),
        "{report:?}"
    );
    report_and_doctor_agree(&data);
}

/// A project whose `archived` (INTEGER) holds text, as damage that still parses leaves one, in a config.db
/// damaged elsewhere: the tables are not STRICT, so SQLite took the value, and every report over it failed
/// ("Invalid column type Text"). The salvage refuses the row, as the schema's constraints refuse one, and
/// says why.
#[test]
fn a_row_whose_value_its_column_type_cannot_hold_is_refused_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = data_dir_of_400_projects(&data);
    let odd = ids[0];
    Connection::open(&config)
        .unwrap()
        .execute("UPDATE projects SET archived = 'yes' WHERE id = ?1", [odd])
        .unwrap();
    let leaves = pages_of(&config, "projects", "leaf");
    damage_page(&config, leaves[leaves.len() / 2]);

    let report = &salvaged_config(&data);
    assert_eq!(report.tables["projects"].rejected, 1, "{report:?}");
    assert!(
        report.notes.iter().any(
            |n| n.starts_with("projects: 1 row(s) read from the damaged file were refused")
                && n.ends_with("(first: archived is not an integer (Text))")
        ),
        "{:?}",
        report.notes
    );
    let kept = salvaged_projects(&data);
    only_real_projects(&kept, &ids);
    assert!(!kept.iter().any(|p| p.0 == odd), "{kept:?}");
    report_and_doctor_agree(&data);
}

/// The same kind of value with no other damage, as a bit flipped in a record's header leaves it (a BLOB in
/// `created_at_ms`): `quick_check` and `integrity_check` pass the file, since its tables are not STRICT, and
/// repair left it alone as healthy while every read of the projects failed on it. The type check of repair's
/// check finds it, and the salvage refuses the row, counted and said: what it puts in place every read takes.
#[test]
fn a_value_its_column_type_cannot_hold_and_no_other_damage_is_salvaged_around() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let ids = data_dir_of_400_projects(&data);
    let odd = ids[ids.len() / 2];
    Connection::open(&config)
        .unwrap()
        .execute("UPDATE projects SET created_at_ms = X'0102' WHERE id = ?1", [odd])
        .unwrap();
    let read = config_store::ConfigReader::open_in(&data).project_summaries();
    assert_eq!(read.unwrap_err().kind(), ErrorKind::Corrupt);

    let report = &salvaged_config(&data);
    let projects = &report.tables["projects"];
    assert_eq!(
        (projects.salvaged, projects.rejected, projects.known_lost),
        (ids.len() as u64 - 1, 1, 0),
        "{report:?}"
    );
    assert!(
        report.notes.iter().any(|n| n
            == "projects: 1 row(s) read from the damaged file were refused by the schema and not copied (first: \
                created_at_ms is not an integer (Blob))"),
        "{:?}",
        report.notes
    );
    let kept = salvaged_projects(&data);
    only_real_projects(&kept, &ids);
    assert_eq!(kept.len(), ids.len() - 1, "{report:?}");
    assert!(!kept.iter().any(|p| p.0 == odd), "{kept:?}");
    report_and_doctor_agree(&data);
}

/// Damaged cell pointer arrays in every third leaf of the events and of both their indexes: no index reads
/// whole, so the lost rows are counted from id ranges, which also count the ids of rows deleted before the
/// damage. The CLI says "at most", and salvaged + that bound covers every event there was.
#[test]
fn lost_rows_counted_from_id_ranges_are_said_to_be_an_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_events(dir.path());
    let db = data.join("activity.db");
    let mut pages = Vec::new();
    for object in [
        "activity_events",
        "activity_events_session",
        "activity_events_timestamp",
    ] {
        pages.extend(pages_of(&db, object, "leaf").into_iter().step_by(3));
    }
    let mut bytes = fs::read(&db).unwrap();
    for page in pages {
        let at = (page as usize - 1) * 4096;
        for b in &mut bytes[at + 100..at + 140] {
            *b ^= 0xff;
        }
    }
    fs::write(&db, &bytes).unwrap();

    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("activity.db: salvaged ") && first.contains(" lost (damaged file kept at "),
        "{stdout}"
    );
    assert!(first.contains(", at most "), "{stdout}");
    let (events_line, numbers) = table_row(&stdout, "activity_events");
    assert!(
        events_line.ends_with("(lost at most, counted from id ranges)"),
        "{events_line}"
    );
    let [salvaged, _, lost] = numbers;
    assert!(salvaged < EVENTS as u64 && lost > 0, "{events_line}");
    assert!(
        salvaged + lost >= EVENTS as u64,
        "an upper bound covers every event: {events_line}"
    );
}

#[test]
fn repair_salvage_through_the_cli_prints_each_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db) = data_dir_with_a_damaged_leaf(dir.path(), 2);
    let pristine = data.with_file_name("pristine.db");
    fs::copy(&db, &pristine).unwrap();

    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("activity.db: salvaged "), "{stdout}");
    assert!(lines[0].contains("known lost (damaged file kept at "), "{stdout}");
    let (_, numbers) = table_row(&stdout, "activity_events");
    assert_eq!(numbers[0] as i64, events_in(&db), "{stdout}");
    assert_eq!(numbers[1], 0, "{stdout}");
    assert_eq!(numbers[0] + numbers[2], EVENTS as u64, "{stdout}");
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("activity_sessions ")),
        "{stdout}"
    );
    eprintln!("{stdout}");

    // Healthy now: the same repair leaves it alone. Damage it again and ask for JSON.
    let again = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage", "--json"]);
    assert!(again.status.success(), "{again:?}");
    let json: Json = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["actions"][0]["action"], "healthy", "{json}");
    fs::copy(&pristine, &db).unwrap();
    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    let action = &json["actions"][0];
    assert_eq!(action["action"], "salvaged", "{json}");
    assert_eq!(action["database"], "activity.db");
    let events = &action["report"]["tables"]["activity_events"];
    assert_eq!(events["salvaged"].as_i64(), Some(events_in(&db)), "{json}");
    assert_eq!(
        events["salvaged"].as_u64().unwrap() + events["known_lost"].as_u64().unwrap(),
        EVENTS as u64
    );
    assert_eq!(
        json["actions"][1]["action"], "missing",
        "config.db was never created: {json}"
    );
}

/// A salvage killed while it copies (`kill -9`) leaves its unsynced output, `activity.db.salvaging`, and
/// perhaps that output's rollback journal: never opened as a database, removed by the next repair, which
/// salvages as if the first had not run. The damaged file is untouched throughout.
#[test]
fn a_salvage_killed_while_it_copies_leaves_nothing_the_next_repair_minds() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db) = data_dir_with_a_damaged_leaf(dir.path(), 2);
    let damaged = fs::read(&db).unwrap();
    let output = store_core::salvage::temp_path(&db);

    let mut killed = spawn_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    wait_for_file(&output, std::time::Duration::from_secs(60));
    kill9(&mut killed);
    assert!(output.exists(), "killed before its output was put in place");
    assert_eq!(
        fs::read(&db).unwrap(),
        damaged,
        "the damaged file is where it was, unchanged"
    );

    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let json: Json = serde_json::from_str(&stdout).unwrap();
    let events = &json["actions"][0]["report"]["tables"]["activity_events"];
    assert_eq!(events["salvaged"].as_i64(), Some(events_in(&db)), "{json}");
    assert_eq!(
        events["salvaged"].as_u64().unwrap() + events["known_lost"].as_u64().unwrap(),
        EVENTS as u64,
        "{json}"
    );
    assert_integrity_ok(&db);
    assert_eq!(
        store_core::testing::fingerprint_of(&db),
        fresh_fingerprint("activity.db")
    );
    let left: Vec<String> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("salvaging"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A small activity.db (3000 events), built once; the property test damages copies of it.
fn small_template() -> &'static [u8] {
    static SMALL: OnceLock<Vec<u8>> = OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("activity.db");
        record_events(&path, 0, 3000);
        fs::read(&path).unwrap()
    })
}

/// activity.db's schema with no table declared append-only: a salvage over a backup matches every row read
/// with the backup's (the events too).
static EVERY_TABLE_MATCHED: store_core::Schema = store_core::Schema {
    append_only_tables: &[],
    readers_read_from: None,
    ..activity_store::SCHEMA
};

/// A backup of the small template's first 1500 events (the same history, taken earlier), built once.
fn small_base() -> &'static store_core::restore::VerifiedBackup {
    static BASE: OnceLock<store_core::restore::VerifiedBackup> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = process_scratch().join("base");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("activity.db");
        record_events(&path, 0, 1500);
        store_core::restore::verify_backup(&path, &activity_store::SCHEMA, None).unwrap()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any damage, with or without an older backup as the base: salvage returns an error (and leaves no
    /// output) or an output that passes its checks and matches its report, every row of the base kept or
    /// counted as left out; it never panics and never changes the damaged file.
    #[test]
    fn salvage_of_any_damage_is_sound_or_an_error(
        cuts in proptest::collection::vec((0usize..400_000, proptest::prelude::any::<u8>(), 1usize..600), 0..12),
        truncate_to in proptest::option::of(0usize..400_000),
        on_a_base in proptest::prelude::any::<bool>(),
        events_matched in proptest::prelude::any::<bool>(),
    ) {
        let mut bytes = small_template().to_vec();
        let len = bytes.len();
        for (at, value, run) in cuts {
            let at = at % len;
            let end = (at + run).min(len);
            bytes[at..end].fill(value);
        }
        if let Some(to) = truncate_to {
            bytes.truncate(to.min(len));
        }
        let dir = tempfile::tempdir().unwrap();
        let damaged = dir.path().join("activity.db");
        fs::write(&damaged, &bytes).unwrap();
        let out = dir.path().join("out.db");
        let base = on_a_base.then(small_base);
        let schema = if events_matched { &EVERY_TABLE_MATCHED } else { &activity_store::SCHEMA };
        match store_core::salvage::salvage(&damaged, schema, base, &out) {
            Ok(report) => {
                assert_integrity_ok(&out);
                let conn = read_only(&out);
                for (table, t) in &report.tables {
                    let n = query_i64(&conn, &format!("SELECT count(*) FROM {table}")) as u64;
                    proptest::prop_assert_eq!(n, t.from_backup + t.salvaged + t.derived, "{}: {:?}", table, t);
                }
                let events = &report.tables["activity_events"];
                // Where deletions are honoured (`events_matched`), a row of the base that the damaged file
                // neither gives, nor shows unreadable, nor lists in an index read whole is taken as deleted
                // after the backup and left out, counted in a note: never dropped without a word.
                let left_out: u64 = report
                    .notes
                    .iter()
                    .find_map(|n| {
                        let (count, rest) = n
                            .strip_prefix("activity_events: ")?
                            .split_once(" row(s) of the backup are not in the damaged file where it reads")?;
                        rest.contains("left out").then(|| count.parse().ok())?
                    })
                    .unwrap_or(0);
                proptest::prop_assert!(events_matched || left_out == 0);
                proptest::prop_assert_eq!(events.from_backup + left_out, if on_a_base { 1500 } else { 0 });
                if on_a_base {
                    // Every other row of the base is kept (matched, updated, or kept where unreadable).
                    proptest::prop_assert_eq!(
                        query_i64(&conn, "SELECT count(*) FROM activity_events WHERE id <= 1500") as u64,
                        1500 - left_out
                    );
                }
            }
            Err(e) => {
                proptest::prop_assert!(!out.exists(), "{e}");
                proptest::prop_assert!(!e.remedy().is_empty());
            }
        }
        proptest::prop_assert_eq!(fs::read(&damaged).unwrap(), bytes);
    }
}

/// A data directory whose activity.db holds 2000 sessions of four projects over 20 days, most of them
/// ended, the oldest pruned (their totals stay), checkpointed into the main file.
fn data_dir_with_sessions(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    let db = data.join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    for i in 0..2000i64 {
        let start = at(i * 864);
        let session = activity_store::NewSession {
            project_id: [Some(1), Some(2), Some(3), None][i as usize % 4],
            title: Some(format!("a window title long enough to fill pages, session {i}")),
            ..activity_store::NewSession::new("code", start)
        };
        let id = w.start_session(&session).unwrap();
        if i % 10 != 0 {
            w.end_session(id, start + Duration::seconds(60 + i % 300)).unwrap();
        }
    }
    w.prune_before(at(2 * 86_400)).unwrap();
    w.checkpoint(CheckpointMode::Truncate).unwrap();
    data
}

fn totals(db: &Path) -> Vec<activity_store::ProjectTotal> {
    activity_store::ActivityReader::open(db)
        .totals_by_project(&activity_store::TimeRange::all())
        .unwrap()
}

#[test]
fn salvaged_sessions_keep_the_reports_the_damaged_file_gave_pruned_history_included() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_sessions(dir.path());
    let db = data.join("activity.db");
    let before = totals(&db);
    let open_before = open_sessions(&db);
    let leaves = pages_of(&db, "activity_sessions", "leaf");
    damage_page(&db, leaves[leaves.len() / 2]);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    assert!(report.tables["activity_sessions"].known_lost > 0, "{report:?}");
    // Ended sessions count from the totals, whole in the damaged file; open ones from the sessions
    // salvaged (an open session on the damaged page is lost, and reported as such).
    let open_after = open_sessions(&db);
    assert!(open_after.values().sum::<i64>() < open_before.values().sum::<i64>());
    let expected: Vec<_> = before
        .iter()
        .map(|t| activity_store::ProjectTotal {
            sessions: t.sessions - open_before.get(&t.project_id).unwrap_or(&0)
                + open_after.get(&t.project_id).unwrap_or(&0),
            ..t.clone()
        })
        .collect();
    assert_eq!(
        totals(&db),
        expected,
        "the running totals were readable: ended sessions all count"
    );
    // The sessions it lost are not taken for sessions deleted by hand (`totals_disagree`, whose repair would
    // take their time off): what started before the salvage is not compared. Before the salvage's record is
    // read, they are.
    assert_eq!(activity_store::totals_disagreement(&read_only(&db)).unwrap(), None);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "DELETE FROM provenance WHERE event = ?1",
            [store_core::salvage::SALVAGE_EVENT],
        )
        .unwrap();
    assert!(activity_store::totals_disagreement(&read_only(&db)).unwrap().is_some());
}

/// Open sessions per project.
fn open_sessions(db: &Path) -> std::collections::BTreeMap<Option<i64>, i64> {
    read_only(db)
        .prepare("SELECT project_id, count(*) FROM activity_sessions WHERE end_time_ms IS NULL GROUP BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn damaged_running_totals_are_rebuilt_from_the_salvaged_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_sessions(dir.path());
    let db = data.join("activity.db");
    let totals_pages = pages_of(&db, "activity_totals", "leaf");
    // The last leaf: the copy meets it after it has written the rows of the others, and takes them back.
    assert!(totals_pages.len() > 1, "{totals_pages:?}");
    damage_page(&db, totals_pages[totals_pages.len() - 1]);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    assert!(
        report.notes.iter().any(|n| n.starts_with("activity_totals: rebuilt")),
        "{:?}",
        report.notes
    );
    // What a GROUP BY over the sessions now in the file says (the pruned ones are gone with the damage).
    let conn = read_only(&db);
    let oracle: Vec<(Option<i64>, i64, i64)> = conn
        .prepare(
            "SELECT project_id, SUM(IFNULL(duration_seconds, 0)), COUNT(*) FROM activity_sessions
             GROUP BY project_id ORDER BY project_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let got: Vec<(Option<i64>, i64, i64)> = totals(&db)
        .iter()
        .map(|t| (t.project_id, t.seconds, t.sessions))
        .collect();
    assert_eq!(got, oracle);
}

#[test]
fn sessions_ended_after_the_backup_are_ended_in_the_salvage_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_sessions(dir.path());
    let db = data.join("activity.db");
    let open_at_backup: i64 = open_sessions(&db).values().sum();
    assert!(open_at_backup > 0);
    backup(&data, &data.join("backups"), 5).unwrap();
    // The daemon's next start ends the sessions its predecessor left open (recovery), then records on.
    let writer = ActivityWriter::open(&db).unwrap();
    assert_eq!(writer.recovery().sessions.len() as i64, open_at_backup);
    drop(writer);
    record_events(&db, 0, 5_000);
    let before = totals(&db);
    let leaves = pages_of(&db, "activity_events", "leaf");
    damage_page(&db, leaves[leaves.len() / 2]);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    assert!(report.base_backup.is_some(), "{report:?}");
    let sessions = &report.tables["activity_sessions"];
    assert_eq!(sessions.updated as i64, open_at_backup, "{sessions:?}");
    assert!(
        open_sessions(&db).is_empty(),
        "no session the damaged file had ended is open again"
    );
    assert_eq!(
        totals(&db),
        before,
        "each ended session counts once: in the running totals, not again as open"
    );
}

/// Sessions open in the backup that the damaged file had ended and then pruned: their time is in the
/// running totals taken from the damaged file, so the salvage leaves them out. Kept from the backup, each
/// was counted again: open in every report, and once more when the next start's recovery ended it.
#[test]
fn sessions_open_in_the_backup_and_pruned_since_are_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_with_sessions(dir.path());
    let db = data.join("activity.db");
    assert!(!open_sessions(&db).is_empty());
    backup(&data, &data.join("backups"), 5).unwrap();
    let mut writer = ActivityWriter::open(&db).unwrap();
    assert!(!writer.recovery().sessions.is_empty());
    // Retention prunes every session the file holds, the ones recovery just ended among them.
    writer.prune_before(at(100 * 86_400)).unwrap();
    drop(writer);
    record_events(&db, 0, 5_000);
    let (before, open_before) = (totals(&db), open_sessions(&db));
    let leaves = pages_of(&db, "activity_events", "leaf");
    damage_page(&db, leaves[leaves.len() / 2]);

    let (report, _) = salvage_activity(&data);
    assert_report_matches(&db, &report);
    assert_eq!(open_sessions(&db), open_before, "no pruned session is open again");
    assert_eq!(
        totals(&db),
        before,
        "each pruned session counts once, in the running totals"
    );
    assert!(
        report.notes.iter().any(|n| n.starts_with("activity_sessions: ")
            && n.ends_with("left out, as the running totals taken from the damaged file already count them")),
        "{:?}",
        report.notes
    );
}

/// Bytes changed inside an old event's text still parse: nothing can tell them from a real change. Over a
/// backup, the events (append-only) keep the backup's verified row; a table matched row by row would take
/// the damaged file's value, as the report's `updated` says.
#[test]
fn over_a_backup_an_append_only_table_keeps_the_backups_row_where_the_damaged_file_differs() {
    let mut bytes = small_template().to_vec();
    let text = b"window title number 700 of the fixture";
    let at = bytes
        .windows(text.len())
        .position(|w| w == text)
        .expect("event 701's title");
    bytes[at + "window title number 700 ".len()..][..2].copy_from_slice(b"XX");
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("activity.db");
    fs::write(&damaged, &bytes).unwrap();
    let title = |schema: &'static store_core::Schema, name: &str| {
        let out = dir.path().join(name);
        let report = store_core::salvage::salvage(&damaged, schema, Some(small_base()), &out).unwrap();
        let title: String = read_only(&out)
            .query_row("SELECT title FROM activity_events WHERE id = 701", [], |r| r.get(0))
            .unwrap();
        (title, report.tables["activity_events"].updated)
    };
    assert_eq!(
        title(&activity_store::SCHEMA, "kept.db"),
        ("window title number 700 of the fixture".to_string(), 0)
    );
    assert_eq!(
        title(&EVERY_TABLE_MATCHED, "matched.db"),
        ("window title number 700 XX the fixture".to_string(), 1)
    );
}

/// Files a salvage reads nothing of (activity.db emptied, config.db's first page garbage) and no backup:
/// `repair` offered `--salvage`, which refused and sent the user back to `repair`, round and round, and
/// config.db had no way out at all. Now both say there is nothing to salvage and offer `--allow-empty`,
/// which starts both empty (the damaged files kept aside): nothing more is lost.
#[test]
fn files_a_salvage_reads_nothing_of_with_no_backup_are_offered_an_empty_start_not_a_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    seed_data_dir(&data, 50);
    for (db, bytes) in [("activity.db", vec![]), ("config.db", vec![0x5a; 8192])] {
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data.join(format!("{db}{side}")));
        }
        std::fs::write(data.join(db), bytes).unwrap();
    }
    nothing_to_salvage_said(
        &data,
        &format!(
            "splitstore repair: no backup of {} in {d}/backups passes verification, and the file is empty (0 \
             bytes): there is nothing in it to salvage",
            data.join("activity.db").display()
        ),
    );
    let out = run_splitstore(["repair", "--allow-empty", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    let stdout = texts(&out).0;
    assert!(
        stdout.contains("activity.db: started empty") && stdout.contains("config.db: started empty"),
        "{stdout}"
    );
    let server = run_splitstore(["server", "--seconds", "0.2", "--data-dir", d]);
    assert!(server.status.success(), "{server:?}");
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(kept, 2, "both damaged files kept aside");
}

/// config.db cut inside its first page, with no backup: its schema is not in the file. A salvage "salvaged 0
/// rows, 0 known lost" from it, at schema 0. Now, as for a first page of garbage, there is nothing to salvage:
/// `repair` offers a backup kept elsewhere or an empty start, not `--salvage`.
#[test]
fn a_config_db_cut_inside_its_first_page_has_nothing_to_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    seed_data_dir(&data, 50);
    let config = data.join("config.db");
    fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len(2000)
        .unwrap();
    nothing_to_salvage_said(
        &data,
        &format!(
            "splitstore repair: no backup of {} in {d}/backups passes verification, and nothing of it can be \
             salvaged: it ends inside its first page (2000 of 4096 bytes), which holds its schema, and there is no \
             backup to start from. What to do: ",
            config.display()
        ),
    );
}

/// `repair` and `repair --salvage` of `data` both refuse (exit 2), their error starting with `said`, offering
/// an empty start and never a salvage.
#[track_caller]
fn nothing_to_salvage_said(data: &Path, said: &str) {
    let d = utf8(data);
    for args in [
        &["repair", "--data-dir", d][..],
        &["repair", "--salvage", "--data-dir", d],
    ] {
        let out = run_splitstore(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = texts(&out).1;
        assert!(stderr.starts_with(said), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "or start it empty with `splitstore repair --data-dir {d} --allow-empty`"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("--salvage"), "no salvage offered: {stderr}");
    }
}

/// Events and settings a data directory of [`damaged_after_a_backup`] holds before its backup, and after.
const EVENTS_BEFORE: i64 = 20_000;
const EVENTS_AFTER: i64 = 10_000;
const SETTINGS_BEFORE: usize = 1_500;
const SETTINGS_AFTER: usize = 300;

/// A data directory whose activity.db holds [`EVENTS_BEFORE`] events, then a backup of both files, then
/// [`EVENTS_AFTER`] more; config.db likewise settings. activity.db (and config.db, with `config_too`) is
/// damaged on a leaf of rows the backup holds: a salvage over the backup gives back every row, and
/// restoring the backup drops the rows added since.
fn damaged_after_a_backup(dir: &Path, config_too: bool) -> PathBuf {
    let data = dir.join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    let (activity, config) = (data.join("activity.db"), data.join("config.db"));
    let set = |from: usize, to: usize| {
        let mut store = config_store::ConfigStore::open_in(&data).unwrap();
        for i in from..to {
            store.set_setting(&format!("key.{i:05}"), &"v".repeat(100)).unwrap();
        }
    };
    record_events(&activity, 0, EVENTS_BEFORE);
    set(0, SETTINGS_BEFORE);
    backup(&data, &data.join("backups"), 5).unwrap();
    record_events(&activity, EVENTS_BEFORE, EVENTS_BEFORE + EVENTS_AFTER);
    set(SETTINGS_BEFORE, SETTINGS_BEFORE + SETTINGS_AFTER);
    let leaves = pages_of(&activity, "activity_events", "leaf");
    damage_page(&activity, leaves[leaves.len() / 4]);
    if config_too {
        damage_page(&config, pages_of(&config, "settings", "leaf")[0]);
    }
    data
}

/// activity.db and config.db hold every row of [`damaged_after_a_backup`]: none lost.
#[track_caller]
fn assert_every_row(data: &Path) {
    assert_eq!(events_in(&data.join("activity.db")), EVENTS_BEFORE + EVENTS_AFTER);
    assert_eq!(
        query_i64(&read_only(&data.join("config.db")), "SELECT count(*) FROM settings") as usize,
        SETTINGS_BEFORE + SETTINGS_AFTER
    );
}

/// The steps of putting the salvages of `databases` in place (`store_core::restore::replace_all`).
fn placement_steps(data: &Path, databases: &[&str]) -> Vec<String> {
    let mut steps = vec!["journal written".to_string()];
    for db in databases {
        let db = data.join(db);
        steps.push(format!("moved aside the sidecars of {}", db.display()));
        steps.push(format!("moved aside {}", db.display()));
        steps.push(format!("placed {}", db.display()));
    }
    steps.push("committed".into());
    steps
}

/// `repair --allow-empty` moved the damaged file aside, then created the empty one at its path, outside the
/// restore's journal: killed between the two, no file was there (the next start said `removed`), and the
/// repair run again, with nothing left to quarantine, raised the new file's counters past nothing, so the
/// damaged file's event ids were handed out again. Now the empty file is built beside it with its counters
/// and its `repair-empty` row, and placed through the journal as a salvage is: killed at any step, the next
/// repair finds the damaged file back (or the empty one placed), one quarantined copy, and no id reused.
#[test]
fn a_repair_starting_activity_empty_killed_at_any_step_never_hands_an_id_out_again() {
    let steps = placement_steps(Path::new("DATA"), &["activity.db"]);
    for (i, step) in steps.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = damaged_after_a_backup(dir.path(), false);
        fs::remove_dir_all(data.join("backups")).unwrap();
        let db = data.join("activity.db");
        let damaged = fs::read(&db).unwrap();
        let last_event = query_i64(
            &read_only(&db),
            "SELECT seq FROM sqlite_sequence WHERE name = 'activity_events'",
        );
        let mut child = spawn_child("child_entry", &format!("empty-hang-at-{i}-of-activity.db"), &data);
        wait_for_file(&marker(&db, "ready"), std::time::Duration::from_secs(120));
        kill9(&mut child);
        fs::remove_file(marker(&db, "ready")).unwrap();

        let actions = repair(&data, &data.join("backups"), &allow_empty()).unwrap();
        let corrupt = named(&data, ".corrupt-");
        assert_eq!(corrupt.len(), 1, "{step}: {actions:?}");
        assert_eq!(fs::read(data.join(&corrupt[0])).unwrap(), damaged, "{step}");
        assert!(named(&data, ".restoring").is_empty(), "{step}");
        let next = next_event_id(&data);
        assert!(
            next > last_event,
            "{step}: event id {next} handed out again (the quarantined file holds up to {last_event})"
        );
    }
}

/// A repair that replaces an activity.db whose `sqlite_sequence` page is damaged (its events all still read)
/// by a file started empty or by its older backup raised the new file's counters past nothing it could read:
/// the daemon handed out again event ids 1.. (or past the backup's) that the quarantined file holds. Now the
/// highest id each table of the damaged file still shows raises them too.
#[test]
fn a_repair_of_a_file_whose_counters_are_damaged_never_hands_out_the_ids_it_holds() {
    let accept_older = RepairOptions {
        accept_older_backup: true,
        ..RepairOptions::default()
    };
    for (name, opts, keep_backup) in [
        ("--allow-empty", allow_empty(), false),
        ("--accept-older-backup", accept_older, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        store_core::files::create_private_dir_all(&data).unwrap();
        let db = data.join("activity.db");
        record_events(&db, 0, EVENTS_BEFORE);
        backup(&data, &data.join("backups"), 5).unwrap();
        record_events(&db, EVENTS_BEFORE, EVENTS_BEFORE + EVENTS_AFTER);
        if !keep_backup {
            fs::remove_dir_all(data.join("backups")).unwrap();
        }
        let last_event = query_i64(&read_only(&db), "SELECT max(id) FROM activity_events");
        damage_page(&db, pages_of(&db, "sqlite_sequence", "leaf")[0]);

        let actions = repair(&data, &data.join("backups"), &opts).unwrap();
        let corrupt = named(&data, ".corrupt-");
        assert_eq!(corrupt.len(), 1, "{name}: {actions:?}");
        assert_eq!(
            query_i64(
                &read_only(&data.join(&corrupt[0])),
                "SELECT max(id) FROM activity_events"
            ),
            last_event,
            "{name}: the quarantined file shows its events"
        );
        let next = next_event_id(&data);
        assert!(
            next > last_event,
            "{name}: event id {next} handed out again (the quarantined file holds up to {last_event})"
        );
    }
}

fn allow_empty() -> RepairOptions {
    RepairOptions {
        allow_empty: true,
        ..RepairOptions::default()
    }
}

/// The files in `data` whose names contain `part`, their `-wal` and `-shm` left out.
fn named(data: &Path, part: &str) -> Vec<String> {
    fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(part) && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect()
}

/// `repair --salvage` killed after it moved the damaged activity.db aside and before it renamed its
/// finished output into place: doctor said the file `removed` and to run repair, and that repair restored
/// the older backup, silently without the rows the salvage had read (the output, and the damaged file,
/// listed for `cleanup`). Now the salvage is placed through the restore's journal: the next start (here the
/// next repair) puts the damaged file back, and a salvage run again gives back every row.
#[test]
fn a_salvage_killed_between_quarantine_and_placement_is_undone_and_loses_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = damaged_after_a_backup(dir.path(), false);
    let db = data.join("activity.db");
    let damaged = fs::read(&db).unwrap();
    let d = utf8(&data);
    let at = placement_steps(&data, &["activity.db"])
        .iter()
        .position(|s| *s == format!("moved aside {}", db.display()))
        .unwrap();
    let mut child = spawn_child("child_entry", &format!("place-hang-at-{at}-of-activity.db"), &data);
    wait_for_file(&marker(&db, "ready"), std::time::Duration::from_secs(120));
    kill9(&mut child);
    fs::remove_file(marker(&db, "ready")).unwrap();
    assert!(!db.exists(), "killed with the damaged file aside");
    assert_eq!(named(&data, ".salvaging").len(), 1, "and its output not in place yet");

    // doctor: interrupted, never `removed` (whose remedy, repair, restored the backup over it).
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--no-check", "--json"]);
    let json: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    let codes: Vec<&str> = json["databases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|db| db["problems"].as_array().unwrap())
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert!(!codes.contains(&"removed"), "{json}");
    assert!(codes.contains(&"restore_interrupted"), "{json}");
    // cleanup keeps the damaged file and the output while the journal names them.
    let cleanup = run_splitstore(["cleanup", "--older-than", "0", "--data-dir", d]);
    assert!(cleanup.status.success(), "{cleanup:?}");
    assert!(!texts(&cleanup).0.contains("removed /"), "{cleanup:?}");

    // A plain repair puts the damaged file back first, and then, as for any damaged file newer than its
    // backup, refuses to restore the backup over it.
    let plain = run_splitstore(["repair", "--data-dir", d, "--json"]);
    assert!(!plain.status.success(), "{plain:?}");
    assert!(texts(&plain).0.contains("backup_older"), "{plain:?}");
    assert_eq!(fs::read(&db).unwrap(), damaged, "the damaged file is back, unchanged");
    assert!(named(&data, ".salvaging").is_empty() && named(&data, ".corrupt-").is_empty());
    assert!(!data.join(".private/restore.journal").exists());

    // The salvage run again: every row, and the damaged file quarantined as before.
    let out = run_splitstore(["repair", "--data-dir", d, "--salvage", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let json: Json = serde_json::from_str(&stdout).unwrap();
    let action = &json["actions"][0];
    assert_eq!(action["action"], "salvaged", "{json}");
    let events = &action["report"]["tables"]["activity_events"];
    assert_eq!(events["from_backup"].as_i64(), Some(EVENTS_BEFORE), "{json}");
    assert_eq!(events["salvaged"].as_i64(), Some(EVENTS_AFTER), "{json}");
    assert_every_row(&data);
    let quarantined = PathBuf::from(action["quarantined"].as_str().unwrap());
    assert!(
        utf8(&quarantined).starts_with(&format!("{}.corrupt-", db.display())),
        "{json}"
    );
    assert_eq!(action["report"]["from"], action["quarantined"], "{json}");
    assert_eq!(fs::read(&quarantined).unwrap(), damaged);
    assert_eq!(named(&data, ".corrupt-").len(), 1, "{:?}", named(&data, ""));
}

/// A repair salvaging both files puts them in place together, all or nothing, like a restore of both:
/// killed at any step of the placement, the next start (`undo_interrupted`, which every owner's open and
/// every repair runs first) leaves both damaged files back as they were, or (killed once committed) both
/// salvages in place; doctor never says either is `removed`, and a repair then holds every row. Killed once
/// committed, each salvage also carries its damaged file's lineage and its `salvage` record: they were
/// written by the open after the commit, so the output of a kill there had a lineage of its own (its
/// backups read as another file's) and no word of the salvage.
#[test]
fn a_salvage_of_both_files_killed_at_any_step_of_placing_them_is_all_or_nothing() {
    let steps = placement_steps(Path::new("DATA"), &["activity.db", "config.db"]);
    for (i, step) in steps.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = damaged_after_a_backup(dir.path(), true);
        let (activity, config) = (data.join("activity.db"), data.join("config.db"));
        let damaged = (fs::read(&activity).unwrap(), fs::read(&config).unwrap());
        let lineages = [&activity, &config].map(|db| lineage_of(db, None).unwrap());
        let mut child = spawn_child("child_entry", &format!("place-hang-at-{i}-of-both"), &data);
        wait_for_file(&marker(&activity, "ready"), std::time::Duration::from_secs(120));
        kill9(&mut child);
        fs::remove_file(marker(&activity, "ready")).unwrap();
        let committed = step == "committed";
        let health = splitstore::health::check(&data, splitstore::CheckLevel::None);
        let codes: Vec<ErrorKind> = health.problems().map(|(_, p)| p.code).collect();
        assert!(!codes.contains(&ErrorKind::Removed), "{step}: {codes:?}");
        assert_eq!(
            codes.contains(&ErrorKind::RestoreInterrupted),
            !committed,
            "{step}: {codes:?}"
        );

        assert_eq!(
            store_core::restore::undo_interrupted(&data).unwrap(),
            !committed,
            "{step}"
        );
        if committed {
            assert_every_row(&data);
            assert_eq!(named(&data, ".corrupt-").len(), 2, "{step}");
            for (db, lineage) in [&activity, &config].into_iter().zip(&lineages) {
                assert_eq!(lineage_of(db, None).as_ref(), Some(lineage), "{}", db.display());
                let events: Vec<String> = Provenance::read_all(&read_only(db))
                    .unwrap()
                    .into_iter()
                    .map(|p| p.event)
                    .collect();
                assert!(events.iter().any(|e| e == "salvage"), "{}: {events:?}", db.display());
            }
        } else {
            assert_eq!(fs::read(&activity).unwrap(), damaged.0, "{step}: activity.db back");
            assert_eq!(fs::read(&config).unwrap(), damaged.1, "{step}: config.db back");
            assert!(named(&data, ".corrupt-").is_empty(), "{step}");
        }
        assert!(named(&data, ".salvaging").is_empty(), "{step}");

        let actions = repair(&data, &data.join("backups"), &salvage_options()).unwrap();
        let salvaged = actions
            .iter()
            .filter(|a| matches!(a, RepairAction::Salvaged { .. }))
            .count();
        assert_eq!(salvaged, if committed { 0 } else { 2 }, "{step}: {actions:?}");
        assert_every_row(&data);
        assert_eq!(named(&data, ".corrupt-").len(), 2, "{step}");
    }
}

#[test]
fn child_entry() {
    let Some((role, data)) = child_role() else { return };
    let (options, placing) = match role.strip_prefix("empty-hang-at-") {
        Some(placing) => (allow_empty(), placing),
        None => (salvage_options(), role.strip_prefix("place-hang-at-").unwrap()),
    };
    let (i, databases) = placing.split_once("-of-").unwrap();
    let databases: &[&str] = match databases {
        "both" => &["activity.db", "config.db"],
        one => &[if one == "activity.db" {
            "activity.db"
        } else {
            "config.db"
        }],
    };
    let at = placement_steps(&data, databases)[i.parse::<usize>().unwrap()].clone();
    let ready = marker(&data.join("activity.db"), "ready");
    let hook: splitstore::operations::RestoreHook = Arc::new(move |s: &str| {
        if s == at {
            fs::write(&ready, b"").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
        Ok(())
    });
    let opts = RepairOptions {
        place_hook: Some(hook),
        ..options
    };
    let _ = repair(&data, &data.join("backups"), &opts);
}

/// A salvage of a file at the schema before this build's (a daemon not upgraded yet beside a repair of this
/// build): its output is at this build's schema, which that daemon refuses (`schema_newer`), and the repair
/// said nothing of it (a restore puts a backup back at its own version). Its notes say so now.
#[test]
fn a_salvage_of_a_file_at_an_older_schema_says_its_output_is_at_this_builds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = activity_store::SCHEMA.path_in(&data);
    let (mut writer, older) = writer_at_older_schema(&db);
    let start = Utc::now() - Duration::hours(1);
    let s = writer
        .start_session(&activity_store::NewSession::new("editor", start))
        .unwrap();
    for i in 0..5_000 {
        writer
            .record_event(&NewEvent::new(Some(s), "focus", start + Duration::milliseconds(i)))
            .unwrap();
    }
    drop(writer);
    let leaves = pages_through(&read_only(&db), "activity_events", "leaf");
    damage_page(&db, leaves[leaves.len() / 2]);
    let d = utf8(&data);
    let out = run_splitstore(["repair", "--salvage", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    let end = activity_store::SCHEMA.end_version();
    assert!(
        texts(&out).0.contains(&format!(
            "  note: written at this build's schema {end}, where the damaged file was at {older}: a build of schema \
             {older} no longer opens it (it says `schema_newer`): start the daemon of this build on it"
        )),
        "{out:?}"
    );
}

/// config.db cut short inside the last leaf of `projects`, by a few bytes (the cut crosses a project's cell)
/// or by most of the page. SQLite reads the missing bytes as zeros: the salvage kept a project named `pro`
/// and NUL bytes, created at 0, and, where the cut took most of the page, counted one project lost of the
/// 104 it did not give back. Now the page is read as damaged: each project comes back whole under its own
/// name, or is counted lost.
#[test]
fn a_config_db_cut_inside_a_page_gives_back_whole_projects_and_counts_the_others_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ids = data_dir_of_400_projects(&data);
    let last_leaf = *pages_of(&data.join("config.db"), "projects", "leaf").last().unwrap() as u64;
    for kept in [3900, 1000] {
        let cut = dir.path().join(format!("cut-{kept}"));
        fs::create_dir(&cut).unwrap();
        for file in ["config.db", "activity.db"] {
            fs::copy(data.join(file), cut.join(file)).unwrap();
        }
        let len = (last_leaf - 1) * 4096 + kept;
        fs::OpenOptions::new()
            .write(true)
            .open(cut.join("config.db"))
            .unwrap()
            .set_len(len)
            .unwrap();

        let report = &salvaged_config(&cut);
        let projects = &report.tables["projects"];
        let salvaged = salvaged_projects(&cut);
        only_real_projects(&salvaged, &ids);
        assert_eq!(salvaged.len() as u64, projects.salvaged, "{report:?}");
        assert_eq!(
            projects.salvaged + projects.known_lost,
            ids.len() as u64,
            "every project is given back or counted lost: {report:?}"
        );
        assert!(projects.known_lost > 0, "{report:?}");
        assert!(
            report.notes.contains(&format!(
                "the damaged file ends inside a page ({len} bytes, 4096-byte pages): page {last_leaf} is cut short \
                 by {} bytes, which SQLite reads as zeros; it was read as a damaged page, its rows whose cells lie \
                 whole before the cut read directly",
                4096 - kept
            )),
            "{:?}",
            report.notes
        );
        report_and_doctor_agree(&cut);
    }
}

/// 141 bytes of one value over a leaf page of the events (a case the property test above found): a seek
/// by rowid passed over a leaf without an error, and a salvage over a backup that honours deletions took the
/// backup's rows there for rows deleted after it: left out, said as "deleted after the backup, by
/// retention or by hand". The damaged file's index lists them: they are kept as the backup has them, said.
#[test]
fn rows_a_damaged_seek_passes_over_are_kept_when_the_index_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("activity.db");
    fs::write(&damaged, small_template()).unwrap();
    // 176 bytes into the first leaf of the events. Found again by a scan of every place in the events'
    // pages when schema 5 added an index (its root page came before the events' leaves, so the place the
    // property test had found no longer hid rows).
    let first_leaf = pages_of(&damaged, "activity_events", "leaf")[0] as usize;
    let at = (first_leaf - 1) * 4096 + 176;
    let mut bytes = small_template().to_vec();
    bytes[at..at + 141].fill(131);
    fs::write(&damaged, &bytes).unwrap();
    let out = dir.path().join("out.db");
    let report = store_core::salvage::salvage(&damaged, &EVERY_TABLE_MATCHED, Some(small_base()), &out).unwrap();
    let events = &report.tables["activity_events"];
    assert_eq!(events.from_backup, 1500, "{report:#?}");
    let conn = read_only(&out);
    assert_eq!(
        query_i64(&conn, "SELECT count(*) FROM activity_events WHERE id <= 1500"),
        1500
    );
    let said = "activity_events: 1442 row(s) of the backup that the damaged file's index lists were not given by its \
                table (damage that skips rows without an error): kept as the backup has them";
    assert!(report.notes.iter().any(|n| n.starts_with(said)), "{:#?}", report.notes);
    assert!(
        !report.notes.iter().any(|n| n.contains("deleted after the backup")),
        "{:#?}",
        report.notes
    );
}
