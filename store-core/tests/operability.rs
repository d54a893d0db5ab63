//! Diagnostics, backups and restore on real files.

mod common;

use std::fs;

use chrono::Timelike;
use common::*;
use rusqlite::Connection;
use store_core::backup::{self, Adopt, BackupClass, BackupFile, backups_for, list_backups};
use store_core::checkpoint;
use store_core::diagnostics::{CheckLevel, InspectOptions, inspect};
use store_core::files::with_suffix;
use store_core::restore::{restore_from, verify_backup};
use store_core::testing::open_at_version;
use store_core::{ErrorKind, LockState, OwnerConnection, OwnerLock, Provenance};

fn fill(owner: &OwnerConnection, n: usize) {
    let sql: String = (0..n)
        .map(|i| format!("INSERT INTO items (name) VALUES ('item {i:0>200}');"))
        .collect();
    owner.conn().execute_batch(&format!("BEGIN; {sql} COMMIT;")).unwrap();
}

#[test]
fn a_healthy_file_has_no_problems_and_counts_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&OwnerConnection::open(&db, &ITEMS).unwrap(), 10);
    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    assert!(h.is_healthy(), "{:?}", h.problems);
    assert_eq!(h.schema_version, Some(3));
    assert_eq!(h.pending_migrations, 0);
    assert_eq!(h.owner, Some(LockState::Free));
    assert_eq!(h.row_counts["items"], 10);
    assert_eq!(h.row_counts["schema_migrations"], 3);
    let check = h.check.unwrap();
    assert!(check.ok && !check.on_snapshot);
    assert_eq!(h.foreign_key_violations, Some(0));
}

#[test]
fn while_an_owner_writes_the_check_runs_on_a_snapshot_and_names_the_owner_and_none_takes_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 10);
    let h = inspect(
        &db,
        &ITEMS,
        &InspectOptions {
            check: CheckLevel::Full,
            ..InspectOptions::default()
        },
    );
    assert!(h.is_healthy(), "{:?}", h.problems);
    match &h.owner {
        Some(LockState::Held { holder: Some(holder) }) => assert_eq!(holder.pid, std::process::id()),
        other => panic!("{other:?}"),
    }
    let check = h.check.clone().unwrap();
    assert!(check.ok && check.on_snapshot && check.level == CheckLevel::Full);
    assert_eq!(h.row_counts["items"], 10);
    // This check's snapshot was taken inside the data directory's private folder, and is gone again.
    let snapshot = check.snapshot_dir.expect("the check names its snapshot folder");
    assert!(
        snapshot.starts_with(store_core::private_dir::private_dir(dir.path())),
        "{}",
        snapshot.display()
    );
    assert!(!snapshot.exists(), "{} was left behind", snapshot.display());
    // What a UI banner asks for runs no check and takes no snapshot, even while the owner writes: it stays
    // fast at any size, and still counts rows and names the owner.
    let banner = inspect(
        &db,
        &ITEMS,
        &InspectOptions {
            check: CheckLevel::None,
            ..InspectOptions::default()
        },
    );
    assert!(banner.is_healthy() && banner.check.is_none(), "{:?}", banner.check);
    assert_eq!((banner.owner, banner.row_counts["items"]), (h.owner, 10));
    drop(owner);
}

/// An empty file beside a `-wal` that still holds commits (a copy cut short): inspecting it reports the
/// damage and leaves the `-wal` as it was. SQLite deletes a `-wal` it finds beside an empty file, even from a
/// read-only connection, so nothing that inspects the file (its lineage included) may open it.
#[test]
fn inspecting_an_empty_file_beside_a_wal_of_commits_keeps_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let wal = with_suffix(&db, "-wal");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 10);
    let commits = fs::read(&wal).unwrap();
    assert!(!commits.is_empty());
    drop(owner);
    fs::write(&db, b"").unwrap();
    fs::write(&wal, &commits).unwrap();

    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    assert_eq!(h.problems[0].code, ErrorKind::Corrupt, "{:?}", h.problems);
    assert!(h.problems[0].message.contains("-wal holds"), "{:?}", h.problems);
    assert_eq!(fs::read(&wal).unwrap(), commits, "the -wal is kept");
    assert_eq!(h.lineage, None);
}

#[test]
fn missing_newer_pending_and_damaged_files_each_name_a_problem_and_a_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let missing = inspect(&dir.path().join("activity.db"), &ITEMS, &InspectOptions::default());
    assert!(!missing.exists);
    assert_eq!(missing.problems[0].code, store_core::ErrorKind::Missing);
    assert!(
        missing.problems[0].remedy.contains("splitstore daemon --data-dir"),
        "{:?}",
        missing.problems
    );

    let newer = dir.path().join("newer/activity.db");
    OwnerConnection::open(&newer, &ITEMS)
        .unwrap()
        .conn()
        .execute_batch("PRAGMA user_version = 8")
        .unwrap();
    let h = inspect(&newer, &ITEMS, &InspectOptions::default());
    assert!(h.newer_than_build);
    assert_eq!(h.problems[0].code, store_core::ErrorKind::SchemaNewer);

    let pending = dir.path().join("pending/activity.db");
    drop(open_at_version(&pending, &ITEMS, 2).unwrap());
    let h = inspect(&pending, &ITEMS, &InspectOptions::default());
    assert_eq!(h.pending_migrations, 1);
    assert_eq!(h.problems[0].code, store_core::ErrorKind::MigrationsPending);
    assert_eq!(
        h.problems[0].remedy,
        format!(
            "start the daemon from this build (`splitstore daemon --data-dir {}`): it backs the file up, then \
             migrates it",
            pending.parent().unwrap().display()
        )
    );
    // Its owner runs (an earlier build keeping it at 2): starting another would only be refused as locked.
    let running = open_at_version(&pending, &ITEMS, 2).unwrap();
    let h = inspect(&pending, &ITEMS, &InspectOptions::default());
    let Ok(LockState::Held { holder: Some(holder) }) = OwnerLock::probe(&pending) else {
        panic!("held by `running`")
    };
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(
        h.problems[0].remedy,
        format!(
            "the daemon running now ({holder}) has not upgraded it (an earlier build, or an upgrade under way: look \
             again in a minute): stop it, then start the daemon from this build (`splitstore daemon --data-dir \
             {}`): it backs the file up, then migrates it",
            pending.parent().unwrap().display()
        )
    );
    drop(running);

    let damaged = dir.path().join("damaged/activity.db");
    {
        let owner = OwnerConnection::open(&damaged, &ITEMS).unwrap();
        fill(&owner, 3000);
        owner
            .conn()
            .execute_batch("CREATE INDEX items_name ON items(name)")
            .unwrap();
        owner.backup_to(&backup::default_backup_dir(&damaged), 5).unwrap();
        checkpoint::checkpoint(owner.conn(), checkpoint::CheckpointMode::Truncate).unwrap();
    }
    let mut bytes = fs::read(&damaged).unwrap();
    let mid = (bytes.len() / 4096 / 2) * 4096;
    bytes[mid + 8..mid + 4000].fill(0xA5);
    fs::write(&damaged, &bytes).unwrap();
    let h = inspect(&damaged, &ITEMS, &InspectOptions::default());
    assert_eq!(h.problems.len(), 1, "{:?}", h.problems);
    assert_eq!(h.problems[0].code, store_core::ErrorKind::Corrupt);
    let backup = h.newest_backup.as_ref().unwrap().path.display().to_string();
    let remedy = &h.problems[0].remedy;
    assert!(
        remedy.contains(&format!(
            "`splitstore repair --data-dir {}`",
            dir.path().join("damaged").display()
        )) && remedy.contains(&format!("the newest backup is {backup}")),
        "{remedy}"
    );
}

