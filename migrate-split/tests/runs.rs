//! Runs against a data directory in each state a user meets: an owner running, outputs that exist, a
//! dry run, --strict, --force, and a legacy file that fails half-way through.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use migrate_split::fixtures::LegacySpec;
use migrate_split::{Options, Outcome, SplitError, split};
use store_core::{ErrorKind, OwnerConnection, Provenance};

/// What a child process of these tests does, by its role: `own` holds activity.db's owner connection in the
/// directory given, signals readiness with `<dir>/owner.ready`, then sleeps until killed.
#[test]
fn child_entry() {
    let Some((role, dir)) = child_role() else { return };
    match role.as_str() {
        "own" => {
            let _owner = OwnerConnection::open(&dir.join("activity.db"), &activity_store::SCHEMA).expect("child owns");
            std::fs::write(dir.join("owner.ready"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
        }
        // A peer holding activity.db's owner lock as while it splits, stopped (as Ctrl-Z would) until continued.
        "own-then-stop" => {
            let _peer = store_core::OwnerLock::acquire(&dir.join("activity.db")).unwrap();
            // SAFETY: stops this very process; the parent continues or kills it.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        other => panic!("unknown role {other}"),
    }
}

fn no_outputs(data: &Path) {
    let names = listing(data);
    assert!(
        names.iter().all(|n| n.ends_with(".lock") || n == "owner.ready"),
        "only lock files may be left: {names:?}"
    );
}

#[test]
fn a_running_owner_is_refused_with_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut child = spawn_child("child_entry", "own", &data);
    wait_for_file(&data.join("owner.ready"), Duration::from_secs(30));

    let err = split(&legacy, &data, &Options::default()).expect_err("refused while the daemon runs");
    match &err {
        SplitError::Store(store_core::Error::Locked { holder: Some(h), path }) => {
            assert_eq!(h.pid, child.id());
            assert_eq!(path, &data.join("activity.db"));
        }
        other => panic!("expected Locked naming the child, got {other:?}"),
    }
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains(&format!("pid {}", child.id())), "{err}");
    // The child's fresh activity.db is its own; nothing of a split was written.
    assert!(!data.join("config.db").exists());
    assert!(listing(&data).iter().all(|n| !n.starts_with(".split-tmp-")));

    let out = run_bin(&[
        "--legacy".as_ref(),
        legacy.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", child.id())));
    kill9(&mut child);
}

#[test]
fn outputs_of_something_else_are_refused_unless_forced_and_then_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &LegacySpec::small(2));
    let data = dir.path().join("data");
    // A daemon started before the split and created an empty activity.db.
    drop(OwnerConnection::open(&data.join("activity.db"), &activity_store::SCHEMA).unwrap());
    let err = split(&legacy, &data, &Options::default()).expect_err("refused");
    assert!(matches!(err, SplitError::OutputsExist { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("activity.db records no split, config.db is missing"),
        "{err}"
    );
    // The command in full: a daemon or server that meets this at its first start takes no --force.
    assert!(
        err.remedy().starts_with(&format!(
            "if they are disposable, run `migrate-split --legacy {} --data-dir {} --force`: ",
            legacy.display(),
            data.display()
        )),
        "{}",
        err.remedy()
    );
    assert!(err.to_string().contains("--force"), "{err}");

    let forced = Options {
        force: true,
        ..Options::default()
    };
    let report = split(&legacy, &data, &forced).expect("forced split");
    assert_eq!(report.outcome, Outcome::Split);
    assert_eq!(report.tables, summary.counts());
    assert_eq!(report.moved_aside.len(), 1, "{:?}", report.moved_aside);
    let aside = &report.moved_aside[0];
    assert!(
        aside
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("activity.db.replaced-")
    );
    let conn = open_output(aside);
    assert!(
        Provenance::read_all(&conn).unwrap().iter().all(|p| p.event != "split"),
        "the old file, intact"
    );
    assert_rows_match(&legacy, &data, 2);

    // A split of another legacy file is "something else" too.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, other_summary) = legacy_file(
        other_dir.path(),
        &LegacySpec {
            seed: 99,
            projects: 30,
            ..LegacySpec::small(3)
        },
    );
    let err = split(&other, &data, &Options::default()).expect_err("refused");
    assert!(err.to_string().contains("of another legacy file"), "{err}");
    let report = split(&other, &data, &forced).expect("forced split of the other file");
    assert_eq!(report.tables, other_summary.counts());
    assert_eq!(
        report.moved_aside.len(),
        3,
        "both outputs and the rejects file: {:?}",
        report.moved_aside
    );
    for p in &report.moved_aside {
        assert!(p.exists(), "{} still exists under its aside name", p.display());
    }
    assert_rows_match(&other, &data, 3);
}

#[test]
fn a_dry_run_writes_nothing_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
    let sha = sha256(&legacy);
    let data = dir.path().join("data");
    let report = split(
        &legacy,
        &data,
        &Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .expect("dry run");
    assert_eq!(report.outcome, Outcome::DryRun);
    assert_eq!(report.tables, summary.counts());
    assert_eq!(report.rejects_file, None);
    assert!(report.split_id.is_none());
    assert!(!data.exists(), "a dry run created the data directory");
    assert_eq!(sha256(&legacy), sha);
    assert!(report.human_summary().contains("row(s) would be rejected"));

    // Existing outputs are reported, not touched.
    split(&legacy, &data, &Options::default()).unwrap();
    let before = snapshot(&data);
    let report = split(
        &legacy,
        &data,
        &Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(
        report.existing_outputs,
        ["activity.db", "config.db", "split-rejects.jsonl"]
    );
    assert_eq!(snapshot(&data), before);
}

#[test]
fn strict_fails_on_rejects_or_unknown_tables_and_leaves_no_output() {
    let strict = Options {
        strict: true,
        ..Options::default()
    };
    // Rejected rows: the whole conversion runs, then nothing is kept.
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(
        dir.path(),
        &LegacySpec {
            unparseable_times: true,
            ..LegacySpec::small(3)
        },
    );
    let data = dir.path().join("data");
    let err = split(&legacy, &data, &strict).expect_err("strict fails");
    let SplitError::Strict { report, reasons } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(err.exit_code(), 1);
    assert_eq!(report.tables, summary.counts(), "the counts say why");
    assert!(reasons.iter().any(|r| r.contains("would be rejected")), "{reasons:?}");
    no_outputs(&data);
    // Without --strict the same file splits (and the leftover locks are no obstacle).
    split(&legacy, &data, &Options::default()).expect("split");

    // An unknown table: refused before anything is created.
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(
        dir.path(),
        &LegacySpec {
            unknown_table: true,
            ..LegacySpec::small(1)
        },
    );
    let data = dir.path().join("data");
    let err = split(&legacy, &data, &strict).expect_err("strict fails");
    assert!(err.to_string().contains("addon_focus_stats"), "{err}");
    assert!(!data.exists());
}

/// Legacy values the stores cannot read back (text or a fraction where an integer belongs, a BLOB or bytes
/// that are not UTF-8 where text does) and durations no session has (negative: taken off the project's
/// totals; near `i64::MAX`: the totals overflowed and the whole split failed). They used to be copied as
/// they were: then every report over them failed, or the server stopped at each start, while doctor said
/// healthy. Each row goes to the rejects file with its reason now, and the rest reads.
#[test]
fn legacy_values_the_stores_cannot_read_are_rejected_with_their_reason_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let conn = rusqlite::Connection::open(&legacy).unwrap();
    // sql.js never enforced the schema's foreign keys.
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO projects (id, name, color) VALUES (9001, 'cut emoji ' || CAST(X'EDA0BD' AS TEXT), NULL),
             (9002, 'blob color', X'00FF00');
         INSERT INTO activity_sessions (id, app, project_id, start_time, end_time, duration_seconds) VALUES
             (9101, 'a', 'abc', '2024-01-02T10:00:00Z', '2024-01-02T11:00:00Z', 3600),
             (9102, 'a', NULL, '2024-01-03T10:00:00Z', '2024-01-03T11:00:00Z', 12.7),
             (9103, 'a', NULL, '2024-01-04T11:00:00Z', '2024-01-04T10:00:00Z', -3600),
             (9104, 'a', NULL, '2024-01-05T10:00:00Z', '2024-01-05T11:00:00Z', 9223372036854775000),
             (9105, 'a', NULL, '2024-01-06T10:00:00Z', '2024-01-06T11:00:00Z', 3600);",
    )
    .unwrap();
    drop(conn);
    let data = dir.path().join("data");
    split(&legacy, &data, &Options::default()).unwrap();

    let rejects = rejects(&data.join("split-rejects.jsonl"));
    for (table, id, reason) in [
        ("projects", 9001, "name is not UTF-8 text"),
        ("projects", 9002, "color is not text (a BLOB of 3 bytes)"),
        ("activity_sessions", 9101, "project_id is not an integer (Text)"),
        ("activity_sessions", 9102, "duration_seconds is not an integer (Real)"),
        (
            "activity_sessions",
            9103,
            "duration_seconds is -3600: no session lasts that long (0 to 100 years)",
        ),
        (
            "activity_sessions",
            9104,
            "duration_seconds is 9223372036854775000: no session lasts that long (0 to 100 years)",
        ),
    ] {
        let line = &rejects[&(table.to_string(), id)];
        assert_eq!(line["reason"], reason, "{line}");
    }
    assert!(!rejects.contains_key(&("activity_sessions".to_string(), 9105)));
    // What the server and a report read: every row there, none failing.
    let projects = config_store::ConfigReader::open_in(&data).projects().unwrap();
    assert!(!projects.iter().any(|p| p.id == 9001 || p.id == 9002));
    let totals = activity_store::ActivityReader::open_in(&data)
        .totals_by_project(&activity_store::TimeRange::all())
        .unwrap();
    assert!(totals.iter().all(|t| t.seconds >= 0), "{totals:?}");
}

/// config-store refuses new domains with a control character, an empty label or more than DNS allows, and
/// project names with a control character; legacy rows holding them are not the split's to judge: they are
/// copied as written (as `GitHub.com` or a URL is), none rejected, and the server shows them and removes
/// them by their stored spelling. A host with a control character belongs to no project.
#[test]
fn legacy_domains_and_names_a_new_write_would_refuse_are_copied_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let conn = rusqlite::Connection::open(&legacy).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO projects (id, name) VALUES (9001, char(0)), (9002, 'two' || char(10) || 'lines');
         INSERT INTO project_domains (id, project_id, domain) VALUES
             (9101, 9001, 'a' || char(0) || 'b.com'), (9102, 9001, 'a..b'), (9103, 9002, '{}.com'),
             (9104, 9002, 'Legacy.COM');",
        "x".repeat(300)
    ))
    .unwrap();
    drop(conn);
    let data = dir.path().join("data");
    split(&legacy, &data, &Options::default()).unwrap();

    let rejects = rejects(&data.join("split-rejects.jsonl"));
    for (table, id) in [("projects", 9001), ("projects", 9002)]
        .into_iter()
        .chain((9101..=9104).map(|id| ("project_domains", id)))
    {
        assert!(!rejects.contains_key(&(table.to_string(), id)), "{table} {id}");
    }
    let long = format!("{}.com", "x".repeat(300));
    let mut store = config_store::ConfigStore::open_in(&data).unwrap();
    let first = store.reader().project(9001).unwrap().unwrap();
    assert_eq!(first.name, "\0");
    assert_eq!(first.domains, ["a\0b.com", "a..b"]);
    let second = store.reader().project(9002).unwrap().unwrap();
    assert_eq!(second.name, "two\nlines");
    assert_eq!(second.domains, [long.as_str(), "Legacy.COM"]);
    assert_eq!(store.reader().project_for_domain("a\0b.com").unwrap(), None);
    assert_eq!(store.reader().project_for_domain("www.legacy.com").unwrap(), Some(9002));
    assert!(store.remove_domain(9001, "a\0b.com").unwrap());
    assert!(store.remove_domain(9002, &long).unwrap());
    assert_eq!(store.reader().project(9001).unwrap().unwrap().domains, ["a..b"]);
}

