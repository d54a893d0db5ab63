//! Recovery never silently damages data: a restore or repair never lets an id be handed out twice, a
//! restore of both files is all or nothing (whatever step fails or is killed), pre-migration backups
//! survive manual rotation, a start that always fails leaves a record the app can show, and a file replaced
//! or removed by hand after a crash is never opened with the `-wal` the crash left.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use splitstore::TimeRange;
use splitstore::activity_store::{ActivityReader, ActivityWriter, NewEvent, NewSession};
use splitstore::config_store::{ConfigStore, NewCalendarEvent, NewProject, NewSubscription};
use splitstore::operations::{self, RestoreHook};
use support::{
    child_role, copy_data_dir, count_rows, kill9, marker, next_event_id, query_column, query_i64, read_only,
    reported_project, run_splitstore, seed_data_dir, spawn_child, texts, utf8, wait_for_file, wait_until, wait_within,
};

fn ids(db: &Path, sql: &str) -> BTreeSet<i64> {
    query_column(&read_only(db), sql)
}

/// Sessions of `projects`, each with an event, recorded by the daemon's writer.
fn record_sessions(data: &Path, projects: &[i64]) {
    record_sessions_started(data, projects, chrono::Utc::now() - chrono::Duration::minutes(10));
}

/// [`record_sessions`], each a minute long from `start`.
fn record_sessions_started(data: &Path, projects: &[i64], start: chrono::DateTime<chrono::Utc>) {
    let mut w = ActivityWriter::open_in(data).unwrap();
    for &p in projects {
        let s = w
            .start_session(&NewSession {
                project_id: Some(p),
                ..NewSession::new("editor", start)
            })
            .unwrap();
        w.record_event(&NewEvent::new(Some(s), "focus", start)).unwrap();
        w.end_session(s, start + chrono::Duration::minutes(1)).unwrap();
    }
}

/// [`operations::restore_with`] of `data` from its backup folder, with `hook` at each step.
fn restore_from_backups(
    data: &Path,
    hook: Option<&RestoreHook>,
) -> store_core::Result<Vec<store_core::restore::RestoreReport>> {
    operations::restore_with(data, &data.join("backups"), hook, None, &store_core::Waits::default())
}

#[test]
fn a_project_created_after_a_config_restore_never_reuses_an_id_activity_or_calendar_events_refer_to() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    // The server creates (and deletes) projects as a real process; the daemon records against them.
    assert!(
        run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"])
            .status
            .success()
    );
    let early = ids(&data.join("config.db"), "SELECT id FROM projects");
    record_sessions(data, &early.iter().copied().collect::<Vec<_>>());
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");

    // After the backup: more projects, sessions of the newest, and calendar events naming them.
    assert!(
        run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"])
            .status
            .success()
    );
    let later: Vec<i64> = ids(&data.join("config.db"), "SELECT id FROM projects")
        .difference(&early)
        .copied()
        .collect();
    assert!(!later.is_empty());
    record_sessions(data, &later);
    {
        let mut config = ConfigStore::open_in(data).unwrap();
        let sub = config
            .add_subscription(&NewSubscription::new("Team", "https://example.com/team.ics"))
            .unwrap();
        let events: Vec<NewCalendarEvent> = later
            .iter()
            .map(|&p| NewCalendarEvent {
                project_id: Some(p),
                ..NewCalendarEvent::new(format!("uid-{p}"), chrono::Utc::now())
            })
            .collect();
        config
            .replace_calendar_events(sub.id, &events, chrono::Utc::now())
            .unwrap();
    }
    let mut referenced = ids(&data.join("activity.db"), "SELECT project_id FROM activity_sessions");
    referenced.extend(ids(
        &data.join("config.db"),
        "SELECT project_id FROM calendar_events WHERE project_id IS NOT NULL",
    ));
    let highest_ever = query_i64(
        &read_only(&data.join("config.db")),
        "SELECT seq FROM sqlite_sequence WHERE name = 'projects'",
    );

    // Restore config.db alone, from before those projects existed.
    let config_backup = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("config-"))
        .unwrap();
    let restored = run_splitstore(["restore", "--data-dir", d, "--from", utf8(&config_backup)]);
    assert!(restored.status.success(), "{restored:?}");
    assert!(ids(&data.join("config.db"), "SELECT id FROM projects").is_disjoint(&later.iter().copied().collect()));

    let created = ConfigStore::open_in(data)
        .unwrap()
        .create_project(&NewProject::named("After the restore"))
        .unwrap();
    assert!(
        !referenced.contains(&created.id) && created.id > highest_ever,
        "new project {} reuses an id (referenced: {referenced:?}, highest ever {highest_ever})",
        created.id
    );
}

#[test]
fn a_config_repaired_from_an_older_backup_never_reuses_an_id_activity_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    let mut config = ConfigStore::open_in(data).unwrap();
    let first = config.create_project(&NewProject::named("first")).unwrap();
    drop(config);
    assert!(run_splitstore(["backup", "--data-dir", d]).status.success());
    let mut config = ConfigStore::open_in(data).unwrap();
    let later: Vec<i64> = (0..5)
        .map(|i| {
            config
                .create_project(&NewProject::named(format!("later {i}")))
                .unwrap()
                .id
        })
        .collect();
    drop(config);
    record_sessions(data, &later);
    // config.db is damaged beyond reading: its counters are lost with it.
    std::fs::write(data.join("config.db"), vec![0x42; 8192]).unwrap();
    let repaired = run_splitstore(["repair", "--data-dir", d]);
    assert!(repaired.status.success(), "{repaired:?}");
    let created = ConfigStore::open_in(data)
        .unwrap()
        .create_project(&NewProject::named("after the repair"))
        .unwrap();
    assert!(
        created.id > *later.iter().max().unwrap(),
        "{} reuses an id activity.db refers to",
        created.id
    );
    assert!(created.id > first.id);
}

/// A data directory whose files hold "current" content and whose backups hold "backup" content, told apart
/// by their rows: (events, project names).
fn two_states(data: &Path) -> ((i64, Vec<String>), (i64, Vec<String>)) {
    let mut w = ActivityWriter::open_in(data).unwrap();
    let s = w.start_session(&NewSession::new("editor", chrono::Utc::now())).unwrap();
    for _ in 0..10 {
        w.record_event(&NewEvent::new(Some(s), "focus", chrono::Utc::now()))
            .unwrap();
    }
    drop(w);
    let mut c = ConfigStore::open_in(data).unwrap();
    c.create_project(&NewProject::named("first")).unwrap();
    drop(c);
    operations::backup(data, &data.join("backups"), 5).unwrap();
    let backup = state(data);
    let mut w = ActivityWriter::open_in(data).unwrap();
    for _ in 0..15 {
        w.record_event(&NewEvent::new(None, "input", chrono::Utc::now()))
            .unwrap();
    }
    drop(w);
    let mut c = ConfigStore::open_in(data).unwrap();
    c.create_project(&NewProject::named("second")).unwrap();
    drop(c);
    (state(data), backup)
}

fn state(data: &Path) -> (i64, Vec<String>) {
    let events = query_i64(
        &read_only(&data.join("activity.db")),
        "SELECT count(*) FROM activity_events",
    );
    let names = query_column(
        &read_only(&data.join("config.db")),
        "SELECT name FROM projects ORDER BY id",
    );
    (events, names)
}

/// The steps of a restore of both files, in order (see `store_core::restore::restore_all`).
fn steps(data: &Path) -> Vec<String> {
    let a = data.join("activity.db");
    let c = data.join("config.db");
    vec![
        "copied activity.db".into(),
        "copied config.db".into(),
        "journal written".into(),
        format!("moved aside the sidecars of {}", a.display()),
        format!("moved aside {}", a.display()),
        format!("placed {}", a.display()),
        format!("moved aside the sidecars of {}", c.display()),
        format!("moved aside {}", c.display()),
        format!("placed {}", c.display()),
        "committed".into(),
    ]
}

