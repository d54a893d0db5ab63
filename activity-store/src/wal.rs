//! The writer's checkpoint policy: only a writable connection can checkpoint, so the daemon owns the WAL.
//!
//! Three layers (<https://sqlite.org/wal.html#ckpt>):
//! 1. SQLite's autocheckpoint (a PASSIVE checkpoint at the commit that takes the WAL past
//!    [`WalPolicy::autocheckpoint_pages`]), and `journal_size_limit` (store_core), which truncates the
//!    `-wal` file back to 16 MiB whenever the WAL is reset. In normal operation nothing else is needed.
//! 2. Every [`WalPolicy::check_every_commits`] commits the writer stats the `-wal` file (metadata only: the
//!    file is never opened, which would drop SQLite's POSIX locks). Above the soft limit it runs its own
//!    PASSIVE checkpoint: the WAL outgrew what autocheckpointing keeps it to.
//! 3. Above the hard limit it escalates to TRUNCATE with a short busy timeout, so a reader holding an old
//!    snapshot (which no checkpoint can get past) makes it give up after that timeout instead of stalling
//!    the daemon for the normal busy timeout. The outcome is recorded in [`WalStatus`]
//!    (`pinned_by_reader`, `escalations`). Automatic escalations are at least
//!    [`WalPolicy::escalation_interval`] apart, so a reader that keeps its snapshot for minutes costs the
//!    daemon at most `escalation_busy_timeout` per interval (2% with the defaults), not one timeout per check.
//! 4. While a reader holds the WAL still (a checkpoint copied no further than the one before it), the writer
//!    stops SQLite's autocheckpoint (`wal_autocheckpoint = 0`) and tries its own PASSIVE checkpoint at most
//!    once per [`WalPolicy::escalation_interval`]; the first one that copies more turns autocheckpointing back
//!    on. A checkpoint tried past such a reader copies nothing, yet SQLite first sorts the index of every
//!    frame not copied back yet (`walCheckpoint` in sqlite3.c builds its iterator before it looks at the
//!    readers' marks): with a reader that opened before the writer's first commit (a database browser left
//!    open, a report started on a quiet daemon), every commit past 1000 pages paid that, growing with the WAL,
//!    and the daemon went from 8,600 commits/s to 1,000/s in 20 s and about 200/s after a minute. Readers
//!    that come and go, each pinning for a moment, let each checkpoint copy further: autocheckpointing stays
//!    on for them (paused at the first pinned checkpoint, the WAL grew to 1 GB between two tries).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;
use store_core::checkpoint::{self, CheckpointMode, CheckpointResult};
use store_core::open_database::JOURNAL_SIZE_LIMIT;

/// When the writer checkpoints on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalPolicy {
    /// `PRAGMA wal_autocheckpoint` (pages; SQLite's default is 1000, about 4 MiB at 4 KiB pages).
    pub autocheckpoint_pages: u32,
    /// Stat the `-wal` file after this many commits (a batch or group commit counts as one).
    pub check_every_commits: u32,
    /// Above this size the writer runs a PASSIVE checkpoint.
    pub soft_limit_bytes: u64,
    /// Above this size the writer runs a TRUNCATE checkpoint with `escalation_busy_timeout`.
    pub hard_limit_bytes: u64,
    /// How long a TRUNCATE checkpoint waits for readers on old snapshots before giving up.
    pub escalation_busy_timeout: Duration,
    /// Least time between two automatic escalations (an explicit `maintain_wal` always escalates).
    pub escalation_interval: Duration,
    /// How long checkpoints must copy no further before a reader is taken to hold the WAL still and SQLite's
    /// autocheckpoint is paused (layer 4). Readers that come and go hold it for moments.
    pub held_still_after: Duration,
}

impl Default for WalPolicy {
    fn default() -> Self {
        WalPolicy {
            autocheckpoint_pages: 1000,
            check_every_commits: 64,
            // A reset truncates the file to journal_size_limit: larger means no reset happened for that long.
            soft_limit_bytes: JOURNAL_SIZE_LIMIT as u64,
            hard_limit_bytes: 4 * JOURNAL_SIZE_LIMIT as u64,
            escalation_busy_timeout: Duration::from_millis(100),
            escalation_interval: Duration::from_secs(5),
            held_still_after: Duration::from_secs(1),
        }
    }
}

/// What the writer knows about its WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalStatus {
    /// Size of the `-wal` file at the last check.
    pub wal_bytes: u64,
    /// The last checkpoint the writer ran itself (autocheckpoints are not seen).
    pub last_checkpoint: Option<CheckpointResult>,
    /// Checkpoints the writer ran itself.
    pub checkpoints: u64,
    /// TRUNCATE escalations (the WAL was past the hard limit).
    pub escalations: u64,
    /// The last checkpoint could not get past a reader's snapshot: some reader keeps a read transaction
    /// open (a statement not reset, a transaction not ended), and the WAL cannot be reset until it ends.
    pub pinned_by_reader: bool,
    /// SQLite's autocheckpoint is off while a reader holds the WAL still (the writer tries its own checkpoint
    /// once per [`WalPolicy::escalation_interval`] instead), until a checkpoint copies more.
    pub autocheckpoint_paused: bool,
    /// The last automatic check failed (after a committed write, so the write itself succeeded).
    pub last_error: Option<String>,
}

/// The policy and its bookkeeping, owned by the writer.
#[derive(Debug)]
pub(crate) struct WalKeeper {
    policy: WalPolicy,
    status: WalStatus,
    commits_since_check: u32,
    last_escalation: Option<Instant>,
    /// When a checkpoint was last tried while autocheckpointing was paused (layer 4).
    last_pinned_try: Option<Instant>,
    /// Since when checkpoints have copied no further (None while they progress).
    held_since: Option<Instant>,
}

