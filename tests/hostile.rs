//! Hostile and careless input, through the real binary: nothing outside the data directory is ever touched,
//! an empty database file is damage (not a new install) when the directory shows it held data, rotation
//! never deletes what it must keep, and no argument or closed pipe makes a command panic or hang.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use support::{
    Cleared, FS_APPEND_FL, FS_IMMUTABLE_FL, backup_paths, copy_data_dir, count_rows, doctor_db_json, kill9, listing,
    mode, output_within, run_splitstore, seed_data_dir, set_attribute, spawn_splitstore, splitstore, summary_field,
    texts, utf8,
};

/// A file outside the data directory that a planted link points at, with its bytes and mode.
struct Target {
    path: PathBuf,
    bytes: Vec<u8>,
    mode: u32,
}

impl Target {
    fn new(dir: &Path, bytes: &[u8]) -> Target {
        let path = dir.join("outside/precious");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Target {
            path,
            bytes: bytes.to_vec(),
            mode: 0o644,
        }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.bytes,
            "the link's target was written"
        );
        assert_eq!(mode(&self.path), self.mode, "the link's target changed mode");
    }
}

fn data_dir(root: &Path) -> PathBuf {
    let data = root.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    data
}

#[test]
fn a_planted_link_in_place_of_a_lock_database_or_sidecar_is_refused_and_its_target_untouched() {
    for (planted, command) in [
        ("activity.db.lock", "daemon"),
        ("config.db.lock", "server"),
        ("activity.db", "daemon"),
        ("config.db", "server"),
        ("activity.db-wal", "daemon"),
        ("config.db-shm", "server"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = data_dir(dir.path());
        // An empty target is the worst case: SQLite would happily write a database into it.
        let target = Target::new(dir.path(), b"");
        symlink(&target.path, data.join(planted)).unwrap();
        let out = run_splitstore(
            [command, "--data-dir", utf8(&data), "--seconds", "0.2", "--events", "5"]
                .into_iter()
                .filter(|a| command == "daemon" || !["--events", "5"].contains(a)),
        );
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{planted}: {out:?}");
        assert!(
            stderr.contains(&format!("{} is a symbolic link", data.join(planted).display())),
            "{planted}: {stderr}"
        );
        target.assert_untouched();
    }
}

/// What a reader, the server, `backup` and `repair` say of another application's SQLite file, or of a link
/// to the real file, in activity.db's place (the daemon and doctor refuse both, named). A reader took the
/// foreign file (no application_id, no user_version) for one its owner has yet to migrate and `report` printed
/// an empty report, exit 0; the link was "SQLite error: unable to open database file", whose remedy was
/// doctor; the server exited on the link, though a report that fails on the daemon's file fails alone; and
/// `repair` said "healthy, left alone" of both.
#[test]
fn another_applications_file_or_a_link_in_activity_dbs_place_is_said_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let d = utf8(&data);
    seed_data_dir(&data, 100);
    let activity = data.join("activity.db");
    let real = dir.path().join("moved-activity.db");
    fs::rename(&activity, &real).unwrap();
    let foreign = rusqlite::Connection::open(&activity).unwrap();
    foreign
        .execute_batch("CREATE TABLE notes(x); INSERT INTO notes VALUES ('hello');")
        .unwrap();
    drop(foreign);
    let not_ours = format!(
        "{} is not activity.db: it has 1 tables, user_version 0 and no application_id: it belongs to another \
         application",
        activity.display()
    );
    let planted_link = format!("{} is a symbolic link, not a regular file", activity.display());
    for (kind, said) in [("wrong_database", &not_ours), ("unsafe_path", &planted_link)] {
        if kind == "unsafe_path" {
            fs::remove_file(&activity).unwrap();
            symlink(&real, &activity).unwrap();
        }
        let report = run_splitstore(["report", "--json", "--data-dir", d]);
        assert_eq!(report.status.code(), Some(2), "{kind}: not an empty report: {report:?}");
        let failure: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
        assert_eq!(failure["error"]["kind"], kind, "{failure}");
        assert_eq!(failure["error"]["message"], said.as_str(), "{failure}");
        let backup = run_splitstore(["backup", "--data-dir", d, "--to", utf8(&dir.path().join("to"))]);
        assert_eq!(backup.status.code(), Some(2), "{kind}: {backup:?}");
        assert!(texts(&backup).1.contains(said.as_str()), "{kind}: {backup:?}");
        let server = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
        let (stdout, stderr) = texts(&server);
        assert!(server.status.success(), "{kind}: serving config.db goes on: {server:?}");
        assert!(
            stderr.starts_with(&format!("splitstore server: a report failed: {said}")),
            "{stderr}"
        );
        assert_ne!(summary_field(&stdout, "server: ", "reports_failed"), 0, "{stdout}");
        let repair = run_splitstore(["repair", "--json", "--data-dir", d]);
        assert_eq!(repair.status.code(), Some(2), "{kind}: not healthy: {repair:?}");
        let failure: serde_json::Value = serde_json::from_slice(&repair.stdout).unwrap();
        assert_eq!(failure["error"]["kind"], kind, "{failure}");
        assert_eq!(
            failure["error"]["message"],
            format!("{said}; that is not damage, which is what repair mends"),
            "{failure}"
        );
        assert!(activity.symlink_metadata().is_ok(), "{kind}: nothing moved");
    }
    assert_eq!(count_rows(&real, "activity_events"), 100, "the link's target untouched");
}

#[test]
fn restore_and_the_split_refuse_a_planted_lock_link_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 50);
    let backup = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert!(backup.status.success());
    fs::remove_file(data.join("config.db.lock")).unwrap();
    let target = Target::new(dir.path(), b"root-owned configuration\n");
    symlink(&target.path, data.join("config.db.lock")).unwrap();
    let out = run_splitstore([
        "restore",
        "--data-dir",
        utf8(&data),
        "--from",
        utf8(&data.join("backups")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(texts(&out).1.contains("is a symbolic link"), "{out:?}");
    target.assert_untouched();

    let fresh = data_dir(&dir.path().join("split"));
    let legacy = dir.path().join("legacy.db");
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &legacy).unwrap();
    symlink(&target.path, fresh.join("activity.db.lock")).unwrap();
    let err = migrate_split::split(&legacy, &fresh, &Default::default()).unwrap_err();
    assert_eq!(err.kind(), splitstore::ErrorKind::UnsafePath, "{err}");
    target.assert_untouched();
}

#[test]
fn a_data_directory_others_may_write_is_refused_by_owners_and_reported_by_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).unwrap();
    let out = run_splitstore(["daemon", "--data-dir", utf8(&data), "--events", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The remedy is the chmod alone: it used to say to remove the directory, the user's data in it.
    assert_eq!(
        texts(&out).1,
        format!(
            "splitstore daemon: {d} is writable by other users (mode 0777), who could plant links to files outside \
             it. What to do: make it private, writable by this user only: `chmod 700 {d}`; nothing was written in \
             it\n",
            d = data.display()
        )
    );
    assert!(!data.join("activity.db").exists());
    let out = run_splitstore(["doctor", "--data-dir", utf8(&data), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = json["databases"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unsafe_path"), "{json}");
}

#[test]
fn a_lock_file_or_private_folder_of_the_wrong_type_stops_owners_by_its_name_and_doctor_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 50);
    let d = utf8(&data);
    // The owner exits 2 (not 75: restarting cannot help) saying what is in the way; doctor says the same.
    let refused = |command: &[&str], said: &str, database: &str| {
        let out = run_splitstore(command);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let told = format!(
            "splitstore {}: {said}. What to do: nothing was written through it: remove it (or move it away) so \
             that what belongs at that path (a file or a folder) can be created there, and make sure only this \
             user can write the data directory (chmod 700)",
            command[0]
        );
        assert_eq!(texts(&out).1.trim_end(), told, "{out:?}");
        let out = run_splitstore(["doctor", "--data-dir", d, "--no-check"]);
        let text = texts(&out).0;
        assert_eq!(out.status.code(), Some(1), "doctor said healthy: {text}");
        assert!(text.contains(&format!("{database} [unsafe_path]: {said}")), "{text}");
    };

    // A directory where the daemon's lock file goes (before: doctor said healthy, the daemon "could not open").
    let lock = data.join("activity.db.lock");
    fs::remove_file(&lock).unwrap();
    fs::create_dir(&lock).unwrap();
    let said = format!("{} is a directory, not a regular file", lock.display());
    refused(&["daemon", "--data-dir", d, "--events", "5"], &said, "activity.db");
    fs::remove_dir(&lock).unwrap();

    // A file where the private folder goes (before: doctor said healthy, each start failed reading a journal
    // "under" it).
    let private = data.join(".private");
    fs::remove_dir_all(&private).unwrap();
    fs::write(&private, b"").unwrap();
    let said = format!("{} is a regular file, not a directory", private.display());
    refused(&["server", "--data-dir", d, "--seconds", "0.1"], &said, "config.db");
}

/// A 0-byte config.db (a sync tool, a copy cut short) and a blank one (a SQLite file without a table:
/// `sqlite3 config.db 'PRAGMA journal_mode=WAL'` run once the file was moved away) are damage where the
/// directory shows the file held data. Before, the blank one was taken for a file the server had yet to
/// create: the server started it empty (every project said deleted in reports), doctor said to start it,
/// `backup` passed it over as "being created" and repair found it healthy. A blank activity.db gave empty
/// reports.
#[test]
fn an_empty_or_blank_database_beside_backups_is_damage_owners_readers_and_backup_refuse_and_repair_restores() {
    let blank = |db: &Path| {
        fs::remove_file(db).unwrap();
        let c = rusqlite::Connection::open(db).unwrap();
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        fs::set_permissions(db, fs::Permissions::from_mode(0o600)).unwrap();
    };
    let empty = |db: &Path| fs::write(db, b"").unwrap();
    type Replace<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Replace, &str); 2] = [
        ("empty", &empty, "the file is empty (0 bytes), but it held data before"),
        (
            "blank",
            &blank,
            "the file is a SQLite file without a table, but it held data before",
        ),
    ];
    for (how, replace, said) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = data_dir(dir.path());
        seed_data_dir(&data, 100);
        assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
        let config = data.join("config.db");
        let projects_before: i64 = support::query_i64(&support::read_only(&config), "SELECT count(*) FROM projects");
        replace(&config);
        let bytes = fs::read(&config).unwrap();
        let damage = format!("{} is damaged: {said}", config.display());

        let out = run_splitstore(["server", "--data-dir", utf8(&data), "--seconds", "0.2"]);
        assert_eq!(out.status.code(), Some(2), "{how}: {out:?}");
        let stderr = texts(&out).1;
        assert!(
            stderr.contains(&damage) && stderr.contains("splitstore repair --data-dir"),
            "{how}: {stderr}"
        );
        assert_eq!(fs::read(&config).unwrap(), bytes, "{how}: nothing was started over it");
        let report = run_splitstore(["report", "--data-dir", utf8(&data)]);
        assert_eq!(report.status.code(), Some(2), "{how}: {report:?}");
        assert!(texts(&report).1.contains(&damage), "{how}: {report:?}");
        let backup = run_splitstore(["backup", "--data-dir", utf8(&data)]);
        assert_eq!(backup.status.code(), Some(2), "{how}: {backup:?}");
        assert!(texts(&backup).1.contains(&damage), "{how}: {backup:?}");

        let doctor = run_splitstore(["doctor", "--data-dir", utf8(&data)]);
        assert_eq!(doctor.status.code(), Some(1));
        assert!(texts(&doctor).0.contains("config.db [corrupt]"), "{how}: {doctor:?}");

        let repair = run_splitstore(["repair", "--data-dir", utf8(&data)]);
        assert!(repair.status.success(), "{how}: {repair:?}");
        assert!(
            texts(&repair).0.contains("config.db: restored from"),
            "{how}: {repair:?}"
        );
        let projects: i64 = support::query_i64(&support::read_only(&config), "SELECT count(*) FROM projects");
        assert_eq!(projects, projects_before, "{how}: every project is back");

        // activity.db read by the server's reports: damage, not an empty history.
        let activity = data.join("activity.db");
        replace(&activity);
        let report = run_splitstore(["report", "--data-dir", utf8(&data), "--json"]);
        assert_eq!(report.status.code(), Some(2), "{how}: {report:?}");
        assert!(texts(&report).0.contains(r#""kind":"corrupt""#), "{how}: {report:?}");
        let daemon = run_splitstore(["daemon", "--data-dir", utf8(&data), "--events", "1"]);
        assert_eq!(daemon.status.code(), Some(2), "{how}: {daemon:?}");
        assert!(
            texts(&daemon)
                .1
                .contains(&format!("{} is damaged: {said}", activity.display())),
            "{how}: {daemon:?}"
        );
    }
}

/// An empty activity.db beside a `-wal` that still holds commits (a copy cut short between the two files),
/// with a backup: doctor and repair read the directory without opening the empty file, so the `-wal`
/// (SQLite deletes one it finds beside an empty file, even from a read-only connection) goes into quarantine
/// with it, byte for byte. Before, repair's count of rows added since the backup opened the empty file and
/// the `-wal` was lost.
#[test]
fn repair_of_an_empty_file_beside_a_wal_of_commits_keeps_that_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
    let db = data.join("activity.db");
    let commits = emptied_beside_a_wal_of_commits(&db);

    let doctor = run_splitstore(["doctor", "--data-dir", utf8(&data)]);
    assert!(texts(&doctor).0.contains("-wal holds"), "{doctor:?}");
    let repair = run_splitstore(["repair", "--data-dir", utf8(&data)]);
    assert!(repair.status.success(), "{repair:?}");
    let quarantined: Vec<PathBuf> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-wal") && p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{repair:?}");
    assert_eq!(
        fs::read(&quarantined[0]).unwrap(),
        commits,
        "the -wal went into quarantine as it was"
    );
}

