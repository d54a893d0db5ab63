//! ActivityWriter on real files: sessions, events, batches, group commit, failures half-way.

mod common;

use std::time::Duration;

use activity_store::{
    ActivityReader, ActivityWriter, GroupCommit, GroupCommitPolicy, NewEvent, NewSession, Pending, SCHEMA, TimeRange,
    WriterOptions,
};
use chrono::{DateTime, Utc};
use common::*;
use store_core::ErrorKind;

#[test]
fn a_new_file_is_activity_db_with_incremental_auto_vacuum_and_the_posture() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let writer = ActivityWriter::open(&db).unwrap();
    assert!(writer.owner().open_report().created);
    let c = read_only(&db);
    let pragma = |name: &str| -> i64 { c.pragma_query_value(None, name, |r| r.get(0)).unwrap() };
    assert_eq!(pragma("auto_vacuum"), 2, "auto_vacuum=INCREMENTAL is fixed at creation");
    assert_eq!(pragma("application_id"), SCHEMA.application_id as i64);
    assert_eq!(pragma("user_version"), SCHEMA.end_version() as i64);
    let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let autocheckpoint: i64 = writer
        .owner()
        .conn()
        .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
        .unwrap();
    assert_eq!(autocheckpoint, 1000);
}

#[test]
fn a_second_writer_is_refused_with_this_process_named() {
    let dir = tempfile::tempdir().unwrap();
    let _first = ActivityWriter::open_in(dir.path()).unwrap();
    let err = ActivityWriter::open_in(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(
        err.to_string()
            .contains(&format!("pid {} (this process)", std::process::id())),
        "{err}"
    );
}

#[test]
fn sessions_and_events_are_stored_as_given_and_ids_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let s = w.start_session(&session(Some(7), 10_000)).unwrap();
    let e1 = w.record_event(&event(Some(s), "focus", 10_000)).unwrap();
    let e2 = w.record_event(&event(Some(s), "title", 12_500)).unwrap();
    assert_eq!(e2, e1 + 1);
    assert!(w.end_session(s, at(75_900)).unwrap());
    assert!(
        !w.end_session(s, at(99_000)).unwrap(),
        "an ended session is not ended twice"
    );
    assert!(!w.end_session(9_999, at(99_000)).unwrap(), "no such session");

    let r = ActivityReader::open(&db);
    let sessions = r.sessions_in_range(&TimeRange::all(), 10).unwrap();
    assert_eq!(sessions.len(), 1);
    let got = &sessions[0];
    assert_eq!(got.id, s);
    assert_eq!(got.project_id, Some(7));
    assert_eq!(got.start, at(10_000));
    assert_eq!(got.end, Some(at(75_900)));
    assert_eq!(got.duration_seconds, Some(66), "65.9 s to the nearest second");
    let events = r.events_of_session(s, 10).unwrap();
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e1, e2]);
    assert_eq!(events[1].at, at(12_500));
    assert_eq!(events[1].event_type, "title");
}

#[test]
fn a_session_ended_before_it_started_has_zero_duration() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let s = w.start_session(&session(None, 50_000)).unwrap();
    assert!(w.end_session(s, at(40_000)).unwrap());
    let got = ActivityReader::open(&db)
        .sessions_in_range(&TimeRange::all(), 1)
        .unwrap();
    assert_eq!(got[0].duration_seconds, Some(0));
}