/// Each output has its lineage from the split, as its owner's first open would give it: a backup taken
/// before that open is told as the file's own, never taken by rotation for another file's at that path.
#[test]
fn the_outputs_have_their_lineage_from_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    split(&legacy, &data, &Options::default()).unwrap();
    let lineages: Vec<String> = ["activity.db", "config.db"]
        .iter()
        .map(|f| {
            Provenance::lineage(&open_output(&data.join(f)))
                .unwrap()
                .expect("a lineage")
        })
        .collect();
    assert_ne!(lineages[0], lineages[1]);
    let owner = OwnerConnection::open(&data.join("activity.db"), &activity_store::SCHEMA).unwrap();
    assert_eq!(
        Provenance::lineage(owner.conn()).unwrap().as_ref(),
        Some(&lineages[0]),
        "kept by the owner's open"
    );
}

#[test]
fn unknown_tables_are_listed_warned_and_left_in_the_legacy_file() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(
        dir.path(),
        &LegacySpec {
            unknown_table: true,
            ..LegacySpec::small(2)
        },
    );
    let report = split(&legacy, &dir.path().join("data"), &Options::default()).unwrap();
    assert_eq!(report.unknown_tables, ["addon_focus_stats"]);
    assert!(report.human_summary().contains(
        "warning: table addon_focus_stats is not part of any legacy version: it was left in the legacy file, not copied"
    ));
    for file in ["activity.db", "config.db"] {
        let conn = open_output(&dir.path().join("data").join(file));
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'addon_focus_stats'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }
}

