//! Group commit: many small records reach batch speed by sharing one transaction. See [`GroupCommit`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::repo::{NewEvent, NewSession};
use crate::writer::{ActivityWriter, Committed};
use store_core::Result;

/// When a [`GroupCommit`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitPolicy {
    /// Commit once this many events are pending.
    pub max_events: usize,
    /// Commit at the first call after the oldest pending operation has waited this long.
    pub max_delay: Duration,
}

impl GroupCommitPolicy {
    /// One commit per event: every push commits at once.
    pub fn every_event() -> GroupCommitPolicy {
        GroupCommitPolicy {
            max_events: 1,
            max_delay: Duration::ZERO,
        }
    }
}

impl Default for GroupCommitPolicy {
    fn default() -> Self {
        GroupCommitPolicy {
            max_events: 1000,
            max_delay: Duration::from_millis(100),
        }
    }
}

/// An operation waiting in a [`GroupCommit`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pending {
    Event(NewEvent),
    EndSession { id: i64, end: DateTime<Utc> },
}

/// A daemon's writer with a buffer of events (and session ends) committed together, in one transaction per
/// group. It owns the [`ActivityWriter`], so a daemon keeps one value for both; the writer stays reachable
/// ([`writer_mut`](Self::writer_mut)) for retention and WAL maintenance while events are pending.
///
/// # Durability (read this before acknowledging anything)
/// A pushed event is **only in this process's memory** until the group that holds it commits. Until then
/// it is invisible to readers and is lost if the process dies (crash, `kill -9`, power loss). An event is
/// committed, with the guarantees of [`ActivityWriter`] (survives a process crash),
/// exactly when its id appears in a [`Committed`] returned by [`GroupCommit::push`],
/// [`GroupCommit::end_session`], [`GroupCommit::flush_if_due`] or [`GroupCommit::flush`]. Acknowledge
/// nothing before that.
///
/// A group commits when it holds `max_events` events, or at the first call after its oldest event has
/// waited `max_delay` (there is no background thread: a caller that may go quiet calls
/// [`GroupCommit::flush_if_due`] from its timer, so the delay is bounded by that timer too).
/// Dropping it flushes; if that fails, the loss is reported on stderr with the file and the count, never
/// silently. Call [`GroupCommit::flush`] (or [`into_writer`](Self::into_writer)) before dropping to handle
/// the error yourself.
///
/// A group is one `BEGIN IMMEDIATE` transaction: if any of its operations fails, none of the group is
/// written, and every operation stays pending (flush again to retry, or take them back with
/// [`GroupCommit::discard_pending`]). A group of one event is a single autocommit INSERT, as fast as
/// [`ActivityWriter::record_event`]: `max_events: 1` is "one commit per event".
///
/// ```
/// use std::time::Duration;
/// use activity_store::{ActivityWriter, GroupCommitPolicy, NewEvent, NewSession};
///
/// let dir = tempfile::tempdir()?;
/// let policy = GroupCommitPolicy { max_events: 1000, max_delay: Duration::from_secs(3600) };
/// let mut daemon = ActivityWriter::open_in(dir.path())?.into_group_commit(policy);
/// let session = daemon.start_session(&NewSession::new("editor", chrono::Utc::now()))?;
/// let mut acknowledged = Vec::new();
/// for _ in 0..2500 {
///     if let Some(committed) = daemon.push(NewEvent::new(Some(session), "input", chrono::Utc::now()))? {
///         acknowledged.extend(committed.event_ids); // durable now
///     }
/// }
/// // Retention runs on the same value while 500 events wait for their group.
/// daemon.writer_mut().prune_before(chrono::Utc::now() - chrono::Duration::days(365))?;
/// assert!(daemon.end_session(session, chrono::Utc::now())?.is_none(), "pending with the last 500 events");
/// let committed = daemon.flush()?;
/// acknowledged.extend(committed.event_ids);
/// assert_eq!(acknowledged.len(), 2500);
/// assert_eq!(committed.ended_sessions, vec![session]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GroupCommit {
    /// Always `Some` until [`into_writer`](Self::into_writer) takes it.
    writer: Option<ActivityWriter>,
    policy: GroupCommitPolicy,
    pending: Vec<Pending>,
    pending_events: usize,
    oldest: Option<Instant>,
}

