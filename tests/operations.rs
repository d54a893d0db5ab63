//! Operability of a data directory through the real `splitstore` binary: `doctor` in every state an operator
//! meets (healthy, owned by a running daemon, damaged, newer, behind, missing), `backup` while the daemon and
//! the server write at full speed, `restore` refused while an owner runs and exact afterwards, `repair` of a
//! damaged file, and no command ever printing a settings value.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rusqlite::types::Value;
use serde_json::Value as Json;
use splitstore::ProjectStatus;
use store_core::files::with_suffix;
use store_core::{LockState, OwnerLock};
use support::*;

/// A settings value of each kind, put in config.db by [`with_settings`]; no output may contain either.
const SECRET_VALUE: &str = "tok-8c41e9-secret-never-printed";
const PLAIN_VALUE: &str = "plain-setting-value-3e77";

/// The seeded data directory `<dir>/data` with one secret and one plain setting in config.db.
fn with_settings(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    seed_data_dir(&data, 3000);
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    store.set_secret_setting("sync.api_token", SECRET_VALUE).unwrap();
    store.set_setting("ui.greeting", PLAIN_VALUE).unwrap();
    data
}

/// [`with_settings`], then `splitstore backup`: the data directory, its activity.db and activity.db's backup.
fn backed_up(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = with_settings(dir);
    let out = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert!(out.status.success(), "{out:?}");
    let backup = backup_paths(&out)[0].clone();
    let db = data.join("activity.db");
    (data, db, backup)
}

/// [`backed_up`], then the daemon records 500 more events (5 sessions) after the backup.
fn backed_up_then_500_events(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (data, activity, backup) = backed_up(dir);
    let daemon = run_splitstore(["daemon", "--events", "500", "--data-dir", utf8(&data)]);
    assert!(daemon.status.success(), "{daemon:?}");
    (data, activity, backup)
}

/// [`backed_up_then_500_events`], then a second backup: the data directory, its activity.db, and
/// activity.db's backups before and after the 500 events.
fn backed_up_twice(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (data, activity, older) = backed_up_then_500_events(dir);
    let out = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert!(out.status.success(), "{out:?}");
    let newer = backup_paths(&out)[0].clone();
    (data, activity, older, newer)
}

/// Renames the backup `taken` as if the clock had been `years` off when it was taken (its name's time moved
/// by that many years, nothing else): the new path, and the year its name said before.
fn renamed_years_off(taken: &Path, years: i32) -> (PathBuf, i32) {
    use chrono::Datelike;
    let mut name = store_core::backup::BackupName::parse(&taken.file_name().unwrap().to_string_lossy()).unwrap();
    let year = name.taken_at.year();
    name.taken_at = name.taken_at.with_year(year + years).unwrap();
    let renamed = taken.with_file_name(name.file_name());
    fs::rename(taken, &renamed).unwrap();
    (renamed, year)
}

/// The path in the backup folder of the data directory `dir` of the backup `file` (of another data directory
/// that `dir` was copied from).
fn in_copy(dir: &Path, file: &Path) -> PathBuf {
    dir.join("backups").join(file.file_name().unwrap())
}

/// `splitstore repair` of `data`, whose damaged activity.db is newer than its newest good backup, its copy of
/// `backup`: refused as `backup_older`, naming that backup.
fn repair_refused_as_older_than(data: &Path, backup: &Path) {
    let out = run_splitstore(["repair", "--data-dir", utf8(data)]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "is damaged, and its newest good backup ({}) is older",
            in_copy(data, backup).display()
        )),
        "{stderr}"
    );
}

/// `splitstore repair --salvage` of `data`, which succeeds on top of its copy of `backup`: what it printed.
fn salvaged_over(data: &Path, backup: &Path) -> String {
    let out = run_splitstore(["repair", "--data-dir", utf8(data), "--salvage"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(" on top of the backup {}, ", in_copy(data, backup).display())),
        "{stdout}"
    );
    stdout
}

/// The schema version this build writes for the database named `name` (`activity.db`).
fn build_version(name: &str) -> u32 {
    splitstore::DATABASES
        .iter()
        .find(|s| s.file_name == name)
        .unwrap_or_else(|| panic!("no database {name}"))
        .end_version()
}

/// `splitstore doctor --data-dir DATA`: (exit code, human stdout) and the same for `--json`, parsed.
fn doctor(data: &Path) -> (i32, String, Json) {
    let human = run_splitstore(["doctor", "--data-dir", utf8(data)]);
    let json = run_splitstore(["doctor", "--json", "--data-dir", utf8(data)]);
    assert_eq!(human.status.code(), json.status.code(), "{human:?} {json:?}");
    let (stdout, stderr) = texts(&human);
    assert!(stderr.is_empty(), "doctor ran: {stderr}");
    (human.status.code().unwrap(), stdout, one_json_object(&json.stdout))
}

/// The output parses as exactly one JSON value, and it is an object.
#[track_caller]
fn one_json_object(bytes: &[u8]) -> Json {
    let values: Vec<Json> = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Json>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
    assert_eq!(values.len(), 1, "exactly one JSON value");
    assert!(values[0].is_object(), "{}", values[0]);
    values.into_iter().next().unwrap()
}

/// The one problem doctor reports about database `name` (code, message, remedy).
#[track_caller]
fn the_problem(doctor: &Json, name: &str) -> (String, String, String) {
    let found = doctor_problems(doctor, name);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// The section of doctor's table about `db`.
fn section<'a>(table: &'a str, db: &Path) -> &'a str {
    let start = table
        .find(&format!("\n{}\n", db.display()))
        .unwrap_or_else(|| panic!("no section for {} in\n{table}", db.display()));
    let rest = &table[start + 1..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    &rest[..end]
}

/// A process the test started; killed if the test fails before stopping it.
struct Running(Child);

impl Running {
    fn start(args: &[&str]) -> Running {
        let child = splitstore()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn splitstore");
        Running(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits until this process owns `db` (its lock file names its pid).
    fn wait_owner_of(&self, db: &Path) {
        let start = Instant::now();
        loop {
            if let Ok(LockState::Held { holder: Some(h) }) = OwnerLock::probe(db)
                && h.pid == self.pid()
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "pid {} did not take {} within 30 s",
                self.pid(),
                db.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then a bounded wait: a clean stop exits 0.
    fn stop(mut self) {
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "a clean stop: {status:?} {stderr}");
    }

    fn kill9(mut self) {
        kill9(&mut self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill9(&mut self.0);
        }
    }
}

/// Every table's rows (by rowid), except `skip`.
fn contents(db: &Path, skip: &[&str]) -> BTreeMap<String, Vec<Vec<Value>>> {
    let conn = read_only(db);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    tables
        .into_iter()
        .filter(|t| !skip.contains(&t.as_str()))
        .map(|t| {
            // A WITHOUT ROWID table (activity_totals) has no rowid: its primary key orders it.
            let without_rowid: bool = conn
                .query_row("SELECT wr FROM pragma_table_list WHERE name = ?1", [&t], |r| r.get(0))
                .unwrap();
            let order = if without_rowid { "" } else { " ORDER BY rowid" };
            let mut stmt = conn.prepare(&format!("SELECT * FROM {t}{order}")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            (t, rows)
        })
        .collect()
}

/// Files in `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// `<stem>-<YYYYMMDDTHHMMSS.mmmZ>-v<version>.db`: the name says which database, when, and which schema.
#[track_caller]
fn assert_backup_name(path: &Path, stem: &str, version: u32) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let time = name
        .strip_prefix(&format!("{stem}-"))
        .and_then(|r| r.strip_suffix(&format!("-v{version}.db")))
        .unwrap_or_else(|| panic!("{name} is not {stem}-<time>-v{version}.db"));
    assert!(
        NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%S%.3fZ").is_ok() && time.len() == 20,
        "{name}: {time} is not a UTC time"
    );
}

/// Overwrites the page in the middle of the file: structure damage only a check finds.
fn damage_middle_page(db: &Path) {
    let mut bytes = fs::read(db).unwrap();
    let mid = (bytes.len() / 4096 / 2) * 4096;
    bytes[mid..mid + 4096].fill(0x5A);
    fs::write(db, &bytes).unwrap();
}

/// A data directory at `data` seeded with 20 000 events, whose activity.db has the byte ranges `damage` picks
/// (page number, bytes of that 4 KiB page, from the events table's leaf pages in page order) overwritten.
/// Returns activity.db's path.
fn with_damaged_event_leaves(data: &Path, damage: impl Fn(&[i64]) -> Vec<(i64, std::ops::Range<usize>)>) -> PathBuf {
    seed_data_dir(data, 20_000);
    let db = data.join("activity.db");
    let leaves: Vec<i64> = query_column(
        &read_only(&db),
        "SELECT pageno FROM dbstat WHERE name = 'activity_events' AND pagetype = 'leaf' ORDER BY pageno",
    );
    let mut bytes = fs::read(&db).unwrap();
    for (page, range) in damage(&leaves) {
        let at = (page as usize - 1) * 4096;
        bytes[at + range.start..at + range.end].fill(0x5A);
    }
    fs::write(&db, &bytes).unwrap();
    db
}

/// SQLite returns quick_check's findings as one row of lines under a heading: doctor shows them one by one,
/// the first three in its message and up to ten in the JSON, without the heading.
#[test]
fn doctor_shows_quick_checks_findings_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 24 bytes inside the cells of four leaf pages: the file still reads, and quick_check lists what it finds.
    let db = with_damaged_event_leaves(&data, |leaves| {
        [1, 2, 3, 4]
            .map(|i| (leaves[i * leaves.len() / 5], 1000..1024))
            .to_vec()
    });

    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let (code_name, message, _) = the_problem(&json, "activity.db");
    assert_eq!(code_name, "corrupt");
    let findings = message
        .strip_prefix(&format!("{} is damaged: ", db.display()))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        !findings.contains('\n') && !findings.contains("*** in database"),
        "{findings}"
    );
    assert_eq!(findings.split("; ").count(), 3, "{findings}");
    let messages = doctor_db_json(&json, "activity.db")["check"]["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert!(messages.len() > 3 && messages.len() <= 10, "{messages:?}");
    assert!(
        messages.iter().all(|m| !m.as_str().unwrap().contains('\n')),
        "{messages:?}"
    );
}

/// A page so damaged that quick_check cannot walk it stops the check with an error: doctor names the file
/// once and says the check stopped, in SQLite's words; a backup of it is refused naming the database (not
/// the backup's temporary copy) and the repair of its data directory, and leaves nothing behind.
#[test]
fn doctor_and_backup_say_when_quick_check_stops_on_a_page_it_cannot_walk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A whole leaf page overwritten, its page type byte included.
    let db = with_damaged_event_leaves(&data, |leaves| vec![(leaves[leaves.len() / 2], 0..4096)]);

    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let (code_name, message, _) = the_problem(&json, "activity.db");
    assert_eq!(code_name, "corrupt");
    assert_eq!(
        message,
        format!(
            "{} is damaged: the check stopped: database disk image is malformed",
            db.display()
        )
    );
    assert!(section(&table, &db).contains("quick_check FAILED"), "{table}");

    let backups = data.join("backups");
    let report = splitstore::operations::backup(&data, &backups, 5).unwrap();
    assert_eq!(report.taken.len(), 1, "config.db's backup is taken all the same");
    let [err] = &report.failed[..] else {
        panic!("{report:?}")
    };
    assert_eq!(err.kind(), store_core::ErrorKind::Corrupt);
    assert_eq!(
        err.what(),
        format!(
            "{} is damaged: integrity_check of a fresh backup found: the check stopped: database disk image is \
             malformed",
            db.display()
        )
    );
    let repair = format!("`splitstore repair --data-dir {}`", data.display());
    assert!(err.remedy().contains(&repair), "{}", err.remedy());
    let left: Vec<_> = fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != store_core::FolderLock::path_for(&backups))
        .collect();
    assert_eq!(left, report.taken, "nothing of activity.db's backup is left");
}

/// An index out of step with its table (what a flipped bit in an index key leaves) passes `quick_check`, not
/// `integrity_check`, the check a restore verifies a backup with. A backup of it used to pass and, kept as the
/// newest, rotate out the last one a restore accepts (`--keep 1`: none left). It is refused now, nothing
/// rotated; `repair`, the refusal's remedy, checks as the backup does and puts that earlier backup back.
#[test]
fn a_backup_a_restore_would_refuse_is_not_taken_and_rotates_out_no_backup_that_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db, good) = backed_up(dir.path());
    let d = utf8(&data);
    // Each step on a connection of its own: a schema edited this way is read by the next connection.
    let declare = |columns: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(&format!(
                "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX activity_events_timestamp \
                 ON activity_events ({columns})' WHERE name = 'activity_events_timestamp';"
            ))
            .unwrap();
    };
    // Rows changed while the index is declared on another column: their entries keep the old keys.
    declare("event_type");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE activity_events SET timestamp_ms = timestamp_ms + 1 WHERE id <= 10",
            [],
        )
        .unwrap();
    declare("timestamp_ms");
    let conn = read_only(&db);
    assert_eq!(store_core::check::quick_check(&conn).unwrap(), Vec::<String>::new());
    assert!(!store_core::check::integrity_check(&conn).unwrap().is_empty());
    drop(conn);

    let out = run_splitstore(["backup", "--data-dir", d, "--keep", "1"]);
    let stderr = texts(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is damaged: integrity_check of a fresh backup found: ",
            db.display()
        )),
        "{stderr}"
    );
    assert!(good.exists(), "the backup a restore accepts is kept");
    assert_eq!(named(&data.join("backups"), "activity-").len(), 1, "and no other taken");

    let out = run_splitstore(["repair", "--data-dir", d]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&good.display().to_string()), "{stdout}");
    assert_eq!(
        store_core::check::integrity_check(&read_only(&db)).unwrap(),
        Vec::<String>::new()
    );
}

/// A folder whose backup of one file was cut short (a copy to a stick that did not finish): the restore put the
/// other file back alone, exit 0, and said nothing of the first. It refuses now, naming that backup, as it
/// refuses one damaged in a page; nothing changes.
#[test]
fn a_restore_from_a_folder_whose_backup_of_one_file_was_cut_short_restores_neither() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, _) = backed_up(dir.path());
    let d = utf8(&data);
    let stick = dir.path().join("stick");
    fs::create_dir(&stick).unwrap();
    for backup in named(&data.join("backups"), "") {
        fs::copy(&backup, stick.join(backup.file_name().unwrap())).unwrap();
    }
    let [config_backup] = &named(&stick, "config-")[..] else {
        panic!("one backup of config.db")
    };
    fs::File::options()
        .write(true)
        .open(config_backup)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let before = fs::read(&activity).unwrap();

    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&stick)]);
    let stderr = texts(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "splitstore restore: {} is damaged: it is not a readable SQLite database (",
            config_backup.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        fs::read(&activity).unwrap(),
        before,
        "activity.db is not restored alone"
    );
    assert!(named(&data, "activity.db.replaced").is_empty());
}

#[test]
fn doctor_on_a_healthy_data_dir_exits_0_with_a_short_table_and_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 0, "{table}");
    for db in ["activity.db", "config.db"] {
        let part = section(&table, &data.join(db));
        assert!(part.contains(&format!("file            {db} (")), "{part}");
        let v = build_version(db);
        assert!(part.contains(&format!("schema          {v} (build {v})")), "{part}");
        assert!(part.contains("check           quick_check ok\n"), "{part}");
        assert!(part.contains("foreign keys    ok"), "{part}");
        assert!(part.contains("owner           free"), "{part}");
        assert!(part.contains("newest backup   none"), "{part}");
    }
    assert!(section(&table, &data.join("activity.db")).contains("activity_events=3000 activity_sessions=30"));
    assert!(table.ends_with("\nhealthy\n"), "{table}");
    assert!(table.lines().count() < 30, "a short table:\n{table}");

    assert_eq!(json["healthy"], true);
    assert_eq!(json["data_dir"], utf8(&data));
    let names: Vec<&str> = json["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["activity.db", "config.db"]);
    for name in names {
        let db = doctor_db_json(&json, name);
        assert_eq!(db["path"], utf8(&data.join(name)));
        assert_eq!(db["exists"], true);
        assert!(db["size_bytes"].as_u64().unwrap() > 0);
        assert_eq!(db["schema_version"], db["build_version"]);
        assert_eq!(db["pending_migrations"], 0);
        assert_eq!(db["check"]["ok"], true);
        assert_eq!(db["check"]["on_snapshot"], false);
        assert_eq!(db["foreign_key_violations"], 0);
        assert_eq!(db["owner"]["state"], "free");
        assert!(db["problems"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        doctor_db_json(&json, "activity.db")["row_counts"]["activity_events"],
        3000
    );
    assert_eq!(doctor_db_json(&json, "config.db")["row_counts"]["settings"], 3);
}

#[test]
fn doctor_names_the_running_daemon_and_checks_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let db = data.join("activity.db");
    let daemon = Running::start(&["daemon", "--rate", "2000", "--data-dir", utf8(&data)]);
    daemon.wait_owner_of(&db);

    let (code, table, json) = doctor(&data);
    assert_eq!(code, 0, "a running owner is healthy:\n{table}");
    let part = section(&table, &db);
    assert!(
        part.contains(&format!("owner           held by pid {} since ", daemon.pid())),
        "{part}"
    );
    assert!(
        part.contains("check           quick_check ok (on a snapshot)"),
        "{part}"
    );
    assert!(section(&table, &data.join("config.db")).contains("owner           free"));
    let activity = doctor_db_json(&json, "activity.db");
    assert_eq!(activity["owner"]["state"], "held");
    assert_eq!(activity["owner"]["holder"]["pid"], daemon.pid());
    assert_eq!(activity["check"]["on_snapshot"], true);
    assert_eq!(activity["check"]["ok"], true);
    daemon.stop();
}

#[test]
fn doctor_reports_a_damaged_activity_db_with_the_command_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, db, newest) = backed_up(dir.path());
    let d = utf8(&data);

    // A damaged page: quick_check finds it; the remedy names the newest backup.
    damage_middle_page(&db);
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let (code_name, message, remedy) = the_problem(&json, "activity.db");
    assert_eq!(code_name, "corrupt");
    assert!(
        message.starts_with(&format!("{} is damaged: ", db.display())),
        "{message}"
    );
    assert!(
        remedy.contains(&format!("`splitstore repair --data-dir {d}`"))
            && remedy.contains(&format!("the newest backup is {}", newest.display())),
        "{remedy}"
    );
    assert!(
        remedy.contains(&format!("`splitstore repair --data-dir {d}`")),
        "{remedy}"
    );
    assert_eq!(doctor_db_json(&json, "activity.db")["check"]["ok"], false, "{message}");
    assert!(doctor_problems(&json, "config.db").is_empty());
    assert!(section(&table, &db).contains("quick_check FAILED"), "{table}");
    assert!(
        table.contains(&format!(
            "1 problem(s):\n  activity.db [corrupt]: {message}\n    fix: {remedy}\n"
        )),
        "{table}"
    );

    // Not a database at all: the header is gone.
    let mut bytes = fs::read(&db).unwrap();
    bytes[..100].fill(0xEE);
    fs::write(&db, &bytes).unwrap();
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let found = doctor_problems(&json, "activity.db");
    assert_eq!(found[0].0, "not_a_database", "{found:?}");
    assert!(
        found[0].2.contains(&format!("`splitstore repair --data-dir {d}`")),
        "{found:?}"
    );
    assert!(table.contains("activity.db [not_a_database]"), "{table}");
}

#[test]
fn doctor_reports_a_schema_newer_than_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let db = data.join("activity.db");
    let build = activity_store::SCHEMA.end_version();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", build + 1))
        .unwrap();
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let (code_name, message, remedy) = the_problem(&json, "activity.db");
    assert_eq!(code_name, "schema_newer");
    assert_eq!(
        message,
        format!(
            "{} is at schema version {}, newer than this build supports ({build})",
            db.display(),
            build + 1
        )
    );
    assert!(remedy.contains("upgrade this one"), "{remedy}");
    assert_eq!(doctor_db_json(&json, "activity.db")["newer_than_build"], true);
    assert!(
        section(&table, &db).contains(&format!(
            "schema          {} (NEWER than this build's {build})",
            build + 1
        )),
        "{table}"
    );
}

/// A backup named by its file that a newer build took: said of the backup, with a remedy for the data
/// directory (the file's own remedy named the backups folder as `--data-dir`, and restored into it).
#[test]
fn a_restore_of_a_backup_file_a_newer_build_took_names_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up(dir.path());
    let d = utf8(&data);
    let build = activity_store::SCHEMA.end_version();
    rusqlite::Connection::open(&backup)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", build + 1))
        .unwrap();
    let before = fs::read(&activity).unwrap();
    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backup)]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "splitstore restore: the backup {} of {} is at schema version {}, newer than this build supports \
             ({build}): it was taken by a newer build. What to do: restore it with a build of schema {} or later, \
             or restore an older backup by naming its file with `splitstore restore --data-dir {d} --from FILE`; \
             nothing was changed",
            backup.display(),
            activity.display(),
            build + 1,
            build + 1
        )
    );
    assert_eq!(fs::read(&activity).unwrap(), before);
    assert!(
        named(&data.join("backups"), "activity.db").is_empty(),
        "nothing restored into the backups folder"
    );
}

#[test]
fn doctor_reports_pending_migrations_with_the_owner_command_and_the_owner_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    fs::create_dir_all(&data).unwrap();
    for schema in splitstore::DATABASES {
        drop(store_core::testing::open_at_version(&schema.path_in(&data), schema, 1).unwrap());
    }
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    for (name, command) in [("activity.db", "splitstore daemon"), ("config.db", "splitstore server")] {
        let (code_name, message, remedy) = the_problem(&json, name);
        assert_eq!(code_name, "migrations_pending");
        let v = build_version(name);
        assert!(
            message.contains(&format!(
                "is at schema 1, this build writes {v}: {} migration(s) pending",
                v - 1
            )),
            "{message}"
        );
        assert!(remedy.contains(&format!("`{command} --data-dir {d}`")), "{remedy}");
        assert_eq!(doctor_db_json(&json, name)["pending_migrations"], v - 1);
        assert!(
            section(&table, &data.join(name)).contains(&format!("schema          1 ({} pending, build {v})", v - 1)),
            "{table}"
        );
    }

    // Doing what the remedies say clears them (and the owners back the files up before migrating).
    assert!(
        run_splitstore(["daemon", "--events", "10", "--data-dir", d])
            .status
            .success()
    );
    assert!(
        run_splitstore(["server", "--seconds", "0.2", "--data-dir", d])
            .status
            .success()
    );
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 0, "{table}");
    for name in ["activity.db", "config.db"] {
        let backup = doctor_db_json(&json, name)["newest_backup"]["path"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            backup.contains("/backups/pre-migration/") && backup.ends_with("-v1.db"),
            "{backup}"
        );
    }
}

#[test]
fn doctor_cannot_run_without_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let error = failed_before_start(&["doctor", "--data-dir", utf8(&missing)]);
    assert_eq!(
        (&error["kind"], &error["path"]),
        (&Json::from("missing"), &Json::from(utf8(&missing)))
    );
    assert_eq!(
        error["message"],
        format!("{} does not exist", missing.display()),
        "{error}"
    );
    assert_eq!(
        error["remedy"],
        "pass the --data-dir that holds activity.db and config.db"
    );
    assert!(!missing.exists(), "doctor creates nothing");
}

