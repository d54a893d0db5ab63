//! ActivityReader on real files: missing file, schema skew, the queries' answers, change polling.

mod common;

use activity_store::{ActivityReader, ActivityWriter, ProjectTotal, SCHEMA, TimeRange};
use common::*;
use store_core::{Error, ErrorKind};

#[test]
fn a_missing_file_is_a_typed_error_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let reader = ActivityReader::open(&db);
    for err in [
        reader.totals_by_project(&TimeRange::all()).unwrap_err(),
        reader.change_token().unwrap_err(),
        reader.check().unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Missing, "{err}");
        assert_eq!(err.path(), db);
        assert!(
            err.to_string()
                .contains("does not exist: the daemon has not created it yet"),
            "{err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a reader created files: {left:?}");
}

#[test]
fn a_file_the_daemon_has_not_upgraded_is_refused_as_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(store_core::testing::open_at_version(&db, &SCHEMA, 1).unwrap());
    let err = ActivityReader::open(&db).latest().unwrap_err();
    match &err {
        Error::SchemaBehind { found, expected, .. } => {
            assert_eq!((*found, *expected), (1, SCHEMA.end_version()));
        }
        other => panic!("expected SchemaBehind, got {other:?}"),
    }
    // This build's readers read files from schema 3 (an older daemon's, without running totals) on.
    assert_eq!(
        err.what(),
        format!(
            "{} is at schema 1, this build reads 3 to {}: the daemon has not upgraded it yet",
            db.display(),
            SCHEMA.end_version()
        )
    );
    assert!(err.is_not_ready(), "wait for the daemon's upgrade");
}

#[test]
fn a_file_newer_than_this_build_is_refused_unless_it_says_this_build_still_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(ActivityWriter::open(&db).unwrap());
    let newer = SCHEMA.end_version() + 1;
    // What a newer build's additive migration leaves: a higher version, the oldest reader unchanged.
    raw_writer(&db)
        .execute_batch(&format!("PRAGMA user_version = {newer}"))
        .unwrap();
    let reader = ActivityReader::open(&db);
    assert!(reader.totals_by_project(&TimeRange::all()).unwrap().is_empty());
    // What a breaking one leaves: this build is too old to read it.
    raw_writer(&db)
        .execute_batch(&format!("UPDATE reader_compatibility SET min_reader_version = {newer}"))
        .unwrap();
    let err = reader.totals_by_project(&TimeRange::all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaNewer, "{err}");
}

#[test]
fn config_db_is_not_read_as_activity_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    static CONFIG_LIKE: store_core::Schema = store_core::Schema {
        file_name: "config.db",
        owner: "the server",
        tools: store_core::Tools {
            program: "splitstore",
            owner_subcommand: "server",
        },
        application_id: 0x5350_4C43,
        migrations: &[store_core::Migration {
            version: 1,
            name: "settings",
            compat: store_core::Compat::Breaking,
            step: store_core::Step::Sql("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);"),
        }],
        incremental_vacuum: false,
        may_start_empty: false,
        predecessor: None,
        id_references: &[],
        derived_tables: &[],
        derived_check: None,
        append_only_tables: &[],
        readers_read_from: None,
    };
    drop(store_core::OwnerConnection::open(&db, &CONFIG_LIKE).unwrap());
    let err = ActivityReader::open(&db).latest().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDatabase, "{err}");
}

/// Sessions at known times: (project, start ms, end ms or open).
fn fill(w: &mut ActivityWriter) {
    let rows: &[(Option<i64>, i64, Option<i64>)] = &[
        (Some(1), 1_000, Some(61_000)),    // 60 s
        (Some(1), 100_000, Some(130_000)), // 30 s
        (Some(2), 200_000, Some(210_000)), // 10 s
        (None, 300_000, Some(305_000)),    // 5 s
        (Some(2), 400_000, None),          // open: counts 0 s
        (Some(1), 500_000, Some(900_000)), // 400 s, outside [0, 500_000)
    ];
    for &(project, start, end) in rows {
        let id = w.start_session(&session(project, start)).unwrap();
        w.record_event(&event(Some(id), "focus", start)).unwrap();
        if let Some(end) = end {
            w.end_session(id, at(end)).unwrap();
        }
    }
}