/// Leaves activity.db `db` empty beside a `-wal` holding a commit made after it was last closed (a copy cut
/// short between the two files); returns that `-wal`'s bytes.
fn emptied_beside_a_wal_of_commits(db: &Path) -> Vec<u8> {
    let wal = store_core::files::with_suffix(db, "-wal");
    let commits = {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute(
            "INSERT INTO activity_events (event_type, timestamp_ms) VALUES ('after the backup', 1)",
            [],
        )
        .unwrap();
        fs::read(&wal).unwrap()
    };
    assert!(!commits.is_empty());
    fs::write(db, b"").unwrap();
    fs::write(&wal, &commits).unwrap();
    commits
}

/// `splitstore backup` reads each database as one of its kind: an empty activity.db (beside a `-wal` of
/// commits, or alone where the directory shows it held data) is damage, and a foreign database in its place
/// is another application's. Each is refused, naming the file, with no backup of it taken and the `-wal`
/// kept; config.db is backed up all the same (exit 2 after it). Before, each was "backed up" (exit 0): an
/// empty `-v0` copy the restore would never take, and SQLite's open of the empty file deleted the `-wal`,
/// the commits it held with it; and a failure of activity.db's backup took no backup of config.db.
#[test]
fn backup_refuses_an_empty_or_foreign_file_in_place_of_a_database_and_keeps_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    assert!(
        run_splitstore(["backup", "--data-dir", utf8(&data), "--keep", "9"])
            .status
            .success()
    );
    let backups = data.join("backups");
    let taken = |stem: &str| {
        let names = fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap());
        let mut names: Vec<String> = names.filter(|n| n.starts_with(stem)).collect();
        names.sort();
        names
    };
    let activity_before = taken("activity-");
    let db = data.join("activity.db");
    let wal = data.join("activity.db-wal");
    let refused = |said: &str| {
        let config_before = taken("config-").len();
        let out = run_splitstore(["backup", "--data-dir", utf8(&data), "--keep", "9"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let (stdout, stderr) = texts(&out);
        let expected = format!("splitstore backup: {}{said}", db.display());
        assert!(stderr.starts_with(&expected), "{stderr}");
        assert_eq!(
            taken("activity-"),
            activity_before,
            "no backup of activity.db was taken"
        );
        let config_now = taken("config-");
        assert_eq!(config_now.len(), config_before + 1, "config.db was backed up");
        assert_eq!(
            stdout,
            format!("backup: {}\n", backups.join(config_now.last().unwrap()).display())
        );
    };

    let commits = emptied_beside_a_wal_of_commits(&db);
    refused(" is damaged: the file is empty but ");
    assert_eq!(fs::read(&wal).unwrap(), commits, "the -wal is kept as it was");

    fs::remove_file(&wal).unwrap();
    refused(" is damaged: the file is empty (0 bytes), but it held data before");

    fs::remove_file(&db).unwrap();
    let foreign = rusqlite::Connection::open(&db).unwrap();
    foreign.execute_batch("CREATE TABLE notes (body TEXT)").unwrap();
    drop(foreign);
    refused(" is not activity.db: it has 1 tables, user_version 0 and no application_id");
}

/// A restore from a file that is empty (named by the user, or named like a backup in a folder) beside a
/// `-wal` of commits: refused as no backup, the `-wal` kept. Before, SQLite's open of the empty file
/// deleted the `-wal` of a file the restore only reads.
#[test]
fn restore_from_an_empty_file_keeps_the_wal_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    let old = dir.path().join("old");
    seed_data_dir(&old, 100);
    let named = old.join("activity.db");
    let commits = emptied_beside_a_wal_of_commits(&named);
    let named_wal = old.join("activity.db-wal");

    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&named)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1,
        format!(
            "splitstore restore: {} is not a backup of activity.db or config.db: it is empty (0 bytes). What to \
             do: check the path: a database of another kind or application is never written into\n",
            named.display()
        )
    );
    assert_eq!(fs::read(&named_wal).unwrap(), commits, "the -wal is kept as it was");

    let folder = dir.path().join("folder");
    fs::create_dir(&folder).unwrap();
    let like_a_backup = folder.join("activity-20261130T120000.000Z-v4.db");
    fs::rename(&named, &like_a_backup).unwrap();
    fs::rename(&named_wal, store_core::files::with_suffix(&like_a_backup, "-wal")).unwrap();
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&folder)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        fs::read(store_core::files::with_suffix(&like_a_backup, "-wal")).unwrap(),
        commits,
        "the -wal is kept as it was"
    );
}

#[test]
fn rotation_removes_only_real_backups_keeps_the_new_one_and_does_not_trust_names_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 20);
    let backups = data.join("backups");
    assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
    // A real backup copied under a name from the future, and a text file named like a backup.
    let real = fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("/activity-"))
        .unwrap();
    let future = backups.join("activity-29990101T000000.000Z-v2.db");
    fs::copy(&real, &future).unwrap();
    let text = backups.join("activity-20200101T000000.000Z-v2.db");
    fs::write(&text, "not a database").unwrap();

    let out = run_splitstore(["backup", "--data-dir", utf8(&data), "--keep", "1"]);
    assert!(out.status.success(), "{out:?}");
    let new = PathBuf::from(
        texts(&out)
            .0
            .lines()
            .find_map(|l| l.strip_prefix("backup: ").filter(|p| p.contains("/activity-")))
            .unwrap(),
    );
    assert!(new.exists(), "the backup just taken survives its own rotation");
    assert!(
        future.exists(),
        "a name from the future is not trusted, and not removed"
    );
    assert!(text.exists(), "a file that is not a backup is never removed");
    assert!(!real.exists(), "the older real backup is rotated away");
    let doctor = texts(&run_splitstore(["doctor", "--data-dir", utf8(&data), "--no-check"])).0;
    assert!(
        doctor.contains("later than the clock reads now: never chosen by its name"),
        "{doctor}"
    );

    // A restore from the folder picks the newest real backup, not the future-named one.
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&backups)]);
    assert!(out.status.success(), "{out:?}");
    assert!(texts(&out).0.contains(&format!("from {}", new.display())), "{out:?}");
}

#[test]
fn durations_rates_and_counts_out_of_range_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        &["daemon", "--seconds", "1e20"][..],
        &["daemon", "--seconds", "inf"],
        &["daemon", "--seconds", "NaN"],
        &["daemon", "--seconds=-1"],
        &["daemon", "--rate", "1e-300", "--seconds", "1"],
        &["server", "--seconds", "1e20"],
        &["demo", "--seconds", "inf"],
        &["backup", "--keep", "0"],
    ] {
        let out = run_splitstore(args.iter().copied().chain(["--data-dir", utf8(&data)]));
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            !stderr.contains("panicked") && !stdout.contains("panicked"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("for '{}", args[1].split('=').next().unwrap())),
            "{args:?}: {stderr}"
        );
    }
    assert!(!data.exists(), "nothing was created");
}

