//! [`ConfigReader`]: read-only access to config.db for processes that do not own it (the daemon asking
//! "which project owns this domain").
//!
//! It is a `store_core::ReadPool` (connections opened `SQLITE_OPEN_READ_ONLY`, each read one short
//! transaction that checks the file's kind and schema version first) and nothing else: it has no write
//! method, and no connection it could write through is reachable from it.
//!
//! ```compile_fail
//! # fn f(reader: &config_store::ConfigReader) {
//! reader.create_project(&config_store::NewProject::named("x")); // no such method on a reader
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use rusqlite::Connection;
use serde::de::DeserializeOwned;
use store_core::{ChangeToken, ReadPool, TimeRange};

use crate::SCHEMA;
use crate::calendar::{self, CalendarEvent, Subscription};
use crate::error::Result;
use crate::projects::{self, Project, ProjectSummary};
use crate::settings::{self, SettingInfo};

/// Read-only access to config.db. Cheap to clone (clones share one pool) and `Send + Sync`: hand a clone
/// to every thread that reads.
#[derive(Clone)]
pub struct ConfigReader {
    pool: ReadPool,
}

impl fmt::Debug for ConfigReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigReader").field("path", &self.pool.path()).finish()
    }
}

impl ConfigReader {
    /// A reader for `path` that touches nothing now (like `ActivityReader::open`): the server may not have
    /// created the file yet. Each read checks the file and reports `Missing`, `SchemaBehind`... until it is
    /// readable, so a daemon can start before the server and keep this one reader. Call
    /// [`check`](Self::check) to find out now.
    pub fn open(path: &Path) -> ConfigReader {
        ConfigReader {
            pool: ReadPool::new(path, &SCHEMA),
        }
    }

    /// [`open`](Self::open) on `<data_dir>/config.db`.
    pub fn open_in(data_dir: &Path) -> ConfigReader {
        ConfigReader::open(&SCHEMA.path_in(data_dir))
    }

    /// [`open`](Self::open) for an encrypted config.db: every connection is keyed with `key` (`None`:
    /// [`open`](Self::open)). A wrong key is `key_rejected` at the first read, never damage.
    pub fn open_with_key(path: &Path, key: Option<store_core::Key>) -> ConfigReader {
        ConfigReader {
            pool: ReadPool::with_key(path, &SCHEMA, key),
        }
    }

    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// Checks the file as a read would, without reading anything.
    pub fn check(&self) -> Result<()> {
        Ok(self.pool.check()?)
    }

    /// A token that changes whenever anyone commits to config.db (one `PRAGMA data_version`, no table
    /// read): cache what you read (say, domain lookups) and read again when
    /// [`changed_since`](Self::changed_since) says so.
    pub fn change_token(&self) -> Result<ChangeToken> {
        Ok(self.pool.change_token()?)
    }

    /// `None` if nothing was committed since `token` was taken; otherwise the new token.
    pub fn changed_since(&self, token: &ChangeToken) -> Result<Option<ChangeToken>> {
        Ok(self.pool.changed_since(token)?)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        Ok(self.pool.read(f)?)
    }

    /// As [`read`](Self::read), `f` told the file's schema version (this build's readers read config.db
    /// from schema 2 on: [`crate::SCHEMA`]'s `readers_read_from`).
    fn read_versioned<T>(&self, f: impl FnOnce(&Connection, u32) -> rusqlite::Result<T>) -> Result<T> {
        Ok(self.pool.read_versioned(f)?)
    }

    /// Every project, archived ones included, by id, each with its domains and keywords.
    pub fn projects(&self) -> Result<Vec<Project>> {
        self.read(projects::repo::projects)
    }

    /// Every project, archived ones included, by id, without domains and keywords: one query. What a
    /// report needs to name project ids and tell active from archived (an id missing here is deleted).
    pub fn project_summaries(&self) -> Result<Vec<ProjectSummary>> {
        self.read(projects::repo::project_summaries)
    }

    /// The project ids config.db may lack for a reason other than a deletion: left out by a restore of an
    /// older backup, or lost with a damaged page a salvage could not read. An id
    /// [`Self::project_summaries`] lacks is named by [`MissingIds::why`](store_core::provenance::MissingIds::why).
    pub fn project_ids_missing(&self) -> Result<store_core::provenance::MissingIds> {
        self.read(|c| store_core::provenance::missing_ids(c, "projects"))
    }

    /// One project with its domains and keywords.
    pub fn project(&self, id: i64) -> Result<Option<Project>> {
        self.read(|c| projects::repo::project(c, id))
    }

    /// id -> name of every project, archived ones included, in one query: what a report joins activity
    /// with. An id missing from it is a deleted project.
    pub fn project_names(&self) -> Result<HashMap<i64, String>> {
        self.read(projects::repo::project_names)
    }

    /// The project `host` belongs to: the most specific listed domain that is `host` or a parent of it,
    /// among non-archived projects, the lowest id when several list it (rules in [`crate::projects`]).
    /// `host` is compared case-insensitively, trailing dot ignored; `None` if no project lists it.
    pub fn project_for_domain(&self, host: &str) -> Result<Option<i64>> {
        let candidates = projects::lookup_candidates(host);
        if candidates.is_empty() {
            return Ok(None);
        }
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        self.read(|c| projects::repo::project_for_domain(c, &candidates))
    }

    /// Every calendar subscription, by id.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        self.read(calendar::repo::subscriptions)
    }

    pub fn subscription(&self, id: i64) -> Result<Option<Subscription>> {
        self.read(|c| calendar::repo::subscription(c, id))
    }

    /// Events of every subscription that overlap `range`, by start time. An event spans
    /// `[start_time, end_time)`; one without an end (or ending before it starts) is the instant
    /// `start_time`. Empty when the range is. Reads the events that started from a day before the range
    /// to its end, and those longer than a day: the time a range takes does not grow with the history
    /// before it (on a file of schema 2, kept by an older server, every event that started before the
    /// range's end is read, as that build read them).
    pub fn calendar_events_between(&self, range: &TimeRange) -> Result<Vec<CalendarEvent>> {
        self.read_versioned(|c, version| calendar::repo::events_between(c, range, version))
    }

    /// As [`calendar_events_between`](Self::calendar_events_between), only events attributed to
    /// `project_id` (which may be a deleted project's id).
    pub fn calendar_events_for_project(&self, project_id: i64, range: &TimeRange) -> Result<Vec<CalendarEvent>> {
        self.read_versioned(|c, version| calendar::repo::project_events_between(c, project_id, range, version))
    }

    /// The setting `key` decoded as `T`; `None` if it is not set (or holds SQL `NULL`). A value that does
    /// not decode as `T` is `Error::SettingType`, which never includes the value. Legacy plain-text values
    /// read as strings (see [`crate::settings`]).
    pub fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.read(|c| settings::repo::value(c, key))? {
            None => Ok(None),
            Some(stored) => settings::decode(self.path(), key, stored),
        }
    }

    /// Every setting's key, secret mark and update time (never a value), by key.
    pub fn setting_keys(&self) -> Result<Vec<SettingInfo>> {
        self.read(settings::repo::infos)
    }

    /// One setting's key, secret mark and update time (never its value).
    pub fn setting_info(&self, key: &str) -> Result<Option<SettingInfo>> {
        self.read(|c| settings::repo::info(c, key))
    }
}
