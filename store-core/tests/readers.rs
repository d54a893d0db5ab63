//! Read-only pools: typed errors for every way a file can be unreadable, no writes, no start-up wait.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use store_core::testing::open_at_version;
use store_core::{ErrorKind, OwnerConnection, ReadPool};

#[test]
fn child_entry() {
    let Some((what, path)) = child_role() else { return };
    match what.as_str() {
        // Commit rows, signal, and wait to be killed with the WAL still holding them.
        "write-and-hang" => {
            let owner = OwnerConnection::open(&path, &ITEMS).unwrap();
            for i in 0..100 {
                owner
                    .conn()
                    .execute("INSERT INTO items (name) VALUES (?1)", [format!("row {i}")])
                    .unwrap();
            }
            fs::write(store_core::files::with_suffix(&path, ".ready"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
        }
        // Read as a build one or two schema versions behind (the file's reader of an older release).
        "read-as-v1" | "read-as-v2" => {
            let schema = if what == "read-as-v1" { &ITEMS_V1 } else { &ITEMS_V2 };
            let outcome = ReadPool::new(&path, schema)
                .read(|c| c.query_row("SELECT count(name) FROM items", [], |r| r.get::<_, i64>(0)))
                .map(|n| format!("rows={n}"))
                .unwrap_or_else(|e| format!("{:?}", e.kind()));
            fs::write(store_core::files::with_suffix(&path, &format!(".{what}")), outcome).unwrap();
        }
        // Read as an unprivileged user, print the error kind.
        "read-as-nobody" => {
            let pool = ReadPool::new(&path, &ITEMS);
            let outcome = pool.read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)));
            let kind = outcome
                .map(|n| format!("rows={n}"))
                .unwrap_or_else(|e| format!("{:?}|{e}", e.kind()));
            fs::write(store_core::files::with_suffix(&path, ".outcome"), kind).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// `ITEMS` as a build that knows only its first migration (or first two) would declare it.
static ITEMS_V1: store_core::Schema = store_core::Schema {
    migrations: MIGRATIONS.split_at(1).0,
    ..ITEMS_KIND
};
static ITEMS_V2: store_core::Schema = store_core::Schema {
    migrations: MIGRATIONS.split_at(2).0,
    ..ITEMS_KIND
};

/// Runs the read of an older build in a child process and returns what it saw.
fn read_in_child_as(role: &str, db: &std::path::Path) -> String {
    let mut child = spawn_child("child_entry", role, db);
    let status = child.wait().unwrap();
    assert!(status.success(), "{role}: {status}");
    fs::read_to_string(store_core::files::with_suffix(db, &format!(".{role}"))).unwrap()
}

#[test]
fn a_reader_one_version_behind_reads_an_additive_migration_and_refuses_a_breaking_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let owner = open_at_version(&db, &ITEMS, 1).unwrap();
        owner
            .conn()
            .execute_batch("INSERT INTO items (name) VALUES ('a'), ('b')")
            .unwrap();
    }
    // Version 2 adds a column (additive): a v1 reader, in its own process, still reads the file.
    drop(open_at_version(&db, &ITEMS, 2).unwrap());
    assert_eq!(read_in_child_as("read-as-v1", &db), "rows=2");
    let in_process = ReadPool::new(&db, &ITEMS_V1)
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)))
        .unwrap();
    assert_eq!(in_process, 2);

    // Version 3 rebuilds the table (breaking): v1 and v2 readers are refused with the typed error.
    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    assert_eq!(read_in_child_as("read-as-v1", &db), "SchemaNewer");
    assert_eq!(read_in_child_as("read-as-v2", &db), "SchemaNewer");
    // Owners never accept a newer file.
    let err = OwnerConnection::open(&db, &ITEMS_V2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaNewer, "{err}");
}

#[test]
fn a_missing_file_is_a_typed_error_at_once_and_is_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let start = Instant::now();
    let pool = ReadPool::new(&db, &ITEMS);
    let err = pool
        .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .unwrap_err();
    // The wait this guards against is r2d2's connection timeout (10 s) or build() waiting for connections
    // (30 s); the read itself takes microseconds. 5 s stays below both and holds on a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "no waiting on a missing file: {:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Missing);
    assert_eq!(
        err.to_string(),
        format!(
            "{} does not exist: the daemon has not created it yet. What to do: start the daemon (`splitstore daemon \
             --data-dir {}`): it creates the file; or check that {} is the right data directory",
            db.display(),
            dir.path().display(),
            dir.path().display()
        )
    );
    assert!(!db.exists(), "a reader never creates the database");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nor anything beside it");
}