#[test]
fn totals_by_project_sum_durations_per_project_including_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&mut ActivityWriter::open(&db).unwrap());
    let r = ActivityReader::open(&db);
    let t = |project_id, seconds, sessions| ProjectTotal {
        project_id,
        seconds,
        sessions,
    };
    assert_eq!(
        r.totals_by_project(&TimeRange::between(at(0), at(500_000))).unwrap(),
        vec![t(None, 5, 1), t(Some(1), 90, 2), t(Some(2), 10, 2)]
    );
    assert_eq!(
        r.totals_by_project(&TimeRange::all()).unwrap(),
        vec![t(None, 5, 1), t(Some(1), 490, 3), t(Some(2), 10, 2)]
    );
    // Half-open: a session starting exactly at `to` is out, one starting exactly at `from` is in.
    assert_eq!(
        r.totals_by_project(&TimeRange::between(at(100_000), at(300_000)))
            .unwrap(),
        vec![t(Some(1), 30, 1), t(Some(2), 10, 1)]
    );
    assert_eq!(
        r.totals_by_project(&TimeRange::since(at(400_000))).unwrap(),
        vec![t(Some(1), 400, 1), t(Some(2), 0, 1)]
    );
    assert!(r.totals_by_project(&TimeRange::until(at(1_000))).unwrap().is_empty());
}

#[test]
fn sessions_in_range_are_ordered_bounded_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&mut ActivityWriter::open(&db).unwrap());
    let r = ActivityReader::open(&db);
    let starts = |range: TimeRange, limit| -> Vec<i64> {
        r.sessions_in_range(&range, limit)
            .unwrap()
            .iter()
            .map(|s| s.start.timestamp_millis())
            .collect()
    };
    assert_eq!(
        starts(TimeRange::all(), 100),
        vec![1_000, 100_000, 200_000, 300_000, 400_000, 500_000]
    );
    assert_eq!(starts(TimeRange::all(), 2), vec![1_000, 100_000]);
    assert_eq!(
        starts(TimeRange::between(at(100_000), at(400_000)), 100),
        vec![100_000, 200_000, 300_000]
    );
    let open = r.sessions_in_range(&TimeRange::since(at(400_000)), 1).unwrap();
    assert_eq!((open[0].end, open[0].duration_seconds), (None, None));
}

#[test]
fn latest_is_the_last_session_and_the_latest_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let r = ActivityReader::open(&db);
    let mut w = ActivityWriter::open(&db).unwrap();
    let empty = r.latest().unwrap();
    assert_eq!((empty.session, empty.event), (None, None));
    fill(&mut w);
    // An event recorded later but stamped earlier is not the latest.
    w.record_event(&event(None, "late", 2_000)).unwrap();
    let latest = r.latest().unwrap();
    assert_eq!(latest.session.unwrap().start, at(500_000));
    let e = latest.event.unwrap();
    assert_eq!((e.at, e.event_type.as_str()), (at(500_000), "focus"));
}

#[test]
fn the_change_token_moves_on_every_commit_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let r = ActivityReader::open(&db);
    let t0 = r.change_token().unwrap();
    let last = r.last_ids().unwrap();
    assert_eq!((last.session_id, last.event_id), (None, None));
    assert_eq!(r.changed_since(&t0).unwrap(), None, "no commit, no change");

    let s = w.start_session(&session(Some(3), 0)).unwrap();
    let e = w.record_event(&event(Some(s), "focus", 0)).unwrap();
    let t1 = r.changed_since(&t0).unwrap().expect("a commit is a change");
    let last = r.last_ids().unwrap();
    assert_eq!((last.session_id, last.event_id), (Some(s), Some(e)));
    assert_eq!(r.changed_since(&t1).unwrap(), None);

    // An update changes no id but is still a change.
    w.end_session(s, at(1_000)).unwrap();
    let t2 = r.changed_since(&t1).unwrap().expect("an update is a change");
    assert_eq!(r.last_ids().unwrap(), last);
    let json = serde_json::to_string(&t2).unwrap();
    assert_eq!(serde_json::from_str::<activity_store::ChangeToken>(&json).unwrap(), t2);
}

#[test]
fn the_reader_reads_a_stopped_daemons_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&mut ActivityWriter::open(&db).unwrap());
    let r = ActivityReader::open(&db);
    r.check().unwrap();
    assert_eq!(r.sessions_in_range(&TimeRange::all(), 100).unwrap().len(), 6);
    assert_eq!(r.events_of_session(1, 100).unwrap().len(), 1);
}

#[test]
fn latest_breaks_a_tie_of_start_times_by_the_highest_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    w.start_session(&session(Some(1), 5_000)).unwrap();
    let second = w.start_session(&session(Some(2), 5_000)).unwrap();
    w.start_session(&session(Some(3), 4_000)).unwrap();
    let latest = ActivityReader::open(&db).latest().unwrap().session.unwrap();
    assert_eq!((latest.id, latest.project_id), (second, Some(2)));
}

