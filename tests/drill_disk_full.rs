//! Drill: the disk fills up under the real daemon and server. The child process gets a file-size limit
//! (`RLIMIT_FSIZE`) a little above its database's size, with `SIGXFSZ` ignored, so a write(2) that would grow
//! a file past it fails with `EFBIG` instead of killing the process (SQLite reports `SQLITE_IOERR_WRITE`, extended
//! code 778, which store_core maps to `WriteFailed`). Each process must stop with one clear error naming its file
//! and the remedy, exit 2, keep everything it acknowledged (integrity_check clean), and write again once the
//! limit is lifted. A file system out of inodes is a small tmpfs mounted for the test (root only).

mod support;

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use store_core::checkpoint::{CheckpointMode, checkpoint, wal_bytes};
use support::*;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Makes the process `cmd` starts unable to grow any file past `max_bytes` (pipes are not files: its
/// stdout and stderr still work).
fn with_file_size_limit(cmd: &mut Command, max_bytes: u64) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe functions
    // (signal, setrlimit). An ignored disposition survives exec, so the limit makes write(2) fail with EFBIG
    // instead of delivering SIGXFSZ (whose default action kills the process).
    unsafe {
        cmd.pre_exec(move || {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
            let limit = libc::rlimit {
                rlim_cur: max_bytes as libc::rlim_t,
                rlim_max: max_bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Lines of stdout starting with `prefix`, the rest of each parsed as an id.
fn ids(stdout: &str, prefix: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|id| id.parse().unwrap_or_else(|_| panic!("bad line {prefix}{id:?}")))
        .collect()
}

/// The failure a user sees: exit 75 (retrying helps once space is freed: a supervisor restarts it), one line
/// on stderr naming the file, what the OS refused and what to do.
#[track_caller]
fn assert_refused_write(out: &Output, command: &str, db: &Path) {
    let (_, stderr) = texts(out);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{command} must fail as retryable (75), not exit 0, 2 or crash: {out:?}"
    );
    assert!(!stderr.contains("panicked"), "{command} panicked: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("splitstore {command}: ")))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    let expected = format!(
        "splitstore {command}: {}: the operating system refused a write (disk I/O error (extended code 778)). What to \
         do: check free space, quotas and file-size limits (ulimit -f) for {}; committed data is intact and writes \
         succeed again once the cause is fixed",
        db.display(),
        db.parent().unwrap().display()
    );
    assert_eq!(lines[0], expected);
}

/// `splitstore daemon --print-acks` on `data` with files limited to `limit` bytes. Returns its output and
/// the acknowledged ids. `--seconds` bounds a daemon that would ignore the failure (it would then exit 0).
fn limited_daemon(data: &Path, limit: u64, extra: &[&str]) -> (Output, Vec<i64>) {
    let mut cmd = splitstore();
    cmd.args(["daemon", "--print-acks", "--seconds", "30", "--data-dir", utf8(data)])
        .args(extra);
    let out = output_within(with_file_size_limit(&mut cmd, limit), Duration::from_secs(60));
    let acks = ids(&texts(&out).0, "ack ");
    (out, acks)
}

/// Every acknowledged event is in activity.db and the file passes integrity_check; returns the events.
#[track_caller]
fn assert_acks_kept(db: &Path, acks: &[i64]) -> i64 {
    assert_integrity_ok(db);
    let conn = read_only(db);
    let mut stmt = conn.prepare("SELECT 1 FROM activity_events WHERE id = ?1").unwrap();
    for id in acks {
        assert!(stmt.exists([id]).unwrap(), "acknowledged event {id} is missing");
    }
    query_i64(&conn, "SELECT count(*) FROM activity_events")
}

/// With the limit lifted, the daemon records again and doctor finds both files healthy.
#[track_caller]
fn assert_writes_again(data: &Path, events_before: i64) {
    let db = data.join("activity.db");
    let out = run_splitstore(["daemon", "--events", "200", "--data-dir", utf8(data)]);
    assert!(out.status.success(), "without the limit the daemon runs: {out:?}");
    assert_eq!(summary_field(&texts(&out).0, "daemon: ", "events"), 200);
    assert_eq!(
        query_i64(&read_only(&db), "SELECT count(*) FROM activity_events"),
        events_before + 200
    );
    assert_integrity_ok(&db);
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(data)]);
    assert_eq!(doctor.status.code(), Some(0), "{}", texts(&doctor).0);
}

#[test]
fn the_daemon_stops_with_a_clear_error_when_activity_db_cannot_grow_and_keeps_every_acknowledged_event() {
    for mode in [&[][..], &["--batch", "100"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        seed_data_dir(&data, 3000);
        let db = data.join("activity.db");
        assert_eq!(wal_bytes(&db), 0, "a cleanly stopped daemon leaves no WAL");
        let before = query_i64(&read_only(&db), "SELECT count(*) FROM activity_events");
        // Just above the file: the WAL reaches the limit within a few hundred events.
        let limit = size(&db) + 256 * KIB;

        let (out, acks) = limited_daemon(&data, limit, mode);
        assert_refused_write(&out, "daemon", &db);
        assert!(
            !acks.is_empty(),
            "{mode:?}: the daemon wrote before the limit stopped it"
        );
        assert_eq!(
            summary_field(&texts(&out).0, "daemon: ", "events"),
            acks.len() as u64,
            "{mode:?}: the summary counts exactly the acknowledged events"
        );
        let after = assert_acks_kept(&db, &acks);
        assert!(after >= before + acks.len() as i64, "{mode:?}");
        eprintln!(
            "drill_disk_full: daemon {mode:?}: {} events acknowledged before the limit",
            acks.len()
        );
        assert_writes_again(&data, after);
    }
}

#[test]
fn a_checkpoint_that_cannot_grow_activity_db_keeps_the_committed_events_in_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 3000);
    let db = data.join("activity.db");
    // Above the autocheckpoint size (1000 pages, 4 MiB): checkpoints copy the WAL into activity.db until the
    // database file itself meets the limit; the WAL can then no longer restart and meets it too.
    let limit = size(&db) + 6 * MIB;

    let (out, acks) = limited_daemon(&data, limit, &["--batch", "1000"]);
    assert_refused_write(&out, "daemon", &db);
    assert!(
        size(&db) > limit - 4 * KIB,
        "the database file reached the limit ({} of {limit} bytes)",
        size(&db)
    );
    assert!(wal_bytes(&db) > 0, "committed events wait in the WAL");
    let after = assert_acks_kept(&db, &acks);
    assert!(acks.len() > 10_000, "{} events acknowledged", acks.len());
    eprintln!(
        "drill_disk_full: checkpoint at the limit: {} events acknowledged",
        acks.len()
    );
    assert_writes_again(&data, after);
    assert_eq!(
        wal_bytes(&db),
        0,
        "the next owner checkpointed the WAL into activity.db and removed it"
    );
}

