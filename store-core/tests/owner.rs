//! The owner lock and the honest open, on real files and real processes.

mod common;

use std::fs;
use std::io::Write;
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use store_core::{Error, ErrorKind, LockState, OwnerConnection, OwnerLock};

/// Child role: hold the owner connection of the path in the role, signal with `<path>.ready`, sleep.
#[test]
fn child_entry() {
    let Some((what, path)) = child_role() else { return };
    match what.as_str() {
        "own" => {
            let _owner = OwnerConnection::open(&path, &ITEMS).expect("child opens as owner");
            fs::write(store_core::files::with_suffix(&path, ".ready"), b"").expect("ready marker");
            std::thread::sleep(Duration::from_secs(120));
        }
        // Open by a path relative to the data directory, then leave it (a daemon detaching changes its
        // working directory to /), write, and say how the write went.
        "own-relative-then-chdir" => {
            let dir = path.parent().unwrap();
            std::env::set_current_dir(dir).unwrap();
            let mut owner = OwnerConnection::open(std::path::Path::new("activity.db"), &ITEMS).unwrap();
            std::env::set_current_dir("/").unwrap();
            let outcome =
                insert_item(&mut owner, "after the chdir").map_or_else(|e| e.to_string(), |n| format!("rows={n}"));
            fs::write(dir.join("outcome"), outcome).unwrap();
        }
        // Write, wait for the parent to remove files beside the database, write again (or only confirm the
        // files, as an idle owner does), say how it went, and wait for `kill -9`: no clean close copies
        // anything into the database file.
        "own-write-until-killed" | "own-confirm-until-killed" => {
            let mut owner = OwnerConnection::open(&path, &ITEMS).unwrap();
            insert_item(&mut owner, "before the removal").unwrap();
            fs::write(store_core::files::with_suffix(&path, ".ready"), b"").unwrap();
            wait_for_file(
                &store_core::files::with_suffix(&path, ".removed"),
                Duration::from_secs(60),
            );
            after_the_confirm_interval();
            let outcome = match what.as_str() {
                "own-write-until-killed" => insert_item(&mut owner, "after the removal").map(|n| format!("rows={n}")),
                _ => owner.confirm_files().map(|()| "confirmed".to_string()),
            };
            let outcome = outcome.unwrap_or_else(|e| e.kind().to_string());
            // Written whole under another name, then renamed: the parent reads the file as soon as it appears
            // (written in place, it was once read empty between its creation and the write).
            let written = store_core::files::with_suffix(&path, ".outcome-tmp");
            fs::write(&written, outcome).unwrap();
            fs::rename(&written, store_core::files::with_suffix(&path, ".outcome")).unwrap();
            std::thread::sleep(Duration::from_secs(120));
        }
        // A reader (a report, a database browser) that keeps the WAL's index: it reads while the parent's owner
        // writes and stops, then ends its read when told and stays open.
        "keep-index" => {
            let reader = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            reader.execute_batch("BEGIN; SELECT COUNT(*) FROM items;").unwrap();
            fs::write(store_core::files::with_suffix(&path, ".ready"), b"").unwrap();
            wait_for_file(
                &store_core::files::with_suffix(&path, ".end-read"),
                Duration::from_secs(60),
            );
            reader.execute_batch("COMMIT").unwrap();
            fs::write(store_core::files::with_suffix(&path, ".read-ended"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn second_owner_in_the_same_process_is_refused_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let first = OwnerConnection::open(&db, &ITEMS).unwrap();
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert_eq!(err.path(), db);
    let text = err.to_string();
    assert!(
        text.contains(&format!("pid {} (this process)", std::process::id())),
        "{text}"
    );
    assert!(text.contains(&db.display().to_string()), "{text}");
    drop(first);
    OwnerConnection::open(&db, &ITEMS).expect("free again once the first owner is dropped");
}

/// An owner of a new database in a new directory, with the database's and its lock file's paths.
fn new_owner() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    OwnerConnection,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    (dir, OwnerLock::path_for(&db), db, owner)
}

/// Lets the owner's next write confirm its lock and file again (it does at most once per interval).
fn after_the_confirm_interval() {
    std::thread::sleep(store_core::open_database::CONFIRM_INTERVAL);
}

/// The names of the items in `db`, in id order.
fn item_names(db: &std::path::Path) -> Vec<String> {
    Connection::open(db)
        .unwrap()
        .prepare("SELECT name FROM items ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One row into the test schema through the owner's write path (what a store's write does).
fn insert_item(owner: &mut OwnerConnection, name: &str) -> Result<usize, Error> {
    owner.write(|tx| tx.execute("INSERT INTO items (name) VALUES (?1)", [name]))
}

#[test]
fn a_lock_file_removed_under_its_owner_is_locked_again_at_the_next_write_and_still_refuses_a_second_owner() {
    let (_dir, lock, db, mut owner) = new_owner();
    fs::remove_file(&lock).unwrap();

    insert_item(&mut owner, "after the removal").expect("the owner takes its lock file back and writes");
    let record = fs::read_to_string(&lock).expect("the lock file is there again");
    assert!(record.contains(&format!("pid={}", std::process::id())), "{record}");
    assert_eq!(mode(&lock), 0o600);
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    insert_item(&mut owner, "and after").unwrap();
    drop(owner);
    let c = Connection::open(&db).unwrap();
    assert_eq!(
        c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        2
    );
}

#[test]
fn an_owner_opened_by_a_relative_path_still_writes_after_changing_its_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut child = spawn_child("child_entry", "own-relative-then-chdir", &db);
    assert!(child.wait().unwrap().success());
    assert_eq!(fs::read_to_string(dir.path().join("outcome")).unwrap(), "rows=1");
    assert!(
        !std::path::Path::new("/activity.db.lock").exists(),
        "no lock file made where it does not belong"
    );
}

#[test]
fn an_owner_whose_data_directory_was_moved_away_stops_writing_and_says_where_its_lock_file_was() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (dir.path().join("d"), dir.path().join("moved"));
    fs::create_dir(&before).unwrap();
    let db = before.join("activity.db");
    let mut owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    insert_item(&mut owner, "before the move").unwrap();
    fs::rename(&before, &after).unwrap();
    after_the_confirm_interval();

    let err = insert_item(&mut owner, "after the move").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "could not take back the removed lock file {}: No such file or directory",
            OwnerLock::path_for(&db).display()
        )),
        "{err}"
    );
    assert!(!before.exists(), "nothing is created at the old place");
    drop(owner);
    let c = Connection::open(after.join("activity.db")).unwrap();
    let count: i64 = c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 1, "what was written before the move moved with the directory");
}

