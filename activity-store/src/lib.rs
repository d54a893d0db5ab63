//! activity.db, the daemon's database: sessions and events recorded at a high rate by one writer, read
//! by the server through read-only pools.
//!
//! - [`ActivityWriter`] (the daemon only): takes the owner lock, records sessions and events, commits
//!   batches and groups ([`GroupCommit`]), runs the checkpoint policy ([`WalPolicy`]) and retention
//!   ([`ActivityWriter::prune_before`]).
//! - [`ActivityReader`] (the server, reports): short read transactions on a `store_core::ReadPool`;
//!   sessions in a [`TimeRange`], events of a session, [`ProjectTotal`]s, the latest activity and a
//!   [`ChangeToken`] to poll cheaply.
//!
//! Layout: SQL text in [`queries`], row types and typed functions in `repo`, the schema in [`schema`].

mod group_commit;
pub mod queries;
mod reader;
mod repo;
pub mod schema;
mod wal;
mod writer;

pub use group_commit::{GroupCommit, GroupCommitPolicy, Pending};
pub use reader::{ActivityReader, ChangeToken};
pub use repo::{Event, LastIds, Latest, NewEvent, NewSession, ProjectTotal, Session, TimeRange};
pub use schema::SCHEMA;
pub use store_core::maintenance::{CheckpointMode, CheckpointResult};
pub use wal::{WalPolicy, WalStatus};
pub use writer::{ActivityWriter, Committed, DEFAULT_PRUNE_CHUNK_ROWS, PruneReport, WriterOptions};
