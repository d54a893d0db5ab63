//! The server's view of activity.db: read-only, pooled, and unable to write (it has no write method, and
//! its connections are opened `SQLITE_OPEN_READ_ONLY` by `store_core::ReadPool`).
//!
//! Each method is one short read transaction that ends before it returns, with its rows collected into a
//! `Vec`: nothing handed out keeps a statement or snapshot alive, so no reader pins the daemon's WAL
//! (<https://sqlite.org/wal.html#ckpt>). It works the same whether the daemon is running, stopped or crashed
//! (a crashed daemon's `-wal` is read as it is). A file the daemon has not created yet is
//! `Error::Missing`, and the reader never creates it.

use std::path::Path;

use store_core::{ChangeToken, ReadPool, Result, TimeRange};

use crate::SCHEMA;
use serde::Serialize;

use crate::repo::{self, EndReason, Event, LastIds, Latest, ProjectTotal, PrunedEdge, Session, SessionSpan};

/// What a session is now (see [`ActivityReader::session_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Ended by its writer.
    Ended,
    /// Closed by recovery: its writer stopped without ending it.
    Recovered,
    /// Open, and the daemon that records it runs.
    Live,
    /// Open, and no daemon runs: the next one to start closes it at its last event.
    AwaitingRecovery,
}

/// Read-only access to activity.db for processes that do not own it. Cheap to clone (clones share one
/// pool) and `Send + Sync`: hand a clone to every thread that reads.
///
/// ```
/// use activity_store::{ActivityReader, ActivityWriter, NewSession, TimeRange};
///
/// let dir = tempfile::tempdir()?;
/// let reader = ActivityReader::open_in(dir.path()); // touches nothing: the daemon may not have started
/// assert!(reader.totals_by_project(&TimeRange::all()).unwrap_err().is_not_ready());
///
/// let mut writer = ActivityWriter::open_in(dir.path())?;
/// let token = reader.change_token()?;
/// let start = chrono::Utc::now() - chrono::Duration::minutes(5);
/// let id = writer.start_session(&NewSession { project_id: Some(3), ..NewSession::new("editor", start) })?;
/// writer.end_session(id, start + chrono::Duration::minutes(2))?;
///
/// assert!(reader.changed_since(&token)?.is_some(), "one PRAGMA tells a change, no table read");
/// let totals = reader.totals_by_project(&TimeRange::since(start))?;
/// assert_eq!((totals[0].project_id, totals[0].seconds), (Some(3), 120));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ActivityReader {
    pool: ReadPool,
}

impl ActivityReader {
    /// A reader for activity.db at `path`. Touches nothing: the file may not exist yet (reads then fail
    /// with an error whose `is_not_ready()` is true until the daemon creates it).
    pub fn open(path: &Path) -> ActivityReader {
        ActivityReader {
            pool: ReadPool::new(path, &SCHEMA),
        }
    }

    /// A reader for `data_dir/activity.db`.
    pub fn open_in(data_dir: &Path) -> ActivityReader {
        Self::open(&SCHEMA.path_in(data_dir))
    }