#[test]
fn an_owner_whose_database_file_was_replaced_or_removed_writes_nothing_more_into_the_file_it_has_open() {
    let (dir, _lock, db, mut owner) = new_owner();
    insert_item(&mut owner, "in the file").unwrap();
    let backup = owner.backup_to(&dir.path().join("backups"), 5).unwrap();
    insert_item(&mut owner, "after the backup").unwrap();
    // A restore by hand: the backup moved over the live database.
    fs::copy(&backup, dir.path().join("copy")).unwrap();
    fs::rename(dir.path().join("copy"), &db).unwrap();
    after_the_confirm_interval();

    let err = insert_item(&mut owner, "into the file no longer there").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OwnershipLost, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{db} was replaced or removed while this process owned it: the file this process has open is no longer \
             at that path, so nothing more is written to it (it would be lost). What to do: this handle writes \
             nothing more (what it committed before is in the file it has open): open the owner again, or restart \
             the process (splitstore's daemon and server exit 75 for it), and it opens the file now at the path. To \
             put a backup back, stop every owner of a database in {dir} (the command takes all their locks) and \
             run `splitstore restore --data-dir {dir} --from BACKUP`: a file moved or copied over a database its owner \
             has open is not where the owner writes",
            db = db.display(),
            dir = dir.path().display(),
        )
    );
    drop(owner);
    let mut owner = OwnerConnection::open(&db, &ITEMS).expect("a new open takes the file now at the path");
    insert_item(&mut owner, "into the backup put back").unwrap();
    assert_eq!(item_names(&db), ["in the file", "into the backup put back"]);

    // Removed outright: the same.
    store_core::files::remove_with_sidecars(&db).unwrap();
    after_the_confirm_interval();
    let err = insert_item(&mut owner, "into a removed file").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OwnershipLost, "{err}");
}

/// An owner in a child process (`role`) writes, `remove` is taken from beside its database, it writes again
/// (or confirms its files), and it is killed: what its second call said, and the items in the file after
/// the kill.
fn remove_beside_a_killed_owner(role: &str, remove: &[&str]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut child = spawn_child("child_entry", role, &db);
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(60));
    for suffix in remove {
        fs::remove_file(store_core::files::with_suffix(&db, suffix)).unwrap();
    }
    fs::write(store_core::files::with_suffix(&db, ".removed"), b"").unwrap();
    let outcome_file = store_core::files::with_suffix(&db, ".outcome");
    wait_for_file(&outcome_file, Duration::from_secs(60));
    kill9(&mut child);
    let outcome = fs::read_to_string(outcome_file).unwrap();
    (outcome, item_names(&db))
}