#[test]
fn a_time_outside_those_kept_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let first = DateTime::<Utc>::MIN_UTC;
    let e = w.record_event(&NewEvent::new(None, "focus", first)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the time of the event -262143-01-01T00:00:00Z is outside the times activity.db keeps (years 0000 \
             to 9999 UTC). What to do: correct the time of the event and retry; nothing was written",
            db.display()
        )
    );
    let before_year_0 = at(-62_167_219_200_001);
    let after_9999 = at(253_402_300_800_000);
    for bad in [before_year_0, after_9999] {
        let refused = w.start_session(&NewSession::new("code", bad)).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
        assert!(refused.to_string().contains("the start of the session"), "{refused}");
        let batch = [event(None, "focus", 1_000), NewEvent::new(None, "focus", bad)];
        assert_eq!(w.record_batch(&batch).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let open = w.start_session(&session(Some(1), 0)).unwrap();
    let refused = w.end_session(open, DateTime::<Utc>::MAX_UTC).unwrap_err();
    assert!(refused.to_string().contains("the end of the session"), "{refused}");
    let refused = w.prune_step(after_9999, 100).unwrap_err();
    assert!(refused.to_string().contains("the retention cut-off"), "{refused}");
    assert!(
        w.prune_step(before_year_0, 100).unwrap().done,
        "a retention of millennia prunes nothing"
    );
    w.end_session(open, at(253_402_300_799_999)).unwrap();
    let first_kept = w.start_session(&session(None, -62_167_219_200_000)).unwrap();
    w.end_session(first_kept, at(-62_167_219_200_000)).unwrap();
    assert_eq!(count_rows(&db, "activity_events"), 0, "no event of a refused batch");
    assert_eq!(
        count_rows(&db, "activity_sessions"),
        2,
        "only the sessions whose start was kept"
    );

    // In a group, the refused event never joins it: the events beside it commit.
    let mut group = w.into_group_commit(GroupCommitPolicy::default());
    group.push(event(None, "focus", 1_000)).unwrap();
    assert_eq!(
        group.push(NewEvent::new(None, "focus", first)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        group.end_session(open, first).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(group.pending_len(), 1);
    assert_eq!(group.flush().unwrap().event_ids.len(), 1);
    assert_eq!(count_rows(&db, "activity_events"), 1);
}

#[test]
fn a_batch_is_one_transaction_with_consecutive_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let batch: Vec<_> = (0..500).map(|i| event(None, "focus", 1_000 + i)).collect();
    let committed = w.record_batch(&batch).unwrap();
    assert_eq!(committed.event_ids.len(), 500);
    assert!(committed.event_ids.windows(2).all(|p| p[1] == p[0] + 1));
    assert_eq!(count_rows(&db, "activity_events"), 500);
    assert!(w.record_batch(&[]).unwrap().event_ids.is_empty());
}

#[test]
fn an_injected_failure_mid_batch_leaves_none_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    w.record_event(&event(None, "focus", 1)).unwrap();
    install_poison_trigger(&db);

    let mut batch: Vec<_> = (0..100).map(|i| event(None, "focus", 10 + i)).collect();
    batch[60] = event(None, "poison", 70);
    let err = w.record_batch(&batch).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err}");
    assert!(err.to_string().contains("injected failure: poison event"), "{err}");
    assert!(
        err.to_string().contains("activity.db"),
        "the error names the file: {err}"
    );
    assert_eq!(
        count_rows(&db, "activity_events"),
        1,
        "none of the failed batch is left"
    );

    // The writer is usable afterwards and ids were not consumed by the rolled-back batch.
    let next = w.record_event(&event(None, "focus", 200)).unwrap();
    assert_eq!(next, 2);
}

#[test]
fn group_commit_commits_at_max_events_and_acknowledges_every_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let w = ActivityWriter::open(&db).unwrap();
    let policy = GroupCommitPolicy {
        max_events: 10,
        max_delay: Duration::from_secs(3600),
    };
    let mut g = w.into_group_commit(policy);
    let mut acked = Vec::new();
    for i in 0..25 {
        if let Some(c) = g.push(event(None, "focus", i)).unwrap() {
            assert_eq!(c.event_ids.len(), 10);
            acked.extend(c.event_ids);
        }
    }
    assert_eq!(acked.len(), 20);
    assert_eq!(g.pending_len(), 5);
    acked.extend(g.flush().unwrap().event_ids);
    assert_eq!(acked, (1..=25).collect::<Vec<i64>>());
    assert!(
        g.flush().unwrap().event_ids.is_empty(),
        "an empty flush commits nothing"
    );
}