/// An item deleted with foreign keys off (the `sqlite3` shell's default; this crate's SQLite has them on by
/// default) leaves its tags naming it: the check and the owner's next open say so and name the repair; the
/// removal is one transaction, which a failure at its last statement (the provenance record) leaves as it was,
/// and which then removes exactly those tags and records their ids.
#[test]
fn rows_naming_a_deleted_parent_are_told_and_removed_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    owner
        .conn()
        .execute_batch(
            "INSERT INTO items (id, name) VALUES (1, 'one'), (2, 'two');
             INSERT INTO tags (id, item_id, tag) VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 2, 'c');",
        )
        .unwrap();
    let shell = Connection::open(&db).unwrap();
    shell
        .execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM items WHERE id = 2")
        .unwrap();
    drop(shell);
    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    assert_eq!(h.foreign_key_violations, Some(2));
    let [problem] = &h.problems[..] else {
        panic!("{:?}", h.problems)
    };
    assert_eq!(problem.code, ErrorKind::ForeignKeyViolations);
    assert_eq!(
        problem.remedy,
        format!(
            "a parent row was deleted by a tool with foreign keys off (the sqlite3 shell's default): `splitstore \
             repair --data-dir {}` removes the rows naming it, as that delete removes them with foreign keys on",
            dir.path().display()
        )
    );
    assert_eq!(owner.open_report().foreign_key_violations, None, "none when it opened");
    drop(owner);
    let mut owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.open_report().foreign_key_violations.as_ref(), Some(problem));
    let removed_records = |owner: &OwnerConnection| -> Vec<Option<String>> {
        Provenance::read_all(owner.conn())
            .unwrap()
            .into_iter()
            .filter(|p| p.event == store_core::orphans::ORPHANS_REMOVED_EVENT)
            .map(|p| p.detail)
            .collect()
    };

    store_core::testing::fail_provenance_records(owner.conn());
    let err = owner.remove_orphans().unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(count_rows(&db, "tags"), 3);
    assert!(removed_records(&owner).is_empty());
    assert_eq!(owner.open_report().foreign_key_violations.as_ref(), Some(problem));

    owner.conn().execute_batch("DROP TRIGGER temp.injected").unwrap();
    let removed = owner.remove_orphans().unwrap();
    assert_eq!(
        removed,
        [store_core::orphans::OrphansRemoved {
            table: "tags".into(),
            parent: "items".into(),
            ids: vec![2, 3],
        }]
    );
    assert_eq!(count_rows(&db, "tags"), 1);
    assert_eq!(
        removed_records(&owner),
        [Some(r#"[{"table":"tags","parent":"items","ids":[2,3]}]"#.to_string())]
    );
    assert_eq!(owner.open_report().foreign_key_violations, None);
    drop(owner);
    assert!(inspect(&db, &ITEMS, &InspectOptions::default()).is_healthy());
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.open_report().foreign_key_violations, None);
}

/// An index of the schema dropped by a tool (`DROP INDEX` in the `sqlite3` shell) and another changed are
/// found against a fresh file of the schema's version; an index the user added is not this build's concern.
/// Their return is one transaction, which a failure at its last statement (the provenance record) leaves as
/// it was.
#[test]
fn indexes_a_tool_dropped_or_changed_are_found_and_created_again_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    let shell = Connection::open(&db).unwrap();
    shell
        .execute_batch(
            "DROP INDEX tags_item;
             CREATE INDEX mine ON tags (tag);",
        )
        .unwrap();
    let dropped = store_core::schema_objects::SchemaObject {
        kind: "index".into(),
        name: "tags_item".into(),
        changed: false,
    };
    let version = store_core::testing::user_version_of(&db);
    assert_eq!(
        store_core::schema_objects::missing(&shell, &ITEMS, version).unwrap(),
        std::slice::from_ref(&dropped)
    );
    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    let [problem] = &h.problems[..] else {
        panic!("{:?}", h.problems)
    };
    assert_eq!(problem.code, ErrorKind::SchemaObjectsMissing);
    assert_eq!(
        problem.message,
        format!(
            "{} lacks 1 of its schema's indexes and triggers, dropped or changed by a tool: index tags_item \
             (dropped). Without an index the reads that use it scan the table; without a trigger what it keeps is \
             no longer kept",
            db.display()
        )
    );
    shell.execute_batch("CREATE INDEX tags_item ON tags (tag)").unwrap();
    let changed = store_core::schema_objects::SchemaObject {
        changed: true,
        ..dropped
    };
    assert_eq!(
        store_core::schema_objects::missing(&shell, &ITEMS, version).unwrap(),
        std::slice::from_ref(&changed)
    );
    let index_sql = |conn: &Connection| -> String {
        conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'tags_item'", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let as_changed = index_sql(&shell);

    let mut owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(
        owner.open_report().schema_objects_missing.as_ref().map(|p| p.code),
        Some(ErrorKind::SchemaObjectsMissing),
        "said at the open"
    );
    store_core::testing::fail_provenance_records(owner.conn());
    let err = owner.restore_schema_objects().unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(index_sql(&shell), as_changed, "left as it was");
    owner.conn().execute_batch("DROP TRIGGER temp.injected").unwrap();
    assert_eq!(owner.restore_schema_objects().unwrap(), [changed]);
    assert_eq!(owner.restore_schema_objects().unwrap(), []);
    assert_eq!(owner.open_report().schema_objects_missing, None);
    drop(owner);
    assert!(inspect(&db, &ITEMS, &InspectOptions::default()).is_healthy());
    assert_eq!(index_sql(&shell), "CREATE INDEX tags_item ON tags(item_id)");
    let mine: i64 = shell
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'mine'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mine, 1, "the user's own index is left alone");
}

