//! The server's view of activity.db: read-only, pooled, and unable to write (it has no write method, and
//! its connections are opened `SQLITE_OPEN_READ_ONLY` by `store_core::ReadPool`).
//!
//! Each method is one short read transaction that ends before it returns, with its rows collected into a
//! `Vec`: nothing handed out keeps a statement or snapshot alive, so no reader pins the daemon's WAL
//! (<https://sqlite.org/wal.html#ckpt>). It works the same whether the daemon is running, stopped or crashed
//! (a crashed daemon's `-wal` is read as it is). A file the daemon has not created yet is
//! `Error::Missing`, and the reader never creates it.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store_core::{DataVersion, ReadPool, Result};

use crate::SCHEMA;
use crate::repo::{self, Event, LastIds, Latest, ProjectTotal, Session, TimeRange};

/// A cheap token that changes whenever activity.db changes: compare with [`ActivityReader::changed_since`]
/// instead of re-reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeToken {
    /// Changes on every commit by anyone (`PRAGMA data_version` on the pool's watcher connection).
    pub data_version: DataVersion,
    /// The highest ids when the token was taken: what is new since is `id > last`.
    pub last: LastIds,
}

/// Read-only access to activity.db for processes that do not own it.
#[derive(Debug)]
pub struct ActivityReader {
    pool: ReadPool,
}

impl ActivityReader {
    /// A reader for activity.db at `path`. Touches nothing: the file may not exist yet (reads then fail
    /// with `Error::Missing` until the daemon creates it).
    pub fn open(path: &Path) -> Result<ActivityReader> {
        Ok(ActivityReader {
            pool: ReadPool::new(path, &SCHEMA)?,
        })
    }

    /// A reader for `data_dir/activity.db`.
    pub fn open_in(data_dir: &Path) -> Result<ActivityReader> {
        Self::open(&SCHEMA.path_in(data_dir))
    }

    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// Checks now that the file exists, is activity.db, and is at the schema this build reads.
    pub fn check(&self) -> Result<()> {
        self.pool.check()
    }

    /// Sessions that started in `range`, oldest first, at most `limit` of them (a page: to read on, ask
    /// again from the last one's start and skip the ids already seen).
    pub fn sessions_in_range(&self, range: &TimeRange, limit: u32) -> Result<Vec<Session>> {
        self.pool.read(|c| repo::sessions_in_range(c, range, limit))
    }

    /// Sessions of one project that started in `range`, oldest first, at most `limit`. A project deleted
    /// from config.db keeps its sessions here: they are still found by its id.
    pub fn sessions_of_project(&self, project_id: i64, range: &TimeRange, limit: u32) -> Result<Vec<Session>> {
        self.pool
            .read(|c| repo::sessions_of_project(c, project_id, range, limit))
    }

    /// Every ended session whose time overlaps `[from, to)` (it started before `to` and ended after
    /// `from`), oldest first; open sessions are not included. Unlimited: the range bounds the answer, and
    /// the end-time index bounds the cost to the sessions that ended after `from`.
    pub fn sessions_overlapping(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Session>> {
        self.pool.read(|c| repo::sessions_overlapping(c, from, to))
    }

    /// Events of one session in time order, at most `limit`.
    pub fn events_of_session(&self, session_id: i64, limit: u32) -> Result<Vec<Event>> {
        self.pool.read(|c| repo::events_of_session(c, session_id, limit))
    }

    /// Seconds and session counts per `project_id` (one row per distinct value, `None` included, ordered
    /// with `None` first) of the sessions that started in `range`, aggregated by SQLite inside activity.db.
    /// Project names live in config.db: the application joins them.
    pub fn totals_by_project(&self, range: &TimeRange) -> Result<Vec<ProjectTotal>> {
        self.pool.read(|c| repo::totals_by_project(c, range))
    }

    /// Seconds and session count of one project's sessions that started in `range` (0 and 0 if it has
    /// none), read through the project index rather than by aggregating every project.
    pub fn total_of_project(&self, project_id: i64, range: &TimeRange) -> Result<ProjectTotal> {
        self.pool.read(|c| repo::total_of_project(c, project_id, range))
    }

    /// The session that started last and the latest event.
    pub fn latest(&self) -> Result<Latest> {
        self.pool.read(repo::latest)
    }

    /// The current [`ChangeToken`].
    pub fn change_token(&self) -> Result<ChangeToken> {
        // data_version first: a commit landing between the two reads makes the ids newer than the version,
        // which the next poll sees as a change (one extra re-read, never a missed one).
        let data_version = self.pool.data_version()?;
        let last = self.pool.read(repo::last_ids)?;
        Ok(ChangeToken { data_version, last })
    }

    /// `None` if nothing was committed since `token` was taken (one `PRAGMA data_version`, no table read);
    /// otherwise the new token, whose `last` ids tell what was added.
    pub fn changed_since(&self, token: &ChangeToken) -> Result<Option<ChangeToken>> {
        let data_version = self.pool.data_version()?;
        if data_version == token.data_version {
            return Ok(None);
        }
        let last = self.pool.read(repo::last_ids)?;
        Ok(Some(ChangeToken { data_version, last }))
    }
}