#[test]
fn a_legacy_file_damaged_half_way_leaves_nothing_behind() {
    // The events table's root page is destroyed: the copy meets it (the legacy file's quick_check, which
    // says what is wrong, is the refusal); the run must leave no output and no temporary file.
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let (root, page_size): (i64, i64) = {
        let conn = open_legacy(&legacy);
        (
            conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'activity_events'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
            conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
        )
    };
    let mut bytes = std::fs::read(&legacy).unwrap();
    let start = ((root - 1) * page_size) as usize;
    bytes[start..start + page_size as usize].fill(0xFF);
    std::fs::write(&legacy, &bytes).unwrap();

    let data = dir.path().join("data");
    let err = split(&legacy, &data, &Options::default()).expect_err("the damage stops the run");
    assert!(matches!(err, SplitError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("it is damaged"), "{err}");
    no_outputs(&data);
    assert!(
        !matches!(err, SplitError::Store(ref e) if e.kind() == ErrorKind::Locked),
        "not a lock problem"
    );
}

/// A damaged byte in the schema's text (sqlite_sequence's `(name,seq)` read as one column `(nameAseq)`)
/// makes SQLite refuse a query at its text ("no such column"), an error rusqlite reports with the SQL and
/// its offset: still damage of the legacy file, refused like any other, nothing created. (Found by the fuzz
/// test.)
#[test]
fn a_damaged_schema_text_is_refused_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let mut bytes = std::fs::read(&legacy).unwrap();
    let text = b"sqlite_sequence(name,seq)";
    let at = bytes
        .windows(text.len())
        .position(|w| w == text)
        .expect("sqlite_sequence's schema text");
    bytes[at + "sqlite_sequence(name".len()] = b'A';
    std::fs::write(&legacy, &bytes).unwrap();

    let data = dir.path().join("data");
    let err = split(&legacy, &data, &Options::default()).expect_err("the damage stops the run");
    assert!(matches!(err, SplitError::Refused { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "{} is not a legacy database this tool converts: it is damaged (no such column: name in SELECT name, \
             seq FROM sqlite_sequence at offset 7)",
            legacy.display()
        )),
        "{err}"
    );
    no_outputs(&data);
    assert_eq!(
        std::fs::read(&legacy).unwrap(),
        bytes,
        "the legacy file was not changed"
    );
}

