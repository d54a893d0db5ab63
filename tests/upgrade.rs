//! The first start after an upgrade, as a user meets it: a data directory holding only the legacy database,
//! and the new `splitstore daemon` and `splitstore server` started at the same moment (real processes). One
//! splits, the other waits; a `kill -9` of the splitter in the middle of the split is taken over. Afterwards
//! every legacy row is there once with its id, what both processes wrote since is there too, and exactly
//! one split is recorded.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use migrate_split::fixtures::{LegacySpec, StopPoint, build};
use support::{kill9, query_column, read_only, run_splitstore, spawn_splitstore, texts, utf8, wait_output_within};

/// Ids of a table, through a plain read-only connection.
fn ids(db: &Path, table: &str) -> BTreeSet<i64> {
    query_column(&read_only(db), &format!("SELECT id FROM {table}"))
}

/// The legacy ids the split keeps, per table: every row of the legacy file but those in the rejects file.
fn kept_legacy_ids(legacy: &Path, data: &Path) -> BTreeMap<&'static str, BTreeSet<i64>> {
    let rejected: Vec<(String, i64)> = std::fs::read_to_string(data.join("split-rejects.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["table"].as_str().unwrap().to_string(), v["id"].as_i64().unwrap_or(-1))
        })
        .collect();
    ["projects", "activity_sessions", "activity_events", "calendar_events"]
        .into_iter()
        .map(|t| {
            let mut kept = ids(legacy, t);
            for (table, id) in &rejected {
                if table == t {
                    kept.remove(id);
                }
            }
            (t, kept)
        })
        .collect()
}

/// A `splitstore` subcommand with stdout collected and stderr lines sent to `lines`, tagged with `name`, by
/// the thread returned (it ends when the process's stderr closes).
fn start(
    name: &'static str,
    args: &[&str],
    lines: &mpsc::Sender<(&'static str, String)>,
) -> (Child, std::thread::JoinHandle<()>) {
    let mut child = spawn_splitstore(args);
    let stderr = child.stderr.take().unwrap();
    let lines = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send((name, line));
        }
    });
    (child, reader)
}

/// The lines `<prefix> <id>` of a command's stdout, as ids.
fn tagged(stdout: &str, prefix: &str) -> BTreeSet<i64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .collect()
}