#[test]
fn an_owner_whose_wal_was_removed_copies_its_commits_into_the_file_and_writes_on_into_a_new_one() {
    // Before: the commits since the last checkpoint (here, all of them) lived only in the removed -wal the
    // owner still had open, and the kill took them, the schema included.
    let (outcome, items) = remove_beside_a_killed_owner("own-write-until-killed", &["-wal"]);
    assert_eq!(outcome, "rows=1");
    assert_eq!(items, ["before the removal", "after the removal"]);
}

#[test]
fn an_idle_owner_confirming_its_files_takes_a_removed_wal_back_without_a_write() {
    let (outcome, items) = remove_beside_a_killed_owner("own-confirm-until-killed", &["-wal"]);
    assert_eq!(outcome, "confirmed");
    assert_eq!(
        items,
        ["before the removal"],
        "its commit is in the file, not only in the removed -wal"
    );
    let (outcome, _) = remove_beside_a_killed_owner("own-confirm-until-killed", &["-shm"]);
    assert_eq!(outcome, "shared_memory_replaced");
}

/// Asserts that `err`'s remedy names `child` (and no other process) among those to stop and start again.
fn assert_names_to_stop(err: &Error, child: &std::process::Child) {
    let pid = child.id();
    let keeper = format!(
        "(the daemon, and every process reading the file; it is open in pid {pid}, running `{}`), then start them",
        store_core::process::command_of(pid).unwrap()
    );
    assert!(err.remedy().contains(&keeper), "{keeper:?} not in {}", err.remedy());
}

#[test]
fn an_owner_whose_shm_was_removed_writes_nothing_more_and_loses_nothing() {
    let (outcome, items) = remove_beside_a_killed_owner("own-write-until-killed", &["-shm"]);
    assert_eq!(outcome, "shared_memory_replaced");
    assert_eq!(items, ["before the removal"]);
    // Both: what the removed -wal held is copied into the file before the owner stops.
    let (outcome, items) = remove_beside_a_killed_owner("own-write-until-killed", &["-wal", "-shm"]);
    assert_eq!(outcome, "shared_memory_replaced");
    assert_eq!(items, ["before the removal"]);
}

#[test]
fn the_shm_removed_under_an_owner_stops_its_writes_until_everyone_starts_again_and_says_so() {
    let (dir, _lock, db, mut owner) = new_owner();
    insert_item(&mut owner, "before").unwrap();
    fs::remove_file(store_core::files::with_suffix(&db, "-shm")).unwrap();
    after_the_confirm_interval();

    let err = insert_item(&mut owner, "after").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SharedMemoryReplaced, "{err}");
    assert!(!err.kind().is_retryable(), "restarting the owner alone is not enough");
    assert_eq!(err.path(), db);
    assert_eq!(
        err.to_string(),
        format!(
            "{db}-shm, the index of the write-ahead log that every process using {db} shares, was removed or \
             replaced while this process owned {db}: a process that opened the file since reads another index than \
             the one this process writes, so nothing more is written. What to do: nothing committed is lost (it is \
             in the database file and its -wal): stop every process using {dir} (the daemon, and every process \
             reading the file), then start them again; the first to open the file builds the index again from the \
             -wal. Restarting the daemon alone is not enough while another process holds the old index. Never \
             remove the -wal or -shm of a database in use",
            db = db.display(),
            dir = dir.path().display(),
        )
    );
    // A reader that opened the file since (a report, a browser) keeps the new index: named among those to stop
    // (the remedy said only "every process reading the file").
    let mut reader = store_core::testing::KillOnDrop(spawn_child("child_entry", "keep-index", &db));
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(60));
    after_the_confirm_interval();
    let err = insert_item(&mut owner, "again").unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::SharedMemoryReplaced,
        "and on every later write: {err}"
    );
    assert_names_to_stop(&err, &reader.0);
    store_core::testing::kill9(&mut reader.0);
    drop(owner);
    let mut owner = OwnerConnection::open(&db, &ITEMS).expect("everyone stopped: a new open builds the index");
    insert_item(&mut owner, "after everyone started again").unwrap();
    assert_eq!(item_names(&db), ["before", "after everyone started again"]);
}

