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

/// Ends an open session: `?1` id, `?2` end time, `?3` how (`ended`, `recovered`). The duration is the time
/// from start to end rounded to the nearest second (halves up), never negative (a clock that stepped back
/// must not produce negative time in reports). Rounded, not cut: cutting lost half a second per session on
/// average, so a day of short sessions (window switches every few seconds) read 10-20% short in reports,
/// which sum them. Setting the end fires migration 4's `activity_totals_on_end`, which adds the session to
/// the running totals in this same statement.
pub const END_SESSION: &str = "UPDATE activity_sessions
SET end_time_ms = ?2, duration_seconds = MAX(0, (?2 - start_time_ms + 500) / 1000), end_reason = ?3
WHERE id = ?1 AND end_time_ms IS NULL";

/// Width of a bucket of `activity_totals`: 15 minutes, so that the start of a day or a week in any time
/// zone (every UTC offset in use is a whole number of quarter hours: +05:30, +05:45, +09:30, -03:30) is a
/// bucket boundary. Buckets are aligned on the Unix epoch. (Migration 4's triggers and backfill, and
/// `rebuild_totals`, compute buckets with this width.) The totals hold ended sessions; open ones are
/// counted from the sessions themselves ([`OPEN_TOTALS_BY_PROJECT`]).
pub const TOTALS_BUCKET_MS: i64 = 900_000;

/// Per project (NULL included), the seconds and sessions of the whole buckets `[?1, ?2)` (bucket
/// boundaries, or `i64::MIN`/`i64::MAX` for unbounded sides): the running totals of the last bucket
/// before `?2` minus those of the last bucket before `?1`. Projects without a session there are left out.
///
/// The projects are walked from the highest id down, one seek each on the primary key (a skip scan written
/// as a recursive CTE, <https://sqlite.org/lang_with.html#recursive_query_examples>); each seek lands on the
/// project's latest bucket, so the bucket before `?2` is usually on a page just read. Each bound's bucket is
/// one `MAX(bucket_ms)` on the key (the min/max optimization, one seek,
/// <https://sqlite.org/optoverview.html#minmax>), and its row one lookup of the whole key that reads both
/// columns. A project whose bucket before `?2` lies before `?1` (nothing in the range: most projects, for a
/// short range or an idle project) is left at that, before its other bound is looked for; the `?1 =
/// i64::MIN` side costs nothing (a CASE evaluates only the branch it takes, and a NULL key looks nothing
/// up). A handful of seeks per project, however long the history and whatever the range, all inside one
/// statement (the same walk as a loop of statements in Rust was measured 1.5x to 4x slower for bounded
/// ranges).
///
/// Joined, not read by scalar subqueries in the select list: SQLite copies a CTE's columns into the outer
/// query where they are used (it flattens the CTE), so a subquery named by both the filter and the result
/// ran once for each, and a subquery returns one column, so each bound cost a seek per column; that way
/// took 1.10x to 1.23x this one's time for six bounded ranges from three hours to half a year, and 0.87x to
/// 1.35x for all time in three runs (`cargo bench --bench report`, the last figure of its `ratio` lines).
/// `CROSS JOIN` keeps the projects the outer loop (<https://sqlite.org/optoverview.html#crossjoin>): the
/// totals in the outer loop would be every bucket read.
pub const TOTALS_FROM_BUCKETS: &str = "WITH RECURSIVE assigned(project_id) AS (
    SELECT (SELECT MAX(project_id) FROM activity_totals WHERE has_project = 1)
    UNION ALL
    SELECT (SELECT MAX(project_id) FROM activity_totals WHERE has_project = 1 AND project_id < assigned.project_id)
    FROM assigned WHERE assigned.project_id IS NOT NULL
),
projects(has_project, project_id) AS (
    SELECT 0, 0
    UNION ALL
    SELECT 1, project_id FROM assigned WHERE project_id IS NOT NULL
)
SELECT CASE WHEN p.has_project THEN p.project_id END,
    upto.seconds - IFNULL(earlier.seconds, 0),
    upto.sessions - IFNULL(earlier.sessions, 0)
FROM projects p
CROSS JOIN activity_totals upto
    ON upto.has_project = p.has_project AND upto.project_id = p.project_id
    AND upto.bucket_ms = (SELECT MAX(t.bucket_ms) FROM activity_totals t
        WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?2)
    AND upto.bucket_ms >= ?1