/// A file whose `auto_vacuum` a tool turned off (`PRAGMA auto_vacuum = NONE; VACUUM`) is opened by its owner
/// as it is (the open refused it, "reads back 0 after setting it to INCREMENTAL", its remedy a local disk), and
/// said: by the open's report and by the check, which names `repair`; setting it back keeps every row.
#[test]
fn auto_vacuum_turned_off_by_a_tool_is_said_and_set_back_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&OwnerConnection::open(&db, &ITEMS).unwrap(), 50);
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA auto_vacuum = NONE; VACUUM")
        .unwrap();
    let auto_vacuum = || query_i64(&read_only(&db), "PRAGMA auto_vacuum");
    assert_eq!(auto_vacuum(), 0);
    let message = format!(
        "{} has auto_vacuum=NONE, not the INCREMENTAL it was created with (a tool changed it and ran VACUUM): the \
         space retention frees stays inside the file, never given back to the disk",
        db.display()
    );
    let remedy = format!(
        "`splitstore repair --data-dir {}` sets it back: a VACUUM rewrites the file in place, atomically, every row \
         kept (it needs free disk space the size of the file)",
        dir.path().display()
    );

    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    let [problem] = &h.problems[..] else {
        panic!("{:?}", h.problems)
    };
    assert_eq!(
        (problem.code, &problem.message, &problem.remedy),
        (ErrorKind::AutoVacuumOff, &message, &remedy)
    );
    let mut owner = OwnerConnection::open(&db, &ITEMS).expect("opened as it is");
    let said = owner.open_report().auto_vacuum_off.as_ref().expect("said at the open");
    assert_eq!((&said.message, &said.remedy), (&message, &remedy));

    owner.restore_auto_vacuum().unwrap();
    assert_eq!(owner.open_report().auto_vacuum_off, None);
    drop(owner);
    assert_eq!(auto_vacuum(), 2);
    assert_eq!(count_rows(&db, "items"), 50);
    assert!(inspect(&db, &ITEMS, &InspectOptions::default()).is_healthy());
}

#[test]
fn backups_are_private_verified_and_only_the_newest_k_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    let to = dir.path().join("elsewhere");
    let mut taken = Vec::new();
    for i in 0..4 {
        fill(&owner, 5);
        taken.push(owner.backup_to(&to, 3).unwrap());
        assert_eq!(mode(&taken[i]), 0o600);
    }
    let kept = list_backups(&to, &ITEMS, BackupClass::Manual, None).backups;
    assert_eq!(
        kept.iter().map(|b| b.path.clone()).collect::<Vec<_>>(),
        [taken[3].clone(), taken[2].clone(), taken[1].clone()]
    );
    assert_eq!(count_rows(&taken[3], "items"), 20);
    assert_eq!(verify_backup(&taken[3], &ITEMS, None).unwrap().version(), 3);
    // The three, and the folder's lock file.
    assert_eq!(fs::read_dir(&to).unwrap().count(), 4, "no temporary files left");
    assert!(store_core::FolderLock::path_for(&to).is_file());
}

/// A backup of lineage `lineage` (none: an earlier build's) taken `minute` minutes past 14:00.
fn backup_of(lineage: Option<&str>, minute: u32) -> BackupFile {
    store_core::testing::listed_backup(&format!("events-20260921T14{minute:02}00.000Z-v3.db"), lineage)
}

/// Which backups of a folder may stand for a file ([`backup::backups_for`]).
#[test]
fn a_restore_or_repair_takes_the_files_own_backups_and_another_files_only_when_it_is_the_only_one() {
    let schema = &ITEMS;
    let (path, dir) = (std::path::Path::new("/d/events.db"), std::path::Path::new("/shared"));
    let minutes = |chosen: store_core::Result<Vec<BackupFile>>| -> Vec<u32> {
        chosen.unwrap().iter().map(|b| b.taken_at.minute()).collect()
    };
    // Newest first, as listed: another file's newest, then this file's, then an earlier build's.
    let folder = vec![backup_of(Some("b"), 3), backup_of(Some("a"), 2), backup_of(None, 1)];
    for adopt in [Adopt::OwnOnly, Adopt::SingleOther] {
        assert_eq!(
            minutes(backups_for(folder.clone(), Some("a"), adopt, path, dir, schema)),
            [2, 1]
        );
    }
    let others = vec![backup_of(Some("b"), 3), backup_of(Some("b"), 1)];
    assert_eq!(
        minutes(backups_for(
            others.clone(),
            Some("a"),
            Adopt::OwnOnly,
            path,
            dir,
            schema
        )),
        [0; 0]
    );
    assert_eq!(
        minutes(backups_for(
            others.clone(),
            Some("a"),
            Adopt::SingleOther,
            path,
            dir,
            schema
        )),
        [3, 1]
    );
    assert_eq!(
        minutes(backups_for(others, None, Adopt::OwnOnly, path, dir, schema)),
        [3, 1]
    );
    // A file of another lineage takes the backup an earlier build took (nothing tells it is not its own).
    assert_eq!(
        minutes(backups_for(
            folder.clone(),
            Some("c"),
            Adopt::OwnOnly,
            path,
            dir,
            schema
        )),
        [1]
    );
    // Unknown lineage, two others: nothing tells which are this file's.
    match backups_for(folder.clone(), None, Adopt::SingleOther, path, dir, schema) {
        Err(store_core::Error::BackupsOfOtherFiles { newest, .. }) => assert_eq!(
            newest,
            [
                (folder[0].path.clone(), Some("/b/events.db".into())),
                (folder[1].path.clone(), Some("/a/events.db".into()))
            ]
        ),
        other => panic!("{other:?}"),
    }
}