#[test]
fn a_pooled_reader_of_a_removed_wal_is_replaced_and_reads_what_the_owner_writes_next() {
    let (_dir, _lock, db, mut owner) = new_owner();
    insert_item(&mut owner, "before").unwrap();
    let pool = store_core::ReadPool::new(&db, &ITEMS);
    let count = || pool.read(|c| c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0)));
    assert_eq!(count().unwrap(), 1);
    fs::remove_file(store_core::files::with_suffix(&db, "-wal")).unwrap();
    after_the_confirm_interval();

    for n in 0..10 {
        insert_item(&mut owner, &format!("after {n}")).unwrap();
    }
    // Before: the pooled connection read the owner's new commits from the -wal it had open, emptied by
    // then ("disk I/O error", SQLITE_IOERR_SHORT_READ).
    assert_eq!(count().unwrap(), 11);
    assert!(
        store_core::files::with_suffix(&db, "-wal").exists(),
        "the owner writes into a -wal at the path"
    );
}

#[test]
fn a_reader_opening_between_a_wals_removal_and_the_owners_next_check_is_told_to_retry_and_then_reads() {
    let (_dir, _lock, db, mut owner) = new_owner();
    insert_item(&mut owner, "before").unwrap();
    fs::remove_file(store_core::files::with_suffix(&db, "-wal")).unwrap();
    // A new reader makes an empty -wal where the index says the owner's commits are.
    let pool = store_core::ReadPool::new(&db, &ITEMS);
    let count = || pool.read(|c| c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0)));
    let err = count().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadFailed, "{err}");
    assert!(err.is_retryable());
    // Before: "the operating system refused a write ... check free space, quotas and file-size limits".
    assert_eq!(
        err.to_string(),
        format!(
            "{}: a read failed (disk I/O error (extended code 522)). What to do: retry: the file or its -wal was \
             shorter than SQLite expected (a -wal removed by hand while the file was in use, which its owner takes \
             back at its next write) or the disk failed to read it; if it persists, check the disk and run the \
             application's doctor command",
            db.display()
        )
    );
    after_the_confirm_interval();
    owner.confirm_files().unwrap();
    assert_eq!(count().unwrap(), 1);
}

/// The remedy names the process that keeps the old index (it said only "every process reading the file",
/// leaving the operator to find which).
#[test]
fn an_owner_opened_over_an_index_listing_commits_of_a_removed_wal_says_to_restart_everyone() {
    let (_dir, _lock, db, owner) = new_owner();
    drop(owner);
    // A reader of another process that keeps the WAL's index while the owner writes, stops, and its -wal is
    // removed.
    let mut holder = store_core::testing::KillOnDrop(spawn_child("child_entry", "keep-index", &db));
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(60));
    let mut owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    insert_item(&mut owner, "only in the -wal").unwrap();
    // Its close cannot copy the commit back past the reader's snapshot: the commit stays in the -wal.
    drop(owner);
    fs::write(store_core::files::with_suffix(&db, ".end-read"), b"").unwrap();
    wait_for_file(
        &store_core::files::with_suffix(&db, ".read-ended"),
        Duration::from_secs(60),
    );
    fs::remove_file(store_core::files::with_suffix(&db, "-wal")).unwrap();

    // Before: the open's first read, or a later one, failed "retry" (read_failed), and so did every restart.
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WalIndexStale, "{err}");
    assert!(!err.kind().is_retryable(), "restarting the owner alone meets it again");
    assert_names_to_stop(&err, &holder.0);
    store_core::testing::kill9(&mut holder.0);
    let mut owner = OwnerConnection::open(&db, &ITEMS).expect("no process keeps the old index: it is built again");
    insert_item(&mut owner, "after everyone started again").unwrap();
    assert_eq!(item_names(&db), ["after everyone started again"]);
}

