//! The migration engine on real files: refusals that leave bytes untouched, failures that roll back,
//! kills that converge, upgrades equal to fresh builds, backups before migrating.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use store_core::testing::{fingerprint_of, open_at_version, user_version_of};
use store_core::{Error, ErrorKind, Migration, OpenOptions, OwnerConnection, Schema, Step};

#[test]
fn child_entry() {
    let Some((what, path)) = child_role() else { return };
    match what.as_str() {
        // Upgrade, and stall inside migration 3's transaction until killed.
        "slow-migration" => {
            let marker = store_core::files::with_suffix(&path, ".ready");
            let hook: store_core::MigrationHook = Arc::new(move |m: &Migration| {
                if m.version == 3 {
                    fs::write(&marker, b"").map_err(|e| e.to_string())?;
                    std::thread::sleep(Duration::from_secs(120));
                }
                Ok(())
            });
            let opts = OpenOptions {
                migration_hook: Some(hook),
                ..OpenOptions::default()
            };
            let _ = OwnerConnection::open_with(&path, &ITEMS, &opts);
            panic!("the parent should have killed this child");
        }
        other => panic!("unknown role {other}"),
    }
}

fn seed_v1(path: &Path) {
    let owner = open_at_version(path, &ITEMS, 1).unwrap();
    owner
        .conn()
        .execute_batch(
            "INSERT INTO items (id, name) VALUES (1, 'one'), (2, 'two');
             INSERT INTO tags (item_id, tag) VALUES (1, 'a'), (1, 'b'), (2, 'c');",
        )
        .unwrap();
}

#[test]
fn upgraded_one_to_n_equals_fresh_and_rebuilds_keep_children() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh/activity.db");
    drop(OwnerConnection::open(&fresh, &ITEMS).unwrap());

    let old = dir.path().join("old/activity.db");
    seed_v1(&old);
    assert_eq!(user_version_of(&old), 1);
    let owner = OwnerConnection::open(&old, &ITEMS).unwrap();
    assert_eq!(owner.open_report().upgrade.from_version, 1);
    assert_eq!(owner.open_report().upgrade.to_version, 3);
    // The rebuild dropped and recreated `items`; with foreign keys on, that DROP would have
    // cascade-deleted every tag. They are all still here.
    let tags: i64 = owner
        .conn()
        .query_row("SELECT count(*) FROM tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 3);
    let color: String = owner
        .conn()
        .query_row("SELECT color FROM items WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(color, "none");
    drop(owner);

    assert_eq!(fingerprint_of(&old), fingerprint_of(&fresh));
    let fp = fingerprint_of(&fresh);
    assert!(
        fp.contains("table schema_migrations") && fp.contains("table provenance"),
        "{fp}"
    );
    assert!(fp.contains("fk items|item_id|id|NO ACTION|CASCADE"), "{fp}");
}

#[test]
fn every_intermediate_version_upgrades_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh/activity.db");
    drop(OwnerConnection::open(&fresh, &ITEMS).unwrap());
    for start in 1..=3 {
        let db = dir.path().join(format!("v{start}/activity.db"));
        drop(open_at_version(&db, &ITEMS, start).unwrap());
        assert_eq!(user_version_of(&db), start);
        drop(OwnerConnection::open(&db, &ITEMS).unwrap());
        assert_eq!(fingerprint_of(&db), fingerprint_of(&fresh), "upgrade from v{start}");
    }
}

#[test]
fn a_newer_schema_is_refused_and_the_file_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        owner.conn().execute_batch("PRAGMA user_version = 9").unwrap();
    }
    let before = fs::read(&db).unwrap();
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaNewer);
    assert_eq!(
        err.to_string(),
        format!(
            "{} is at schema version 9, newer than this build supports (3). What to do: it was written by a newer \
             version of this application: upgrade this one, or restore a backup taken before the upgrade with \
             `splitstore restore --data-dir {} --from BACKUP`; the file was not changed",
            db.display(),
            dir.path().display()
        )
    );
    assert_eq!(fs::read(&db).unwrap(), before);
    assert!(
        !store_core::files::with_suffix(&db, "-wal").exists()
            || fs::metadata(store_core::files::with_suffix(&db, "-wal")).unwrap().len() == 0
    );
}

static EDITED: &[Migration] = &[Migration {
    version: 1,
    name: "items and tags",
    compat: store_core::Compat::Breaking,
    // The same migration 1, edited after release.
    step: Step::Sql(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE tags (id INTEGER PRIMARY KEY);",
    ),
}];
static EDITED_SCHEMA: Schema = Schema {
    migrations: EDITED,
    ..ITEMS_KIND
};