/// Removes a backup's lineage record, as a backup taken by a build before lineages has none.
fn as_taken_before_lineages(backup: &std::path::Path) {
    let conn = Connection::open(backup).unwrap();
    assert_eq!(
        conn.execute("DELETE FROM provenance WHERE event = 'lineage'", [])
            .unwrap(),
        1
    );
}

/// Two backups of one file running at once (two scheduled runs overlapping), `--keep 1`: the older one's
/// rotation must not remove the newer backup. Before, each kept only the backup it had just taken, so two
/// rotations that both listed both removed each other's, leaving none.
#[test]
fn rotation_never_removes_a_backup_newer_than_the_one_just_taken() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backups");
    let owner = OwnerConnection::open(&dir.path().join("activity.db"), &ITEMS).unwrap();
    let oldest = owner.backup_to(&to, 9).unwrap();
    let first = owner.backup_to(&to, 9).unwrap();
    let second = owner.backup_to(&to, 9).unwrap();

    backup::prune_backups(&to, &ITEMS, 1, &first, None).unwrap();
    let kept: Vec<_> = list_backups(&to, &ITEMS, BackupClass::Manual, None)
        .backups
        .into_iter()
        .map(|b| b.path)
        .collect();
    assert_eq!(
        kept,
        [second, first],
        "the newer one stays, the older one goes ({oldest:?})"
    );
}

/// Two files backing up into one folder: rotation removes only backups of the file just backed up: of its
/// lineage, or (taken by an earlier build, recording none) from its path. The other file's stay.
#[test]
fn rotation_removes_only_backups_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("shared");
    let mine = OwnerConnection::open(&dir.path().join("a").join("activity.db"), &ITEMS).unwrap();
    let other = OwnerConnection::open(&dir.path().join("b").join("activity.db"), &ITEMS).unwrap();
    let others_old = other.backup_to(&to, 2).unwrap();
    as_taken_before_lineages(&others_old);
    let others_new = other.backup_to(&to, 2).unwrap();
    let mine_old = mine.backup_to(&to, 2).unwrap();
    as_taken_before_lineages(&mine_old);
    let taken: Vec<_> = (0..3).map(|_| mine.backup_to(&to, 2).unwrap()).collect();

    let kept = list_backups(&to, &ITEMS, BackupClass::Manual, None).backups;
    assert_eq!(
        kept.iter().map(|b| b.path.clone()).collect::<Vec<_>>(),
        [taken[2].clone(), taken[1].clone(), others_new, others_old]
    );
    let lineages: Vec<_> = kept.iter().map(|b| b.lineage.clone()).collect();
    assert!(lineages[0].is_some() && lineages[0] == lineages[1], "{lineages:?}");
    assert!(lineages[2].is_some() && lineages[2] != lineages[0], "{lineages:?}");
    assert_eq!(lineages[3], None);
}

#[test]
fn a_backup_from_a_read_only_connection_finishes_while_the_owner_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 2000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (first_commit, committed) = std::sync::mpsc::channel();
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            // A second connection of the same process writing as fast as it can (the owner's lock is held
            // by `owner`; this stands in for its write path).
            let c = Connection::open(&db).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.execute("INSERT INTO items (name) VALUES ('busy')", []).unwrap();
                if n == 0 {
                    first_commit.send(()).unwrap();
                }
                n += 1;
            }
            n
        })
    };
    // The backup starts only once the writer is committing (on a busy machine the thread may not have run
    // at all before a backup of this size finishes), and the writer is stopped only after it.
    committed
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the writer committed within 30 s");
    let reader = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let backup = backup::backup_connection(
        &reader,
        &db,
        &ITEMS,
        &dir.path().join("b"),
        BackupClass::Manual,
        5,
        None,
    )
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0, "the writer really wrote while the backup ran");
    assert!(
        count_rows(&backup, "items") > 2000,
        "the backup holds the rows committed before it began, the writer's first included"
    );
    assert!(verify_backup(&backup, &ITEMS, None).is_ok());
}

#[test]
fn restore_moves_the_current_file_aside_with_its_wal_and_places_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let backup = {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        fill(&owner, 7);
        owner.backup_to(&dir.path().join("backups"), 5).unwrap()
    };
    // The current file moves on and is left with a WAL, as after a crash.
    let mut child = spawn_child("child_entry", "write-and-hang", &db);
    wait_for_file(&with_suffix(&db, ".ready"), std::time::Duration::from_secs(30));
    kill9(&mut child);
    assert!(with_suffix(&db, "-wal").exists());

    let lock = OwnerLock::acquire(&db).unwrap();
    let verified = verify_backup(&backup, &ITEMS, None).unwrap();
    let (report, lock) = restore_from(lock, &ITEMS, &verified, "replaced", None).unwrap();
    drop(lock);
    let aside = report.moved_aside.clone().unwrap();
    assert!(
        aside.exists() && with_suffix(&aside, "-wal").exists(),
        "the old file moved aside with its WAL"
    );
    assert_eq!(
        count_rows(&aside, "items"),
        7 + 50,
        "nothing of the replaced file was lost"
    );
    assert!(
        !with_suffix(&db, "-wal").exists() && !with_suffix(&db, "-shm").exists(),
        "no stale sidecars"
    );
    assert_eq!(count_rows(&db, "items"), 7);
    assert_eq!(mode(&db), 0o600);
    let provenance = Provenance::read_all(&Connection::open(&db).unwrap()).unwrap();
    assert_eq!(provenance.last().unwrap().event, "restore");
    assert_eq!(
        provenance.last().unwrap().source_path.as_deref(),
        Some(backup.to_str().unwrap())
    );
}