#[test]
fn a_restore_of_both_files_that_fails_at_any_step_leaves_the_old_pair_or_the_new_one_never_a_mix() {
    for (i, step) in steps(Path::new("DATA")).iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let (current, backup) = two_states(data);
        let failing = steps(data)[i].clone();
        let hook: RestoreHook = Arc::new(move |s: &str| if s == failing { Err("injected".into()) } else { Ok(()) });
        let err = restore_from_backups(data, Some(&hook)).unwrap_err();
        assert!(err.to_string().contains("injected"), "{step}: {err}");
        let committed = step == "committed";
        // Opening an owner (which finishes any interrupted restore) and reading: one pair or the other.
        drop(ActivityWriter::open_in(data).unwrap());
        let now = state(data);
        assert_eq!(
            now,
            if committed { backup.clone() } else { current.clone() },
            "failed at {step}"
        );
        assert!(!data.join("activity.db.restoring").exists() && !data.join("config.db.restoring").exists());
        assert!(!data.join(".private/restore.journal").exists(), "{step}");
    }
}

/// A restore whose open of the files it placed fails (a disk filling after its commit; here, config.db's
/// header overwritten at that moment) said only that open's error, so the operator ran it again, which put the
/// same backups in place once more. The error now says what stands in place, keeping that open's kind.
#[test]
fn a_restore_that_fails_after_its_commit_says_the_files_were_placed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    two_states(data);
    let config = data.join("config.db");
    let at_commit = config.clone();
    let hook: RestoreHook = Arc::new(move |s: &str| {
        if s == "committed" {
            std::fs::write(&at_commit, vec![0x5a; 4096]).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let err = restore_from_backups(data, Some(&hook)).unwrap_err();
    // Its own kind, not retryable: the open's (not_a_database here; disk_full, io, locked would say retryable)
    // would have a program run the restore again.
    assert_eq!(
        (err.kind(), err.path(), err.is_retryable()),
        (splitstore::ErrorKind::PlacedNotOpened, config.as_path(), false),
        "{err}"
    );
    let placed = format!(
        "{} and {} put in place",
        data.join("activity.db").display(),
        config.display()
    );
    assert!(
        err.what().starts_with(&format!(
            "{placed} (what it replaced is kept aside), then: {}",
            config.display()
        )),
        "{err}"
    );
    assert_eq!(
        err.remedy(),
        "do not run the command again (it would put the same in place once more): the files named stand in place \
         with what they need; deal with what stopped their open (not_a_database), then start the owners, whose \
         open does what this one could not"
    );
    assert!(!data.join(".private/restore.journal").exists());
}

/// A restore that cannot write its journal (a private folder this user may not write: here, something in
/// the way of its temporary file) removes the copies it made beside the databases; it left them, whole
/// copies of the user's data, for `cleanup`.
#[test]
fn a_restore_that_cannot_write_its_journal_leaves_no_copy_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (current, _) = two_states(data);
    let in_the_way = data.join(format!(".private/restore.journal.tmp-{}", std::process::id()));
    std::fs::create_dir(&in_the_way).unwrap();
    let err = restore_from_backups(data, None).unwrap_err();
    assert!(err.to_string().contains(&in_the_way.display().to_string()), "{err}");
    assert!(!data.join("activity.db.restoring").exists() && !data.join("config.db.restoring").exists());
    assert_eq!(state(data), current);
}

#[test]
fn a_restore_of_both_files_killed_at_any_step_is_undone_by_the_next_start() {
    for (i, step) in steps(Path::new("DATA")).iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let (current, backup) = two_states(data);
        let mut child = spawn_child("child_entry", &format!("restore-hang-at-{i}"), data);
        wait_for_file(&marker(&data.join("activity.db"), "ready"), Duration::from_secs(60));
        kill9(&mut child);
        let health = splitstore::health::check(data, splitstore::CheckLevel::None);
        let committed = step == "committed";
        assert_eq!(
            health
                .problems()
                .any(|(_, p)| p.code == splitstore::ErrorKind::RestoreInterrupted),
            i >= 2 && !committed,
            "{step}: doctor tells an interrupted restore"
        );
        // The next start of either owner puts the pair back (or keeps the committed one), and says so.
        let store = ConfigStore::open_in(data).unwrap();
        assert_eq!(
            store.owner().open_report().restore_undone,
            i >= 2 && !committed,
            "{step}: the start says it put the files back"
        );
        drop(store);
        let now = state(data);
        assert_eq!(
            now,
            if committed { backup.clone() } else { current.clone() },
            "killed at {step}"
        );
        assert!(!data.join(".private/restore.journal").exists(), "{step}");
    }
}