LEFT JOIN activity_totals earlier
    ON earlier.has_project = p.has_project AND earlier.project_id = p.project_id
    AND earlier.bucket_ms = CASE WHEN ?1 = -9223372036854775808 THEN NULL ELSE (SELECT MAX(t.bucket_ms) FROM activity_totals t
        WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?1) END
WHERE upto.sessions > IFNULL(earlier.sessions, 0)";

/// The ended sessions still stored that started in `[?1, ?2)` (one bucket of the totals): fewer than the
/// totals count there means retention pruned some of them. Index: `activity_sessions_start`.
pub const ENDED_SESSIONS_STORED: &str = "SELECT COUNT(*) FROM activity_sessions
WHERE start_time_ms >= ?1 AND start_time_ms < ?2 AND end_time_ms IS NOT NULL";

/// Per project, the sessions still open that started in `[?1, ?2)` and the seconds their rows hold (none,
/// but a legacy file may hold one): what the totals, which hold ended sessions, do not count yet. Index:
/// `activity_sessions_end`, whose NULL end is open sessions only (the one the daemon records, and those
/// a stopped writer left for recovery).
pub const OPEN_TOTALS_BY_PROJECT: &str = "SELECT project_id, SUM(IFNULL(duration_seconds, 0)), COUNT(*)
FROM activity_sessions
WHERE end_time_ms IS NULL AND start_time_ms >= ?1 AND start_time_ms < ?2
GROUP BY project_id";

/// [`OPEN_TOTALS_BY_PROJECT`] for project `?1` alone, `[?2, ?3)`. Index: `activity_sessions_end`.
pub const OPEN_TOTAL_OF_PROJECT: &str = "SELECT IFNULL(SUM(IFNULL(duration_seconds, 0)), 0), COUNT(*)
FROM activity_sessions
WHERE end_time_ms IS NULL AND project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3";

/// The running totals of project (`?1` has_project, `?2` project_id) at its last bucket before `?3`
/// (sessions, seconds): its sessions that started before `?3`, a bucket boundary. Index: the primary key,
/// one seek.
pub const TOTALS_BEFORE: &str = "SELECT sessions, seconds FROM activity_totals
WHERE has_project = ?1 AND project_id = ?2 AND bucket_ms < ?3
ORDER BY bucket_ms DESC
LIMIT 1";

/// Moves the running totals of projects given new ids (`temp.renumbered`: old, new, written by
/// `store_core::renumber`) to their new ids, adding each old id's running totals to the new id's: at every
/// bucket of either, the last value of each at or before it. Moved row by row, two running totals would
/// interleave (a report reads the differences between them) or meet in one bucket (the key refuses it): the
/// daemon records a project under its old id while config.db is a copy from before the repair, and its time
/// under the new id is already there. Index: the primary key, one seek per bucket and id.
pub const MOVE_PROJECT_TOTALS: &str = "CREATE TEMP TABLE moved_totals AS
SELECT DISTINCT m.new AS project_id, t.bucket_ms,
       IFNULL((SELECT o.sessions FROM activity_totals o
               WHERE o.has_project = 1 AND o.project_id = m.old AND o.bucket_ms <= t.bucket_ms
               ORDER BY o.bucket_ms DESC LIMIT 1), 0)
     + IFNULL((SELECT n.sessions FROM activity_totals n
               WHERE n.has_project = 1 AND n.project_id = m.new AND n.bucket_ms <= t.bucket_ms
               ORDER BY n.bucket_ms DESC LIMIT 1), 0) AS sessions,
       IFNULL((SELECT o.seconds FROM activity_totals o
               WHERE o.has_project = 1 AND o.project_id = m.old AND o.bucket_ms <= t.bucket_ms
               ORDER BY o.bucket_ms DESC LIMIT 1), 0)
     + IFNULL((SELECT n.seconds FROM activity_totals n
               WHERE n.has_project = 1 AND n.project_id = m.new AND n.bucket_ms <= t.bucket_ms
               ORDER BY n.bucket_ms DESC LIMIT 1), 0) AS seconds