impl WalKeeper {
    pub(crate) fn new(policy: WalPolicy) -> WalKeeper {
        WalKeeper {
            policy,
            status: WalStatus::default(),
            commits_since_check: 0,
            last_escalation: None,
            last_pinned_try: None,
            held_since: None,
        }
    }

    pub(crate) fn policy(&self) -> &WalPolicy {
        &self.policy
    }

    pub(crate) fn status(&self) -> &WalStatus {
        &self.status
    }

    /// Counts a commit; every `check_every_commits` runs [`maintain`](Self::maintain). A failure is
    /// recorded in the status, not returned: the commit it follows has succeeded and must be reported so.
    pub(crate) fn after_commit(&mut self, conn: &Connection, db: &Path, normal_busy: Duration) {
        self.commits_since_check += 1;
        if self.commits_since_check >= self.policy.check_every_commits
            && let Err(e) = self.maintain(conn, db, normal_busy, false)
        {
            self.status.last_error = Some(
                store_core::Error::from_sqlite(db, e)
                    .with_schema(&crate::SCHEMA)
                    .to_string(),
            );
        }
    }

    /// Stats the WAL and checkpoints as the policy says; `explicit` (a caller asked) ignores the
    /// escalation interval.
    pub(crate) fn maintain(
        &mut self,
        conn: &Connection,
        db: &Path,
        normal_busy: Duration,
        explicit: bool,
    ) -> rusqlite::Result<()> {
        self.commits_since_check = 0;
        let bytes = checkpoint::wal_bytes(db);
        self.status.wal_bytes = bytes;
        let may_escalate = explicit
            || self
                .last_escalation
                .is_none_or(|t| t.elapsed() >= self.policy.escalation_interval);
        if bytes > self.policy.hard_limit_bytes && may_escalate {
            self.status.escalations += 1;
            self.last_escalation = Some(Instant::now());
            self.checkpoint_with_timeout(conn, db, CheckpointMode::Truncate, normal_busy)?;
        } else if bytes > self.policy.soft_limit_bytes && (explicit || self.may_try_past_reader()) {
            self.checkpoint(conn, db, CheckpointMode::Passive)?;
        }
        self.status.last_error = None;
        Ok(())
    }

    /// Runs one checkpoint now and records it.
    pub(crate) fn checkpoint(
        &mut self,
        conn: &Connection,
        db: &Path,
        mode: CheckpointMode,
    ) -> rusqlite::Result<CheckpointResult> {
        let result = checkpoint::checkpoint(conn, mode)?;
        self.record(conn, db, result)?;
        Ok(result)
    }

    /// A blocking checkpoint (RESTART/TRUNCATE) that waits at most `escalation_busy_timeout` for readers,
    /// then puts the normal busy timeout back whatever happened.
    pub(crate) fn checkpoint_with_timeout(
        &mut self,
        conn: &Connection,
        db: &Path,
        mode: CheckpointMode,
        normal_busy: Duration,
    ) -> rusqlite::Result<CheckpointResult> {
        use store_core::open_database::busy_timeout_within_limit;
        conn.busy_timeout(busy_timeout_within_limit(self.policy.escalation_busy_timeout))?;
        let result = checkpoint::checkpoint(conn, mode);
        conn.busy_timeout(busy_timeout_within_limit(normal_busy))?;
        let result = result?;
        self.record(conn, db, result)?;
        Ok(result)
    }

    /// Whether a checkpoint may be tried now: always, unless autocheckpointing is paused (layer 4) and the
    /// last try was less than an escalation interval ago.
    fn may_try_past_reader(&mut self) -> bool {
        if !self.status.autocheckpoint_paused {
            return true;
        }
        let due = self
            .last_pinned_try
            .is_none_or(|t| t.elapsed() >= self.policy.escalation_interval);
        if due {
            self.last_pinned_try = Some(Instant::now());
        }
        due
    }

    fn record(&mut self, conn: &Connection, db: &Path, result: CheckpointResult) -> rusqlite::Result<()> {
        self.status.checkpoints += 1;
        // PASSIVE never waits: frames it could not copy are behind some reader's snapshot. RESTART and
        // TRUNCATE report busy when a reader outlasted the timeout.
        self.status.pinned_by_reader = result.busy || result.checkpointed_frames < result.wal_frames;
        // Held still: checkpoints of the same WAL have copied no further (SQLite's own, in between, copy only
        // forward) for `held_still_after`. Not at the first that copies nothing: a reader that began while
        // the WAL was empty reads the file alone and pins all of it, for a moment as often as for minutes, and
        // at full speed two checkpoints are a few milliseconds apart.
        let before = self.status.last_checkpoint.replace(result);
        let copied_further = before
            .is_none_or(|b| b.wal_frames > result.wal_frames || result.checkpointed_frames > b.checkpointed_frames);
        if !self.status.pinned_by_reader || copied_further {
            self.held_since = None;
        } else if self.held_since.is_none() {
            self.held_since = Some(Instant::now());
        }
        let held_still = self
            .held_since
            .is_some_and(|t| t.elapsed() >= self.policy.held_still_after);
        self.status.wal_bytes = checkpoint::wal_bytes(db);
        if held_still != self.status.autocheckpoint_paused {
            let pages = if held_still {
                0
            } else {
                self.policy.autocheckpoint_pages
            };
            conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {pages}"))?;
            self.status.autocheckpoint_paused = held_still;
        }
        Ok(())
    }
}
