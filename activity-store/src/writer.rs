//! The daemon's writer: the one connection allowed to write activity.db.
//!
//! # Durability
//! Every method that writes returns only after its transaction committed. activity.db runs in WAL mode
//! with `synchronous=NORMAL` (store_core), so a committed write survives the daemon's crash (`kill -9`,
//! a panic, an abort): the next open replays the WAL. It may be rolled back by a power loss or an OS crash
//! before the next checkpoint syncs the WAL (<https://sqlite.org/pragma.html#pragma_synchronous>); the file
//! is never corrupted either way. The [`GroupCommit`] buffer is the one exception, documented there.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use store_core::checkpoint::{CheckpointMode, CheckpointResult};
use store_core::time::to_ms;
use store_core::{OpenOptions, OwnerConnection, Result};

use crate::SCHEMA;
use crate::group_commit::{GroupCommit, GroupCommitPolicy, Pending};
use crate::repo::{self, EndReason, EventInserter, NewEvent, NewSession};
use crate::wal::{WalKeeper, WalPolicy, WalStatus};

/// The times activity.db keeps, in epoch milliseconds: the years RFC 3339 writes, 0000-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999Z (reports, `--from` and `--to` are written so). A time outside (chrono's
/// `DateTime::<Utc>::MIN_UTC` or `MAX_UTC`, a parse gone astray) is refused by every write rather than
/// stored: kept, it sat first or last in every report for good, and one session from chrono's first year to
/// its last counted 16 trillion seconds, a few hundred thousand of which overflowed the running totals into
/// a REAL that failed every report (inside these years that takes tens of millions of sessions of ten
/// thousand years each).
pub const STORABLE_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// Rows one retention transaction deletes at most: small enough that each chunk's pages fit in a few MiB
/// of WAL (which the autocheckpoint then resets), large enough that the per-transaction cost is noise.
pub const DEFAULT_PRUNE_CHUNK_ROWS: u32 = 5_000;

/// How [`ActivityWriter::open_with`] opens the file and maintains it.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The owner open (busy timeout, where pre-migration backups go).
    pub open: OpenOptions,
    pub wal: WalPolicy,
    /// Rows per retention transaction in [`ActivityWriter::prune_before`] (a daemon calling
    /// [`ActivityWriter::prune_step`] chooses its own budget per step).
    pub prune_chunk_rows: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            open: OpenOptions::default(),
            wal: WalPolicy::default(),
            prune_chunk_rows: DEFAULT_PRUNE_CHUNK_ROWS,
        }
    }
}

/// What one commit wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Committed {
    /// Ids of the events it recorded, in the order they were given.
    pub event_ids: Vec<i64>,
    /// Ids of the sessions it ended, in order (an end of a session that was not open is not listed).
    pub ended_sessions: Vec<i64>,
}

/// What the writer's open found and did about sessions a writer before it left open.
///
/// Only the owner writes activity.db, and its lock proves no other owner runs, so a session still open when
/// a writer opens the file was opened by a writer that is gone without ending it: a crash, `kill -9`, a
/// power loss, a forced reboot. Each is closed at the time of its last event (its start, if it has none),
/// with its duration computed as for any end, marked [`EndReason::Recovered`], all in one `BEGIN IMMEDIATE`
/// transaction (with a `recovery` provenance record), so a second open finds nothing to do. Without this,
/// such sessions would count 0 s in every report, be skipped by overlap queries, never be pruned, and pile
/// up over the years.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// The sessions closed, by id.
    pub sessions: Vec<RecoveredSession>,
}

/// One session closed by recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveredSession {
    pub id: i64,
    pub start: DateTime<Utc>,
    /// Its last event's time (or its start).
    pub end: DateTime<Utc>,
}

