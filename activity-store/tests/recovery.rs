//! Restart is deterministic: sessions a writer left open (it crashed, was killed, lost power) are closed
//! by the next writer's open, exactly once, at their last event, marked recovered, and the app is told.

mod common;

use activity_store::{ActivityReader, ActivityWriter, EndReason, SCHEMA, SessionState, TimeRange};
use common::*;
use store_core::testing::{fingerprint_of, open_at_version};

#[test]
fn sessions_left_open_are_closed_at_their_last_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let (with_events, without_events, ended) = {
        let mut w = ActivityWriter::open(&db).unwrap();
        let a = w.start_session(&session(Some(1), 10_000)).unwrap();
        w.record_event(&event(Some(a), "focus", 12_000)).unwrap();
        w.record_event(&event(Some(a), "input", 75_500)).unwrap();
        let b = w.start_session(&session(None, 100_000)).unwrap();
        let c = w.start_session(&session(Some(2), 200_000)).unwrap();
        w.end_session(c, at(230_000)).unwrap();
        (a, b, c)
        // Dropped without ending a and b: what a crash leaves.
    };
    let reader = ActivityReader::open(&db);
    let open = reader.sessions_in_range(&TimeRange::all(), 10).unwrap();
    assert_eq!(reader.session_state(&open[0]).unwrap(), SessionState::AwaitingRecovery);

    let w = ActivityWriter::open(&db).unwrap();
    let recovered = w.recovery();
    assert_eq!(
        recovered.sessions.iter().map(|s| (s.id, s.end)).collect::<Vec<_>>(),
        [(with_events, at(75_500)), (without_events, at(100_000))],
        "each at its last event, or its start without events"
    );
    assert_eq!(recovered.span(), Some((at(10_000), at(100_000))));
    assert!(recovered.to_string().contains("closed 2 session(s)"), "{recovered}");

    let sessions = reader.sessions_in_range(&TimeRange::all(), 10).unwrap();
    let by_id = |id| sessions.iter().find(|s| s.id == id).unwrap();
    assert_eq!(
        by_id(with_events).duration_seconds,
        Some(66),
        "(75.5 s - 10 s) to the nearest second, halves up"
    );
    assert_eq!(by_id(with_events).end_reason, Some(EndReason::Recovered));
    assert_eq!(by_id(without_events).duration_seconds, Some(0));
    assert_eq!(by_id(ended).end_reason, Some(EndReason::Ended));
    assert_eq!(
        reader.session_state(by_id(with_events)).unwrap(),
        SessionState::Recovered
    );
    assert_eq!(reader.session_state(by_id(ended)).unwrap(), SessionState::Ended);
    // Reports count recovered sessions like any ended one.
    let totals = reader.totals_by_project(&TimeRange::all()).unwrap();
    assert_eq!(totals.iter().find(|t| t.project_id == Some(1)).unwrap().seconds, 66);
    // A live session (owner running) is told apart from one waiting for recovery.
    let mut w = w;
    let live = w.start_session(&session(None, 300_000)).unwrap();
    let live = reader
        .sessions_in_range(&TimeRange::all(), 10)
        .unwrap()
        .into_iter()
        .find(|s| s.id == live)
        .unwrap();
    assert_eq!(reader.session_state(&live).unwrap(), SessionState::Live);
    w.end_session(live.id, at(301_000)).unwrap();
    drop(w);

    // Exactly once: the next open finds nothing to do, and the provenance says what happened once.
    assert!(ActivityWriter::open(&db).unwrap().recovery().is_empty());
    let records: i64 = read_only(&db)
        .query_row("SELECT count(*) FROM provenance WHERE event = 'recovery'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(records, 1);
}

