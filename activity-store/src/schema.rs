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
//! No foreign keys: `activity_sessions.project_id` names a project in config.db (joined in the application),
//! and `activity_events.session_id` is kept exactly as the legacy file had it, NULL or pointing at a session
//! that no longer exists included. Retention deletes by time, not by cascade.

use store_core::{Compat, IdReference, Migration, Predecessor, Schema, Step, Tools};

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
    // Sessions name projects of config.db: a restore of config.db never reuses one of their ids.
    id_references: &[IdReference {
        table: "activity_sessions",
        column: "project_id",
        target_file: "config.db",
        target_table: "projects",
    }],
};

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
];
