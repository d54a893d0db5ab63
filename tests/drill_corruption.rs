//! Drill: damaged files of both kinds. Each fixture gives its typed error (owner open, reader, doctor) or is
//! handled; nothing panics; and repair puts things right without deleting anything. Plus a property test
//! over database bytes for the open paths.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use rusqlite::Connection;
use splitstore::operations::{RepairAction, RepairOptions, backup, repair};
use store_core::diagnostics::{CheckLevel, InspectOptions, inspect};
use store_core::files::with_suffix;
use store_core::{ErrorKind, OwnerConnection, ReadPool, Schema};
use support::*;

/// Enough rows that the file has many pages, in whichever tables this kind has.
fn fill(schema: &Schema, owner: &OwnerConnection) {
    let row = |i: usize| match schema.stem() {
        "activity" => format!(
            "INSERT INTO activity_sessions (app, title, start_time_ms) VALUES ('app', '{}', {});",
            "t".repeat(150),
            1_700_000_000_000i64 + i as i64
        ),
        _ => format!(
            "INSERT INTO projects (name, color) VALUES ('{}', 'c{i}');",
            "p".repeat(150)
        ),
    };
    let sql: String = (0..3000).map(row).collect();
    owner.conn().execute_batch(&format!("BEGIN; {sql} COMMIT;")).unwrap();
    store_core::checkpoint::checkpoint(owner.conn(), store_core::checkpoint::CheckpointMode::Truncate).unwrap();
}

fn healthy_file(schema: &'static Schema, path: &Path) {
    let owner = OwnerConnection::open(path, schema).unwrap();
    fill(schema, &owner);
}