/// Reads one line of a command's stdout, then closes the pipe, as `| head -1` does; returns its exit status
/// and stderr.
fn read_one_line_then_close(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = spawn_splitstore(args);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader (and the pipe) is gone now.
    let mut stderr = String::new();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} did not end after its reader left"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn a_closed_stdout_ends_report_and_server_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 500);
    let d = utf8(&data);
    let (status, stderr) = read_one_line_then_close(&["report", "--data-dir", d]);
    assert!(status.success(), "report: {status:?} {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (status, stderr) = read_one_line_then_close(&["server", "--data-dir", d, "--seconds", "1", "--print-changes"]);
    assert!(status.success(), "server: {status:?} {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn restore_from_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let fifo = dir.path().join("backup.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let out = output_within(
        splitstore().args(["restore", "--data-dir", utf8(&data), "--from", utf8(&fifo)]),
        Duration::from_secs(30),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(texts(&out).1.contains("is a FIFO, not a regular file"), "{out:?}");
}

#[test]
fn the_demo_refuses_a_directory_with_anything_in_it_and_keeps_its_own_files_private() {
    let dir = tempfile::tempdir().unwrap();
    let user_data = dir.path().join("user");
    fs::create_dir_all(&user_data).unwrap();
    fs::write(user_data.join("activity.db"), b"the user's").unwrap();
    let out = run_splitstore(["demo", "--data-dir", utf8(&user_data), "--seconds", "0.5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(texts(&out).1.contains("is not empty"), "{out:?}");
    assert_eq!(fs::read(user_data.join("activity.db")).unwrap(), b"the user's");

    let own = dir.path().join("demo");
    let out = run_splitstore(["demo", "--data-dir", utf8(&own), "--seconds", "0.5"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&own), 0o700);
    for f in ["legacy.db", "activity.db", "config.db"] {
        assert_eq!(mode(&own.join(f)), 0o600, "{f}");
    }
}

#[test]
fn a_demo_stopped_with_sigterm_stops_its_daemon_and_server() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("demo");
    let demo = spawn_splitstore(["demo", "--data-dir", utf8(&own), "--seconds", "60"]);
    let started = Instant::now();
    // Wait until both children own their files.
    while !["activity.db", "config.db"].iter().all(|f| {
        matches!(
            store_core::OwnerLock::probe(&own.join(f)),
            Ok(store_core::LockState::Held { .. })
        )
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo's children never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    let out = support::wait_output_within(demo, Duration::from_secs(60));
    assert!(!out.status.success(), "a stopped demo does not claim success: {out:?}");
    for f in ["activity.db", "config.db"] {
        assert_eq!(
            store_core::OwnerLock::probe(&own.join(f)).unwrap(),
            store_core::LockState::Free,
            "{f}: the demo's child still runs"
        );
    }
}

/// Values an argument can take in the property test: plausible, extreme, and malformed.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("0.05".to_string()),
        Just("-1".to_string()),
        Just("1e20".to_string()),
        Just("inf".to_string()),
        Just("NaN".to_string()),
        Just("".to_string()),
        Just("null".to_string()),
        Just("1,2,null".to_string()),
        Just("9223372036854775807".to_string()),
        Just("/dev/null".to_string()),
        Just("2024-01-01".to_string()),
        Just("not a value".to_string()),
        "[a-z0-9 ,.:-]{0,12}",
    ]
}

fn flag() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "--seconds",
        "--events",
        "--batch",
        "--batch-delay-ms",
        "--rate",
        "--project-ids",
        "--from",
        "--to",
        "--keep",
        "--older-than",
        "--legacy",
        "--print-acks",
        "--json",
        "--dry-run",
        "--allow-empty",
        "--full",
        "--key-file",
        "--new-key-file",
        "--decrypt",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    /// Whatever the arguments, every subcommand ends (bounded: `--seconds` is forced small where a command
    /// would otherwise run until stopped) without a panic, with exit code 0, 1 or 2.
    #[test]
    fn no_argument_makes_a_command_panic_or_hang(
        command in prop::sample::select(vec!["daemon", "server", "report", "doctor", "backup", "restore", "repair", "cleanup", "rekey"]),
        args in prop::collection::vec((flag(), value()), 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let data = data_dir(dir.path());
        let mut cmd = splitstore();
        cmd.arg(command).args(["--data-dir", utf8(&data)]);
        for (flag, value) in &args {
            cmd.arg(flag);
            if !["--print-acks", "--json", "--dry-run", "--allow-empty", "--full", "--decrypt"].contains(flag) {
                cmd.arg(value);
            }
        }
        // The daemon and the server run until stopped unless told a duration: give one when the case did not
        // (a second `--seconds` would be a usage error, not the bound).
        if ["daemon", "server"].contains(&command) && !args.iter().any(|(f, _)| *f == "--seconds") {
            cmd.args(["--seconds", "0.2"]);
        }
        let out = output_within(&mut cmd, Duration::from_secs(60));
        let (stdout, stderr) = texts(&out);
        prop_assert!(!stdout.contains("panicked at") && !stderr.contains("panicked at"), "{args:?}: {stderr}");
        prop_assert!(matches!(out.status.code(), Some(0..=2)), "{command} {args:?}: {out:?}");
    }
}

/// What cleanup removes: only regular files named as a command leaves them, aged from when they were moved
/// aside, never one a running command may still use. It removed a folder of the user's named like one, the
/// partial file of a backup still running and the output of a running salvage, and aged a file moved aside
/// today by when it was last written.
#[test]
fn leftovers_of_killed_commands_are_listed_by_doctor_and_removed_only_by_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 20);
    let d = utf8(&data);
    let stamp = |days: i64| store_core::files::name_timestamp(chrono::Utc::now() + chrono::Duration::days(days));
    // What killed commands leave: a restore's copy and the lock file its open took, a backup's partial file, a
    // split's temporary file, and what repair keeps on purpose (dated in its name 40 days ago), and a file
    // moved aside by a clock a day ahead.
    let left = [
        data.join("activity.db.restoring"),
        data.join("backups/.activity-20260101T000000.000Z-999999.partial"),
        data.join(".split-tmp-20260101T000000.000Z-1.config.db"),
        data.join(format!("config.db.corrupt-{}", stamp(-40))),
        data.join(format!("activity.db.replaced-{}", stamp(1))),
        data.join("activity.db.restoring.lock"),
    ];
    fs::create_dir_all(data.join("backups")).unwrap();
    for f in &left {
        fs::write(f, b"a copy of user data").unwrap();
    }
    // Moved aside today, written last 60 days ago (a rename keeps that time): 0 days old, not 60.
    let replaced_today = data.join(format!("config.db.replaced-{}", stamp(0)));
    let written = fs::File::create(&replaced_today).unwrap();
    written
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60 * 86_400))
        .unwrap();
    // Not ours, though named as ours: a folder of the user's, and the partial file of a backup that runs
    // (this process stands for it).
    let users_folder = data.join(format!("activity.db.corrupt-{}", stamp(-400)));
    fs::create_dir(&users_folder).unwrap();
    fs::write(users_folder.join("thesis.pdf"), b"the user's").unwrap();
    let running = data.join(format!(
        "backups/.config-{}-{}.partial",
        stamp(-400),
        std::process::id()
    ));
    fs::write(&running, b"a backup being written").unwrap();

    let doctor = texts(&run_splitstore(["doctor", "--data-dir", d, "--no-check"])).0;
    for f in left.iter().chain([&replaced_today, &running]) {
        assert!(
            doctor.contains(&f.display().to_string()),
            "{} not listed:\n{doctor}",
            f.display()
        );
    }
    assert!(!doctor.contains(&users_folder.display().to_string()), "{doctor}");
    assert!(
        doctor.contains(&format!("splitstore cleanup --data-dir {d} --older-than DAYS")),
        "{doctor}"
    );

    // Nothing is removed unless asked; a dry run removes nothing and says what the run does; files younger
    // than asked stay.
    let dry = run_splitstore(["cleanup", "--data-dir", d, "--older-than", "0", "--dry-run"]);
    assert!(dry.status.success(), "{dry:?}");
    assert!(left.iter().all(|f| f.exists()));
    let dry = texts(&dry).0;
    assert_eq!(
        dry.lines().filter(|l| l.starts_with("would remove ")).count(),
        left.len() + 1,
        "{dry}"
    );
    let kept_running = format!("kept {}", running.display());
    let still_runs = format!("the backup writing it (pid {}) still runs", std::process::id());
    assert!(
        dry.lines()
            .any(|l| l.starts_with(&kept_running) && l.ends_with(&still_runs)),
        "{dry}"
    );
    let young = run_splitstore(["cleanup", "--data-dir", d, "--older-than", "30"]);
    assert!(young.status.success(), "{young:?}");
    assert!(!left[3].exists(), "40 days old by its name: {young:?}");
    assert!(replaced_today.exists(), "moved aside today: {young:?}");
    assert!(left.iter().take(3).chain(&left[4..]).all(|f| f.exists()), "{young:?}");

    // While an owner runs (this process holds a lock), the temporary files of commands that hold the locks
    // stay, a salvage's too; the dry run says the same.
    let salvaging = data.join("activity.db.salvaging");
    fs::write(&salvaging, b"a salvage being written").unwrap();
    let lock = store_core::OwnerLock::acquire(&data.join("activity.db")).unwrap();
    for extra in [Some("--dry-run"), None] {
        let mut args = vec!["cleanup", "--data-dir", d, "--older-than", "0"];
        args.extend(extra);
        let out = run_splitstore(&args);
        assert!(out.status.success(), "{out:?}");
        let said = texts(&out).0;
        for f in [&salvaging, &left[0]] {
            let kept = format!("kept {}", f.display());
            assert!(said.lines().any(|l| l.starts_with(&kept)), "{said}");
        }
    }
    assert!(salvaging.exists() && left[0].exists());
    drop(lock);

    let all = run_splitstore(["cleanup", "--data-dir", d, "--older-than", "0"]);
    assert!(all.status.success(), "{all:?}");
    assert!(
        left.iter().chain([&replaced_today, &salvaging]).all(|f| !f.exists()),
        "{all:?}"
    );
    assert!(running.exists(), "the running backup's file stays");
    assert!(users_folder.join("thesis.pdf").exists(), "the user's folder stays");
    assert!(
        data.join("activity.db").exists() && data.join("config.db").exists(),
        "the databases stay"
    );
}

#[test]
fn the_split_refuses_a_legacy_path_that_is_one_of_its_outputs_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let legacy_named_as_output = data.join("config.db");
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &legacy_named_as_output).unwrap();
    let before = fs::read(&legacy_named_as_output).unwrap();
    let options = migrate_split::Options {
        force: true,
        ..Default::default()
    };
    let err = migrate_split::split(&legacy_named_as_output, &data, &options).unwrap_err();
    assert!(
        err.to_string().contains("is where the split writes one of its outputs"),
        "{err}"
    );
    assert_eq!(
        fs::read(&legacy_named_as_output).unwrap(),
        before,
        "the legacy file was not moved or changed"
    );
}