#[test]
fn group_commit_pending_events_are_invisible_until_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let reader = ActivityReader::open(&db);
    let s = w.start_session(&session(Some(1), 0)).unwrap();
    let mut g = w.into_group_commit(GroupCommitPolicy {
        max_events: 1000,
        max_delay: Duration::from_secs(3600),
    });
    for i in 0..10 {
        assert!(g.push(event(Some(s), "focus", i)).unwrap().is_none());
    }
    assert!(g.end_session(s, at(60_000)).unwrap().is_none());
    assert!(
        reader.events_of_session(s, 100).unwrap().is_empty(),
        "pending is not visible"
    );
    assert_eq!(reader.sessions_in_range(&TimeRange::all(), 1).unwrap()[0].end, None);

    let c = g.flush().unwrap();
    assert_eq!(c.event_ids.len(), 10);
    assert_eq!(c.ended_sessions, vec![s], "the commit names the session it ended");
    assert_eq!(
        reader.events_of_session(s, 100).unwrap().len(),
        10,
        "visible once committed"
    );
    assert_eq!(
        reader.sessions_in_range(&TimeRange::all(), 1).unwrap()[0].duration_seconds,
        Some(60)
    );
}

#[test]
fn group_commit_commits_when_the_oldest_has_waited_max_delay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let w = ActivityWriter::open(&db).unwrap();
    // The delay is long enough that the two calls below always fall inside it, even when this thread is
    // descheduled between them on a busy machine (30 ms was not: a time slice alone can be that long).
    let max_delay = Duration::from_millis(500);
    let mut g = w.into_group_commit(GroupCommitPolicy {
        max_events: 1000,
        max_delay,
    });
    assert!(g.push(event(None, "focus", 1)).unwrap().is_none());
    assert!(g.flush_if_due().unwrap().is_none(), "not due yet");
    std::thread::sleep(max_delay + Duration::from_millis(10));
    assert!(g.is_due());
    let c = g.flush_if_due().unwrap().expect("due after max_delay");
    assert_eq!(c.event_ids, vec![1]);
    assert_eq!(count_rows(&db, "activity_events"), 1);
}

#[test]
fn group_commit_flushes_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let w = ActivityWriter::open(&db).unwrap();
    {
        let mut g = w.into_group_commit(GroupCommitPolicy {
            max_events: 1000,
            max_delay: Duration::from_secs(3600),
        });
        for i in 0..42 {
            g.push(event(None, "focus", i)).unwrap();
        }
        assert_eq!(count_rows(&db, "activity_events"), 0);
    }
    assert_eq!(
        count_rows(&db, "activity_events"),
        42,
        "dropping the buffer committed it"
    );
}