/// `splitstore <args>`, which fails before the command starts, run without and with `--json`: exit 2 both
/// times, the same line on stderr, nothing on stdout without `--json` and with it one JSON object in the shape
/// `migrate-split --json` prints. Returns its `error`.
#[track_caller]
fn failed_before_start(args: &[&str]) -> Json {
    let plain = run_splitstore(args);
    let (stdout, stderr) = texts(&plain);
    assert_eq!(plain.status.code(), Some(2), "{args:?}: {stdout} {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    let out = run_splitstore(args.iter().chain(&["--json"]));
    let json = one_json_object(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {json}");
    assert_eq!(texts(&out).1, stderr, "{args:?}: the same line on stderr");
    assert_eq!(json["outcome"], "failed", "{args:?}: {json}");
    let error = json["error"].clone();
    assert_eq!(error["exit_code"], 2, "{args:?}: {json}");
    assert_eq!(
        stderr,
        format!(
            "splitstore {}: {}. What to do: {}\n",
            args[0],
            error["message"].as_str().unwrap(),
            error["remedy"].as_str().unwrap()
        ),
        "{args:?}: {json}"
    );
    assert_eq!(
        error["retryable"],
        error["kind"] == "missing" || error["kind"] == "io",
        "{json}"
    );
    error
}

/// report, repair and doctor given `--json` print a failure before they start (the data directory, the key
/// file, a report's range) as any other failure: one JSON object on stdout with its kind and the path it is
/// about, the line on stderr as without `--json`, exit 2.
#[test]
fn json_commands_print_a_failure_before_they_start_as_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let missing = dir.path().join("nowhere");
    let file = dir.path().join("a-file");
    fs::write(&file, "not a directory").unwrap();
    let no_key = dir.path().join("no-key");
    fs::write(&no_key, "nothex\n").unwrap();
    fs::set_permissions(&no_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let gone_key = dir.path().join("gone-key");
    // Without the `encryption` feature, any key file is refused before it is read.
    let key_kind = |kind| {
        if store_core::encryption_available() {
            kind
        } else {
            "encryption_unavailable"
        }
    };
    let d = utf8(&data);
    let cases = [
        (vec!["--data-dir", utf8(&missing)], "missing", &missing),
        (vec!["--data-dir", utf8(&file)], "unsafe_path", &file),
        (
            vec!["--data-dir", d, "--key-file", utf8(&no_key)],
            key_kind("invalid_input"),
            &no_key,
        ),
        (
            vec!["--data-dir", d, "--key-file", utf8(&gone_key)],
            key_kind("io"),
            &gone_key,
        ),
    ];
    for command in ["report", "repair", "doctor"] {
        for (args, kind, path) in &cases {
            let args: Vec<&str> = [command].iter().chain(args).copied().collect();
            let error = failed_before_start(&args);
            assert_eq!(
                (&error["kind"], &error["path"]),
                (&Json::from(*kind), &Json::from(utf8(path))),
                "{args:?}: {error}"
            );
        }
    }
    let error = failed_before_start(&["report", "--data-dir", d, "--from", "2024-02-01", "--to", "2024-01-01"]);
    assert_eq!(
        (&error["kind"], &error["path"], &error["message"]),
        (
            &Json::from("invalid_input"),
            &Json::from(d),
            &Json::from(
                "--from 2024-02-01T00:00:00Z is not before --to 2024-01-01T00:00:00Z: no session can start in that range"
            )
        ),
        "{error}"
    );
    // An argument no command takes: clap's message on stderr, and on stdout the same failure object, without
    // a path (no file is at fault). `--version` names the schema each file of this build is at.
    for command in ["report", "repair", "doctor", "backup", "restore"] {
        let out = run_splitstore([command, "--data-dir", d, "--json", "--no-such-flag"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        assert!(texts(&out).1.contains("Usage: splitstore"), "{command}: {out:?}");
        assert_eq!(
            one_json_object(&out.stdout),
            serde_json::json!({"outcome": "failed", "error": {
                "kind": "invalid_input", "path": null,
                "message": "unexpected argument '--no-such-flag' found",
                "remedy": "correct the arguments; the command's --help lists them",
                "retryable": false, "exit_code": 2,
            }}),
            "{command}"
        );
    }
    let version = run_splitstore(["--version"]);
    assert_eq!(
        texts(&version).0,
        format!(
            "splitstore {} (activity.db schema {}, config.db schema {})\n",
            env!("CARGO_PKG_VERSION"),
            build_version("activity.db"),
            build_version("config.db")
        )
    );
    assert_eq!(fs::read_dir(&data).unwrap().count(), 0, "nothing was created");
}

#[test]
fn backup_during_full_speed_writes_finishes_and_holds_every_row_committed_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let (activity, config) = (data.join("activity.db"), data.join("config.db"));
    let to = dir.path().join("backups");
    let daemon = Running::start(&["daemon", "--seconds", "60", "--batch", "1000", "--data-dir", d]);
    let server = Running::start(&["server", "--seconds", "60", "--data-dir", d]);
    daemon.wait_owner_of(&activity);
    server.wait_owner_of(&config);
    let rounds = |db: &Path| -> i64 {
        let text: String = read_only(db)
            .query_row("SELECT value FROM settings WHERE key = 'server.rounds'", [], |r| {
                r.get(0)
            })
            .unwrap_or_else(|_| "0".into());
        text.parse().unwrap()
    };
    // Both are writing: wait until activity.db holds a few hundred thousand events (tens of MB to copy).
    let start = Instant::now();
    while query_i64(&read_only(&activity), "SELECT count(*) FROM activity_events") < 200_000 || rounds(&config) < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon and the server are not writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (events_before, max_event_before) = {
        let c = read_only(&activity);
        (
            query_i64(&c, "SELECT count(*) FROM activity_events"),
            query_i64(&c, "SELECT max(id) FROM activity_events"),
        )
    };
    let (rounds_before, max_project_before) = (
        rounds(&config),
        query_i64(&read_only(&config), "SELECT max(id) FROM projects"),
    );
    let started = Instant::now();
    let out = output_within(
        splitstore().args(["backup", "--data-dir", d, "--to", utf8(&to)]),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    // Bound: 30 s (output_within). A debug build takes well under a second here; a paged backup, restarted by
    // every commit of the daemon, would not finish at all.
    let files = backup_paths(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    let events_after = query_i64(&read_only(&activity), "SELECT count(*) FROM activity_events");
    assert!(
        events_after > events_before,
        "the daemon kept committing while the backup ran"
    );
    eprintln!(
        "operations: backup of {} + {} bytes during full-speed writes took {took:?}; the daemon committed {} events \
         meanwhile",
        fs::metadata(&files[0]).unwrap().len(),
        fs::metadata(&files[1]).unwrap().len(),
        events_after - events_before
    );
    for (file, stem) in files.iter().zip(["activity", "config"]) {
        assert_eq!(file.parent().unwrap(), to);
        assert_backup_name(file, stem, build_version(&format!("{stem}.db")));
        assert_eq!(mode(file), 0o600, "{}", file.display());
        assert_integrity_ok(file);
        assert!(
            !with_suffix(file, "-wal").exists(),
            "a backup is one self-contained file"
        );
        assert_eq!(
            read_only(file)
                .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "delete"
        );
    }
    let a = read_only(&files[0]);
    assert!(query_i64(&a, "SELECT count(*) FROM activity_events") >= events_before);
    assert!(query_i64(&a, "SELECT max(id) FROM activity_events") >= max_event_before);
    assert!(rounds(&files[1]) >= rounds_before);
    assert!(query_i64(&read_only(&files[1]), "SELECT max(id) FROM projects") >= max_project_before);
    assert_eq!(
        read_only(&files[1])
            .query_row("SELECT value FROM settings WHERE key = 'sync.api_token'", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap(),
        format!("\"{SECRET_VALUE}\""),
        "the backup holds the user's settings"
    );

    // --keep K: two more backups with --keep 2 leave the newest two of each.
    let mut taken = files.clone();
    for _ in 0..2 {
        let out = run_splitstore(["backup", "--data-dir", d, "--to", utf8(&to), "--keep", "2"]);
        assert!(out.status.success(), "{out:?}");
        taken.extend(backup_paths(&out));
    }
    for (i, stem) in ["activity", "config"].into_iter().enumerate() {
        let kept = named(&to, &format!("{stem}-"));
        let newest: Vec<PathBuf> = {
            let mut mine: Vec<PathBuf> = taken.iter().skip(i).step_by(2).cloned().collect();
            mine.sort();
            mine.split_off(1)
        };
        assert_eq!(kept, newest, "{stem}: only the newest 2 are kept");
    }
    // The folder's lock file (0600, no data) beside them.
    assert_eq!(mode(&store_core::FolderLock::path_for(&to)), 0o600);
    assert_eq!(
        listing(&to).len(),
        5,
        "nothing else is left in the backup directory: {:?}",
        listing(&to)
    );
    daemon.stop();
    server.stop();
}

/// A seeded data directory (`DIR/data`) and its newest backup of activity.db, a page of which is damaged.
fn seeded_with_a_damaged_backup(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    seed_data_dir(&data, 100);
    let [backup, _] = &backup_paths(&run_splitstore(["backup", "--data-dir", utf8(&data)]))[..] else {
        panic!("two backups")
    };
    damage_middle_page(backup);
    (data, backup.clone())
}

/// Doctor checks the newest backup with the file: a damaged one is said now (`backup_damaged`, with the
/// command that takes a new one), not found on the day a restore needs it; it is the backup's problem, so
/// repair leaves the database alone; once a new backup is taken, doctor is healthy again. Before, doctor
/// showed the damaged backup as the newest one, healthy.
#[test]
fn doctor_says_when_the_newest_backup_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (data, backup) = seeded_with_a_damaged_backup(dir.path());

    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let (code_name, message, remedy) = the_problem(&json, "activity.db");
    assert_eq!(code_name, "backup_damaged");
    let said = format!(
        "the newest backup of {}, {}, is damaged: ",
        data.join("activity.db").display(),
        backup.display()
    );
    assert!(message.starts_with(&said), "{message}");
    assert_eq!(
        remedy,
        format!(
            "take a new backup now (`splitstore backup --data-dir {}`); a restore from the folder passes over the \
             damaged one to the newest that verifies. Remove it once a new one is taken",
            data.display()
        )
    );
    let repair = run_splitstore(["repair", "--data-dir", utf8(&data)]);
    assert!(
        texts(&repair).0.contains("activity.db: healthy, left alone"),
        "{repair:?}"
    );
    assert!(run_splitstore(["backup", "--data-dir", utf8(&data)]).status.success());
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "{table}");
}

/// A data directory copied with other modes (`cp -r` without `-p` under umask 022): config.db's backup, which
/// holds its settings, readable by every user in a folder every user may enter. Doctor said healthy. Now it
/// says which files other users may read (exit 1, `readable_by_others`), never a settings value, and its
/// remedy, run as written, makes doctor healthy again. In a `0700` folder the same file is out of their reach:
/// nothing is said.
#[test]
fn doctor_says_when_other_users_may_read_a_databases_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = backed_up(dir.path());
    let backup = named(&data.join("backups"), "config-")[0].clone();
    fs::set_permissions(&backup, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "a 0700 folder: {table}");
    fs::set_permissions(data.join("backups"), fs::Permissions::from_mode(0o755)).unwrap();

    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    assert!(doctor_problems(&json, "activity.db").is_empty(), "{json}");
    let (code_name, message, remedy) = the_problem(&json, "config.db");
    assert_eq!(code_name, "readable_by_others");
    assert_eq!(
        message,
        format!(
            "1 file(s) of config.db may be read by other users: {} (mode 0644)",
            backup.display()
        )
    );
    assert!(!table.contains(SECRET_VALUE) && !json.to_string().contains(SECRET_VALUE));
    let command = remedy
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("a command in backticks: {remedy}"));
    assert_eq!(command, format!("chmod -R go= {}", data.display()));
    let run = std::process::Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "{table}");
}

/// Doctor's `quick_check` of the newest backup is skipped by an inspection that asks not to
/// (`check_newest_backup: false`, a repair's: it verifies each backup it would use with `integrity_check`
/// itself): the file is still checked and healthy, and the damaged backup is not read; by default it is,
/// and said.
#[test]
fn the_newest_backup_is_checked_unless_the_inspection_says_not_to() {
    use store_core::diagnostics::{CheckLevel, InspectOptions, inspect};
    let dir = tempfile::tempdir().unwrap();
    let (data, backup) = seeded_with_a_damaged_backup(dir.path());
    let path = data.join("activity.db");
    let schema = &activity_store::SCHEMA;
    let codes = |check_newest_backup: bool| {
        let opts = InspectOptions {
            check: CheckLevel::Full,
            check_newest_backup,
            ..InspectOptions::default()
        };
        let health = inspect(&path, schema, &opts);
        assert!(health.check.as_ref().is_some_and(|c| c.ok), "{:?}", health.check);
        assert_eq!(health.newest_backup.as_ref().map(|b| &b.path), Some(&backup));
        health.problems.iter().map(|p| p.code).collect::<Vec<_>>()
    };
    assert_eq!(codes(true), vec![store_core::ErrorKind::BackupDamaged]);
    assert_eq!(codes(false), vec![]);
}

/// The newest backup in the folder is damaged: a restore from the folder restores the newest one that
/// verifies and says which newer one it passed over (left as it is); naming the damaged one is refused with
/// the way to restore another (before: "run repair --data-dir" on the backup folder, as if it were a data
/// directory); with every backup damaged, no backup passes verification. Before, the folder's restore
/// refused with the damaged one's error, two sound backups beside it.
#[test]
fn a_restore_from_a_folder_passes_over_a_damaged_newest_backup_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    let folder = data.join("backups");
    let [older, _] = &backup_paths(&run_splitstore(["backup", "--data-dir", utf8(&data)]))[..] else {
        panic!("two backups")
    };
    let [newest, _] = &backup_paths(&run_splitstore(["backup", "--data-dir", utf8(&data)]))[..] else {
        panic!("two backups")
    };
    damage_middle_page(newest);
    let damaged = fs::read(newest).unwrap();

    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&folder)]);
    assert!(out.status.success(), "{out:?}");
    let line = texts(&out).0.lines().next().unwrap().to_string();
    let said = format!(
        "restored {} from {} (schema {}); passed over as damaged, the newer {} (left as it is); the previous file \
         is kept at ",
        data.join("activity.db").display(),
        older.display(),
        build_version("activity.db"),
        newest.display()
    );
    assert!(line.starts_with(&said), "{line}");
    assert_eq!(
        fs::read(newest).unwrap(),
        damaged,
        "the damaged backup is left as it is"
    );

    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(newest)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    let remedy = format!(
        ". What to do: restore another backup instead: `splitstore restore --data-dir {} --from FILE`, or `--from \
         {}` for the newest one there that verifies; nothing was changed\n",
        data.display(),
        folder.display()
    );
    assert!(
        stderr.starts_with(&format!("splitstore restore: {} is damaged: ", newest.display()))
            && stderr.ends_with(&remedy),
        "{stderr}"
    );

    // A restore that finds nothing to put back leaves the files in place, which may be sound: its remedy is
    // not a repair's (it offered to salvage them or start them empty).
    damage_middle_page(older);
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&folder)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1,
        format!(
            "splitstore restore: no backup of {} in {} passes verification. What to do: restore a backup kept \
             elsewhere with `splitstore restore --data-dir {d} --from FILE`; nothing was changed (`splitstore \
             doctor --data-dir {d}` says whether the files in place are sound, and what to do if one is not)\n",
            data.join("activity.db").display(),
            folder.display(),
            d = data.display()
        ),
    );
}

/// A restore where the file is gone but its `-wal` is left: the `-wal` is moved aside, and said as what it
/// is (it said "the previous file is kept at" a name no file has).
#[test]
fn a_restore_where_only_the_sidecars_were_left_says_where_they_went() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up(dir.path());
    fs::remove_file(&activity).unwrap();
    let _ = fs::remove_file(with_suffix(&activity, "-shm"));
    fs::write(with_suffix(&activity, "-wal"), b"").unwrap();
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&backup)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let aside = named(&data, "activity.db.replaced-");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].to_string_lossy().ends_with("-wal"), "{aside:?}");
    assert!(
        stdout.contains(&format!(
            "; there was no file, and what was beside its path is kept at {}\n",
            aside[0].display()
        )),
        "{stdout}"
    );
}

#[test]
fn restore_is_refused_while_the_daemon_runs_and_puts_the_backup_back_after_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let activity = data.join("activity.db");
    let to = dir.path().join("backups");
    let out = run_splitstore(["backup", "--data-dir", d, "--to", utf8(&to)]);
    assert!(out.status.success(), "{out:?}");
    let files = backup_paths(&out);

    // The daemon writes on after the backup.
    let daemon = Running::start(&["daemon", "--rate", "5000", "--data-dir", d]);
    daemon.wait_owner_of(&activity);
    let before = listing(&data);
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let activity_inode = inode(&activity);
    let refused = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&to)]);
    let (stdout, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "splitstore restore: {} is already owned by pid {} since ",
            activity.display(),
            daemon.pid()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("What to do: only one process may write this file"),
        "{stderr}"
    );
    assert_eq!(listing(&data), before, "nothing was moved");
    assert_eq!(inode(&activity), activity_inode);

    // kill -9: the replaced file keeps committed rows in its -wal, which must move aside with it. The kill
    // comes once the daemon has committed events after the backup (the backup holds the seeded 3000); a
    // fixed sleep here raced the daemon's first commit on a busy machine.
    let start = Instant::now();
    while query_i64(&read_only(&activity), "SELECT count(*) FROM activity_events") <= 3000 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon committed nothing within 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon.kill9();
    assert!(with_suffix(&activity, "-wal").exists());
    let live_events = query_i64(&read_only(&activity), "SELECT count(*) FROM activity_events");
    assert!(live_events > 3000, "the daemon wrote after the backup");

    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&to)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for ((line, file), name) in lines.iter().zip(&files).zip(["activity.db", "config.db"]) {
        let db = data.join(name);
        let v = build_version(name);
        let head = format!(
            "restored {} from {} (schema {v}); the previous file is kept at {}.replaced-",
            db.display(),
            file.display(),
            db.display()
        );
        assert!(line.starts_with(&head), "{line}");
        let after = line.rsplit_once(" is kept at ").unwrap().1;
        let (aside, left_out) = after.split_once("; ").unwrap_or((after, ""));
        let aside = PathBuf::from(aside);
        assert!(aside.exists(), "{}", aside.display());
        if name == "activity.db" {
            // The events the daemon wrote after the backup: kept in the replaced file, and said.
            assert!(
                left_out.starts_with("the file it replaced had added rows since the backup (at most "),
                "{line}"
            );
        }
        // Checked before this test opens the file (a read-only connection leaves an empty -wal and -shm).
        for sidecar in ["-wal", "-shm"] {
            assert!(
                !with_suffix(&db, sidecar).exists(),
                "no {sidecar} beside the restored {name}"
            );
        }
        assert_eq!(
            contents(&db, &["provenance"]),
            contents(file, &["provenance"]),
            "{name} holds the backup's rows"
        );
        assert_eq!(
            query_i64(
                &read_only(&db),
                "SELECT count(*) FROM provenance WHERE event = 'restore'"
            ),
            1,
            "{name}: the restore is recorded"
        );
        assert_eq!(mode(&db), 0o600);
        if name == "activity.db" {
            assert!(
                with_suffix(&aside, "-wal").exists(),
                "the replaced file's -wal moved with it"
            );
            assert_eq!(
                query_i64(&read_only(&aside), "SELECT count(*) FROM activity_events"),
                live_events,
                "the replaced file, with its -wal, still holds every committed event"
            );
        }
    }
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "{table}");
}

#[test]
fn repair_through_the_cli_quarantines_the_damaged_file_and_restores_the_newest_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up(dir.path());
    let d = utf8(&data);

    damage_middle_page(&activity);
    let damaged = fs::read(&activity).unwrap();
    let out = run_splitstore(["repair", "--data-dir", d]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let head = format!(
        "activity.db: restored from {} (damaged file kept at {}.corrupt-",
        backup.display(),
        activity.display()
    );
    assert!(lines[0].starts_with(&head), "{stdout}");
    assert_eq!(lines[1], "config.db: healthy, left alone");
    // The damaged file moved aside with the -wal and -shm the backup's read-only connection left beside it.
    let quarantined = named(&data, "activity.db.corrupt-");
    assert_eq!(quarantined.len(), 3, "{quarantined:?}");
    assert_eq!(
        [&quarantined[1], &quarantined[2]],
        [
            &with_suffix(&quarantined[0], "-shm"),
            &with_suffix(&quarantined[0], "-wal")
        ]
    );
    assert_eq!(
        fs::read(&quarantined[0]).unwrap(),
        damaged,
        "the damaged file is kept as it was"
    );
    assert_eq!(contents(&activity, &["provenance"]), contents(&backup, &["provenance"]));

    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "healthy after the repair:\n{table}");
}

/// A damaged file that added rows after its newest good backup: a plain repair would drop them, so it is
/// refused before anything moves, saying how many and the two ways on; `--accept-older-backup` restores the
/// backup without them.
#[test]
fn repair_refuses_to_restore_a_backup_older_than_the_damaged_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up_then_500_events(dir.path());
    let d = utf8(&data);

    damage_middle_page(&activity);
    let damaged = fs::read(&activity).unwrap();
    let out = run_splitstore(["repair", "--data-dir", d]);
    let (_, stderr) = texts(&out);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "splitstore repair: {} is damaged, and its newest good backup ({}) is older: since the backup the damaged \
             file added rows that a restore would leave out (at most 500 in activity_events, 5 in \
             activity_sessions). What to do: keep what can still be read of them, on top of that backup, with \
             `splitstore repair --data-dir {d} --salvage`; or restore the backup without them with `splitstore \
             repair --data-dir {d} --accept-older-backup`; either way the damaged file is kept; nothing was changed",
            activity.display(),
            backup.display(),
        )
    );
    assert_eq!(fs::read(&activity).unwrap(), damaged, "nothing moved");
    assert!(named(&data, "activity.db.corrupt-").is_empty());
    // With --json, the refusal is on stdout too, as migrate-split --json says its failures.
    let out = run_splitstore(["repair", "--data-dir", d, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "failed", "{json}");
    let error = &json["error"];
    assert_eq!(
        (&error["kind"], &error["exit_code"], &error["retryable"], &error["path"]),
        (
            &Json::from("backup_older"),
            &Json::from(2),
            &Json::from(false),
            &Json::from(utf8(&activity))
        ),
        "{json}"
    );
    assert!(stderr.contains(error["message"].as_str().unwrap()), "{json}");
    assert!(
        stderr.ends_with(&format!("{}\n", error["remedy"].as_str().unwrap())),
        "{json}"
    );

    let out = run_splitstore(["repair", "--data-dir", d, "--accept-older-backup"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!("activity.db: restored from {}", backup.display())),
        "{stdout}"
    );
    assert!(stdout.lines().next().unwrap().ends_with(LEFT_OUT_500), "{stdout}");
    assert_eq!(contents(&activity, &["provenance"]), contents(&backup, &["provenance"]));
}