/// [`seed_data_dir`], its files then recording no lineage, as an earlier build's do (their backups then
/// record none either, only the path they were taken from).
fn seed_as_an_earlier_build(data: &Path, events: u64) {
    seed_data_dir(data, events);
    for db in ["activity.db", "config.db"] {
        let conn = rusqlite::Connection::open(data.join(db)).unwrap();
        conn.execute("DELETE FROM provenance WHERE event = 'lineage'", [])
            .unwrap();
    }
}

/// Two data directories backing up into one folder, the other one's run by an earlier build (its backups
/// record no lineage, only the path they were taken from) and backed up last: a restore (and a repair) of
/// this one took the other's newer backups for its own and put them in place, its rows for this one's, and
/// said nothing of it. Now a backup recording another path is not this file's.
#[test]
fn an_earlier_builds_backup_of_another_data_directory_in_a_shared_folder_is_never_restored_here() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    let shared = dir.path().join("shared");
    let to_shared = |data: &Path| {
        let out = run_splitstore(["backup", "--data-dir", utf8(data), "--to", utf8(&shared)]);
        assert!(out.status.success(), "{out:?}");
        backup_paths(&out)
    };
    to_shared(&data);
    let other = data_dir(&dir.path().join("other"));
    seed_as_an_earlier_build(&other, 7);
    let others = to_shared(&other);
    let projects = count_rows(&data.join("config.db"), "projects");
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&shared)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count_rows(&data.join("activity.db"), "activity_events"), 100, "{out:?}");
    assert_eq!(count_rows(&data.join("config.db"), "projects"), projects, "{out:?}");
    assert!(!others.iter().any(|p| texts(&out).0.contains(utf8(p))), "{out:?}");
    // A damaged file whose lineage cannot be read (emptied): the folder holds backups of two files, each
    // named with the path it was taken from, and nothing moves.
    fs::write(data.join("config.db"), b"").unwrap();
    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--from", utf8(&shared)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    assert!(
        stderr.contains("holds backups of 2 different config.db files"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("taken from {}", other.join("config.db").display())),
        "{stderr}"
    );
    assert_eq!(fs::metadata(data.join("config.db")).unwrap().len(), 0, "nothing moved");
}

/// Another user's files in a folder others may write (`/tmp`, a shared drive), named as newer backups and
/// recording no lineage (as an earlier build's do): a restore from the folder takes the user's own backups
/// and leaves those alone. Before, it restored them (7 events of someone else in place of the user's 100).
/// Root only, as only root can give a file to another user; the test runs as that folder's owner.
#[test]
fn a_restore_from_a_folder_others_may_write_never_takes_another_users_files() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no file of another user can be made here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let to_shared = |data: &Path| {
        let out = run_splitstore(["backup", "--data-dir", utf8(data), "--to", utf8(&shared)]);
        assert!(out.status.success(), "{out:?}");
        backup_paths(&out)
    };
    to_shared(&data);
    let someone = dir.path().join("someone");
    seed_as_an_earlier_build(&someone, 7);
    let planted = to_shared(&someone);
    for p in &planted {
        std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
    }
    let planted_bytes: Vec<Vec<u8>> = planted.iter().map(|p| fs::read(p).unwrap()).collect();

    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&shared)]);
    assert!(out.status.success(), "{out:?}");
    let events = support::query_i64(
        &support::read_only(&data.join("activity.db")),
        "SELECT count(*) FROM activity_events",
    );
    assert_eq!(events, 100, "the user's own backup is restored: {out:?}");
    assert!(!planted.iter().any(|p| texts(&out).0.contains(utf8(p))), "{out:?}");
    let after: Vec<Vec<u8>> = planted.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(after == planted_bytes, "the other user's files are left as they were");
}

/// Root running a writing command on a user's data directory (`sudo splitstore restore`): refused before
/// anything is written, naming the user's file and the user to run as. Before, the restore put root-owned
/// 0600 files in place, and the user's daemon then failed with "this user may not open activity.db".
/// Readers (doctor, report) still run. Root only: other users cannot make a directory belong to someone else.
#[test]
fn root_writing_into_a_users_data_directory_is_refused_and_nothing_changes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the refusal is checked by store-core's a_file_of_another_user_is_refused_to_writers");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 100);
    assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
    // Every path under the data directory, with the bytes of each file.
    let tree = || {
        let mut found = std::collections::BTreeMap::new();
        let mut todo = vec![data.clone()];
        while let Some(p) = todo.pop() {
            if p.is_dir() {
                todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                found.insert(p, None);
            } else {
                found.insert(p.clone(), Some(fs::read(&p).unwrap()));
            }
        }
        found
    };
    for p in tree().keys() {
        std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
    }
    let before = tree();
    let d = utf8(&data);
    let backups = data.join("backups");
    for args in [
        &["restore", "--data-dir", d, "--from", utf8(&backups)][..],
        &["repair", "--data-dir", d],
        &["backup", "--data-dir", d],
        &["daemon", "--data-dir", d, "--events", "5"],
        &["server", "--data-dir", d, "--seconds", "0.1"],
    ] {
        let out = run_splitstore(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let at = match args[0] {
            "backup" => backups.clone(),
            "server" => data.join("config.db"),
            _ => data.join("activity.db"),
        };
        assert_eq!(texts(&out).1.trim_end(), refused_as_root(args[0], &at));
    }
    assert!(tree() == before, "a file was created, removed or changed");
    for args in [&["doctor", "--data-dir", d][..], &["report", "--data-dir", d]] {
        assert!(run_splitstore(args).status.success(), "{args:?} reads as root");
    }
    // Never backed up: the backup folder would be made in the data directory, whose own folder is root's (as
    // `/var/lib` is, for a service's). It was taken for a folder left by root, and the remedy was to give the
    // whole data directory to root (`sudo chown -R 0`), which would shut its daemon out.
    fs::remove_dir_all(&backups).unwrap();
    let out = run_splitstore(["backup", "--data-dir", d]);
    assert_eq!(texts(&out).1.trim_end(), refused_as_root("backup", &data));
    assert!(!backups.exists(), "no backup folder made");
    // A database an earlier root run left root's, in the user's folder: the user's daemon says to give it
    // back (not to run as root, which would only spread root's files).
    let db = data.join("activity.db");
    std::os::unix::fs::lchown(&db, Some(0), Some(0)).unwrap();
    // The user reaches its data directory through the temporary one.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = splitstore();
    {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    cmd.args(["daemon", "--data-dir", d, "--events", "5"]);
    let out = output_within(&mut cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1.trim_end(),
        format!(
            "splitstore daemon: {db} belongs to user 0 and this command runs as user 65534: the files it would write \
             beside it would belong to user 65534, and the processes of user 0 that use it could not open them. \
             What to do: the rest of {d} belongs to user 65534: a command run as another user left it; give it \
             back with `sudo chown 65534 {db}` (and its -wal and -shm, if any), then run the command again; \
             nothing was changed",
            db = db.display()
        )
    );
    // Root backing up into a folder of its own still works, and so does an owner as root (in a container, on
    // a folder the host's user owns) on a directory whose files are all root's.
    let own = dir.path().join("root-backups");
    assert!(
        run_splitstore(["backup", "--data-dir", d, "--to", utf8(&own)])
            .status
            .success()
    );
    let fresh = data.join("fresh");
    fs::create_dir(&fresh).unwrap();
    std::os::unix::fs::lchown(&fresh, Some(65534), Some(65534)).unwrap();
    let daemon = run_splitstore(["daemon", "--data-dir", utf8(&fresh), "--events", "5"]);
    assert!(daemon.status.success(), "{daemon:?}");
}

/// A data directory copied or put back by root (`sudo cp -r`, a backup tool's restore run as root) with only
/// its top folder given back to the user: every file and folder in it is root's, 0600 and 0700. The user's
/// commands said to "run as the user that owns" the data directory, who is that user, and the daemon named
/// `.private/restore.journal`, which is not there. They name now the files and folders to give back, all in
/// one `sudo chown -R` (it named one a run), and once it is done the daemon starts. Root only.
#[test]
fn a_data_directory_whose_contents_root_left_says_which_to_give_back() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: only root makes files belong to another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Only the top folder goes back to the user (65534); what is in it stays root's.
    std::os::unix::fs::lchown(&data, Some(65534), Some(65534)).unwrap();
    let d = utf8(&data);
    let as_user = splitstore_as_user;
    let daemon = as_user(&["daemon", "--data-dir", d, "--events", "5"]);
    assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
    let stderr = texts(&daemon).1;
    assert!(!stderr.contains("run as the user that owns"), "{stderr}");
    assert!(!stderr.contains("restore.journal"), "{stderr}");
    let doctor = texts(&as_user(&["doctor", "--data-dir", d, "--no-check"])).0;
    let db = data.join("activity.db");
    assert!(
        doctor.contains("give them back with `sudo chown -R 65534 ") && doctor.contains(&db.display().to_string()),
        "{doctor}"
    );
    assert!(!doctor.contains("run as the user that owns"), "{doctor}");
    // Everything root left there, in one command (it named one a run); given back as said, it starts.
    let chown = give_back_as_said(&stderr);
    for name in [
        ".private",
        "activity.db",
        "activity.db.lock",
        "config.db",
        "config.db.lock",
    ] {
        assert!(
            chown.contains(&format!("{} ", data.join(name).display())) || chown.ends_with(name),
            "{stderr}"
        );
    }
    assert!(stderr.contains("give them back with"), "{stderr}");
    let daemon = as_user(&["daemon", "--data-dir", d, "--events", "5"]);
    assert!(daemon.status.success(), "{daemon:?}");
}

#[test]
fn a_data_directory_this_user_may_not_read_is_permission_denied_not_missing() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| {
        let mut cmd = splitstore();
        cmd.args(args);
        if is_root {
            // Root reads everything: run as nobody, to whom the 0700 data directory is closed.
            cmd.uid(65534).gid(65534);
        } else {
            fs::set_permissions(&data, fs::Permissions::from_mode(0o000)).unwrap();
        }
        let out = output_within(&mut cmd, Duration::from_secs(60));
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        out
    };
    for args in [
        &["report", "--data-dir", utf8(&data)][..],
        &["daemon", "--data-dir", utf8(&data), "--events", "1"],
        // It said "removed 0 file(s)", a folder it could not list taken for one without leftovers.
        &["cleanup", "--data-dir", utf8(&data), "--older-than", "0"],
    ] {
        let out = run(args);
        let stderr = texts(&out).1;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(stderr.contains("this user may not"), "{args:?}: {stderr}");
        assert!(!stderr.contains("has not created it yet"), "{args:?}: {stderr}");
    }
}