impl GroupCommit {
    pub(crate) fn new(writer: ActivityWriter, policy: GroupCommitPolicy) -> GroupCommit {
        let policy = GroupCommitPolicy {
            max_events: policy.max_events.max(1),
            ..policy
        };
        GroupCommit {
            writer: Some(writer),
            policy,
            pending: Vec::with_capacity(policy.max_events.min(1 << 16)),
            pending_events: 0,
            oldest: None,
        }
    }

    /// Adds an event; commits the group if that makes it due. `Ok(None)`: the event is pending (not yet
    /// durable). `Ok(Some(c))`: the group, this event included, committed. `Err`: the group could not
    /// commit; nothing of it was written and all of it, this event included, is still pending. An event
    /// whose time cannot be stored ([`STORABLE_MS`](crate::STORABLE_MS)) is refused before it joins the group:
    /// `Error::InvalidInput`, the group unchanged (so one bad time does not fail the events beside it).
    pub fn push(&mut self, event: NewEvent) -> Result<Option<Committed>> {
        self.writer().check_time("time of the event", event.at)?;
        self.pending_events += 1;
        self.add(Pending::Event(event))
    }

    /// Ends session `id` at `end` as part of the group, after the events pushed before it (so a reader
    /// never sees a session ended without its last events). Same results as [`push`](Self::push).
    pub fn end_session(&mut self, id: i64, end: DateTime<Utc>) -> Result<Option<Committed>> {
        self.writer().check_time("end of the session", end)?;
        self.add(Pending::EndSession { id, end })
    }

    /// Starts a session at once, outside the group (its id is needed by the events that follow), and
    /// returns the id. Pending events are not flushed.
    pub fn start_session(&mut self, session: &NewSession) -> Result<i64> {
        self.writer_mut().start_session(session)
    }

    /// Whether the group should commit now (enough events, or the oldest has waited long enough).
    pub fn is_due(&self) -> bool {
        self.pending_events >= self.policy.max_events
            || self.oldest.is_some_and(|t| t.elapsed() >= self.policy.max_delay)
    }

    /// Commits the group if it is due; call from a timer when events may stop arriving.
    pub fn flush_if_due(&mut self) -> Result<Option<Committed>> {
        if self.is_due() {
            self.flush().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Commits everything pending now (an empty group commits nothing and returns an empty `Committed`).
    pub fn flush(&mut self) -> Result<Committed> {
        if self.pending.is_empty() {
            return Ok(Committed::default());
        }
        let writer = self.writer.as_mut().expect("the writer is present until into_writer");
        let committed = writer.commit_group(&self.pending)?;
        self.pending.clear();
        self.pending_events = 0;
        self.oldest = None;
        Ok(committed)
    }

    /// Operations waiting to commit.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes every pending operation out of the buffer, uncommitted (after a failure the caller decides
    /// not to retry). They are the caller's responsibility from here.
    pub fn discard_pending(&mut self) -> Vec<Pending> {
        self.pending_events = 0;
        self.oldest = None;
        std::mem::take(&mut self.pending)
    }

    /// The writer underneath (its WAL status, its path).
    pub fn writer(&self) -> &ActivityWriter {
        self.writer.as_ref().expect("the writer is present until into_writer")
    }

    /// The writer underneath, for retention ([`ActivityWriter::prune_before`]) and WAL maintenance while
    /// operations are pending. Pending operations stay pending; whatever is written through the writer
    /// directly commits before them.
    pub fn writer_mut(&mut self) -> &mut ActivityWriter {
        self.writer.as_mut().expect("the writer is present until into_writer")
    }

    /// Commits what is pending and hands the writer back. If the commit fails, the error is returned and
    /// the pending operations are dropped with the group (which tries once more and reports a loss on
    /// stderr, as any drop does).
    pub fn into_writer(mut self) -> Result<ActivityWriter> {
        self.flush()?;
        Ok(self.writer.take().expect("the writer is present until into_writer"))
    }

    fn add(&mut self, op: Pending) -> Result<Option<Committed>> {
        self.pending.push(op);
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        self.flush_if_due()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        let waiting = self.pending.len();
        if waiting == 0 || self.writer.is_none() {
            return;
        }
        if let Err(e) = self.flush() {
            // Drop cannot return the error; a silent loss is not an option.
            eprintln!(
                "activity-store: {waiting} pending operations ({} events) were NOT recorded in {}: {e}",
                self.pending_events,
                self.writer().path().display()
            );
        }
    }
}