/// Damage that hides the file's AUTOINCREMENT counters hides what it added since its backup: a file written
/// after the backup is refused as `backup_older` (what it added cannot be counted), not restored over in
/// silence; one last written before the backup was taken is restored as before.
#[test]
fn a_repair_that_cannot_count_what_the_damaged_file_added_since_its_backup_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up_then_500_events(dir.path());
    let d = utf8(&data);
    let counters_page: i64 = rusqlite::Connection::open(&activity)
        .unwrap()
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut bytes = fs::read(&activity).unwrap();
    let at = (counters_page as usize - 1) * 4096;
    bytes[at..at + 4096].fill(0x5A);
    fs::write(&activity, &bytes).unwrap();
    let untouched = copy_data_dir(&data, dir.path().join("untouched"));

    let out = run_splitstore(["repair", "--data-dir", d]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let said = format!(
        "splitstore repair: {} is damaged, and its newest good backup ({}) is older: the damaged file was written \
         after the backup was taken (last at ",
        activity.display(),
        backup.display()
    );
    assert!(stderr.starts_with(&said), "{stderr}");
    assert!(
        stderr.contains(
            "), and what it added since cannot be counted (its counters cannot be read): a restore may leave rows \
             out. What to do: keep what can still be read of them, on top of that backup, with `splitstore repair \
             --data-dir "
        ),
        "{stderr}"
    );
    assert_eq!(fs::read(&activity).unwrap(), bytes, "nothing moved");
    assert!(named(&data, "activity.db.corrupt-").is_empty());

    // The same damage in a file last written before the backup was taken: nothing of it can be newer.
    let file = untouched.join("activity.db");
    let before = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(before.into())
        .unwrap();
    let out = run_splitstore(["repair", "--data-dir", utf8(&untouched)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("activity.db: restored from "), "{stdout}");
}

/// A repair passes over a damaged newer backup and says so, whatever it then does (refused as older,
/// restored as asked, salvaged on top); a newer backup it cannot use for another reason (a schema newer than
/// the build) stops it, named, instead of an older one being restored in silence.
#[test]
fn a_repair_names_the_newer_backup_it_passes_over_as_damaged_and_stops_at_one_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup, newer) = backed_up_twice(dir.path());
    let d = utf8(&data);
    let sound_newer = fs::read(&newer).unwrap();
    damage_middle_page(&newer);
    damage_middle_page(&activity);
    let (salvaged, newer_schema) = (
        copy_data_dir(&data, dir.path().join("salvaged")),
        copy_data_dir(&data, dir.path().join("newer_schema")),
    );

    let out = run_splitstore(["repair", "--data-dir", d]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "splitstore repair: {} is damaged, and its newest good backup ({}) is older: since the backup the \
             damaged file added rows that a restore would leave out (at most 500 in activity_events, 5 in \
             activity_sessions); passed over as damaged, the newer {} (left as it is). What to do: ",
            activity.display(),
            backup.display(),
            newer.display()
        )),
        "{stderr}"
    );

    let out = run_splitstore(["repair", "--data-dir", d, "--accept-older-backup"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "activity.db: restored from {}; passed over as damaged, the newer {} (left as it is) (damaged file kept \
             at {}.corrupt-",
            backup.display(),
            newer.display(),
            activity.display()
        )),
        "{stdout}"
    );

    let stdout = salvaged_over(&salvaged, &backup);
    assert!(
        stdout.contains(&format!(
            "\n  note: passed over as damaged, the newer {} (left as it is)\n",
            in_copy(&salvaged, &newer).display()
        )),
        "{stdout}"
    );

    // The newer backup sound, but from a newer build: named, and nothing moves.
    let newer_there = in_copy(&newer_schema, &newer);
    fs::write(&newer_there, &sound_newer).unwrap();
    let build = activity_store::SCHEMA.end_version();
    rusqlite::Connection::open(&newer_there)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", build + 1))
        .unwrap();
    let damaged = fs::read(newer_schema.join("activity.db")).unwrap();
    let out = run_splitstore(["repair", "--data-dir", utf8(&newer_schema)]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let n = utf8(&newer_schema);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "splitstore repair: the backup {} of {n}/activity.db is at schema version {}, newer than this build \
             supports ({build}): it was taken by a newer build. What to do: restore it with a build of schema {} or \
             later, or restore an older backup by naming its file with `splitstore restore --data-dir {n} --from \
             FILE`; nothing was changed",
            newer_there.display(),
            build + 1,
            build + 1
        )
    );
    assert_eq!(
        fs::read(newer_schema.join("activity.db")).unwrap(),
        damaged,
        "nothing moved"
    );
    assert!(named(&newer_schema, "activity.db.corrupt-").is_empty());
    // The remedy, as written, with the older backup's file.
    let older = in_copy(&newer_schema, &backup);
    let out = run_splitstore(["restore", "--data-dir", n, "--from", utf8(&older)]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert_eq!(
        contents(&newer_schema.join("activity.db"), &["provenance"]),
        contents(&backup, &["provenance"])
    );
}

/// A backup whose name says it was taken later than the clock reads now (the clock was ahead then, or is
/// behind now) is never chosen by its name, but neither is it passed over in silence: a repair or restore that
/// would put an older copy in place (or none, or the other file alone) names it, with the way to use it.
#[test]
fn a_backup_named_later_than_the_clock_reads_is_named_not_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, older, taken) = backed_up_twice(dir.path());
    let d = utf8(&data);
    // Taken with the clock a year ahead: its name says next year.
    let (later, year) = renamed_years_off(&taken, 1);
    let noted = copy_data_dir(&data, dir.path().join("noted"));
    damage_middle_page(&activity);
    let (salvaged, only_later, not_more) = (
        copy_data_dir(&data, dir.path().join("salvaged")),
        copy_data_dir(&data, dir.path().join("only_later")),
        copy_data_dir(&data, dir.path().join("not_more")),
    );
    let said = |backup: &Path, data: &Path, instead: &str| {
        (
            format!(
                "the backup {} of {}/activity.db is named as taken at {}-",
                backup.display(),
                data.display(),
                year + 1
            ),
            format!(
                "{instead}: the clock was ahead when it was taken, or is behind now. What to do: if the clock is \
                 right now, restore that backup by naming its file, which a restore takes whatever its name \
                 (`splitstore restore --data-dir {} --from {}`; the file in place is kept aside); if the clock is \
                 behind, set it right and run this command again",
                data.display(),
                backup.display()
            ),
        )
    };

    // It holds 500 events the backup named before now lacks: a repair stops, naming both (it used to restore
    // the older one, or refuse it as older than the damaged file, the later one unnamed).
    let before = fs::read(&activity).unwrap();
    let out = run_splitstore(["repair", "--data-dir", d]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let (start, end) = said(
        &later,
        &data,
        &format!(
            ", and it holds rows that {}, the newest backup named before now, does not (at most 500 in \
             activity_events, 5 in activity_sessions)",
            older.display()
        ),
    );
    assert!(stderr.starts_with(&format!("splitstore repair: {start}")), "{stderr}");
    assert!(stderr.contains(&end), "{stderr}");
    assert!(
        stderr.trim_end().ends_with(&format!(
            "; or restore the older backup, without those rows, with `splitstore restore --data-dir {d} --from {}`; \
             or copy every row that can still be read from the damaged file into a new file with `splitstore \
             repair --data-dir {d} --salvage`; nothing was changed",
            older.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&activity).unwrap(), before, "nothing moved");
    assert!(named(&data, "activity.db.corrupt-").is_empty());
    // Its remedy, as written: the later backup's rows in place.
    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&later)]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert_eq!(contents(&activity, &["provenance"]), contents(&later, &["provenance"]));
    assert_eq!(doctor(&data).0, 0);

    // With no other backup of activity.db: a restore from the folder no longer puts config.db back alone, and
    // a repair no longer says there is no backup (offering to start the file empty).
    let o = utf8(&only_later);
    fs::remove_file(in_copy(&only_later, &older)).unwrap();
    let later_there = in_copy(&only_later, &later);
    let (start, end) = said(&later_there, &only_later, ", and no backup named before now verifies");
    let config_before = fs::read(only_later.join("config.db")).unwrap();
    for command in ["restore", "repair"] {
        let mut args = vec![command, "--data-dir", o];
        let folder = format!("{o}/backups");
        if command == "restore" {
            args.extend(["--from", &folder]);
        }
        let out = run_splitstore(&args);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.starts_with(&format!("splitstore {command}: {start}")),
            "{stderr}"
        );
        assert!(stderr.contains(&end), "{stderr}");
        assert!(!stderr.contains("--allow-empty"), "{stderr}");
        assert_eq!(fs::read(only_later.join("config.db")).unwrap(), config_before);
    }

    // A salvage goes on over the backup named before now, and says which it did not use.
    let stdout = salvaged_over(&salvaged, &older);
    let (start, _) = said(&in_copy(&salvaged, &later), &salvaged, "");
    assert!(stdout.contains(&format!("\n  note: not used: {start}")), "{stdout}");

    // Named later but holding nothing more than the backup named before now: the repair goes on as it would
    // without it (here: that backup is older than the damaged file, which it says).
    fs::copy(&older, in_copy(&not_more, &later)).unwrap();
    repair_refused_as_older_than(&not_more, &older);

    // A backup taken while one is named later than the clock reads now says so, on stderr: the clock is behind
    // now, or was ahead then.
    let out = run_splitstore(["backup", "--data-dir", utf8(&noted)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let taken = backup_paths(&out);
    assert_eq!(taken.len(), 2, "stdout names the files taken, and only them: {stdout}");
    let activity_backup = taken
        .iter()
        .find(|p| p.to_string_lossy().contains("/activity-"))
        .unwrap();
    assert!(
        stderr.starts_with(&format!(
            "splitstore backup: note: 1 backup(s) of {}/activity.db taken before this one are named later than the \
             clock reads now (the latest: {}, named as taken at {}-",
            noted.display(),
            in_copy(&noted, &later).display(),
            year + 1
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "), so {} is named as older than they are: either the clock is behind now (set it right and take a \
             backup again) or it was ahead when they were taken (they are older than their names, and rotation keeps \
             them on top of --keep until the clock passes those names: remove them by hand when they are not \
             wanted). Until a backup is named later than them, restore, repair and doctor tell the backups apart by \
             their rows\n",
            activity_backup.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "config.db's backup says nothing: {stderr}");
}

/// A backup taken while the clock was behind is named as older than the one before it. When it holds rows
/// the newest by name lacks, a restore or repair names it instead of putting the one named newest in place:
/// they restored that one, leaving out 500 events a sound backup held (a repair with `--accept-older-backup`;
/// a restore from the folder), or refused it as older than the damaged file without naming the better one.
#[test]
fn a_backup_named_earlier_that_holds_more_rows_is_named_not_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, newest, taken) = backed_up_twice(dir.path());
    let d = utf8(&data);
    // Taken with the clock a year behind: its name, and the time it records, say last year.
    let (earlier, year) = renamed_years_off(&taken, -1);
    let year_ms = 366 * 24 * 3600 * 1000_i64;
    let recorded = rusqlite::Connection::open(&earlier)
        .unwrap()
        .execute(
            "UPDATE provenance SET at_ms = at_ms - ?1 WHERE event = 'backup'",
            [year_ms],
        )
        .unwrap();
    assert_eq!(recorded, 1);
    let (restored, salvaged, not_more) = (
        copy_data_dir(&data, dir.path().join("restored")),
        copy_data_dir(&data, dir.path().join("salvaged")),
        copy_data_dir(&data, dir.path().join("not_more")),
    );
    damage_middle_page(&activity);
    for copy in [&salvaged, &not_more] {
        damage_middle_page(&copy.join("activity.db"));
    }
    let said = |data: &Path| {
        let (earlier, newest) = (in_copy(data, &earlier), in_copy(data, &newest));
        (
            format!(
                "the backup {} of {}/activity.db is named as taken at {}-",
                earlier.display(),
                data.display(),
                year - 1
            ),
            format!(", before {} ({year}-", newest.display()),
            format!(
                "), the one a restore from the folder takes by name, yet it holds rows that one does not (at most \
                 500 in activity_events, 5 in activity_sessions): the clock was behind when it was taken, or ahead \
                 when the other was. What to do: restore that backup by naming its file, which a restore takes whatever \
                 its name (`splitstore restore --data-dir {data} --from {earlier}`; the file in place is kept \
                 aside); or restore the older backup, without those rows, with `splitstore restore --data-dir \
                 {data} --from {newest}`",
                data = data.display(),
                earlier = earlier.display(),
                newest = newest.display()
            ),
        )
    };

    // A repair, even one that accepts an older backup, stops before anything moves, naming both.
    let before = fs::read(&activity).unwrap();
    let (start, middle, end) = said(&data);
    for accept in [false, true] {
        let mut args = vec!["repair", "--data-dir", d];
        if accept {
            args.push("--accept-older-backup");
        }
        let out = run_splitstore(&args);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(&format!("splitstore repair: {start}")), "{stderr}");
        assert!(stderr.contains(&middle), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{end}; or copy every row that can still be read from the damaged file into a new file with \
                 `splitstore repair --data-dir {d} --salvage`; nothing was changed"
            )),
            "{stderr}"
        );
        assert_eq!(fs::read(&activity).unwrap(), before, "nothing moved");
        assert!(named(&data, "activity.db.corrupt-").is_empty());
    }
    // Its remedy, as written: the earlier-named backup's rows in place.
    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&earlier)]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert_eq!(
        contents(&activity, &["provenance"]),
        contents(&earlier, &["provenance"])
    );
    // Doctor says it too, before any restore is needed, with the way to end it: a backup taken now.
    let (code, stdout, json) = doctor(&data);
    assert_eq!(code, 1, "{stdout}");
    let (start, middle, _) = said(&data);
    assert!(stdout.contains(&start) && stdout.contains(&middle), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "with the clock right, take a new backup now (`splitstore backup --data-dir {d}`): it holds every row \
             and is the newest by name"
        )),
        "{stdout}"
    );
    assert!(json.to_string().contains("\"backup_named_earlier\""), "{json}");
    let out = run_splitstore(["backup", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(doctor(&data).0, 0);

    // A restore from the folder, of a sound data directory, stops the same way.
    let r = utf8(&restored);
    let (start, middle, end) = said(&restored);
    let before = fs::read(restored.join("activity.db")).unwrap();
    let out = run_splitstore(["restore", "--data-dir", r, "--from", &format!("{r}/backups")]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("splitstore restore: {start}")), "{stderr}");
    assert!(stderr.contains(&middle), "{stderr}");
    assert!(
        stderr.trim_end().ends_with(&format!("{end}; nothing was changed")),
        "{stderr}"
    );
    assert_eq!(fs::read(restored.join("activity.db")).unwrap(), before, "nothing moved");

    // A salvage goes on over the newest by name, and says which it did not use.
    let stdout = salvaged_over(&salvaged, &newest);
    let (start, ..) = said(&salvaged);
    assert!(stdout.contains(&format!("\n  note: not used: {start}")), "{stdout}");

    // Named earlier and holding nothing more than the newest by name: the repair goes on as it would without
    // it (here: that backup is older than the damaged file, which it says).
    fs::copy(&newest, in_copy(&not_more, &earlier)).unwrap();
    repair_refused_as_older_than(&not_more, &newest);
}

/// What a restore of activity.db's backup leaves out after the daemon recorded 500 more events.
const LEFT_OUT_500: &str = "; the file it replaced had added rows since the backup (at most 500 in activity_events, 5 \
                            in activity_sessions): they are not in the restored file";

/// A restore of config.db from a backup older than the projects the daemon recorded time for leaves those
/// projects out. A report names their time as left out by that restore, not as time of projects the user
/// deleted (a deleted one is still said deleted, one created after the backup too), in its table and in
/// `--json`.
#[test]
fn a_report_tells_projects_a_restore_left_out_from_deleted_ones() {
    use config_store::projects::NewProject;
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    let kept = store.create_project(&NewProject::named("kept")).unwrap().id;
    let deleted = store.create_project(&NewProject::named("deleted")).unwrap().id;
    assert!(store.delete_project(deleted).unwrap());
    drop(store);
    let config_backup = config_backup_taken(&data);
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    let after = store.create_project(&NewProject::named("after the backup")).unwrap().id;
    let deleted_after = store.create_project(&NewProject::named("deleted after it")).unwrap().id;
    assert!(store.delete_project(deleted_after).unwrap());
    let last = store.create_project(&NewProject::named("last")).unwrap().id;
    drop(store);
    let ids = format!("{kept},{deleted},{after},{deleted_after},{last}");
    let daemon = run_splitstore(["daemon", "--events", "500", "--project-ids", &ids, "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");

    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&config_backup)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    // The project created and deleted after the backup was not left out: it is not counted, and the two
    // around it are counted once, together.
    assert!(stdout.contains("(at most 2 in projects)"), "{stdout}");

    let (name, status, _) = reported_project(&data, kept);
    assert_eq!((name.as_deref(), status.as_str()), (Some("kept"), "active"));
    let (name, status, line) = reported_project(&data, deleted);
    assert_eq!((name, status.as_str()), (None, "deleted"));
    assert!(line.contains("(deleted project)"), "{line}");
    let (name, status, line) = reported_project(&data, after);
    assert_eq!((name, status.as_str()), (None, "left_out_by_restore"));
    assert!(line.contains("(left out by a config restore)"), "{line}");
    assert_eq!(reported_project(&data, last).1, "left_out_by_restore");
    // It used to be said left out by the restore too: every id handed out since the backup was.
    let (name, status, line) = reported_project(&data, deleted_after);
    assert_eq!((name, status.as_str()), (None, "deleted"));
    assert!(line.contains("(deleted project)"), "{line}");

    // A project created now gets an id above every one handed out: no id is handed out twice.
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    assert!(store.create_project(&NewProject::named("new")).unwrap().id > last);
}

/// A second restore of config.db from a backup older than the projects a first restore left out (the same
/// backup again, or an older one) keeps saying they were left out by a restore. The record said so only in the
/// file the second restore replaced (kept aside): the projects, never deleted, then read as deleted. One the
/// user did delete after the backup is still said deleted, and no id is handed out twice.
#[test]
fn a_second_config_restore_keeps_what_the_first_left_out() {
    use config_store::projects::NewProject;
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    let kept = store.create_project(&NewProject::named("kept")).unwrap().id;
    drop(store);
    let config_backup = config_backup_taken(&data);
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    let after = store.create_project(&NewProject::named("after the backup")).unwrap().id;
    let deleted_after = store.create_project(&NewProject::named("deleted after it")).unwrap().id;
    assert!(store.delete_project(deleted_after).unwrap());
    drop(store);
    let ids = format!("{kept},{after},{deleted_after}");
    let daemon = run_splitstore(["daemon", "--events", "300", "--project-ids", &ids, "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");

    for restore in ["first", "second", "third"] {
        let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&config_backup)]);
        let (_, stderr) = texts(&out);
        assert!(out.status.success(), "{restore} restore: {stderr}");
        let (name, status, line) = reported_project(&data, after);
        assert_eq!(
            (name, status.as_str()),
            (None, "left_out_by_restore"),
            "after the {restore} restore"
        );
        assert!(line.contains("(left out by a config restore)"), "{line}");
        assert_eq!(
            reported_project(&data, deleted_after).1,
            "deleted",
            "after the {restore} restore"
        );
        assert_eq!(reported_project(&data, kept).1, "active", "after the {restore} restore");
    }

    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    assert!(store.create_project(&NewProject::named("new")).unwrap().id > deleted_after);
}

/// Restoring a backup older than the file in place (both owners stopped) is the user's choice: it is done,
/// and says what the replaced file had added since, which it keeps.
#[test]
fn a_restore_of_an_older_backup_says_what_the_replaced_file_had_added() {
    let dir = tempfile::tempdir().unwrap();
    let (data, activity, backup) = backed_up_then_500_events(dir.path());
    let d = utf8(&data);

    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backup)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let line = stdout.lines().next().unwrap();
    assert!(
        line.starts_with(&format!(
            "restored {} from {} (schema 5); the previous file is kept at {}.replaced-",
            activity.display(),
            backup.display(),
            activity.display()
        )),
        "{line}"
    );
    assert!(line.ends_with(LEFT_OUT_500), "{line}");
    let kept = named(&data, "activity.db.replaced-");
    let events = |db: &Path| query_i64(&read_only(db), "SELECT count(*) FROM activity_events");
    assert_eq!(
        events(&kept[0]) - events(&activity),
        500,
        "the replaced file keeps them"
    );
}

#[test]
fn no_command_prints_a_settings_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let to = dir.path().join("backups");
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut run = |args: &[&str]| {
        let out = run_splitstore(args);
        outputs.push((args.join(" "), out));
    };
    run(&["doctor", "--data-dir", d]);
    run(&["doctor", "--json", "--data-dir", d]);
    run(&["doctor", "--full", "--json", "--data-dir", d]);
    run(&["backup", "--data-dir", d, "--to", utf8(&to)]);
    run(&["report", "--data-dir", d]);
    run(&["report", "--json", "--data-dir", d]);
    run(&["restore", "--data-dir", d, "--from", utf8(&to)]);
    run(&["repair", "--data-dir", d, "--from", utf8(&to)]);
    // Damaged config.db: the reports of a failing check and a repair.
    damage_middle_page(&data.join("config.db"));
    run(&["doctor", "--json", "--data-dir", d]);
    run(&["repair", "--data-dir", d, "--from", utf8(&to)]);
    run(&["doctor", "--data-dir", d]);

    for (command, out) in &outputs {
        let (stdout, stderr) = texts(out);
        for value in [SECRET_VALUE, PLAIN_VALUE] {
            assert!(
                !stdout.contains(value) && !stderr.contains(value),
                "`splitstore {command}` printed a settings value:\n{stdout}\n{stderr}"
            );
        }
    }
    let code = |i: usize| outputs[i].1.status.code();
    assert_eq!(
        (0..outputs.len()).map(code).collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0].map(Some),
        "every command ran (the damaged config.db is found, then repaired)"
    );
    // The value is still there: it was only never printed.
    let reader = config_store::ConfigReader::open_in(&data);
    assert_eq!(
        reader.setting::<String>("sync.api_token").unwrap().as_deref(),
        Some(SECRET_VALUE)
    );
}

/// A crash, or a service manager's watchdog ending a hung process with SIGABRT, wrote the whole process's
/// memory into a core dump wherever core dumps were on (`ulimit -c unlimited`, a collector that keeps them):
/// settings values and, with encryption, the key, in the clear on disk and attached to bug reports. Every
/// command now turns them off for itself first thing: started with the soft limit raised, each ends with it
/// at zero (read from `/proc/PID/limits` before it is reaped).
#[test]
fn no_command_can_write_its_memory_into_a_core_dump() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let to = dir.path().join("backups");
    let limit = Duration::from_secs(120);
    // The raised limit is what a command that does nothing about it ends with: the check can tell.
    let (status, raised) = core_limit_at_exit(&mut Command::new("true"), limit);
    assert!(status.success());
    assert!(
        raised > 0,
        "this machine allows no core dump at all (hard limit 0): nothing here can tell"
    );
    for args in [
        &["daemon", "--data-dir", d, "--events", "1"][..],
        &["server", "--data-dir", d, "--seconds", "0"],
        &["report", "--data-dir", d],
        &["doctor", "--data-dir", d],
        &["backup", "--data-dir", d, "--to", utf8(&to)],
        &["restore", "--data-dir", d, "--from", utf8(&to)],
    ] {
        let (status, core) = core_limit_at_exit(splitstore().args(args), limit);
        assert!(status.success(), "{args:?}: {status:?}");
        assert_eq!(
            core, 0,
            "{args:?} could dump core (a command that leaves the limit alone: {raised})"
        );
    }
}

/// `splitstore server --data-dir DATA --seconds 0.5` under a service manager (a socket in `dir` named by
/// `NOTIFY_SOCKET`): its output, and every line it told the manager (`READY=1`, `STATUS=...`).
fn server_under_a_manager(dir: &Path, data: &Path) -> (Output, Vec<String>) {
    let mut manager = ServiceManager::in_dir(dir);
    let server = manager.start(&["server", "--data-dir", utf8(data), "--seconds", "0.5"]);
    let server = wait_output_within(server, Duration::from_secs(120));
    (server, manager.rest().concat())
}