/// Database files this user may not read in a folder it may list (another user's, 0600) are said as such by
/// `backup` and `doctor`, as `report` says them: they said "SQLite error ... unable to open database file",
/// with doctor's remedy to run doctor.
#[test]
fn database_files_this_user_may_not_read_are_permission_denied_for_backup_and_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let to = dir.path().join("to");
    fs::create_dir(&to).unwrap();
    for folder in [dir.path(), &data, &to] {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o777)).unwrap();
    }
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root {
        for db in ["activity.db", "config.db"] {
            fs::set_permissions(data.join(db), fs::Permissions::from_mode(0o000)).unwrap();
        }
    }
    // Root reads everything: run as nobody, to whom the 0600 files are closed.
    let run = splitstore_as_user;
    let activity = data.join("activity.db");
    let may_not = format!("this user may not read {}", activity.display());
    let backup = run(&["backup", "--data-dir", utf8(&data), "--to", utf8(&to)]);
    assert_eq!(backup.status.code(), Some(2), "{backup:?}");
    let stderr = texts(&backup).1;
    assert!(stderr.contains(&may_not), "{stderr}");
    assert!(!stderr.contains("unable to open"), "{stderr}");
    assert_eq!(fs::read_dir(&to).unwrap().count(), 0, "no backup, no partial file");
    let doctor = texts(&run(&["doctor", "--data-dir", utf8(&data), "--no-check"])).0;
    assert!(doctor.contains(&may_not), "{doctor}");
    assert!(!doctor.contains("[sqlite]"), "{doctor}");
    if !is_root {
        for db in ["activity.db", "config.db"] {
            fs::set_permissions(data.join(db), fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// `dir` and everything in it given to nobody (65534), as `chown -R` would. Root only.
fn give_to_nobody(dir: &Path) {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        std::os::unix::fs::lchown(&p, Some(65534), Some(65534)).unwrap();
    }
}

/// Runs, as root (which the test is), the `sudo chown -R 65534 ...` a refusal's remedy in `stderr` says;
/// returns it, to say what it gave back.
fn give_back_as_said(stderr: &str) -> String {
    let chown = stderr
        .split('`')
        .find(|part| part.starts_with("sudo chown -R 65534 "))
        .unwrap_or_else(|| panic!("no chown said: {stderr}"));
    let done = Command::new("sh")
        .args(["-c", chown.trim_start_matches("sudo ")])
        .status()
        .unwrap();
    assert!(done.success(), "{chown}");
    chown.to_string()
}

/// What `splitstore COMMAND`, run as root, says of `path`, a file or folder of user 65534 it would write beside.
fn refused_as_root(command: &str, path: &Path) -> String {
    format!(
        "splitstore {command}: {} belongs to user 65534 and this command runs as user 0: the files it would write \
         beside it would belong to user 0, and the processes of user 65534 that use it could not open them. What \
         to do: run the command as user 65534 (`sudo -u '#65534' COMMAND` as root); nothing was changed",
        path.display()
    )
}

/// `splitstore ARGS`, run as user 65534 where this is root (root reads and writes whatever the modes say).
fn splitstore_as_user(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = splitstore();
    cmd.args(args);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    output_within(&mut cmd, Duration::from_secs(60))
}

/// A temporary folder (open to all, as `/home` is) holding an empty data directory of user 65534, for a test
/// of root's commands on a user's files; `None`, said, where this is not root (others cannot give files away).
fn users_data_dir_as_root() -> Option<(tempfile::TempDir, PathBuf)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: nothing to check");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data = data_dir(dir.path());
    give_to_nobody(&data);
    Some((dir, data))
}

/// A backup folder of the user's own made read-only (`chmod 555`): a backup into it said to "run as the user
/// that owns" the folder, which is this user. It names the `chmod` that lets this user in.
#[test]
fn a_folder_of_this_users_own_that_shuts_it_out_names_the_chmod() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let backups = data.join("backups");
    fs::create_dir(&backups).unwrap();
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        // Root writes everything: the folders and files go to nobody, who runs the backup.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        give_to_nobody(&data);
    }
    let as_user = splitstore_as_user;
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o555)).unwrap();
    let out = as_user(&["backup", "--data-dir", utf8(&data)]);
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    let chmod = format!("`chmod u+rwx {}`", backups.display());
    assert!(stderr.contains(&chmod), "{chmod} not in {stderr}");
    assert!(!stderr.contains("run as the user that owns"), "{stderr}");
    assert_eq!(fs::read_dir(&backups).unwrap().count(), 0, "nothing written");

    // The data directory itself, given as a link to it (on another disk), shut out where SQLite must make
    // the -wal and -shm: the link's own mode said nothing, and the remedy was to run as its owner.
    let daemon = as_user(&["daemon", "--data-dir", utf8(&data), "--events", "5"]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert!(
        !data.join("activity.db-wal").exists(),
        "left by a clean stop: nothing to check"
    );
    let linked = dir.path().join("linked");
    symlink(&data, &linked).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o500)).unwrap();
    let out = as_user(&["daemon", "--data-dir", utf8(&linked), "--events", "5"]);
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let chmod = format!("`chmod u+rwx {}`", data.display());
    assert!(texts(&out).1.contains(&chmod), "{chmod} not in {out:?}");
}

/// `splitstore ARGS` run with the folder `dir` mounted read-only over itself (a bind mount in a private
/// mount namespace of its own: `unshare -rm`, which needs no privilege), as a snapshot or a backup disk is;
/// `None` on a machine without user namespaces.
fn splitstore_on_read_only_mount(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    let namespaces = Command::new("unshare").args(["-rm", "true"]).status();
    if !namespaces.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this machine gives no user namespace (`unshare -rm true` fails)");
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_splitstore"))
        .args(args);
    Some(output_within(&mut cmd, Duration::from_secs(60)))
}

/// A data directory on a file system mounted read-only (a snapshot, a backup disk) of owners that stopped:
/// no `-wal` or `-shm` beside the files, which a reader of a WAL database must create. Doctor, report and
/// backup said "SQLite error ... unable to open database file", doctor's remedy was doctor again, and the
/// owners' own remedy there ("doctor, report and backup --to a writable folder work on it as it is") was
/// untrue. They read it now; a `-wal` left without its `-shm`, which SQLite cannot read there, is said as
/// such, with the copy that reads it.
#[test]
fn a_data_directory_on_a_read_only_mount_is_read_by_doctor_report_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 300);
    // As a copy that left out each `-shm` (as backup tools are told to) holds it: the owners stopped, each
    // `-wal` empty (their readers leave one).
    for db in ["activity.db", "config.db"] {
        let wal = data.join(format!("{db}-wal"));
        assert_eq!(
            fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
            0,
            "the owners stopped cleanly"
        );
        fs::remove_file(data.join(format!("{db}-shm"))).unwrap();
    }
    let d = utf8(&data);
    let Some(doctor) = splitstore_on_read_only_mount(&data, &["doctor", "--data-dir", d]) else {
        return;
    };
    assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
    assert!(texts(&doctor).0.ends_with("\nhealthy\n"), "{doctor:?}");
    let report = splitstore_on_read_only_mount(&data, &["report", "--json", "--data-dir", d]).unwrap();
    assert!(report.status.success(), "{report:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&report.stdout).unwrap();
    let sessions: i64 = rows.iter().map(|r| r["sessions"].as_i64().unwrap()).sum();
    assert_eq!(sessions, 3, "{rows:?}");
    let to = dir.path().join("to");
    let backup = splitstore_on_read_only_mount(&data, &["backup", "--data-dir", d, "--to", utf8(&to)]).unwrap();
    assert!(backup.status.success(), "{backup:?}");
    assert_eq!(backup_paths(&backup).len(), 2, "{backup:?}");
    let owner = splitstore_on_read_only_mount(&data, &["daemon", "--events", "1", "--data-dir", d]).unwrap();
    assert_eq!(owner.status.code(), Some(2), "{owner:?}");
    assert!(texts(&owner).1.contains("is mounted read-only"), "{owner:?}");

    // The owner killed, its -shm then lost (a copy of the file and its -wal alone).
    let activity = data.join("activity.db");
    let wal = store_core::files::with_suffix(&activity, "-wal");
    // Killed once it has acknowledged an event: a -wal that merely holds frames may hold only the session
    // the daemon started, and the copy below would then read no more events than the file.
    let mut daemon = spawn_splitstore(["daemon", "--seconds", "60", "--print-acks", "--data-dir", d]);
    let mut acks = BufReader::new(daemon.stdout.take().unwrap()).lines();
    assert!(
        acks.next().unwrap().unwrap().starts_with("ack "),
        "the daemon acknowledges an event"
    );
    kill9(&mut daemon);
    assert!(
        fs::metadata(&wal).unwrap().len() > 32,
        "the kill left commits in the -wal"
    );
    fs::remove_file(store_core::files::with_suffix(&activity, "-shm")).unwrap();
    let said = format!(
        "{a} cannot be read where it is: {a}-wal beside it holds commits not yet in the file, which SQLite reads \
         only with a {a}-shm it creates beside them, and the file system holding them is mounted read-only. What \
         to do: copy the data directory to a writable disk, its -wal files with it (`cp -a {d} COPY`), and run the \
         command on the copy",
        a = activity.display()
    );
    let report = splitstore_on_read_only_mount(&data, &["report", "--data-dir", d]).unwrap();
    assert_eq!(report.status.code(), Some(2), "{report:?}");
    assert!(
        texts(&report).1.starts_with(&format!("splitstore report: {said}")),
        "{report:?}"
    );
    let doctor = splitstore_on_read_only_mount(&data, &["doctor", "--json", "--data-dir", d]).unwrap();
    let health: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(
        health["databases"][0]["problems"][0]["code"], "read_only_directory",
        "{health}"
    );
    // The copy the remedy names reads it, every event of the -wal in it.
    let copy = copy_data_dir(&data, dir.path().join("copy"));
    let events = count_rows(&copy.join("activity.db"), "activity_events");
    assert!(events > 300, "{events}");
}

/// Before, a busy timeout past `i32::MAX` ms (24.8 days; an app meaning "wait as long as it takes") made
/// rusqlite panic "too big" inside `splitstore::config_store::ConfigStore::open_with` / `splitstore::activity_store::ActivityWriter::open_with`.
#[test]
fn a_busy_timeout_past_what_sqlite_takes_waits_its_longest_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let open = splitstore::config_store::OpenOptions {
        busy_timeout: std::time::Duration::MAX,
        ..Default::default()
    };
    let mut store = splitstore::config_store::ConfigStore::open_with(&dir.path().join("config.db"), &open).unwrap();
    store
        .create_project(&splitstore::config_store::NewProject::named("p"))
        .unwrap();
    let options = splitstore::activity_store::WriterOptions {
        open,
        ..Default::default()
    };
    let mut writer =
        splitstore::activity_store::ActivityWriter::open_with(&dir.path().join("activity.db"), &options).unwrap();
    writer
        .start_session(&splitstore::activity_store::NewSession::new("a", chrono::Utc::now()))
        .unwrap();
    writer
        .checkpoint(splitstore::activity_store::CheckpointMode::Truncate)
        .unwrap();
    writer.prune_before(chrono::Utc::now()).unwrap();
}