/// Damage the copy never reads (the list of free pages) is found by the legacy file's quick_check, which
/// runs beside the index builds: the split is refused after the copy, deletes what it copied, and puts
/// nothing in place.
#[test]
fn a_legacy_file_damaged_where_the_copy_does_not_read_is_refused_after_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let conn = rusqlite::Connection::open(&legacy).unwrap();
    conn.execute_batch(
        "CREATE TABLE scratch (b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) \
         INSERT INTO scratch SELECT zeroblob(3000) FROM n; DROP TABLE scratch;",
    )
    .unwrap();
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert!(
        conn.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0))
            .unwrap()
            > 0
    );
    drop(conn);
    // The first freelist trunk page (header offset 32) claims more leaf pages than a page can list.
    let mut bytes = std::fs::read(&legacy).unwrap();
    let trunk = i64::from(u32::from_be_bytes(bytes[32..36].try_into().unwrap()));
    let at = ((trunk - 1) * page_size) as usize + 4;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&legacy, &bytes).unwrap();
    let before = sha256(&legacy);

    let phases: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let seen = phases.clone();
    let options = Options {
        progress: Some(std::sync::Arc::new(move |p: &migrate_split::SplitProgress| {
            let mut seen = seen.lock().unwrap();
            if seen.last() != Some(&p.phase) {
                seen.push(p.phase.clone());
            }
        })),
        ..Options::default()
    };
    let data = dir.path().join("data");
    let err = split(&legacy, &data, &options).expect_err("the damage stops the run");
    assert!(matches!(err, SplitError::Refused { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{} is not a legacy database this tool converts: it is damaged (quick_check: Freelist: \
             freelist leaf count too big on page {trunk}",
            legacy.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("no output was put in place and the file was not changed"),
        "{message}"
    );
    let phases = phases.lock().unwrap();
    assert!(
        phases.iter().any(|p| p == "copying activity_events")
            && phases.last().map(String::as_str) == Some("finishing the legacy file's checks"),
        "refused after the copy, at the legacy file's checks: {phases:?}"
    );
    no_outputs(&data);
    assert_eq!(sha256(&legacy), before, "the legacy file is never written");
}

/// Runs a start's upgrade step on `data` on its own thread; returns it, with what it says as it says it.
fn start_upgrade(
    data: &Path,
) -> (
    std::thread::JoinHandle<migrate_split::Result<migrate_split::Upgrade>>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let said: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let heard = said.clone();
    let options = migrate_split::UpgradeOptions {
        on_event: Some(std::sync::Arc::new(move |e: &migrate_split::UpgradeEvent| {
            heard.lock().unwrap().push(e.to_string())
        })),
        ..Default::default()
    };
    let data = data.to_path_buf();
    (
        std::thread::spawn(move || migrate_split::prepare(&data, &options)),
        said,
    )
}

/// A start that finds the data directory held by a peer that has not recorded its pid yet (an owner writes
/// it an instant after it takes the lock) says nothing for that instant, then names the peer by pid; a peer
/// is said to be "another process" only after a second without a pid. Then the peer goes away without
/// splitting, and the waiting start splits.
#[test]
fn a_waiting_start_names_the_holder_by_pid_once_it_is_recorded() {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    legacy_file(&data, &LegacySpec::small(3));
    // activity.db's owner lock, held as an owner holds it between taking it and writing its pid.
    let mut lock = store_core::files::open_private(&data.join("activity.db.lock")).unwrap();
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );

    let (waiter, said) = start_upgrade(&data);
    // The unrecorded instant, stretched: several of the waiter's looks find no pid.
    std::thread::sleep(Duration::from_millis(300));
    writeln!(lock, "pid={}", std::process::id()).unwrap();
    let named = format!("upgrading: split in progress by pid {} ", std::process::id());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !said.lock().unwrap().iter().any(|l| l.starts_with(&named)) {
        assert!(
            std::time::Instant::now() < deadline,
            "never named: {:?}",
            said.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(lock);
    let outcome = waiter.join().unwrap().unwrap();
    assert!(matches!(outcome, migrate_split::Upgrade::Split(_)), "{outcome:?}");

    let said = said.lock().unwrap();
    for line in said
        .iter()
        .filter(|l| l.contains("split in progress by another process"))
    {
        // Only after a second without a pid (a machine slow enough to stretch the 300 ms that far).
        assert!(!line.ends_with("(waited 0 s)"), "{said:?}");
    }
}

/// A peer's split records itself done while it still holds both owner locks, and lets go an instant later.
/// A start waiting for it returns only once the peer has let go, so its own open is not refused by the
/// peer's lock (it was, when a busy machine stretched that instant past the open's 60 ms grace: CI's
/// `daemon_and_server_started_together_split_the_legacy_database_exactly_once`, a server exiting 75). The
/// same for a start that begins in that instant and finds the split already recorded.
#[test]
fn a_start_waiting_for_a_peers_split_returns_once_the_peer_lets_go_not_once_it_records_the_split() {
    use std::sync::{Arc, Mutex};
    use store_core::{OwnerLock, conversion};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    let (legacy, _) = legacy_file(&data, &LegacySpec::small(3));
    split(&legacy, &data, &Options::default()).unwrap();
    let record = conversion::recorded(&data).unwrap();
    let (activity, config) = (data.join("activity.db"), data.join("config.db"));

    // Waits until `said` holds `n` waits, failing if the start returned first (with what it returned).
    let said_waits = |waiter: &std::thread::JoinHandle<_>, said: &Arc<Mutex<Vec<String>>>, n: usize| {
        store_core::testing::wait_until(Duration::from_secs(60), "never said it waits", || {
            assert!(!waiter.is_finished(), "returned while the peer held the data directory");
            said.lock().unwrap().len() >= n
        })
    };

    // The peer in the middle of its split: both locks held as a split holds them, the split under way and
    // not recorded.
    std::fs::remove_file(conversion::record_path(&data)).unwrap();
    let under_way = conversion::InProgress {
        predecessor: record.predecessor.clone(),
        run_id: record.run_id.clone(),
        at_ms: record.at_ms,
        placing: true,
        sha256: Some(record.sha256.clone()),
    };
    conversion::begin(&data, &under_way).unwrap();
    let peer = [
        OwnerLock::acquire_converting(&activity).unwrap(),
        OwnerLock::acquire_converting(&config).unwrap(),
    ];
    let (waiter, said) = start_upgrade(&data);
    said_waits(&waiter, &said, 1);
    // Its last instant: the split recorded, the locks still held. The start goes on waiting: two more waits
    // said (once a second), the second after a look that found the record.
    conversion::record(&data, &record).unwrap();
    conversion::end(&data).unwrap();
    said_waits(&waiter, &said, 3);
    drop(peer);
    let outcome = waiter.join().unwrap().unwrap();
    assert!(
        matches!(outcome, migrate_split::Upgrade::SplitByPeer { .. }),
        "{outcome:?}"
    );
    let owner = OwnerConnection::open(&config, &config_store::SCHEMA).unwrap();
    drop(owner);

    // A start that begins in that instant waits as well, rather than answering "already done".
    let peer = [
        OwnerLock::acquire_converting(&activity).unwrap(),
        OwnerLock::acquire_converting(&config).unwrap(),
    ];
    let (waiter, said) = start_upgrade(&data);
    said_waits(&waiter, &said, 1);
    assert!(
        said.lock().unwrap()[0].starts_with(&format!("upgrading: split in progress by pid {} ", std::process::id()))
    );
    drop(peer);
    let outcome = waiter.join().unwrap().unwrap();
    assert!(
        matches!(outcome, migrate_split::Upgrade::SplitByPeer { .. }),
        "{outcome:?}"
    );
    OwnerConnection::open(&activity, &activity_store::SCHEMA).unwrap();
}

/// A data directory split before splits were recorded in it (its `converted.json` gone): the upgrade step
/// finds both outputs recording a split of this legacy file and records it, reading only, so it answers
/// at once while an owner runs (a split would wait for the owner's lock).
#[test]
fn a_split_that_was_never_recorded_is_adopted_while_an_owner_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    split(&legacy, &data, &Options::default()).unwrap();
    let record = store_core::conversion::record_path(&data);
    std::fs::remove_file(&record).unwrap();
    let _owner = OwnerConnection::open(&data.join("activity.db"), &activity_store::SCHEMA).unwrap();

    let options = migrate_split::UpgradeOptions {
        legacy: Some(legacy.clone()),
        max_wait: Duration::ZERO,
        ..Default::default()
    };
    let outcome = migrate_split::prepare(&data, &options).unwrap();
    assert!(matches!(outcome, migrate_split::Upgrade::AlreadyDone), "{outcome:?}");
    let adopted = store_core::conversion::recorded(&data).expect("the split is recorded again");
    assert_eq!(adopted.sha256, sha256(&legacy));
}

/// Runs a start's upgrade step on `data`, which a peer holds, until it says it waits, then sets its stop flag:
/// the first wait it said, and the error it gave up with (a stop: [`store_core::Error::Stopped`]).
fn wait_for_peer_then_stop(data: &Path) -> (migrate_split::UpgradeEvent, store_core::Error) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let stop = Arc::new(AtomicBool::new(false));
    let said: Arc<Mutex<Vec<migrate_split::UpgradeEvent>>> = Arc::default();
    let heard = said.clone();
    let options = migrate_split::UpgradeOptions {
        stop: Some(stop.clone()),
        on_event: Some(Arc::new(move |e: &migrate_split::UpgradeEvent| {
            heard.lock().unwrap().push(e.clone())
        })),
        ..Default::default()
    };
    let waiter = {
        let data = data.to_path_buf();
        std::thread::spawn(move || migrate_split::prepare(&data, &options))
    };
    let waited = || {
        let said = said.lock().unwrap();
        said.iter()
            .find(|e| matches!(e, migrate_split::UpgradeEvent::Waiting { .. }))
            .cloned()
    };
    store_core::testing::wait_until(Duration::from_secs(60), "never said it waits", || waited().is_some());
    stop.store(true, Ordering::SeqCst);
    let err = match waiter.join().unwrap() {
        Err(SplitError::Store(e)) => e,
        other => panic!("expected a stop, got {other:?}"),
    };
    assert_eq!(err.kind(), ErrorKind::Stopped, "{err}");
    (waited().unwrap(), err)
}

/// A start waiting for a peer's split gives up when its stop flag is set (a daemon's SIGTERM handler), within
/// moments rather than at the end of the peer's split or of `max_wait` (10 minutes), with a
/// [`store_core::Error::Stopped`] naming the data directory and the peer, and nothing created.
#[test]
fn a_start_waiting_for_a_peers_split_gives_up_when_its_stop_flag_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    legacy_file(&data, &LegacySpec::small(3));
    // The peer: activity.db's owner lock held, its pid recorded, as while it splits.
    let _peer = store_core::OwnerLock::acquire(&data.join("activity.db")).unwrap();
    let (_, err) = wait_for_peer_then_stop(&data);
    let expected = format!(
        "asked to stop while waiting for the split of {} run by pid {} (this process)",
        data.display(),
        std::process::id()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
    let names = listing(&data);
    assert!(
        names.iter().all(|n| n.ends_with(".lock") || n == "legacy.db"),
        "nothing created: {names:?}"
    );
}

/// A data directory in `dir` with a legacy file to split, its owner locks held by a peer that stopped itself
/// (as Ctrl-Z on the server splitting it would): the directory, and the peer, killed when dropped.
fn held_by_a_stopped_peer(dir: &Path) -> (std::path::PathBuf, store_core::testing::KillOnDrop) {
    let data = dir.join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    legacy_file(&data, &LegacySpec::small(3));
    let peer = store_core::testing::KillOnDrop(spawn_child("child_entry", "own-then-stop", &data));
    let pid = peer.0.id();
    store_core::testing::wait_until(Duration::from_secs(60), "the peer stops", || {
        store_core::process::stopped(pid)
    });
    (data, peer)
}

/// A start waiting for a peer's split, the peer stopped (Ctrl-Z on the server splitting): it said "split in
/// progress" once a second for ten minutes, then failed and was restarted into the same wait. It says the
/// peer is stopped and what continues it; asking it to stop still ends the wait.
#[test]
fn a_start_waiting_for_a_stopped_peers_split_says_it_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, peer) = held_by_a_stopped_peer(dir.path());
    let pid = peer.0.id();
    let (first, _) = wait_for_peer_then_stop(&data);
    let first = first.to_string();
    let expected = format!("upgrading: split in progress by pid {pid} since ");
    assert!(first.starts_with(&expected), "{first}");
    assert!(
        first.contains(&format!(
            ", which is stopped (Ctrl-Z, SIGSTOP or a debugger): waiting until it is continued (`kill -CONT {pid}`) \
             (waited "
        )),
        "{first}"
    );
}