/// While a restore has not finished (running, then killed), the files at the paths may be its copies: a reader
/// read them as the user's data (`report` showed the backup's totals, saying nothing), and a backup copied them
/// and rotated a sound backup out for it; after the undo that copy, its counters raised, stood as the newest
/// backup, and a repair put it in place without its `backup_older` refusal, dropping rows. Both refuse now,
/// not ready: the process running it by pid, then the owner's start that puts every file back.
#[test]
fn readers_and_backups_refuse_the_files_of_an_unfinished_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (current, _) = two_states(data);
    let activity = data.join("activity.db");
    let backups = data.join("backups");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let placed = steps(data)
        .iter()
        .position(|s| *s == format!("placed {}", activity.display()))
        .unwrap();
    let mut child = spawn_child("child_entry", &format!("restore-hang-at-{placed}"), data);
    wait_for_file(&marker(&activity, "ready"), Duration::from_secs(60));

    let running = ActivityReader::open_in(data)
        .totals_by_project(&TimeRange::all())
        .unwrap_err();
    assert_eq!(running.kind(), splitstore::ErrorKind::RestoreInterrupted, "{running}");
    assert!(running.is_not_ready(), "{running}");
    assert_eq!(running.locked_by().map(|h| h.pid), Some(child.id()), "{running}");
    assert_eq!(
        running.to_string(),
        format!(
            "a restore, repair or key rotation run by {} is replacing the files of {}: until it finishes, {} may be \
             its copy, not the user's file. What to do: wait for it to finish, then read the file again",
            running.locked_by().unwrap(),
            data.display(),
            activity.display()
        )
    );
    kill9(&mut child);

    let interrupted = ActivityReader::open_in(data)
        .totals_by_project(&TimeRange::all())
        .unwrap_err();
    assert_eq!(
        interrupted.to_string(),
        format!(
            "a restore, repair or key rotation in {} was interrupted before it finished: {} may be its copy, not the \
             user's file. What to do: start the daemon (`splitstore daemon --data-dir {}`): its open puts every file \
             back as it was before; then run this again",
            data.display(),
            activity.display(),
            data.display()
        )
    );
    let err = operations::backup(data, &backups, 1).unwrap_err();
    assert_eq!(err.kind(), splitstore::ErrorKind::RestoreInterrupted, "{err}");
    assert_eq!(listing(), before, "no backup taken, none rotated out");
    let out = run_splitstore(["report", "--data-dir", utf8(data)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(texts(&out).1.contains("was interrupted before it finished"), "{out:?}");

    // A journal that replaces activity.db alone (a repair of it): config.db is the user's, read and backed
    // up; the backup of the pair fails all the same (exit 2), not half of it said as taken.
    let journal = data.join(".private/restore.journal");
    let mut entries: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    entries["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["db"].as_str().is_some_and(|db| db.ends_with("activity.db")));
    std::fs::write(&journal, entries.to_string()).unwrap();
    splitstore::config_store::ConfigReader::open_in(data)
        .project_ids_missing()
        .unwrap();
    let report = operations::backup(data, &backups, 5).unwrap();
    assert_eq!(report.taken.len(), 1, "config.db's");
    assert!(report.missing.is_empty());
    assert_eq!(report.failed[0].kind(), splitstore::ErrorKind::RestoreInterrupted);
    let out = run_splitstore(["backup", "--data-dir", utf8(data)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // The owner's start puts the user's files back; then both read and back up as before.
    drop(ActivityWriter::open_in(data).unwrap());
    assert_eq!(state(data), current);
    ActivityReader::open_in(data)
        .totals_by_project(&TimeRange::all())
        .unwrap();
    assert_eq!(operations::backup(data, &backups, 5).unwrap().taken.len(), 2);
}

/// A restore journal that cannot be read (cut short by a power loss): the owners exited 75 at every start
/// ("could not read the restore journal", retryable: a supervisor restarts them forever) and readers said to
/// start them. Every one of them, and doctor, now says what it is and what to do, and the owners exit 2.
#[test]
fn an_unreadable_restore_journal_is_said_with_what_to_do_and_stops_no_supervisor_forever() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (current, _) = two_states(data);
    let journal = data.join(".private/restore.journal");
    std::fs::write(&journal, b"{\"entries\": [{\"db\": \"activ").unwrap();
    let d = utf8(data);
    let expected = format!(
        "{}, the journal of a restore, repair or key rotation in {d} that did not finish, cannot be read (EOF \
         while parsing a string at line 1 column 26): which files it moved cannot be told. What to do: with every \
         owner of {d} stopped, look at the files there: `<db>.restoring` is a backup's copy that was to be put in \
         place, `<db>.<tag>-<time>` (replaced, corrupt, rekeyed) a file moved aside; put back by hand any database \
         that is not at its path (rename its moved-aside file), then move the journal away (`mv {} {}.unreadable`) \
         and start the owners; nothing was changed",
        journal.display(),
        journal.display(),
        journal.display()
    );
    for args in [
        vec!["daemon", "--seconds", "0", "--data-dir", d],
        vec!["server", "--seconds", "0", "--data-dir", d],
        vec!["report", "--data-dir", d],
        vec!["backup", "--data-dir", d],
        vec!["repair", "--data-dir", d],
    ] {
        let out = run_splitstore(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(texts(&out).1.contains(&expected), "{args:?}: {}", texts(&out).1);
    }
    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    assert!(
        String::from_utf8_lossy(&doctor.stdout).contains("\"restore_journal_unreadable\""),
        "{doctor:?}"
    );
    // Its remedy, followed: both files are at their paths here.
    std::fs::rename(&journal, data.join(".private/restore.journal.unreadable")).unwrap();
    drop(ActivityWriter::open_in(data).unwrap());
    assert_eq!(state(data), current);
}

/// A restore killed after its commit and before it opened the files it placed: those files stood, but their
/// counters were raised and their `restore` provenance recorded only by that open, so activity.db handed out
/// again the event ids of the file kept aside, and a project created after the backup read as deleted, not
/// left out by the restore (doctor said healthy). Now each copy carries both before it is placed.
#[test]
fn a_restore_killed_after_its_commit_still_raised_its_counters_and_recorded_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (current, backup) = two_states(data);
    let last_event = query_i64(
        &read_only(&data.join("activity.db")),
        "SELECT max(id) FROM activity_events",
    );
    let second = query_i64(
        &read_only(&data.join("config.db")),
        "SELECT id FROM projects WHERE name = 'second'",
    );
    let committed = steps(data).iter().position(|s| s == "committed").unwrap();
    let mut child = spawn_child("child_entry", &format!("restore-hang-at-{committed}"), data);
    wait_for_file(&marker(&data.join("activity.db"), "ready"), Duration::from_secs(60));
    kill9(&mut child);
    assert_ne!(state(data), current);
    assert_eq!(state(data), backup, "the backup's files stand");

    let next = next_event_id(data);
    assert!(
        next > last_event,
        "event id {next} handed out again (the file kept aside holds up to {last_event})"
    );
    let missing = splitstore::config_store::ConfigReader::open_in(data)
        .project_ids_missing()
        .unwrap();
    assert_eq!(
        missing.why(second),
        Some(store_core::provenance::MissingBecause::LeftOutByRestore),
        "project {second}, created after the backup"
    );
}

/// activity.db removed after its last backup while its daemon was stopped: `repair` put the backup back, and
/// the daemon handed out again the event ids it had acknowledged since (config.db keeps a record of its
/// counters; activity.db had none). Its writer now records them when it stops.
#[test]
fn activity_db_removed_after_its_backup_never_has_its_event_ids_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_, backup) = two_states(data);
    let last_event = query_i64(
        &read_only(&data.join("activity.db")),
        "SELECT max(id) FROM activity_events",
    );
    for file in ["activity.db", "activity.db-wal", "activity.db-shm"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    let repaired = run_splitstore(["repair", "--data-dir", utf8(data)]);
    assert!(repaired.status.success(), "{repaired:?}");
    assert_eq!(state(data).0, backup.0, "activity.db's backup is back");
    let next = next_event_id(data);
    assert!(
        next > last_event,
        "event id {next} handed out again (the removed file had handed out up to {last_event})"
    );
}

/// The same after a crash: the daemon's writer killed while it records (no clean stop, which records its
/// counters), then activity.db removed. Its counters were recorded only at stops, so the repair's restore
/// handed out again every event id acknowledged since the writer's start (weeks, for a daemon). Now they are
/// recorded while it runs too, once every `COUNTERS_RECORD_INTERVAL`.
#[test]
fn activity_db_removed_after_a_crash_never_has_the_ids_recorded_before_it_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    two_states(data);
    let activity = data.join("activity.db");
    let recorded = || {
        store_core::records::counters_handed_out(&activity)
            .get("activity_events")
            .copied()
    };
    let at_last_stop = recorded().expect("two_states' writers stopped cleanly");
    let mut child = spawn_child("child_entry", "record-until-killed", data);
    // Waits for a record the running writer made (every ten seconds), past its last stop's.
    let limit = splitstore::activity_store::COUNTERS_RECORD_INTERVAL * 4;
    wait_until(limit, "the running writer's counters record", || {
        recorded().is_some_and(|id| id > at_last_stop)
    });
    let while_running = recorded().unwrap();
    kill9(&mut child);
    for file in ["activity.db", "activity.db-wal", "activity.db-shm"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    let repaired = run_splitstore(["repair", "--data-dir", utf8(data)]);
    assert!(repaired.status.success(), "{repaired:?}");
    let next = next_event_id(data);
    assert!(
        next > while_running,
        "event id {next} handed out again (the writer had recorded handing out up to {while_running})"
    );
}

/// A restore killed with the user's activity.db moved aside (the next owner's start puts it back): `cleanup`
/// removed that file as "the file a restore replaced", and `repair` took the file for removed and put the
/// backup in its place, silently without the rows added since (a `restore` or `rekey` run then likewise
/// wrote its own journal over the one that puts the file back). Now cleanup keeps every file the journal
/// names, and those commands undo the interrupted restore first, as an owner's start does.
#[test]
fn commands_after_a_killed_restore_put_its_files_back_first_and_cleanup_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (current, _backup) = two_states(data);
    let at = steps(data)
        .iter()
        .position(|s| *s == format!("moved aside {}", data.join("activity.db").display()))
        .unwrap();
    let mut child = spawn_child("child_entry", &format!("restore-hang-at-{at}"), data);
    wait_for_file(&marker(&data.join("activity.db"), "ready"), Duration::from_secs(60));
    kill9(&mut child);
    std::fs::remove_file(marker(&data.join("activity.db"), "ready")).unwrap();
    assert!(
        !data.join("activity.db").exists(),
        "the kill left the user's file aside"
    );
    let d = utf8(data);
    let cleanup = run_splitstore(["cleanup", "--older-than", "0", "--data-dir", d]);
    assert!(cleanup.status.success(), "{cleanup:?}");
    let stdout = texts(&cleanup).0;
    assert!(stdout.contains("activity.db.replaced-"), "{stdout}");
    assert!(
        !stdout.contains("removed /"),
        "nothing of the interrupted restore removed: {stdout}"
    );
    assert!(
        stdout.contains("a restore, repair or key rotation was interrupted"),
        "{stdout}"
    );
    let repair = run_splitstore(["repair", "--data-dir", d]);
    assert!(repair.status.success(), "{repair:?}");
    assert_eq!(
        texts(&repair).0,
        "activity.db: healthy, left alone\nconfig.db: healthy, left alone\n",
        "the restore undone first: nothing was damaged"
    );
    assert_eq!(state(data), current, "every row added since the backup kept");
    assert!(!data.join(".private/restore.journal").exists());
}

/// A restore's undo killed after it moved the file back and before its `-wal` (the file's last commits,
/// here a killed writer's): the next start finishes the undo with every commit. The undo used to move the
/// `-wal` first, and its next run, finding the file still aside, removed the `-wal` at the path as the
/// backup copy's. Its journal, moved with the data directory since, names the directory's old paths (as
/// the journals of builds before this one did, whole): it is read as the files of the directory it is in.
#[test]
fn an_undo_killed_between_a_file_and_its_wal_is_finished_by_the_next_start_with_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    killed_with_commits_in_the_wal(&data, 300);
    let activity = data.join("activity.db");
    let aside = data.join("activity.db.replaced-20261202T080000.000Z");
    for side in ["-wal", "-shm"] {
        std::fs::rename(
            format!("{}{side}", activity.display()),
            format!("{}{side}", aside.display()),
        )
        .unwrap();
    }
    let before_move = dir.path().join("moved-from");
    let journal = serde_json::json!({ "entries": [{
        "db": before_move.join("activity.db"),
        "restoring": before_move.join("activity.db.restoring"),
        "aside": before_move.join(aside.file_name().unwrap()),
        "had_original": true,
    }]});
    std::fs::write(data.join(".private/restore.journal"), journal.to_string()).unwrap();
    drop(ActivityWriter::open_in(&data).unwrap());
    assert_eq!(
        count_rows(&activity, "activity_events"),
        300,
        "every commit of the -wal"
    );
    assert!(!data.join(".private/restore.journal").exists());
    assert!(!aside.exists() && !data.join(format!("{}-wal", aside.display())).exists());
}