#[test]
fn child_entry() {
    let Some((what, path)) = child_role() else { return };
    match what.as_str() {
        "write-and-hang" => {
            let owner = OwnerConnection::open(&path, &ITEMS).unwrap();
            fill(&owner, 50);
            fs::write(with_suffix(&path, ".ready"), b"").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
        // Holds the backup folder `path` as a restore does, and stops itself (as Ctrl-Z would) until continued.
        "hold-folder-then-stop" => {
            let _folder = store_core::FolderLock::shared(&path).unwrap();
            // SAFETY: stops this very process; the parent continues it.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        // A database browser left open: a read-only connection holding a read transaction.
        "hold-snapshot" => {
            let _reader = hold_snapshot(&path);
            fs::write(with_suffix(&path, ".ready"), b"").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
        // An operator's `sqlite3` shell left inside a write transaction (`BEGIN IMMEDIATE`, never committed).
        "hold-write" | "hold-write-again" => {
            let writer = Connection::open(&path).unwrap();
            writer.execute_batch("BEGIN IMMEDIATE").unwrap();
            let ready = if what == "hold-write" { ".ready" } else { ".ready-again" };
            fs::write(with_suffix(&path, ready), b"").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A wait that goes on through stopped holders (`Waits::through_stopped_holders`, a daemon's: failing, it was
/// restarted into the same refusal until its supervisor gave up) says when they are stopped, and takes the
/// folder once they are continued. Without a stop flag, the one other way out, it fails as any wait does.
#[test]
fn a_wait_through_stopped_holders_says_they_are_stopped_and_goes_on_once_they_are_continued() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("backups");
    store_core::files::create_private_dir_all(&folder).unwrap();
    drop(store_core::FolderLock::exclusive(&folder).unwrap());
    let mut holder = store_core::testing::KillOnDrop(spawn_child("child_entry", "hold-folder-then-stop", &folder));
    let pid = holder.0.id();
    store_core::testing::wait_until(std::time::Duration::from_secs(60), "the holder stops", || {
        store_core::process::stopped(pid)
    });

    let without_stop = store_core::Waits {
        through_stopped_holders: true,
        ..Default::default()
    };
    let err = store_core::FolderLock::exclusive_with(&folder, &without_stop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");

    /// Each time the wait said it waits: its holders' pids, whether they were stopped, whether it is over.
    type Told = Vec<(Vec<u32>, bool, bool)>;
    let told: Arc<Mutex<Told>> = Arc::default();
    let heard = told.clone();
    let waits = store_core::Waits {
        stop: Some(Arc::new(AtomicBool::new(false))),
        on_waiting: Some(Arc::new(move |wait: &store_core::FolderWait<'_>| {
            heard.lock().unwrap().push((
                wait.holders.iter().map(|h| h.pid).collect(),
                wait.holders_stopped,
                wait.over,
            ))
        })),
        through_stopped_holders: true,
    };
    let taking = {
        let folder = folder.clone();
        std::thread::spawn(move || store_core::FolderLock::exclusive_with(&folder, &waits))
    };
    store_core::testing::wait_until(
        std::time::Duration::from_secs(60),
        "the wait never said its holder is stopped",
        || {
            let said = told.lock().unwrap().len() == 2;
            assert!(
                said || !taking.is_finished(),
                "the wait ended while its holder was stopped"
            );
            said
        },
    );
    assert_eq!(
        *told.lock().unwrap(),
        vec![(vec![pid], false, false), (vec![pid], true, false)]
    );
    assert!(!taking.is_finished(), "it waits on");

    // SAFETY: continues the child this test spawned.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(holder.0.wait().unwrap().success());
    let lock = taking.join().unwrap().expect("taken once the holder let go");
    drop(lock);
    assert_eq!(
        *told.lock().unwrap(),
        vec![
            (vec![pid], false, false),
            (vec![pid], true, false),
            (vec![], false, true)
        ],
        "said once each, then that the wait is over"
    );
}

#[test]
fn backups_that_are_not_sound_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("config.db");
    drop(OwnerConnection::open(&other, &OTHER).unwrap());
    assert_eq!(
        verify_backup(&other, &ITEMS, None).unwrap_err().kind(),
        ErrorKind::WrongDatabase
    );

    let newer = dir.path().join("newer.db");
    OwnerConnection::open(&newer, &ITEMS)
        .unwrap()
        .conn()
        .execute_batch("PRAGMA user_version = 4")
        .unwrap();
    assert_eq!(
        verify_backup(&newer, &ITEMS, None).unwrap_err().kind(),
        ErrorKind::SchemaNewer
    );

    // Whole and of this kind, with a value its column never holds (as damage that still parses leaves it):
    // found by the type check, which runs beside the integrity check on a second connection.
    let odd = dir.path().join("odd.db");
    {
        let owner = OwnerConnection::open(&odd, &ITEMS).unwrap();
        fill(&owner, 300);
        owner
            .conn()
            .execute("UPDATE items SET name = X'00ff' WHERE id = 250", [])
            .unwrap();
    }
    let err = verify_backup(&odd, &ITEMS, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.to_string()
            .contains("integrity_check found: items row 250: name is not text (blob)"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.db");
    fs::write(&garbage, vec![7u8; 9000]).unwrap();
    assert_eq!(
        verify_backup(&garbage, &ITEMS, None).unwrap_err().kind(),
        ErrorKind::NotADatabase
    );

    let missing = verify_backup(&dir.path().join("nope.db"), &ITEMS, None).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io);
    assert!(missing.to_string().contains("nope.db"), "{missing}");
}

#[test]
fn the_holder_of_the_owner_lock_checks_the_file_itself_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        fill(&owner, 3000);
        owner
            .conn()
            .execute_batch("CREATE INDEX items_name ON items(name)")
            .unwrap();
    }
    let lock = OwnerLock::acquire(&db).unwrap();
    let h = store_core::diagnostics::inspect_owned(&lock, &ITEMS, &InspectOptions::default());
    assert!(h.is_healthy(), "{:?}", h.problems);
    let check = h.check.unwrap();
    assert!(
        check.ok && !check.on_snapshot,
        "no copy: nobody can write while the lock is held"
    );
    assert!(matches!(h.owner, Some(LockState::Held { .. })));

    let mut bytes = fs::read(&db).unwrap();
    let mid = (bytes.len() / 4096 / 2) * 4096;
    bytes[mid + 8..mid + 4000].fill(0xA5);
    fs::write(&db, &bytes).unwrap();
    let h = store_core::diagnostics::inspect_owned(&lock, &ITEMS, &InspectOptions::default());
    assert_eq!(h.problems[0].code, store_core::ErrorKind::Corrupt, "{:?}", h.problems);
    // Without the lock, the same file is checked on a snapshot (an owner might be writing).
    drop(lock);
    let other = OwnerLock::acquire(&db).unwrap();
    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    assert!(
        h.check.is_some_and(|c| c.on_snapshot),
        "held by someone: checked on a copy"
    );
    drop(other);
}

#[test]
fn a_snapshot_left_by_a_killed_check_is_removed_by_the_next_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 10);
    // A process that has exited: its pid names no live process now.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = store_core::private_dir::private_dir(dir.path()).join(format!("check-{}-0", gone.id()));
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("activity.db"), b"a copy of user data").unwrap();
    // A live process's folder (this one's) is not touched.
    let live = store_core::private_dir::private_dir(dir.path()).join(format!("check-{}-999999", std::process::id()));
    fs::create_dir_all(&live).unwrap();

    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    assert!(h.check.is_some_and(|c| c.ok && c.on_snapshot), "{:?}", h.problems);
    assert!(!stale.exists(), "the killed check's snapshot was removed");
    assert!(live.exists(), "a live process's scratch folder is left alone");
    drop(owner);
}

/// Damage an owner meets while running is recorded and outlives its opens: an open reads only the pages it
/// needs, so it proves nothing about the damaged one. A reader in a process that does not own the file
/// records nothing (the file may be being replaced under it). A restore clears the record.
#[test]
fn damage_met_while_running_is_recorded_kept_across_opens_and_cleared_by_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let backup = {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        fill(&owner, 3000);
        let backup = owner.backup_to(&dir.path().join("backups"), 5).unwrap();
        checkpoint::checkpoint(owner.conn(), checkpoint::CheckpointMode::Truncate).unwrap();
        backup
    };
    // A leaf of items with an impossible page type.
    let leaves: Vec<i64> = query_column(
        &read_only(&db),
        "SELECT pageno FROM dbstat WHERE name = 'items' AND pagetype = 'leaf' ORDER BY pageno",
    );
    let pristine = fs::read(&db).unwrap();
    let mut bytes = pristine.clone();
    bytes[(leaves[leaves.len() / 2] as usize - 1) * 4096] = 0x5A;
    fs::write(&db, &bytes).unwrap();
    let scan = |c: &Connection| c.query_row("SELECT sum(length(name)) FROM items", [], |r| r.get::<_, i64>(0));

    // A reader with no owner in this process meets it: nothing recorded.
    let pool = store_core::ReadPool::new(&db, &ITEMS);
    assert_eq!(pool.read(scan).unwrap_err().kind(), ErrorKind::Corrupt);
    assert!(store_core::records::damage_seen(&db).is_none());

    // The owner opens cleanly (nothing it reads is damaged), then meets the page: recorded, by this process.
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert!(owner.open_report().damage_seen.is_none());
    let met = owner.read(scan).unwrap_err();
    assert_eq!(met.kind(), ErrorKind::Corrupt, "{met}");
    let seen = store_core::records::damage_seen(&db).expect("recorded");
    assert_eq!((seen.pid, seen.banner.kind), (std::process::id(), ErrorKind::Corrupt));
    assert_eq!(seen.banner.message, met.what());
    drop(owner);

    // The next open says so, as the error to show; a check that does not run still reports it.
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.open_report().damage_seen.as_ref(), Some(&seen));
    let shown = owner.damage_seen().expect("damage seen").to_string();
    let detail = met.what();
    let detail = detail.strip_prefix(&format!("{} is damaged: ", db.display())).unwrap();
    assert!(
        shown.starts_with(&format!(
            "{} is damaged: the daemon met it while running ({}, pid {}): {detail}. What to do: ",
            db.display(),
            seen.at(),
            std::process::id()
        )),
        "{shown}"
    );
    drop(owner);
    // A check that finds the damage itself names it once.
    let checked = inspect(&db, &ITEMS, &InspectOptions::default());
    assert_eq!(checked.damage_seen.as_ref(), Some(&seen));
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    assert!(
        !checked.problems[0].message.contains("met it while running"),
        "{:?}",
        checked.problems
    );
    // One that does not find it (here the page is whole again; in life, a page since freed, or an index out
    // of step with its table, which quick_check does not compare) still reports the damage met.
    fs::write(&db, &pristine).unwrap();
    let h = inspect(&db, &ITEMS, &InspectOptions::default());
    let codes: Vec<ErrorKind> = h.problems.iter().map(|p| p.code).collect();
    assert_eq!(codes, [ErrorKind::Corrupt], "{:?}", h.problems);
    assert!(
        h.problems[0].message.contains("the daemon met it while running"),
        "{:?}",
        h.problems
    );
    assert!(h.problems[0].remedy.contains("splitstore repair"), "{:?}", h.problems);

    // A file put at that path by hand is not the one the damage was met in.
    let by_hand = dir.path().join("by-hand.db");
    fs::copy(&db, &by_hand).unwrap();
    fs::rename(&by_hand, &db).unwrap();
    assert!(store_core::records::damage_seen(&db).is_none());
    assert!(OwnerConnection::open(&db, &ITEMS).unwrap().damage_seen().is_none());
    fs::write(&db, &bytes).unwrap();
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.read(scan).unwrap_err().kind(), ErrorKind::Corrupt);
    assert!(
        store_core::records::damage_seen(&db).is_some(),
        "met again in this file: recorded again"
    );
    drop(owner);

    // A restore puts another file in place: the record goes.
    let lock = OwnerLock::acquire(&db).unwrap();
    let verified = verify_backup(&backup, &ITEMS, None).unwrap();
    let (_, lock) = restore_from(lock, &ITEMS, &verified, "replaced", None).unwrap();
    drop(lock);
    assert!(store_core::records::damage_seen(&db).is_none());
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert!(owner.damage_seen().is_none());
    assert_eq!(owner.read(scan).unwrap(), 3000 * 205);
}

