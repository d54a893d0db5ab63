//! Inputs that are not a legacy database this tool converts: each is refused with a message naming the
//! file and what was found, the file is unchanged, and nothing is created in the data directory (which
//! does not even come into existence).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use migrate_split::fixtures::LegacySpec;
use migrate_split::{Options, SplitError, split};

/// Splits `legacy` into a data directory that does not exist yet; asserts the refusal and that nothing was
/// created or changed, and returns the message.
fn refused(dir: &Path, legacy: &Path) -> String {
    let data = dir.join("data");
    let before = legacy.is_file().then(|| sha256(legacy));
    let beside = listing(dir);
    let err = split(legacy, &data, &Options::default()).expect_err("refused");
    assert!(matches!(err, SplitError::Refused { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.path(), legacy);
    let text = err.to_string();
    assert!(text.contains(&legacy.display().to_string()), "{text}");
    assert!(!data.exists(), "the data directory was created for a refused input");
    assert_eq!(legacy.is_file().then(|| sha256(legacy)), before, "the input changed");
    assert_eq!(listing(dir), beside, "something was created beside the input");
    text
}

fn fixture(dir: &Path, version: u32) -> PathBuf {
    legacy_file(dir, &LegacySpec::small(version)).0
}

fn alter(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    std::fs::write(&legacy, b"").unwrap();
    assert!(refused(dir.path(), &legacy).contains("it is empty (0 bytes)"));
}

#[test]
fn garbage() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    std::fs::write(&legacy, "this is not a database at all\n".repeat(500)).unwrap();
    assert!(refused(dir.path(), &legacy).contains("not a SQLite database"));
}

#[test]
fn a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 3);
    let bytes = std::fs::read(&legacy).unwrap();
    std::fs::write(&legacy, &bytes[..bytes.len() / 2]).unwrap();
    let text = refused(dir.path(), &legacy);
    assert!(text.contains("it is truncated: its header says"), "{text}");
    // Cut inside a page, and inside the header.
    std::fs::write(&legacy, &bytes[..bytes.len() / 2 + 100]).unwrap();
    assert!(refused(dir.path(), &legacy).contains("truncated"));
    std::fs::write(&legacy, &bytes[..60]).unwrap();
    assert!(refused(dir.path(), &legacy).contains("shorter than SQLite's 100-byte header"));
}

#[test]
fn a_sqlite_file_of_another_app() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    alter(
        &legacy,
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); CREATE TABLE customers (id INTEGER);",
    );
    let text = refused(dir.path(), &legacy);
    assert!(text.contains("its user_version is 0"), "{text}");
    assert!(text.contains("customers, invoices"), "{text}");
    alter(&legacy, "PRAGMA application_id = 1234;");
    assert!(refused(dir.path(), &legacy).contains("belongs to another application (application_id 0x000004d2"));
}

#[test]
fn a_splitstore_output_given_as_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    drop(store_core::OwnerConnection::open(&legacy, &activity_store::SCHEMA).unwrap());
    for f in ["legacy.db-wal", "legacy.db-shm", "legacy.db.lock"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    assert!(refused(dir.path(), &legacy).contains("it is in WAL mode"));
    alter(&legacy, "PRAGMA journal_mode = DELETE;");
    assert!(refused(dir.path(), &legacy).contains("it is a splitstore activity.db"));
}

#[test]
fn user_versions_outside_1_to_3() {
    for v in [0, 4, 99] {
        let dir = tempfile::tempdir().unwrap();
        let legacy = fixture(dir.path(), 3);
        alter(&legacy, &format!("PRAGMA user_version = {v};"));
        let text = refused(dir.path(), &legacy);
        assert!(
            text.contains(&format!("its user_version is {v}, and legacy files have 1, 2 or 3")),
            "{text}"
        );
    }
}

#[test]
fn a_version_3_file_missing_a_column() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 3);
    alter(&legacy, "ALTER TABLE settings DROP COLUMN updated_at;");
    let text = refused(dir.path(), &legacy);
    assert!(
        text.contains("table settings lacks column updated_at, which version 3 has"),
        "{text}"
    );
}

#[test]
fn a_version_3_file_missing_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 3);
    alter(&legacy, "DROP TABLE project_calendar_keywords;");
    let text = refused(dir.path(), &legacy);
    assert!(
        text.contains("table project_calendar_keywords is missing (version 3 has it)"),
        "{text}"
    );
}

#[test]
fn a_version_1_file_with_a_version_2_table_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 1);
    alter(
        &legacy,
        "CREATE TABLE calendar_subscriptions (id INTEGER PRIMARY KEY, name TEXT, url TEXT, color TEXT,
         last_synced_at TEXT, enabled INTEGER);",
    );
    let text = refused(dir.path(), &legacy);
    assert!(
        text.contains("table calendar_subscriptions belongs to version 2, but the file says version 1"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 1);
    alter(
        &legacy,
        "ALTER TABLE projects ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;",
    );
    let text = refused(dir.path(), &legacy);
    assert!(
        text.contains("table projects has column archived of version 2 in a version 1 file"),
        "{text}"
    );
}

#[test]
fn a_known_table_with_a_column_no_version_has() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 2);
    alter(&legacy, "ALTER TABLE activity_events ADD COLUMN priority INTEGER;");
    let text = refused(dir.path(), &legacy);
    assert!(
        text.contains("table activity_events has column priority, which no legacy version has (copying would drop it)"),
        "{text}"
    );
}

#[test]
fn a_missing_file_or_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(refused(dir.path(), &dir.path().join("other.db")).contains("it does not exist"));
    std::fs::create_dir(dir.path().join("dir")).unwrap();
    assert!(refused(dir.path(), &dir.path().join("dir")).contains("it is not a regular file"));
}

#[test]
fn a_hot_journal_beside_the_file() {
    // The old app was killed mid-write: its rollback journal must be rolled back first, which a
    // read-only tool must not do.
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture(dir.path(), 3);
    let journal = dir.path().join("legacy.db-journal");
    // A hot journal: a valid journal header, the file unlocked. Write one by interrupting a transaction.
    let mut child = spawn_child("hot_journal_child", "abort-mid-write", &legacy);
    let status = wait_within(&mut child, std::time::Duration::from_secs(60));
    assert!(!status.success(), "the child aborts mid-transaction");
    assert!(journal.exists(), "the child left a hot journal");
    let text = refused(dir.path(), &legacy);
    assert!(text.contains("a hot journal"), "{text}");
    assert!(journal.exists());
}

/// Child role for `a_hot_journal_beside_the_file`: writes inside a transaction, then aborts the process
/// without committing or rolling back.
#[test]
fn hot_journal_child() {
    let Some((_, path)) = child_role() else { return };
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA cache_size = 1; BEGIN; UPDATE activity_events SET title = 'x';",
    )
    .unwrap();
    std::process::abort();
}
