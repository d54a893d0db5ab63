//! Every hot statement uses the index it was written for (`EXPLAIN QUERY PLAN` on a real, filled file).

mod common;

use activity_store::{ActivityWriter, queries};
use common::*;
use store_core::testing::query_plan as plan;

fn filled() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    for s in 0..50 {
        let id = w.start_session(&session(Some(s % 5), s * 60_000)).unwrap();
        let batch: Vec<_> = (0..20)
            .map(|i| event(Some(id), "focus", s * 60_000 + i * 1000))
            .collect();
        w.record_batch(&batch).unwrap();
        w.end_session(id, at(s * 60_000 + 30_000)).unwrap();
    }
    drop(w);
    let conn = read_only(&db);
    (dir, conn)
}

#[track_caller]
fn assert_plan(conn: &rusqlite::Connection, sql: &str, expected: &[&str]) {
    let lines = plan(conn, sql);
    for want in expected {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "plan of\n{sql}\nis\n{}\nwhich lacks `{want}`",
            lines.join("\n")
        );
    }
    for line in &lines {
        assert!(
            !line.starts_with("SCAN activity_") || line.contains("USING"),
            "full table scan in the plan of\n{sql}:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn sessions_in_range_searches_the_start_index() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::SESSIONS_IN_RANGE,
        &["SEARCH activity_sessions USING INDEX activity_sessions_start (start_time_ms>? AND start_time_ms<?)"],
    );
}

#[test]
fn totals_by_project_is_covered_by_the_start_index() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::TOTALS_BY_PROJECT,
        &[
            "SEARCH activity_sessions USING COVERING INDEX activity_sessions_start (start_time_ms>? AND start_time_ms<?)",
        ],
    );
}

#[test]
fn events_of_session_search_the_session_index_in_order() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::EVENTS_OF_SESSION,
        &["SEARCH activity_events USING INDEX activity_events_session (session_id=?)"],
    );
    let lines = plan(&c, queries::EVENTS_OF_SESSION);
    assert!(
        !lines.iter().any(|l| l.contains("TEMP B-TREE")),
        "the index already gives time order: {lines:?}"
    );
}

#[test]
fn latest_reads_one_row_from_each_time_index() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::LATEST_EVENT,
        &["SCAN activity_events USING INDEX activity_events_timestamp"],
    );
    let lines = plan(&c, queries::LATEST_EVENT);
    assert!(!lines.iter().any(|l| l.contains("TEMP B-TREE")), "no sort: {lines:?}");
    assert_plan(
        &c,
        queries::LATEST_SESSION,
        &[
            "SEARCH activity_sessions USING COVERING INDEX activity_sessions_start",
            "SEARCH activity_sessions USING INDEX activity_sessions_start (start_time_ms=?)",
        ],
    );
}

#[test]
fn last_ids_seek_the_rowid_trees() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::LAST_IDS,
        &["SEARCH activity_sessions", "SEARCH activity_events"],
    );
}

#[test]
fn prune_chunks_find_their_rows_through_the_time_indexes() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::PRUNE_EVENTS,
        &[
            "SEARCH ev USING INDEX activity_events_timestamp (timestamp_ms<?)",
            // Per candidate: its session, and (open) a later event of it, never a scan of either table.
            "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)",
            "SEARCH e2 USING COVERING INDEX activity_events_session (session_id=? AND timestamp_ms>?)",
        ],
    );
    assert_plan(
        &c,
        queries::PRUNE_SESSIONS,
        &["SEARCH activity_sessions USING INDEX activity_sessions_end (end_time_ms<?)"],
    );
}

#[test]
fn sessions_of_project_search_the_project_index_in_order() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::SESSIONS_OF_PROJECT,
        &[
            "SEARCH activity_sessions USING INDEX activity_sessions_project (project_id=? AND start_time_ms>? AND start_time_ms<?)",
        ],
    );
    let lines = plan(&c, queries::SESSIONS_OF_PROJECT);
    assert!(!lines.iter().any(|l| l.contains("TEMP B-TREE")), "no sort: {lines:?}");
}

#[test]
fn one_projects_total_searches_the_project_index() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::TOTAL_OF_PROJECT,
        &[
            "SEARCH activity_sessions USING INDEX activity_sessions_project (project_id=? AND start_time_ms>? AND start_time_ms<?)",
        ],
    );
}

/// A range's overlapping sessions: those started from a day before it to its end, on the start index (both
/// bounds), and the longer ones on their own partial index; never all that ended after the range's start
/// (the end index, as before schema 5: 150 ms for a day a year back, `cargo bench --bench report`).
#[test]
fn sessions_overlapping_search_the_start_index_and_the_long_sessions() {
    let (_dir, c) = filled();
    for sql in [queries::SESSIONS_OVERLAPPING, queries::SESSION_SPANS_OVERLAPPING] {
        assert_plan(
            &c,
            sql,
            &[
                "SEARCH activity_sessions USING INDEX activity_sessions_start (start_time_ms>? AND start_time_ms<?)",
                "SEARCH activity_sessions USING INDEX activity_sessions_long (end_time_ms>?)",
            ],
        );
    }
}

#[test]
fn the_totals_are_read_through_their_primary_key() {
    let (_dir, c) = filled();
    assert_plan(
        &c,
        queries::TOTALS_BEFORE,
        &["SEARCH activity_totals USING PRIMARY KEY (has_project=? AND project_id=? AND bucket_ms<?)"],
    );
    // The skip scan over projects (one seek per project), each bound's bucket (one seek each), and that
    // bucket's row, both its columns, by one lookup of the whole key (not one subquery per column).
    assert_plan(
        &c,
        queries::TOTALS_FROM_BUCKETS,
        &[
            "SEARCH activity_totals USING PRIMARY KEY (has_project=? AND project_id<?)",
            "SEARCH t USING PRIMARY KEY (has_project=? AND project_id=? AND bucket_ms<?)",
            "SEARCH upto USING PRIMARY KEY (has_project=? AND project_id=? AND bucket_ms=?)",
            "SEARCH earlier USING PRIMARY KEY (has_project=? AND project_id=? AND bucket_ms=?)",
        ],
    );
    // Open sessions, which the totals do not hold yet: the NULL end of the end index.
    assert_plan(
        &c,
        queries::OPEN_TOTALS_BY_PROJECT,
        &["SEARCH activity_sessions USING INDEX activity_sessions_end (end_time_ms=?)"],
    );
    assert_plan(
        &c,
        queries::OPEN_TOTAL_OF_PROJECT,
        &["SEARCH activity_sessions USING INDEX"],
    );
    for sql in [queries::TOTALS_BEFORE, queries::TOTALS_FROM_BUCKETS] {
        let lines = plan(&c, sql);
        assert!(!lines.iter().any(|l| l.contains("TEMP B-TREE")), "no sort: {lines:?}");
        assert!(
            !lines.iter().any(|l| ["activity_totals", "t", "upto", "earlier"]
                .iter()
                .any(|t| l.starts_with(&format!("SCAN {t}")))),
            "no scan of the totals: {lines:?}"
        );
    }
}