#[test]
fn a_changed_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(open_at_version(&db, &ITEMS, 1).unwrap());
    let before = fs::read(&db).unwrap();
    let err = OwnerConnection::open(&db, &EDITED_SCHEMA).unwrap_err();
    match &err {
        Error::MigrationChanged { version: 1, name, .. } => assert_eq!(*name, "items and tags"),
        other => panic!("expected MigrationChanged, got {other:?}"),
    }
    assert!(err.what().contains("its checksum is"), "{err}");
    assert_eq!(fs::read(&db).unwrap(), before);
}

static GAPPY: &[Migration] = &[
    Migration {
        version: 1,
        name: "one",
        compat: store_core::Compat::Breaking,
        step: Step::Sql("CREATE TABLE a (x);"),
    },
    Migration {
        version: 3,
        name: "three",
        compat: store_core::Compat::Breaking,
        step: Step::Sql("CREATE TABLE b (x);"),
    },
];
static GAPPY_SCHEMA: Schema = Schema {
    migrations: GAPPY,
    ..ITEMS_KIND
};

#[test]
fn a_migration_list_with_a_gap_is_refused_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let err = OwnerConnection::open(&db, &GAPPY_SCHEMA).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMigrations);
    assert!(err.what().contains("has version 3 where 2 was expected"), "{err}");
    assert!(!db.exists());
}

#[test]
fn an_injected_failure_in_each_step_leaves_the_previous_version_and_a_rerun_converges() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh/activity.db");
    drop(OwnerConnection::open(&fresh, &ITEMS).unwrap());
    for failing in 1..=3u32 {
        let db = dir.path().join(format!("fail{failing}/activity.db"));
        if failing > 1 {
            seed_v1(&db);
            if failing > 2 {
                drop(open_at_version(&db, &ITEMS, failing - 1).unwrap());
            }
        }
        let hook: store_core::MigrationHook = Arc::new(move |m: &Migration| {
            if m.version == failing {
                Err(format!("boom in step {failing}"))
            } else {
                Ok(())
            }
        });
        let opts = OpenOptions {
            migration_hook: Some(hook),
            ..OpenOptions::default()
        };
        let err = OwnerConnection::open_with(&db, &ITEMS, &opts).unwrap_err();
        match &err {
            Error::MigrationFailed { version, detail, .. } => {
                assert_eq!(*version, failing);
                assert!(detail.contains(&format!("boom in step {failing}")), "{detail}");
            }
            other => panic!("expected MigrationFailed, got {other:?}"),
        }
        assert_eq!(user_version_of(&db), failing - 1, "the failed step left nothing behind");
        if failing > 1 {
            let tags: i64 = Connection::open(&db)
                .unwrap()
                .query_row("SELECT count(*) FROM tags", [], |r| r.get(0))
                .unwrap();
            assert_eq!(tags, 3);
        }
        let owner = OwnerConnection::open(&db, &ITEMS).expect("the rerun finishes the upgrade");
        assert_eq!(owner.schema_version().unwrap(), 3);
        drop(owner);
        assert_eq!(
            fingerprint_of(&db),
            fingerprint_of(&fresh),
            "converged after a failure in step {failing}"
        );
    }
}

static BROKEN_SQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "ok",
        compat: store_core::Compat::Breaking,
        step: Step::Sql("CREATE TABLE a (x);"),
    },
    Migration {
        version: 2,
        name: "second statement fails",
        compat: store_core::Compat::Breaking,
        step: Step::Sql("CREATE TABLE b (y); ALTER TABLE a ADD COLUMN x; CREATE TABLE c (z);"),
    },
];
static BROKEN_SCHEMA: Schema = Schema {
    migrations: BROKEN_SQL,
    ..ITEMS_KIND
};

#[test]
fn a_failing_statement_is_named_and_nothing_of_its_migration_remains() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let err = OwnerConnection::open(&db, &BROKEN_SCHEMA).unwrap_err();
    match &err {
        Error::MigrationFailed {
            version: 2,
            sql: Some(sql),
            detail,
            ..
        } => {
            assert_eq!(&**sql, "ALTER TABLE a ADD COLUMN x;");
            assert!(detail.contains("duplicate column name: x"), "{detail}");
        }
        other => panic!("expected MigrationFailed naming the statement, got {other:?}"),
    }
    assert!(
        err.to_string().contains("[failing SQL: ALTER TABLE a ADD COLUMN x;]"),
        "{err}"
    );
    let tables: Vec<String> = query_column(
        &read_only(&db),
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    );
    assert_eq!(
        tables,
        ["a", "provenance", "reader_compatibility", "schema_migrations"],
        "table b of the failed migration was rolled back"
    );
}

