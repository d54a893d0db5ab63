//! activity.db, the daemon's database: sessions and events recorded at a high rate by one writer, read
//! by the server through read-only pools.
//!
//! - [`ActivityWriter`] (the daemon only): takes the owner lock, records sessions and events, commits
//!   batches and groups ([`GroupCommit`]), runs the checkpoint policy ([`WalPolicy`]) and retention
//!   ([`ActivityWriter::prune_step`] between commits, or [`ActivityWriter::prune_before`] at once), and
//!   keeps the running totals per project that reports read ([`ActivityReader::totals_by_project`]).
//! - [`GroupCommit`] (the daemon at high rates): the writer with a group-commit buffer, in one value.
//! - [`ActivityReader`] (the server, reports): short read transactions on a `store_core::ReadPool`;
//!   sessions in a [`TimeRange`], events of a session, [`ProjectTotal`]s, the latest activity and a
//!   [`ChangeToken`] to poll cheaply.
//! - [`Error`] says what went wrong, which file, what to do, and whether retrying helps; `kind()`,
//!   `is_not_ready()` and `locked_by()` are what a daemon branches on.
//!
//! Layout: SQL text in [`queries`], row types and typed functions in `repo`, the schema in [`schema`].

mod group_commit;
pub mod queries;
mod reader;
mod repo;
pub mod schema;
#[cfg(feature = "synthetic")]
pub mod synthetic;
mod wal;
mod writer;

pub use group_commit::{GroupCommit, GroupCommitPolicy, Pending};
pub use reader::{ActivityReader, SessionState};
pub use repo::{
    EndReason, Event, LastIds, Latest, NewEvent, NewSession, ProjectTotal, PrunedEdge, Session, SessionSpan,
    rebuild_totals, recount_totals, totals_disagreement,
};
pub use schema::SCHEMA;
pub use store_core::checkpoint::{CheckpointMode, CheckpointResult};
pub use store_core::{Banner, ChangeToken, Error, ErrorKind, LockHolder, OpenOptions, Result, TimeRange};
pub use wal::{WalPolicy, WalStatus};
pub use writer::{
    ActivityWriter, COUNTERS_RECORD_INTERVAL, Committed, DEFAULT_PRUNE_CHUNK_ROWS, PruneReport, PruneStep,
    RecoveredSession, Recovery, STORABLE_MS, WriterOptions,
};
