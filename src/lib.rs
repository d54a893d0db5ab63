//! splitstore: the server-side composition of the two stores, and operations on a whole data directory.
//!
//! - [`server`]: [`Server`] (owner of config.db, reader of activity.db) and [`Reports`], the questions that
//!   join the two files in the application.
//! - [`health`]: the facts `splitstore doctor` prints, as serde data for a UI banner.
//! - [`operations`]: backup, restore and repair of both databases.

pub mod health;
pub mod operations;
pub mod server;

pub use server::{CalendarActivity, ProjectActivity, ProjectStatus, ProjectTime, Reports, Server};
use store_core::Schema;

/// The two databases of a data directory, in the order they are reported.
pub const DATABASES: [&Schema; 2] = [&activity_store::SCHEMA, &config_store::SCHEMA];

/// Errors of the composition: either store's, each naming its file and the remedy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// activity.db (or any store_core operation).
    #[error(transparent)]
    Store(#[from] store_core::Error),
    /// config.db.
    #[error(transparent)]
    Config(#[from] config_store::Error),
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Store(e) => e.path(),
            Error::Config(e) => e.path(),
        }
    }

    /// Whether the error only says a file is not there (yet) or not upgraded (yet): what a poller waits out.
    pub fn is_not_ready(&self) -> bool {
        use store_core::ErrorKind::{Missing, SchemaBehind};
        match self {
            Error::Store(e) => matches!(e.kind(), Missing | SchemaBehind),
            Error::Config(config_store::Error::Store(e)) => matches!(e.kind(), Missing | SchemaBehind),
            Error::Config(_) => false,
        }
    }
}

/// `Result` with the composition's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