#[test]
fn group_commit_failure_writes_nothing_and_keeps_everything_pending() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let s = w.start_session(&session(None, 0)).unwrap();
    install_poison_trigger(&db);
    let mut g = w.into_group_commit(GroupCommitPolicy {
        max_events: 5,
        max_delay: Duration::from_secs(3600),
    });
    for i in 0..3 {
        g.push(event(Some(s), "focus", i)).unwrap();
    }
    assert!(g.end_session(s, at(10_000)).unwrap().is_none());
    assert!(
        g.push(event(Some(s), "poison", 4)).unwrap().is_none(),
        "4 events: not due yet"
    );
    let err = g.push(event(Some(s), "focus", 5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err}");
    let err = g.push(event(Some(s), "focus", 6)).unwrap_err();
    assert!(
        err.to_string().contains("injected failure"),
        "a retry fails the same way: {err}"
    );
    assert_eq!(
        count_rows(&db, "activity_events"),
        0,
        "nothing of the group was written"
    );
    let open: i64 = read_only(&db)
        .query_row(
            "SELECT COUNT(*) FROM activity_sessions WHERE end_time_ms IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 1, "the session end in the failed group was not applied");
    assert_eq!(g.pending_len(), 7, "every operation is still pending");

    let taken = g.discard_pending();
    assert_eq!(taken.len(), 7);
    assert!(matches!(&taken[4], Pending::Event(e) if e.event_type == "poison"));
    assert_eq!(g.pending_len(), 0);
    let c = g.push(event(Some(s), "focus", 7)).unwrap();
    assert!(c.is_none());
    assert_eq!(g.flush().unwrap().event_ids.len(), 1, "the buffer works again");
}

#[test]
fn a_daemon_keeps_its_writer_and_group_in_one_struct_and_prunes_while_events_are_pending() {
    struct Daemon {
        group: GroupCommit,
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let old = w.start_session(&session(None, 0)).unwrap();
    w.record_event(&event(Some(old), "focus", 10)).unwrap();
    w.end_session(old, at(1_000)).unwrap();
    let mut daemon = Daemon {
        group: w.into_group_commit(GroupCommitPolicy {
            max_events: 1000,
            max_delay: Duration::from_secs(3600),
        }),
    };
    let now = 10_000_000;
    let s = daemon.group.start_session(&session(None, now)).unwrap();
    for i in 0..5 {
        daemon.group.push(event(Some(s), "focus", now + i)).unwrap();
    }
    let pruned = daemon.group.writer_mut().prune_before(at(5_000_000)).unwrap();
    assert_eq!((pruned.sessions_deleted, pruned.events_deleted), (1, 1));
    assert_eq!(daemon.group.pending_len(), 5, "pruning left the pending events pending");
    let mut w = daemon.group.into_writer().unwrap();
    assert_eq!(
        count_rows(&db, "activity_events"),
        5,
        "handing the writer back committed them"
    );
    w.record_event(&event(Some(s), "focus", now + 10)).unwrap();
}

#[test]
fn one_commit_per_event_is_a_group_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut g = ActivityWriter::open(&db)
        .unwrap()
        .into_group_commit(GroupCommitPolicy::every_event());
    for i in 0..3 {
        let c = g.push(event(None, "focus", i)).unwrap().expect("every push commits");
        assert_eq!(c.event_ids, vec![i + 1]);
        assert_eq!(count_rows(&db, "activity_events"), i + 1, "visible at once");
    }
}

#[test]
fn writer_options_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut options = WriterOptions::default();
    options.wal.autocheckpoint_pages = 250;
    let w = ActivityWriter::open_with(&db, &options).unwrap();
    let pages: i64 = w
        .owner()
        .conn()
        .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
        .unwrap();
    assert_eq!(pages, 250);
    assert_eq!(w.wal_policy().autocheckpoint_pages, 250);
}

/// Environment variable that turns a run of this test binary into the child of the drop test.
const DROP_CHILD: &str = "ACTIVITY_STORE_DROP_CHILD";

/// Child role: a group that cannot commit is dropped (the parent reads stderr).
#[test]
fn child_drops_a_group_that_cannot_commit() {
    let Ok(path) = std::env::var(DROP_CHILD) else { return };
    let db = std::path::PathBuf::from(path);
    let w = ActivityWriter::open(&db).unwrap();
    install_poison_trigger(&db);
    let mut g = w.into_group_commit(GroupCommitPolicy {
        max_events: 1000,
        max_delay: Duration::from_secs(3600),
    });
    g.push(event(None, "focus", 1)).unwrap();
    g.push(event(None, "poison", 2)).unwrap();
    g.end_session(1, at(3)).unwrap();
}

#[test]
fn a_group_lost_on_drop_is_reported_on_stderr_with_the_file_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let out = store_core::testing::output_within(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "child_drops_a_group_that_cannot_commit",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DROP_CHILD, &db),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "activity-store: 3 pending operations (2 events) were NOT recorded in {}: ",
        db.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("injected failure: poison event"), "{stderr}");
    assert_eq!(count_rows(&db, "activity_events"), 0);
}
