//! The mechanism both splitstore databases share, written once: the owner lock, honest opens, read-only
//! pools, the migration engine, one error type, backups, checks and diagnostics.
//!
//! A database kind is a [`Schema`] value (file name, owner, `application_id`, migrations). Its owner opens it
//! with [`OwnerConnection`] (the one writer, holding [`OwnerLock`]); everyone else reads it through a
//! [`ReadPool`], which cannot write. See `../sqlite-hazards` notes cited throughout for why each line is there.

pub mod conn_ext;
pub mod diagnostics;
pub mod error;
pub mod files;
pub mod maintenance;
pub mod migrate;
pub mod open_database;
pub mod owner_lock;
pub mod private_dir;
pub mod process;
pub mod provenance;
pub mod read_pool;
pub mod restore;
pub mod schema;
pub mod testing;
pub mod time;

pub use error::{Banner, Error, ErrorKind, Result, SqliteResultExt};
pub use migrate::{BOOKKEEPING_SQL, MigrationHook, UpgradeReport};
pub use open_database::{OpenOptions, OpenReport, OwnerConnection};
pub use owner_lock::{LockHolder, LockState, OwnerLock};
pub use provenance::Provenance;
pub use read_pool::{DataVersion, ReadPool};
pub use rusqlite;
pub use schema::{Migration, Schema, Step};
