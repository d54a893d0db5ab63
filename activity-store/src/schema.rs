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
//! *running* totals of the ended sessions: how many started before the bucket's end, and their seconds.
//! A session joins them when it ends (with its duration), in its start bucket and every later one; while
//! it is open, a report counts it from the session itself (there are few: the one the daemon records, and
//! those a crash left for recovery). Two triggers keep them, inside the very statement that ends a
//! session (the `UPDATE` that sets its end) or inserts one already ended (a copy, a tool), so every
//! write stays one atomic statement and the totals never disagree with the sessions at any commit: the
//! writer's `end_session` and a group's `EndSession` go through them (recovery at open, which may close
//! thousands of old sessions, sets `activity_totals_on_end` aside in its transaction and adds the same
//! amounts a bucket at a time: see `writer::recover_open_sessions`), and starting
//! a session or recording an event writes nothing more than before. An end adds to its bucket's row, or
//! creates it from the project's previous row when that update found none (`changes()` in a trigger
//! body counts the previous statement of that body: <https://sqlite.org/c3ref/changes.html>), then to any
//! later rows (a session that started long ago). Deleting a session (retention) changes no total; no
//! code changes a session's project or start, nor a session's end once set.
//!
//! A report over `[from, to)` is the difference of two rows per project, plus the open sessions started
//! there, plus the sessions of the two partial buckets at its edges (see `repo::totals_by_project`);
//! every time zone's day and week starts on a 15-minute boundary (offsets are multiples of 15 minutes),
//! so such ranges have no partial bucket at all. Retention deletes sessions, never totals: a report over
//! pruned history still counts them.
//!
//! No foreign keys: `activity_sessions.project_id` names a project in config.db (joined in the application),
//! and `activity_events.session_id` is kept exactly as the legacy file had it, NULL or pointing at a session
//! that no longer exists included. Retention deletes by time, not by cascade.

use store_core::{Compat, DerivedCheck, IdReference, Migration, Predecessor, Schema, Step, Tools};

/// `PRAGMA application_id` of activity.db: ASCII "SPLA".
pub const APPLICATION_ID: i32 = 0x5350_4C41;

/// The body of both triggers of migration 4 (a session that ends, one inserted already ended): the ended
/// session `NEW` added to its 15-minute bucket of start time (the bucket created from the one before it
/// when it has no row yet: inside a trigger, `changes()` counts the trigger's own last statement,
/// https://sqlite.org/c3ref/changes.html), then to every later bucket of its project, since each
/// bucket holds the running sum up to its end. Released text: never edited (see `Migration`).
macro_rules! add_ended_session_to_totals {
    () => {
        "BEGIN
    UPDATE activity_totals
    SET sessions = sessions + 1, seconds = seconds + IFNULL(NEW.duration_seconds, 0)
    WHERE has_project = (NEW.project_id IS NOT NULL) AND project_id = IFNULL(NEW.project_id, 0)
      AND bucket_ms = NEW.start_time_ms - (NEW.start_time_ms % 900000 + 900000) % 900000;
    INSERT INTO activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
    SELECT NEW.project_id IS NOT NULL, IFNULL(NEW.project_id, 0), b.bucket_ms,
        1 + IFNULL((SELECT t.sessions FROM activity_totals t
                    WHERE t.has_project = (NEW.project_id IS NOT NULL) AND t.project_id = IFNULL(NEW.project_id, 0)
                      AND t.bucket_ms < b.bucket_ms ORDER BY t.bucket_ms DESC LIMIT 1), 0),
        IFNULL(NEW.duration_seconds, 0)
        + IFNULL((SELECT t.seconds FROM activity_totals t
                  WHERE t.has_project = (NEW.project_id IS NOT NULL) AND t.project_id = IFNULL(NEW.project_id, 0)
                    AND t.bucket_ms < b.bucket_ms ORDER BY t.bucket_ms DESC LIMIT 1), 0)
    FROM (SELECT NEW.start_time_ms - (NEW.start_time_ms % 900000 + 900000) % 900000 AS bucket_ms) b
    WHERE changes() = 0;
    UPDATE activity_totals
    SET sessions = sessions + 1, seconds = seconds + IFNULL(NEW.duration_seconds, 0)
    WHERE has_project = (NEW.project_id IS NOT NULL) AND project_id = IFNULL(NEW.project_id, 0)
      AND bucket_ms > NEW.start_time_ms - (NEW.start_time_ms % 900000 + 900000) % 900000;
END;"
    };
}

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
    // Events name their session (a repair giving sessions smaller ids moves them too). Sessions name projects
    // of config.db, and so do the totals, which outlive the sessions retention prunes: a restore of config.db
    // never reuses one of their ids. (A total without a project holds 0.)
    id_references: &[
        IdReference::every_row("activity_events", "session_id", "activity.db", "activity_sessions"),
        IdReference::every_row("activity_sessions", "project_id", "config.db", "projects"),
        IdReference {
            table: "activity_totals",
            column: "project_id",
            only_where: Some("has_project = 1"),
            target_file: "config.db",
            target_table: "projects",
            moved_by: Some(crate::queries::MOVE_PROJECT_TOTALS),
        },
    ],
    // Written by the triggers of migration 4 when a session ends (see `queries::TOTALS_*`).
    derived_tables: &["activity_totals"],
    // A session deleted or changed where no trigger runs this build's code (the sqlite3 shell) leaves the
    // totals counting it: compared where nothing was pruned, and recounted there by `repair`.
    derived_check: Some(DerivedCheck {
        find: crate::repo::totals_disagreement,
        recount: crate::repo::recount_totals,
    }),
    // Events are only ever inserted (and pruned): never updated.
    append_only_tables: &["activity_events"],
    // A server upgraded before its daemon reads the file the older daemon keeps at schema 3: reports then
    // aggregate the sessions, as schema 3's readers did, until the daemon's upgrade adds the totals.
    readers_read_from: Some(TOTALS_VERSION - 1),
};