impl Recovery {
    /// Whether anything was recovered.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// From the earliest start to the latest end of the recovered sessions.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let from = self.sessions.iter().map(|s| s.start).min()?;
        let to = self.sessions.iter().map(|s| s.end).max()?;
        Some((from, to))
    }
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some((from, to)) = self.span() else {
            return write!(f, "no session was left open");
        };
        let ids: Vec<String> = self.sessions.iter().take(10).map(|s| s.id.to_string()).collect();
        let more = self.sessions.len().saturating_sub(ids.len());
        write!(
            f,
            "closed {} session(s) left open by a writer that stopped without ending them (ids {}{}), from {} to \
             {}, each at its last event",
            self.sessions.len(),
            ids.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// What one [`ActivityWriter::prune_step`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneStep {
    /// Nothing older than `before` is left to delete, and no free page is left to return: retention is
    /// complete until time moves on.
    pub done: bool,
    pub events_deleted: u64,
    pub sessions_deleted: u64,
    /// Pages returned to the file system by this step's incremental vacuum.
    pub pages_returned: u64,
    /// Write transactions it took: one, or two with a vacuum step.
    pub transactions: u64,
}

/// What [`ActivityWriter::prune_before`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub events_deleted: u64,
    pub sessions_deleted: u64,
    /// Write transactions it took (each at most `prune_chunk_rows` rows, plus one per vacuum step).
    pub transactions: u64,
    /// Pages in the file before and after (the difference went back to the file system).
    pub pages_before: i64,
    pub pages_after: i64,
    /// Free pages left after the incremental vacuum (0 unless something else holds them).
    pub freelist_after: i64,
    /// The closing TRUNCATE checkpoint, which hands the shrunk file to the file system.
    pub checkpoint: Option<CheckpointResult>,
}

/// The only writer of activity.db: holds the owner lock, one connection, cached statements, and the WAL.
///
/// A read-only process uses [`ActivityReader`](crate::ActivityReader) instead; nothing here is shared with it.
/// A daemon recording at a high rate turns it into a [`GroupCommit`] ([`into_group_commit`](Self::into_group_commit)).
///
/// ```
/// use activity_store::{ActivityWriter, NewEvent, NewSession};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = ActivityWriter::open_in(dir.path())?; // takes activity.db.lock, creates, migrates
/// let session = writer.start_session(&NewSession {
///     project_id: Some(7), // a project of config.db: joined in the application
///     ..NewSession::new("browser", chrono::Utc::now())
/// })?;
/// let event = writer.record_event(&NewEvent::new(Some(session), "focus", chrono::Utc::now()))?; // committed
/// assert!(writer.end_session(session, chrono::Utc::now())?);
///
/// // A second owner is refused, naming the holder.
/// let second = ActivityWriter::open_in(dir.path()).unwrap_err();
/// assert_eq!(second.locked_by().map(|h| h.pid), Some(std::process::id()));
/// # let _ = event;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ActivityWriter {
    owner: OwnerConnection,
    wal: WalKeeper,
    busy_timeout: Duration,
    prune_chunk_rows: u32,
    recovery: Recovery,
    /// When the counters were last recorded ([`COUNTERS_RECORD_INTERVAL`]).
    counters_recorded: Instant,
}

/// How often a writer records the counters it handed out while it runs, besides at its stop: after a crash,
/// a restore over the file (removed, or damaged where its counters are) raises past the ids acknowledged up
/// to the last record, not only up to the last clean stop, which for a daemon running for weeks is weeks
/// old. A record costs a small file written and fsynced (a few ms), once in this interval.
pub const COUNTERS_RECORD_INTERVAL: Duration = Duration::from_secs(10);

/// A stop records the counters handed out ([`OwnerConnection::record_counters`]), as does a commit once every
/// [`COUNTERS_RECORD_INTERVAL`]: a restore over an activity.db removed since never hands those event ids out
/// again (config.db keeps its record after every write; here that would cost every commit).
impl Drop for ActivityWriter {
    fn drop(&mut self) {
        self.owner.record_counters();
    }
}

impl ActivityWriter {
    /// Opens (creating if needed) activity.db at `path` as its owner, with default options. Fails with
    /// `Error::Locked` naming the owner's pid if another process (or handle) already owns it.
    pub fn open(path: &Path) -> Result<ActivityWriter> {
        Self::open_with(path, &WriterOptions::default())
    }