/// A read-only connection (a database browser) holding a read transaction on `db`: its snapshot keeps the
/// owner's WAL from being reset until it ends.
fn hold_snapshot(db: &std::path::Path) -> Connection {
    let reader = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    reader
}

/// Writes rows enough for the `-wal` to pass `LARGE_WAL_BYTES` when nothing can be checkpointed.
fn write_past_large_wal(owner: &OwnerConnection) {
    let rows = store_core::diagnostics::LARGE_WAL_BYTES / 50_000 + 100;
    owner
        .conn()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO items (name) SELECT hex(zeroblob(25000)) FROM n;"
        ))
        .unwrap();
}

/// A `-wal` past `LARGE_WAL_BYTES` left by an owner that stopped while a reader held an old snapshot: with no
/// owner running nothing checkpoints it, and no reader pins it any more, so the remedy names the owner's start,
/// not restarting readers and waiting for a checkpoint that no process will run.
#[test]
fn a_large_wal_without_a_running_owner_says_to_start_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 10);
    // A read-only reader (a database browser) holds a snapshot while the owner writes and stops: the owner's
    // closing checkpoint cannot reset the WAL, and a read-only connection never checkpoints.
    let reader = hold_snapshot(&db);
    write_past_large_wal(&owner);
    drop(owner);
    drop(reader);
    assert!(checkpoint::wal_bytes(&db) > store_core::diagnostics::LARGE_WAL_BYTES);

    let h = inspect(
        &db,
        &ITEMS,
        &InspectOptions {
            check: CheckLevel::None,
            ..InspectOptions::default()
        },
    );
    assert_eq!(h.owner, Some(LockState::Free));
    let large = h
        .problems
        .iter()
        .find(|p| p.code == ErrorKind::LargeWal)
        .unwrap_or_else(|| panic!("{:?}", h.problems));
    assert!(large.remedy.contains("no owner is running"), "{}", large.remedy);
    assert!(
        !large.remedy.contains("restart long-running readers"),
        "{}",
        large.remedy
    );
}