/// A data directory below a linked folder (`~/.local/share` linked to another disk; macOS's `/tmp` and
/// `/var` are links) is split, recorded, reported, checked, backed up and restored like any other. SQLite's
/// `SQLITE_OPEN_NOFOLLOW`, there for a link in a database's own place, refuses a link anywhere in the path:
/// the daemon's first start said "unable to open database file" and left an empty activity.db, and every
/// other command failed alike. A backup folder named with `--to` that is a link was refused, its remedy to
/// remove the user's link; a link in place of the data directory's own `backups` still is.
#[test]
fn a_data_directory_below_a_linked_folder_is_split_recorded_backed_up_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    fs::create_dir(&disk).unwrap();
    symlink(&disk, dir.path().join("share")).unwrap();
    let data = data_dir(&dir.path().join("share"));
    let d = utf8(&data);
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &data.join("legacy.db")).unwrap();
    seed_data_dir(&data, 100);
    let activity = disk.join("data/activity.db");
    let split_and_recorded = count_rows(&activity, "activity_events");
    assert!(
        split_and_recorded > 100,
        "the legacy file's events were split: {split_and_recorded}"
    );
    assert!(count_rows(&disk.join("data/config.db"), "projects") > 0);

    let report = run_splitstore(["report", "--json", "--data-dir", d]);
    assert!(report.status.success(), "{report:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&report.stdout).unwrap();
    assert!(!rows.is_empty(), "{rows:?}");
    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(json["healthy"], true, "{json}");
    for db in ["activity.db", "config.db"] {
        assert_eq!(doctor_db_json(&json, db)["check"]["ok"], true, "{json}");
    }
    // A backup folder that is itself a link, to an external disk say, is the user's too: backups go through
    // it, and a restore reads them back. One in the data directory's own place is refused (below).
    let usb = dir.path().join("usb");
    fs::create_dir(&usb).unwrap();
    let backups = dir.path().join("share/backups");
    symlink(&usb, &backups).unwrap();
    let backup = run_splitstore(["backup", "--data-dir", d, "--to", utf8(&backups)]);
    assert!(backup.status.success(), "{backup:?}");
    assert_eq!(backup_paths(&backup).len(), 2, "{backup:?}");
    assert!(
        backup_paths(&backup)
            .iter()
            .all(|b| usb.join(b.file_name().unwrap()).is_file()),
        "{backup:?}"
    );

    let more = run_splitstore(["daemon", "--events", "50", "--data-dir", d]);
    assert!(more.status.success(), "{more:?}");
    assert_eq!(count_rows(&activity, "activity_events"), split_and_recorded + 50);
    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backups)]);
    assert!(restore.status.success(), "{restore:?}");
    assert_eq!(
        count_rows(&activity, "activity_events"),
        split_and_recorded,
        "the backup's rows are back"
    );
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert_eq!(
        texts(&repair).0,
        "activity.db: healthy, left alone\nconfig.db: healthy, left alone\n",
        "{repair:?}"
    );

    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, data.join("backups")).unwrap();
    let planted = run_splitstore(["backup", "--data-dir", d]);
    assert_eq!(planted.status.code(), Some(2), "{planted:?}");
    let said = format!("{} is a symbolic link", data.join("backups").display());
    assert!(texts(&planted).1.contains(&said), "{planted:?}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written through it"
    );
}

/// A database with a second name (`ln`, or `cp -al` of a data directory, taken for a copy) is said by its
/// owner's start and by doctor, with the command that finds the other names. A write through one name
/// changed the "copy" too, and an owner started on the other name wrote the same file beside another `-wal`
/// and under another lock file, which corrupts it; nothing said so. Said, not refused (the daemon records
/// on); removing the other name, which loses nothing, ends it.
#[test]
fn a_database_with_a_second_name_is_said_by_its_owners_start_and_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let d = utf8(&data);
    seed_data_dir(&data, 50);
    let activity = data.join("activity.db");
    let keep = dir.path().join("activity-keep.db");
    fs::hard_link(&activity, &keep).unwrap();
    let said = format!(
        "{} has 2 names (hard links): a write through one changes them all, so another name is no backup, and a \
         process opening the file by another name uses another -wal, -shm and lock file, which corrupts it",
        activity.display()
    );
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(daemon.status.success(), "said, not refused: {daemon:?}");
    let stderr = texts(&daemon).1;
    assert!(
        stderr.contains(&format!(
            "splitstore daemon: warning: {said}. What to do: find the other names (`find "
        )),
        "{stderr}"
    );
    assert_eq!(
        count_rows(&keep, "activity_events"),
        60,
        "the other name is no copy: {keep:?}"
    );

    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let problems = support::doctor_problems(&json, "activity.db");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (code, message, remedy) = &problems[0];
    assert_eq!((code.as_str(), message), ("hard_linked", &said));
    assert!(
        remedy.contains(&format!(" -xdev -samefile {}`) and remove them", activity.display())),
        "{remedy}"
    );
    assert!(support::doctor_problems(&json, "config.db").is_empty(), "{json}");

    fs::remove_file(&keep).unwrap();
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(!texts(&daemon).1.contains("hard links"), "{daemon:?}");
}

/// Folders of 60 bytes below `root` down to a path of `len` bytes.
fn path_of_length(root: &Path, len: usize) -> PathBuf {
    let mut path = root.to_path_buf();
    while path.as_os_str().len() < len {
        let room = len - path.as_os_str().len() - 1;
        path.push("d".repeat(room.clamp(1, 60)));
    }
    assert_eq!(path.as_os_str().len(), len);
    path
}

/// A database path longer than SQLite opens one by (504 bytes, so that its journal's name fits in 512) is
/// refused by its length, with the length a data directory may have, before anything is created: the
/// daemon's first start said "unable to open database file" after creating the data directory, an empty
/// activity.db and its lock file, and doctor said nothing of why. A backup folder alike.
#[test]
fn a_path_longer_than_sqlite_opens_is_refused_by_its_length_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let data = path_of_length(&root, 500);
    let activity = data.join("activity.db");
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&data)]);
    assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
    assert_eq!(
        texts(&daemon).1,
        format!(
            "splitstore daemon: {} is 512 bytes long (links in its folders resolved): SQLite opens a database by a \
             path of at most 504 bytes, so that the name of its journal fits in 512. What to do: use a folder with a \
             shorter path (move one that holds files whole, its owners stopped): a data directory's files and backups \
             add up to 100 bytes to its path, so keep its path under 404 bytes (a link to it does not shorten it); \
             nothing was changed\n",
            activity.display()
        )
    );
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "nothing was created");

    let data = path_of_length(&root, 400);
    seed_data_dir(&data, 10);
    let to = data.join("b".repeat(80));
    let backup = run_splitstore(["backup", "--data-dir", utf8(&data), "--to", utf8(&to)]);
    assert_eq!(backup.status.code(), Some(2), "{backup:?}");
    assert!(
        texts(&backup).1.contains("bytes long (links in its folders resolved)"),
        "{backup:?}"
    );
    assert!(!to.exists(), "nothing was created");
    let backup = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert!(
        backup.status.success(),
        "the data directory's own backups fit: {backup:?}"
    );

    // Moved whole below a longer path: doctor names it (it said only "unable to open database file").
    let moved = path_of_length(&root.join("e"), 500);
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&data, &moved).unwrap();
    let doctor = run_splitstore(["doctor", "--json", "--data-dir", utf8(&moved)]);
    let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for db in ["activity.db", "config.db"] {
        let codes: Vec<String> = support::doctor_problems(&json, db).into_iter().map(|p| p.0).collect();
        assert_eq!(codes, ["path_too_long"], "{db}: {json}");
    }
}

/// A database given as the data directory (`--data-dir DIR/activity.db`) is said by the daemon and server
/// as every other command says it: pass the folder that holds it. They said "is a regular file, not a
/// directory" with the remedy to "remove it (or move it away)": the user's database. A program opening a
/// store below a file that holds data gets a remedy that never says to delete it.
#[test]
fn a_database_given_as_the_data_directory_is_never_said_to_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 30);
    for (command, db) in [("daemon", "activity.db"), ("server", "config.db")] {
        let path = data.join(db);
        let out = run_splitstore([command, "--data-dir", utf8(&path), "--seconds", "0.1"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert_eq!(
            texts(&out).1,
            format!(
                "splitstore {command}: {} is a file, not a directory. What to do: pass the --data-dir that holds \
                 activity.db and config.db\n",
                path.display()
            )
        );
    }
    let activity = data.join("activity.db");
    let err = activity_store::ActivityWriter::open(&activity.join("activity.db"))
        .err()
        .unwrap();
    assert_eq!(
        err.what(),
        format!("{} is a regular file, not a directory", activity.display())
    );
    assert_eq!(
        err.remedy(),
        format!(
            "nothing was written through it; it may hold data (a database given where its folder belongs, say), so \
             never delete it unread: give the folder to use instead ({} holds it), or move it away (`mv {a} \
             {a}.moved`) so that the folder can be created there",
            data.display(),
            a = activity.display()
        )
    );
    assert_eq!(count_rows(&activity, "activity_events"), 30);
}

/// A daemon started on a database's other name (a hard link in another folder) while one records through the
/// first is refused, naming the other name and the process holding it. The owner lock goes by name, as
/// SQLite's `-wal` and `-shm` do: both daemons ran, each the only writer of the same file beside its own log,
/// which corrupts it. With the lock file linked too (`cp -al` of a data directory) the second was refused as
/// locked by the first's pid, exit 75, and a supervisor started it again and again.
#[test]
fn an_owner_is_refused_while_another_process_has_its_file_open_by_another_name() {
    for lock_linked_too in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let data = data_dir(dir.path());
        seed_data_dir(&data, 50);
        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o700)).unwrap();
        let linked: &[&str] = if lock_linked_too {
            &["activity.db", "activity.db.lock"]
        } else {
            &["activity.db"]
        };
        for name in linked {
            fs::hard_link(data.join(name), other.join(name)).unwrap();
        }
        let first = spawn_splitstore(
            [
                "daemon",
                "--print-acks",
                "--rate",
                "200",
                "--seconds",
                "60",
                "--data-dir",
            ]
            .into_iter()
            .chain([utf8(&other)]),
        );
        let mut first = store_core::testing::KillOnDrop(first);
        let (acks, _reader) = support::lines_of(first.0.stdout.take().unwrap());
        let ack = acks
            .recv_timeout(Duration::from_secs(30))
            .expect("the first daemon records");
        assert!(ack.starts_with("ack "), "{ack}");

        let refused = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&data)]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "lock linked too: {lock_linked_too}: {refused:?}"
        );
        let stderr = texts(&refused).1;
        let said = format!(
            "splitstore daemon: {} is open by another name, {}, in pid {}",
            data.join("activity.db").display(),
            other.join("activity.db").display(),
            first.0.id()
        );
        assert!(stderr.starts_with(&said), "{stderr}");
        let named = format!(
            ": the same file (a hard link), whose -wal, -shm and lock file go by that name, so two processes \
             writing it by its two names would corrupt it. What to do: stop pid {} first; then remove the other \
             name (`rm {}`: it is this same file, so nothing is lost) and start again; nothing was written\n",
            first.0.id(),
            other.join("activity.db").display()
        );
        assert!(stderr.ends_with(&named), "{stderr}");

        support::signal(&first.0, libc::SIGTERM);
        assert!(store_core::testing::wait_within(&mut first.0, Duration::from_secs(30)).success());
        support::assert_integrity_ok(&data.join("activity.db"));
    }
}