    /// Opens `data_dir/activity.db`.
    pub fn open_in(data_dir: &Path) -> Result<ActivityWriter> {
        Self::open(&SCHEMA.path_in(data_dir))
    }

    /// Opens with explicit options. Sessions a previous writer left open are closed now (see [`Recovery`]).
    pub fn open_with(path: &Path, options: &WriterOptions) -> Result<ActivityWriter> {
        let mut owner = OwnerConnection::open_with(path, &SCHEMA, &options.open)?;
        let pages = options.wal.autocheckpoint_pages.to_string();
        owner.configure("wal_autocheckpoint", &pages)?;
        let recovery = recover_open_sessions(&mut owner)?;
        Ok(ActivityWriter {
            owner,
            wal: WalKeeper::new(options.wal.clone()),
            busy_timeout: options.open.busy_timeout,
            prune_chunk_rows: options.prune_chunk_rows.max(1),
            recovery,
            counters_recorded: Instant::now(),
        })
    }

    /// What this open recovered: the sessions a previous writer left open, now closed.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn path(&self) -> &Path {
        self.owner.path()
    }

    /// The owner connection (its lock, open report, backups).
    pub fn owner(&self) -> &OwnerConnection {
        &self.owner
    }

    /// Confirms now, without writing, that the files are this owner's still (call it while idle:
    /// [`OwnerConnection::confirm_files`]).
    pub fn confirm_files(&mut self) -> Result<()> {
        self.owner.confirm_files()
    }

    /// Starts a session; returns its id. One INSERT in autocommit: atomic and committed on return. Reports
    /// count it from now on ([`ActivityReader::totals_by_project`](crate::ActivityReader::totals_by_project)
    /// counts open sessions from the sessions themselves; the running totals take it when it ends).
    pub fn start_session(&mut self, session: &NewSession) -> Result<i64> {
        self.check_time("start of the session", session.start)?;
        let id = self.owner.autocommit(|c| repo::insert_session(c, session))?;
        self.after_commit();
        Ok(id)
    }

    /// Ends open session `id` at `end`, setting `duration_seconds` (to the nearest second, never negative); the
    /// session and its duration join the running totals in the same statement (a trigger of the schema:
    /// one statement in autocommit, atomic, the totals included). Returns `false`,
    /// changing nothing, when no open session has that id (already ended, pruned, or never started).
    pub fn end_session(&mut self, id: i64, end: DateTime<Utc>) -> Result<bool> {
        self.check_time("end of the session", end)?;
        let ended = self
            .owner
            .autocommit(|c| repo::end_session(c, id, end, EndReason::Ended))?;
        self.after_commit();
        Ok(ended)
    }

    /// Records one event; returns its id once committed. It borrows the event, which is written before this
    /// returns ([`GroupCommit::push`] takes it by value: the group keeps it until it commits).
    /// A single INSERT needs no explicit transaction:
    /// in autocommit it is atomic and takes the write lock through the busy handler (BEGIN IMMEDIATE only
    /// matters for multi-statement transactions: <https://sqlite.org/rescode.html#busy_snapshot>).
    pub fn record_event(&mut self, event: &NewEvent) -> Result<i64> {
        self.check_time("time of the event", event.at)?;
        let id = self
            .owner
            .autocommit(|c| EventInserter::new(c).and_then(|mut ins| ins.insert(event)))?;
        self.after_commit();
        Ok(id)
    }

    /// Records `events` in one `BEGIN IMMEDIATE` transaction: all of them, or (on error) none.
    pub fn record_batch(&mut self, events: &[NewEvent]) -> Result<Committed> {
        if events.is_empty() {
            return Ok(Committed::default());
        }
        for event in events {
            self.check_time("time of the event", event.at)?;
        }
        let event_ids = self.owner.write(|tx| {
            let mut ins = EventInserter::new(tx)?;
            events
                .iter()
                .map(|e| ins.insert(e))
                .collect::<rusqlite::Result<Vec<i64>>>()
        })?;
        self.after_commit();
        Ok(Committed {
            event_ids,
            ended_sessions: Vec::new(),
        })
    }

    /// This writer with a group-commit buffer, for high event rates: see [`GroupCommit`].
    pub fn into_group_commit(self, policy: GroupCommitPolicy) -> GroupCommit {
        GroupCommit::new(self, policy)
    }

    /// Commits a group's operations, in order, in one `BEGIN IMMEDIATE` transaction (a lone event: one
    /// autocommit INSERT, which is atomic by itself).
    pub(crate) fn commit_group(&mut self, ops: &[Pending]) -> Result<Committed> {
        if let [Pending::Event(event)] = ops {
            let id = self
                .owner
                .autocommit(|c| EventInserter::new(c).and_then(|mut ins| ins.insert(event)))?;
            self.after_commit();
            return Ok(Committed {
                event_ids: vec![id],
                ended_sessions: Vec::new(),
            });
        }
        let committed = self.owner.write(|tx| {
            let mut committed = Committed::default();
            let mut ins = EventInserter::new(tx)?;
            for op in ops {
                match op {
                    Pending::Event(e) => committed.event_ids.push(ins.insert(e)?),
                    Pending::EndSession { id, end } => {
                        if repo::end_session(tx, *id, *end, EndReason::Ended)? {
                            committed.ended_sessions.push(*id);
                        }
                    }
                }
            }
            Ok(committed)
        })?;
        self.after_commit();
        Ok(committed)
    }

    /// Size of the `-wal` file now (metadata only).
    pub fn wal_bytes(&self) -> u64 {
        store_core::checkpoint::wal_bytes(self.owner.path())
    }

    /// The WAL as of the writer's last check.
    pub fn wal_status(&self) -> &WalStatus {
        self.wal.status()
    }

    /// The policy this writer runs.
    pub fn wal_policy(&self) -> &WalPolicy {
        self.wal.policy()
    }

    /// Checks the WAL now and checkpoints as the [`WalPolicy`] says, escalating past the hard limit
    /// whatever the `escalation_interval` (the writer also checks on its own every `check_every_commits`
    /// commits, respecting the interval). A reader pinning the WAL shows as `pinned_by_reader`.
    pub fn maintain_wal(&mut self) -> Result<&WalStatus> {
        let path = self.owner.path();
        self.wal
            .maintain(self.owner.conn(), path, self.busy_timeout, true)
            .map_err(|e| self.owner.error(e))?;
        Ok(self.wal.status())
    }

    /// Runs one checkpoint now. RESTART and TRUNCATE wait for readers at most the policy's
    /// `escalation_busy_timeout`.
    pub fn checkpoint(&mut self, mode: CheckpointMode) -> Result<CheckpointResult> {
        let path = self.owner.path();
        let conn = self.owner.conn();
        match mode {
            CheckpointMode::Passive => self.wal.checkpoint(conn, path, mode),
            _ => self.wal.checkpoint_with_timeout(conn, path, mode, self.busy_timeout),
        }
        .map_err(|e| self.owner.error(e))
    }

    /// Retention: deletes the events older than `before` and the sessions that started and ended before
    /// it (open sessions are never deleted, nor the last event of one), then returns the freed pages to the
    /// file system (`auto_vacuum=INCREMENTAL`) and checkpoints with TRUNCATE. It is the loop over
    /// [`prune_step`](Self::prune_step) with a budget of `prune_chunk_rows` (and at most
    /// [`VACUUM_STEP_PAGES`](crate::queries::VACUUM_STEP_PAGES) pages per vacuum step), to the end.
    ///
    /// The totals of pruned sessions stay: reports over pruned history still count them (see
    /// [`ActivityReader::totals_by_project`](crate::ActivityReader::totals_by_project)).
    ///
    /// The call runs to the end on this writer, so nothing is recorded meanwhile. A daemon that must keep
    /// recording while a long history is pruned calls [`prune_step`](Self::prune_step) between its commits
    /// instead. Readers are never blocked by either (WAL).
    pub fn prune_before(&mut self, before: DateTime<Utc>) -> Result<PruneReport> {
        let chunk = self.prune_chunk_rows;
        let mut report = PruneReport {
            pages_before: self.page_count()?,
            ..PruneReport::default()
        };
        loop {
            let step = self.prune_step(before, chunk)?;
            report.events_deleted += step.events_deleted;
            report.sessions_deleted += step.sessions_deleted;
            report.transactions += step.transactions;
            if step.done {
                break;
            }
        }
        report.freelist_after = self.owner.autocommit(repo::freelist_count)?;
        report.pages_after = self.owner.autocommit(repo::page_count)?;
        let path = self.owner.path().to_path_buf();
        report.checkpoint = Some(
            self.wal
                .checkpoint_with_timeout(self.owner.conn(), &path, CheckpointMode::Truncate, self.busy_timeout)
                .map_err(|e| self.owner.error(e))?,
        );
        Ok(report)
    }

    /// One short step of retention, for a daemon that records while it prunes: deletes at most `budget`
    /// rows in one `BEGIN IMMEDIATE` transaction, the events older than `before` first, then the sessions
    /// that started and ended before it (open sessions are never deleted, nor the last event of one: a
    /// recovery after a crash ends the session there). Once nothing is left to delete, each step returns at
    /// most `budget` (and at most [`VACUUM_STEP_PAGES`](crate::queries::VACUUM_STEP_PAGES)) free pages to the
    /// file system (an incremental vacuum step, its own transaction). `done` says nothing
    /// is left to delete or to return.
    ///
    /// Totals stay: only sessions and events are deleted, never the running totals of `activity_totals`,
    /// so reports over pruned history keep counting the pruned sessions.
    ///
    /// Each step is a whole set of rows older than `before`: a crash loses only progress, and the next
    /// steps finish the job. Small steps keep both the pause they cause and the WAL small (one huge DELETE
    /// would put every page it touches in the WAL before any checkpoint could run). A daemon calls it
    /// between commits (with [`GroupCommit`], through [`GroupCommit::writer_mut`] while a group is pending:
    /// the step commits before the pending operations, which stay pending).
    ///
    /// A damaged page in the history it walks fails the step with `Error::Corrupt` (kind `corrupt`), its
    /// transaction rolled back. Recording appends elsewhere and can go on: a daemon should stop retention
    /// for the run, show the error's remedy (repair), and keep recording rather than exit, which under a
    /// supervisor only restarts it onto the same page (the reference daemon, `splitstore daemon`, does so).
    ///
    /// ```
    /// # use activity_store::{ActivityWriter, NewEvent};
    /// # let dir = tempfile::tempdir()?;
    /// # let mut daemon = ActivityWriter::open_in(dir.path())?.into_group_commit(Default::default());
    /// let before = chrono::Utc::now() - chrono::Duration::days(365);
    /// let mut pruned = false;
    /// for _ in 0..3 {
    ///     daemon.push(NewEvent::new(None, "focus", chrono::Utc::now()))?; // recording goes on
    ///     if !pruned {
    ///         pruned = daemon.writer_mut().prune_step(before, 500)?.done;
    ///     }
    /// }
    /// # daemon.flush()?;
    /// # assert!(pruned);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prune_step(&mut self, before: DateTime<Utc>, budget: u32) -> Result<PruneStep> {
        // A cut-off before year 0 prunes nothing (no time kept is older: a retention of millennia); one past
        // the last time kept would prune everything.
        if to_ms(before) >= *STORABLE_MS.start() {
            self.check_time("retention cut-off", before)?;
        }
        let budget = budget.max(1);
        let (events, sessions) = self.owner.write(|tx| {
            let events = repo::prune_events_chunk(tx, before, budget)?;
            let left = budget.saturating_sub(u32::try_from(events).unwrap_or(u32::MAX));
            let sessions = if left > 0 {
                repo::prune_sessions_chunk(tx, before, left)?
            } else {
                0
            };
            Ok((events as u64, sessions as u64))
        })?;
        self.after_commit();
        let mut step = PruneStep {
            done: false,
            events_deleted: events,
            sessions_deleted: sessions,
            pages_returned: 0,
            transactions: 1,
        };
        if events + sessions > 0 {
            return Ok(step);
        }
        let free = self.owner.autocommit(repo::freelist_count)?;
        if free == 0 {
            step.done = true;
            return Ok(step);
        }
        let pages = budget.min(crate::queries::VACUUM_STEP_PAGES);
        self.owner.autocommit(|c| repo::incremental_vacuum_step(c, pages))?;
        let left = self.owner.autocommit(repo::freelist_count)?;
        self.after_commit();
        step.transactions += 1;
        step.pages_returned = u64::try_from(free - left).unwrap_or(0);
        // Done when none is left, or when a step returned none (never spin).
        step.done = left == 0 || left >= free;
        Ok(step)
    }

    fn page_count(&self) -> Result<i64> {
        repo::page_count(self.owner.conn()).map_err(|e| self.owner.error(e))
    }

    /// Refuses, before anything is written, a time outside [`STORABLE_MS`]: `Error::InvalidInput` (kind
    /// `invalid_input`) naming `field`.
    pub(crate) fn check_time(&self, field: &'static str, t: DateTime<Utc>) -> Result<()> {
        if STORABLE_MS.contains(&to_ms(t)) {
            return Ok(());
        }
        Err(store_core::Error::InvalidInput {
            path: self.path().to_path_buf(),
            field,
            problem: format!(
                "{} is outside the times activity.db keeps (years 0000 to 9999 UTC)",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        })
    }

    fn after_commit(&mut self) {
        self.wal
            .after_commit(self.owner.conn(), self.owner.path(), self.busy_timeout);
        if self.counters_recorded.elapsed() >= COUNTERS_RECORD_INTERVAL {
            self.owner.record_counters();
            self.counters_recorded = Instant::now();
        }
    }
}