#[test]
fn daemon_and_server_started_together_split_the_legacy_database_exactly_once() {
    for round in 0..10 {
        let kill_the_splitter = round % 2 == 1;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let legacy = data.join("legacy.db");
        build(&LegacySpec::small(3), &legacy).unwrap();
        let legacy_sha = store_core::schema::hex(&sha2_of(&legacy));
        let d = utf8(data);
        let daemon_args = [
            "daemon",
            "--data-dir",
            d,
            "--events",
            "3000",
            "--batch",
            "100",
            "--print-acks",
        ];
        let server_args = ["server", "--data-dir", d, "--seconds", "0.5", "--print-changes"];

        let (tx, rx) = mpsc::channel();
        let mut children: BTreeMap<&str, Child> = BTreeMap::new();
        let mut readers = BTreeMap::new();
        for (name, args) in [("daemon", &daemon_args[..]), ("server", &server_args[..])] {
            let (child, reader) = start(name, args, &tx);
            children.insert(name, child);
            readers.insert(name, reader);
        }
        let pids: BTreeMap<&str, u32> = children.iter().map(|(n, c)| (*n, c.id())).collect();
        let mut killed = None;
        if kill_the_splitter {
            // Kill whichever process says it is splitting, as soon as it says so.
            while killed.is_none() {
                let (name, line) = rx
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|e| panic!("round {round}: no process started splitting: {e}"));
                if line.contains("upgrading: splitting") {
                    kill9(children.get_mut(name).unwrap());
                    killed = Some(name);
                }
            }
        }
        let mut outputs: BTreeMap<&str, std::process::Output> = BTreeMap::new();
        for (name, child) in children {
            let out = wait_output_within(child, Duration::from_secs(60));
            if Some(name) != killed && !out.status.success() {
                // Its stderr went to the channel, read to its end once the process exited.
                readers.remove(name).unwrap().join().unwrap();
                let said: Vec<String> = rx.try_iter().filter(|(n, _)| *n == name).map(|(_, l)| l).collect();
                panic!("round {round}: {name} failed: {out:?}, said {said:#?}");
            }
            outputs.insert(name, out);
        }
        // The killed one starts again, as a supervisor would restart it, and opens the result.
        if let Some(name) = killed {
            let args: &[&str] = if name == "daemon" { &daemon_args } else { &server_args };
            let out = run_splitstore(args);
            assert!(out.status.success(), "round {round}: restarted {name}: {out:?}");
            outputs.insert(name, out);
        }
        drop(tx);
        let said: Vec<(&str, String)> = rx.try_iter().collect();

        let activity = data.join("activity.db");
        let config = data.join("config.db");
        // Every legacy row the split keeps is there once, with its id.
        for (table, legacy_ids) in kept_legacy_ids(&legacy, data) {
            let db = if table.starts_with("activity") {
                &activity
            } else {
                &config
            };
            let present = ids(db, table);
            let missing: Vec<_> = legacy_ids.difference(&present).take(5).collect();
            assert!(missing.is_empty(), "round {round}: {table} lost legacy ids {missing:?}");
        }
        // What both wrote since is there too: every acknowledged event, every project the server kept.
        let (daemon_out, _) = texts(&outputs["daemon"]);
        let (server_out, _) = texts(&outputs["server"]);
        let acked = tagged(&daemon_out, "ack ");
        assert!(!acked.is_empty(), "round {round}: the daemon acknowledged events");
        assert!(
            acked.is_subset(&ids(&activity, "activity_events")),
            "round {round}: acked events"
        );
        let created = tagged(&server_out, "created ");
        let deleted = tagged(&server_out, "deleted ");
        let projects = ids(&config, "projects");
        assert!(!created.is_empty(), "round {round}: the server created projects");
        assert!(
            created.difference(&deleted).all(|id| projects.contains(id)),
            "round {round}"
        );
        assert!(deleted.iter().all(|id| !projects.contains(id)), "round {round}");
        // Exactly one split, recorded in both files (as their first record) and in the data directory.
        for db in [&activity, &config] {
            let events: Vec<String> = query_column(&read_only(db), "SELECT event FROM provenance ORDER BY id");
            assert_eq!(
                events.first().map(String::as_str),
                Some("split"),
                "round {round}: {events:?}"
            );
            assert_eq!(events.iter().filter(|e| *e == "split").count(), 1, "round {round}");
        }
        let record = store_core::conversion::recorded(data).expect("the split is recorded");
        assert_eq!(
            record.sha256, legacy_sha,
            "round {round}: the legacy file was never changed"
        );
        // One process said it split (two, when the first was killed after finishing). One that waited
        // said so, naming the other process's pid.
        let splits_said = said.iter().filter(|(_, l)| l.contains("upgraded: split")).count();
        assert!(
            splits_said == 1 || (kill_the_splitter && splits_said <= 2),
            "round {round}: {said:?}"
        );
        for (name, line) in said
            .iter()
            .filter(|(_, l)| l.contains("upgrading: split in progress by"))
        {
            let other = if *name == "daemon" {
                pids["server"]
            } else {
                pids["daemon"]
            };
            assert!(
                line.contains(&format!("by pid {other} ")),
                "round {round}: {name}: {line}"
            );
        }
    }
}