/// A reader holding an old snapshot (a database browser left open) pins activity.db's WAL, which grows until
/// the disk is full. The daemon stopped with the full disk's remedy alone, to free space, which the WAL fills
/// again while the reader holds on; it now also says that a reader pins the WAL, which process it is, and to
/// close it.
#[test]
fn a_disk_filled_by_a_wal_a_reader_pins_is_said_with_that_reader() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 3000);
    let db = data.join("activity.db");
    let reader = read_only(&db);
    reader.execute_batch("BEGIN").unwrap();
    let seen = query_i64(&reader, "SELECT count(*) FROM activity_events");
    // Past the writer's soft limit (16 MiB), where its checkpoint finds the reader in the way.
    let limit = size(&db) + 40 * MIB;

    let (out, acks) = limited_daemon(&data, limit, &["--batch", "1000"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    let said = format!("splitstore daemon: the WAL of {} had grown to ", db.display());
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&said))
        .unwrap_or_else(|| panic!("{stderr}"));
    // The reader is this test's process: named, by pid and program, as a database browser would be.
    let reader_named = format!(
        "pid {}, running `{}`",
        std::process::id(),
        store_core::process::command_of(std::process::id()).unwrap()
    );
    assert!(
        line.ends_with(&format!(
            " bytes because a reader holds an old snapshot (a read transaction left open by {reader_named}): close \
             that reader, or the WAL fills the disk again once space is freed"
        )),
        "{line}"
    );
    assert!(wal_bytes(&db) > 16 * MIB, "{}", wal_bytes(&db));
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(
        query_i64(&reader, "SELECT count(*) FROM activity_events") - seen,
        acks.len() as i64
    );
    drop(reader);
    let after = assert_acks_kept(&db, &acks);
    assert_writes_again(&data, after);
}