FROM temp.renumbered m
JOIN activity_totals t ON t.has_project = 1 AND t.project_id IN (m.old, m.new)
WHERE EXISTS (SELECT 1 FROM activity_totals WHERE has_project = 1 AND project_id = m.old);
DELETE FROM activity_totals
WHERE has_project = 1
  AND (project_id IN (SELECT old FROM temp.renumbered) OR project_id IN (SELECT project_id FROM temp.moved_totals));
INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
SELECT 1, project_id, bucket_ms, sessions, seconds FROM temp.moved_totals;
DROP TABLE temp.moved_totals;";

/// The ended sessions in the running totals' key order, as `rebuild_totals` sums them: project (no project
/// first, as `(0, 0)` sorts first in the totals' key), then start. Index: `activity_sessions_project`, whose
/// order this is, so nothing is sorted (EXPLAIN QUERY PLAN: no "USE TEMP B-TREE"), and memory does not grow
/// with the history (a sort of every bucket would be held in memory on an encrypted file, where temporary
/// storage is).
pub const ENDED_SESSIONS_BY_PROJECT: &str = "SELECT project_id, start_time_ms, IFNULL(duration_seconds, 0)
FROM activity_sessions INDEXED BY activity_sessions_project
WHERE end_time_ms IS NOT NULL
ORDER BY project_id, start_time_ms";

pub const CLEAR_TOTALS: &str = "DELETE FROM activity_totals";

/// The earliest moment from which no session was pruned: the least, over the ended sessions held, of the
/// later of each one's start and end. Retention deletes only sessions that started and ended before its
/// cutoff and keeps every other, so each session held started or ended at or after the cutoff, and the
/// cutoff is at most this; a session that started at or after it was never pruned. NULL without an ended
/// session. Reads every session (no index holds the later of the two).
pub const UNPRUNED_SINCE: &str =
    "SELECT MIN(MAX(start_time_ms, end_time_ms)) FROM activity_sessions WHERE end_time_ms IS NOT NULL";

/// When the last salvage (provenance event `?1`) wrote the file: it may keep the totals of sessions it could
/// not read (the damaged file's totals, read whole), so what started before it is not compared.
pub const LAST_SALVAGE: &str = "SELECT MAX(at_ms) FROM provenance WHERE event = ?1";

/// The ended sessions that started at `?1` or later, in the running totals' key order (no project first,
/// then by project, then start), as [`ENDED_SESSIONS_BY_PROJECT`] reads all of them. Index:
/// `activity_sessions_project`.
pub const ENDED_SESSIONS_SINCE: &str = "SELECT project_id, start_time_ms, duration_seconds
FROM activity_sessions INDEXED BY activity_sessions_project
WHERE end_time_ms IS NOT NULL AND start_time_ms >= ?1
ORDER BY project_id, start_time_ms";

/// Every row of the running totals, in key order (the primary key's: nothing is sorted).
pub const TOTALS_IN_KEY_ORDER: &str = "SELECT has_project, project_id, bucket_ms, sessions, seconds
FROM activity_totals ORDER BY has_project, project_id, bucket_ms";

/// The running totals of the buckets from `?1` on, recounted after them.
pub const CLEAR_TOTALS_SINCE: &str = "DELETE FROM activity_totals WHERE bucket_ms >= ?1";

/// Whether this connection's temporary storage is on disk (1, `FILE`): then SQLite's sorter spills to
/// files, and a sort costs no memory to speak of (<https://sqlite.org/pragma.html#pragma_temp_store>).
pub const TEMP_STORE: &str = "PRAGMA temp_store";

/// Every running total from the ended sessions, in one statement: the sessions grouped per project and
/// bucket, then summed in bucket order per project by a window function
/// (<https://sqlite.org/windowfunctions.html>). The groups come out ordered as the window reads them (the
/// inner ORDER BY is the GROUP BY's own order, free), so SQLite sorts once, not twice: 0.75 s -> 0.63 s
/// over 565k sessions (EXPLAIN QUERY PLAN: no "USE TEMP B-TREE FOR ORDER BY"). That one sort holds every
/// bucket: `rebuild_totals` runs this only where it spills to files.
pub const INSERT_TOTALS_SORTED: &str =
    "INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
SELECT has_project, project_id, bucket_ms,
       SUM(ended) OVER running, SUM(seconds) OVER running