/// The one status holding `trouble` (told once, however many reports meet it), without its `STATUS=`.
#[track_caller]
fn told_once<'a>(told: &'a [String], trouble: &str) -> &'a str {
    let said: Vec<&str> = told
        .iter()
        .filter_map(|l| l.strip_prefix("STATUS="))
        .filter(|l| l.contains(trouble))
        .collect();
    assert_eq!(said.len(), 1, "{told:?}");
    said[0]
}

/// A server that met a damaged page of config.db while running does not start again onto it (until now each
/// start ran until it met the page again, writing on the way, and nothing showed why it had stopped while
/// it was down): the damage is recorded, doctor lists it, the next start stops before any change with the
/// damage and its fix, and the repair that replaces the file clears it.
#[test]
fn a_server_that_met_a_damaged_page_stops_at_its_next_start_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let daemon = run_splitstore(["daemon", "--events", "300", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    for i in 0..2000 {
        let name = format!("Project {i} {}", "with a long name ".repeat(8));
        store.create_project(&config_store::NewProject::named(&name)).unwrap();
    }
    drop(store);
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");
    // A leaf of the projects table with an impossible page type: every read of it fails as damage, and an
    // open reads none of it.
    let config = data.join("config.db");
    let leaves: Vec<i64> = query_column(
        &read_only(&config),
        "SELECT pageno FROM dbstat WHERE name = 'projects' AND pagetype = 'leaf' ORDER BY pageno",
    );
    let mut bytes = fs::read(&config).unwrap();
    bytes[(leaves[leaves.len() / 2] as usize - 1) * 4096] = 0x5A;
    fs::write(&config, &bytes).unwrap();
    let created = || {
        query_i64(
            &read_only(&config),
            "SELECT seq FROM sqlite_sequence WHERE name = 'projects'",
        )
    };

    // The first start meets the page at its first report.
    let first = run_splitstore(["server", "--data-dir", d, "--seconds", "5"]);
    let (_, err) = texts(&first);
    assert_eq!(first.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{} is damaged", config.display())), "{err}");
    let after_first = created();
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let seen = section(&table, &config)
        .lines()
        .find(|l| l.trim_start().starts_with("damage seen"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(seen.contains("[corrupt]"), "{seen}");
    assert!(
        seen.contains("(met while running; kept until a restore or repair)"),
        "{seen}"
    );

    // The next start stops at once, saying what the last one met and what to do, and changes nothing.
    let second = run_splitstore(["server", "--data-dir", d, "--seconds", "5"]);
    let (out, err) = texts(&second);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(out.is_empty(), "no round ran: {out}");
    assert!(
        err.starts_with(&format!(
            "splitstore server: {} is damaged: the server met it while running (",
            config.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("`splitstore repair --data-dir {d}")), "{err}");
    assert_eq!(created(), after_first, "the second start created no project");

    // The repair that replaces the file clears the record; the server runs again.
    let repair = run_splitstore(["repair", "--data-dir", d, "--salvage"]);
    assert!(repair.status.success(), "{repair:?}");
    let (code, table, _) = doctor(&data);
    assert_eq!(code, 0, "{table}");
    assert!(!section(&table, &config).contains("damage seen"), "{table}");
    let third = run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"]);
    assert!(third.status.success(), "{third:?}");
}

/// `data` seeded by the real processes, with a value of another type than its column declares in each file,
/// as a bit flipped in a record's header leaves it (the tables are not STRICT, so SQLite keeps it, and
/// `quick_check` passes the file): a BLOB in the `created_at_ms` of config.db's first project, text in the
/// `timestamp_ms` of activity.db's last event. Returns their ids.
fn with_values_of_another_type(data: &Path) -> (i64, i64) {
    seed_data_dir(data, 300);
    let (config, activity) = (data.join("config.db"), data.join("activity.db"));
    let project = query_i64(&read_only(&config), "SELECT min(id) FROM projects");
    let event = query_i64(&read_only(&activity), "SELECT max(id) FROM activity_events");
    let set = |db: &Path, sql: &str, id: i64| rusqlite::Connection::open(db).unwrap().execute(sql, [id]).unwrap();
    set(
        &config,
        "UPDATE projects SET created_at_ms = X'0102' WHERE id = ?1",
        project,
    );
    set(
        &activity,
        "UPDATE activity_events SET timestamp_ms = 'noon' WHERE id = ?1",
        event,
    );
    (project, event)
}

/// What a `corrupt` error of a file in `data` says to do.
fn repair_remedy(data: &Path) -> String {
    let d = utf8(data);
    format!(
        "stop every owner of a database in {d} (the command takes all their locks), then run `splitstore repair \
         --data-dir {d}`: it quarantines the damaged file (nothing is deleted) and restores the newest backup that \
         verifies, or says what else can be done"
    )
}

/// A value of another type than its column declares fails every read of its row. That is damage, said as such
/// (`corrupt`, exit 2) with the file, the table, the row and the column, and repair's remedy: it was an
/// `sqlite` error whose remedy, doctor, found the file healthy, and the server failed at every start.
#[test]
fn a_value_of_another_type_than_its_column_fails_reads_as_damage_naming_where_and_the_repair() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let (project, event) = with_values_of_another_type(&data);
    let (config, activity) = (data.join("config.db"), data.join("activity.db"));
    let parses = "a value its column never holds, as damage that still parses leaves it (the tables are not STRICT, \
                  so SQLite keeps whatever type a damaged record says)";
    let remedy = repair_remedy(&data);

    let server = run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"]);
    let (_, err) = texts(&server);
    assert_eq!(server.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "splitstore server: {} is damaged: projects row {project}: created_at_ms cannot be read (Invalid \
             column type Blob at index: 3, name: created_at_ms): {parses}. What to do: {remedy}",
            config.display()
        )
    );

    let report = run_splitstore(["report", "--data-dir", d, "--json"]);
    assert_eq!(report.status.code(), Some(2), "{:?}", texts(&report));
    let failed = one_json_object(&report.stdout);
    assert_eq!(failed["error"]["kind"], "corrupt", "{failed}");
    assert_eq!(failed["error"]["path"], config.to_str().unwrap(), "{failed}");
    assert_eq!(failed["error"]["remedy"], remedy.as_str(), "{failed}");

    // The server's reader of activity.db says the same of the event.
    let err = activity_store::ActivityReader::open_in(&data).latest().unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::Corrupt, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is damaged: activity_events row {event}: timestamp_ms cannot be read (Invalid column type Text at \
             index: 6, name: timestamp_ms): {parses}. What to do: {remedy}",
            activity.display()
        )
    );
}

/// A backup of a file holding such a value is refused, naming the row, and leaves no copy (of either file): a backup that
/// restores a file whose reads fail would rotate out one that does not. The value is found by the backup's
/// type check, which runs beside its integrity check on a second connection to the copy.
#[test]
fn a_backup_of_a_file_holding_a_value_of_another_type_is_refused_naming_the_row_and_leaves_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, event) = with_values_of_another_type(&data);
    let backups = dir.path().join("backups");
    let out = run_splitstore(["backup", "--data-dir", utf8(&data), "--to", utf8(&backups)]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let found = format!(
        "{} is damaged: integrity_check of a fresh backup found: activity_events row {event}: timestamp_ms is not \
         a time (text)",
        data.join("activity.db").display()
    );
    assert!(err.contains(&found), "{found:?} not in {err}");
    let left: Vec<_> = std::fs::read_dir(&backups)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|name| !name.to_string_lossy().ends_with(".db")),
        "no copy of either database left: {left:?}"
    );
}

/// doctor finds such a value (it said both files were healthy, and so did repair), and repair acts on it.
#[test]
fn doctor_finds_a_value_of_another_type_than_its_column_and_repair_acts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (project, event) = with_values_of_another_type(&data);
    let remedy = repair_remedy(&data);
    let (code, table, json) = doctor(&data);
    assert_eq!(code, 1, "{table}");
    let found = [
        (
            "config.db",
            format!("projects row {project}: created_at_ms is not a time (blob)"),
        ),
        (
            "activity.db",
            format!("activity_events row {event}: timestamp_ms is not a time (text)"),
        ),
    ];
    for (db, found) in &found {
        let message = format!("{} is damaged: {found}", data.join(db).display());
        assert_eq!(
            doctor_problems(&json, db),
            [("corrupt".to_string(), message, remedy.clone())],
            "{table}"
        );
    }
    // The full check finds them too (the type check runs beside it, on a second connection), in place and on
    // the copy it checks while an owner runs.
    let full = || {
        let out = run_splitstore(["doctor", "--full", "--json", "--data-dir", utf8(&data)]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        one_json_object(&out.stdout)
    };
    let in_place = full();
    let owners = (
        activity_store::ActivityWriter::open(&data.join("activity.db")).unwrap(),
        config_store::ConfigStore::open(&data.join("config.db")).unwrap(),
    );
    let on_copies = full();
    drop(owners);
    for (json, on_snapshot) in [(in_place, false), (on_copies, true)] {
        for (db, found) in &found {
            let checked = &doctor_db_json(&json, db)["check"];
            assert_eq!(checked["on_snapshot"], on_snapshot, "{json}");
            assert_eq!(checked["level"], "full", "{json}");
            let message = format!("{} is damaged: {found}", data.join(db).display());
            assert_eq!(
                doctor_problems(&json, db),
                [("corrupt".to_string(), message, remedy.clone())],
                "{json}"
            );
        }
    }

    // With no backup to restore, repair says so and offers the salvage, rather than "healthy, left alone".
    let repair = run_splitstore(["repair", "--data-dir", utf8(&data)]);
    let (out, err) = texts(&repair);
    assert_eq!(repair.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("no backup of") && err.contains("--salvage"), "{err}");
}

/// A report that meets damage in activity.db (the daemon's file, which the server cannot repair while the
/// daemon runs) fails alone: the server says so once with the fix and goes on serving changes to config.db,
/// rather than exit and be started again onto the same page.
#[test]
fn a_server_whose_reports_meet_a_damaged_activity_db_goes_on_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 3000);
    let activity = data.join("activity.db");
    // The page of today's running totals, which every report reads.
    let page = query_i64(
        &read_only(&activity),
        "SELECT pageno FROM dbstat WHERE name = 'activity_totals' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1",
    );
    let mut bytes = fs::read(&activity).unwrap();
    bytes[(page as usize - 1) * 4096] = 0x5A;
    fs::write(&activity, &bytes).unwrap();

    // Under a service manager (`NOTIFY_SOCKET`), its status says so beside what the server does, once.
    let (server, told) = server_under_a_manager(dir.path(), &data);
    let (out, err) = texts(&server);
    assert!(server.status.success(), "{err}");
    let troubled = format!(
        "serving {}; reports fail: {} is damaged: database disk image is malformed. What to do: stop every owner \
         of a database in {}",
        data.join("config.db").display(),
        activity.display(),
        utf8(&data)
    );
    assert!(told_once(&told, "; reports fail: ").starts_with(&troubled), "{told:?}");
    let said = format!(
        "splitstore server: a report failed: {} is damaged: database disk image is malformed. What to do: stop every \
         owner of a database in {dir} (the command takes all their locks), then run `splitstore repair --data-dir \
         {dir}`",
        activity.display(),
        dir = utf8(&data)
    );
    assert!(err.starts_with(&said), "{err}");
    assert_eq!(err.matches("a report failed").count(), 1, "said once: {err}");
    let field = |key: &str| summary_field(&out, "server: ", key);
    assert!(field("projects_created") > 1, "serving went on: {out}");
    assert_eq!(
        field("reports_failed"),
        field("projects_created"),
        "every round's report failed: {out}"
    );
    assert_eq!(field("reports"), 0, "{out}");
    // Nothing recorded against activity.db: the server does not own it.
    assert!(store_core::records::damage_seen(&activity).is_none());
}

/// A report that cannot read activity.db because its `-wal` was removed by hand (here after its daemon
/// stopped, with a reader elsewhere keeping the WAL's index) fails alone, retryable; the server serves on.
/// The daemon started then stops at once, saying every process must restart, not to be restarted in a loop.
#[test]
fn a_server_whose_reports_meet_a_removed_wal_goes_on_serving_and_its_daemon_says_to_restart_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    let activity = data.join("activity.db");
    // A reader in another process holding a snapshot while a daemon records: the daemon's checkpoints
    // cannot reach past it, so the new events stay in the -wal after the daemon stops.
    let holder = read_only(&activity);
    holder
        .execute_batch("BEGIN; SELECT COUNT(*) FROM activity_events;")
        .unwrap();
    let daemon = run_splitstore(["daemon", "--events", "100", "--data-dir", utf8(&data)]);
    assert!(daemon.status.success(), "{daemon:?}");
    holder.execute_batch("COMMIT").unwrap();
    assert!(fs::metadata(with_suffix(&activity, "-wal")).unwrap().len() > 0);
    fs::remove_file(with_suffix(&activity, "-wal")).unwrap();

    let (server, told) = server_under_a_manager(dir.path(), &data);
    let (out, err) = texts(&server);
    assert!(server.status.success(), "{err}");
    let troubled = format!(
        "serving {}; reports fail: {}: a read failed (disk I/O error (extended code 522)). What to do: retry",
        data.join("config.db").display(),
        activity.display(),
    );
    assert!(told_once(&told, "; reports fail: ").starts_with(&troubled), "{told:?}");
    // Before: exit 75 with "the operating system refused a write ... check free space".
    let said = format!(
        "splitstore server: a report failed: {}: a read failed (disk I/O error (extended code 522)). What to do: \
         retry: the file or its -wal was shorter than SQLite expected",
        activity.display()
    );
    assert!(err.starts_with(&said), "{err}");
    assert_eq!(err.matches("a report failed").count(), 1, "said once: {err}");
    let field = |key: &str| summary_field(&out, "server: ", key);
    assert!(field("projects_created") > 1, "serving went on: {out}");
    assert!(field("reports_failed") > 0, "{out}");

    // Its daemon, started while a reader keeps that index: before, it failed the same way and exited 75, and
    // a supervisor restarted it into the same failure for as long as the reader lived.
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&data)]);
    let (_, err) = texts(&daemon);
    assert_eq!(daemon.status.code(), Some(2), "not retried: {err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "splitstore daemon: {db}: the index of its write-ahead log ({db}-shm), which a process that has the \
             file open keeps, lists commits its -wal no longer holds: the -wal was removed while that process had \
             the file open, and what it held is gone. What to do: stop every process using {dir} (the daemon, and \
             every process reading the file; it is open in pid {pid}, running `{program}`), then start them again: \
             the first to open the file builds the index again from the -wal, and the file opens with everything \
             the database file and the -wal still hold. Restarting the daemon alone meets this again while another \
             process keeps the old index. Never remove the -wal or -shm of a database in use",
            db = activity.display(),
            dir = utf8(&data),
            // The reader keeping the index is this test's process (it said only "every process reading the file").
            pid = std::process::id(),
            program = store_core::process::command_of(std::process::id()).unwrap(),
        )
    );
    // Every process stopped: the daemon starts, on the events the database file holds.
    drop(holder);
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&data)]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(
        query_i64(&read_only(&activity), "SELECT COUNT(*) FROM activity_events"),
        110,
        "the seeded 100 and these 10: the 100 only the removed -wal held are gone"
    );
}

#[test]
fn a_server_beside_an_activity_db_older_than_it_reads_says_once_that_reports_wait() {
    // A daemon two builds behind keeps activity.db at schema 2; this server reads from 3 on.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let activity = data.join("activity.db");
    fs::create_dir(&data).unwrap();
    drop(store_core::testing::open_at_version(&activity, &activity_store::SCHEMA, 2).unwrap());

    // Under a service manager (`NOTIFY_SOCKET`), its status says so beside what the server does, once.
    let (server, told) = server_under_a_manager(dir.path(), &data);
    let (out, err) = texts(&server);
    assert!(server.status.success(), "{err}");
    let waiting = format!(
        "serving {}; reports wait: {} is at schema 2, this build reads 3 to {}",
        data.join("config.db").display(),
        activity.display(),
        activity_store::SCHEMA.end_version(),
    );
    assert!(told_once(&told, "; reports wait: ").starts_with(&waiting), "{told:?}");
    let said = format!(
        "splitstore server: reports wait: {} is at schema 2, this build reads 3 to {}: the daemon has not upgraded \
         it yet. What to do: start the daemon from this build (`splitstore daemon --data-dir {}`) so it upgrades \
         the file, then retry. Serving goes on.",
        activity.display(),
        activity_store::SCHEMA.end_version(),
        utf8(&data)
    );
    assert!(err.starts_with(&said), "{err}");
    assert_eq!(err.matches("reports wait").count(), 1, "said once: {err}");
    let field = |key: &str| summary_field(&out, "server: ", key);
    assert!(field("projects_created") > 1, "serving went on: {out}");
    assert_eq!((field("reports"), field("reports_failed")), (0, 0), "{out}");
}

/// `splitstore backup --data-dir DATA --to TO --keep 2`: the backup files it took (activity.db's first).
fn backup_into(data: &Path, to: &Path) -> Vec<PathBuf> {
    let out = run_splitstore(["backup", "--data-dir", utf8(data), "--to", utf8(to), "--keep", "2"]);
    assert!(out.status.success(), "{out:?}");
    backup_paths(&out)
}

/// The activity.db backups in `folder`, by name.
fn activity_backups(folder: &Path) -> Vec<PathBuf> {
    named(folder, "activity-")
}

fn events_in(db: &Path) -> i64 {
    query_i64(&read_only(db), "SELECT count(*) FROM activity_events")
}

/// The newest provenance record of `event` in `db`: where it came from.
fn recorded_source(db: &Path, event: &str) -> String {
    read_only(db)
        .query_row(
            "SELECT source_path FROM provenance WHERE event = ?1 ORDER BY id DESC LIMIT 1",
            [event],
            |r| r.get(0),
        )
        .unwrap()
}

/// Commands given relative paths record where a backup, or a restored file, came from by its absolute path:
/// a backup in a shared folder read from anywhere says which data directory it is of (doctor's "taken from",
/// the refusal naming each directory's newest backup). Before, `backup --data-dir data` recorded
/// `data/activity.db`, which two directories typed alike from different places share.
#[test]
fn backups_and_restores_record_their_source_by_its_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    let relative = |args: &[&str]| {
        let out = output_within(splitstore().current_dir(dir.path()).args(args), Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        out
    };
    let out = relative(&["backup", "--data-dir", "data", "--to", "shared"]);
    let taken = backup_paths(&out);
    assert_eq!(taken.len(), 2, "{out:?}");
    for (backup, db) in taken.iter().zip(["activity.db", "config.db"]) {
        let backup = dir.path().join(backup);
        assert_eq!(recorded_source(&backup, "backup"), utf8(&data.join(db)));
    }
    relative(&["restore", "--data-dir", "data", "--from", "shared"]);
    for (backup, db) in taken.iter().zip(["activity.db", "config.db"]) {
        assert_eq!(
            recorded_source(&data.join(db), "restore"),
            utf8(&dir.path().join(backup))
        );
    }
}

/// A data directory given relative (to the daemon by a supervisor, say) is named absolute in what is said
/// and in what it records: doctor, run later from anywhere, shows the file that was meant. Before, the record
/// said `data/activity.db` (and the remedy `--data-dir data`), and a directory named `-data` was read as an
/// option when pasted.
#[test]
fn a_data_directory_given_relative_is_named_absolute_in_remedies_and_records() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["data", "-data"] {
        let data = dir.path().join(name);
        seed_data_dir(&data, 100);
        damage_middle_page(&data.join("activity.db"));
        let arg = format!("--data-dir={name}");
        let out = output_within(
            splitstore()
                .current_dir(dir.path())
                .args(["daemon", &arg, "--events", "1"]),
            Duration::from_secs(60),
        );
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let repair = format!("`splitstore repair --data-dir {}`", utf8(&data));
        assert!(stderr.contains(&repair), "{stderr}");

        // What the daemon recorded, as doctor shows it.
        let (_, table, _) = doctor(&data);
        let recorded = table
            .lines()
            .find(|l| l.trim_start().starts_with("damage seen"))
            .unwrap_or_else(|| panic!("{table}"));
        let file = data.join("activity.db");
        assert!(
            recorded.contains(&format!("] {} is damaged", file.display())),
            "{table}"
        );
    }
}

/// A report whose bound lies inside a quarter hour that retention pruned in part says so on stderr: the
/// answer counts less than was recorded there, and would otherwise read as history that changed by itself.
#[test]
fn a_report_bound_inside_a_partly_pruned_quarter_hour_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    let base = chrono::DateTime::parse_from_rfc3339("2020-03-02T10:00:00Z")
        .unwrap()
        .to_utc();
    let minutes = |m: i64| base + chrono::Duration::minutes(m);
    let mut writer = activity_store::ActivityWriter::open(&data.join("activity.db")).unwrap();
    for (start, end) in [(1, 2), (3, 4), (10, 3000)] {
        let id = writer
            .start_session(&activity_store::NewSession::new("code", minutes(start)))
            .unwrap();
        assert!(writer.end_session(id, minutes(end)).unwrap());
    }
    writer.prune_before(minutes(24 * 60)).unwrap();
    drop(writer);

    let d = utf8(&data);
    let out = run_splitstore([
        "report",
        "--data-dir",
        d,
        "--from",
        "2020-03-02T10:02:00Z",
        "--to",
        "2020-03-03",
    ]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "splitstore report: note: a bound of the range lies in 2020-03-02T10:00:00Z .. 2020-03-02T10:15:00Z, a \
         quarter hour whose sessions retention pruned in part: 1 of the 3 sessions that started in it are still \
         stored, and only those are counted in the range's part of it; bounds on quarter hours are counted \
         exactly, pruned sessions included\n"
    );
    let out = run_splitstore([
        "report",
        "--data-dir",
        d,
        "--from",
        "2020-03-02T10:00:00Z",
        "--to",
        "2020-03-03",
    ]);
    assert!(out.status.success());
    assert_eq!(texts(&out).1, "", "a bound on a quarter hour is exact");
}