/// A `-wal` a reader of another process keeps from being reset (a database browser left in a read
/// transaction) while the owner runs: doctor names that process, pid and program, and says to end its read.
/// It said only "a reader is holding an old snapshot: restart long-running readers", and the operator whose
/// disk filled was left to guess which. A reader that is itself stopped (Ctrl-Z on a `sqlite3` shell) is said
/// stopped, and the remedy's way to end it works: "close that program" does not reach a stopped one, and a
/// plain `kill` stays pending until it is continued. Once the reader is gone, none is named.
#[test]
fn a_large_wal_names_the_process_whose_read_transaction_holds_it_and_says_when_it_is_stopped() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    fill(&owner, 10);
    let mut browser = store_core::testing::KillOnDrop(spawn_child("child_entry", "hold-snapshot", &db));
    store_core::testing::wait_for_file(&with_suffix(&db, ".ready"), std::time::Duration::from_secs(60));
    write_past_large_wal(&owner);
    let result = checkpoint::checkpoint(owner.conn(), checkpoint::CheckpointMode::Passive).unwrap();
    assert!(result.checkpointed_frames < result.wal_frames, "{result:?}");
    assert!(checkpoint::wal_bytes(&db) > store_core::diagnostics::LARGE_WAL_BYTES);

    let options = InspectOptions {
        check: CheckLevel::None,
        ..InspectOptions::default()
    };
    let large_wal = || {
        let h = inspect(&db, &ITEMS, &options);
        assert!(matches!(h.owner, Some(LockState::Held { .. })), "{:?}", h.owner);
        h.problems
            .into_iter()
            .find(|p| p.code == ErrorKind::LargeWal)
            .unwrap_or_else(|| panic!("no large_wal: {db:?}"))
    };
    let pid = browser.0.id();
    let program = store_core::process::command_of(pid).unwrap();
    let held = large_wal();
    let named = format!("pid {pid}, running `{program}`");
    assert!(
        held.message
            .ends_with(&format!(" MB, held by a read transaction of {named}")),
        "{}",
        held.message
    );
    assert_eq!(
        held.remedy,
        format!(
            "end the read transaction of {named} (close that program, or let its read finish): the owner \
             truncates the WAL at its next checkpoint"
        )
    );

    // SAFETY: stops the child this test spawned (killed on drop if the test fails).
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    store_core::testing::wait_until(std::time::Duration::from_secs(60), "the reader stops", || {
        store_core::process::stopped(pid)
    });
    let stopped = large_wal();
    let named = format!("{named}, which is stopped (Ctrl-Z, SIGSTOP or a debugger)");
    assert!(
        stopped
            .message
            .ends_with(&format!(" MB, held by a read transaction of {named}")),
        "{}",
        stopped.message
    );
    assert_eq!(
        stopped.remedy,
        format!(
            "end the read transaction of {named}: continue pid {pid} (`kill -CONT {pid}`, `fg` in the terminal \
             that stopped it, or detach the debugger), then close that program, or let its read finish; or end it \
             (`kill {pid} && kill -CONT {pid}`: stopped, a process acts on `kill` only once continued): the owner \
             truncates the WAL at its next checkpoint"
        )
    );
    // The remedy's way to end it, run as written.
    let command = stopped
        .remedy
        .split("or end it (`")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap();
    let ran = std::process::Command::new("sh").args(["-c", command]).status().unwrap();
    assert!(ran.success(), "{command}");
    let ended = store_core::testing::wait_within(&mut browser.0, std::time::Duration::from_secs(60));
    assert_eq!(ended.signal(), Some(libc::SIGTERM), "{ended:?}");
    let unheld = large_wal();
    assert!(unheld.message.ends_with(" MB"), "{}", unheld.message);
    assert!(
        unheld.remedy.contains("restart long-running readers"),
        "{}",
        unheld.remedy
    );
}