#[test]
fn sessions_of_project_are_that_projects_sessions_in_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&mut ActivityWriter::open(&db).unwrap());
    let r = ActivityReader::open(&db);
    let starts = |project, range: TimeRange, limit| -> Vec<i64> {
        r.sessions_of_project(project, &range, limit)
            .unwrap()
            .iter()
            .map(|s| s.start.timestamp_millis())
            .collect()
    };
    assert_eq!(starts(1, TimeRange::all(), 10), vec![1_000, 100_000, 500_000]);
    assert_eq!(starts(1, TimeRange::all(), 2), vec![1_000, 100_000]);
    assert_eq!(
        starts(1, TimeRange::between(at(1_000), at(500_000)), 10),
        vec![1_000, 100_000]
    );
    assert_eq!(starts(2, TimeRange::since(at(300_000)), 10), vec![400_000]);
    assert!(starts(99, TimeRange::all(), 10).is_empty());
}

#[test]
fn sessions_overlapping_are_the_ended_sessions_sharing_some_time_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    fill(&mut ActivityWriter::open(&db).unwrap());
    let r = ActivityReader::open(&db);
    let starts = |from, to| -> Vec<i64> {
        r.sessions_overlapping(&TimeRange::between(at(from), at(to)))
            .unwrap()
            .iter()
            .map(|s| s.start.timestamp_millis())
            .collect()
    };
    // [1_000, 61_000) ends exactly at 61_000: not overlapping [61_000, ..).
    assert_eq!(starts(61_000, 100_001), vec![100_000]);
    assert_eq!(
        starts(60_999, 100_000),
        vec![1_000],
        "a session starting at `to` is out"
    );
    // The open session (400_000..) never appears; the long one (500_000..900_000) overlaps from inside.
    assert_eq!(starts(350_000, 600_000), vec![500_000]);
    assert_eq!(starts(0, 1_000_000), vec![1_000, 100_000, 200_000, 300_000, 500_000]);
}

/// The overlapping sessions are read in two parts: those that started at most a day before the range, and
/// the longer ones (their own partial index, from schema 5). Sessions of every length around that day, and
/// ranges whose start falls a day after a session's, are found as every session is checked one by one; on a
/// file of schema 4 (no such index, a daemon of an older build keeps it) too, and by both reads.
#[test]
fn sessions_overlapping_find_those_longer_than_a_day_and_just_under_it() {
    const DAY: i64 = 86_400_000;
    for version in [4, SCHEMA.end_version()] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let options = activity_store::WriterOptions {
            open: store_core::OpenOptions {
                target_version: Some(version),
                ..store_core::OpenOptions::default()
            },
            ..activity_store::WriterOptions::default()
        };
        let mut w = ActivityWriter::open_with(&db, &options).unwrap();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: i64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as i64
        };
        let lengths = [
            -DAY,
            -1,
            0,
            1,
            60_000,
            DAY - 1,
            DAY,
            DAY + 1,
            DAY + 2,
            2 * DAY,
            30 * DAY,
        ];
        let mut sessions = Vec::new();
        for _ in 0..600 {
            let start = 10 * DAY + next(20 * DAY) / 60_000 * 60_000;
            let end = (next(12) > 0).then(|| start + lengths[next(lengths.len() as i64) as usize]);
            let id = w.start_session(&session(None, start)).unwrap();
            if let Some(end) = end {
                w.end_session(id, at(end)).unwrap();
            }
            sessions.push((id, start, end));
        }
        drop(w);
        let r = ActivityReader::open(&db);
        let mut ranges: Vec<(i64, i64)> = (0..150)
            .map(|_| {
                let from = 9 * DAY + next(40 * DAY) / 60_000 * 60_000;
                (from, from + [1, 60_000, DAY, 7 * DAY][next(4) as usize])
            })
            .collect();
        // A range starting a day (or a day and a minute) after a session did, each side of the boundary.
        for &(_, start, _) in sessions.iter().take(40) {
            ranges.push((start + DAY, start + DAY + 60_000));
            ranges.push((start + DAY + 60_000, start + DAY + 120_000));
        }
        let (mut found, mut long) = (0, 0);
        for (from, to) in ranges {
            let range = TimeRange::between(at(from), at(to));
            let expected: Vec<i64> = sessions
                .iter()
                .filter(|(_, start, end)| *start < to && end.is_some_and(|end| end > from))
                .map(|(id, _, _)| *id)
                .collect();
            let mut read: Vec<i64> = r.sessions_overlapping(&range).unwrap().iter().map(|s| s.id).collect();
            let mut spans: Vec<i64> = r
                .session_spans_overlapping(&range)
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect();
            read.sort_unstable();
            spans.sort_unstable();
            assert_eq!(read, expected, "schema {version}, [{from}, {to})");
            assert_eq!(spans, expected, "schema {version}, [{from}, {to})");
            found += expected.len();
            long += sessions
                .iter()
                .filter(|(id, start, end)| expected.contains(id) && *start < from - DAY && end.is_some())
                .count();
        }
        assert!(
            found > 1000 && long > 50,
            "the ranges hold sessions, long ones among them ({found}, {long})"
        );
    }
}