/// Two data directories backing up into one folder (one backup drive for two profiles): each one's
/// rotation keeps its own newest two and never removes the other's, and a restore from the folder puts
/// each one's own newest backup back, even where the other's are newer. Before lineages, rotation went by
/// file name only (the second directory's backups removed the first's) and the restore took the newest
/// backup in the folder, the other directory's.
#[test]
fn two_data_directories_backing_up_into_one_folder_keep_and_restore_their_own_backups() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // The first directory's own backup folder, which the second one backs up into too.
    let shared = first.join("backups");
    seed_data_dir(&first, 700);
    seed_data_dir(&second, 1500);
    // activity.db's backup of each directory, three rounds, taken in turn.
    let (mut first_kept, mut second_kept) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        first_kept.push(backup_into(&first, &shared)[0].clone());
        second_kept.push(backup_into(&second, &shared)[0].clone());
    }
    // With --keep 2, each directory's first backup goes.
    first_kept.remove(0);
    second_kept.remove(0);
    let mut expected: Vec<PathBuf> = first_kept.iter().chain(&second_kept).cloned().collect();
    expected.sort();
    assert_eq!(
        activity_backups(&shared),
        expected,
        "each directory's newest two, nothing else"
    );
    assert_eq!(named(&shared, "config-").len(), 4);

    // doctor names the first directory's own newest backup, not the second's newer one, and lists the
    // second's apart.
    let (_, table, json) = doctor(&first);
    let shown = doctor_db_json(&json, "activity.db")["newest_backup"]["path"]
        .as_str()
        .map(PathBuf::from);
    assert_eq!(shown.as_ref(), Some(&first_kept[1]), "{json}");
    let others: Vec<PathBuf> = doctor_db_json(&json, "activity.db")["other_files_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| PathBuf::from(b["path"].as_str().unwrap()))
        .collect();
    assert_eq!(others, [second_kept[1].clone(), second_kept[0].clone()], "{json}");
    let line = format!(
        "  others' backups 2 backup(s) of other activity.db files beside them (not rotated with this one's); \
         newest {}, taken from {}",
        second_kept[1].display(),
        second.join("activity.db").display()
    );
    assert!(table.lines().any(|l| l == line), "{table}");

    // The first directory records more, then is restored from the folder: its own newest backup comes back.
    let daemon = run_splitstore(["daemon", "--events", "300", "--data-dir", utf8(&first)]);
    assert!(daemon.status.success(), "{daemon:?}");
    let out = run_splitstore(["restore", "--data-dir", utf8(&first), "--from", utf8(&shared)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let activity = first.join("activity.db");
    assert!(
        stdout.starts_with(&format!(
            "restored {} from {} ",
            activity.display(),
            first_kept[1].display()
        )),
        "{stdout}"
    );
    assert!(stdout.lines().next().unwrap().ends_with(LEFT_OUT_300), "{stdout}");
    assert_eq!(events_in(&activity), 700);
}

/// What a restore of the first directory's backup leaves out after its daemon recorded 300 more events.
const LEFT_OUT_300: &str = "; the file it replaced had added rows since the backup (at most 300 in activity_events, 3 \
                            in activity_sessions): they are not in the restored file";

/// A new install (fresh files of their own lineage) restored from a folder holding the old install's
/// backups only: those are restored, and the line says the file replaced was another one rather than
/// counting rows "added since the backup" across two different files.
#[test]
fn a_new_install_restores_the_old_installs_backups_and_says_the_replaced_file_was_another() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, shared) = (
        dir.path().join("old"),
        dir.path().join("new"),
        dir.path().join("shared"),
    );
    seed_data_dir(&old, 700);
    let taken = backup_into(&old, &shared);
    seed_data_dir(&new, 1200);

    let out = run_splitstore(["restore", "--data-dir", utf8(&new), "--from", utf8(&shared)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let activity = new.join("activity.db");
    let line = stdout.lines().next().unwrap();
    assert!(
        line.starts_with(&format!("restored {} from {} ", activity.display(), taken[0].display())),
        "{stdout}"
    );
    assert!(
        line.ends_with(
            "; the file it replaced was not the one this backup was taken from (another lineage: a new install's \
             file, or another data directory's): its rows are not in the restored file"
        ),
        "{line}"
    );
    assert_eq!(events_in(&activity), 700);
    assert_eq!(
        events_in(&named(&new, "activity.db.replaced-")[0]),
        1200,
        "the new install's file is kept"
    );
}

/// Two data directories (`first`, `second`) seeded with the given numbers of events, each backed up once
/// into one folder (`shared`), the first one first.
struct Shared {
    first: PathBuf,
    second: PathBuf,
    shared: PathBuf,
    first_taken: Vec<PathBuf>,
    second_taken: Vec<PathBuf>,
}

fn two_directories_backed_up_into_one_folder(root: &Path, first_events: u64, second_events: u64) -> Shared {
    let (first, second, shared) = (root.join("first"), root.join("second"), root.join("shared"));
    seed_data_dir(&first, first_events);
    seed_data_dir(&second, second_events);
    let first_taken = backup_into(&first, &shared);
    let second_taken = backup_into(&second, &shared);
    Shared {
        first,
        second,
        shared,
        first_taken,
        second_taken,
    }
}

/// A restore into a data directory whose files are gone, from a folder holding backups of two data
/// directories: nothing tells which are its own, so it is refused with both named and the way on, and
/// nothing is created.
#[test]
fn a_restore_with_no_file_to_tell_by_from_a_folder_of_two_directories_backups_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Shared {
        first,
        second,
        shared,
        first_taken,
        second_taken,
    } = two_directories_backed_up_into_one_folder(dir.path(), 300, 300);
    let empty = dir.path().join("empty");

    let out = run_splitstore(["restore", "--data-dir", utf8(&empty), "--from", utf8(&shared)]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "splitstore restore: {shared} holds backups of 2 different activity.db files (the newest of each: {b2}, \
             taken from {s2}; {b1}, taken from {s1}), and nothing tells which of them are {e}'s. What to do: restore \
             the one you mean by naming its file: `splitstore restore --data-dir {empty} --from FILE`; or move the \
             other data directories' backups out of {shared} and run the command again; nothing was changed",
            shared = shared.display(),
            b1 = first_taken[0].display(),
            s1 = first.join("activity.db").display(),
            b2 = second_taken[0].display(),
            s2 = second.join("activity.db").display(),
            e = empty.join("activity.db").display(),
            empty = empty.display(),
        )
    );
    for name in ["activity.db", "config.db"] {
        assert!(!empty.join(name).exists(), "{name} was created");
    }
}

/// A damaged activity.db repaired from a folder shared with another data directory whose backups are
/// newer: the damaged file's own backup is restored, never the other directory's (which the repair took
/// before, putting another database's rows in place without a word).
#[test]
fn a_repair_from_a_shared_folder_restores_the_damaged_files_own_backup() {
    let dir = tempfile::tempdir().unwrap();
    let Shared {
        first,
        shared,
        first_taken: own,
        ..
    } = two_directories_backed_up_into_one_folder(dir.path(), 3000, 5000);
    let activity = first.join("activity.db");
    damage_middle_page(&activity);

    let out = run_splitstore(["repair", "--data-dir", utf8(&first), "--from", utf8(&shared)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "activity.db: restored from {} (damaged file kept at",
            own[0].display()
        )),
        "{stdout}"
    );
    assert_eq!(contents(&activity, &["provenance"]), contents(&own[0], &["provenance"]));
}

/// A backup of a directory whose server has not created config.db yet: stdout lists the one file taken and
/// nothing else (a script reads it as the list of backups: "backup: not backed up: ..." read as a path),
/// and what was not backed up is said on stderr.
#[test]
fn a_half_backup_lists_only_the_file_taken_on_stdout_and_says_the_other_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    let out = run_splitstore(["backup", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    let taken = backup_paths(&out);
    assert_eq!(taken.len(), 1, "{out:?}");
    assert!(
        taken[0].starts_with(data.join("backups")) && taken[0].exists(),
        "{taken:?}"
    );
    assert!(
        texts(&out).1.starts_with(&format!(
            "splitstore backup: note: not backed up: {} does not exist",
            data.join("config.db").display()
        )),
        "{out:?}"
    );
}

/// `backup` and `restore` printed only lines for people (and `backup`'s to stdout, its notes to stderr);
/// a program driving them parsed text. With `--json` each prints one object, its failures too, as `repair`
/// and `doctor` do, and never a settings value.
#[test]
fn backup_and_restore_print_one_json_object_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let out = run_splitstore(["backup", "--data-dir", d, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    let taken: Vec<&str> = json["taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(taken.len(), 2, "{json}");
    assert!(taken.iter().all(|t| Path::new(t).is_file()), "{json}");
    assert_eq!(
        (&json["failed"], &json["not_backed_up"]),
        (&Json::Array(vec![]), &Json::Array(vec![])),
        "{json}"
    );

    // Rows added after the backup: the restore leaves them out, and says so.
    seed_data_dir(&data, 100);
    let out = run_splitstore([
        "restore",
        "--data-dir",
        d,
        "--from",
        utf8(&data.join("backups")),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(SECRET_VALUE) && !text.contains(PLAIN_VALUE), "{text}");
    let json: Json = serde_json::from_str(&text).unwrap();
    let restored = json["restored"].as_array().unwrap();
    assert_eq!(restored.len(), 2, "{json}");
    let activity = &restored[0];
    assert_eq!(activity["path"], utf8(&data.join("activity.db")), "{json}");
    assert_eq!(activity["restored_from"], taken[0], "{json}");
    assert!(
        activity["moved_aside"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{d}/activity.db.replaced-")),
        "{json}"
    );
    assert!(
        activity["added_since_backup"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["activity_events", 100])),
        "{json}"
    );
    assert_eq!(json["copied"], Json::Null, "{json}");

    let missing = data.join("no-such-backups");
    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&missing), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&json["outcome"], &json["error"]["path"]),
        (&Json::from("failed"), &Json::from(utf8(&missing))),
        "{json}"
    );
}

/// A backup file with a `-wal` beside it (copied with it, or written to by sqlite3 since) verifies with the
/// commits in that `-wal`, and the restore said it put that backup back, but copied the file alone: the
/// placed file lacked those rows (50 events here), while the count of rows left out was taken against them.
/// The `-wal` now goes with the copy, which is checkpointed before it is placed.
#[test]
fn a_backup_with_a_wal_beside_it_is_restored_with_the_commits_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, taken) = backed_up(dir.path());
    let d = utf8(&data);
    // The backup, written to in WAL mode and copied with its -wal before the connection closes.
    let from = dir.path().join("from");
    fs::create_dir(&from).unwrap();
    let written = from.join(taken.file_name().unwrap());
    let scratch = from.join("scratch.db");
    fs::copy(&taken, &scratch).unwrap();
    let conn = rusqlite::Connection::open(&scratch).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         INSERT INTO activity_events (session_id, event_type, app, title, url, timestamp_ms, idle_seconds)
             SELECT session_id, event_type, app, title, url, timestamp_ms, idle_seconds FROM activity_events LIMIT 50;",
    )
    .unwrap();
    fs::copy(&scratch, &written).unwrap();
    fs::copy(with_suffix(&scratch, "-wal"), with_suffix(&written, "-wal")).unwrap();
    drop(conn);
    fs::remove_file(&scratch).unwrap();
    let in_backup = count_rows(&written, "activity_events");
    assert_eq!(
        in_backup,
        count_rows(&taken, "activity_events") + 50,
        "the backup reads with its -wal"
    );

    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&written)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count_rows(&data.join("activity.db"), "activity_events"), in_backup);
    assert!(
        !data.join("activity.db-wal").exists() || fs::metadata(data.join("activity.db-wal")).unwrap().len() == 0,
        "nothing of the copy's -wal is left beside the placed file"
    );
}

/// `db` as SQLite's usual recovery recipe leaves it, `sqlite3 db .dump | sqlite3 NEW` and `NEW` moved into its
/// place (its owner stopped), made as the shell's `.dump` makes it: the tables' SQL as stored, their rows (the
/// triggers created after them, so none fires), `sqlite_sequence`, then the indexes, views and triggers. No
/// header field comes through: application_id, user_version and auto_vacuum are 0, the journal mode DELETE.
fn rebuild_by_dump(db: &Path) {
    let new = with_suffix(db, ".dumped");
    let conn = rusqlite::Connection::open(&new).unwrap();
    conn.execute("ATTACH ?1 AS old", [utf8(db)]).unwrap();
    let objects = |kinds: &str| -> Vec<(String, String, String)> {
        query_column::<String, Vec<_>>(
            &conn,
            &format!(
                "SELECT type || char(31) || name || char(31) || sql FROM old.sqlite_schema
                 WHERE type IN ({kinds}) AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY rowid"
            ),
        )
        .into_iter()
        .map(|row| {
            let mut cells = row.split('\u{1f}').map(String::from);
            (cells.next().unwrap(), cells.next().unwrap(), cells.next().unwrap())
        })
        .collect()
    };
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN").unwrap();
    for (_, table, sql) in objects("'table'") {
        conn.execute_batch(&sql).unwrap();
        conn.execute_batch(&format!("INSERT INTO main.\"{table}\" SELECT * FROM old.\"{table}\""))
            .unwrap();
    }
    conn.execute_batch(
        "DELETE FROM main.sqlite_sequence; INSERT INTO main.sqlite_sequence SELECT * FROM old.sqlite_sequence",
    )
    .unwrap();
    for (_, _, sql) in objects("'index', 'view', 'trigger'") {
        conn.execute_batch(&sql).unwrap();
    }
    conn.execute_batch("COMMIT; DETACH old").unwrap();
    drop(conn);
    for sidecar in ["-wal", "-shm"] {
        let _ = fs::remove_file(with_suffix(db, sidecar));
    }
    fs::rename(&new, db).unwrap();
}

/// Rows of every table of `db` but `provenance` (which a repair adds its record to), by table.
fn rows_by_table(db: &Path) -> BTreeMap<String, i64> {
    let names: Vec<String> = query_column(
        &read_only(db),
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'provenance' ORDER BY name",
    );
    names
        .into_iter()
        .map(|t| (t.clone(), count_rows(db, &format!("\"{t}\""))))
        .collect()
}

/// A seeded data directory whose activity.db and config.db were both rebuilt by [`rebuild_by_dump`], with
/// the rows of each file as they were before.
fn dump_rebuilt_data_dir(dir: &Path) -> (PathBuf, [BTreeMap<String, i64>; 2]) {
    let data = with_settings(dir);
    let rows = ["activity.db", "config.db"].map(|name| {
        let db = data.join(name);
        let before = rows_by_table(&db);
        rebuild_by_dump(&db);
        assert_eq!(rows_by_table(&db), before, "the dump kept every row of {name}");
        assert_eq!(store_core::testing::user_version_of(&db), 0);
        before
    });
    (data, rows)
}

/// The schema of activity.db or config.db.
fn schema_of(db: &Path) -> &'static store_core::Schema {
    if db.ends_with("activity.db") {
        &activity_store::SCHEMA
    } else {
        &config_store::SCHEMA
    }
}

/// What every open of a file rebuilt by `.dump` says of it ([`store_core::Error::HeaderIdsLost`]).
fn header_ids_lost_text(data: &Path, name: &str, version: u32) -> (String, String) {
    let db = data.join(name);
    (
        format!(
            "{} is {name} at schema {version} rebuilt without the ids SQLite keeps in its header: its application_id \
             and user_version are 0 (a copy made with `sqlite3 {name} .dump` or `.recover` carries every table and \
             row, not them), while its schema_migrations and its tables are exactly this build's at that version",
            db.display()
        ),
        format!(
            "stop every owner of a database in {} (the command takes all their locks), then run `splitstore repair \
             --data-dir {}`: it checks the file's tables against this build's schema again and writes the two ids \
             back into its header, changing no row; the file was not changed",
            data.display(),
            data.display()
        ),
    )
}

#[test]
fn a_data_directory_rebuilt_by_sqlite_dump_is_named_as_such_by_every_open_never_another_applications() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = dump_rebuilt_data_dir(dir.path());
    let activity = data.join("activity.db");
    let config = data.join("config.db");
    let (a_what, a_remedy) = header_ids_lost_text(&data, "activity.db", activity_store::SCHEMA.end_version());
    let (c_what, c_remedy) = header_ids_lost_text(&data, "config.db", config_store::SCHEMA.end_version());

    // The libraries' owners and readers: the typed kind, the text pinned.
    let expected = |what: &str, remedy: &str| format!("{what}. What to do: {remedy}");
    let err = activity_store::ActivityWriter::open_in(&data).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    assert_eq!(err.to_string(), expected(&a_what, &a_remedy));
    let err = activity_store::ActivityReader::open(&activity).latest().unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    assert_eq!(err.to_string(), expected(&a_what, &a_remedy));
    let err = config_store::ConfigStore::open_in(&data).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    assert_eq!(err.to_string(), expected(&c_what, &c_remedy));
    let err = config_store::ConfigReader::open(&config).check().unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    assert_eq!(err.to_string(), expected(&c_what, &c_remedy));

    // The daemon, the server and report refuse to start, saying the same.
    for (args, what) in [
        (vec!["daemon", "--events", "10"], &a_what),
        (vec!["server", "--seconds", "0"], &c_what),
        (vec!["report"], &a_what),
    ] {
        let out = run_splitstore(args.iter().copied().chain(["--data-dir", utf8(&data)]));
        let (stdout, stderr) = texts(&out);
        assert!(!out.status.success(), "{args:?}: {stdout}");
        assert!(stderr.contains(what.as_str()), "{args:?}: {stderr}");
        assert!(!stderr.contains("another application"), "{args:?}: {stderr}");
    }
    // Offered as a backup, it is not one this application took (repair's remedy is no remedy for a backup).
    let err = store_core::restore::verify_backup(&activity, &activity_store::SCHEMA, None).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::WrongDatabase, "{err}");
    assert!(
        err.to_string().contains("rebuilt without its header's application_id"),
        "{err}"
    );
    // No open guessed and wrote the header back.
    for db in [&activity, &config] {
        assert_eq!(store_core::testing::user_version_of(db), 0, "{}", db.display());
    }
}

/// A data directory whose name is not UTF-8 (Latin-1, from an old disk): doctor's remedy named it with U+FFFD
/// for the bad byte, and its command, pasted, started a server in a new directory of that other name, beside
/// the user's data (whose configuration then looked gone). The command, run by a shell as it is, now starts
/// the server in this very directory, and no other directory is made.
#[test]
fn a_remedy_for_a_data_directory_not_named_in_utf8_runs_in_that_directory() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9 data"));
    drop(activity_store::ActivityWriter::open_in(&data).unwrap());
    let out = splitstore()
        .args(["doctor", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json = one_json_object(&out.stdout);
    let (code, _, remedy) = doctor_problems(&json, "config.db").remove(0);
    assert_eq!(code, "missing");
    let command = remedy
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("a command in backticks: {remedy}"));
    let expected = format!(
        "splitstore server --data-dir \"$(printf '{}/caf\\351 data')\"",
        dir.path().display()
    );
    assert_eq!(command, expected);

    let server = command.replacen("splitstore", env!("CARGO_BIN_EXE_splitstore"), 1) + " --seconds 0";
    let run = std::process::Command::new("sh").args(["-c", &server]).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(
        data.join("config.db").exists(),
        "the server ran in the directory doctor was asked about"
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [data.file_name().unwrap()], "no other directory made");
}

#[test]
fn doctor_names_a_file_rebuilt_by_sqlite_dump_with_repair_as_its_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = dump_rebuilt_data_dir(dir.path());
    let (code, stdout, json) = doctor(&data);
    assert_ne!(code, 0, "{stdout}");
    for (name, version) in [
        ("activity.db", activity_store::SCHEMA.end_version()),
        ("config.db", config_store::SCHEMA.end_version()),
    ] {
        let (what, remedy) = header_ids_lost_text(&data, name, version);
        assert_eq!(
            doctor_problems(&json, name),
            [("header_ids_lost".to_string(), what.clone(), remedy.clone())],
            "{json}"
        );
        assert!(stdout.contains(&what) && stdout.contains(&remedy), "{stdout}");
    }
}

#[test]
fn repair_as_doctor_says_writes_the_header_ids_back_keeping_every_row_and_the_fresh_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (data, rows) = dump_rebuilt_data_dir(dir.path());
    let provenance = |db: &Path| count_rows(db, "provenance");
    let provenance_before = ["activity.db", "config.db"].map(|n| provenance(&data.join(n)));

    // The remedy, run verbatim.
    let (_, _, json) = doctor(&data);
    let remedy = doctor_problems(&json, "activity.db")[0].2.clone();
    let command = remedy.split('`').nth(1).unwrap();
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("splitstore"));
    let out = run_splitstore(words);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for name in ["activity.db", "config.db"] {
        assert!(
            stdout.contains(&format!("{name}: rebuilt without its header ids")),
            "{stdout}"
        );
    }

    let fresh = dir.path().join("fresh");
    drop(activity_store::ActivityWriter::open_in(&fresh).unwrap());
    drop(config_store::ConfigStore::open_in(&fresh).unwrap());
    for (i, name) in ["activity.db", "config.db"].into_iter().enumerate() {
        let db = data.join(name);
        assert_eq!(rows_by_table(&db), rows[i], "{name}: every row kept");
        assert_eq!(provenance(&db), provenance_before[i] + 1, "{name}: the repair's record");
        assert_eq!(
            store_core::testing::fingerprint_of(&db),
            store_core::testing::fingerprint_of(&fresh.join(name)),
            "{name}"
        );
        assert_integrity_ok(&db);
    }
    // The owners open the files as theirs again, and doctor finds nothing.
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&data)]);
    assert!(daemon.status.success(), "{daemon:?}");
    let server = run_splitstore(["server", "--seconds", "0", "--data-dir", utf8(&data)]);
    assert!(server.status.success(), "{server:?}");
    assert_eq!(
        count_rows(&data.join("activity.db"), "activity_events"),
        rows[0]["activity_events"] + 10
    );
    let (code, stdout, _) = doctor(&data);
    assert_eq!(code, 0, "{stdout}");
}

/// A session deleted in the `sqlite3` shell (a night the tracker got wrong, taken off by hand): the running
/// totals, kept by triggers the shell's delete does not run, went on counting it, and so did `report`, while
/// doctor called the file healthy. Doctor now finds it (`totals_disagree`, naming `repair`), repair recounts
/// the totals, and the report no longer counts it.
#[test]
fn a_session_deleted_in_the_sqlite3_shell_is_found_by_doctor_and_taken_off_the_totals_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 100);
    let activity = data.join("activity.db");
    // Eight sessions from 2026-11-02, ten hours apart, inserted in the shell (an insert runs the triggers, as
    // the daemon's writes do): an hour each but the sixth, which ran nine hours.
    const NOV_2: i64 = 1_793_577_600_000;
    let shell = rusqlite::Connection::open(&activity).unwrap();
    shell
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 7)
             INSERT INTO activity_sessions (app, start_time_ms, end_time_ms, duration_seconds, end_reason)
             SELECT 'app', {NOV_2} + i * 36000000, {NOV_2} + i * 36000000 + d * 1000, d, 'ended'
             FROM (SELECT i, CASE i WHEN 5 THEN 32400 ELSE 3600 END AS d FROM n);"
        ))
        .unwrap();
    let d = utf8(&data);
    let report = || -> Vec<(Json, Json)> {
        let out = run_splitstore([
            "report",
            "--data-dir",
            d,
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-10",
            "--json",
        ]);
        assert!(out.status.success(), "{out:?}");
        let rows: Vec<Json> = serde_json::from_slice(&out.stdout).unwrap();
        rows.iter()
            .map(|r| (r["seconds"].clone(), r["sessions"].clone()))
            .collect()
    };
    assert_eq!(report(), [(Json::from(7 * 3600 + 32400), Json::from(8))]);

    shell
        .execute_batch(&format!(
            "DELETE FROM activity_sessions WHERE start_time_ms = {NOV_2} + 5 * 36000000"
        ))
        .unwrap();
    drop(shell);
    assert_eq!(
        report(),
        [(Json::from(7 * 3600 + 32400), Json::from(8))],
        "the totals still count it"
    );
    let (code, _, json) = doctor(&data);
    assert_eq!(code, 1);
    assert_eq!(
        doctor_problems(&json, "activity.db"),
        [(
            "totals_disagree".to_string(),
            format!(
                "{}: its running totals count 1 ended session(s) (32400 s) in 1 quarter hour(s) of a project from \
                 2026-11-02T01:15:00Z on, where it holds 0 (0 s) (a row deleted or changed by a tool that runs none \
                 of this application's code, such as the sqlite3 shell or a database browser); reports count what \
                 the totals count",
                activity.display()
            ),
            format!(
                "`splitstore repair --data-dir {d}` recounts them from the rows the file holds, from \
                 2026-11-02T01:15:00Z on (before it they keep what retention pruned), in one transaction"
            )
        )]
    );

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert!(
        texts(&repair).0.contains(
            "activity.db: its running totals count 1 ended session(s) (32400 s) in 1 quarter hour(s) of a project \
             from 2026-11-02T01:15:00Z on, where it holds 0 (0 s): recounted from the sessions it holds, from \
             2026-11-02T01:15:00Z on (before it the totals keep what retention pruned), in one transaction \
             recorded in its provenance\n"
        ),
        "{repair:?}"
    );
    assert_eq!(report(), [(Json::from(7 * 3600), Json::from(7))]);
    let (code, stdout, _) = doctor(&data);
    assert_eq!(code, 0, "{stdout}");
}