#[test]
fn the_server_stops_with_a_clear_error_when_config_db_cannot_grow_and_keeps_every_committed_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 500);
    let db = data.join("config.db");
    let secret = "token-5f1c0de-never-printed";
    {
        let mut store = config_store::ConfigStore::open_in(&data).unwrap();
        store.set_secret_setting("sync.api_token", secret).unwrap();
        // As after a clean stop with nothing left to checkpoint: the limit is then the only thing in the way.
        checkpoint(store.owner().conn(), CheckpointMode::Truncate).unwrap();
    }
    assert_eq!(wal_bytes(&db), 0);
    let projects_before: BTreeSet<i64> = project_ids(&db);
    let limit = size(&db) + 256 * KIB;

    let mut cmd = splitstore();
    cmd.args([
        "server",
        "--print-changes",
        "--seconds",
        "30",
        "--data-dir",
        utf8(&data),
    ]);
    let out = output_within(with_file_size_limit(&mut cmd, limit), Duration::from_secs(60));
    assert_refused_write(&out, "server", &db);
    let (stdout, stderr) = texts(&out);
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    let created = ids(&stdout, "created ");
    let deleted = ids(&stdout, "deleted ");
    assert!(!created.is_empty(), "the server wrote before the limit stopped it");
    assert_eq!(
        summary_field(&stdout, "server: ", "projects_created"),
        created.len() as u64
    );

    assert_integrity_ok(&db);
    let now = project_ids(&db);
    for id in &created {
        assert_eq!(
            now.contains(id),
            !deleted.contains(id),
            "project {id}: created, deleted = {}",
            deleted.contains(id)
        );
    }
    assert!(
        projects_before.iter().all(|id| now.contains(id)),
        "the server deletes only its own projects"
    );
    let reader = config_store::ConfigReader::open(&db);
    assert_eq!(
        reader.setting::<String>("sync.api_token").unwrap().as_deref(),
        Some(secret)
    );
    drop(reader);
    eprintln!(
        "drill_disk_full: server: {} projects created before the limit",
        created.len()
    );

    let again = run_splitstore(["server", "--seconds", "0.3", "--data-dir", utf8(&data)]);
    assert!(again.status.success(), "without the limit the server runs: {again:?}");
    assert!(summary_field(&texts(&again).0, "server: ", "projects_created") > 0);
    assert_integrity_ok(&db);
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(&data)]);
    assert_eq!(doctor.status.code(), Some(0), "{}", texts(&doctor).0);
}