fn sha2_of(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn the_server_started_alone_on_a_legacy_directory_shows_the_legacy_projects() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.db");
    let summary = build(&LegacySpec::small(3), &legacy).unwrap();
    let out = run_splitstore([
        "server",
        "--data-dir",
        utf8(dir.path()),
        "--seconds",
        "0.2",
        "--print-changes",
    ]);
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = texts(&out);
    assert!(stderr.contains("upgraded: split"), "{stderr}");
    let legacy_projects = summary.counts()["projects"].copied;
    // The rows the split could not take, and where they are, said as `migrate-split` says them (the first start
    // used to say only how many rows the legacy file held).
    assert!(summary.rejected() > 0);
    let rejects = dir.path().join("split-rejects.jsonl");
    for said in [
        format!(" rows, {} rejected)\n", summary.rejected()),
        format!(
            "\nsplitstore server: {} rejected row(s) written to {}\n",
            summary.rejected(),
            rejects.display()
        ),
    ] {
        assert!(stderr.contains(&said), "{said:?} in {stderr}");
    }
    let names = splitstore::config_store::ConfigReader::open_in(dir.path())
        .project_names()
        .unwrap();
    let created = tagged(&stdout, "created ").len() as u64;
    let deleted = tagged(&stdout, "deleted ").len() as u64;
    assert_eq!(
        names.len() as u64,
        legacy_projects + created - deleted,
        "the legacy projects are there"
    );
    assert!(legacy_projects > 0);
}

/// The old application still running after the upgrade (started at login, say) writes the legacy file,
/// which nothing reads any more: its writes would be lost with no error anywhere. Each start of the daemon
/// and server warns, and doctor says it about both files, naming the file and both times; the doctor's
/// leftover line says the file holds writes that are only there, and cleanup keeps it. Before, all three said
/// nothing, and cleanup removed it.
#[test]
fn the_old_application_writing_the_legacy_file_after_the_split_is_said_at_every_start_and_by_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let legacy = data.join("legacy.db");
    build(&LegacySpec::small(3), &legacy).unwrap();
    let daemon = ["daemon", "--data-dir", utf8(data), "--events", "10"];
    let first = run_splitstore(daemon);
    assert!(first.status.success(), "{first:?}");
    assert!(!texts(&first).1.contains("warning"), "{first:?}");
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(data)]);
    assert!(!texts(&doctor).0.contains("written_after_conversion"), "{doctor:?}");

    // The old application adds a project.
    let old_app = rusqlite::Connection::open(&legacy).unwrap();
    old_app
        .execute("INSERT INTO projects (name) VALUES ('made in the old app')", [])
        .unwrap();
    drop(old_app);
    let converted = store_core::conversion::recorded(data).unwrap().at_ms;
    let modified = store_core::conversion::written_since(data).expect("the write is seen");
    assert_eq!(
        (modified.predecessor.as_path(), modified.converted_at_ms),
        (legacy.as_path(), converted)
    );
    let (converted, modified) = (
        store_core::time::show_ms(converted),
        store_core::time::show_ms(modified.modified_at_ms),
    );
    let said = |db: &str| {
        format!(
            "{} was modified at {modified}, after it was converted at {converted}: what was written to it since \
             is not in {db}",
            legacy.display()
        )
    };
    let remedy = format!(
        "if the old application still runs, stop it: nothing reads {} any more, and what it wrote there since the \
         conversion is only there (the file is never converted again). If the file was only copied or touched, \
         nothing is missing. Once what you need of it is kept, move it away from there",
        legacy.display()
    );
    for (owner, args) in [
        ("daemon", &daemon[..]),
        ("server", &["server", "--data-dir", utf8(data), "--seconds", "0.1"][..]),
    ] {
        let out = run_splitstore(args);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            texts(&out).1,
            format!(
                "splitstore {owner}: warning: {}. What to do: {remedy}\n",
                said("activity.db or config.db")
            )
        );
    }
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(data)]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let stdout = texts(&doctor).0;
    for db in ["activity.db", "config.db"] {
        let problem = format!("  {db} [written_after_conversion]: {}\n    fix: {remedy}\n", said(db));
        assert!(stdout.contains(&problem), "{stdout}");
    }
    let leftover = format!(
        "the legacy database, converted {converted} and modified since (at {modified}): what was written to it \
         since is only there"
    );
    assert!(stdout.contains(&leftover), "{stdout}");
    // cleanup, even of everything, keeps it: nothing else holds what it has.
    let cleanup = run_splitstore(["cleanup", "--data-dir", utf8(data), "--older-than", "0"]);
    assert!(cleanup.status.success(), "{cleanup:?}");
    assert!(
        texts(&cleanup).0.contains(&format!(
            "kept {} ({} bytes, 0 days old): {leftover}: nothing else holds it; move it away by hand once kept\n",
            legacy.display(),
            std::fs::metadata(&legacy).unwrap().len()
        )),
        "{cleanup:?}"
    );
    assert!(legacy.exists());
}