/// An index and the trigger that keeps the running totals, dropped in the `sqlite3` shell: the daemon ran on
/// (reports slower, the sessions it ended left out of the totals) while doctor called the file healthy. The
/// daemon's start and doctor say it (`schema_objects_missing`; doctor also `totals_disagree`), and repair
/// creates them again, then recounts the totals: the report counts every session again.
#[test]
fn an_index_and_a_trigger_dropped_in_the_sqlite3_shell_are_created_again_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 30);
    let activity = data.join("activity.db");
    // A session of a month before (the totals are compared from after it), then the drops.
    rusqlite::Connection::open(&activity)
        .unwrap()
        .execute_batch(
            "INSERT INTO activity_sessions (app, start_time_ms, end_time_ms, duration_seconds, end_reason)
             VALUES ('app', 1793577600000, 1793581200000, 3600, 'ended');
             DROP INDEX activity_sessions_start;
             DROP TRIGGER activity_totals_on_end;",
        )
        .unwrap();
    let d = utf8(&data);
    let message = format!(
        "{} lacks 2 of its schema's indexes and triggers, dropped or changed by a tool: index \
         activity_sessions_start (dropped), trigger activity_totals_on_end (dropped). Without an index the reads \
         that use it scan the table; without a trigger what it keeps is no longer kept",
        activity.display()
    );
    let remedy = format!(
        "`splitstore repair --data-dir {d}` creates them again as this build's schema 5 has them, in one \
         transaction (and recounts what a missing trigger did not keep)"
    );
    let daemon = run_splitstore(["daemon", "--events", "300", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert!(
        texts(&daemon).1.starts_with(&format!(
            "splitstore daemon: warning: {message}. What to do: {remedy}\n"
        )),
        "said at the start: {daemon:?}"
    );
    let sessions_in_report = || -> i64 {
        let out = run_splitstore(["report", "--data-dir", d, "--json"]);
        let rows: Vec<Json> = serde_json::from_slice(&out.stdout).unwrap();
        rows.iter().map(|r| r["sessions"].as_i64().unwrap()).sum()
    };
    let held = count_rows(&activity, "activity_sessions") as i64;
    assert!(
        sessions_in_report() < held,
        "the sessions ended without the trigger are not counted"
    );

    let (code, _, json) = doctor(&data);
    assert_eq!(code, 1);
    let problems = doctor_problems(&json, "activity.db");
    assert_eq!(
        problems.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["schema_objects_missing", "totals_disagree"]
    );
    assert_eq!((&problems[0].1, &problems[0].2), (&message, &remedy));

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let (stdout, _) = texts(&repair);
    assert!(
        stdout.contains(
            "activity.db: created again as this build's schema has them: index activity_sessions_start (dropped), \
             trigger activity_totals_on_end (dropped) (in one transaction recorded in its provenance)\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("activity.db: its running totals count"), "{stdout}");
    assert_eq!(sessions_in_report(), held);
    let (code, stdout, _) = doctor(&data);
    assert_eq!(code, 0, "{stdout}");
    let daemon = run_splitstore(["daemon", "--events", "300", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert!(!texts(&daemon).1.contains("warning"), "{daemon:?}");
    assert_eq!(sessions_in_report(), count_rows(&activity, "activity_sessions") as i64);
}

/// activity.db whose `user_version` a user set back by hand (`PRAGMA user_version = 3` in the `sqlite3` shell,
/// as done to let an earlier build open a newer file). Each start of this build ran migration 4 again ("table
/// activity_totals already exists"), its remedy to go back to the previous build, and took one more copy of
/// the whole file per start. Now the start is refused naming the cause, with no copy taken and the file
/// unchanged; doctor names `repair`, which writes the version back; every row is kept, and the daemon starts.
#[test]
fn a_user_version_set_back_by_hand_is_told_and_repair_writes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 300);
    let activity = data.join("activity.db");
    rusqlite::Connection::open(&activity)
        .unwrap()
        .execute_batch("PRAGMA user_version = 3")
        .unwrap();
    let rows = rows_by_table(&activity);
    let d = utf8(&data);
    let message = format!(
        "{} is activity.db at schema 5 whose user_version reads 3: its schema_migrations records this build's \
         migrations 1 to 5 and its tables are exactly this build's at that version, so user_version was set back \
         by hand (`PRAGMA user_version = 3`, as done to let an earlier build open a newer file), and migrating it \
         again would fail",
        activity.display()
    );
    let remedy = format!(
        "stop every owner of a database in {d} (the command takes all their locks), then run `splitstore repair \
         --data-dir {d}`: it checks the file's tables against this build's schema again and writes user_version 5 \
         back into its header, changing no row; the file was not changed"
    );

    for _ in 0..2 {
        let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
        assert_eq!(daemon.status.code(), Some(2), "{daemon:?}");
        assert_eq!(
            texts(&daemon).1,
            format!("splitstore daemon: {message}. What to do: {remedy}\n")
        );
    }
    assert!(!data.join("backups/pre-migration").exists(), "no copy taken");
    assert_eq!(store_core::testing::user_version_of(&activity), 3);
    assert_eq!(rows_by_table(&activity), rows);
    let (_, _, json) = doctor(&data);
    assert!(
        doctor_problems(&json, "activity.db").contains(&("header_ids_lost".to_string(), message, remedy)),
        "{json}"
    );

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert!(
        texts(&repair).0.contains(
            "activity.db: its user_version read 3, set back by hand below the migrations it records; its tables are \
             this build's schema 5 exactly: user_version 5 written back, every row kept\n"
        ),
        "{repair:?}"
    );
    assert_eq!(store_core::testing::user_version_of(&activity), 5);
    assert_eq!(rows_by_table(&activity), rows);
    let daemon = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(count_rows(&activity, "activity_events"), rows["activity_events"] + 10);
    let (code, stdout, _) = doctor(&data);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn a_file_with_this_schemas_tables_and_history_but_another_schema_stays_another_applications() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = dump_rebuilt_data_dir(dir.path());
    let activity = data.join("activity.db");
    let config = data.join("config.db");
    // As the dump left them, they are this build's files (the precision below is not a blindness).
    for db in [&activity, &config] {
        let err = store_core::read_pool::open_database_read_only(db, schema_of(db), None).unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    }
    // The same tables and history, one column more; the same tables, a migration's checksum not this build's.
    let conn = rusqlite::Connection::open(&activity).unwrap();
    conn.execute_batch("ALTER TABLE activity_events ADD COLUMN note TEXT")
        .unwrap();
    drop(conn);
    let conn = rusqlite::Connection::open(&config).unwrap();
    conn.execute_batch("UPDATE schema_migrations SET checksum = 'elsewhere' WHERE version = 1")
        .unwrap();
    drop(conn);
    let before = [&activity, &config].map(|db| fs::read(db).unwrap());

    let err = activity_store::ActivityWriter::open_in(&data).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::WrongDatabase, "{err}");
    assert!(err.to_string().contains("it belongs to another application"), "{err}");
    let err = config_store::ConfigStore::open_in(&data).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::WrongDatabase, "{err}");
    let (code, _, json) = doctor(&data);
    assert_ne!(code, 0);
    for name in ["activity.db", "config.db"] {
        // The file's, and the last start's failure the opens above left.
        let codes: Vec<String> = doctor_problems(&json, name).into_iter().map(|p| p.0).collect();
        assert_eq!(codes, ["wrong_database", "wrong_database"], "{json}");
    }
    for salvage in [&[][..], &["--salvage"][..]] {
        let out = run_splitstore(["repair", "--data-dir", utf8(&data)].iter().chain(salvage));
        assert_eq!(out.status.code(), Some(2), "{out:?}");
    }
    assert_eq!([&activity, &config].map(|db| fs::read(db).unwrap()), before);
}

#[test]
fn a_file_of_an_older_schema_rebuilt_by_sqlite_dump_gets_its_version_back_and_its_owner_migrates_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("activity.db");
    drop(store_core::testing::open_at_version(&db, &activity_store::SCHEMA, 2).unwrap());
    rebuild_by_dump(&db);
    let err = activity_store::ActivityWriter::open_in(&data).unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::HeaderIdsLost, "{err}");
    assert_eq!(err.to_string(), {
        let (what, remedy) = header_ids_lost_text(&data, "activity.db", 2);
        format!("{what}. What to do: {remedy}")
    });

    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--salvage"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("activity.db: rebuilt without its header ids"),
        "{stdout}"
    );
    assert!(stdout.contains("schema 2 exactly"), "{stdout}");
    assert_eq!(store_core::testing::user_version_of(&db), 2);
    // Its owner's next start migrates it as any file of that version (a backup first).
    drop(activity_store::ActivityWriter::open_in(&data).unwrap());
    let fresh = dir.path().join("fresh");
    drop(activity_store::ActivityWriter::open_in(&fresh).unwrap());
    assert_eq!(
        store_core::testing::fingerprint_of(&db),
        store_core::testing::fingerprint_of(&fresh.join("activity.db"))
    );
}

/// The AUTOINCREMENT counter of `table` in the database at `db` (0 before its first row).
fn counter_of(db: &Path, table: &str) -> i64 {
    read_only(db)
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table], |r| r.get(0))
        .unwrap_or(0)
}

/// A scheduled `backup` and a manual one overlapping on one folder while the server writes: each was named by
/// the clock read before its snapshot, and the `-1` of a same-millisecond name went to the one that finished
/// last, so a backup named later could hold fewer rows; doctor then said `backup_named_earlier` ("the clock was
/// behind") and `restore --from backups` refused (exit 2), with a clock that never moved. One folder lock
/// orders them: every backup named later holds at least what every one named earlier holds.
#[test]
fn overlapping_backups_into_one_folder_are_named_in_the_order_of_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 200);
    let d = utf8(&data);
    let (config, backups) = (data.join("config.db"), data.join("backups"));
    let server = Running::start(&["server", "--seconds", "120", "--data-dir", d]);
    server.wait_owner_of(&config);
    let start = counter_of(&config, "projects");
    wait_until(Duration::from_secs(30), "the server creates projects", || {
        counter_of(&config, "projects") > start + 20
    });
    // Four processes, started together, each taking twenty backups in a row: the runs overlap all along.
    let go = marker(&data, "go");
    let runs: Vec<Child> = (0..4)
        .map(|_| spawn_child("child_entry", "twenty-backups", &data))
        .collect();
    fs::write(&go, b"").unwrap();
    let ended: Vec<_> = runs
        .into_iter()
        .map(|mut run| wait_within(&mut run, Duration::from_secs(120)))
        .collect();
    server.stop();
    // By name, oldest first, as a restore orders them: the rows they hold never go down.
    let mut taken: Vec<(store_core::backup::BackupName, i64)> = named(&backups, "config-")
        .iter()
        .map(|path| {
            let name = store_core::backup::BackupName::parse(path.file_name().unwrap().to_str().unwrap()).unwrap();
            (name, counter_of(path, "projects"))
        })
        .collect();
    taken.sort_by(|(a, _), (b, _)| a.taken_at.cmp(&b.taken_at).then(a.seq.cmp(&b.seq)));
    for pair in taken.windows(2) {
        let ((earlier, had), (later, has)) = (&pair[0], &pair[1]);
        assert!(
            has >= had,
            "{} holds {has} projects, fewer than {} named before it ({had})",
            later.file_name(),
            earlier.file_name()
        );
    }
    assert!(ended.iter().all(|status| status.success()), "{ended:?}");
    assert_eq!(taken.len(), 80);
    let (code, stdout, _) = doctor(&data);
    assert!(!stdout.contains("backup_named_earlier"), "{code}: {stdout}");
    let out = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backups)]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let newest = backups.join(taken.last().unwrap().0.file_name());
    assert!(
        stdout.contains(&format!("/config.db from {} ", newest.display())),
        "the newest by name: {stdout}"
    );
}

/// A scheduled `backup --keep 1` run while a restore from the folder was reading it rotated out the backup the
/// restore had chosen: the restore failed `could not read the backup ...: No such file or directory`, and the
/// backup was gone. The rotation now waits for the restore to have copied it; the restore succeeds.
#[test]
fn a_rotation_waits_for_a_restore_reading_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = with_settings(dir.path());
    let d = utf8(&data);
    let backups = data.join("backups");
    let out = run_splitstore(["backup", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    let chosen = backup_paths(&out)[1].clone();
    type Rotation = (
        Child,
        Option<String>,
        std::sync::mpsc::Receiver<String>,
        std::thread::JoinHandle<()>,
    );
    let rotation: std::sync::Arc<std::sync::Mutex<Option<Rotation>>> = Default::default();
    let hook: splitstore::operations::RestoreHook = {
        let (rotation, data) = (rotation.clone(), data.clone());
        std::sync::Arc::new(move |step: &str| {
            // activity.db's backup is copied, config.db's (`chosen`) not yet: the rotation starts now. The
            // restore goes on only once the rotation has said for whom it waits (or ended): let go sooner, the
            // folder could be free again by the time the rotation names its holders, and there would be none
            // to name (CI met it: "held by another process").
            if step == "copied activity.db" {
                let mut child = spawn_splitstore(["backup", "--data-dir", utf8(&data), "--keep", "1"]);
                let (lines, reader) = lines_of(child.stderr.take().unwrap());
                let said = match lines.recv_timeout(Duration::from_secs(60)) {
                    Ok(line) => Some(line),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
                    Err(e) => panic!("the rotation neither waited nor ended within 60 s: {e}"),
                };
                *rotation.lock().unwrap() = Some((child, said, lines, reader));
            }
            Ok(())
        })
    };
    let restored =
        splitstore::operations::restore_with(&data, &backups, Some(&hook), None, &store_core::Waits::default());
    let (child, said, lines, reader) = rotation.lock().unwrap().take().expect("the rotation ran");
    let out = wait_output_within(child, Duration::from_secs(60));
    reader.join().unwrap();
    let said_after: Vec<String> = lines.try_iter().collect();
    let reports = restored.unwrap_or_else(|e| panic!("the restore failed: {e}; the rotation: {out:?} {said_after:?}"));
    assert!(out.status.success(), "{out:?} {said:?} {said_after:?}");
    // It said for whom it waited (it was silent), this test's process holding the folder for the restore.
    let waiting = format!(
        "splitstore backup: waiting for the backup folder {}, held by pid {}",
        backups.display(),
        std::process::id()
    );
    let said = said.unwrap_or_else(|| panic!("the rotation ended while the restore read its folder: {out:?}"));
    assert!(said.starts_with(&waiting), "{said:?} is not {waiting:?}");
    let config = reports.iter().find(|r| r.database == "config.db").unwrap();
    assert_eq!(config.restored_from, chosen, "{reports:?}");
    // Rotated once the restore was done: the new backups alone are kept.
    assert!(!chosen.exists());
    assert_eq!(named(&backups, "config-"), [backup_paths(&out)[1].clone()]);
}

/// A restore stopped in its terminal (Ctrl-Z) while it read its backup folder: a backup run by cron waited for
/// the folder's lock without end and without a word (a walk's SIGSTOP), as would an owner's start taking a
/// pre-migration backup. It now fails once every holder has been stopped a second, naming the holder and how
/// to continue or end it, with nothing written; the holder continued finishes, and the backup runs.
#[test]
fn a_backup_behind_a_stopped_holder_of_its_folder_names_it_instead_of_waiting_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = backed_up(dir.path());
    let d = utf8(&data);
    let backups = data.join("backups");
    let before = named(&backups, "");
    // Killed if the test fails before continuing it (a stopped child would stay behind).
    let mut holder = Running(spawn_child("child_entry", "hold-backups-then-stop", &data));
    wait_until(Duration::from_secs(60), "the holder stops", || {
        store_core::process::stopped(holder.pid())
    });
    let out = wait_output_within(spawn_splitstore(["backup", "--data-dir", d]), Duration::from_secs(60));
    let pid = holder.pid();
    // SAFETY: continues the child this test spawned.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(holder.0.wait().unwrap().success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    for said in [
        format!("the backup folder {} is held by pid {pid}", backups.display()),
        "(which is stopped: Ctrl-Z, SIGSTOP or a debugger), and stays held until it is continued".to_string(),
        format!(
            "continue it (`kill -CONT {pid}`, `fg` in the terminal that stopped it, or detach the debugger) and it \
             finishes, or end it (`kill {pid} && kill -CONT {pid}`: stopped, a process acts on `kill` only once \
             continued)"
        ),
        "nothing was changed".to_string(),
    ] {
        assert!(stderr.contains(&said), "{said:?} not in {stderr}");
    }
    assert_eq!(named(&backups, ""), before, "nothing written into the folder");
    let out = run_splitstore(["backup", "--data-dir", d]);
    assert!(out.status.success(), "once the holder was continued: {out:?}");
}

/// A daemon's first start after an upgrade, behind a restore stopped with Ctrl-Z in the backup folder its
/// pre-migration backup goes into: it failed after a second (`locked`, exit 75), and its supervisor started
/// it again into the same refusal about once a second until it gave up on the unit, which was then not
/// running when the restore was continued. It now says the holder is stopped and what continues it, waits
/// (asking to stop still ends it), and once the holder is continued takes its backup, migrates and records.
#[test]
fn a_daemons_first_start_behind_a_stopped_holder_of_its_backup_folder_waits_for_it_and_then_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let (db, older) = activity_db_one_version_back(&data);
    let backups = data.join("backups");
    store_core::files::create_private_dir_all(&backups).unwrap();
    // The lock file a restore takes (it never makes one): a backup of this build was taken there once.
    drop(store_core::FolderLock::exclusive(&backups).unwrap());
    let mut holder = Running(spawn_child("child_entry", "hold-backups-then-stop", &data));
    wait_until(Duration::from_secs(60), "the holder stops", || {
        store_core::process::stopped(holder.pid())
    });

    let mut daemon = Running(
        splitstore()
            .args(["daemon", "--data-dir", utf8(&data), "--events", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn splitstore"),
    );
    let (lines, reader) = lines_of(daemon.0.stderr.take().unwrap());
    let pid = holder.pid();
    let waiting = format!(
        "splitstore daemon: the backup folder {} is held by pid {pid}, running `",
        backups.display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let said_stopped = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("{waiting:?} not said within 60 s ({e})"));
        if line.starts_with(&waiting) {
            break line;
        }
    };
    assert!(
        said_stopped.ends_with(&format!(
            ", stopped (Ctrl-Z, SIGSTOP or a debugger): waiting until it is continued (`kill -CONT {pid}`) or \
             ended, or until this process is asked to stop (SIGTERM)"
        )),
        "{said_stopped}"
    );
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon waits on");
    let version = || query_i64(&read_only(&db), "PRAGMA user_version");
    assert_eq!(version(), i64::from(older), "not migrated while the folder is held");

    // SAFETY: continues the child this test spawned.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(holder.0.wait().unwrap().success());
    let status = daemon.0.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{status:?} {rest:?}");
    assert_eq!(
        version(),
        i64::from(activity_store::SCHEMA.end_version()),
        "migrated once the holder let go"
    );
    let pre = store_core::backup::pre_migration_dir(&backups);
    assert_eq!(fs::read_dir(&pre).unwrap().count(), 1, "with its backup");
    let events = query_i64(&read_only(&db), "SELECT count(*) FROM activity_events");
    assert_eq!(events, 100, "and recorded");
}

/// A program linking splitstore (the server taking a scheduled backup) could neither hear that a backup waited
/// for its folder nor end the wait: only the owners' opens took `Waits`. Backup, restore, repair and rekey
/// take them too: told whom they wait for when the wait begins, and given up when asked to stop, nothing
/// written into the folder.
#[test]
fn a_library_backup_says_whom_it_waits_for_and_gives_up_its_wait_when_asked_to_stop() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = backed_up(dir.path());
    let backups = data.join("backups");
    let before = named(&backups, "");
    let held = store_core::FolderLock::shared(&backups).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    /// Each time the backup said it waits: the folder, and its holders' pids.
    type Told = Vec<(PathBuf, Vec<u32>)>;
    let told: Arc<Mutex<Told>> = Arc::default();
    let heard = told.clone();
    let waits = store_core::Waits {
        stop: Some(stop.clone()),
        on_waiting: Some(Arc::new(move |wait: &store_core::FolderWait<'_>| {
            let pids = wait.holders.iter().map(|h| h.pid).collect();
            heard.lock().unwrap().push((wait.folder.to_path_buf(), pids))
        })),
        ..Default::default()
    };
    let backing_up = {
        let (data, backups) = (data.clone(), backups.clone());
        std::thread::spawn(move || splitstore::operations::backup_with_key(&data, &backups, 5, None, &waits))
    };
    wait_until(Duration::from_secs(60), "the backup never said it waits", || {
        let said = !told.lock().unwrap().is_empty();
        assert!(
            said || !backing_up.is_finished(),
            "the backup ended while its folder was held"
        );
        said
    });
    assert_eq!(*told.lock().unwrap(), vec![(backups.clone(), vec![std::process::id()])]);
    stop.store(true, Ordering::SeqCst);
    let err = backing_up.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), store_core::ErrorKind::Stopped, "{err}");
    drop(held);
    assert_eq!(named(&backups, ""), before, "nothing written into the folder");
}

/// A lock handed on: the process that took the folder's lock exited, and one it forked holds it, stopped.
/// `/proc/locks` names the process that took it, gone, and the backup waited without a word (a walk, with
/// flock(1)'s `exec 9>FILE; flock 9`). The holder is found among the processes that have the file open.
#[test]
fn a_stopped_holder_the_lock_was_handed_on_to_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = backed_up(dir.path());
    let taker = spawn_child("child_entry", "hold-backups-hand-on-then-stop", &data);
    let _ = wait_output_within(taker, Duration::from_secs(60));
    let pid: i32 = fs::read_to_string(marker(&data, "handed-on")).unwrap().parse().unwrap();
    /// Kills the forked holder however the test ends: no parent of this test reaps or continues it.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the process the child forked for this test.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _holder = KillOnDrop(pid);
    wait_until(Duration::from_secs(60), "the holder stops", || {
        store_core::process::stopped(pid as u32)
    });
    let out = wait_output_within(
        spawn_splitstore(["backup", "--data-dir", utf8(&data)]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = format!(
        "the backup folder {} is held by pid {pid}",
        data.join("backups").display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&said), "{said:?} not in {stderr}");
}

/// `backup --to DATA/backups/pre-migration --keep 1` rotated away the backup an upgrade took there, the one
/// way back to the previous build, and doctor then named the manual backup as the pre-migration one. A
/// manual backup into a pre-migration folder is refused, the folder left as it was.
#[test]
fn a_manual_backup_into_a_pre_migration_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, backup) = backed_up(dir.path());
    let pre_migration = data.join("backups").join("pre-migration");
    fs::create_dir(&pre_migration).unwrap();
    fs::copy(&backup, pre_migration.join(backup.file_name().unwrap())).unwrap();
    let before = listing(&pre_migration);
    // However it is named: `--to .` from inside it passed a check of the last name.
    for to in [utf8(&pre_migration), "."] {
        let out = splitstore()
            .args(["backup", "--data-dir", utf8(&data), "--to", to, "--keep", "1"])
            .current_dir(&pre_migration)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--to {to}: {out:?}");
        let said = format!(
            "{}: the backup folder is where the backups taken before migrations are kept, never rotated: a \
             manual backup there would rotate them away; give the folder it is in, or another",
            pre_migration.display()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&said), "{said:?} not in {stderr}");
        assert_eq!(listing(&pre_migration), before);
    }
}