/// A link planted in place of the data directory's `backups` folder (by another user of a world-writable
/// parent, or by mistake) is refused by an upgrade's backup too: the copy kept before a migration went
/// through it, into `backups/pre-migration` wherever the link pointed.
#[test]
fn an_upgrades_backup_is_refused_through_a_link_in_place_of_the_backups_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let (db, older) = support::activity_db_one_version_back(&data);
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, data.join("backups")).unwrap();
    let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", utf8(&data)]);
    assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
    let said = format!("{} is a symbolic link", data.join("backups").display());
    assert!(texts(&daemon).1.contains(&said), "{daemon:?}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written through it"
    );
    assert_eq!(
        store_core::testing::user_version_of(&db),
        older,
        "not migrated without its copy"
    );
}

/// A database its owner may not write (`chmod 400`, a copy off a read-only disk): SQLite opened it for
/// reading only, without a word, and the daemon's first write failed with "attempt to write a readonly
/// database", its remedy to run doctor, which said nothing of it; a `-shm` a reader then made beside it took
/// the file's mode, and the daemon kept failing after the file alone was given back. Now the start refuses
/// it naming the file and the `chmod` for it and the `-wal`/`-shm` beside it; doctor says the same; run as said,
/// the daemon records. Root writes any mode: as root, the directory goes to user 65534 and the commands run as it;
/// doctor run as root (under sudo, to look at a user's files) said nothing, and now reads the modes for their owner.
#[test]
fn a_database_made_read_only_is_refused_with_the_chmod_that_lets_its_owner_write_again() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        give_to_nobody(&data);
    }
    let as_user = |program: &str, args: &[&str]| {
        let mut cmd = match program {
            "splitstore" => splitstore(),
            other => Command::new(other),
        };
        cmd.args(args);
        if is_root {
            cmd.uid(65534).gid(65534);
        }
        output_within(&mut cmd, Duration::from_secs(60))
    };
    let (d, db) = (utf8(&data), data.join("activity.db"));
    fs::set_permissions(&db, fs::Permissions::from_mode(0o400)).unwrap();
    // A reader's look, as a user checking what is wrong: it makes the -wal and -shm beside the file.
    let doctor = texts(&as_user("splitstore", &["doctor", "--data-dir", d])).0;
    assert!(
        doctor.contains(&format!(
            "activity.db [permission_denied]: this user may not write {}",
            db.display()
        )),
        "{doctor}"
    );
    let daemon = as_user("splitstore", &["daemon", "--data-dir", d, "--events", "5"]);
    assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
    let stderr = texts(&daemon).1;
    let db_text = db.display().to_string();
    assert!(
        stderr.starts_with(&format!(
            "splitstore daemon: this user may not write {db_text}. What to do: this user owns {db_text}, and its mode \
             shuts this user out (see `ls -ld {db_text}`): `chmod u+rw {db_text}"
        )),
        "{stderr}"
    );
    let chmod = stderr.split('`').find(|part| part.starts_with("chmod ")).unwrap();
    // The start's failure is recorded; doctor says it once, as it stands now (the record's remedy was said
    // before the -wal doctor's look makes, with the file's mode).
    let doctor = texts(&as_user("splitstore", &["doctor", "--data-dir", d])).0;
    assert_eq!(doctor.matches("activity.db [permission_denied]").count(), 1, "{doctor}");
    if is_root {
        // Doctor under sudo, which writes whatever the modes say: it reads them for the files' owner.
        let doctor = run_splitstore(["doctor", "--data-dir", d]);
        assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
        let said = format!(
            "activity.db [permission_denied]: user 65534 owns {db_text} and may not write it: its mode shuts its \
             owner out\n    fix: `{chmod}` (see `ls -ld {db_text}`; as root or user 65534)"
        );
        assert!(texts(&doctor).0.contains(&said), "{doctor:?}");
        assert_eq!(
            texts(&doctor).0.matches("activity.db [permission_denied]").count(),
            1,
            "{doctor:?}"
        );
    }
    let given_back = as_user("sh", &["-c", chmod]);
    assert!(given_back.status.success(), "{chmod}: {given_back:?}");
    let daemon = as_user("splitstore", &["daemon", "--data-dir", d, "--events", "5"]);
    assert!(daemon.status.success(), "after `{chmod}`: {daemon:?}");
    assert_eq!(count_rows(&db, "activity_events"), 15);
}

/// An immutable (`chattr +i`) or append-only (`chattr +a`) database refuses every writer, root included, and
/// SQLite opened it for reading only: the daemon failed at its first write ("attempt to write a readonly
/// database"), doctor silent. Now the start says which attribute, with the `chattr` that clears it, and
/// doctor says the same; cleared, the daemon records. So for an immutable data directory, where SQLite could
/// not make the `-wal` and `-shm` ("unable to open database file", doctor's remedy to run doctor). Where this
/// user or the file system cannot set the attribute (not root; tmpfs before Linux 6.0), there is nothing to check.
#[test]
fn an_immutable_or_append_only_database_is_refused_with_the_chattr_that_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let (d, db) = (utf8(&data), data.join("activity.db"));
    let db_text = db.display().to_string();
    let mut events = 10;
    for (flag, name, letter) in [(FS_IMMUTABLE_FL, "immutable", 'i'), (FS_APPEND_FL, "append-only", 'a')] {
        if !set_attribute(&db, flag, true) {
            eprintln!("{name} cannot be set here: nothing to check");
            return;
        }
        let cleared = Cleared(&db, flag);
        let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
        assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
        assert_eq!(
            texts(&daemon).1.trim_end(),
            format!(
                "splitstore daemon: this user may not write {db_text}. What to do: {db_text} is {name} (see `lsattr -d \
                 {db_text}`), which refuses every writer, root included: `sudo chattr -{letter} {db_text}`, where it \
                 was not made so on purpose"
            )
        );
        let doctor = texts(&run_splitstore(["doctor", "--data-dir", d])).0;
        assert!(
            doctor.contains(&format!(
                "activity.db [permission_denied]: this user may not write {db_text}\n    fix: {db_text} is {name}"
            )),
            "{doctor}"
        );
        drop(cleared);
        let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
        assert!(daemon.status.success(), "{name} cleared: {daemon:?}");
        events += 5;
        assert_eq!(count_rows(&db, "activity_events"), events);
    }
    // An immutable data directory: SQLite cannot make the -wal and -shm there ("unable to open database
    // file", for the daemon, doctor and report alike). The daemon, the last to close, removes them.
    let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
    assert!(daemon.status.success(), "{daemon:?}");
    events += 5;
    for sidecar in ["activity.db-wal", "activity.db-shm"] {
        assert!(
            !data.join(sidecar).exists(),
            "{sidecar} is left by a clean stop: nothing to check"
        );
    }
    assert!(set_attribute(&data, FS_IMMUTABLE_FL, true));
    let cleared = Cleared(&data, FS_IMMUTABLE_FL);
    let refusal = format!(
        "this user may not create the -wal and -shm in {d}. What to do: {d} is immutable (see `lsattr -d {d}`), \
         which refuses every writer, root included: `sudo chattr -i {d}`, where it was not made so on purpose"
    );
    let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
    assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
    assert_eq!(texts(&daemon).1.trim_end(), format!("splitstore daemon: {refusal}"));
    let report = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(texts(&report).1.trim_end(), format!("splitstore report: {refusal}"));
    // Given as a link to it (the data directory on another disk): asked, and named, as the folder itself
    // (the link's own attributes say nothing; it was "unable to open database file").
    let linked = dir.path().join("linked");
    symlink(&data, &linked).unwrap();
    let daemon = run_splitstore(["daemon", "--data-dir", utf8(&linked), "--events", "5"]);
    assert_eq!(texts(&daemon).1.trim_end(), format!("splitstore daemon: {refusal}"));
    let doctor = texts(&run_splitstore(["doctor", "--data-dir", d])).0;
    assert_eq!(
        doctor
            .matches(&format!(
                "activity.db [permission_denied]: this user may not create the -wal and -shm in {d}\n"
            ))
            .count(),
        1,
        "{doctor}"
    );
    drop(cleared);
    let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
    assert!(daemon.status.success(), "immutable cleared: {daemon:?}");
    assert_eq!(count_rows(&db, "activity_events"), events + 5);
}

/// A backup its user marked immutable to keep it for good (`chattr +i`): rotation's removal of it failed
/// every later `backup` (exit 2, after the new backup was taken). It is kept now, not counted, and the rest
/// rotate as `--keep` says.
#[test]
fn a_backup_marked_immutable_is_kept_by_rotation_and_backups_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let d = utf8(&data);
    let backup = || {
        let out = run_splitstore(["backup", "--data-dir", d, "--keep", "2"]);
        assert!(out.status.success(), "{out:?}");
        backup_paths(&out)
    };
    let pinned = backup()[0].clone();
    assert!(
        pinned.file_name().unwrap().to_string_lossy().starts_with("activity-"),
        "{pinned:?}"
    );
    if !set_attribute(&pinned, FS_IMMUTABLE_FL, true) {
        eprintln!("immutable cannot be set here: nothing to check");
        return;
    }
    let _cleared = Cleared(&pinned, FS_IMMUTABLE_FL);
    let taken: Vec<PathBuf> = (0..3).map(|_| backup()[0].clone()).collect();
    let mut kept: Vec<PathBuf> = fs::read_dir(data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("activity-"))
        .collect();
    kept.sort();
    assert_eq!(kept, vec![pinned.clone(), taken[1].clone(), taken[2].clone()]);
}