/// Another legacy file put where the split one was, by a copy that kept its older time (`cp -p`, `rsync -a`,
/// a backup tool): nothing read its times as a write after the split, and `cleanup` removed it, with rows
/// only it holds. It keeps it now, by the sha256 the split recorded. And a data directory moved elsewhere
/// after its split still sees the old application write its legacy file (the record names the old path).
#[test]
fn a_legacy_file_that_is_not_the_one_split_is_kept_by_cleanup_and_a_moved_directory_still_sees_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let legacy = data.join("legacy.db");
    build(&LegacySpec::small(3), &legacy).unwrap();
    let first = run_splitstore(["daemon", "--data-dir", utf8(&data), "--events", "10"]);
    assert!(first.status.success(), "{first:?}");

    let other = dir.path().join("other.db");
    build(&LegacySpec::small(2), &other).unwrap();
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    std::fs::rename(&other, &legacy).unwrap();
    assert!(
        store_core::conversion::written_since(&data).is_none(),
        "its times say nothing"
    );
    let cleanup = run_splitstore(["cleanup", "--data-dir", utf8(&data), "--older-than", "0"]);
    let stdout = texts(&cleanup).0;
    assert!(cleanup.status.success(), "{cleanup:?}");
    assert!(
        stdout.contains(&format!("kept {} (", legacy.display()))
            && stdout.contains(
                ": it is not the file that was converted (its sha256 differs from the one recorded then), so its \
                 rows may be in neither database; move it away by hand once kept\n"
            ),
        "{stdout}"
    );
    assert!(legacy.exists());

    let moved = dir.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let old_app = rusqlite::Connection::open(moved.join("legacy.db")).unwrap();
    old_app
        .execute("INSERT INTO projects (name) VALUES ('made in the old app')", [])
        .unwrap();
    drop(old_app);
    let out = run_splitstore(["daemon", "--data-dir", utf8(&moved), "--events", "10"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        texts(&out).1.starts_with(&format!(
            "splitstore daemon: warning: {} was modified at ",
            moved.join("legacy.db").display()
        )),
        "{out:?}"
    );
}