/// Runs `delete` on `db` with foreign keys off, the `sqlite3` shell's default (this crate's SQLite is built with
/// them on by default).
fn delete_as_the_sqlite3_shell_does(db: &Path, delete: &str) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(delete, []).unwrap();
}

/// The `tags` of `db` naming an item it does not hold, as `foreign_key_check` says them.
fn orphan_tags(db: &Path) -> Vec<String> {
    let conn = read_only(db);
    let violations = store_core::check::foreign_key_violations(&conn).unwrap();
    violations.iter().map(|v| v.to_string()).collect()
}

/// An item deleted as the `sqlite3` shell deletes, foreign keys off (their default): its tags stay, naming
/// it. Not the upgrade's doing: it goes on (each start of the new build failed on them, "foreign_key_check
/// found 1 violation(s)"), the tags kept for doctor to name and a repair to remove.
#[test]
fn rows_naming_a_parent_deleted_with_foreign_keys_off_do_not_stop_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    delete_as_the_sqlite3_shell_does(&db, "DELETE FROM items WHERE id = 2");
    assert_eq!(
        orphan_tags(&db),
        ["tags row 3 names a row of items the file does not hold"]
    );
    let owner = OwnerConnection::open(&db, &ITEMS).expect("the upgrade is not stopped by rows it did not make");
    assert_eq!(owner.open_report().upgrade.to_version, 3);
    drop(owner);
    assert_eq!(
        orphan_tags(&db),
        ["tags row 3 names a row of items the file does not hold"]
    );
}

static ORPHANING: &[Migration] = &[
    Migration {
        version: 1,
        name: "items and tags",
        compat: store_core::Compat::Breaking,
        step: Step::Sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE tags (id INTEGER PRIMARY KEY,
                                item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
                                tag TEXT NOT NULL);",
        ),
    },
    Migration {
        version: 2,
        name: "a tag of no item",
        compat: store_core::Compat::Breaking,
        // A rebuild runs with foreign keys off: the insert goes through, and only the check before COMMIT
        // sees it.
        step: Step::Rebuild("INSERT INTO tags (id, item_id, tag) VALUES (9, 99, 'made');"),
    },
];
static ORPHANING_SCHEMA: Schema = Schema {
    migrations: ORPHANING,
    ..ITEMS_KIND
};

/// A violation the migration makes fails it, named apart from one the file held before, and nothing of the
/// migration remains.
#[test]
fn a_migration_that_leaves_a_row_naming_a_missing_parent_fails_and_names_only_that_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    open_at_version(&db, &ORPHANING_SCHEMA, 1)
        .unwrap()
        .conn()
        .execute_batch("INSERT INTO items VALUES (1, 'one'); INSERT INTO tags VALUES (3, 1, 'a');")
        .unwrap();
    delete_as_the_sqlite3_shell_does(&db, "DELETE FROM items WHERE id = 1");
    let err = OwnerConnection::open(&db, &ORPHANING_SCHEMA).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MigrationFailed);
    assert!(
        err.to_string().starts_with(&format!(
            "migration 2 (a tag of no item) failed on {}: foreign_key_check found 1 violation(s) the migration \
             made, before COMMIT: tags row 9 names a row of items the file does not hold. What to do: nothing of \
             this migration was applied (the file is still at version 1)",
            db.display()
        )),
        "{err}"
    );
    assert_eq!(user_version_of(&db), 1);
    assert_eq!(
        orphan_tags(&db),
        ["tags row 3 names a row of items the file does not hold"]
    );
}