/// A private folder its owners may not write (`chattr +i`, or a mode without `u+w`): the owners run without
/// their records (best effort: the counters that keep ids from being handed out twice after a restore, the
/// failure doctor shows), and nothing said so; doctor was healthy. Doctor names it now with its remedy.
#[test]
fn a_private_folder_that_cannot_be_written_is_said_by_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let private = data.join(".private");
    if !set_attribute(&private, FS_IMMUTABLE_FL, true) {
        eprintln!("immutable cannot be set here: nothing to check");
        return;
    }
    let cleared = Cleared(&private, FS_IMMUTABLE_FL);
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(&data)]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let p = private.display();
    assert!(
        texts(&doctor).0.contains(&format!(
            "activity.db [permission_denied]: this user may not write {p}\n    fix: {p} is immutable (see `lsattr -d \
             {p}`), which refuses every writer, root included: `sudo chattr -i {p}`"
        )),
        "{doctor:?}"
    );
    drop(cleared);
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(&data)]);
    assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
}

/// A folder made append-only (`chattr +a`: files may be added to it, none renamed or removed) let a backup
/// or a restore copy the whole database into it, then refused the copy's rename into place and its removal:
/// the copy was left behind (`.partial` with its `-journal`; `.restoring` with its journal and lock file),
/// and the backup said "disk I/O error (extended code 2570)" of the database, with a remedy about free
/// space; doctor said nothing. Each command, and a split into such a folder, is refused now before it copies
/// anything, with the `chattr` that clears the folder, as doctor says; and works once it is cleared.
#[test]
fn a_folder_made_append_only_is_refused_before_anything_is_copied_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    seed_data_dir(&data, 10);
    let d = utf8(&data);
    let backups = data.join("backups");
    let taken = run_splitstore(["backup", "--data-dir", d]);
    assert!(taken.status.success(), "{taken:?}");
    let refusal = |folder: &Path| {
        let f = folder.display();
        format!(
            "this user may not rename or remove files in {f}. What to do: {f} is append-only (see `lsattr -d {f}`), \
             which refuses every writer, root included: `sudo chattr -a {f}`, where it was not made so on purpose"
        )
    };
    if !set_attribute(&backups, FS_APPEND_FL, true) {
        eprintln!("append-only cannot be set here: nothing to check");
        return;
    }
    let cleared = Cleared(&backups, FS_APPEND_FL);
    let before = listing(&backups);
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert_eq!(backup.status.code(), Some(2), "{backup:?}");
    assert_eq!(
        texts(&backup).1.trim_end(),
        format!("splitstore backup: {}", refusal(&backups))
    );
    assert_eq!(listing(&backups), before, "nothing made in the backup folder");
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let b = backups.display();
    assert!(
        texts(&doctor).0.contains(&format!(
            "activity.db [permission_denied]: this user may not rename or remove files in {b}\n    fix: {b} is \
             append-only"
        )),
        "{doctor:?}"
    );
    drop(cleared);
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(0), "cleared: {doctor:?}");

    let daemon = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
    assert!(daemon.status.success(), "{daemon:?}");
    let db = data.join("activity.db");
    assert!(set_attribute(&data, FS_APPEND_FL, true));
    let cleared = Cleared(&data, FS_APPEND_FL);
    let before = listing(&data);
    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backups)]);
    assert_eq!(restore.status.code(), Some(2), "{restore:?}");
    assert_eq!(
        texts(&restore).1.trim_end(),
        format!("splitstore restore: {}", refusal(&data))
    );
    assert_eq!(listing(&data), before, "nothing made in the data directory");
    // Given as a link to it (the data directory on another disk): asked, and named, as the folder itself.
    let linked = dir.path().join("linked");
    symlink(&data, &linked).unwrap();
    let restore = run_splitstore(["restore", "--data-dir", utf8(&linked), "--from", utf8(&backups)]);
    assert_eq!(
        texts(&restore).1.trim_end(),
        format!("splitstore restore: {}", refusal(&data))
    );
    assert_eq!(listing(&data), before, "nothing made through the link");
    assert_eq!(count_rows(&db, "activity_events"), 15, "nothing restored");
    drop(cleared);
    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backups)]);
    assert!(restore.status.success(), "cleared: {restore:?}");
    assert_eq!(count_rows(&db, "activity_events"), 10, "the backup restored");

    let fresh = data_dir(&dir.path().join("split"));
    let legacy = dir.path().join("legacy.db");
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &legacy).unwrap();
    assert!(set_attribute(&fresh, FS_APPEND_FL, true));
    let cleared = Cleared(&fresh, FS_APPEND_FL);
    let err = migrate_split::split(&legacy, &fresh, &Default::default()).unwrap_err();
    assert_eq!(err.to_string(), refusal(&fresh));
    assert!(listing(&fresh).is_empty(), "nothing made: {:?}", listing(&fresh));
    drop(cleared);
    migrate_split::split(&legacy, &fresh, &Default::default()).unwrap();
}

/// The first start after the upgrade run as root (`sudo`) on a user's data directory, which holds only the
/// legacy file: no database or lock file was there to be refused, so the split wrote root's 0600 files
/// (both databases, lock files, records), which the user's daemon and server could not open. The legacy file
/// counts now as an owner's files do: refused before anything is created, naming the user to run as; run as
/// that user, the split goes through. Root only: other users cannot make a file belong to someone else.
#[test]
fn a_split_run_as_root_of_a_users_legacy_file_is_refused_and_creates_nothing() {
    use std::os::unix::process::CommandExt;
    let Some((_dir, data)) = users_data_dir_as_root() else {
        return;
    };
    let legacy = data.join("legacy.db");
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &legacy).unwrap();
    fs::set_permissions(&legacy, fs::Permissions::from_mode(0o600)).unwrap();
    give_to_nobody(&legacy);
    let bytes = fs::read(&legacy).unwrap();
    let d = utf8(&data);
    let out = run_splitstore(["daemon", "--data-dir", d, "--events", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(texts(&out).1.trim_end(), refused_as_root("daemon", &legacy));
    let names: Vec<_> = fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["legacy.db"], "nothing created");
    assert_eq!(fs::read(&legacy).unwrap(), bytes, "the legacy file unchanged");
    let mut cmd = splitstore();
    cmd.args(["daemon", "--data-dir", d, "--events", "5"])
        .uid(65534)
        .gid(65534);
    let out = output_within(&mut cmd, Duration::from_secs(120));
    assert!(out.status.success(), "as its owner: {out:?}");
    for db in ["activity.db", "config.db"] {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(data.join(db)).unwrap().uid(), 65534, "{db} is the user's");
    }
    assert!(
        count_rows(&data.join("config.db"), "projects") > 0,
        "the legacy rows split"
    );
}

/// Root's server started (`sudo`) on a user's data directory where only the user's daemon had run: no
/// config.db or lock file of its own was there to be refused, so it made root's 0600 config.db, lock file and
/// records, which the user's server could not open. The private folder, made by the first owner to run in a
/// directory, says whose it is: refused now before anything is created, naming the user to run as.
#[test]
fn an_owner_run_as_root_where_only_the_users_other_owner_ran_is_refused() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let Some((_dir, data)) = users_data_dir_as_root() else {
        return;
    };
    let d = utf8(&data);
    let mut cmd = splitstore();
    cmd.args(["daemon", "--data-dir", d, "--events", "5"])
        .uid(65534)
        .gid(65534);
    let out = output_within(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "the user's daemon: {out:?}");
    let out = run_splitstore(["server", "--data-dir", d, "--seconds", "0.1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let private = data.join(".private");
    assert_eq!(texts(&out).1.trim_end(), refused_as_root("server", &private));
    assert!(!data.join("config.db").exists(), "no config.db made");
    let mut todo = vec![data.clone()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        assert_eq!(
            fs::symlink_metadata(&p).unwrap().uid(),
            65534,
            "{} is root's",
            p.display()
        );
    }
}

/// `sudo` on a user's own data directory, empty or not made yet (a restore onto a new machine, the first
/// start): no file of the user's was there to be refused, so root's 0600 files were made, which the user's
/// processes could not open. Root run through `sudo` (`SUDO_UID` names the user who ran it) on a folder of
/// that user is refused now before anything is created. Root not run through `sudo` (a container's process,
/// on a folder of the host's user) still starts on a new directory. Root only.
#[test]
fn a_command_run_through_sudo_on_the_users_own_folder_is_refused_and_creates_nothing() {
    use std::os::unix::fs::MetadataExt;
    let Some((dir, users)) = users_data_dir_as_root() else {
        return;
    };
    let new_dir = users.join("app");
    let backups = dir.path().join("backups-elsewhere");
    let seeded = dir.path().join("seeded");
    seed_data_dir(&seeded, 10);
    assert!(
        run_splitstore(["backup", "--data-dir", utf8(&seeded), "--to", utf8(&backups)])
            .status
            .success()
    );
    for (args, command) in [
        (vec!["daemon", "--data-dir", utf8(&new_dir), "--events", "5"], "daemon"),
        (vec!["server", "--data-dir", utf8(&users), "--seconds", "0.1"], "server"),
        (
            vec!["restore", "--data-dir", utf8(&new_dir), "--from", utf8(&backups)],
            "restore",
        ),
    ] {
        let mut cmd = splitstore();
        cmd.args(&args).env("SUDO_UID", "65534");
        let out = output_within(&mut cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(texts(&out).1.trim_end(), refused_as_root(command, &users), "{args:?}");
        assert_eq!(fs::read_dir(&users).unwrap().count(), 0, "{args:?}: nothing created");
    }
    // Not through sudo: root's own process on a folder of another user (a container's), as before.
    let d = utf8(&users);
    let mut cmd = splitstore();
    cmd.args(["daemon", "--data-dir", d, "--events", "5"])
        .env_remove("SUDO_UID");
    let out = output_within(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::metadata(users.join("activity.db")).unwrap().uid(), 0);
    // The user's daemon there then names everything root left, in one `chown` (it named one a run: the
    // private folder, then the database, then its lock file); run as said, the daemon records.
    let out = splitstore_as_user(&["daemon", "--data-dir", d, "--events", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let chown = give_back_as_said(&texts(&out).1);
    let left = [".private", "activity.db", "activity.db.lock"].map(|name| users.join(name).display().to_string());
    assert!(chown.ends_with(&left.join(" ")), "{chown}");
    let out = splitstore_as_user(&["daemon", "--data-dir", d, "--events", "5"]);
    assert!(out.status.success(), "after `{chown}`: {out:?}");
}