/// A restore into a data directory holding a legacy file not split yet (a new machine: the old app's file,
/// and the backups of the other one) used to succeed, after which neither owner could start (the split
/// refuses files it did not make beside it, with a `--force` they do not take). Refused now, changing nothing,
/// with both ways on.
#[test]
fn a_restore_beside_a_legacy_file_not_split_yet_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    for d in [&old, &new] {
        std::fs::create_dir(d).unwrap();
        build(&LegacySpec::small(3), &d.join("legacy.db")).unwrap();
    }
    let first = run_splitstore(["daemon", "--data-dir", utf8(&old), "--events", "10"]);
    assert!(first.status.success(), "{first:?}");
    let backup = run_splitstore(["backup", "--data-dir", utf8(&old)]);
    assert!(backup.status.success(), "{backup:?}");

    let from = old.join("backups");
    let restore = ["restore", "--data-dir", utf8(&new), "--from", utf8(&from)];
    let out = run_splitstore(restore);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let legacy = new.join("legacy.db");
    assert_eq!(
        texts(&out).1,
        format!(
            "splitstore restore: {l} has not been split, and the split refuses files it did not make beside it: \
             restored there, neither owner could start. What to do: to keep what the backups hold (its data too, \
             if they were taken after its split elsewhere), move {l} out of {n} and restore; to keep its data \
             instead, start the daemon once, which splits it, and do not restore; nothing was changed\n",
            l = legacy.display(),
            n = new.display()
        )
    );
    assert!(!new.join("activity.db").exists() && !new.join("config.db").exists());

    std::fs::rename(&legacy, dir.path().join("legacy-of-the-new-machine.db")).unwrap();
    let out = run_splitstore(restore);
    assert!(out.status.success(), "{out:?}");
    let daemon = run_splitstore(["daemon", "--data-dir", utf8(&new), "--events", "10"]);
    assert!(daemon.status.success(), "{daemon:?}");
}

#[test]
fn a_legacy_file_that_cannot_be_split_stops_both_processes_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    std::fs::write(data.join("legacy.db"), b"a whole-file export cut short").unwrap();
    for command in ["daemon", "server"] {
        let out = run_splitstore([command, "--data-dir", utf8(data), "--seconds", "0.2"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let (_, stderr) = texts(&out);
        assert!(
            stderr.contains("legacy.db is not a legacy database this tool converts") && stderr.contains("What to do:"),
            "{command}: {stderr}"
        );
    }
    assert!(
        !data.join("activity.db").exists() && !data.join("config.db").exists(),
        "nothing created"
    );
    // Doctor says what the owners said, not "not converted yet" with a split as the remedy (which would
    // fail the same way).
    let doctor = run_splitstore(["doctor", "--data-dir", utf8(data), "--json"]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for db in json["databases"].as_array().unwrap() {
        let problems = db["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{db}");
        assert_eq!(problems[0]["code"], "unsupported_input", "{db}");
        let message = problems[0]["message"].as_str().unwrap();
        assert!(
            message.contains("legacy.db is not a legacy database this tool converts"),
            "{message}"
        );
    }
    // A store opened directly (bypassing the upgrade step) refuses to start empty beside it.
    let err = splitstore::activity_store::ActivityWriter::open_in(data).unwrap_err();
    assert_eq!(err.kind(), splitstore::ErrorKind::NotConvertedYet, "{err}");
    assert!(err.is_not_ready());
    let err = splitstore::config_store::ConfigReader::open_in(data)
        .check()
        .unwrap_err();
    assert_eq!(err.kind(), splitstore::ErrorKind::NotConvertedYet, "{err}");
    assert!(
        !data.join("activity.db").exists() && !data.join("config.db").exists(),
        "still nothing"
    );
}

#[test]
fn sessions_a_legacy_file_left_open_are_recovered_at_the_first_open_after_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    build(&LegacySpec::small(3), &data.join("legacy.db")).unwrap();
    migrate_split::prepare(data, &Default::default()).unwrap();
    let activity = data.join("activity.db");
    let conn = read_only(&activity);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let open = count("SELECT count(*) FROM activity_sessions WHERE end_time_ms IS NULL");
    let ended = count("SELECT count(*) FROM activity_sessions WHERE end_time_ms IS NOT NULL");
    assert!(open > 0, "the fixture has sessions the legacy app left open");
    assert_eq!(
        count("SELECT count(*) FROM activity_sessions WHERE end_reason = 'ended'"),
        ended
    );
    drop(conn);

    let writer = splitstore::activity_store::ActivityWriter::open_in(data).unwrap();
    assert_eq!(writer.recovery().sessions.len() as i64, open);
    drop(writer);
    let conn = read_only(&activity);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM activity_sessions WHERE end_time_ms IS NULL"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM activity_sessions WHERE end_reason = 'recovered'"),
        open
    );
    // Each ends at its last event (or its start), never before its start.
    let wrong = count(
        "SELECT count(*) FROM activity_sessions s WHERE end_reason = 'recovered' AND end_time_ms !=
           max(start_time_ms, coalesce((SELECT max(timestamp_ms) FROM activity_events WHERE session_id = s.id), 0))",
    );
    assert_eq!(wrong, 0);
    assert!(
        splitstore::activity_store::ActivityWriter::open_in(data)
            .unwrap()
            .recovery()
            .is_empty()
    );
}