/// Another process holding a write transaction open on the owner's file (an operator's `sqlite3` shell left
/// in `BEGIN IMMEDIATE`) makes the owner's writes fail `busy` past its busy timeout: the error names that
/// process, pid and program, and says to end its transaction. It said "look for a process that keeps one
/// open", and the daemon, exiting 75 for it, was restarted into the same failure without the operator
/// learning which. An open that migrates is named alike. Once that process is gone, the owner writes again.
#[test]
fn a_busy_write_names_the_process_whose_write_transaction_holds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let options = store_core::OpenOptions {
        busy_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    fill(&open_at_version(&db, &ITEMS, 2).unwrap(), 3);
    let shell_at = |role: &str, ready: &str| {
        let shell = store_core::testing::KillOnDrop(spawn_child("child_entry", role, &db));
        store_core::testing::wait_for_file(&with_suffix(&db, ready), std::time::Duration::from_secs(60));
        let pid = shell.0.id();
        (
            shell,
            format!("pid {pid}, running `{}`", store_core::process::command_of(pid).unwrap()),
        )
    };
    let said = |busy: &store_core::Error, named: &str| {
        assert_eq!(busy.kind(), ErrorKind::Busy, "{busy}");
        assert_eq!(
            busy.what(),
            format!(
                "{} stayed locked past the busy timeout by the write transaction of {named}",
                db.display()
            )
        );
        assert_eq!(
            busy.remedy(),
            format!(
                "end the write transaction of {named} (commit or roll it back, or close that program), then retry: \
                 only the file's owner writes it (readers never need its write lock)"
            )
        );
    };
    let (mut shell, named) = shell_at("hold-write", ".ready");
    said(&OwnerConnection::open_with(&db, &ITEMS, &options).unwrap_err(), &named);

    // Opened (and migrated) while no one else writes, then kept waiting at a write.
    store_core::testing::kill9(&mut shell.0);
    let mut owner = OwnerConnection::open_with(&db, &ITEMS, &options).unwrap();
    let (mut shell, named) = shell_at("hold-write-again", ".ready-again");
    let insert =
        |owner: &mut OwnerConnection| owner.write(|tx| tx.execute("INSERT INTO items (name) VALUES ('x')", []));
    said(&insert(&mut owner).unwrap_err(), &named);

    store_core::testing::kill9(&mut shell.0);
    insert(&mut owner).expect("the owner writes once that transaction is gone");
    assert_eq!(count_rows(&db, "items"), 4);
}

/// An open that migrates waits for its backup folder while another process's backup or restore holds it.
/// Told who is in the way when the wait begins, and given up when its caller's stop flag is set (a SIGTERM
/// handler's): [`store_core::Error::Stopped`], text pinned, with the file still at its version and no backup
/// taken. Without a stop flag the wait only ended when the holder let go, and the open then migrated the
/// file its caller had been asked to leave alone.
#[test]
fn an_open_waiting_for_its_backup_folder_says_for_whom_and_gives_up_when_its_stop_flag_is_set() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(open_at_version(&db, &ITEMS, 2).unwrap());
    let backups = dir.path().join("backups");
    store_core::files::create_private_dir_all(&backups).unwrap();
    let held = store_core::FolderLock::exclusive(&backups).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    /// Each time the open said it waits: the folder, and its holders' pids.
    type Told = Vec<(std::path::PathBuf, Vec<u32>)>;
    let told: Arc<Mutex<Told>> = Arc::default();
    let heard = told.clone();
    let options = store_core::OpenOptions {
        waits: store_core::Waits {
            stop: Some(stop.clone()),
            on_waiting: Some(Arc::new(move |wait: &store_core::FolderWait<'_>| {
                heard
                    .lock()
                    .unwrap()
                    .push((wait.folder.to_path_buf(), wait.holders.iter().map(|h| h.pid).collect()))
            })),
            ..Default::default()
        },
        ..Default::default()
    };
    let opening = {
        let db = db.clone();
        std::thread::spawn(move || OwnerConnection::open_with(&db, &ITEMS, &options).map(drop))
    };
    store_core::testing::wait_until(
        std::time::Duration::from_secs(60),
        "the open never said it waits",
        || {
            let said = !told.lock().unwrap().is_empty();
            assert!(
                said || !opening.is_finished(),
                "the open ended while the folder was held"
            );
            said
        },
    );
    assert_eq!(
        *told.lock().unwrap(),
        vec![(backups.clone(), vec![std::process::id()])],
        "told once, naming the folder and its holder"
    );
    stop.store(true, Ordering::SeqCst);
    let err = opening.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Stopped, "{err}");
    let expected = format!(
        "asked to stop while waiting for the backup folder {}, held by pid {} (this process)",
        backups.display(),
        std::process::id()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
    assert!(
        err.to_string().ends_with(
            "it stopped before changing anything. What to do: none: it stopped as asked, and nothing \
                        was changed; the next run (a daemon's or server's next start) does what this one did not"
        ),
        "{err}"
    );
    assert!(!err.kind().is_retryable(), "asked for, not a failure to retry");
    let c = Connection::open(&db).unwrap();
    let version: u32 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2, "not migrated");
    let pre = backup::pre_migration_dir(&backups);
    assert!(
        !pre.exists() || fs::read_dir(&pre).unwrap().next().is_none(),
        "no backup taken: {:?}",
        fs::read_dir(&pre).map(|d| d.count())
    );

    // Let go, the next open migrates, taking its backup.
    drop(held);
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.schema_version().unwrap(), ITEMS.end_version());
    assert!(owner.open_report().upgrade.backup.is_some());
}