/// A restore or repair reads a backup folder under its lock but never makes the lock file: a restore from a
/// folder of downloads left `.backups.lock` there (root's, in a user's folder, shut the user's own backups and
/// the daemon's upgrade out), and a repair looking in `backups/pre-migration` made a second lock there,
/// beside the one a backup holds.
#[test]
fn readers_of_a_backup_folder_leave_no_lock_file_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, backup) = backed_up(dir.path());
    let downloads = dir.path().join("downloads");
    fs::create_dir(&downloads).unwrap();
    let copy = downloads.join(backup.file_name().unwrap());
    fs::copy(&backup, &copy).unwrap();
    let out = run_splitstore(["restore", "--data-dir", utf8(&data), "--from", utf8(&copy)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listing(&downloads), [copy.file_name().unwrap().to_string_lossy()]);
    let pre_migration = data.join("backups").join("pre-migration");
    fs::create_dir(&pre_migration).unwrap();
    let out = run_splitstore(["repair", "--data-dir", utf8(&data), "--from", utf8(&pre_migration)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listing(&pre_migration), Vec::<String>::new());
}

/// A backup folder's lock file that no backup can take (a directory, a link, another user's file) made every
/// backup, restore and repair fail while doctor said healthy. Doctor names it.
#[test]
fn doctor_names_a_backup_folder_lock_no_backup_can_take() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = backed_up(dir.path());
    let lock = store_core::FolderLock::path_for(&data.join("backups"));
    fs::remove_file(&lock).unwrap();
    fs::create_dir(&lock).unwrap();
    let (code, _, json) = doctor(&data);
    assert_eq!(code, 1, "{json}");
    for name in ["activity.db", "config.db"] {
        let (kind, message, _) = the_problem(&json, name);
        assert_eq!(kind, "unsafe_path");
        assert!(
            message.contains(&format!("{} is a directory, not a regular file", lock.display())),
            "{message}"
        );
    }
    let out = run_splitstore(["backup", "--data-dir", utf8(&data)]);
    assert_eq!(out.status.code(), Some(2), "what doctor names stops a backup: {out:?}");
    // Another user's lock file, said as the folder's owner meets it, whoever runs doctor.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        fs::remove_dir(&lock).unwrap();
        fs::write(&lock, "").unwrap();
        std::os::unix::fs::lchown(&lock, Some(65534), Some(65534)).unwrap();
        let (code, _, json) = doctor(&data);
        assert_eq!(code, 1, "{json}");
        let (kind, message, remedy) = the_problem(&json, "activity.db");
        assert_eq!(kind, "another_users_files");
        let said = format!(
            "{} belongs to user 65534 and its folder to user 0: no backup of user 0 into the folder can take it",
            lock.display()
        );
        assert_eq!(message, said);
        assert_eq!(remedy, format!("give it back with `sudo chown 0 {}`", lock.display()));
    }
}

/// What a child process of these tests does ([`spawn_child`]), by its role.
#[test]
fn child_entry() {
    let Some((role, data)) = child_role() else { return };
    match role.as_str() {
        // Twenty backups in a row into `DATA/backups`, once `DATA.go` is there.
        "twenty-backups" => {
            wait_for_file(&marker(&data, "go"), Duration::from_secs(60));
            for _ in 0..20 {
                let report = splitstore::operations::backup(&data, &data.join("backups"), 1000).unwrap();
                assert!(report.failed.is_empty() && report.notes.is_empty(), "{report:?}");
            }
        }
        // Takes `DATA/backups`' lock as a backup does, forks a process that stops itself (as Ctrl-Z would)
        // holding it, says that process's pid in `DATA.handed-on`, and exits: `/proc/locks` then names a pid
        // that is gone (flock(1)'s `exec 9>FILE; flock 9` idiom does the same).
        "hold-backups-hand-on-then-stop" => {
            let folder = store_core::FolderLock::exclusive(&data.join("backups")).unwrap();
            // SAFETY: the forked process only closes its standard streams (holding no test's pipe open), stops
            // itself, and exits: async-signal-safe calls only.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::close(1);
                    libc::close(2);
                    libc::raise(libc::SIGSTOP);
                    libc::_exit(0);
                }
            }
            // Not dropped: its unlock would release the lock the forked process shares.
            std::mem::forget(folder);
            fs::write(marker(&data, "handed-on"), pid.to_string()).unwrap();
        }
        // Holds `DATA/backups`' lock as a restore does, and stops itself (as Ctrl-Z would) until continued.
        "hold-backups-then-stop" => {
            let _folder = store_core::FolderLock::shared(&data.join("backups")).unwrap();
            // SAFETY: stops this very process; the parent continues it.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        other => panic!("unknown role {other}"),
    }
}

/// A data directory whose config.db has handed out the largest id SQLite allows in `projects` and in
/// `calendar_subscriptions` (hand edits), the project named by a domain, a calendar event and a session of
/// activity.db, the subscription by the calendar event. The server can add neither.
struct OutOfIds {
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    activity: PathBuf,
    /// The ids the far project and subscription are to get: one past the largest each database holds or names.
    project: i64,
    subscription: i64,
    /// The session that names the far project.
    session: i64,
}

fn config_out_of_ids() -> OutOfIds {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 20);
    let (config, activity) = (data.join("config.db"), data.join("activity.db"));
    let max = i64::MAX;
    let largest = |db: &Path, sql: &str| query_i64(&read_only(db), sql);
    let project = 1 + largest(&config, "SELECT IFNULL(MAX(id), 0) FROM projects").max(largest(
        &activity,
        "SELECT IFNULL(MAX(project_id), 0) FROM activity_sessions",
    ));
    let subscription = 1 + largest(&config, "SELECT IFNULL(MAX(id), 0) FROM calendar_subscriptions");
    let session = largest(&activity, "SELECT MIN(id) FROM activity_sessions");
    rusqlite::Connection::open(&config)
        .unwrap()
        .execute_batch(&format!(
            "PRAGMA foreign_keys = ON;
             INSERT INTO projects (id, name) VALUES ({max}, 'far');
             INSERT INTO project_domains (project_id, domain) VALUES ({max}, 'far.example');
             INSERT INTO calendar_subscriptions (id, name, url) VALUES ({max}, 'far', 'https://far.example/c.ics');
             INSERT INTO calendar_events (subscription_id, uid, start_time_ms, project_id)
                 VALUES ({max}, 'far-1', 0, {max});"
        ))
        .unwrap();
    rusqlite::Connection::open(&activity)
        .unwrap()
        .execute(
            &format!("UPDATE activity_sessions SET project_id = {max} WHERE id = {session}"),
            [],
        )
        .unwrap();
    OutOfIds {
        _dir: dir,
        data,
        config,
        activity,
        project,
        subscription,
        session,
    }
}

/// [`config_out_of_ids`] with the session's time under the far project too, both files backed up, then given
/// ids by `repair`; then `db`'s backup, taken before, copied back over its file by hand.
fn copied_back_from_before_ids_were_given(db: &str) -> OutOfIds {
    let t = config_out_of_ids();
    t.time_under_the_far_project();
    let backups = t.backed_up_then_given_ids();
    fs::copy(backup_of(&backups, db), t.data.join(db)).unwrap();
    t
}

/// The backup of `db` among `backups` (one of each database, as `splitstore backup` says them).
fn backup_of<'a>(backups: &'a [PathBuf], db: &str) -> &'a Path {
    let prefix = format!("{}-", db.trim_end_matches(".db"));
    backups
        .iter()
        .find(|b| b.file_name().unwrap().to_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no backup of {db}: {backups:?}"))
}

impl OutOfIds {
    /// The id that `sql` reads from `db`.
    fn id(&self, db: &Path, sql: &str) -> i64 {
        query_i64(&read_only(db), sql)
    }

    /// The session's time in the running totals under the far project too, as the daemon counts it (a report
    /// reads them): the fixture moved the session alone, and this file's only session is the one.
    fn time_under_the_far_project(&self) {
        let activity = rusqlite::Connection::open(&self.activity).unwrap();
        assert_eq!(query_i64(&activity, "SELECT COUNT(*) FROM activity_sessions"), 1);
        activity
            .execute(
                "UPDATE activity_totals SET has_project = 1, project_id = ?1",
                [i64::MAX],
            )
            .unwrap();
    }

    /// Doctor lists both tables of config.db as out of ids, and says of the projects, which activity.db
    /// records as given smaller ids (and names by them), that the repair stopped before config.db changed or
    /// config.db was put back from before it.
    fn doctor_says_activity_db_names_the_new_ids(&self) {
        let d = utf8(&self.data);
        let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
        let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
        let problems = doctor_problems(&doctor, "config.db");
        let [(c1, subscriptions, _), (c2, projects, remedy)] = &problems[..] else {
            panic!("{problems:?}")
        };
        assert_eq!((c1.as_str(), c2.as_str()), ("ids_exhausted", "ids_exhausted"));
        let out_of_ids = |table: &str| {
            format!(
                "{}: no row can be added to {table}: it has handed out id 9223372036854775807, the largest SQLite \
                 allows, and an AUTOINCREMENT table never reuses a smaller one (SQLite answers an insert with \
                 SQLITE_FULL, \"database or disk is full\", whatever the disk holds)",
                self.config.display()
            )
        };
        assert_eq!(subscriptions, &out_of_ids("calendar_subscriptions"));
        assert_eq!(
            projects,
            &format!(
                "{}; the files naming its rows record that a repair gave them smaller ids: it stopped before this \
                 file changed, or this file was put back from before it (copied by hand); those files name the \
                 rows by the new ids (a report marks their time `(new id)`)",
                out_of_ids("projects")
            )
        );
        assert_eq!(
            remedy,
            &format!(
                "freeing disk space does not help, and restarting fails the same way: the rows already in projects \
                 are intact and read as before; stop every owner of a database in {d} (the command takes all their \
                 locks), then run `splitstore repair --data-dir {d}`: it gives them the ids the files naming them \
                 record, with every reference to them, and the owner adds rows again"
            )
        );
    }

    /// What a user reads of the session's time, named by `id`: the report's row under the far project's name with
    /// `status` (`marker` beside the name in the table: how the id names it), and the server's page of it (one
    /// session), giving the project config.db has at `project`, with `project_status`.
    fn far_time_reads_as(&self, id: i64, status: &str, marker: &str, project: (i64, ProjectStatus)) {
        let (name, said, line) = reported_project(&self.data, id);
        assert_eq!((name.as_deref(), said.as_str()), (Some("far"), status), "{line}");
        assert!(line.contains(&format!(" far{marker} ")), "{line}");
        let page = splitstore::Reports::open(&self.data)
            .project_activity(id, &splitstore::TimeRange::all(), 10)
            .unwrap();
        assert_eq!(
            (page.project.map(|p| (p.id, p.name)), page.status, page.sessions.len()),
            (Some((project.0, "far".to_string())), project.1, 1)
        );
    }

    /// The ids naming the far project in each place, and the far subscription's.
    fn named(&self) -> [i64; 6] {
        [
            self.id(&self.config, "SELECT id FROM projects WHERE name = 'far'"),
            self.id(
                &self.config,
                "SELECT project_id FROM project_domains WHERE domain = 'far.example'",
            ),
            self.id(
                &self.config,
                "SELECT project_id FROM calendar_events WHERE uid = 'far-1'",
            ),
            self.id(
                &self.activity,
                &format!("SELECT project_id FROM activity_sessions WHERE id = {}", self.session),
            ),
            self.id(&self.config, "SELECT id FROM calendar_subscriptions WHERE name = 'far'"),
            self.id(
                &self.config,
                "SELECT subscription_id FROM calendar_events WHERE uid = 'far-1'",
            ),
        ]
    }

    /// The server adds a subscription and a project, with the ids after those moved.
    fn server_adds_rows_again(&self) {
        use config_store::calendar::NewSubscription;
        use config_store::projects::NewProject;
        let mut store = config_store::ConfigStore::open_in(&self.data).unwrap();
        let added = store
            .add_subscription(&NewSubscription::new("next", "https://next.example/c.ics"))
            .unwrap();
        assert_eq!(added.id, self.subscription + 1);
        assert_eq!(
            store.create_project(&NewProject::named("next")).unwrap().id,
            self.project + 1
        );
    }

    /// Backs both files up, then repairs: the backups (activity.db's, config.db's) hold the old ids.
    fn backed_up_then_given_ids(&self) -> Vec<PathBuf> {
        let d = utf8(&self.data);
        let backups = backup_paths(&run_splitstore(["backup", "--data-dir", d]));
        let repair = run_splitstore(["repair", "--data-dir", d]);
        assert!(repair.status.success(), "{repair:?}");
        backups
    }

    /// Every place names the ids given, the server adds rows after them, and doctor finds nothing.
    fn whole_again(&self) {
        let (p, s) = (self.project, self.subscription);
        assert_eq!(self.named(), [p, p, p, p, s, s]);
        self.server_adds_rows_again();
        let doctor = run_splitstore(["doctor", "--data-dir", utf8(&self.data), "--json"]);
        let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
        for db in ["activity.db", "config.db"] {
            assert_eq!(doctor_problems(&doctor, db), [], "{db}");
        }
    }

    /// What repair says it did.
    fn repair_said(&self) -> String {
        format!(
            "activity.db: healthy, left alone\nconfig.db: calendar_subscriptions had handed out id \
             9223372036854775807, the largest SQLite allows, and took no more rows: its row with an id from \
             4611686018427387904 up now has id {}, the references to them with them (1 in config.db's \
             calendar_events.subscription_id); new rows get ids from {}; take a new backup: those taken before hold \
             the old ids\nconfig.db: projects had handed out id \
             9223372036854775807, the largest SQLite allows, and took no more rows: its row with an id from \
             4611686018427387904 up now has id {}, the references to them with them (1 in config.db's \
             project_domains.project_id, 1 in config.db's calendar_events.project_id, 1 in activity.db's \
             activity_sessions.project_id); new rows get ids from {}; take a new backup: those taken before hold \
             the old ids\n",
            self.subscription,
            self.subscription + 1,
            self.project,
            self.project + 1
        )
    }
}

/// config.db out of ids in `projects`, whose ids activity.db's sessions name too, and in
/// `calendar_subscriptions` (hand edits). Repair gives both rows smaller ids, with every reference to them in
/// either file, and lowers the server's record of the ids handed out (kept at every start: left at the
/// limit, the next start would raise the counter back); the server adds projects and subscriptions again,
/// and the session still names its project. Before, repair said "config.db: healthy, left alone" and the
/// fix was SQL by hand, across both files.
#[test]
fn repair_gives_config_tables_out_of_ids_smaller_ids_with_the_references_in_both_files() {
    use config_store::calendar::NewSubscription;
    let t = config_out_of_ids();
    {
        let mut store = config_store::ConfigStore::open_in(&t.data).unwrap();
        let err = store
            .add_subscription(&NewSubscription::new("next", "https://next.example/c.ics"))
            .unwrap_err();
        assert_eq!(err.kind(), splitstore::ErrorKind::IdsExhausted, "{err}");
    }
    let record = t.data.join(".private/config.db.counters.json");
    let recorded = |table: &str| -> i64 {
        let json: Json = serde_json::Deserializer::from_slice(&fs::read(&record).unwrap())
            .into_iter()
            .next()
            .unwrap()
            .unwrap();
        json[table].as_i64().unwrap()
    };
    assert_eq!(recorded("projects"), i64::MAX, "the server's start recorded the limit");

    let d = utf8(&t.data);
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(texts(&repair).0, t.repair_said());
    assert_eq!(recorded("projects"), t.project);
    assert_eq!(recorded("calendar_subscriptions"), t.subscription);
    t.whole_again();
}

/// Giving a project smaller ids changes activity.db (its sessions' references) and then config.db, each in
/// one transaction. A failure injected in config.db's (a trigger aborting the update of the projects' ids,
/// after its domain's reference moved) leaves config.db, and the record of the ids it handed out, as they
/// were, and activity.db's session naming the new id, recorded as moved: the state a repair killed between
/// the two commits leaves. The table is still out of ids, as doctor says; the repair its remedy runs moves
/// the project to that same id, and every place names one project again.
#[test]
fn a_repair_stopped_between_the_files_giving_smaller_ids_is_finished_by_the_next_to_the_same_ids() {
    let t = config_out_of_ids();
    drop(config_store::ConfigStore::open_in(&t.data).unwrap());
    let record_path = t.data.join(".private/config.db.counters.json");
    let record = fs::read(&record_path).unwrap();
    let mut config = store_core::OwnerConnection::open(&t.config, &config_store::SCHEMA).unwrap();
    let mut activity = store_core::OwnerConnection::open(&t.activity, &activity_store::SCHEMA).unwrap();
    config
        .read(|c| {
            c.execute_batch(
                "CREATE TEMP TRIGGER injected BEFORE UPDATE ON projects
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
        })
        .unwrap();
    let err = store_core::renumber::give_smaller_ids(&mut config, "projects", &mut [&mut activity]).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    drop((config, activity));
    let (max, p, s) = (i64::MAX, t.project, t.subscription);
    assert_eq!(
        t.named(),
        [max, max, max, p, max, max],
        "activity.db changed, config.db did not"
    );
    assert_eq!(fs::read(&record_path).unwrap(), record);
    let seq = "SELECT seq FROM sqlite_sequence WHERE name = 'projects'";
    assert_eq!(t.id(&t.config, seq), max);

    let d = utf8(&t.data);
    t.doctor_says_activity_db_names_the_new_ids();
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    // The session's reference moved already: not counted again.
    let said = t
        .repair_said()
        .replace(", 1 in activity.db's activity_sessions.project_id", "");
    assert_eq!(texts(&repair).0, said);
    assert_eq!(t.named(), [p, p, p, p, s, s]);
    t.server_adds_rows_again();
}

/// config.db's projects out of ids while activity.db, whose sessions name them, is damaged: repair restores
/// activity.db from its backup and leaves projects as they are (their references are in the file being
/// replaced), saying so, exit 2; the subscriptions, named only in config.db, get their ids. Run again, it
/// moves the project with the restored session's reference.
#[test]
fn a_table_out_of_ids_that_a_damaged_file_names_waits_for_its_repair() {
    let t = config_out_of_ids();
    let d = utf8(&t.data);
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");
    damage_middle_page(&t.activity);
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert_eq!(repair.status.code(), Some(2), "{repair:?}");
    let said = texts(&repair).0;
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 3, "{said}");
    assert!(
        lines[1].starts_with("config.db: calendar_subscriptions had handed out id"),
        "{said}"
    );
    assert_eq!(
        lines[2],
        "config.db: projects has handed out id 9223372036854775807, the largest SQLite allows, and takes no more \
         rows; left as it is while activity.db is repaired, since its rows name the table's ids: run this repair \
         again to give it smaller ones"
    );
    assert!(lines[0].starts_with("activity.db: restored from "), "{said}");
    let (max, p, s) = (i64::MAX, t.project, t.subscription);
    assert_eq!(t.named(), [max, max, max, max, s, s]);

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let said = texts(&repair).0;
    assert!(said.contains("config.db: projects had handed out id"), "{said}");
    assert_eq!(t.named(), [p, p, p, p, s, s]);
    t.server_adds_rows_again();
}

/// A backup taken before a repair gave config.db's projects and subscriptions smaller ids names them by
/// their old ids. Restored alone, activity.db's backup named a project config.db no longer has (the session
/// showed under a deleted project, and nothing said so); config.db's backup, alone or with activity.db's, was
/// out of ids again (the server refused to add a project until another repair). Each is now put back naming
/// the ids the repair gave, as the data directory's files record them, and the restore says so; the server
/// adds rows after them.
#[test]
fn a_backup_taken_before_a_repair_gave_smaller_ids_is_restored_naming_the_new_ids() {
    let t = config_out_of_ids();
    let d = utf8(&t.data);
    let [activity_backup, config_backup] = &t.backed_up_then_given_ids()[..] else {
        panic!("two backups")
    };
    let (p, s) = (t.project, t.subscription);
    assert_eq!(t.named(), [p, p, p, p, s, s]);
    // Both files put back from before: both brought up to the ids, not out of ids again.
    let folder = activity_backup.parent().unwrap();
    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(folder)]);
    assert!(restore.status.success(), "{restore:?}");
    assert_eq!(texts(&restore).0.matches("got smaller ids from a repair").count(), 3);
    assert_eq!(t.named(), [p, p, p, p, s, s]);

    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(activity_backup)]);
    assert!(restore.status.success(), "{restore:?}");
    let said = texts(&restore).0;
    assert!(
        said.trim_end().ends_with(
            "; config.db's projects got smaller ids from a repair after this backup was taken, and the backup named \
             them by the old ones: moved to the new (activity.db's activity_sessions.project_id: 1)"
        ),
        "{said}"
    );
    assert_eq!(
        t.named(),
        [p, p, p, p, s, s],
        "the session names the project config.db has"
    );

    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(config_backup)]);
    assert!(restore.status.success(), "{restore:?}");
    let said = texts(&restore).0;
    for moved in [
        "; config.db's calendar_subscriptions got smaller ids from a repair after this backup was taken, and the \
         backup named them by the old ones: moved to the new (1 of its rows, config.db's calendar_events.subscription_id: 1)",
        "; config.db's projects got smaller ids from a repair after this backup was taken, and the backup named them \
         by the old ones: moved to the new (1 of its rows, config.db's project_domains.project_id: 1, config.db's \
         calendar_events.project_id: 1)",
    ] {
        assert!(said.contains(moved), "{said}");
    }
    // The rows moved down are the backup's own rows, not rows the file it replaced added since.
    assert!(!said.contains("added rows since the backup"), "{said}");
    t.whole_again();
}

/// activity.db damaged after a repair gave config.db's project a smaller id, its only backup taken before:
/// the repair that restores it puts it back naming the project's new id (it named the old one, a project
/// config.db no longer has), and says so.
#[test]
fn a_repair_restoring_a_backup_taken_before_ids_were_given_names_the_new_ids() {
    let t = config_out_of_ids();
    let d = utf8(&t.data);
    t.backed_up_then_given_ids();
    damage_middle_page(&t.activity);
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let said = texts(&repair).0;
    let first = said.lines().next().unwrap();
    assert!(
        first.starts_with("activity.db: restored from ")
            && first.ends_with(
                "; config.db's projects got smaller ids from a repair after this backup was taken, and the backup \
                 named them by the old ones: moved to the new (activity.db's activity_sessions.project_id: 1)"
            ),
        "{said}"
    );
    let (p, s) = (t.project, t.subscription);
    assert_eq!(t.named(), [p, p, p, p, s, s]);
}