/// The time a peer holding the data directory spends stopped does not count toward `max_wait` for a start
/// that can be asked to stop (a daemon's): it gave up after `max_wait` (`locked`, exit 75), was restarted by
/// its supervisor into the same wait, and so on every ten minutes for as long as nobody continued the peer.
/// It waits on, and once the peer is continued (and ends without splitting), splits itself. A caller with no
/// stop flag, which nothing else could free from such a wait, still gives up after `max_wait`.
#[test]
fn a_start_that_can_be_stopped_waits_for_a_stopped_peer_past_max_wait_then_splits_once_it_is_continued() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let (data, mut peer) = held_by_a_stopped_peer(dir.path());
    let pid = peer.0.id();
    let max_wait = Duration::from_millis(300);

    let unstoppable = migrate_split::UpgradeOptions {
        max_wait,
        ..Default::default()
    };
    match migrate_split::prepare(&data, &unstoppable) {
        Err(SplitError::Store(e)) => assert_eq!(e.kind(), ErrorKind::Locked, "{e}"),
        other => panic!("expected locked, got {other:?}"),
    }

    let waits = Arc::new(Mutex::new(0));
    let counted = waits.clone();
    let stoppable = migrate_split::UpgradeOptions {
        max_wait,
        stop: Some(Arc::new(AtomicBool::new(false))),
        on_event: Some(Arc::new(move |e: &migrate_split::UpgradeEvent| {
            if let migrate_split::UpgradeEvent::Waiting { holder_stopped, .. } = e {
                assert!(holder_stopped, "{e}");
                *counted.lock().unwrap() += 1;
            }
        })),
        ..Default::default()
    };
    let waiter = {
        let data = data.clone();
        std::thread::spawn(move || migrate_split::prepare(&data, &stoppable))
    };
    // Said once a second: a third time is two seconds on, well past `max_wait`.
    store_core::testing::wait_until(Duration::from_secs(60), "said three times, or gave up", || {
        *waits.lock().unwrap() >= 3 || waiter.is_finished()
    });
    assert!(!waiter.is_finished(), "gave up: {:?}", waiter.join().unwrap());
    // SAFETY: continues the child this test spawned, which then ends, letting its lock go.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(peer.0.wait().unwrap().success());
    match waiter.join().unwrap() {
        Ok(migrate_split::Upgrade::Split(report)) => assert_eq!(report.outcome, migrate_split::Outcome::Split),
        other => panic!("expected its own split, got {other:?}"),
    }
}