/// Run in a child process (the working directory is process-wide). Before, after the chdir the owner of config.db wrote its counters record into `.private/` of the new
/// working directory (outside the data directory, and not beside its file, so a config.db that went back
/// could hand out ids again), its own reader said config.db "does not exist: the server has not created it
/// yet", and a reader opened on a relative path read whatever file the new directory held.
#[test]
fn owners_and_readers_opened_on_a_relative_path_keep_their_files_after_chdir() {
    let mut child = spawn_child("child_entry", "relative-paths-then-chdir", Path::new("."));
    assert!(wait_within(&mut child, Duration::from_secs(120)).success());
}

/// The working directory of the child of [`owners_and_readers_opened_on_a_relative_path_keep_their_files_after_chdir`].
fn relative_paths_then_chdir() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::env::set_current_dir(data.path()).unwrap();
    let mut config = ConfigStore::open(Path::new("config.db")).unwrap();
    let mut writer = ActivityWriter::open(Path::new("activity.db")).unwrap();
    let reader = ActivityReader::open(Path::new("activity.db"));
    config.create_project(&NewProject::named("before")).unwrap();

    // The process moves away (a daemon detaching).
    std::env::set_current_dir(elsewhere.path()).unwrap();

    let project = config.create_project(&NewProject::named("after")).unwrap();
    let start = chrono::Utc::now() - chrono::Duration::minutes(1);
    let s = writer
        .start_session(&NewSession {
            project_id: Some(project.id),
            ..NewSession::new("editor", start)
        })
        .unwrap();
    writer.end_session(s, start + chrono::Duration::seconds(30)).unwrap();

    assert_eq!(
        files_under(elsewhere.path()),
        Vec::<PathBuf>::new(),
        "written outside the data directory"
    );
    let read_back = config
        .reader()
        .project(project.id)
        .expect("the owner reads its own file");
    assert_eq!(read_back.map(|p| p.name).as_deref(), Some("after"));
    let totals = reader
        .totals_by_project(&TimeRange::all())
        .expect("the reader reads the file it was given");
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].seconds, 30);
    for path in [config.path(), writer.path(), reader.path()] {
        assert!(
            path.starts_with(data.path().canonicalize().unwrap()) || path.starts_with(data.path()),
            "{path:?}"
        );
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files_under(&path));
        }
        all.push(path);
    }
    all
}