/// The names in `dir`.
/// After the split, legacy.db stays beside the databases for the way back, in the clear, the old application's
/// settings (tokens) in it. Readable by every user in a folder every user may enter (a data directory the old
/// application made 0755), doctor said healthy; it now names the file, and the `chmod` of its remedy, run as
/// written, makes doctor healthy.
#[test]
fn a_legacy_file_other_users_may_read_is_named_by_doctor() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let legacy = data.join("legacy.db");
    build(&LegacySpec::small(3), &legacy).unwrap();
    std::fs::set_permissions(&legacy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = utf8(&data);
    assert!(
        run_splitstore(["daemon", "--data-dir", d, "--events", "10"])
            .status
            .success()
    );
    assert!(
        run_splitstore(["server", "--data-dir", d, "--seconds", "0.1"])
            .status
            .success()
    );

    let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let problems = support::doctor_problems(&json, "activity.db");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let (code, message, remedy) = &problems[0];
    assert_eq!(code, "readable_by_others");
    assert_eq!(
        message,
        &format!(
            "1 file(s) the split left may be read by other users: {} (mode 0644)",
            legacy.display()
        )
    );
    let command = remedy.split('`').nth(1).unwrap();
    assert_eq!(command, format!("chmod go= {}", legacy.display()));
    assert!(
        std::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .unwrap()
            .success()
    );
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(0), "{}", texts(&doctor).0);
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The child process of the test below: a split stopped for good at the point its role names
/// (`migrate_split::fixtures::split_stopping_at`).
#[test]
fn child_entry() {
    let Some((role, dir)) = support::child_role() else {
        return;
    };
    let point = StopPoint::named(&role).unwrap_or_else(|| panic!("unknown role {role}"));
    migrate_split::fixtures::split_stopping_at(point, &dir);
}