/// A split asked to stop (a daemon's SIGTERM at its first start) ran to its end and put its outputs in place:
/// a minute for a 1 GB legacy file, past a supervisor's patience. It now stops at its next batch of rows or
/// phase, whichever phase it is in until it starts putting its outputs in place, with
/// [`store_core::Error::Stopped`] and nothing left of it (outputs, rejects, record); the legacy file is
/// untouched, and a split run again completes. Asked while it puts its outputs in place, it finishes.
#[test]
fn a_split_asked_to_stop_in_any_phase_before_placing_leaves_nothing_and_splits_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let spec = LegacySpec {
        sessions: 1_500,
        events_per_session: 10,
        ..LegacySpec::small(3)
    };
    let (legacy, _) = legacy_file(dir.path(), &spec);
    let before = sha256(&legacy);
    // The phases of a split of this file, in order.
    let phases: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = phases.clone();
    let watching = Options {
        progress: Some(Arc::new(move |p: &migrate_split::SplitProgress| {
            let mut seen = seen.lock().unwrap();
            if seen.last() != Some(&p.phase) && !p.phase.is_empty() {
                seen.push(p.phase.clone());
            }
        })),
        ..Options::default()
    };
    split(&legacy, &dir.path().join("watched"), &watching).unwrap();
    let phases = phases.lock().unwrap().clone();
    assert!(
        phases.len() >= 6 && phases.last().is_some_and(|p| p == "putting the outputs in place"),
        "{phases:?}"
    );

    // Each phase, and in the middle of copying the events (past the first batches of rows).
    let mut stops: Vec<(String, u64)> = phases.iter().map(|p| (p.clone(), 0)).collect();
    stops.push(("copying activity_events".into(), 10_000));
    for (n, (phase, rows)) in stops.into_iter().enumerate() {
        let data = dir.path().join(format!("data-{n}"));
        let stop = Arc::new(AtomicBool::new(false));
        let setter = stop.clone();
        let at = phase.clone();
        let options = Options {
            stop: Some(stop.clone()),
            progress: Some(Arc::new(move |p: &migrate_split::SplitProgress| {
                if p.phase == at && p.rows_done >= rows {
                    setter.store(true, Ordering::SeqCst);
                }
            })),
            ..Options::default()
        };
        let outcome = split(&legacy, &data, &options);
        assert!(stop.load(Ordering::SeqCst), "the phase {phase:?} was reached");
        if phase == "putting the outputs in place" {
            assert!(outcome.is_ok(), "{phase}: placing finishes: {outcome:?}");
            continue;
        }
        let err = match outcome {
            Err(SplitError::Store(e)) => e,
            other => panic!("{phase} ({rows} rows): expected a stop, got {other:?}"),
        };
        assert_eq!(err.kind(), ErrorKind::Stopped, "{phase}: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "asked to stop while splitting {} into {}, it stopped before changing anything. What to do: \
                 none: it stopped as asked, and nothing was changed; the next run (a daemon's or server's next \
                 start) does what this one did not",
                legacy.display(),
                data.display()
            ),
            "{phase}"
        );
        no_outputs(&data);
        assert!(
            store_core::conversion::in_progress(&data).is_none(),
            "{phase}: no split left under way"
        );
        let report = split(&legacy, &data, &Options::default()).unwrap();
        assert_eq!(report.outcome, Outcome::Split, "{phase}: splits again");
    }
    assert_eq!(sha256(&legacy), before, "the legacy file is never written");
}
