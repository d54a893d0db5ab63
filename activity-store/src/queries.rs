//! Every SQL statement activity-store runs, and nothing else.
//!
//! Public so that benches run exactly these texts against raw rusqlite and tests can `EXPLAIN QUERY PLAN`
//! them; applications use [`ActivityWriter`](crate::ActivityWriter) and [`ActivityReader`](crate::ActivityReader).
//! Each hot read names the index of [`SCHEMA`](crate::SCHEMA) it is written for; `tests/query_plans.rs`
//! asserts SQLite really uses it.

/// Columns of a session, in the order `repo` reads them.
macro_rules! session_columns {
    () => {
        "id, app, title, url, domain, project_id, start_time_ms, end_time_ms, duration_seconds, is_idle, end_reason"
    };
}

/// Columns of an event, in the order `repo` reads them.
macro_rules! event_columns {
    () => {
        "id, session_id, event_type, app, title, url, timestamp_ms, idle_seconds"
    };
}

pub const INSERT_SESSION: &str =
    "INSERT INTO activity_sessions (app, title, url, domain, project_id, start_time_ms, is_idle)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Ends an open session: `?1` id, `?2` end time, `?3` how (`ended`, `recovered`). The duration is whole
/// seconds from start to end, never negative (a clock that stepped back must not produce negative time in
/// reports).
pub const END_SESSION: &str = "UPDATE activity_sessions
SET end_time_ms = ?2, duration_seconds = MAX(0, (?2 - start_time_ms) / 1000), end_reason = ?3
WHERE id = ?1 AND end_time_ms IS NULL";

/// Sessions still open, each with the time of its last event (NULL without events). Index:
/// `activity_sessions_end` (open sessions are its NULL end, first in the index) and, per session,
/// `activity_events_session` read backwards for the latest event.
pub const OPEN_SESSIONS: &str = "SELECT s.id, s.start_time_ms,
    (SELECT MAX(e.timestamp_ms) FROM activity_events e WHERE e.session_id = s.id)
FROM activity_sessions s
WHERE s.end_time_ms IS NULL
ORDER BY s.id";

pub const INSERT_EVENT: &str =
    "INSERT INTO activity_events (session_id, event_type, app, title, url, timestamp_ms, idle_seconds)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Sessions that started in `[?1, ?2)`, oldest first, at most `?3`. Index: `activity_sessions_start`.
pub const SESSIONS_IN_RANGE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM activity_sessions
WHERE start_time_ms >= ?1 AND start_time_ms < ?2
ORDER BY start_time_ms, id
LIMIT ?3"
);

/// Sessions of project `?1` that started in `[?2, ?3)`, oldest first, at most `?4`. Index:
/// `activity_sessions_project` (project, then start: the index order is the result order, no sort).
pub const SESSIONS_OF_PROJECT: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM activity_sessions
WHERE project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3
ORDER BY start_time_ms, id
LIMIT ?4"
);

/// Ended sessions whose time overlaps `[?1, ?2)`: started before `?2`, ended after `?1`. Index:
/// `activity_sessions_end` on the end bound, so only sessions that ended after `?1` are visited (recent
/// ones, for a recent window), however long the history. The unary `+` keeps the planner off the start
/// index, whose bound (`start < ?2`) covers nearly all history
/// (https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_).
pub const SESSIONS_OVERLAPPING: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM activity_sessions
WHERE +start_time_ms < ?2 AND end_time_ms > ?1
ORDER BY +start_time_ms, id"
);

/// Events of session `?1` in time order, at most `?2`. Index: `activity_events_session`.
pub const EVENTS_OF_SESSION: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM activity_events
WHERE session_id = ?1
ORDER BY timestamp_ms, id
LIMIT ?2"
);

/// Time and session count per `project_id` (NULL included) of the sessions that started in `[?1, ?2)`.
/// Index: `activity_sessions_start`, which covers the query (start, project, duration): no table reads.
pub const TOTALS_BY_PROJECT: &str = "SELECT project_id, SUM(COALESCE(duration_seconds, 0)), COUNT(*)
FROM activity_sessions
WHERE start_time_ms >= ?1 AND start_time_ms < ?2
GROUP BY project_id
ORDER BY project_id";

/// Time and session count of project `?1` alone, sessions started in `[?2, ?3)`. Index:
/// `activity_sessions_project` (project, start): only that project's sessions in the range are visited.
pub const TOTAL_OF_PROJECT: &str = "SELECT COALESCE(SUM(COALESCE(duration_seconds, 0)), 0), COUNT(*)
FROM activity_sessions
WHERE project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3";

/// The session that started last (the highest id among those starting at that instant). Index:
/// `activity_sessions_start`, once for the latest start, once for the sessions at it; the sort is over
/// those few rows only (an `ORDER BY start_time_ms DESC, id DESC` would sort the whole table, as the index
/// holds `project_id` and `duration_seconds` between the two).
pub const LATEST_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM activity_sessions
WHERE start_time_ms = (SELECT MAX(start_time_ms) FROM activity_sessions)
ORDER BY id DESC
LIMIT 1"
);

/// The most recent event. Index: `activity_events_timestamp` (read backwards, one row).
pub const LATEST_EVENT: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM activity_events ORDER BY timestamp_ms DESC, id DESC LIMIT 1"
);

/// The highest session and event ids: two seeks to the end of each table's rowid b-tree.
pub const LAST_IDS: &str = "SELECT (SELECT MAX(id) FROM activity_sessions), (SELECT MAX(id) FROM activity_events)";

/// One retention chunk: up to `?2` events older than `?1`. Index: `activity_events_timestamp`.
pub const PRUNE_EVENTS: &str = "DELETE FROM activity_events WHERE id IN
(SELECT id FROM activity_events WHERE timestamp_ms < ?1 LIMIT ?2)";

/// One retention chunk: up to `?2` sessions that started and ended before `?1`; open sessions
/// (`end_time_ms IS NULL`) never match. Index: `activity_sessions_end` (its range skips open sessions,
/// whose NULL end sorts first and never satisfies `<`).
pub const PRUNE_SESSIONS: &str = "DELETE FROM activity_sessions WHERE id IN
(SELECT id FROM activity_sessions WHERE start_time_ms < ?1 AND end_time_ms < ?1 LIMIT ?2)";

/// Pages on the free list: what `incremental_vacuum` can return to the file system.
pub const FREELIST_COUNT: &str = "PRAGMA freelist_count";

/// Pages in the database file.
pub const PAGE_COUNT: &str = "PRAGMA page_count";

/// Pages one incremental-vacuum step returns to the file system (8 MiB at 4 KiB pages): each step is its
/// own short write transaction, so the daemon is never held up for a whole file's worth.
pub const VACUUM_STEP_PAGES: i64 = 2048;

/// One incremental-vacuum step of [`VACUUM_STEP_PAGES`] pages (<https://sqlite.org/pragma.html#pragma_incremental_vacuum>).
pub const INCREMENTAL_VACUUM_STEP: &str = "PRAGMA incremental_vacuum(2048)";