/// Closes every session left open by a writer that is gone (see [`Recovery`]), in one transaction.
///
/// The running totals get each bucket's recovered sessions at once: `activity_totals_on_end` (which adds a
/// session to its bucket and to every later bucket of its project) is set aside for the transaction and
/// put back as it was (DDL is transactional in SQLite: a failure or a crash leaves the trigger in place,
/// <https://sqlite.org/lang_transaction.html>). Row by row, closing an old session costs one update per
/// later bucket of its project: a legacy file's first start (56 470 sessions left open over 13 months,
/// 465 000 buckets) took 57 s, now 1.2 s, with the daemon recording nothing meanwhile, where a supervisor's
/// start timeout kills it and the next start begins again.
fn recover_open_sessions(owner: &mut OwnerConnection) -> Result<Recovery> {
    owner.write(|tx| {
        let mut recovery = Recovery::default();
        let open = repo::open_sessions(tx)?;
        if open.is_empty() {
            return Ok(recovery);
        }
        let trigger = repo::set_aside_end_trigger(tx)?;
        for open in open {
            let end_ms = open.last_event_ms.unwrap_or(open.start_ms).max(open.start_ms);
            let (Some(start), Some(end)) = (
                store_core::time::from_ms(open.start_ms),
                store_core::time::from_ms(end_ms),
            ) else {
                continue; // a time outside chrono's range: left open rather than guessed
            };
            if repo::end_session(tx, open.id, end, EndReason::Recovered)? {
                recovery.sessions.push(RecoveredSession {
                    id: open.id,
                    start,
                    end,
                });
            }
        }
        let ids: Vec<i64> = recovery.sessions.iter().map(|s| s.id).collect();
        repo::add_ended_to_totals(tx, &ids)?;
        repo::put_back_end_trigger(tx, trigger)?;
        if !recovery.is_empty() {
            let detail = serde_json::json!({
                "sessions": recovery.sessions.len(),
                "ids": recovery.sessions.iter().take(100).map(|s| s.id).collect::<Vec<_>>(),
                "from": recovery.span().map(|(f, _)| f.to_rfc3339()),
                "to": recovery.span().map(|(_, t)| t.to_rfc3339()),
            });
            store_core::Provenance {
                detail: Some(detail.to_string()),
                ..store_core::Provenance::now(store_core::provenance::RECOVERY_EVENT)
            }
            .insert(tx)?;
        }
        Ok(recovery)
    })
}