/// The rows of `activity_totals`, in key order.
fn totals_rows(db: &std::path::Path) -> Vec<[i64; 5]> {
    read_only(db)
        .prepare("SELECT has_project, project_id, bucket_ms, sessions, seconds FROM activity_totals ORDER BY 1, 2, 3")
        .unwrap()
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn end_trigger_sql(db: &std::path::Path) -> Option<String> {
    use rusqlite::OptionalExtension;
    read_only(db)
        .query_row(activity_store::queries::END_TRIGGER_SQL, [], |r| r.get(0))
        .optional()
        .unwrap()
}

/// Recovery closes the sessions with `activity_totals_on_end` set aside and adds them to the running totals
/// a bucket at a time (row by row, each closed session updated every later bucket of its project: 55 s for
/// a legacy file's 56 470). The totals must come out exactly as the trigger would have left them, also
/// over history that retention pruned (where the totals no longer follow from the sessions), and the
/// trigger must be back, the same text, doing its work.
#[test]
fn recovering_many_sessions_leaves_the_totals_the_trigger_would_and_puts_the_trigger_back() {
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let first = -2 * 24 * HOUR; // before the epoch too: buckets are floors
    let mut left_open = 0;
    {
        let mut w = ActivityWriter::open(&db).unwrap();
        for i in 0..24 * 14 {
            let start = first + i * HOUR + (i * 7_919) % HOUR;
            let project = [None, Some(1), Some(2), Some(3), Some(40), Some(7)][(i % 6) as usize];
            let s = w.start_session(&session(project, start)).unwrap();
            if i % 3 == 0 {
                // Left open: with an event (closed at it) or without (closed at its start).
                if i % 2 == 0 {
                    w.record_event(&event(Some(s), "input", start + (i * 104_729) % (3 * HOUR)))
                        .unwrap();
                }
                left_open += 1;
            } else {
                w.end_session(s, at(start + 37_000 * (i % 50 + 1))).unwrap();
            }
            if i % 5 == 0 {
                // A second session left open in the same bucket, and one in a bucket nothing ended in.
                w.start_session(&session(project, start + 60_000)).unwrap();
                w.start_session(&session(Some(1000 + i), start)).unwrap();
                left_open += 2;
            }
        }
        // Retention removes the first days' ended sessions; their totals stay.
        w.prune_before(at(first + 3 * 24 * HOUR)).unwrap();
        // Dropped with sessions open: what a crash leaves.
    }
    // What the trigger leaves: each open session ended one at a time, with the trigger in place.
    let expected = dir.path().join("expected.db");
    read_only(&db)
        .execute("VACUUM INTO ?1", [expected.to_str().unwrap()])
        .unwrap();
    {
        let mut c = raw_writer(&expected);
        let tx = c.transaction().unwrap();
        let open: Vec<(i64, i64)> = tx
            .prepare(
                "SELECT s.id, MAX(s.start_time_ms, IFNULL((SELECT MAX(e.timestamp_ms) FROM activity_events e
                 WHERE e.session_id = s.id), s.start_time_ms)) FROM activity_sessions s WHERE s.end_time_ms IS NULL",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(open.len(), left_open);
        for (id, end) in open {
            tx.execute(activity_store::queries::END_SESSION, (id, end, "recovered"))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let pruned_totals = totals_rows(&db);

    let mut w = ActivityWriter::open(&db).unwrap();
    assert_eq!(w.recovery().sessions.len(), left_open);
    let totals = totals_rows(&db);
    assert_ne!(totals, pruned_totals, "recovery added to the totals");
    assert_eq!(totals, totals_rows(&expected), "the totals the trigger would leave");
    /// A session's id, end, duration and end reason.
    type Ended = (i64, Option<i64>, Option<i64>, Option<String>);
    let ends = |db: &std::path::Path| -> Vec<Ended> {
        read_only(db)
            .prepare("SELECT id, end_time_ms, duration_seconds, end_reason FROM activity_sessions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(ends(&db), ends(&expected));

    // The trigger is back, as a fresh file has it, and keeps the totals again.
    let fresh = dir.path().join("fresh.db");
    drop(ActivityWriter::open(&fresh).unwrap());
    assert!(end_trigger_sql(&fresh).is_some());
    assert_eq!(end_trigger_sql(&db), end_trigger_sql(&fresh));
    assert_eq!(fingerprint_of(&db), fingerprint_of(&fresh));
    let reader = ActivityReader::open(&db);
    let project_1 = || {
        let all = reader.totals_by_project(&TimeRange::all()).unwrap();
        let p = all.iter().find(|t| t.project_id == Some(1)).unwrap();
        (p.sessions, p.seconds)
    };
    let (sessions, seconds) = project_1();
    let s = w.start_session(&session(Some(1), first)).unwrap();
    w.end_session(s, at(first + 90_000)).unwrap();
    assert_eq!(project_1(), (sessions + 1, seconds + 90));
}

#[test]
fn a_failure_during_recovery_leaves_every_session_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let mut w = ActivityWriter::open(&db).unwrap();
        for start in [1_000, 2_000, 3_000] {
            w.start_session(&session(None, start)).unwrap();
        }
    }
    // The second session's close fails: the whole recovery rolls back.
    raw_writer(&db)
        .execute_batch(
            "CREATE TRIGGER fail_recovery BEFORE UPDATE ON activity_sessions WHEN OLD.id = 2
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let err = ActivityWriter::open(&db).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        count_rows(&db, "activity_sessions WHERE end_time_ms IS NULL"),
        3,
        "nothing closed"
    );
    assert!(
        end_trigger_sql(&db).is_some(),
        "the totals' trigger, set aside by recovery, is still there"
    );
    assert_eq!(
        count_rows(&db, "provenance WHERE event = 'recovery'"),
        0,
        "nothing recorded"
    );
    raw_writer(&db).execute_batch("DROP TRIGGER fail_recovery").unwrap();
    assert_eq!(ActivityWriter::open(&db).unwrap().recovery().sessions.len(), 3);
}

/// activity.db as a build of schema 2 knew it.
static SCHEMA_V2: store_core::Schema = store_core::Schema {
    file_name: SCHEMA.file_name,
    owner: SCHEMA.owner,
    tools: SCHEMA.tools,
    application_id: SCHEMA.application_id,
    migrations: SCHEMA.migrations.split_at(2).0,
    incremental_vacuum: SCHEMA.incremental_vacuum,
    may_start_empty: SCHEMA.may_start_empty,
    predecessor: None,
    id_references: &[],
    derived_tables: &[],
    derived_check: None,
    append_only_tables: &[],
    readers_read_from: None,
};

#[test]
fn a_file_at_schema_2_migrates_to_3_with_every_row_and_a_reader_built_for_2_still_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let w = open_at_version(&db, &SCHEMA, 2).unwrap();
        w.conn()
            .execute_batch(
                "INSERT INTO activity_sessions (app, project_id, start_time_ms, end_time_ms, duration_seconds)
                 VALUES ('code', 1, 1000, 61000, 60), ('web', NULL, 70000, NULL, NULL);
                 INSERT INTO activity_events (session_id, event_type, timestamp_ms) VALUES (1, 'focus', 1000),
                 (2, 'focus', 71000), (2, 'input', 90000);",
            )
            .unwrap();
    }
    let w = open_upgraded_from(&db, 2);
    assert_eq!(
        w.recovery().sessions.len(),
        1,
        "the open session is recovered after the migration"
    );
    drop(w);
    assert_eq!(count_rows(&db, "activity_sessions"), 2);
    assert_eq!(count_rows(&db, "activity_events"), 3);
    assert_eq!(
        count_rows(&db, "activity_sessions WHERE end_reason = 'ended'"),
        1,
        "ended before: ended"
    );
    assert_eq!(count_rows(&db, "activity_sessions WHERE end_reason = 'recovered'"), 1);

    // Fresh = upgraded.
    let fresh = dir.path().join("fresh/activity.db");
    drop(ActivityWriter::open(&fresh).unwrap());
    assert_eq!(fingerprint_of(&db), fingerprint_of(&fresh));

    // A reader of the previous build reads the migrated file: migration 3 is additive.
    let pool = store_core::ReadPool::new(&db, &SCHEMA_V2);
    let seconds: i64 = pool
        .read(|c| c.query_row("SELECT sum(duration_seconds) FROM activity_sessions", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(seconds, 60 + 20, "both sessions, the recovered one included");
}