    /// [`open`](Self::open) for an encrypted activity.db: every connection is keyed with `key` (`None`:
    /// [`open`](Self::open)). A wrong key is `key_rejected` at the first read, never damage.
    pub fn open_with_key(path: &Path, key: Option<store_core::Key>) -> ActivityReader {
        ActivityReader {
            pool: ReadPool::with_key(path, &SCHEMA, key),
        }
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

    /// Every ended session whose time overlaps `range` (it started before its end and ended after its
    /// start), oldest first; open sessions are not included. Unlimited: the range bounds the answer, and
    /// its cost is the sessions that started from a day before it to its end, and those longer than a day
    /// (an index of its own, from schema 5), wherever in the history the range lies.
    pub fn sessions_overlapping(&self, range: &TimeRange) -> Result<Vec<Session>> {
        self.pool.read(|c| repo::sessions_overlapping(c, range))
    }

    /// The sessions [`sessions_overlapping`](Self::sessions_overlapping) returns, each as its id, project,
    /// start and end only, in no order: for summing the time tracked in many intervals at once (the
    /// calendar report), over months of history, without reading every title and URL.
    pub fn session_spans_overlapping(&self, range: &TimeRange) -> Result<Vec<SessionSpan>> {
        self.pool.read(|c| repo::session_spans_overlapping(c, range))
    }

    /// Events of one session in time order, at most `limit`.
    pub fn events_of_session(&self, session_id: i64, limit: u32) -> Result<Vec<Event>> {
        self.pool.read(|c| repo::events_of_session(c, session_id, limit))
    }

    /// Seconds and session counts per `project_id` (one row per project with a session that started in
    /// `range`, `None` included, ordered with `None` first). `sessions` counts every session that started
    /// in the range, open ones included; `seconds` sums the durations of those that ended (an open session
    /// counts 0 s until it ends). Project names live in config.db: the application joins them.
    ///
    /// Answered in about the same time at any history length: the writer keeps running totals per project
    /// in 15-minute buckets of start time (`activity_totals`, updated in the transaction that starts or
    /// ends a session), so the whole buckets of the range are two rows per project, and only the sessions
    /// of the partial buckets at its two edges are read one by one (through the start-time index). The
    /// answer is exact for any millisecond range; a range whose bounds are quarter hours (the start of a
    /// day or week in any time zone) has no partial bucket.
    ///
    /// **Totals outlive retention.** Pruning deletes sessions, never totals: whole buckets over pruned
    /// history still count the pruned sessions. Only a partial edge bucket is read from the sessions
    /// themselves, so in pruned history a bound that is not a quarter hour counts, in its edge bucket, only
    /// the sessions still stored.
    ///
    /// A file at schema 3, which a daemon of an older build keeps, has no totals: the same answer then
    /// comes from the sessions themselves (a scan of the range's sessions, as that build's readers did).
    pub fn totals_by_project(&self, range: &TimeRange) -> Result<Vec<ProjectTotal>> {
        self.pool
            .read_versioned(|c, version| repo::totals_by_project(c, range, version))
    }

    /// The edges of `range` (bounds not on a quarter hour) where [`totals_by_project`](Self::totals_by_project)
    /// and [`total_of_project`](Self::total_of_project) count fewer sessions than were recorded, because
    /// retention pruned some of the sessions of that quarter hour: a UI says so, or asks again with the
    /// bounds on quarter hours (exact, from the running totals). Empty when the answer is whole. A few seeks
    /// per project.
    pub fn pruned_at_edges(&self, range: &TimeRange) -> Result<Vec<PrunedEdge>> {
        self.pool
            .read_versioned(|c, version| repo::pruned_edges(c, range, version))
    }

    /// Seconds and session count of one project's sessions that started in `range` (0 and 0 if it has
    /// none), from the running totals as [`totals_by_project`](Self::totals_by_project) (same meaning,
    /// same retention rule), in a few seeks.
    pub fn total_of_project(&self, project_id: i64, range: &TimeRange) -> Result<ProjectTotal> {
        self.pool
            .read_versioned(|c, version| repo::total_of_project(c, project_id, range, version))
    }

    /// The session that started last and the latest event.
    pub fn latest(&self) -> Result<Latest> {
        self.pool.read(repo::latest)
    }

    /// A token that changes whenever anyone commits to activity.db (one `PRAGMA data_version`, no table
    /// read): keep it, and ask [`changed_since`](Self::changed_since) instead of re-reading.
    pub fn change_token(&self) -> Result<ChangeToken> {
        self.pool.change_token()
    }

    /// `None` if nothing was committed since `token` was taken; otherwise the new token.
    pub fn changed_since(&self, token: &ChangeToken) -> Result<Option<ChangeToken>> {
        self.pool.changed_since(token)
    }

    /// What a session is now, for a UI: ended (by its writer or by recovery), live (open, and the daemon
    /// runs), or waiting for recovery (open, and no daemon runs: the next one closes it at its last event).
    pub fn session_state(&self, session: &Session) -> Result<SessionState> {
        Ok(match session.end_reason {
            Some(EndReason::Ended) => SessionState::Ended,
            Some(EndReason::Recovered) => SessionState::Recovered,
            None if session.end.is_some() => SessionState::Ended,
            None => match store_core::OwnerLock::probe(self.path())? {
                store_core::LockState::Held { .. } => SessionState::Live,
                store_core::LockState::Free => SessionState::AwaitingRecovery,
            },
        })
    }

    /// The ids of config.db's projects a repair moved (they had run out), `(old, new)`, as this file records
    /// them: its rows name the new ones, and a config.db put back from before that repair still has the old.
    pub fn project_ids_moved(&self) -> Result<Vec<(i64, i64)>> {
        self.pool
            .read(|c| store_core::renumber::ids_moved(c, "config.db", "projects"))
    }

    /// The highest session and event ids: what is new since an earlier call is `id > last`.
    pub fn last_ids(&self) -> Result<LastIds> {
        self.pool.read(repo::last_ids)
    }
}