/// The version that adds `activity_totals` (migration 4): a reader of an older file aggregates the sessions.
pub(crate) const TOTALS_VERSION: u32 = 4;

/// The legacy combined database both activity.db and config.db were split from.
pub const LEGACY: Predecessor = Predecessor {
    file_name: "legacy.db",
    versions: (1, 3),
    converter: "migrate-split",
    converter_temp_prefix: ".split-tmp-",
    converter_rejects: "split-rejects.jsonl",
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
        // Additive: a new table and its triggers; a reader built for version 3 never names them and
        // aggregates sessions as before.
        compat: Compat::Additive,
        // The backfill: the totals `repo::rebuild_totals` computes, in SQL as this migration was released,
        // frozen here (a released migration never changes). Then the triggers that keep the totals.
        step: Step::Sql(concat!(
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
       SUM(ended) OVER running, SUM(seconds) OVER running
FROM (SELECT project_id IS NOT NULL AS has_project, IFNULL(project_id, 0) AS project_id,
             start_time_ms - (start_time_ms % 900000 + 900000) % 900000 AS bucket_ms,
             COUNT(*) AS ended, SUM(IFNULL(duration_seconds, 0)) AS seconds
      FROM activity_sessions
      WHERE end_time_ms IS NOT NULL
      GROUP BY 1, 2, 3)
WINDOW running AS (PARTITION BY has_project, project_id ORDER BY bucket_ms ROWS UNBOUNDED PRECEDING);
CREATE TRIGGER activity_totals_on_end AFTER UPDATE OF end_time_ms ON activity_sessions
WHEN OLD.end_time_ms IS NULL AND NEW.end_time_ms IS NOT NULL
",
            add_ended_session_to_totals!(),
            "
CREATE TRIGGER activity_totals_on_insert_ended AFTER INSERT ON activity_sessions
WHEN NEW.end_time_ms IS NOT NULL
",
            add_ended_session_to_totals!()
        )),
    },
    Migration {
        version: 5,
        name: "an index of the sessions longer than a day",
        // Additive: an index; a reader built for version 4 never names it. The sessions that overlap a
        // range are those that started at most a day before it (the start index) and these: a read of a
        // past week visits a week and a day of sessions, not every session that ended after it
        // (`queries::SESSIONS_OVERLAPPING`). Partial, so it holds only the rare long ones
        // (<https://sqlite.org/partialindex.html>).
        compat: Compat::Additive,
        step: Step::Sql(
            "CREATE INDEX activity_sessions_long ON activity_sessions (end_time_ms)
WHERE end_time_ms - start_time_ms > 86400000;",
        ),
    },
];
