//! activity.db's schema: the daemon's sessions and events.
//!
//! Every legacy column keeps its name and meaning, except times: INTEGER Unix epoch milliseconds UTC, in
//! columns renamed `*_ms` (`start_time` -> `start_time_ms`, `timestamp` -> `timestamp_ms`). Ids are the
//! legacy ids (AUTOINCREMENT, as in the legacy file, so an id is never reused after a prune and a dangling
//! reference can never come to point at a new row).
//!
//! `end_reason` says how a session ended: NULL while it is open, `ended` by its writer, `recovered` when a
//! later writer closed it because the one that opened it stopped without ending it (a crash, `kill -9`, a
//! power loss, a forced reboot): see `ActivityWriter`'s recovery at open.
//!
//! `activity_totals` keeps, per project (`has_project` 0 with `project_id` 0 for sessions with no project:
//! a key column cannot be NULL in a `WITHOUT ROWID` table, and a NULL is never equal to another in a UNIQUE
//! key) and per 15-minute bucket of start time (`bucket_ms`, a multiple of 900 000 ms since the epoch, UTC),
//! *running* totals: the sessions that started before the bucket's end and the seconds of those that
//! ended. A session counts in `sessions` from its start, and its duration joins `seconds` when it ends.
//! A report over `[from, to)` is the difference of two rows per project, plus the sessions of the two
//! partial buckets at its edges (see `repo::totals_by_project`); every time zone's day and week starts on
//! a 15-minute boundary (offsets are multiples of 15 minutes), so such ranges have no partial bucket at
//! all. Retention deletes sessions, never totals: a report over pruned history still counts them.
//!
//! No foreign keys: `activity_sessions.project_id` names a project in config.db (joined in the application),
//! and `activity_events.session_id` is kept exactly as the legacy file had it, NULL or pointing at a session
//! that no longer exists included. Retention deletes by time, not by cascade.

use store_core::{Compat, Migration, Predecessor, Schema, Step, Tools};

/// `PRAGMA application_id` of activity.db: ASCII "SPLA".
pub const APPLICATION_ID: i32 = 0x5350_4C41;

/// activity.db, owned by the daemon.
pub static SCHEMA: Schema = Schema {
    file_name: "activity.db",
    owner: "the daemon",
    tools: Tools {
        program: "splitstore",
        owner_subcommand: "daemon",
    },
    application_id: APPLICATION_ID,
    migrations: MIGRATIONS,
    incremental_vacuum: true,
    // Recorded activity may restart empty after damage with no backup, when the operator asks for it.
    may_start_empty: true,
    predecessor: Some(LEGACY),
};

/// The legacy combined database both activity.db and config.db were split from.
pub const LEGACY: Predecessor = Predecessor {
    file_name: "legacy.db",
    versions: (1, 3),
    converter: "migrate-split",
};

/// Released migrations: never edit one (its checksum is recorded in every file); add a new one instead.
static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sessions and events",
        compat: Compat::Breaking,
        step: Step::Sql(
            "CREATE TABLE activity_sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app              TEXT NOT NULL,
    title            TEXT,
    url              TEXT,
    domain           TEXT,
    project_id       INTEGER,
    start_time_ms    INTEGER NOT NULL,
    end_time_ms      INTEGER,
    duration_seconds INTEGER,
    is_idle          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE activity_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id   INTEGER,
    event_type   TEXT NOT NULL,
    app          TEXT,
    title        TEXT,
    url          TEXT,
    timestamp_ms INTEGER NOT NULL,
    idle_seconds INTEGER
);",
        ),
    },
    Migration {
        version: 2,
        name: "indexes for the hot reads",
        compat: Compat::Additive,
        step: Step::Sql(
            "CREATE INDEX activity_sessions_start ON activity_sessions (start_time_ms, project_id, duration_seconds);
CREATE INDEX activity_sessions_project ON activity_sessions (project_id, start_time_ms);
CREATE INDEX activity_sessions_end ON activity_sessions (end_time_ms);
CREATE INDEX activity_events_session ON activity_events (session_id, timestamp_ms);
CREATE INDEX activity_events_timestamp ON activity_events (timestamp_ms);",
        ),
    },
    Migration {
        version: 3,
        name: "how a session ended",
        // Additive: a reader built for version 2 reads the file as before (it never names this column).
        compat: Compat::Additive,
        step: Step::Sql(
            "ALTER TABLE activity_sessions ADD COLUMN end_reason TEXT;
UPDATE activity_sessions SET end_reason = 'ended' WHERE end_time_ms IS NOT NULL;",
        ),
    },
    Migration {
        version: 4,
        name: "running totals per project in 15-minute buckets",
        // Additive: a new table; a reader built for version 3 never names it and aggregates sessions as before.
        compat: Compat::Additive,
        // The backfill is `queries::REBUILD_TOTALS` as it was when this migration was released, frozen here
        // (a released migration never changes; the query may).
        step: Step::Sql(
            "CREATE TABLE activity_totals (
    has_project INTEGER NOT NULL,
    project_id  INTEGER NOT NULL,
    bucket_ms   INTEGER NOT NULL,
    sessions    INTEGER NOT NULL,
    seconds     INTEGER NOT NULL,
    PRIMARY KEY (has_project, project_id, bucket_ms)
) WITHOUT ROWID;
INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
SELECT has_project, project_id, bucket_ms,
       SUM(started) OVER running, SUM(seconds) OVER running
FROM (SELECT project_id IS NOT NULL AS has_project, IFNULL(project_id, 0) AS project_id,
             start_time_ms - (start_time_ms % 900000 + 900000) % 900000 AS bucket_ms,
             COUNT(*) AS started, SUM(IFNULL(duration_seconds, 0)) AS seconds
      FROM activity_sessions
      GROUP BY 1, 2, 3)
WINDOW running AS (PARTITION BY has_project, project_id ORDER BY bucket_ms ROWS UNBOUNDED PRECEDING);",
        ),
    },
];