fn project_ids(db: &Path) -> BTreeSet<i64> {
    read_only(db)
        .prepare("SELECT id FROM projects")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A backup whose copy cannot grow (a full backup drive): the error names the copy being written in the
/// backup folder and says to check that folder's disk, not the database's (which it named before, sending
/// the user to a disk with room to spare); no partial copy is left, and the database is unchanged. config.db,
/// small enough for the limit, is backed up all the same (its backup is the only file there).
#[test]
fn a_backup_that_cannot_write_its_copy_names_the_backup_folder_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 20_000);
    let db = data.join("activity.db");
    let before = std::fs::read(&db).unwrap();
    let to = dir.path().join("drive");
    let mut cmd = splitstore();
    cmd.args(["backup", "--data-dir", utf8(&data), "--to", utf8(&to)]);
    let out = output_within(with_file_size_limit(&mut cmd, size(&db) / 2), Duration::from_secs(60));

    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    let partial = format!("splitstore backup: {}/.activity-", to.display());
    let remedy = format!(
        ": the operating system refused a write (disk I/O error (extended code 778)). What to do: check free \
         space, quotas and file-size limits (ulimit -f) for {}; committed data is intact and writes succeed again \
         once the cause is fixed",
        to.display()
    );
    assert!(
        stderr.starts_with(&partial) && stderr.trim_end().ends_with(&remedy),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != store_core::FolderLock::path_for(&to))
        .collect();
    let [config] = &left[..] else {
        panic!("no partial copy is left: {left:?}")
    };
    assert!(
        config.file_name().unwrap().to_string_lossy().starts_with("config-"),
        "{left:?}"
    );
    assert_eq!(texts(&out).0, format!("backup: {}\n", config.display()));
    assert_eq!(std::fs::read(&db).unwrap(), before, "the database is unchanged");
}

/// A restore whose copy beside the database cannot grow: the failed write is said as one, with the free
/// space remedy for the data directory (before: "could not write ...: File too large", and the remedy "check
/// that the path exists"); the copy is removed and nothing moved.
#[test]
fn a_restore_that_cannot_write_its_copy_says_to_free_space_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 20_000);
    assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
    let db = data.join("activity.db");
    let before = std::fs::read(&db).unwrap();
    let mut cmd = splitstore();
    cmd.args([
        "restore",
        "--data-dir",
        utf8(&data),
        "--from",
        utf8(&data.join("backups")),
    ]);
    let out = output_within(with_file_size_limit(&mut cmd, size(&db) / 2), Duration::from_secs(60));

    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1.trim_end(),
        format!(
            "splitstore restore: {}.restoring: the operating system refused a write (could not write it: File too \
             large (os error 27)). What to do: check free space, quotas and file-size limits (ulimit -f) for {}; \
             committed data is intact and writes succeed again once the cause is fixed",
            db.display(),
            data.display()
        )
    );
    assert!(!data.join("activity.db.restoring").exists(), "the copy is removed");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing moved");
}

/// Doctor while the daemon runs checks a copy of the file (so as not to pin its WAL); a disk with no room for
/// the copy is said as a check that did not run, with what it needed and the way to check in place, not as a
/// write the database failed (before: "`.private/check-PID-0/activity.db`: the operating system refused a
/// write", and no row counts). The rest of the report is read from the file, and no copy is left.
#[test]
fn doctor_with_no_room_for_its_copy_says_the_check_did_not_run_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 20_000);
    let db = data.join("activity.db");
    let owner = activity_store::ActivityWriter::open(&db).unwrap();
    let mut cmd = splitstore();
    cmd.args(["doctor", "--data-dir", utf8(&data)]);
    let out = output_within(with_file_size_limit(&mut cmd, size(&db) / 2), Duration::from_secs(60));
    let copied = size(&db) + size(&data.join("activity.db-wal"));
    drop(owner);

    assert_eq!(out.status.code(), Some(1), "a problem found: {out:?}");
    let stdout = texts(&out).0;
    let line = |head: &str| {
        let found = stdout.lines().find(|l| l.trim_start().starts_with(head));
        found
            .unwrap_or_else(|| panic!("no {head:?} line in {stdout}"))
            .trim()
            .to_string()
    };
    assert_eq!(line("check "), "check           -");
    let rows = line("rows ");
    assert!(
        rows.starts_with("rows            activity_events=20000 activity_sessions=200 activity_totals="),
        "{rows}"
    );
    let private = data.join(".private");
    let problem = format!(
        "activity.db [write_failed]: {} was not checked: while the daemon runs the check reads a copy of it, and \
         the copy ({:.1} MB) could not be written in {}: {}/check-",
        db.display(),
        copied as f64 / MIB as f64,
        private.display(),
        private.display()
    );
    assert!(line("activity.db [write_failed]").starts_with(&problem), "{stdout}");
    assert_eq!(
        line("fix: free that much space"),
        format!(
            "fix: free that much space on the disk holding {} (or lift the quota or file-size limit), or stop the \
             daemon and run doctor again: it then checks the file in place. The database itself is not affected",
            data.display()
        )
    );
    let left: Vec<_> = std::fs::read_dir(&private)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().starts_with("check-")),
        "{left:?}"
    );
}