#[test]
fn an_owner_whose_lock_file_was_replaced_writes_nothing_more_and_says_who_holds_the_new_one() {
    let (_dir, lock, db, mut first) = new_owner();
    insert_item(&mut first, "before").unwrap();
    // A "stale lock" cleanup, then a second owner: it creates and locks a new lock file.
    fs::remove_file(&lock).unwrap();
    let mut second = OwnerConnection::open(&db, &ITEMS).expect("nothing can tell it the first owner is there");
    after_the_confirm_interval();

    let err = insert_item(&mut first, "by the first owner").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OwnershipLost, "{err}");
    assert!(err.kind().is_retryable(), "opening the owner again is what helps");
    assert_eq!(err.path(), db);
    assert_eq!(err.locked_by().map(|h| h.pid), Some(std::process::id()));
    assert_eq!(
        err.to_string(),
        format!(
            "{db} is no longer this process's to write: its lock file {lock} was removed or replaced while this \
             process owned it, so another owner may have written (pid {pid} (this process) since {since} holds the \
             file now in its place). What to do: this handle writes nothing more (what it committed before is in \
             the file): open the owner again, or restart the process (splitstore's daemon and server exit 75 for \
             it, which a supervisor restarts); the new open takes the lock once no other owner holds it. Never \
             remove or replace a lock file: the kernel releases it when its holder exits, even after kill -9",
            db = db.display(),
            lock = lock.display(),
            pid = std::process::id(),
            since = err.locked_by().unwrap().since.as_deref().unwrap(),
        )
    );
    // The second owner started on the file and writes: nothing for doctor or a banner to say.
    assert_eq!(store_core::records::last_failure(&db), None);
    insert_item(&mut second, "by the second owner").unwrap();
    drop(second);
    let err = insert_item(&mut first, "once the second owner is gone").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OwnershipLost, "lost stays lost: {err}");
    assert!(
        err.to_string().contains("(no process holds the file now in its place)"),
        "{err}"
    );
    // Now no owner writes the file: recorded for other processes, as the first owner said it, until an owner
    // starts again.
    let record = store_core::records::last_failure(&db).expect("what stopped the owner is recorded");
    assert!(record.while_running);
    assert_eq!(record.banner, err.banner());

    assert_eq!(item_names(&db), ["before", "by the second owner"]);
    drop(first);
    OwnerConnection::open(&db, &ITEMS).expect("a new open takes the lock file in place");
    assert_eq!(store_core::records::last_failure(&db), None, "an owner started again");
}

#[test]
fn second_owner_in_another_process_is_refused_and_a_kill_frees_the_lock_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut child = spawn_child("child_entry", "own", &db);
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(30));

    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    match &err {
        Error::Locked { holder: Some(h), .. } => assert_eq!(h.pid, child.id()),
        other => panic!("expected Locked with the child's pid, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("pid {}", child.id())), "{err}");
    match OwnerLock::probe(&db).unwrap() {
        LockState::Held { holder: Some(h) } => assert_eq!(h.pid, child.id()),
        other => panic!("probe should see the child holding the lock, got {other:?}"),
    }

    kill9(&mut child);
    let start = std::time::Instant::now();
    let owner = OwnerConnection::open(&db, &ITEMS).expect("the OS released the lock of the killed owner");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    assert_eq!(owner.schema_version().unwrap(), 3);
}

#[test]
fn lock_and_database_files_are_private_and_the_lock_names_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let db = data.join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    owner
        .conn()
        .execute("INSERT INTO items (name) VALUES ('x')", [])
        .unwrap();
    let lock = OwnerLock::path_for(&db);
    assert_eq!(mode(&lock), 0o600);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&store_core::files::with_suffix(&db, "-wal")), 0o600);
    assert_eq!(mode(&store_core::files::with_suffix(&db, "-shm")), 0o600);
    assert_eq!(mode(&data), 0o700);
    let text = fs::read_to_string(&lock).unwrap();
    assert!(text.starts_with(&format!("pid={}\n", std::process::id())), "{text}");
    match OwnerLock::probe(&db).unwrap() {
        LockState::Held { holder: Some(h) } => assert_eq!(h.pid, std::process::id()),
        other => panic!("{other:?}"),
    }
    drop(owner);
    assert_eq!(OwnerLock::probe(&db).unwrap(), LockState::Free);
}

#[test]
fn a_lock_file_created_wide_open_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let lock = OwnerLock::path_for(&db);
    fs::write(&lock, "stale").unwrap();
    fs::set_permissions(&lock, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let _owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(mode(&lock), 0o600);
}

#[test]
fn probe_never_makes_an_owner_fail() {
    // Probing holds a shared lock for an instant; an owner starting at that instant must still get in.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                OwnerLock::probe(&db).unwrap();
            }
        })
    };
    for _ in 0..50 {
        drop(OwnerLock::acquire(&db).expect("a probe must not refuse an owner"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    prober.join().unwrap();
}

#[test]
fn a_probe_stalled_while_it_holds_the_lock_delays_an_owner_but_never_refuses_it() {
    // A probing thread descheduled between taking and dropping its shared lock (a busy machine) holds the
    // lock far longer than the instant a probe takes, and longer than an owner's grace for another owner.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(OwnerLock::acquire(&db).unwrap());
    let stalled_probe = fs::File::open(OwnerLock::path_for(&db)).unwrap();
    fs2::FileExt::lock_shared(&stalled_probe).unwrap();
    let wakes_up = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        fs2::FileExt::unlock(&stalled_probe).unwrap();
    });
    let owner = OwnerLock::acquire(&db).expect("a probe must not refuse an owner");
    wakes_up.join().unwrap();
    drop(owner);
}