/// `migrate-split --legacy L --data-dir D` (L outside D) `kill -9`ed between placing activity.db and
/// config.db, or before placing either: doctor said config.db (or both) was missing and that starting the
/// server creates it, listed the split's config.db (only under its temporary name) as removable, and the
/// server did create an empty config.db (doctor then said healthy; the split then refused the directory).
/// Now doctor says the split was interrupted and to run it again, cleanup keeps its unplaced output, and the
/// server's start finishes that split: every legacy row is in the outputs.
#[test]
fn a_split_killed_while_placing_its_outputs_is_said_by_doctor_kept_by_cleanup_and_finished_by_the_server() {
    for point in [StopPoint::BetweenPlacements, StopPoint::BeforePlacing] {
        let role = point.name();
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy.db");
        build(&LegacySpec::small(3), &legacy).unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let mut child = support::spawn_child("child_entry", role, dir.path());
        support::wait_for_file(&dir.path().join("stopped"), Duration::from_secs(120));
        kill9(&mut child);
        let placed = point == StopPoint::BetweenPlacements;
        assert_eq!(data.join("activity.db").exists(), placed, "{role}");
        assert!(!data.join("config.db").exists(), "{role}");

        // Doctor: not healthy, not "missing: start the server", but the split to run again.
        let doctor = run_splitstore(["doctor", "--data-dir", d]);
        let (text, _) = texts(&doctor);
        assert_eq!(doctor.status.code(), Some(1), "{role}: {text}");
        assert!(
            !text.contains("\nhealthy") && !text.contains("it creates the file"),
            "{role}: {text}"
        );
        let remedy = format!("migrate-split --legacy {} --data-dir {d}", legacy.display());
        assert!(
            text.contains("config.db [not_converted_yet]") && text.contains(&remedy),
            "{role}: {text}"
        );
        assert!(text.contains("was interrupted"), "{role}: {text}");
        let unplaced: Vec<String> = listing(&data)
            .into_iter()
            .filter(|n| n.starts_with(".split-tmp-") && n.ends_with(".config.db"))
            .collect();
        assert_eq!(
            unplaced.len(),
            1,
            "{role}: the split's config.db under its temporary name"
        );
        assert!(
            text.lines()
                .any(|l| l.contains(&unplaced[0]) && l.contains("not in place yet: kept")),
            "{role}: {text}"
        );
        // Cleanup keeps it.
        let cleanup = run_splitstore(["cleanup", "--data-dir", d, "--older-than", "0"]);
        assert!(cleanup.status.success(), "{role}: {cleanup:?}");
        assert!(data.join(&unplaced[0]).exists(), "{role}: {}", texts(&cleanup).0);

        // The store opened directly (without the upgrade step) refuses to start empty.
        let err = splitstore::config_store::ConfigStore::open_in(&data).unwrap_err();
        assert_eq!(err.kind(), splitstore::ErrorKind::NotConvertedYet, "{role}: {err}");
        assert!(!data.join("config.db").exists(), "{role}");

        // Starting the server finishes the split: the legacy projects are there, nothing was left behind.
        let out = run_splitstore(["server", "--data-dir", d, "--seconds", "0.2"]);
        assert!(out.status.success(), "{role}: {out:?}");
        let (_, stderr) = texts(&out);
        assert!(stderr.contains("upgraded: split"), "{role}: {stderr}");
        for (table, kept) in kept_legacy_ids(&legacy, &data) {
            let db = if ["projects", "calendar_events"].contains(&table) {
                "config.db"
            } else {
                "activity.db"
            };
            let there = ids(&data.join(db), table);
            let missing: Vec<_> = kept.difference(&there).take(5).collect();
            assert!(missing.is_empty(), "{role}: {table} lost legacy ids {missing:?}");
        }
        assert!(
            listing(&data)
                .iter()
                .all(|n| !n.starts_with(".split-tmp-") && !n.contains(".unfinished-")),
            "{role}: {:?}",
            listing(&data)
        );
        let doctor = run_splitstore(["doctor", "--data-dir", d]);
        assert!(doctor.status.success(), "{role}: {}", texts(&doctor).0);
        assert!(texts(&doctor).0.ends_with("\nhealthy\n"), "{role}");
    }
}

