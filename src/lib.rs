#![doc = include_str!("../README.md")]
//!
//! # The library
//!
//! - [`server`]: [`Server`] (owner of config.db, reader of activity.db) and [`Reports`], the questions that
//!   join the two files in the application.
//! - [`health`]: the facts `splitstore doctor` prints, as serde data for a UI banner.
//! - [`operations`]: backup, restore and repair of both databases.
//! - The stores themselves, re-exported: [`activity_store`] (the daemon's side) and [`config_store`].

pub mod health;
pub mod operations;
pub mod server;

pub use server::{CalendarActivity, ProjectActivity, ProjectStatus, ProjectTime, Reports, Server};
pub use store_core::process::disable_core_dumps;
pub use store_core::{Banner, ChangeToken, CheckLevel, ErrorKind, Key, LockHolder, TimeRange, encryption_available};
pub use {activity_store, config_store};

use std::path::Path;

use store_core::{Describe, Schema};

/// The two databases of a data directory, in the order they are reported.
pub const DATABASES: [&Schema; 2] = [&activity_store::SCHEMA, &config_store::SCHEMA];

/// Errors of the composition: either store's, each naming its file, the remedy and whether retrying helps.
/// `kind()`, `is_not_ready()` and `locked_by()` answer what a program branches on, whichever file it is.
#[non_exhaustive]
pub enum Error {
    /// activity.db (or any store_core operation).
    Store(store_core::Error),
    /// config.db.
    Config(config_store::Error),
}

impl From<store_core::Error> for Error {
    fn from(e: store_core::Error) -> Error {
        Error::Store(e)
    }
}

impl From<config_store::Error> for Error {
    fn from(e: config_store::Error) -> Error {
        Error::Config(e)
    }
}

impl Error {
    fn inner(&self) -> &dyn Describe {
        match self {
            Error::Store(e) => e,
            Error::Config(e) => e,
        }
    }

    /// What kind of error this is, in the vocabulary every error of these crates shares.
    pub fn kind(&self) -> ErrorKind {
        self.inner().kind()
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        self.inner().path()
    }

    /// Who holds the owner lock, when the error is that one is held.
    pub fn locked_by(&self) -> Option<&LockHolder> {
        self.inner().locked_by()
    }

    /// What happened, in one sentence that names the file.
    pub fn what(&self) -> String {
        self.inner().what()
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        self.inner().remedy()
    }
}

store_core::impl_error_surface!(Error);

/// `Result` with the composition's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