#[test]
fn readers_see_the_owners_commits_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    let pool = ReadPool::new(&db, &ITEMS);
    let before = pool.change_token().unwrap();
    owner
        .conn()
        .execute("INSERT INTO items (name) VALUES ('seen')", [])
        .unwrap();
    let n: i64 = pool
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 1);
    let after = pool.change_token().unwrap();
    assert_ne!(before, after, "a commit by the owner changes the token");
    assert_eq!(after, pool.change_token().unwrap(), "no commit, same token");

    let err = pool
        .read(|c| c.execute("INSERT INTO items (name) VALUES ('nope')", []))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sqlite, "{err:?}");
    assert!(
        err.to_string().contains("readonly") || err.to_string().contains("read-only"),
        "{err}"
    );
    let n: i64 = owner
        .conn()
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn readers_see_every_commit_after_the_owner_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut child = spawn_child("child_entry", "write-and-hang", &db);
    wait_for_file(&store_core::files::with_suffix(&db, ".ready"), Duration::from_secs(30));
    let pool = ReadPool::new(&db, &ITEMS);
    let live: i64 = pool
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(live, 100, "while the owner runs");
    kill9(&mut child);
    assert!(
        store_core::files::with_suffix(&db, "-wal").exists(),
        "the crash left the WAL behind"
    );
    let after: i64 = pool
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(after, 100, "after the crash, from the leftover WAL");
    let fresh = ReadPool::new(&db, &ITEMS);
    let n: i64 = fresh
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 100, "a new reader too");
}

#[test]
fn a_reader_meeting_an_older_schema_says_the_owner_has_not_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(open_at_version(&db, &ITEMS, 2).unwrap());
    let pool = ReadPool::new(&db, &ITEMS);
    let err = pool
        .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaBehind);
    assert_eq!(
        err.what(),
        format!(
            "{} is at schema 2, this build reads 3: the daemon has not upgraded it yet",
            db.display()
        )
    );
    // The owner upgrades; the same pool now reads.
    drop(OwnerConnection::open(&db, &ITEMS).unwrap());
    pool.read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)))
        .unwrap();
}

/// [`ITEMS`] whose readers read files from schema 2 on (their queries handle a file its owner's older build
/// keeps at 2).
static ITEMS_READ_FROM_2: store_core::Schema = store_core::Schema {
    readers_read_from: Some(2),
    ..ITEMS_KIND
};

#[test]
fn a_reader_reads_an_older_file_its_build_says_it_reads_and_is_told_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(open_at_version(&db, &ITEMS_READ_FROM_2, 2).unwrap());
    let pool = ReadPool::new(&db, &ITEMS_READ_FROM_2);
    pool.check().unwrap();
    let read = |pool: &ReadPool| {
        pool.read_versioned(|c, version| Ok((version, c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?)))
            .unwrap()
    };
    assert_eq!(read(&pool), (2, 0_i64));
    // The owner upgrades: the same pool reads the new version, and is told so.
    drop(OwnerConnection::open(&db, &ITEMS_READ_FROM_2).unwrap());
    assert_eq!(read(&pool), (3, 0));

    // Older than that is behind, and the error says which versions this build reads.
    let older = dir.path().join("older/activity.db");
    fs::create_dir(older.parent().unwrap()).unwrap();
    drop(open_at_version(&older, &ITEMS_READ_FROM_2, 1).unwrap());
    let err = ReadPool::new(&older, &ITEMS_READ_FROM_2).check().unwrap_err();
    assert_eq!(
        err.what(),
        format!(
            "{} is at schema 1, this build reads 2 to 3: the daemon has not upgraded it yet",
            older.display()
        )
    );
}

#[test]
fn a_reader_meeting_a_newer_schema_or_another_kind_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        // What a newer build with a breaking migration 4 leaves.
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        owner
            .conn()
            .execute_batch("PRAGMA user_version = 4; UPDATE reader_compatibility SET min_reader_version = 4")
            .unwrap();
    }
    let err = ReadPool::new(&db, &ITEMS).check().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaNewer);

    let config = dir.path().join("config.db");
    drop(OwnerConnection::open(&config, &OTHER).unwrap());
    let err = ReadPool::new(&config, &ITEMS).check().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDatabase);
}

#[test]
fn a_reader_of_garbage_or_an_uninitialised_file_gets_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    fs::write(&garbage, vec![0x5a; 10_000]).unwrap();
    assert_eq!(
        ReadPool::new(&garbage, &ITEMS).check().unwrap_err().kind(),
        ErrorKind::NotADatabase
    );

    let empty = dir.path().join("empty.db");
    fs::write(&empty, b"").unwrap();
    assert_eq!(
        ReadPool::new(&empty, &ITEMS).check().unwrap_err().kind(),
        ErrorKind::SchemaBehind
    );
}