/// A key rotation whose `PRAGMA rekey` cannot write its journal (every page, so as much room again as the
/// file): SQLCipher rolls the rekey back and reports success, the copy still under the old key. That is said
/// as the write that failed, with the free-space remedy (before: "the key was rejected: activity.db.rekeying
/// cannot be read with the key given ... supply the right key with --key-file, or restore from a backup",
/// which sent the user after another key or an older backup); nothing changes, no copy is left, and the same
/// command run once the limit is lifted rotates the key.
#[cfg(feature = "encryption")]
#[test]
fn a_key_rotation_that_cannot_write_its_journal_says_so_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = |name: &str| {
        let path = dir.path().join(name);
        store_core::Key::generate().unwrap().write_file(&path).unwrap();
        utf8(&path).to_string()
    };
    let (old, new) = (key_file("old.key"), key_file("new.key"));
    let d = utf8(&data);
    let daemon = run_splitstore([
        "daemon",
        "--events",
        "60000",
        "--batch",
        "1000",
        "--data-dir",
        d,
        "--key-file",
        &old,
    ]);
    assert!(daemon.status.success(), "{daemon:?}");
    let server = run_splitstore(["server", "--seconds", "0.2", "--data-dir", d, "--key-file", &old]);
    assert!(server.status.success(), "{server:?}");
    let db = data.join("activity.db");
    let before = std::fs::read(&db).unwrap();
    // The copy fits (the file's size), its rekey's journal (every page and a header) does not.
    let limit = size(&db) + 4 * KIB;
    let rekey = ["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new];
    let mut cmd = splitstore();
    cmd.args(rekey);
    let out = output_within(with_file_size_limit(&mut cmd, limit), Duration::from_secs(60));

    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    assert!(!stderr.contains("key was rejected"), "{stderr}");
    let copy = data.join("activity.db.rekeying");
    let expected = format!(
        "splitstore rekey: {}: the operating system refused a write (the file could not be rewritten under the new \
         key: SQLCipher's rekey rolled back, leaving it under the old key; it journals every page, so it needs free \
         space the size of the file). What to do: check free space, quotas and file-size limits (ulimit -f) for {}",
        copy.display(),
        data.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!copy.exists(), "no copy is left");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing changed");

    let again = run_splitstore(rekey);
    assert!(again.status.success(), "without the limit the rotation runs: {again:?}");
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--key-file", &new]);
    assert_eq!(doctor.status.code(), Some(0), "{}", texts(&doctor).0);
}