#[test]
fn posture_is_set_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    let c = owner.conn();
    let get = |p: &str| {
        c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
    };
    use rusqlite::types::Value::*;
    assert_eq!(get("journal_mode"), Text("wal".into()));
    assert_eq!(get("synchronous"), Integer(1));
    assert_eq!(get("foreign_keys"), Integer(1));
    assert_eq!(get("busy_timeout"), Integer(5000));
    assert_eq!(get("journal_size_limit"), Integer(16 * 1024 * 1024));
    assert_eq!(get("auto_vacuum"), Integer(2));
    assert_eq!(get("application_id"), Integer(ITEMS_APPLICATION_ID as i64));
    assert_eq!(get("user_version"), Integer(3));
    assert!(owner.open_report().created);
}

#[test]
fn a_zero_byte_file_is_an_empty_database_and_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fs::write(&db, b"").unwrap();
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    assert_eq!(owner.schema_version().unwrap(), 3);
    assert!(owner.open_report().created);
}

fn open_err(db: &std::path::Path) -> Error {
    OwnerConnection::open(db, &ITEMS).expect_err("open must refuse this file")
}

#[test]
fn garbage_bytes_are_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    fs::write(&db, &garbage).unwrap();
    let err = open_err(&db);
    assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
    assert_eq!(err.path(), db);
    assert_eq!(fs::read(&db).unwrap(), garbage, "a refused file keeps its bytes");
}

#[test]
fn a_truncated_database_is_corrupt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        for i in 0..2000 {
            owner
                .conn()
                .execute(
                    "INSERT INTO items (name) VALUES (?1)",
                    [format!("item {i} {}", "x".repeat(100))],
                )
                .unwrap();
        }
    }
    let len = fs::metadata(&db).unwrap().len();
    assert!(len > 8 * 4096, "the file is several pages");
    fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = open_err(&db);
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.remedy().contains("splitstore repair"), "{}", err.remedy());
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT); PRAGMA user_version = 7;")
            .unwrap();
    }
    let before = fs::read(&db).unwrap();
    let err = open_err(&db);
    assert_eq!(err.kind(), ErrorKind::WrongDatabase, "{err}");
    assert!(err.what().contains("another application"), "{err}");
    assert_eq!(fs::read(&db).unwrap(), before);

    let foreign_id = dir.path().join("foreign.db");
    Connection::open(&foreign_id)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234; CREATE TABLE t(x);")
        .unwrap();
    let err = OwnerConnection::open(&foreign_id, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDatabase);
    assert!(err.what().contains("0x000004d2"), "{err}");
}

#[test]
fn config_db_opened_as_activity_db_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.db");
    drop(OwnerConnection::open(&config, &OTHER).unwrap());
    let before = fs::read(&config).unwrap();
    let err = OwnerConnection::open(&config, &ITEMS).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDatabase);
    assert_eq!(
        err.what(),
        format!(
            "{} is not activity.db: its application_id is 0x4f544852 \"OTHR\" where activity.db has 0x4954454d \
             \"ITEM\": it is another kind of database, or another application's",
            config.display()
        )
    );
    assert_eq!(fs::read(&config).unwrap(), before);
}

#[test]
fn a_legacy_combined_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE projects (id INTEGER PRIMARY KEY); PRAGMA user_version = 3;")
        .unwrap();
    let err = open_err(&db);
    assert_eq!(err.kind(), ErrorKind::WrongDatabase);
    assert!(err.what().contains("looks like the legacy database"), "{err}");
    assert!(err.what().contains("migrate-split"), "{err}");
}

#[test]
fn a_read_only_file_system_path_gives_a_typed_error_not_a_panic() {
    // /proc is read-only for everyone, root included.
    let err = OwnerConnection::open(std::path::Path::new("/proc/splitstore-test/activity.db"), &ITEMS).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::ReadOnlyDirectory),
        "{err:?}"
    );
    assert!(err.to_string().contains("/proc/splitstore-test"), "{err}");
}