/// A legacy table that handed out the largest id SQLite allows (a hand edit, or a bug of the old app) takes no
/// more rows after the split: SQLite answers an insert with SQLITE_FULL. The daemon said "the disk is full"
/// (`disk_full`, exit 75): freeing space never helped, and its supervisor restarted it into the same failure.
/// It now says `ids_exhausted` naming the table, exits 2, and doctor lists it (the split warned of it first);
/// the rows are intact. The remedy's `splitstore repair` gives the row a smaller id, its event moved with it,
/// and the daemon records again; before, no command did (the fix was SQL by hand, and the record of the ids
/// handed out removed by hand).
#[test]
fn a_table_out_of_ids_is_said_as_such_and_repair_gives_its_row_a_smaller_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let legacy = data.join("legacy.db");
    build(&LegacySpec::small(3), &legacy).unwrap();
    {
        let conn = rusqlite::Connection::open(&legacy).unwrap();
        conn.execute(
            "INSERT INTO activity_sessions (id, app, start_time, end_time, duration_seconds)
             VALUES (?1, 'editor', '2024-01-01T10:00:00.000Z', '2024-01-01T11:00:00.000Z', 3600)",
            [i64::MAX],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO activity_events (session_id, event_type, app, timestamp)
             VALUES (?1, 'focus', 'editor', '2024-01-01T10:00:00.000Z')",
            [i64::MAX],
        )
        .unwrap();
    }
    let activity = data.join("activity.db");
    let d = utf8(data);
    let daemon = ["daemon", "--data-dir", d, "--events", "10"];
    let out = run_splitstore(daemon);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = format!(
        "splitstore daemon: {}: no row can be added to activity_sessions: it has handed out id 9223372036854775807, \
         the largest SQLite allows, and an AUTOINCREMENT table never reuses a smaller one (SQLite answers an \
         insert with SQLITE_FULL, \"database or disk is full\", whatever the disk holds). What to do: freeing \
         disk space does not help, and restarting fails the same way: the rows already in activity_sessions are \
         intact and read as before; stop every owner of a database in {d} (the command takes all their locks), \
         then run `splitstore repair --data-dir {d}`: it gives the table's ids from 4611686018427387904 up (the \
         legacy file's: splitstore hands out the next id after the largest) the next free ones, with every \
         reference to them in either database, and the owner adds rows again\n",
        activity.display()
    );
    assert!(texts(&out).1.contains(&said), "{said:?} not in {out:?}");
    // Said by the split already, before the first insert.
    let warned = "splitstore daemon: warning: activity.db's activity_sessions has handed out id \
                  9223372036854775807, the largest SQLite allows (a legacy row holds it): no row can be added to it \
                  until `splitstore repair` gives that row a smaller free id (docs/upgrade.md, \"A table out of \
                  ids\")\n";
    assert!(texts(&out).1.contains(warned), "{warned:?} not in {out:?}");
    let sessions = ids(&activity, "activity_sessions");
    assert!(sessions.contains(&i64::MAX), "the legacy rows are all there");

    let problems = |data: &Path| {
        let doctor = run_splitstore(["doctor", "--data-dir", utf8(data), "--json"]);
        let doctor: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
        support::doctor_problems(&doctor, "activity.db")
            .into_iter()
            .map(|(code, _, _)| code)
            .collect::<Vec<String>>()
    };
    assert!(problems(data).iter().any(|c| c == "ids_exhausted"));

    // A backup taken before holds the id at the limit; one taken after does not, and is still the later.
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");

    // The remedy's command.
    let moved = sessions.range(..i64::MAX).next_back().unwrap() + 1;
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(
        texts(&repair).0,
        format!(
            "activity.db: activity_sessions had handed out id 9223372036854775807, the largest SQLite allows, and \
             took no more rows: its row with an id from 4611686018427387904 up now has id {moved}, the references to \
             them with them (1 in activity.db's activity_events.session_id); new rows get ids from {}; take a new \
             backup: those taken before hold the old ids\nconfig.db: healthy, left alone\n",
            moved + 1
        )
    );
    assert_eq!(
        problems(data),
        ["readable_by_others"],
        "the legacy file's mode, said since the split"
    );

    let out = run_splitstore(daemon);
    assert!(out.status.success(), "{out:?}");
    let now = ids(&activity, "activity_sessions");
    assert!(now.contains(&moved) && !now.contains(&i64::MAX), "{moved}");
    assert_eq!(
        now.range(moved + 1..).next(),
        Some(&(moved + 1)),
        "the daemon's next session"
    );
    let events_of_moved: Vec<i64> = query_column(
        &read_only(&activity),
        &format!("SELECT COUNT(*) FROM activity_events WHERE session_id = {moved}"),
    );
    assert_eq!(events_of_moved, [1]);
    // Compared by their counters, the backup from before the ids moved is not read as holding rows the
    // newest lacks (a backup named earlier than one it is newer than: `backup_named_earlier`).
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");
    assert_eq!(problems(data), ["readable_by_others"]);
}
