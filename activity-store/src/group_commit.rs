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

/// A buffer of events (and session ends) committed together, in one transaction per group.
///
/// # Durability (read this before acknowledging anything)
/// A pushed event is **only in this process's memory** until the group that holds it commits. Until then
/// it is invisible to readers and is lost if the process dies (crash, `kill -9`, power loss). An event is
/// committed, with the guarantees of [`ActivityWriter`](crate::ActivityWriter) (survives a process crash),
/// exactly when its id appears in a [`Committed`] returned by [`GroupCommit::push`],
/// [`GroupCommit::end_session`], [`GroupCommit::flush_if_due`] or [`GroupCommit::flush`]. Acknowledge
/// nothing before that.
///
/// A group commits when it holds `max_events` events, or at the first call after its oldest event has
/// waited `max_delay` (there is no background thread: a caller that may go quiet calls
/// [`GroupCommit::flush_if_due`] from its timer, so the delay is bounded by that timer too).
/// Dropping the buffer flushes it; if that fails, the loss is reported on stderr with the file and the count,
/// never silently. Call [`GroupCommit::flush`] before dropping to handle the error yourself.
///
/// A group is one `BEGIN IMMEDIATE` transaction: if any of its operations fails, none of the group is
/// written, and every operation stays pending (flush again to retry, or take them back with
/// [`GroupCommit::discard_pending`]).
#[derive(Debug)]
pub struct GroupCommit<'w> {
    writer: &'w mut ActivityWriter,
    policy: GroupCommitPolicy,
    pending: Vec<Pending>,
    pending_events: usize,
    oldest: Option<Instant>,
}

impl<'w> GroupCommit<'w> {
    pub(crate) fn new(writer: &'w mut ActivityWriter, policy: GroupCommitPolicy) -> GroupCommit<'w> {
        let policy = GroupCommitPolicy {
            max_events: policy.max_events.max(1),
            ..policy
        };
        GroupCommit {
            writer,
            policy,
            pending: Vec::with_capacity(policy.max_events.min(1 << 16)),
            pending_events: 0,
            oldest: None,
        }
    }

    /// Adds an event; commits the group if that makes it due. `Ok(None)`: the event is pending (not yet
    /// durable). `Ok(Some(c))`: the group, this event included, committed. `Err`: the group could not
    /// commit; nothing of it was written and all of it, this event included, is still pending.
    pub fn push(&mut self, event: NewEvent) -> Result<Option<Committed>> {
        self.pending_events += 1;
        self.add(Pending::Event(event))
    }

    /// Ends session `id` at `end` as part of the group, after the events pushed before it (so a reader
    /// never sees a session ended without its last events). Same results as [`push`](Self::push).
    pub fn end_session(&mut self, id: i64, end: DateTime<Utc>) -> Result<Option<Committed>> {
        self.add(Pending::EndSession { id, end })
    }

    /// Starts a session at once, outside the group (its id is needed by the events that follow), and
    /// returns the id. Pending events are not flushed.
    pub fn start_session(&mut self, session: &NewSession) -> Result<i64> {
        self.writer.start_session(session)
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
        let committed = self.writer.commit_group(&self.pending)?;
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
        self.writer
    }

    fn add(&mut self, op: Pending) -> Result<Option<Committed>> {
        self.pending.push(op);
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        self.flush_if_due()
    }
}

impl Drop for GroupCommit<'_> {
    fn drop(&mut self) {
        let waiting = self.pending.len();
        if waiting == 0 {
            return;
        }
        if let Err(e) = self.flush() {
            // Drop cannot return the error; a silent loss is not an option.
            eprintln!(
                "activity-store: {waiting} pending operations ({} events) were NOT recorded in {}: {e}",
                self.pending_events,
                self.writer.path_buf().display()
            );
        }
    }
}