/// A tmpfs of its own temporary folder, unmounted when dropped (before the folder is removed).
struct SmallFileSystem {
    at: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFileSystem {
    /// A tmpfs of `size_kib` KiB and `inodes` inodes holding a data directory with 10 events whose owners
    /// stopped cleanly: no `-wal` or `-shm`, which the next open must create. `None`, said, where this process
    /// may not mount (not root, no `CAP_SYS_ADMIN`): the test then checks nothing.
    fn with_stopped_data_dir(size_kib: u32, inodes: u32) -> Option<(SmallFileSystem, std::path::PathBuf)> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("mnt");
        std::fs::create_dir(&at).unwrap();
        let target = std::ffi::CString::new(utf8(&at)).unwrap();
        let options = std::ffi::CString::new(format!("size={size_kib}k,nr_inodes={inodes},mode=700")).unwrap();
        // SAFETY: mount(2) reads the NUL-terminated strings it is given; tmpfs takes its options as text.
        let mounted = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        } == 0;
        if !mounted {
            eprintln!("cannot mount a tmpfs here (not root): nothing to check");
            return None;
        }
        let small = SmallFileSystem { at, _dir: dir };
        let data = small.at.join("data");
        std::fs::create_dir(&data).unwrap();
        seed_data_dir(&data, 5);
        // The server's reading left the -wal and -shm; the daemon, the last to close, removes them.
        let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", utf8(&data)]);
        assert!(daemon.status.success(), "{daemon:?}");
        for sidecar in ["activity.db-wal", "activity.db-shm"] {
            assert!(!data.join(sidecar).exists(), "{sidecar} left by a clean stop");
        }
        Some((small, data))
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(utf8(&self.at)).unwrap();
        // SAFETY: umount2(2) reads the NUL-terminated path it is given.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A file system out of inodes with space to spare (many small files): SQLite cannot create the `-wal` and
/// `-shm` of a database whose owner stopped cleanly, and the daemon and report said "unable to open database
/// file", their remedy to run doctor, which said the same. Now each says the file system has no inode left,
/// with `df -i`, as a full disk (exit 75: a supervisor's restart helps once one is free), and the daemon
/// starts once two files are removed, every event kept.
#[test]
fn a_file_system_out_of_inodes_is_said_so_and_the_daemon_starts_once_files_are_removed() {
    let Some((small, data)) = SmallFileSystem::with_stopped_data_dir(8192, 64) else {
        return;
    };
    let db = data.join("activity.db");
    let fillers: Vec<std::path::PathBuf> = (0..)
        .map(|i| small.at.join(format!("small-{i}")))
        .take_while(|p| std::fs::File::create(p).is_ok())
        .collect();
    assert!(!fillers.is_empty());
    let d = utf8(&data);
    let refusal = format!(
        "{} cannot be opened: SQLite must create its -wal and -shm beside it, and the file system holding it has no \
         inode left for a new file (see `df -i {d}`). What to do: remove files no longer needed on the file system \
         holding {d} (each file takes an inode, whatever its size: a folder of many small files is the usual cause; \
         `df -i {d}` shows what is left); committed data is intact, and it opens again once there is room for two \
         files",
        db.display()
    );
    let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", d]);
    assert_eq!(daemon.status.code(), Some(75), "{daemon:?}");
    assert_eq!(texts(&daemon).1.trim_end(), format!("splitstore daemon: {refusal}"));
    let report = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(texts(&report).1.trim_end(), format!("splitstore report: {refusal}"));
    for filler in &fillers[..2] {
        std::fs::remove_file(filler).unwrap();
    }
    let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(count_rows(&db, "activity_events"), 15);
    drop(small);
}

/// A disk full at the first open after a clean stop: the `-shm` SQLite creates cannot grow, which it says as
/// "disk I/O error" (`SQLITE_IOERR_SHMSIZE`), not as a full disk, and the daemon and report said "the
/// operating system refused a write (... extended code 4874)". Now both say the disk is full, and once space
/// is freed the daemon records.
#[test]
fn a_disk_full_at_the_first_open_is_said_as_a_full_disk() {
    let Some((small, data)) = SmallFileSystem::with_stopped_data_dir(16384, 256) else {
        return;
    };
    let filler = small.at.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0u8; 64 * 1024]).is_ok() {}
    drop(file);
    let d = utf8(&data);
    for (command, code) in [("daemon", 75), ("report", 2)] {
        let out = match command {
            "daemon" => run_splitstore(["daemon", "--events", "5", "--data-dir", d]),
            _ => run_splitstore(["report", "--data-dir", d]),
        };
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        let stderr = texts(&out).1;
        assert!(
            stderr.starts_with(&format!(
                "splitstore {command}: {}: the disk is full. What to do: free space on the disk holding {d}",
                data.join("activity.db").display()
            )),
            "{stderr}"
        );
    }
    std::fs::remove_file(&filler).unwrap();
    let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(count_rows(&data.join("activity.db"), "activity_events"), 15);
    drop(small);
}