#[test]
fn a_process_killed_during_a_migration_leaves_a_file_the_next_open_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    drop(open_at_version(&db, &ITEMS, 2).unwrap());
    let mut child = spawn_child("child_entry", "slow-migration", &db);
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(30));
    kill9(&mut child);

    assert_eq!(
        user_version_of(&db),
        2,
        "the killed migration's transaction never committed"
    );
    let owner = OwnerConnection::open(&db, &ITEMS).expect("next open upgrades");
    assert_eq!(owner.schema_version().unwrap(), 3);
    let n: i64 = owner
        .conn()
        .query_row("SELECT count(*) FROM tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    let problems = store_core::check::integrity_check(owner.conn()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_backup_is_taken_before_migrating_existing_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    assert!(
        !dir.path().join("backups").exists(),
        "no backup when creating a fresh file"
    );
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    let backup = owner
        .open_report()
        .upgrade
        .backup
        .clone()
        .expect("a pre-migration backup");
    drop(owner);
    assert_eq!(
        backup.parent().unwrap(),
        dir.path().join("backups/pre-migration"),
        "kept apart from manual backups, so their rotation never removes it"
    );
    let name = backup.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("activity-") && name.ends_with("-v1.db"), "{name}");
    assert_eq!(mode(&backup), 0o600);
    let copy = Connection::open(&backup).unwrap();
    assert!(store_core::check::integrity_check(&copy).unwrap().is_empty());
    let v: u32 = copy.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 1, "the backup holds the data as it was before migrating");
    let tags: i64 = copy.query_row("SELECT count(*) FROM tags", [], |r| r.get(0)).unwrap();
    assert_eq!(tags, 3);
    let mode_: String = copy.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode_, "delete", "a backup is one self-contained file");
    let listed = store_core::backup::all_backups(&dir.path().join("backups"), &ITEMS, None).backups;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 1);
    assert_eq!(listed[0].class, store_core::backup::BackupClass::PreMigration);
}

/// What an owner's open tells `on_migrating` of a migration: that it begins, then each phase as it begins, so
/// an app shows what its start waits for and a process asks its supervisor for time while it works. Each is
/// told before it runs: no copy yet while checking, the file at the version before a step while it runs. A
/// file created now is told nothing.
#[test]
fn an_open_tells_each_phase_of_a_migration_as_it_begins_and_nothing_of_a_file_it_creates() {
    use store_core::MigrationPhase;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = || {
        let (told, path) = (Arc::clone(&told), db.clone());
        OpenOptions {
            on_migrating: Some(Arc::new(move |m: &store_core::MigrationProgress<'_>| {
                assert_eq!(m.path, path);
                let copies = fs::read_dir(path.parent().unwrap().join("backups/pre-migration"))
                    .map_or(0, |entries| entries.count() as u32);
                let version: u32 = Connection::open(&path)
                    .unwrap()
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .unwrap();
                assert_eq!((m.from_version, m.to_version, m.stopped_before), (1, 3, 0));
                told.lock().unwrap().push((m.phase, copies, version));
            })),
            ..Default::default()
        }
    };
    drop(OwnerConnection::open_with(&dir.path().join("fresh.db"), &ITEMS, &options()).unwrap());
    assert!(
        told.lock().unwrap().is_empty(),
        "a fresh file: {:?}",
        told.lock().unwrap()
    );

    seed_v1(&db);
    drop(OwnerConnection::open_with(&db, &ITEMS, &options()).unwrap());
    let step = |version, name| MigrationPhase::Step { version, name };
    assert_eq!(
        *told.lock().unwrap(),
        [
            (MigrationPhase::Starting, 0, 1),
            (MigrationPhase::Checking, 0, 1),
            (MigrationPhase::Copying, 0, 1),
            (step(2, "item color"), 1, 1),
            (step(3, "color not null (rebuild)"), 1, 2),
        ]
    );
    let said: Vec<String> = told.lock().unwrap().iter().map(|(p, ..)| p.to_string()).collect();
    assert_eq!(
        said,
        [
            "starting",
            "checking the file (quick_check)",
            "copying the file",
            "migrating to schema 2 (item color)",
            "migrating to schema 3 (color not null (rebuild))"
        ]
    );
}

/// A migration failing at every start (a supervisor restarting its owner) kept one more copy of the whole
/// file per start in `backups/pre-migration`, never rotated, until the disk was full. A copy no step committed
/// after is removed (the file is still what it holds); one that steps committed after is kept and named: the
/// way back to the build before them.
#[test]
fn a_migration_failing_at_every_start_keeps_no_copy_of_the_file_it_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    let failing_at = |step: u32| OpenOptions {
        migration_hook: Some(Arc::new(
            move |m: &Migration| {
                if m.version == step { Err("boom".into()) } else { Ok(()) }
            },
        )),
        ..OpenOptions::default()
    };
    let pre_migration = dir.path().join("backups/pre-migration");
    let copies = || -> Vec<String> {
        fs::read_dir(&pre_migration)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    for _ in 0..3 {
        let err = OwnerConnection::open_with(&db, &ITEMS, &failing_at(2)).unwrap_err();
        let Error::MigrationFailed { backup, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(backup, &None);
        assert!(
            err.remedy().ends_with("go back to the previous version of the application (it reads the file as it is) or install a fixed build"),
            "{err}"
        );
        assert_eq!(copies(), Vec::<String>::new());
    }
    assert_eq!(user_version_of(&db), 1);

    // Step 2 commits and step 3 fails: the file is at schema 2, and its copy at 1 the way back.
    let err = OwnerConnection::open_with(&db, &ITEMS, &failing_at(3)).unwrap_err();
    let Error::MigrationFailed {
        backup: Some(backup), ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        err.remedy()
            .contains(&format!("; the copy taken before migrating is {}", backup.display())),
        "{err}"
    );
    let name = backup.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.ends_with("-v1.db"), "{name}");
    assert_eq!(copies(), [name]);
    assert_eq!(user_version_of(&db), 2);
}