#[test]
fn a_reader_in_a_directory_it_cannot_write_gets_read_only_directory() {
    // A reader must create -wal/-shm on first read. Run it as an unprivileged user (root ignores modes).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("activity.db");
    {
        let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
        owner
            .conn()
            .execute("INSERT INTO items (name) VALUES ('x')", [])
            .unwrap();
    }
    assert!(
        !store_core::files::with_suffix(&db, "-shm").exists(),
        "a clean close removes -wal/-shm"
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, format!("read-as-nobody:{}", db.display()))
        .stdout(std::process::Stdio::null());
    if is_root {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    // The child reports through a file that exists already: writing it needs no directory permission.
    let outcome_file = store_core::files::with_suffix(&db, ".outcome");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&outcome_file, b"").unwrap();
    fs::set_permissions(&outcome_file, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    let status = wait_within(&mut cmd.spawn().unwrap(), Duration::from_secs(60));
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(status.success(), "child failed: {status}");
    let outcome = fs::read_to_string(&outcome_file).unwrap();
    assert!(outcome.starts_with("ReadOnlyDirectory|"), "{outcome}");
    assert!(outcome.contains("-shm"), "{outcome}");
    assert!(!store_core::files::with_suffix(&db, "-wal").exists());
}

#[test]
fn an_owner_closed_while_its_readers_stay_open_leaves_every_commit_in_the_database_file() {
    // SQLite folds the WAL back only when the last connection closes; here readers outlive the owner.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let pool = ReadPool::new(&db, &ITEMS);
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    for i in 0..500 {
        owner
            .conn()
            .execute("INSERT INTO items (name) VALUES (?1)", [format!("row {i}")])
            .unwrap();
    }
    let n: i64 = pool
        .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 500);
    let wal = store_core::files::with_suffix(&db, "-wal");
    assert!(
        fs::metadata(&wal).unwrap().len() > 0,
        "the commits are in the WAL while the owner runs"
    );
    drop(owner);
    assert_eq!(
        fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "the owner's close folded the WAL back"
    );
    // Never open a database with std::fs while this process has a connection to it (howtocorrupt §2.2).
    drop(pool);
    // A copy of the database file alone (no -wal) has every row.
    let copy = dir.path().join("copy.db");
    fs::copy(&db, &copy).unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 500);
}

#[test]
fn a_reader_open_across_a_restore_reads_the_restored_file_and_its_change_token_moves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let backups = dir.path().join("backups");
    let mut owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    owner
        .write(|tx| tx.execute("INSERT INTO items (name) VALUES ('in the backup')", []))
        .unwrap();
    let backup = owner.backup_to(&backups, 5).unwrap();
    owner
        .write(|tx| tx.execute("INSERT INTO items (name) VALUES ('after it')", []))
        .unwrap();

    let pool = ReadPool::new(&db, &ITEMS);
    let count = || pool.read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)));
    assert_eq!(count().unwrap(), 2);
    let token = pool.change_token().unwrap();

    let lock = owner.into_lock();
    let verified = store_core::restore::verify_backup(&backup, &ITEMS, None).unwrap();
    let (_, lock) = store_core::restore::restore_from(lock, &ITEMS, &verified, "replaced", None).unwrap();
    drop(lock);

    assert_eq!(
        count().unwrap(),
        1,
        "the pool reads the file now at its path, not the one moved aside"
    );
    assert!(pool.changed_since(&token).unwrap().is_some(), "a restore is a change");
}

/// A pool made before its data directory, which is then made as a link to another disk (an app that builds
/// its readers first, an installer that links the folder): its readers follow the link as the owner does.
/// The pool resolved its file's folders once, when made, and every read after was "unable to open database
/// file" (`SQLITE_OPEN_NOFOLLOW` refuses a link anywhere in a path).
#[test]
fn a_pool_made_before_its_folder_reads_through_a_link_made_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/items.db");
    let pool = ReadPool::new(&db, &ITEMS);
    let count = || pool.read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)));
    assert_eq!(count().unwrap_err().kind(), ErrorKind::Missing);
    fs::create_dir(dir.path().join("disk")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("disk"), dir.path().join("data")).unwrap();
    let owner = OwnerConnection::open(&db, &ITEMS).unwrap();
    owner
        .conn()
        .execute("INSERT INTO items (name) VALUES ('through the link')", [])
        .unwrap();
    assert_eq!(count().unwrap(), 1);
    assert!(dir.path().join("disk/items.db").is_file());
}