#[test]
fn child_entry() {
    let Some((role, path)) = child_role() else { return };
    let schema = splitstore::DATABASES.into_iter().find(|s| s.stem() == role).unwrap();
    let owner = OwnerConnection::open(&path, schema).unwrap();
    fill(schema, &owner);
    // More commits after the checkpoint, so the WAL holds committed data when the kill comes.
    owner.conn().execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
    let table = if schema.stem() == "activity" {
        "activity_sessions"
    } else {
        "projects"
    };
    owner
        .conn()
        .execute_batch(&format!("DELETE FROM {table} WHERE rowid % 2 = 0"))
        .unwrap();
    fs::write(marker(&path, "ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

const CUT_INSIDE_A_PAGE: &str = "cut inside a page";

/// The fixtures, built in `dir` for `schema`, with the error kind the owner's open must give (None: handled).
fn fixtures(schema: &'static Schema, dir: &Path) -> Vec<(&'static str, PathBuf, Option<ErrorKind>)> {
    let mut out = Vec::new();
    let make = |name: &str| {
        let d = dir.join(name);
        fs::create_dir_all(&d).unwrap();
        d.join(schema.file_name)
    };

    // A healthy file in the folder `name`, cut to the length `to` gives for its length.
    let cut = |name: &str, to: fn(u64) -> u64| {
        let p = make(name);
        healthy_file(schema, &p);
        let len = fs::metadata(&p).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(to(len))
            .unwrap();
        p
    };
    out.push(("truncated", cut("truncated", |len| len / 3), Some(ErrorKind::Corrupt)));
    // A copy cut short inside its last page: SQLite reads the missing bytes as zeros, and opened it.
    let p = cut("cut-inside-a-page", |len| len - 1000);
    out.push((CUT_INSIDE_A_PAGE, p, Some(ErrorKind::Corrupt)));

    // The same beside a -wal that holds commits of other pages only (copied while its owner ran): SQLite
    // reads the cut page from the file, zeros and all. It was let through for any -wal holding frames.
    let live = make("live").join(schema.file_name);
    healthy_file(schema, &live);
    let p = make("cut-beside-a-wal");
    {
        let owner = OwnerConnection::open(&live, schema).unwrap();
        owner
            .conn()
            .execute_batch(&format!("PRAGMA user_version = {}", schema.end_version()))
            .unwrap();
        fs::copy(&live, &p).unwrap();
        fs::copy(with_suffix(&live, "-wal"), with_suffix(&p, "-wal")).unwrap();
    }
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();
    assert!(
        fs::metadata(with_suffix(&p, "-wal")).unwrap().len() > 32,
        "the -wal holds commits"
    );
    assert!(
        !store_core::checkpoint::wal_holds_page(&p, len / 4096),
        "not of the cut page"
    );
    out.push(("cut inside a page beside a -wal", p, Some(ErrorKind::Corrupt)));

    let p = make("garbage-header");
    healthy_file(schema, &p);
    let mut bytes = fs::read(&p).unwrap();
    bytes[..100].copy_from_slice(&[0xEE; 100]);
    fs::write(&p, &bytes).unwrap();
    out.push(("garbage header", p, Some(ErrorKind::NotADatabase)));

    let p = make("damaged-page");
    healthy_file(schema, &p);
    let mut bytes = fs::read(&p).unwrap();
    let mid = (bytes.len() / 4096 / 2) * 4096;
    bytes[mid..mid + 4096].fill(0x5A);
    fs::write(&p, &bytes).unwrap();
    // Open does not read every page: it is the check before a migration, doctor and repair that find it.
    // Handled here means: open works or gives Corrupt, and doctor reports it.
    out.push(("damaged page in the middle", p, None));

    let p = make("wrong-application-id");
    healthy_file(schema, &p);
    Connection::open(&p)
        .unwrap()
        .execute_batch("PRAGMA application_id = 42")
        .unwrap();
    out.push(("wrong application_id", p, Some(ErrorKind::WrongDatabase)));

    let p = make("empty-with-wal");
    let mut child = spawn_child("child_entry", schema.stem(), &p);
    wait_for_file(&marker(&p, "ready"), Duration::from_secs(60));
    kill9(&mut child);
    assert!(fs::metadata(with_suffix(&p, "-wal")).unwrap().len() > 0);
    fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
    out.push(("0-byte file with a leftover WAL", p, Some(ErrorKind::Corrupt)));
    out
}

#[test]
fn each_corruption_fixture_gives_its_typed_error_and_doctor_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for schema in splitstore::DATABASES {
        for (name, path, expected) in fixtures(schema, &dir.path().join(schema.stem())) {
            let before = fs::read(&path).unwrap();
            let opened = OwnerConnection::open(&path, schema);
            match (expected, &opened) {
                (Some(kind), Err(e)) => {
                    assert_eq!(e.kind(), kind, "{} / {name}: {e}", schema.file_name);
                    assert_eq!(e.path(), path, "{name}: the error names the file");
                    assert!(!e.remedy().is_empty());
                    if name == CUT_INSIDE_A_PAGE {
                        let page = fs::metadata(&path).unwrap().len() / 4096 + 1;
                        assert!(
                            e.to_string().contains(&format!(
                                "the file ends inside a page ({} bytes is not a whole number of 4096-byte pages: \
                                 the last 1000 bytes of page {page} are missing)",
                                page * 4096 - 1000
                            )),
                            "{e}"
                        );
                    }
                    assert!(
                        fs::read(&path).unwrap() == before,
                        "{name}: a refused file keeps its bytes ({e})"
                    );
                }
                (Some(kind), Ok(_)) => panic!("{} / {name}: opened, expected {kind:?}", schema.file_name),
                (None, Err(e)) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{name}: {e}"),
                (None, Ok(_)) => {}
            }
            drop(opened);
            if let Some(kind) = expected {
                let read = ReadPool::new(&path, schema).check().unwrap_err();
                assert_eq!(read.kind(), kind, "reader, {} / {name}: {read}", schema.file_name);
            }
            let health = inspect(
                &path,
                schema,
                &InspectOptions {
                    check: CheckLevel::Quick,
                    ..InspectOptions::default()
                },
            );
            assert!(!health.is_healthy(), "doctor must see {} / {name}", schema.file_name);
            count += 1;
        }
    }
    assert_eq!(count, 14);
    eprintln!("drill_corruption: {count} fixtures");
}

#[test]
fn repair_quarantines_damaged_files_restores_good_backups_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for schema in splitstore::DATABASES {
        healthy_file(schema, &schema.path_in(&data));
    }
    let backups = data.join("backups");
    backup(&data, &backups, 5).unwrap();
    // Damage both.
    for schema in splitstore::DATABASES {
        let p = schema.path_in(&data);
        let mut bytes = fs::read(&p).unwrap();
        bytes[..100].fill(0xEE);
        fs::write(&p, &bytes).unwrap();
    }
    let actions = repair(&data, &backups, &RepairOptions::default()).unwrap();
    assert_eq!(actions.len(), 2);
    for (action, schema) in actions.iter().zip(splitstore::DATABASES) {
        match action {
            RepairAction::Restored {
                database,
                quarantined: Some(q),
                ..
            } => {
                assert_eq!(*database, schema.file_name);
                assert_eq!(
                    &fs::read(q).unwrap()[..100],
                    &[0xEE; 100][..],
                    "the damaged file is kept as it was"
                );
            }
            other => panic!("{other:?}"),
        }
        let h = inspect(&schema.path_in(&data), schema, &InspectOptions::default());
        assert!(h.is_healthy(), "{:?}", h.problems);
        assert!(
            h.row_counts.values().sum::<u64>() > 3000,
            "the restored backup has the rows"
        );
    }
    // Healthy now: a second repair leaves both alone.
    let again = repair(&data, &backups, &RepairOptions::default()).unwrap();
    assert!(
        again.iter().all(|a| matches!(a, RepairAction::Healthy { .. })),
        "{again:?}"
    );
}

#[test]
fn with_no_backup_activity_may_start_empty_only_when_asked_and_config_only_with_nothing_to_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for schema in splitstore::DATABASES {
        healthy_file(schema, &schema.path_in(&data));
    }
    let activity = activity_store::SCHEMA.path_in(&data);
    fs::write(&activity, vec![0x33; 8192]).unwrap();
    let empty_backups = dir.path().join("none");
    let err = repair(&data, &empty_backups, &RepairOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoBackup);
    assert!(err.remedy().contains("--allow-empty"), "{err}");
    // A repair that cannot finish moves nothing.
    assert_eq!(fs::read(&activity).unwrap(), vec![0x33; 8192]);
    let quarantined = |data: &Path| {
        fs::read_dir(data)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
            .count()
    };
    assert_eq!(quarantined(&data), 0);

    let actions = repair(&data, &empty_backups, &allow_empty()).unwrap();
    assert!(matches!(actions[0], RepairAction::StartedEmpty { .. }), "{actions:?}");
    assert_eq!(quarantined(&data), 1, "the damaged activity.db is kept aside");
    assert!(matches!(actions[1], RepairAction::Healthy { .. }), "{actions:?}");

    // Both damaged, a backup of neither, config.db on a page past its first (a salvage reads the rest):
    // activity could start empty, config cannot, so nothing moves at all.
    let config = config_store::SCHEMA.path_in(&data);
    let mut bytes = fs::read(&config).unwrap();
    let page = 4096;
    assert!(bytes.len() >= 2 * page, "config.db has pages past its first");
    let last = bytes.len() - page;
    bytes[last..].fill(0x33);
    fs::write(&config, &bytes).unwrap();
    fs::write(&activity, vec![0x34; 8192]).unwrap();
    let err = repair(&data, &empty_backups, &allow_empty()).unwrap_err();
    assert_eq!(
        fs::read(&activity).unwrap(),
        vec![0x34; 8192],
        "activity.db was not touched either"
    );
    assert_eq!(err.kind(), ErrorKind::NoBackup);
    assert!(err.remedy().contains("never starts empty"), "{err}");
    assert_eq!(fs::read(&config).unwrap(), bytes, "config.db stays where it was");

    // config.db with nothing a salvage reads (no page of it is a database's): starting it empty loses
    // nothing more, asked for; the damaged file is kept aside.
    fs::write(&config, vec![0x33; 8192]).unwrap();
    let actions = repair(&data, &empty_backups, &allow_empty()).unwrap();
    assert!(
        actions.iter().all(|a| matches!(a, RepairAction::StartedEmpty { .. })),
        "{actions:?}"
    );
    assert_eq!(
        quarantined(&data),
        3,
        "both damaged files kept aside, and the first activity.db"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any damage to a database file: the owner's open, a reader and doctor return (an error or a
    /// database), never panic.
    #[test]
    fn damaged_database_bytes_never_panic(
        cuts in proptest::collection::vec((0usize..40_000, any::<u8>()), 0..24),
        truncate_to in proptest::option::of(0usize..40_000),
        which in 0usize..2,
    ) {
        let schema = splitstore::DATABASES[which];
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine").join(schema.file_name);
        healthy_file(schema, &pristine);
        let mut bytes = fs::read(&pristine).unwrap();
        let len = bytes.len().max(1);
        for (at, value) in cuts {
            if let Some(b) = bytes.get_mut(at % len) {
                *b = value;
            }
        }
        if let Some(len) = truncate_to {
            bytes.truncate(len.min(bytes.len()));
        }
        let path = dir.path().join("damaged").join(schema.file_name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &bytes).unwrap();
        let _ = ReadPool::new(&path, schema).check();
        let _ = inspect(&path, schema, &InspectOptions::default());
        if let Ok(owner) = OwnerConnection::open(&path, schema) {
            let _ = store_core::check::quick_check(owner.conn());
        }
    }
}

fn allow_empty() -> RepairOptions {
    RepairOptions {
        allow_empty: true,
        ..RepairOptions::default()
    }
}