/// A `user_version` set back by hand below the migrations the file records (`PRAGMA user_version`, as done to
/// let an earlier build open a newer file): an open ran the recorded migration again, which failed at every
/// start. It is refused before anything is run or copied, readers still read it, and `restore_header_ids`
/// (repair) writes the version back. A file that is not exactly this build's at the recorded version (an index
/// of the user's) is not taken for it: its migration runs, and fails, as before.
#[test]
fn a_user_version_set_back_by_hand_is_refused_untouched_and_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    fs::remove_dir_all(dir.path().join("backups")).unwrap();
    let set_back = |sql: &str| Connection::open(&db).unwrap().execute_batch(sql).unwrap();
    set_back("PRAGMA user_version = 2");

    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert!(
        matches!(
            err,
            Error::HeaderIdsLost {
                version: 3,
                lowered_to: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(user_version_of(&db), 2);
    assert!(!dir.path().join("backups").exists(), "no copy taken");
    drop(store_core::read_pool::open_database_read_only(&db, &ITEMS, None).expect("readers read it as before"));

    let lock = store_core::OwnerLock::acquire(&db).unwrap();
    assert_eq!(
        store_core::open_database::restore_header_ids(&lock, &ITEMS, None).unwrap(),
        Some(store_core::open_database::HeaderIdsWritten {
            version: 3,
            lowered_from: Some(2),
        })
    );
    drop(lock);
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.schema_version().unwrap(), 3);
    let tags: i64 = owner
        .conn()
        .query_row("SELECT count(*) FROM tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 3);
    drop(owner);

    set_back("CREATE INDEX mine ON tags (tag); PRAGMA user_version = 2");
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MigrationFailed, "{err}");
    assert_eq!(user_version_of(&db), 2);
}

/// A file an earlier build made records no lineage: its pre-migration backup carries the one the file gets,
/// so in a folder two data directories share it is told as this file's (and not as any file's).
#[test]
fn a_pre_migration_backup_of_an_earlier_builds_file_carries_the_files_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    seed_v1(&db);
    let removed = Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM provenance WHERE event = 'lineage'", [])
        .unwrap();
    assert_eq!(removed, 1, "as an earlier build left it");
    assert_eq!(store_core::provenance::lineage_of(&db, None), None);

    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    let lineage = store_core::provenance::lineage_of(&db, None).expect("the file's lineage");
    let listed = store_core::backup::all_backups(&dir.path().join("backups"), &ITEMS, None).backups;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].class, store_core::backup::BackupClass::PreMigration);
    assert_eq!(listed[0].lineage.as_deref(), Some(lineage.as_str()));
}

#[test]
fn a_damaged_file_is_not_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let owner = open_at_version(&db, &ITEMS, 1).unwrap();
        let tx_sql: String = (0..3000)
            .map(|i| format!("INSERT INTO items (name) VALUES ('{i:0>300}');"))
            .collect();
        owner.conn().execute_batch(&format!("BEGIN; {tx_sql} COMMIT;")).unwrap();
        owner
            .conn()
            .execute_batch("CREATE INDEX items_name ON items(name);")
            .unwrap();
        store_core::checkpoint::checkpoint(owner.conn(), store_core::checkpoint::CheckpointMode::Truncate).unwrap();
    }
    // Damage one page in the middle of the file (not the header, not the schema page).
    let mut bytes = fs::read(&db).unwrap();
    let pages = bytes.len() / 4096;
    let mid = (pages / 2) * 4096;
    for b in &mut bytes[mid + 8..mid + 4000] {
        *b = 0xA5;
    }
    fs::write(&db, &bytes).unwrap();
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(user_version_of(&db), 1);
}