#[test]
fn errors_serialise_as_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut f = fs::File::create(&db).unwrap();
    f.write_all(&[0x42; 4096]).unwrap();
    let err = open_err(&db);
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["kind"], "not_a_database");
    assert_eq!(json["retryable"], false, "retrying the same file fails the same way");
    assert_eq!(json["path"], db.display().to_string());
    assert!(json["message"].as_str().unwrap().contains("is not a SQLite database"));
    assert!(json["remedy"].as_str().unwrap().contains("splitstore repair"));
}

/// Writing beside a file of another user is refused (what a writer creates there is its own, mode 0600,
/// closed to that user's processes), naming the file; a missing path counts for nothing, so a new
/// directory starts whoever runs the owner. Checked as "this user + 1", whatever user runs the tests.
#[test]
fn a_file_of_another_user_is_refused_to_writers() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fs::write(&db, b"").unwrap();
    let missing = dir.path().join("activity.db.lock");
    let owner = fs::metadata(&db).unwrap().uid();
    assert!(store_core::files::check_owned_by(&[&missing, &db], owner).is_ok());
    assert!(store_core::files::check_owned_by(&[&missing], owner + 1).is_ok());
    let err = store_core::files::check_owned_by(&[&missing, &db], owner + 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AnotherUsersFiles);
    assert_eq!(
        err.to_string(),
        format!(
            "{} belongs to user {owner} and this command runs as user {user}: the files it would write beside it \
             would belong to user {user}, and the processes of user {owner} that use it could not open them. What \
             to do: run the command as user {owner} (`sudo -u '#{owner}' COMMAND` as root); nothing was changed",
            db.display(),
            user = owner + 1
        )
    );
}

/// The `-wal` a crash left is paired with the file its owner had open, not with the name: refused beside a
/// file put in that one's place (its private folder put back from a copy too) or beside none, opened beside
/// its own file or with a copy of both.
#[test]
fn a_wal_left_by_a_crash_is_refused_beside_another_file_and_not_beside_its_own_or_a_copy_of_both() {
    use store_core::files::{FileStamp, with_suffix};
    use store_core::records::{WalPairRecord, orphan_wal, wal_pair_path};
    let cp_a = |from: &std::path::Path, to: &std::path::Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("items.db");
    let wal = with_suffix(&db, "-wal");
    let private = dir.path().join(".private");
    // A clean run of an earlier version first, and a copy of the private folder as it was then (the user's
    // own copy).
    let earlier_wal = {
        let options = store_core::OpenOptions {
            target_version: Some(1),
            ..Default::default()
        };
        let _owner = OwnerConnection::open_with(&db, &ITEMS, &options).unwrap();
        FileStamp::at(&wal).unwrap()
    };
    assert!(!wal.exists(), "a clean close removes the -wal");
    let private_then = dir.path().join("private-then");
    cp_a(&private, &private_then);
    let mut child = spawn_child("child_entry", "own", &db);
    wait_for_file(&with_suffix(&db, ".ready"), Duration::from_secs(30));
    kill9(&mut child);
    assert!(
        fs::metadata(&wal).unwrap().len() > 32,
        "the killed owner's migrations are in the -wal"
    );
    let record_path = wal_pair_path(&db, &FileStamp::at(&wal).unwrap());
    let record: WalPairRecord = serde_json::from_str(&fs::read_to_string(&record_path).unwrap()).unwrap();
    assert_eq!(record.db, FileStamp::at(&db).unwrap());
    assert_eq!(mode(&record_path), 0o600);
    assert!(
        !wal_pair_path(&db, &earlier_wal).exists(),
        "the record of the earlier -wal is gone"
    );
    assert!(orphan_wal(&db, &ITEMS).is_none(), "its own file");

    // Both copied (new files at both paths): the same pair.
    let copy = dir.path().join("copy");
    fs::create_dir(&copy).unwrap();
    for name in ["items.db", "items.db-wal", ".private"] {
        cp_a(&dir.path().join(name), &copy);
    }
    assert!(orphan_wal(&copy.join("items.db"), &ITEMS).is_none(), "a copy of both");

    // Another file put in the file's place, and the private folder put back from the earlier copy over the
    // one there (its files replaced, none removed): refused by the owner and by readers, before SQLite reads.
    let put_back = dir.path().join("put-back");
    fs::copy(&db, &put_back).unwrap();
    fs::rename(&put_back, &db).unwrap();
    cp_a(&private_then.join("."), &private);
    assert!(
        !wal_pair_path(&db, &earlier_wal).exists(),
        "the clean stop forgot the record of the -wal it emptied"
    );
    let before = (fs::read(&db).unwrap(), fs::read(&wal).unwrap());
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert!(matches!(err, Error::OrphanWal { removed: false, .. }), "{err:?}");
    let err = store_core::read_pool::open_read_only(&db, &ITEMS, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OrphanWal, "{err}");
    assert_eq!(
        store_core::ReadPool::new(&db, &ITEMS).check().unwrap_err().kind(),
        ErrorKind::OrphanWal
    );
    assert_eq!(
        (fs::read(&db).unwrap(), fs::read(&wal).unwrap()),
        before,
        "nothing written"
    );

    // A file given the recorded file's inode number but created at another time is another file (numbers
    // are given again once a file is removed); the one recorded is its own.
    let now = FileStamp::at(&db).unwrap();
    if let Some(born) = now.born_ns {
        for (db_born, orphan) in [(born + 1, true), (born, false)] {
            let recorded = FileStamp {
                born_ns: Some(db_born),
                ..now
            };
            fs::write(
                &record_path,
                serde_json::to_vec(&WalPairRecord {
                    db: recorded,
                    forgotten_at_clean_stop: true,
                })
                .unwrap(),
            )
            .unwrap();
            assert_eq!(
                orphan_wal(&db, &ITEMS).is_some(),
                orphan,
                "recorded as born at {db_born}"
            );
        }
    }
    // A -wal with no record (one born at another time than the recorded one, say) is not told.
    fs::remove_file(&record_path).unwrap();
    assert!(orphan_wal(&db, &ITEMS).is_none(), "no record of this -wal");

    // The file removed: refused whatever the records say, before SQLite creates it anew and deletes the -wal,
    // and by readers, rather than said missing.
    fs::remove_file(&db).unwrap();
    let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
    assert!(matches!(err, Error::OrphanWal { removed: true, .. }), "{err:?}");
    assert!(!db.exists(), "not created");
    let err = store_core::read_pool::open_read_only(&db, &ITEMS, None).unwrap_err();
    assert!(matches!(err, Error::OrphanWal { removed: true, .. }), "{err:?}");
    assert_eq!(
        store_core::ReadPool::new(&db, &ITEMS).check().unwrap_err().kind(),
        ErrorKind::OrphanWal
    );
    assert_eq!(fs::read(&wal).unwrap(), before.1, "the -wal is kept");
}