/// activity.db damaged where its sessions are, after a repair gave config.db's project a smaller id, its
/// backup taken before: a salvage on top of that backup takes the sessions from it, which name the project by
/// its old id. They are brought up to the new id, and the salvage's notes say so.
#[test]
fn a_salvage_on_a_backup_taken_before_ids_were_given_names_the_new_ids() {
    let t = config_out_of_ids();
    let d = utf8(&t.data);
    t.backed_up_then_given_ids();
    let leaves: Vec<i64> = query_column(
        &read_only(&t.activity),
        "SELECT pageno FROM dbstat WHERE name = 'activity_sessions' AND pagetype = 'leaf'",
    );
    let page_size = query_i64(&read_only(&t.activity), "PRAGMA page_size") as usize;
    let mut bytes = fs::read(&t.activity).unwrap();
    for page in leaves {
        let start = (page as usize - 1) * page_size;
        bytes[start..start + page_size].fill(0x5A);
    }
    fs::write(&t.activity, &bytes).unwrap();

    let repair = run_splitstore(["repair", "--salvage", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let said = texts(&repair).0;
    assert!(
        said.contains(
            "config.db's projects got smaller ids from a repair after this backup was taken, and the backup named \
             them by the old ones: moved to the new (activity.db's activity_sessions.project_id: 1)"
        ),
        "{said}"
    );
    let (p, s) = (t.project, t.subscription);
    assert_eq!(t.named(), [p, p, p, p, s, s]);
}

/// A backup of activity.db at the schema before this build's (it has no running totals yet), taken before a
/// repair gave config.db's project smaller ids: restored (at its own version, as every restore), its session
/// names the project's new id. The repair's move names the totals' column too, which that file lacks: the
/// restore moves what the file has.
#[test]
fn a_backup_at_an_older_schema_taken_before_ids_were_given_is_restored_naming_the_new_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let activity = activity_store::SCHEMA.path_in(&data);
    let (mut writer, older) = writer_at_older_schema(&activity);
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let session = writer
        .start_session(&activity_store::NewSession::new("editor", start))
        .unwrap();
    drop(writer);
    drop(config_store::ConfigStore::open_in(&data).unwrap());
    let max = i64::MAX;
    let config = config_store::SCHEMA.path_in(&data);
    rusqlite::Connection::open(&config)
        .unwrap()
        .execute_batch(&format!("INSERT INTO projects (id, name) VALUES ({max}, 'far')"))
        .unwrap();
    let named = format!("SELECT project_id FROM activity_sessions WHERE id = {session}");
    rusqlite::Connection::open(&activity)
        .unwrap()
        .execute_batch(&format!(
            "UPDATE activity_sessions SET project_id = {max} WHERE id = {session}"
        ))
        .unwrap();
    let backup = dir.path().join("activity-before.db");
    fs::copy(&activity, &backup).unwrap();
    // The daemon of this build upgrades it; the repair gives the project its id.
    drop(activity_store::ActivityWriter::open(&activity).unwrap());
    let d = utf8(&data);
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let project = query_i64(&read_only(&config), "SELECT id FROM projects WHERE name = 'far'");
    assert!(project < store_core::renumber::FAR_IDS, "{project}");

    let restore = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&backup)]);
    assert!(restore.status.success(), "{restore:?}");
    let said = texts(&restore).0;
    assert!(
        said.contains(&format!("(schema {older}"))
            && said.contains("moved to the new (activity.db's activity_sessions.project_id: 1)"),
        "{said}"
    );
    assert_eq!(query_i64(&read_only(&activity), &named), project);
}

/// A backup of activity.db taken before a repair gave config.db's project a smaller id, copied back over the
/// file by hand (or restored by a build before the restore moved ids): its session names the project by the
/// old id, and showed under a deleted project, told by nothing. Doctor now says `old_ids`, and the repair its
/// remedy names moves the reference to the new id.
#[test]
fn a_file_copied_back_from_before_ids_were_given_is_told_and_repair_moves_its_references() {
    let t = copied_back_from_before_ids_were_given("activity.db");
    let max = i64::MAX;
    let (p, s) = (t.project, t.subscription);
    assert_eq!(t.named(), [p, p, p, max, s, s]);

    // The report said the session's time was a deleted project's: it names it by the project's name, marked
    // as named by the old id, and says what moves it.
    let d = utf8(&t.data);
    t.far_time_reads_as(max, "named_by_old_id", " (old id)", (p, ProjectStatus::NamedByOldId));
    let report = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(
        texts(&report).1,
        format!(
            "splitstore report: note: the time marked `(old id)` (status `named_by_old_id`) names its project by \
             the id it had before a repair gave config.db's projects smaller ids (activity.db was put back from \
             before that repair): stop the daemon and the server, then run `splitstore repair --data-dir {d}` to \
             move it to the new ids\n"
        )
    );

    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    let problems = doctor_problems(&doctor, "activity.db");
    let [(code, message, remedy)] = &problems[..] else {
        panic!("{problems:?}")
    };
    assert_eq!(code, "old_ids");
    assert_eq!(
        message,
        &format!(
            "{} names config.db's projects by ids a repair has moved since: it was put back from before that repair \
             (copied by hand, or restored by an earlier build), and its rows name rows the other file no longer has \
             under those ids (a report marks their time `(old id)`)",
            t.activity.display()
        )
    );
    assert_eq!(
        remedy,
        &format!(
            "stop every owner of a database in {d} (the command takes all their locks), then run `splitstore repair \
             --data-dir {d}`: it moves them to the new ids, as the other file records them; no row is lost in the \
             meantime"
        )
    );

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(
        texts(&repair).0,
        "activity.db: named config.db's projects by the ids a repair gave smaller ones since (it was put back from \
         before that repair): moved to the new (activity.db's activity_sessions.project_id: 1, activity.db's \
         activity_totals.project_id: 1)\nconfig.db: healthy, left alone\n"
    );
    t.whole_again();
    t.far_time_reads_as(p, "active", "", (p, ProjectStatus::Active));
    assert_eq!(texts(&run_splitstore(["report", "--data-dir", d])).1, "");
}

/// activity.db put back from before the repair (naming the project by its old id) and out of ids itself (an
/// event at the largest id): one repair moves its references and gives its events smaller ids. It took two:
/// the first gave the ids and said success, and doctor then still found the old ids.
#[test]
fn one_repair_mends_a_file_out_of_ids_that_names_old_ids() {
    let t = copied_back_from_before_ids_were_given("activity.db");
    let next_event = 1 + t.id(&t.activity, "SELECT MAX(id) FROM activity_events");
    rusqlite::Connection::open(&t.activity)
        .unwrap()
        .execute(
            "INSERT INTO activity_events (id, session_id, event_type, timestamp_ms) VALUES (?1, ?2, 'focus', 0)",
            [i64::MAX, t.session],
        )
        .unwrap();
    let d = utf8(&t.data);
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    let codes: Vec<String> = doctor_problems(&doctor, "activity.db")
        .into_iter()
        .map(|(code, ..)| code)
        .collect();
    assert_eq!(codes, ["ids_exhausted", "old_ids"]);

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(
        texts(&repair).0,
        format!(
            "activity.db: named config.db's projects by the ids a repair gave smaller ones since (it was put back \
             from before that repair): moved to the new (activity.db's activity_sessions.project_id: 1, \
             activity.db's activity_totals.project_id: 1)\nactivity.db: activity_events had handed out id \
             9223372036854775807, the largest SQLite allows, and took no more rows: its row with an id from \
             4611686018427387904 up now has id {next_event}; new rows get ids from {}; take a new backup: those \
             taken before hold the old ids\nconfig.db: healthy, left alone\n",
            next_event + 1
        )
    );
    t.whole_again();
    assert_eq!(
        t.id(
            &t.activity,
            "SELECT id FROM activity_events WHERE timestamp_ms = 0 AND event_type = 'focus'"
        ),
        next_event
    );
    t.far_time_reads_as(t.project, "active", "", (t.project, ProjectStatus::Active));
    let daemon = run_splitstore(["daemon", "--events", "5", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
}

/// The other way round: config.db put back by hand from before the repair that gave its projects smaller ids
/// (its project still at the old id), beside an activity.db naming the new one. The report names the time by
/// the project under its old id, marked as named by the new id, and says what gives config.db those ids:
/// `repair`, which gives them the ids activity.db records (without which the time read as a deleted
/// project's).
#[test]
fn a_config_db_copied_back_from_before_ids_were_given_names_its_time_and_repair_gives_the_same_ids() {
    let t = copied_back_from_before_ids_were_given("config.db");
    let (max, p) = (i64::MAX, t.project);
    assert_eq!(t.named(), [max, max, max, p, max, max]);

    let d = utf8(&t.data);
    t.far_time_reads_as(p, "named_by_new_id", " (new id)", (max, ProjectStatus::NamedByNewId));
    let report = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(
        texts(&report).1,
        format!(
            "splitstore report: note: the time marked `(new id)` (status `named_by_new_id`) names its project by \
             the id a repair gave it, which config.db does not have yet (the repair stopped before it changed \
             config.db, or config.db was put back from before it): stop the daemon and the server, then run \
             `splitstore repair --data-dir {d}` to give config.db's projects the ids activity.db names\n"
        )
    );
    t.doctor_says_activity_db_names_the_new_ids();

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    t.whole_again();
    t.far_time_reads_as(p, "active", "", (p, ProjectStatus::Active));
    assert_eq!(texts(&run_splitstore(["report", "--data-dir", d])).1, "");
}

/// activity.db copied back from before a repair gave config.db's projects smaller ids names the project by its
/// old id, near the largest id SQLite allows. The server's start raised config.db's counters past every id
/// activity.db names, that one included: config.db was out of ids again, the server failed at its first new
/// project (and again at each restart), and its note said that time was a deleted project's. A reference by
/// an id the repair moved now counts as the id it moved to.
#[test]
fn a_server_started_beside_an_activity_db_copied_back_from_before_ids_were_given_adds_projects() {
    let t = copied_back_from_before_ids_were_given("activity.db");
    let (max, p) = (i64::MAX, t.project);
    let d = utf8(&t.data);
    let server = run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"]);
    assert!(server.status.success(), "{server:?}");
    assert_eq!(texts(&server).1, "");
    // Its projects took the ids after the far project's new one (the last it created is never deleted).
    let said = texts(&server).0;
    let created: i64 = said
        .split_once("projects_created=")
        .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(created > 0, "{said}");
    assert_eq!(
        (
            t.id(&t.config, "SELECT seq FROM sqlite_sequence WHERE name = 'projects'"),
            t.id(&t.config, "SELECT MAX(id) FROM projects"),
        ),
        (p + created, p + created)
    );
    t.far_time_reads_as(max, "named_by_old_id", " (old id)", (p, ProjectStatus::NamedByOldId));

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(t.named(), [p, p, p, p, t.subscription, t.subscription]);
    t.far_time_reads_as(p, "active", "", (p, ProjectStatus::Active));
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    for db in ["activity.db", "config.db"] {
        assert_eq!(doctor_problems(&doctor, db), [], "{db}");
    }
}

/// After a repair gave config.db's tables smaller ids and a backup was taken, config.db was copied back from
/// before the repair, a server started on it (out of ids, it stops at its first new row, having recorded its
/// counters beside the file), and that backup restored over it. The restore raised the counters past the ids
/// the file it replaced had handed out, the old ones among them, and the next start past its record of them:
/// config.db was out of ids again, in both tables, told by nothing until an insert failed. An id the repair
/// moved now counts as where the repair left the counter (the backup records the moves of its own tables).
#[test]
fn a_backup_restored_over_a_config_db_copied_back_from_before_ids_were_given_adds_rows() {
    let t = config_out_of_ids();
    t.time_under_the_far_project();
    let before = t.backed_up_then_given_ids();
    let d = utf8(&t.data);
    let after = backup_paths(&run_splitstore(["backup", "--data-dir", d]));
    fs::copy(backup_of(&before, "config.db"), &t.config).unwrap();
    let server = run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"]);
    assert_eq!(server.status.code(), Some(2), "{server:?}");
    assert!(
        texts(&server)
            .1
            .contains("no row can be added to calendar_subscriptions"),
        "{server:?}"
    );
    let restore = run_splitstore([
        "restore",
        "--data-dir",
        d,
        "--from",
        utf8(backup_of(&after, "config.db")),
    ]);
    assert!(restore.status.success(), "{restore:?}");
    let said = texts(&restore).0;
    assert!(
        said.starts_with(&format!(
            "restored {} from {} (schema {}); the previous file is kept at ",
            t.config.display(),
            backup_of(&after, "config.db").display(),
            config_store::SCHEMA.end_version()
        )) && said.lines().count() == 1,
        "{said}"
    );
    t.whole_again();
}

/// config.db copied back from before a repair gave its projects smaller ids, and the daemon went on recording:
/// from then on it names the project by config.db's old id, in an activity.db whose running totals hold the
/// project's time under the new one. The repair that gives config.db the new ids moved the totals' rows of
/// the old id under the new one as they were: two running totals interleaved, of which a report read the
/// differences (ten minutes read as nothing), or, with both in one quarter hour, a row the new id already had
/// (the repair failed on the totals' key). The old id's running totals are now added to the new id's.
#[test]
fn time_recorded_under_an_old_id_is_added_to_the_new_ids_by_the_repair() {
    use activity_store::{ActivityWriter, NewSession};
    use chrono::{DateTime, Duration as Minutes};
    let t = copied_back_from_before_ids_were_given("config.db");
    let (max, p) = (i64::MAX, t.project);
    let project = config_store::ConfigReader::open_in(&t.data).project_for_domain("far.example");
    assert_eq!(project.unwrap(), Some(max));
    // One session in the quarter hour of the one under the new id, and one an hour later.
    let first = t.id(
        &t.activity,
        &format!("SELECT start_time_ms FROM activity_sessions WHERE id = {}", t.session),
    );
    let first = DateTime::from_timestamp_millis(first).unwrap();
    let mut daemon = ActivityWriter::open_in(&t.data).unwrap();
    for (start, minutes) in [(first, 5), (first + Minutes::hours(1), 10)] {
        let session = NewSession {
            project_id: Some(max),
            ..NewSession::new("editor", start)
        };
        let id = daemon.start_session(&session).unwrap();
        daemon.end_session(id, start + Minutes::minutes(minutes)).unwrap();
    }
    drop(daemon);

    let d = utf8(&t.data);
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(t.named(), [p, p, p, p, t.subscription, t.subscription]);
    // Each range reads what the project's sessions in it add up to.
    let reports = splitstore::Reports::open(&t.data);
    let activity = read_only(&t.activity);
    let hour = first + Minutes::hours(1);
    for (range, from, to) in [
        (splitstore::TimeRange::all(), i64::MIN, i64::MAX),
        (splitstore::TimeRange::until(hour), i64::MIN, hour.timestamp_millis()),
        (splitstore::TimeRange::since(hour), hour.timestamp_millis(), i64::MAX),
    ] {
        let row = reports
            .time_per_project(&range)
            .unwrap()
            .into_iter()
            .find(|r| r.project_id == Some(p));
        let sessions = activity
            .query_row(
                "SELECT COUNT(*), IFNULL(SUM(duration_seconds), 0) FROM activity_sessions
                 WHERE project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3",
                [p, from, to],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .unwrap();
        assert_eq!(row.map(|r| (r.sessions, r.seconds)), Some(sessions), "{from}..{to}");
    }
    assert_eq!(
        query_i64(
            &activity,
            &format!("SELECT COUNT(*) FROM activity_sessions WHERE project_id = {p}")
        ),
        3
    );
}

/// config.db's projects out of ids while activity.db, whose sessions name them, was rebuilt without its
/// header ids (`.dump`): repair writes activity.db's header ids back and gives the project its id, with the
/// session's reference in activity.db.
#[test]
fn repair_gives_ids_with_the_references_in_a_file_whose_header_ids_it_writes_back() {
    let t = config_out_of_ids();
    rebuild_by_dump(&t.activity);
    let repair = run_splitstore(["repair", "--data-dir", utf8(&t.data)]);
    assert!(repair.status.success(), "{repair:?}");
    let said = texts(&repair).0;
    assert!(
        said.starts_with("activity.db: rebuilt without its header ids"),
        "{said}"
    );
    assert!(
        said.contains("1 in activity.db's activity_sessions.project_id"),
        "{said}"
    );
    t.whole_again();
}

/// A config.db of the previous schema (1) in which a project was deleted in the `sqlite3` shell, whose
/// foreign keys are off: the project's domain and keyword still name it. The new build's server starts on it
/// (each start failed on those rows: "migration 2 ... foreign_key_check found 2 violation(s)") and says them
/// as doctor does (only doctor did), naming `repair`, which removes exactly those two rows and says so; the
/// project kept keeps its own, and the next start says nothing.
#[test]
fn rows_of_a_project_deleted_in_the_sqlite3_shell_stop_no_upgrade_and_repair_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    drop(store_core::testing::open_at_version(&config, &config_store::SCHEMA, 1).unwrap());
    rusqlite::Connection::open(&config)
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO projects (id, name) VALUES (1, 'kept'), (2, 'deleted in the shell');
             INSERT INTO project_domains (id, project_id, domain) VALUES (1, 1, 'kept.example'), (2, 2, 'gone.example');
             INSERT INTO project_calendar_keywords (id, project_id, keyword) VALUES (1, 1, 'kept'), (2, 2, 'gone');
             DELETE FROM projects WHERE id = 2;",
        )
        .unwrap();
    let d = utf8(&data);
    let server = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
    assert!(server.status.success(), "{server:?}");
    assert_eq!(
        store_core::testing::user_version_of(&config),
        config_store::SCHEMA.end_version()
    );
    let message = format!(
        "{} has 2 foreign key violation(s): project_calendar_keywords row 2 names a row of projects the file does \
         not hold; project_domains row 2 names a row of projects the file does not hold",
        config.display()
    );
    let remedy = format!(
        "a parent row was deleted by a tool with foreign keys off (the sqlite3 shell's default): `splitstore repair \
         --data-dir {d}` removes the rows naming it, as that delete removes them with foreign keys on"
    );
    let upgrading = format!(
        "splitstore server: upgrading {} from schema 1 to {}: a copy of the file first, then the migration; stopping \
         it meanwhile starts it over at the next start\n",
        config.display(),
        config_store::SCHEMA.end_version()
    );
    let warning = format!("splitstore server: warning: {message}. What to do: {remedy}\n");
    let (_, stderr) = texts(&server);
    assert!(stderr.starts_with(&format!("{upgrading}{warning}")), "{stderr}");

    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(
        doctor_problems(&doctor, "config.db"),
        [("foreign_key_violations".to_string(), message, remedy)]
    );

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    let (stdout, _) = texts(&repair);
    assert!(
        stdout.contains(
            "config.db: removed 2 row(s) naming a row deleted by a tool with foreign keys off (as the sqlite3 shell \
             deletes), as that delete removes them with foreign keys on: project_calendar_keywords 2 (of projects); \
             project_domains 2 (of projects); their ids are recorded in its provenance, their values only in a \
             backup taken before\n"
        ),
        "{stdout}"
    );
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doctor_problems(&doctor, "config.db"), []);
    let conn = read_only(&config);
    let names: Vec<String> = query_column(
        &conn,
        "SELECT domain FROM project_domains WHERE project_id IN (1, 2)
         UNION ALL SELECT keyword FROM project_calendar_keywords WHERE project_id IN (1, 2)",
    );
    assert_eq!(names, ["kept.example", "kept"]);
    let server = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
    assert!(server.status.success(), "{server:?}");
    assert!(!texts(&server).1.contains("warning"), "{server:?}");
}

/// An activity.db whose `auto_vacuum` a tool turned off (`PRAGMA auto_vacuum = NONE; VACUUM` in the `sqlite3`
/// shell, or a database browser's setting): the daemon starts on it, saying so (each start failed: "PRAGMA
/// auto_vacuum reads back \"0\" after setting it to \"INCREMENTAL\"", its remedy a move to a local disk, while
/// doctor and repair called the file healthy); doctor names `repair`, which sets it back, every row kept.
#[test]
fn auto_vacuum_turned_off_in_the_sqlite3_shell_stops_no_daemon_and_repair_sets_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 300);
    let activity = data.join("activity.db");
    rusqlite::Connection::open(&activity)
        .unwrap()
        .execute_batch("PRAGMA auto_vacuum = NONE; VACUUM")
        .unwrap();
    let d = utf8(&data);
    let message = format!(
        "{} has auto_vacuum=NONE, not the INCREMENTAL it was created with (a tool changed it and ran VACUUM): the \
         space retention frees stays inside the file, never given back to the disk",
        activity.display()
    );
    let remedy = format!(
        "`splitstore repair --data-dir {d}` sets it back: a VACUUM rewrites the file in place, atomically, every row \
         kept (it needs free disk space the size of the file)"
    );

    let daemon = run_splitstore(["daemon", "--events", "100", "--data-dir", d]);
    assert!(daemon.status.success(), "{daemon:?}");
    assert_eq!(
        texts(&daemon).1,
        format!("splitstore daemon: warning: {message}. What to do: {remedy}\n")
    );
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(
        doctor_problems(&doctor, "activity.db"),
        [("auto_vacuum_off".to_string(), message, remedy)]
    );

    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(
        texts(&repair).0,
        "activity.db: auto_vacuum, turned off by a tool, set back to INCREMENTAL (a VACUUM rewrote the file in place, \
         every row kept): retention gives the space it frees back to the disk again\nconfig.db: healthy, left alone\n"
    );
    assert_eq!(query_i64(&read_only(&activity), "PRAGMA auto_vacuum"), 2);
    assert_eq!(count_rows(&activity, "activity_events"), 400);
    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    let doctor: Json = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doctor_problems(&doctor, "activity.db"), []);
}

/// Every foreign key of both schemas is `ON DELETE CASCADE`, from a table no key points at: a repair removing
/// the rows that name a parent deleted with foreign keys off ([`store_core::orphans`]) removes what that
/// delete removes with them on, and no more (none of those rows is another's parent).
#[test]
fn every_foreign_key_of_both_schemas_cascades_from_a_table_nothing_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    seed_data_dir(dir.path(), 5);
    let mut keys = Vec::new();
    for schema in splitstore::DATABASES {
        let conn = read_only(&schema.path_in(dir.path()));
        let found: Vec<String> = query_column(
            &conn,
            "SELECT t.name || ' ' || f.\"table\" || ' ' || f.on_delete
             FROM sqlite_schema t, pragma_foreign_key_list(t.name) f WHERE t.type = 'table' ORDER BY 1",
        );
        keys.extend(found);
    }
    // Child, parent, ON DELETE: no child is a parent.
    assert_eq!(
        keys,
        [
            "calendar_events calendar_subscriptions CASCADE",
            "project_calendar_keywords projects CASCADE",
            "project_domains projects CASCADE",
        ]
    );
}

/// Every column of both schemas whose name says it holds another row's id (`..._id`) is declared in a
/// schema's `id_references`: a repair giving a table smaller ids moves exactly the declared references (and a
/// restore raises counters past the other kind's), so a column a migration adds without declaring it would
/// be left naming ids no row has.
#[test]
fn every_id_column_of_both_schemas_is_declared_as_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    seed_data_dir(dir.path(), 5);
    let declared: Vec<(&str, &str)> = splitstore::DATABASES
        .iter()
        .flat_map(|s| s.id_references.iter().map(|r| (r.table, r.column)))
        .collect();
    for schema in splitstore::DATABASES {
        let conn = read_only(&schema.path_in(dir.path()));
        let columns: Vec<String> = query_column(
            &conn,
            "SELECT t.name || '.' || c.name FROM sqlite_schema t, pragma_table_info(t.name) c
             WHERE t.type = 'table' AND c.name LIKE '%\\_id' ESCAPE '\\' ORDER BY 1",
        );
        assert!(!columns.is_empty(), "{}", schema.file_name);
        for column in columns {
            let (table, name) = column.split_once('.').unwrap();
            assert!(
                declared.contains(&(table, name)),
                "{}: {column} is not declared",
                schema.file_name
            );
        }
    }
}