#[test]
fn child_entry() {
    let Some((role, data)) = child_role() else { return };
    if role == "relative-paths-then-chdir" {
        relative_paths_then_chdir();
        return;
    }
    if role == "record-until-killed" {
        let mut w = ActivityWriter::open_in(&data).unwrap();
        loop {
            w.record_event(&NewEvent::new(None, "focus", chrono::Utc::now()))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Some(events) = role.strip_prefix("record-then-hang-") {
        record_then_hang(&data, events.parse().unwrap());
        return;
    }
    let i: usize = role.strip_prefix("restore-hang-at-").unwrap().parse().unwrap();
    let at = steps(&data)[i].clone();
    let ready = marker(&data.join("activity.db"), "ready");
    let hook: RestoreHook = Arc::new(move |s: &str| {
        if s == at {
            std::fs::write(&ready, b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
        }
        Ok(())
    });
    let _ = restore_from_backups(&data, Some(&hook));
}

#[test]
fn pre_migration_backups_survive_manual_rotation_and_doctor_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    drop(
        store_core::testing::open_at_version(&data.join("activity.db"), &splitstore::activity_store::SCHEMA, 2)
            .unwrap(),
    );
    drop(ActivityWriter::open_in(data).unwrap()); // migrates 2 -> 3, taking the pre-migration backup
    for _ in 0..3 {
        assert!(
            run_splitstore(["backup", "--data-dir", d, "--keep", "1"])
                .status
                .success()
        );
    }
    let pre: Vec<_> = std::fs::read_dir(data.join("backups/pre-migration")).unwrap().collect();
    assert_eq!(pre.len(), 1, "rotation of manual backups never removes it");
    let out = run_splitstore(["doctor", "--data-dir", d, "--json", "--no-check"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = &json["databases"][0]["pre_migration_backups"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(listed[0]["version"], 2);
    assert!(
        texts(&run_splitstore(["doctor", "--data-dir", d, "--no-check"]))
            .0
            .contains("pre-migration")
    );
}

#[test]
fn a_migration_that_fails_on_every_start_leaves_its_banner_for_doctor_and_no_copy_per_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    // activity.db at schema 2, with the column migration 3 adds already there: migration 3 fails every time.
    let db = data.join("activity.db");
    drop(store_core::testing::open_at_version(&db, &splitstore::activity_store::SCHEMA, 2).unwrap());
    read_only(&db); // (a reader does not change anything)
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("ALTER TABLE activity_sessions ADD COLUMN end_reason TEXT")
        .unwrap();
    for _ in 0..2 {
        let out = run_splitstore(["daemon", "--data-dir", d, "--events", "1"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            texts(&out).1.contains("migration 3 (how a session ended) failed"),
            "{out:?}"
        );
    }
    let out = run_splitstore(["doctor", "--data-dir", d, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failure = &json["databases"][0]["last_failure"];
    assert_eq!(failure["banner"]["kind"], "migration_failed", "{json}");
    assert_eq!(failure["banner"]["retryable"], false, "retrying fails the same way");
    let problems = json["databases"][0]["problems"].as_array().unwrap();
    let banner = problems
        .iter()
        .find(|p| p["code"] == "migration_failed")
        .unwrap_or_else(|| panic!("{problems:?}"));
    let remedy = banner["remedy"].as_str().unwrap();
    // The file is unchanged, so the copy each start took was removed again (two starts kept two copies of
    // the whole file, never rotated) and the remedy names none.
    assert!(
        remedy.contains("go back to the previous version of the application (it reads the file as it is)"),
        "{remedy}"
    );
    assert!(!remedy.contains("pre-migration"), "{remedy}");
    assert!(!remedy.contains("start the daemon"), "{remedy}");
    let copies: Vec<_> = std::fs::read_dir(data.join("backups/pre-migration")).unwrap().collect();
    assert_eq!(copies.len(), 0, "{copies:?}");
    assert_eq!(
        json["databases"][0]["pre_migration_backups"],
        serde_json::json!([]),
        "{json}"
    );
    assert!(
        banner["message"]
            .as_str()
            .unwrap()
            .contains("the last start of the daemon failed")
    );
}

/// activity.db as the build before this one knew it (its last migration not yet written).
static ACTIVITY_OF_THE_PREVIOUS_BUILD: store_core::Schema = store_core::Schema {
    migrations: splitstore::activity_store::SCHEMA
        .migrations
        .split_at(splitstore::activity_store::SCHEMA.migrations.len() - 1)
        .0,
    predecessor: None,
    readers_read_from: None,
    ..splitstore::activity_store::SCHEMA
};

/// activity.db in `data` as the previous build creates it, and that build's schema version.
fn activity_db_of_the_previous_build(data: &Path) -> (std::path::PathBuf, u32) {
    let db = data.join("activity.db");
    drop(store_core::OwnerConnection::open(&db, &ACTIVITY_OF_THE_PREVIOUS_BUILD).unwrap());
    (db, ACTIVITY_OF_THE_PREVIOUS_BUILD.end_version())
}

#[test]
fn going_back_to_the_previous_build_with_the_restore_the_upgrade_names_leaves_a_file_that_build_opens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    let (db, previous) = activity_db_of_the_previous_build(data);

    // The first start of this build's daemon upgrades the file and says how to go back.
    let out = run_splitstore(["daemon", "--data-dir", d, "--events", "10"]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let said = format!(
        "splitstore daemon: upgraded {} from schema {previous} to {}; the file as it was is kept at ",
        db.display(),
        previous + 1
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&said))
        .unwrap_or_else(|| panic!("{stderr}"));
    let restore = line
        .split_once("stop both processes, then `")
        .and_then(|(_, rest)| rest.strip_suffix("`)"))
        .unwrap_or_else(|| panic!("{line}"));
    let backup = line[said.len()..].split_once(" (").unwrap().0;
    assert!(backup.contains("/backups/pre-migration/activity-"), "{line}");
    assert_eq!(
        restore,
        format!("splitstore restore --data-dir {d} --from {backup}"),
        "{line}"
    );
    assert!(
        !texts(&run_splitstore(["daemon", "--data-dir", d, "--events", "1"]))
            .1
            .contains("upgraded"),
        "said at the upgrade only"
    );

    // Run as said: the file is put back as the backup was, not upgraded again on the way.
    let args: Vec<&str> = restore.split(' ').skip(1).collect();
    let out = run_splitstore(&args);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "restored {} from {backup} (schema {previous}, as the backup was: the daemon of this build upgrades it \
             when it starts; a build of schema {previous} reads it as it is); the previous file is kept at ",
            db.display()
        )),
        "{stdout}"
    );
    assert_eq!(query_i64(&read_only(&db), "PRAGMA user_version"), i64::from(previous));
    // The previous build's daemon opens it (before: schema_newer, the restored file upgraded again).
    let owner = store_core::OwnerConnection::open(&db, &ACTIVITY_OF_THE_PREVIOUS_BUILD).unwrap();
    assert_eq!(owner.open_report().upgrade.to_version, previous);
}

#[test]
fn a_data_directory_whose_path_is_not_utf8_keeps_its_split_record_and_its_restore_journal() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    // "données" in Latin-1, as a home folder of a system not set to UTF-8 names it.
    let data = dir.path().join(OsStr::from_bytes(b"donn\xe9es"));
    std::fs::create_dir(&data).unwrap();
    let legacy = data.join("legacy.db");
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &legacy).unwrap();
    let options = migrate_split::UpgradeOptions::default();
    assert!(matches!(
        migrate_split::prepare(&data, &options).unwrap(),
        migrate_split::Upgrade::Split(_)
    ));
    let record = store_core::conversion::recorded(&data).expect("the split is recorded (it was written empty)");
    assert_eq!(record.predecessor.to_string_lossy(), legacy.to_string_lossy());

    // The record is what keeps the legacy file from being split again: with activity.db gone, the next start
    // leaves config.db alone (before, a second split moved config.db aside), and the record shows that
    // activity.db held data: it is not started empty.
    let project_names = || -> Vec<String> {
        query_column(
            &read_only(&data.join("config.db")),
            "SELECT name FROM projects ORDER BY id",
        )
    };
    let config_before = project_names();
    let away = dir.path().join("away");
    std::fs::create_dir(&away).unwrap();
    let moved: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|f| f.file_name().as_bytes().starts_with(b"activity.db"))
        .map(|f| f.file_name())
        .collect();
    for name in &moved {
        std::fs::rename(data.join(name), away.join(name)).unwrap();
    }
    assert!(matches!(
        migrate_split::prepare(&data, &options).unwrap(),
        migrate_split::Upgrade::AlreadyDone
    ));
    assert_eq!(project_names(), config_before);
    let refused = ActivityWriter::open_in(&data).unwrap_err();
    assert_eq!(refused.kind(), splitstore::ErrorKind::Removed, "{refused}");
    assert!(refused.to_string().contains(": it was converted from "), "{refused}");
    for name in &moved {
        std::fs::rename(away.join(name), data.join(name)).unwrap();
    }

    // A restore stopped halfway (here by a panic, standing in for a kill) is undone by the next start from its
    // journal (before, the journal was written empty and the next start failed to read it).
    let (current, _) = two_states(&data);
    let activity = data.join("activity.db");
    let stop_at = format!("moved aside {}", activity.display());
    let hook: RestoreHook = Arc::new(move |s: &str| {
        if s == stop_at {
            panic!("stopped halfway, as a kill would");
        }
        Ok(())
    });
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        restore_from_backups(&data, Some(&hook))
    }));
    assert!(stopped.is_err());
    assert!(!activity.exists(), "moved aside, nothing in its place yet");
    drop(ConfigStore::open_in(&data).unwrap());
    assert_eq!(state(&data), current);
    assert!(!data.join(".private/restore.journal").exists());

    // What the operator reads: doctor's JSON (it failed to serialise), and the record a failed start leaves
    // (it went unwritten).
    let out = run_splitstore([
        OsStr::new("doctor"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--json"),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(json["data_dir"], data.to_string_lossy().as_ref());
    std::fs::write(data.join("config.db"), b"not a database").unwrap();
    let out = run_splitstore([OsStr::new("server"), OsStr::new("--data-dir"), data.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let record = store_core::records::last_failure(&data.join("config.db")).expect("the failed start is recorded");
    assert_eq!(record.banner.kind, splitstore::ErrorKind::NotADatabase);
}

#[test]
fn a_repair_that_puts_back_a_pre_migration_backup_leaves_it_at_its_version_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let d = utf8(data);
    let (db, previous) = activity_db_of_the_previous_build(data);
    // This build's daemon upgrades it (its only backup is the pre-migration one) and records on top.
    assert!(
        run_splitstore(["daemon", "--data-dir", d, "--events", "3000"])
            .status
            .success()
    );
    let page = query_i64(
        &read_only(&db),
        "SELECT pageno FROM dbstat WHERE name = 'activity_events' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1",
    );
    let mut bytes = std::fs::read(&db).unwrap();
    let at = (page as usize - 1) * 4096;
    bytes[at..at + 4096].fill(0x5A);
    std::fs::write(&db, &bytes).unwrap();

    let out = run_splitstore(["repair", "--data-dir", d, "--accept-older-backup"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "-v{previous}.db (schema {previous}, as the backup was: the daemon of this build upgrades it when it \
             starts; a build of schema {previous} reads it as it is) (damaged file kept at "
        )),
        "{stdout}"
    );
    assert_eq!(query_i64(&read_only(&db), "PRAGMA user_version"), i64::from(previous));
}

/// A child's part: records `events` events (one session) as the daemon's writer, each committed, then says
/// it is ready and waits to be killed, its commits still in the `-wal`.
fn record_then_hang(data: &Path, events: usize) {
    let mut w = ActivityWriter::open_in(data).unwrap();
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    let s = w.start_session(&NewSession::new("editor", start)).unwrap();
    for i in 0..events {
        let at = start + chrono::Duration::milliseconds(i as i64);
        w.record_event(&NewEvent::new(Some(s), "focus", at)).unwrap();
    }
    std::fs::write(marker(&data.join("activity.db"), "ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// The daemon's writer in a child process records `events` events in `data` and is killed (`kill -9`) with
/// them in activity.db's `-wal`. Returns the `-wal`'s bytes.
fn killed_with_commits_in_the_wal(data: &Path, events: usize) -> Vec<u8> {
    let mut child = spawn_child("child_entry", &format!("record-then-hang-{events}"), data);
    wait_for_file(&marker(&data.join("activity.db"), "ready"), Duration::from_secs(60));
    kill9(&mut child);
    std::fs::remove_file(marker(&data.join("activity.db"), "ready")).unwrap();
    let wal = std::fs::read(data.join("activity.db-wal")).unwrap();
    assert!(
        wal.len() > 32,
        "the killed writer's commits are in the -wal ({} bytes)",
        wal.len()
    );
    wal
}

/// The `-wal` a killed daemon left, removed by hand before the next start: what it held is gone (nothing
/// can bring it back), and doctor and the start say so rather than open on the file as if nothing were
/// missing.
/// After a clean stop, whose `-wal` holds nothing, nothing is said.
#[test]
fn the_wal_a_crash_left_removed_before_the_next_start_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    seed_data_dir(&data, 300);
    let note = format!(
        "splitstore daemon: note: the -wal that the last owner of {d}/activity.db left when it stopped without \
         closing (a crash or a kill) was gone before this start"
    );
    let start = || {
        let out = run_splitstore(["daemon", "--data-dir", d, "--events", "10"]);
        assert!(out.status.success(), "{out:?}");
        texts(&out).1
    };
    assert!(!start().contains(&note), "a clean stop: nothing to say");
    assert!(!start().contains(&note), "nor after another");

    killed_with_commits_in_the_wal(&data, 200);
    std::fs::remove_file(data.join("activity.db-wal")).unwrap();
    // Doctor (and a UI's banner) says it before the start.
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    assert!(
        texts(&doctor).0.contains(&format!(
            "activity.db [wal_gone]: {d}/activity.db: the -wal its last owner left when it stopped without closing"
        )),
        "{doctor:?}"
    );
    let stderr = start();
    assert!(stderr.contains(&note), "{stderr}");
    assert!(!start().contains(&note), "said once");
    assert_eq!(run_splitstore(["doctor", "--data-dir", d]).status.code(), Some(0));

    // The -wal a crash left, in place: replayed, nothing lost, nothing said.
    killed_with_commits_in_the_wal(&data, 200);
    assert!(!start().contains(&note));
}

fn events_in(db: &Path) -> i64 {
    query_i64(&read_only(db), "SELECT count(*) FROM activity_events")
}

/// Each of `commands` on the data directory `d` exits 2 with a message starting with `refusal`, and the server
/// serves config.db on while every report fails, said once on stderr with it.
fn refused_by_readers(d: &str, commands: &[&str], refusal: &str) {
    for command in commands {
        let out = run_splitstore([command, "--data-dir", d]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            texts(&out).1.starts_with(&format!("splitstore {command}: {refusal}")),
            "{out:?}"
        );
    }
    let out = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(" reports=0\n"), "{stdout}");
    assert!(
        stderr.starts_with(&format!("splitstore server: a report failed: {refusal}")),
        "{stderr}"
    );
}

#[test]
fn a_file_put_back_by_hand_beside_the_wal_of_the_crashed_one_is_refused_not_read_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let db = data.join("activity.db");
    seed_data_dir(&data, 300);
    // The user's own copy of the file (a file backup tool's), taken while the daemon was stopped.
    let earlier = dir.path().join("earlier.db");
    std::fs::copy(&db, &earlier).unwrap();
    let wal = killed_with_commits_in_the_wal(&data, 200);
    assert_eq!(events_in(&db), 500);

    // The whole data directory copied (every file a new one) is the same pair: it opens with every event.
    let copy = copy_data_dir(&data, dir.path().join("copy"));
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", utf8(&copy)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&copy.join("activity.db")), 510);

    // The earlier copy put in the file's place, as a file manager's restore does (a new file, renamed).
    put_back(&earlier, &db);
    let p = db.display();
    let what = format!(
        "{p}-wal ({} bytes) holds the last writes of the file that was at {p} before another file was put in its \
         place while its owner was stopped after a crash: opened together, SQLite would mix that file's pages into \
         this one, which would then read as damaged",
        wal.len()
    );
    let remedy = format!(
        "if the file there now is the one to keep (a copy put back from a backup of your own), stop every owner of \
         a database in {d} (the command takes all their locks), then run `splitstore repair --data-dir {d}`: it \
         moves the -wal and -shm aside as activity.db.orphan-<time>-wal and -shm (nothing is deleted), and the file \
         opens as it is, without those writes; otherwise put the file that was there back in its place: with its \
         -wal it opens with every write it had"
    );
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1,
        format!("splitstore daemon: {what}. What to do: {remedy}\n")
    );
    // So do readers; the server serves config.db on, its reports failing alone, said once.
    refused_by_readers(d, &["report"], &format!("{what}. What to do: {remedy}"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        std::fs::read(&earlier).unwrap(),
        "the file put back is untouched"
    );
    assert_eq!(
        std::fs::read(data.join("activity.db-wal")).unwrap(),
        wal,
        "so is the -wal"
    );

    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let health: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let problems = &health["databases"][0]["problems"];
    assert_eq!(problems.as_array().unwrap().len(), 1, "{problems}");
    assert_eq!(problems[0]["code"], "orphan_wal");
    assert_eq!(problems[0]["message"], what.as_str());
    assert_eq!(problems[0]["remedy"], remedy.as_str());

    let out = run_splitstore(["repair", "--data-dir", d]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let moved = lines[0]
        .strip_prefix(&format!(
            "activity.db: its -wal held the last writes of the file replaced or removed by hand, not of this one: \
             moved aside to {p}.orphan-"
        ))
        .and_then(|rest| rest.strip_suffix("-wal with its -shm (nothing is deleted)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let aside = data.join(format!("activity.db.orphan-{moved}-wal"));
    assert_eq!(std::fs::read(&aside).unwrap(), wal, "the -wal moved aside whole");
    assert_eq!(
        &lines[1..],
        ["activity.db: healthy, left alone", "config.db: healthy, left alone"]
    );

    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&db), 310, "the file put back, and what was recorded since");
    let doctor = run_splitstore(["doctor", "--data-dir", d]);
    let table = texts(&doctor).0;
    assert_eq!(doctor.status.code(), Some(0), "{table}");
    let listed = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} (", aside.display())))
        .unwrap_or_else(|| panic!("doctor lists the -wal moved aside: {table}"));
    assert!(
        listed.ends_with(
            " days old): the -wal (and -shm) of a file replaced or removed by hand after a crash, moved aside by \
             repair: that file's last writes"
        ),
        "{listed}"
    );
}

#[test]
fn a_file_removed_by_hand_after_a_crash_is_not_created_anew_over_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let db = data.join("activity.db");
    seed_data_dir(&data, 300);
    let wal = killed_with_commits_in_the_wal(&data, 200);
    std::fs::remove_file(&db).unwrap();

    let p = db.display();
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        texts(&out).1,
        format!(
            "splitstore daemon: {p} is gone, but {p}-wal ({} bytes) holds its last writes: the file was removed \
             while its owner was stopped after a crash, and SQLite would delete that -wal when it creates the file \
             anew. What to do: if the file was removed on purpose, stop every owner of a database in {d} (the \
             command takes all their locks), then run `splitstore repair --data-dir {d}`: it moves the -wal and -shm \
             aside as activity.db.orphan-<time>-wal and -shm (nothing is deleted), and puts back the file's newest \
             backup that verifies (`splitstore repair --data-dir {d} --allow-empty` starts it empty where there is \
             none); otherwise put the file back in its place first: with its -wal it opens with every write it had\n",
            wal.len()
        )
    );
    assert!(!db.exists(), "not created");
    // Readers say the same, not that the daemon has not created the file yet (a report of nothing, a backup
    // of config.db alone and success).
    let gone = format!("{p} is gone, but {p}-wal ({} bytes) holds its last writes: ", wal.len());
    refused_by_readers(d, &["report", "backup"], &gone);
    assert_eq!(
        std::fs::read(data.join("activity.db-wal")).unwrap(),
        wal,
        "the -wal is kept"
    );

    // No backup here: the file (opened before) is started empty only when asked.
    let out = run_splitstore(["repair", "--data-dir", d, "--allow-empty"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("moved aside to "), "{stdout}");
    assert_eq!(lines[1], "activity.db: started empty");
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&db), 10, "started anew");
}