/// A file moved over a running owner's file (or the file removed) is the owner's `ownership_lost`, for a
/// reader of the same process too: the server's reports read config.db beside its owner, and used to meet
/// the owner's `-wal` beside the new file first and call it one a crash left (`orphan_wal`, which a
/// supervisor does not restart) when the owner's next write would have said `ownership_lost` (restarted).
#[test]
fn a_file_replaced_under_a_running_owner_is_ownership_lost_for_readers_of_its_process_too() {
    use store_core::files::with_suffix;
    use store_core::read_pool::open_read_only;
    for removed in [false, true] {
        let (dir, _lock, db, mut owner) = new_owner();
        insert_item(&mut owner, "before the copy").unwrap();
        let copy = dir.path().join("copy.db");
        fs::copy(&db, &copy).unwrap();
        insert_item(&mut owner, "after the copy").unwrap();
        assert!(fs::metadata(with_suffix(&db, "-wal")).unwrap().len() > 32);
        if removed {
            fs::remove_file(&db).unwrap();
        } else {
            fs::rename(&copy, &db).unwrap();
        }
        let said = |e: Error| {
            assert!(
                matches!(&e, Error::DatabaseReplaced { path, .. } if *path == db),
                "{e:?}"
            );
            assert_eq!(e.kind(), ErrorKind::OwnershipLost);
            e.to_string()
        };
        let by_pool = said(store_core::ReadPool::new(&db, &ITEMS).check().unwrap_err());
        let by_read_only = said(open_read_only(&db, &ITEMS, None).unwrap_err());
        after_the_confirm_interval();
        let by_owner = said(insert_item(&mut owner, "refused").unwrap_err());
        assert_eq!(
            (&by_pool, &by_read_only),
            (&by_owner, &by_owner),
            "said as the owner says it"
        );
        assert!(
            by_owner.contains("was replaced or removed while this process owned it"),
            "{by_owner}"
        );
        drop(owner);
        // The owner gone, the file is no longer this process's: readers look at it as any other.
        if let Err(e) = open_read_only(&db, &ITEMS, None) {
            assert_ne!(e.kind(), ErrorKind::OwnershipLost, "{e}");
        }
    }
}