FROM (SELECT project_id IS NOT NULL AS has_project, IFNULL(project_id, 0) AS project_id,
             start_time_ms - (start_time_ms % 900000 + 900000) % 900000 AS bucket_ms,
             COUNT(*) AS ended, SUM(IFNULL(duration_seconds, 0)) AS seconds
      FROM activity_sessions
      WHERE end_time_ms IS NOT NULL
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3)
WINDOW running AS (PARTITION BY has_project, project_id ORDER BY bucket_ms ROWS UNBOUNDED PRECEDING)";

/// One bucket of the running totals, written in key order.
pub const INSERT_TOTALS_ROW: &str =
    "INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Sessions still open, each with the time of its last event (NULL without events). Index:
/// `activity_sessions_end` (open sessions are its NULL end, first in the index) and, per session,
/// `activity_events_session` read backwards for the latest event.
pub const OPEN_SESSIONS: &str = "SELECT s.id, s.start_time_ms,
    (SELECT MAX(e.timestamp_ms) FROM activity_events e WHERE e.session_id = s.id)
FROM activity_sessions s
WHERE s.end_time_ms IS NULL
ORDER BY s.id";

/// The exact text of migration 4's `activity_totals_on_end` as the file holds it, so that recovery can set
/// the trigger aside for its transaction and put back the very same trigger.
pub const END_TRIGGER_SQL: &str =
    "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'activity_totals_on_end'";

pub const DROP_END_TRIGGER: &str = "DROP TRIGGER activity_totals_on_end";

/// What the sessions `?1` (a JSON array of ids, just ended) add to the running totals, per project and
/// bucket: how many and their seconds, in key order. The amounts `activity_totals_on_end` adds one session
/// at a time, summed.
pub const ENDED_BY_BUCKET: &str = "SELECT project_id IS NOT NULL, IFNULL(project_id, 0),
       start_time_ms - (start_time_ms % 900000 + 900000) % 900000, COUNT(*), SUM(IFNULL(duration_seconds, 0))
FROM activity_sessions
WHERE id IN (SELECT value FROM json_each(?1))
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3";

/// Adds bucket `?3` of project (`?1` has_project, `?2` project_id) holding the running totals before it
/// (`?4` sessions, `?5` seconds), unless the project has that bucket already.
pub const INSERT_TOTALS_BUCKET: &str =
    "INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT DO NOTHING";

/// Adds `?5` sessions and `?6` seconds to the buckets of project (`?1`, `?2`) in `[?3, ?4)`. Index: the
/// primary key, one range.
pub const ADD_TO_TOTALS: &str = "UPDATE activity_totals SET sessions = sessions + ?5, seconds = seconds + ?6
WHERE has_project = ?1 AND project_id = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4";

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

/// Ended sessions whose `$columns` overlap `[?1, ?2)` (started before `?2`, ended after `?1`), in two parts
/// each bounded by the range, not by the history after it: those that started at most a day before `?1`
/// (index `activity_sessions_start`, both bounds), and the longer ones (the partial index
/// `activity_sessions_long` of migration 5, which holds only sessions longer than a day; the second part's
/// WHERE names its condition, which is what lets the planner use it:
/// <https://sqlite.org/partialindex.html#queries_using_partial_indexes>; the unary `+` keeps it off the
/// start index, which the ORDER BY would otherwise draw it to, for every session before the range:
/// <https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_>). The two parts
/// share no session (the first starts at or after `?1` less a day, the second before). On a file without
/// that index (a daemon of an older build keeps it) the second part searches `activity_sessions_end`, at
/// what the whole read cost before. `?1 - 86400000` of the smallest integer is a REAL, still below every start
/// (<https://sqlite.org/lang_expr.html>, "integer overflow").
macro_rules! sessions_overlapping {
    ($columns:expr) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM activity_sessions
WHERE start_time_ms >= ?1 - 86400000 AND start_time_ms < ?2 AND end_time_ms > ?1
UNION ALL
SELECT ",
            $columns,
            " FROM activity_sessions
WHERE end_time_ms - start_time_ms > 86400000 AND end_time_ms > ?1 AND +start_time_ms < ?1 - 86400000"
        )
    };
}

/// Ended sessions whose time overlaps `[?1, ?2)`, oldest first (see `sessions_overlapping!` for the two
/// parts and their indexes).
pub const SESSIONS_OVERLAPPING: &str = concat!(
    sessions_overlapping!(session_columns!()),
    "\nORDER BY start_time_ms, id"
);