/// A file put back by hand while its owner runs, met by another process's reader (a report, doctor, the server):
/// the `-wal` beside it is the running owner's, so it is `ownership_lost`, which a retry after the owner's
/// restart clears, naming that owner, not the `-wal` of a crash with a repair to run. It used to be said as the
/// crash's only in the owner's own process.
#[test]
fn a_file_put_back_under_a_running_owner_is_its_owners_not_a_crashs_for_readers_of_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let db = data.join("activity.db");
    seed_data_dir(&data, 300);
    let earlier = dir.path().join("earlier.db");
    std::fs::copy(&db, &earlier).unwrap();
    let mut owner = spawn_child("child_entry", "record-then-hang-200", &data);
    wait_for_file(&marker(&db, "ready"), Duration::from_secs(60));
    put_back(&earlier, &db);

    let p = db.display();
    let what = format!("{p} was replaced or removed while its owner (pid {}", owner.id());
    let remedy = format!(
        "What to do: read again once the daemon has been restarted: its next write (or check of its files) finds \
         the file replaced and writes nothing more (splitstore's daemon and server exit 75 for it, which a \
         supervisor restarts), and its next open opens the file now at the path. To put a backup back, stop every \
         owner of a database in {d} (the command takes all their locks) and run `splitstore restore --data-dir {d} \
         --from BACKUP`"
    );
    let out = run_splitstore(["report", "--data-dir", d]);
    let stderr = texts(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("splitstore report: {what}")), "{stderr}");
    assert!(
        stderr.contains(
            ") had it open: the -wal beside it is that owner's, of the file it has open, not one a \
             crash left. "
        ),
        "{stderr}"
    );
    assert!(stderr.contains(&remedy), "{stderr}");
    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    let health: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let problems = &health["databases"][0]["problems"];
    assert_eq!(problems[0]["code"], "ownership_lost", "{problems}");
    // The server serves config.db on, its reports failing alone.
    let out = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(" reports=0\n"), "{stdout}");
    assert!(
        stderr.starts_with(&format!("splitstore server: a report failed: {what}")),
        "{stderr}"
    );

    // The owner killed, its -wal is a crash's: repair is the remedy now.
    kill9(&mut owner);
    let out = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        texts(&out).1.contains("while its owner was stopped after a crash"),
        "{out:?}"
    );
}

