//! config.db's schema: the server's projects, domains, calendar keywords and subscriptions, calendar
//! events and settings.
//!
//! Every legacy column keeps its name and meaning, except times: INTEGER Unix epoch milliseconds UTC, in
//! columns renamed `*_ms`. Ids are the legacy ids (AUTOINCREMENT: never reused, so a project id kept in
//! activity.db or in a calendar event never comes to mean another project).
//!
//! Foreign keys, with explicit ON DELETE:
//! - a deleted project takes its domains and calendar keywords (CASCADE), as the legacy schema declared;
//! - a deleted subscription takes its calendar events (CASCADE), as the legacy schema declared;
//! - a deleted project does NOT touch calendar events: `calendar_events.project_id` is a plain column, like
//!   `activity_sessions.project_id`, and reports show such events under "deleted project N", never drop them.
//!
//! Duplicates: the legacy code let a project carry the same domain (or keyword) twice. Here
//! `UNIQUE (project_id, domain)` and `UNIQUE (project_id, keyword)` make that impossible; migrate-split
//! reports each legacy duplicate (and writes it to the rejects file) instead of hiding it.
//!
//! Domains: legacy rows are kept exactly as written (`GitHub.com`); new ones are stored normalized
//! (`config_store::normalize_domain`). Host names are case-insensitive, so lookups compare with
//! `COLLATE NOCASE`, served by an index with the same collation.
//!
//! `settings.secret` marks values that are credentials; no value is ever printed either way.

use store_core::{Compat, IdReference, Migration, Predecessor, Schema, Step, Tools};

/// `PRAGMA application_id` of config.db: ASCII "SPLC".
pub const APPLICATION_ID: i32 = 0x5350_4C43;

/// config.db, owned by the server.
pub static SCHEMA: Schema = Schema {
    file_name: "config.db",
    owner: "the server",
    tools: Tools {
        program: "splitstore",
        owner_subcommand: "server",
    },
    application_id: APPLICATION_ID,
    migrations: MIGRATIONS,
    incremental_vacuum: false,
    // The user's configuration never silently restarts empty.
    may_start_empty: false,
    predecessor: Some(LEGACY),
    // Its own tables' references, moved with the ids a repair gives a table out of them (activity.db names
    // projects too: see its schema).
    id_references: &[
        IdReference::every_row("project_domains", "project_id", "config.db", "projects"),
        IdReference::every_row("project_calendar_keywords", "project_id", "config.db", "projects"),
        IdReference::every_row("calendar_events", "project_id", "config.db", "projects"),
        IdReference::every_row(
            "calendar_events",
            "subscription_id",
            "config.db",
            "calendar_subscriptions",
        ),
    ],
    derived_tables: &[],
    derived_check: None,
    append_only_tables: &[],
    // A daemon upgraded before its server reads the file the older server keeps at schema 2: calendar
    // events are then read as schema 2's readers read them, until the server's upgrade adds the index.
    readers_read_from: Some(LONG_EVENTS_VERSION - 1),
};

/// The version that adds `calendar_events_long` (migration 3): a reader of an older file reads events
/// without it.
pub(crate) const LONG_EVENTS_VERSION: u32 = 3;

/// The legacy combined database config.db (and activity.db) were split from.
const LEGACY: Predecessor = Predecessor {
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
        name: "projects, calendars and settings",
        compat: Compat::Breaking,
        step: Step::Sql(
            "CREATE TABLE projects (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    color         TEXT,
    created_at_ms INTEGER,
    archived      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE project_domains (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    domain     TEXT NOT NULL,
    UNIQUE (project_id, domain)
);
CREATE TABLE project_calendar_keywords (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    keyword    TEXT NOT NULL,
    UNIQUE (project_id, keyword)
);
CREATE TABLE calendar_subscriptions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    url               TEXT NOT NULL,
    color             TEXT,
    last_synced_at_ms INTEGER,
    enabled           INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE calendar_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES calendar_subscriptions(id) ON DELETE CASCADE,
    uid             TEXT NOT NULL,
    title           TEXT,
    start_time_ms   INTEGER NOT NULL,
    end_time_ms     INTEGER,
    project_id      INTEGER
);
CREATE TABLE settings (
    key           TEXT PRIMARY KEY NOT NULL,
    value         TEXT,
    updated_at_ms INTEGER,
    secret        INTEGER NOT NULL DEFAULT 0
);",
        ),
    },
    Migration {
        version: 2,
        name: "indexes for lookups and reports",
        compat: Compat::Additive,
        step: Step::Sql(
            "CREATE INDEX project_domains_domain ON project_domains (domain COLLATE NOCASE);
CREATE INDEX calendar_events_subscription ON calendar_events (subscription_id);
CREATE INDEX calendar_events_start ON calendar_events (start_time_ms);
CREATE INDEX calendar_events_project ON calendar_events (project_id, start_time_ms);",
        ),
    },
    Migration {
        version: 3,
        name: "an index of the calendar events longer than a day",
        // Additive: an index; a reader built for version 2 never names it. The events that overlap a range
        // are those that started at most a day before it (the start index) and these: a read of a past
        // week visits a week and a day of events, not every event since the first one
        // (`calendar::queries::EVENTS_OVERLAPPING`). Partial, so it holds only the rare long ones
        // (<https://sqlite.org/partialindex.html>).
        compat: Compat::Additive,
        step: Step::Sql(
            "CREATE INDEX calendar_events_long ON calendar_events (end_time_ms)
WHERE end_time_ms - start_time_ms > 86400000;",
        ),
    },
];