/// As [`SESSIONS_OVERLAPPING`], only what a sum of the time tracked in an interval needs (no titles or
/// URLs read over a year of history), in no order (the caller sorts starts and ends apart).
pub const SESSION_SPANS_OVERLAPPING: &str = sessions_overlapping!("id, project_id, start_time_ms, end_time_ms");

/// Events of session `?1` in time order, at most `?2`. Index: `activity_events_session`.
pub const EVENTS_OF_SESSION: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM activity_events
WHERE session_id = ?1
ORDER BY timestamp_ms, id
LIMIT ?2"
);

/// Time and session count per `project_id` (NULL included) of the sessions that started in `[?1, ?2)`, by
/// aggregating the sessions themselves: what reports ran before `activity_totals`, and now only over the
/// partial buckets at a range's edges (at most 15 minutes of sessions each). Index:
/// `activity_sessions_start`, which covers the query (start, project, duration): no table reads.
pub const TOTALS_BY_PROJECT: &str = "SELECT project_id, SUM(COALESCE(duration_seconds, 0)), COUNT(*)
FROM activity_sessions
WHERE start_time_ms >= ?1 AND start_time_ms < ?2
GROUP BY project_id
ORDER BY project_id";

/// Time and session count of project `?1` alone, sessions started in `[?2, ?3)` (the edges of a range, as
/// for [`TOTALS_BY_PROJECT`]). Index:
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

/// One retention chunk: up to `?2` events older than `?1`, but never the last event of an open session: a
/// session open longer than retention is ended at its last event by the recovery after a crash
/// (`OPEN_SESSIONS`), and without it at its start, 0 s. Each candidate is tested on its own (its session by
/// primary key; if open, a later event of it by `activity_events_session`, whose entries end in the rowid),
/// so a step costs what it walks: its budget, plus at most one kept event per open session (the last events
/// of all open sessions found first cost 90 ms a step beside 100 000 open sessions; this, 0.9 ms). Walk:
/// `activity_events_timestamp`.
pub const PRUNE_EVENTS: &str = "DELETE FROM activity_events WHERE id IN
(SELECT ev.id FROM activity_events ev WHERE ev.timestamp_ms < ?1
   AND NOT EXISTS (SELECT 1 FROM activity_sessions s WHERE s.id = ev.session_id AND s.end_time_ms IS NULL
     AND NOT EXISTS (SELECT 1 FROM activity_events e2 WHERE e2.session_id = ev.session_id
       AND (e2.timestamp_ms, e2.id) > (ev.timestamp_ms, ev.id)))
 LIMIT ?2)";

/// One retention chunk: up to `?2` sessions that started and ended before `?1`; open sessions
/// (`end_time_ms IS NULL`) never match. Index: `activity_sessions_end` (its range skips open sessions,
/// whose NULL end sorts first and never satisfies `<`).
pub const PRUNE_SESSIONS: &str = "DELETE FROM activity_sessions WHERE id IN
(SELECT id FROM activity_sessions WHERE start_time_ms < ?1 AND end_time_ms < ?1 LIMIT ?2)";

/// Pages on the free list: what `incremental_vacuum` can return to the file system.
pub const FREELIST_COUNT: &str = "PRAGMA freelist_count";

/// Pages in the database file.
pub const PAGE_COUNT: &str = "PRAGMA page_count";

/// The most pages one incremental-vacuum step returns to the file system (512 KiB at 4 KiB pages): each
/// step is its own short write transaction, so the daemon is never held up for a whole file's worth. Each
/// page returned moves a live page from the end of the file into a free one: with the daemon recording at
/// full speed, a step of 128 pages took 12.7-13.6 ms, of 256 pages 17-22 ms, of 500 pages 22 ms (the file of
/// `benches/prune-pause.sh` with its rows pruned, 37 000 free pages), against a 20 ms goal for the longest
/// pause.
pub const VACUUM_STEP_PAGES: u32 = 128;

/// One incremental-vacuum step of at most `pages` pages
/// (<https://sqlite.org/pragma.html#pragma_incremental_vacuum>; a pragma takes no bound parameter).
pub fn incremental_vacuum(pages: u32) -> String {
    format!("PRAGMA incremental_vacuum({pages})")
}