/// A database removed or moved away by hand (by a sync or cleanup tool, a copy of the directory without it)
/// where the directory shows it held data: its owner used to start it empty, exit 0, readers reported nothing
/// and doctor said healthy. Now every one of them says it is gone (`removed`); `repair` puts its newest backup
/// back, and with none starts it empty only when asked (`--allow-empty`, config.db's too: nothing of it is left
/// to salvage).
#[test]
fn a_database_removed_by_hand_is_not_started_empty_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    seed_data_dir(&data, 300);
    let backup = run_splitstore(["backup", "--data-dir", d]);
    assert!(backup.status.success(), "{backup:?}");
    let (activity, config) = (data.join("activity.db"), data.join("config.db"));
    let projects = || query_i64(&read_only(&config), "SELECT count(*) FROM projects");
    let had = projects();
    assert!(had > 0);
    for db in [&activity, &config] {
        std::fs::rename(db, dir.path().join(db.file_name().unwrap())).unwrap();
    }

    let gone = |db: &Path| {
        format!(
            "{} is gone, but it held data: it was opened before ({}); it is not created anew, empty, over the \
             data it held",
            db.display(),
            data.join(".private")
                .join(format!("{}.opened", db.file_name().unwrap().to_string_lossy()))
                .display()
        )
    };
    for (owner, db) in [("daemon", &activity), ("server", &config)] {
        let out = run_splitstore([owner, "--seconds", "0.1", "--data-dir", d]);
        let stderr = texts(&out).1;
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!("splitstore {owner}: {}", gone(db))),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "`splitstore repair --data-dir {d}`: it restores the file's newest backup"
            )),
            "{stderr}"
        );
        assert!(!db.exists(), "not created");
    }
    let out = run_splitstore(["report", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "not an empty report: {out:?}");
    assert!(texts(&out).1.contains(" is gone, but it held data: "), "{out:?}");
    let doctor = run_splitstore(["doctor", "--json", "--data-dir", d]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    let health: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for i in 0..2 {
        assert_eq!(health["databases"][i]["problems"][0]["code"], "removed", "{health}");
    }

    let out = run_splitstore(["repair", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&activity), 300, "the backup put back");
    assert_eq!(projects(), had);

    // No backup left: refused until asked to start empty.
    std::fs::remove_dir_all(data.join("backups")).unwrap();
    std::fs::remove_file(&activity).unwrap();
    // Said as what the repair found (the owner's refusal promised it would say so), not the refusal again:
    // no salvage offered, as nothing of the file is left to read.
    let out = run_splitstore(["repair", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = texts(&out).1;
    assert_eq!(
        stderr,
        format!(
            "splitstore repair: no backup of {a} in {d}/backups passes verification, and the file is gone where it \
             held data. What to do: if it was moved or renamed, put it back at {a}; otherwise restore a backup kept \
             elsewhere with `splitstore restore --data-dir {d} --from FILE`, or start it empty on purpose with \
             `splitstore repair --data-dir {d} --allow-empty`; nothing was changed\n",
            a = activity.display()
        )
    );
    assert!(!activity.exists());
    let out = run_splitstore(["repair", "--data-dir", d, "--allow-empty"]);
    assert!(out.status.success(), "{out:?}");
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&activity), 10, "started empty, as asked");
}

/// Puts the copy `from` in the place of the file `to` as a file manager's restore or a sync tool does: written
/// beside its place, then renamed into it (a new file at the path).
fn put_back(from: &Path, to: &Path) {
    let tmp = store_core::files::parent_dir(to).join(".put-back.tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Puts every file of `copy` back over `data` as a sync tool does (`rsync -a`): each [`put_back`], the files
/// only in `data` left as they are.
fn put_back_over(copy: &Path, data: &Path) {
    for entry in std::fs::read_dir(copy).unwrap() {
        let entry = entry.unwrap();
        let to = data.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            put_back_over(&entry.path(), &to);
        } else {
            put_back(&entry.path(), &to);
        }
    }
}

/// The user's own copy of the whole data directory put back after a crash: its private folder holds the record
/// of the -wal of its time, and does not hide that the -wal there now is the crashed file's.
#[test]
fn a_data_directory_put_back_from_a_copy_after_a_crash_is_refused_beside_the_crashed_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let db = data.join("activity.db");
    // The daemon alone, stopped: no -wal in the copy (a reader's last close can leave an empty one, which a
    // copy put back would put over the crashed one, and nothing would be left to tell).
    let out = run_splitstore(["daemon", "--events", "300", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    let copy = copy_data_dir(&data, dir.path().join("copy"));
    let wal = killed_with_commits_in_the_wal(&data, 200);
    put_back_over(&copy, &data);
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let p = db.display();
    assert!(
        texts(&out).1.starts_with(&format!(
            "splitstore daemon: {p}-wal ({} bytes) holds the last writes of the file that was at {p} before another \
             file was put in its place",
            wal.len()
        )),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        std::fs::read(copy.join("activity.db")).unwrap(),
        "the copy put back is untouched"
    );
    assert_eq!(
        std::fs::read(data.join("activity.db-wal")).unwrap(),
        wal,
        "so is the -wal"
    );
    // Repair sets the -wal aside, and the copy opens with what it held.
    let out = run_splitstore(["repair", "--data-dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(events_in(&db), 300);
}

#[test]
fn a_config_put_back_by_hand_older_than_activity_never_hands_out_an_id_activity_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = utf8(&data);
    let config = data.join("config.db");
    assert!(
        run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"])
            .status
            .success()
    );
    // The user's own copy of config.db; then a project made after it, and the daemon's sessions of it.
    let copy = dir.path().join("config-copy.db");
    std::fs::copy(&config, &copy).unwrap();
    let newest = {
        let mut server = splitstore::Server::open(&data).unwrap();
        assert!(
            server.counters_raised().is_empty(),
            "config.db is not older than activity.db"
        );
        server
            .config_mut()
            .create_project(&NewProject::named("After the copy"))
            .unwrap()
            .id
    };
    record_sessions(&data, &[newest]);
    put_back(&copy, &config);
    let (name, status, _) = reported_project(&data, newest);
    assert_eq!((name, status.as_str()), (None, "deleted"));

    // The server's start raises config.db's counter past the ids it had handed out (the highest kept beside
    // it), and says so once.
    let went_back = "it was put back from a copy, created anew, or lost its last commits in a power loss. Its \
                     counters now start past those ids, so no id is handed out twice";
    let server_note = || {
        let out = run_splitstore(["server", "--data-dir", d, "--seconds", "0.3"]);
        let (_, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    assert_eq!(
        server_note(),
        format!(
            "splitstore server: note: {} had handed out ids past where its counters are now (projects up to \
             {newest}, as recorded beside it): {went_back}\n",
            config.display()
        )
    );
    assert_eq!(
        reported_project(&data, newest).0,
        None,
        "no project made since took its id"
    );
    // Without that record (the private folder lost with it, say): past the ids activity.db names.
    let record = store_core::records::counters_path(&config);
    put_back(&copy, &config);
    std::fs::remove_file(&record).unwrap();
    assert_eq!(
        server_note(),
        format!(
            "splitstore server: note: activity.db names ids past where the counters of {} are now (projects up to \
             {newest}): {went_back}; what activity.db names that config.db no longer holds is reported as deleted\n",
            config.display()
        )
    );

    // Through the library: either way the next project made after a put-back gets the id after it; with the
    // record, even while activity.db cannot be read (here: moved away).
    let activity = data.join("activity.db");
    let away = dir.path().join("activity-away.db");
    put_back(&copy, &config);
    std::fs::rename(&activity, &away).unwrap();
    // The servers run since made projects of their own past `newest`.
    let handed_out = store_core::records::counters_handed_out(&config)["projects"];
    assert_eq!(support::mode(&record), 0o600);
    assert!(handed_out > newest);
    let mut server = splitstore::Server::open(&data).unwrap();
    let raised = &server.config().owner().open_report().counters_raised;
    assert!(raised.contains(&("projects".to_string(), handed_out)), "{raised:?}");
    assert!(server.counters_raised().is_empty());
    let next = server
        .config_mut()
        .create_project(&NewProject::named("While activity.db is away"))
        .unwrap();
    assert_eq!(next.id, handed_out + 1);
    drop(server);
    std::fs::rename(&away, &activity).unwrap();
    put_back(&copy, &config);
    std::fs::remove_file(&record).unwrap();
    let raised = splitstore::Server::open(&data).unwrap().counters_raised().to_vec();
    assert_eq!(raised, [("projects".to_string(), newest)]);
    let mut server = splitstore::Server::open(&data).unwrap();
    assert!(
        server.counters_raised().is_empty() && server.config().owner().open_report().counters_raised.is_empty(),
        "raised once: a counter at the id is not behind it"
    );
    let next = server
        .config_mut()
        .create_project(&NewProject::named("After the put-back"))
        .unwrap();
    assert_eq!(next.id, newest + 1);
}

#[test]
fn a_config_put_back_by_hand_never_hands_out_the_id_of_a_project_only_totals_name_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.join("config.db");
    let copy = dir.path().join("config-copy.db");
    let project = {
        let mut server = splitstore::Server::open(&data).unwrap();
        server
            .config_mut()
            .create_project(&NewProject::named("Before the copy"))
            .unwrap();
        // A copy of what the file holds (the file alone may hold none of it yet: its commits are in the
        // -wal until a checkpoint; a copy of it alone is blank, and refused as damage).
        read_only(&config)
            .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
            .unwrap();
        server
            .config_mut()
            .create_project(&NewProject::named("Last year's"))
            .unwrap()
            .id
    };
    // A year-old session of it, then retention: the session goes, its totals stay (reports still count it).
    record_sessions_started(&data, &[project], chrono::Utc::now() - chrono::Duration::days(400));
    ActivityWriter::open_in(&data)
        .unwrap()
        .prune_before(chrono::Utc::now() - chrono::Duration::days(365))
        .unwrap();
    let activity = read_only(&data.join("activity.db"));
    assert_eq!(
        query_i64(
            &activity,
            &format!("SELECT count(*) FROM activity_sessions WHERE project_id = {project}")
        ),
        0
    );
    let (name, status, _) = reported_project(&data, project);
    assert_eq!((name.as_deref(), status.as_str()), (Some("Last year's"), "active"));

    // config.db put back from the copy, in a directory without the record of its counters (an earlier
    // build's, or the private folder lost): the server's open raises them past the id the totals name.
    put_back(&copy, &config);
    std::fs::remove_file(store_core::records::counters_path(&config)).unwrap();
    let mut server = splitstore::Server::open(&data).unwrap();
    assert_eq!(server.counters_raised(), [("projects".to_string(), project)]);
    let next = server
        .config_mut()
        .create_project(&NewProject::named("After the put-back"))
        .unwrap();
    assert_eq!(next.id, project + 1);
    drop(server);
    assert_eq!(reported_project(&data, project).1, "deleted");
}

/// A data directory copied while the daemon ran, its `-wal` copied before the file and a checkpoint between
/// the two copies: the `-wal` is older than the file, and no record names it (a whole directory copied gets
/// new files). The daemon started on the copy wrote the `-wal`'s older pages over the file and exited 0:
/// the events the file held past the `-wal`'s last commit were gone, nothing said. Now every open refuses
/// the pair (`orphan_wal`, naming the counter it would take back), nothing written, and `repair`, as the
/// remedy says, sets the `-wal` aside: every event the file held is there.
#[test]
fn a_wal_older_than_its_file_in_a_copied_directory_is_refused_and_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data, 300);
    let mut w = ActivityWriter::open_in(&data).unwrap();
    let at = chrono::Utc::now();
    let record = |w: &mut ActivityWriter, n: usize| {
        for _ in 0..n {
            w.record_event(&NewEvent::new(None, "focus", at)).unwrap();
        }
    };
    record(&mut w, 50);
    let db = data.join("activity.db");
    let wal = store_core::files::with_suffix(&db, "-wal");
    // The copy's -wal, taken first: it holds the 50 events' commits, not yet checkpointed.
    let older_wal = std::fs::read(&wal).unwrap();
    assert!(older_wal.len() > 32);
    record(&mut w, 50);
    drop(w);
    let all = ids(&db, "SELECT id FROM activity_events");
    assert_eq!(all.len(), 400);

    let copy = copy_data_dir(&data, dir.path().join("copy"));
    let copied_db = copy.join("activity.db");
    let copied_wal = store_core::files::with_suffix(&copied_db, "-wal");
    std::fs::write(&copied_wal, &older_wal).unwrap();
    let before = std::fs::read(&copied_db).unwrap();
    let c = utf8(&copy);

    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", c]);
    let stderr = texts(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = all.last().unwrap();
    assert!(
        stderr.starts_with(&format!(
            "splitstore daemon: {}-wal ({} bytes) is older than the file: opened together, SQLite would write its \
             pages over the file's newer ones, taking activity_events's counter back from {last} to {} and losing \
             what the file holds past it; no record names this -wal (a data directory copied while its owner ran, \
             the -wal copied before the file). What to do: stop every owner of a database in {c} (the command \
             takes all their locks), then run `splitstore repair --data-dir {c}`: it moves the -wal and -shm aside \
             as activity.db.orphan-<time>-wal and -shm (nothing is deleted), and the file opens as it is, newer \
             than that -wal",
            copied_db.display(),
            older_wal.len(),
            last - 50
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&copied_db).unwrap(), before, "nothing written");
    let report = run_splitstore(["report", "--data-dir", c]);
    assert_eq!(report.status.code(), Some(2), "{report:?}");

    let repair = run_splitstore(["repair", "--data-dir", c]);
    assert!(repair.status.success(), "{repair:?}");
    let out = run_splitstore(["daemon", "--events", "10", "--data-dir", c]);
    assert!(out.status.success(), "{out:?}");
    let now = ids(&copied_db, "SELECT id FROM activity_events");
    assert!(all.is_subset(&now), "every event the file held is there");
    assert_eq!(now.len(), all.len() + 10);
}
