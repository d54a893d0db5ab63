//! The mechanism behind a family of SQLite databases, each with exactly one writer, written once: the owner
//! lock, honest opens, read-only pools, the migration engine, one error vocabulary, backups, restore, checks
//! and diagnostics. It knows no application: a database kind is described entirely by a [`Schema`] value.
//!
//! A kind's owner opens it with [`OwnerConnection`] (the one writer, holding an [`OwnerLock`]); everyone else
//! reads it through a [`ReadPool`], which cannot write. Why each line is there is written down in
//! `docs/sqlite-hazards.md` (cited as `hazards: <section>`).
//!
//! ```
//! use store_core::{Compat, Migration, OwnerConnection, ReadPool, Schema, Step, Tools};
//!
//! static NOTES: Schema = Schema {
//!     file_name: "notes.db",
//!     owner: "the notes service",
//!     tools: Tools { program: "notes", owner_subcommand: "serve" },
//!     application_id: 0x4E4F_5445, // "NOTE"
//!     migrations: &[Migration {
//!         version: 1,
//!         name: "notes",
//!         step: Step::Sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"),
//!         compat: Compat::Breaking,
//!     }],
//!     incremental_vacuum: false,
//!     may_start_empty: true,
//!     predecessor: None,
//!     id_references: &[],
//!     derived_tables: &[],
//!     derived_check: None,
//!     append_only_tables: &[],
//!     readers_read_from: None,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let path = NOTES.path_in(dir.path());
//! let mut owner = OwnerConnection::open(&path, &NOTES)?; // takes notes.db.lock, creates, migrates
//! owner.write(|tx| tx.execute("INSERT INTO notes (text) VALUES ('hello')", []))?;
//!
//! // A second owner, in this process or another, is refused and told who holds the file.
//! let refused = OwnerConnection::open(&path, &NOTES).unwrap_err();
//! assert_eq!(refused.locked_by().map(|h| h.pid), Some(std::process::id()));
//!
//! // Readers never take the lock and cannot write.
//! let readers = ReadPool::new(&path, &NOTES);
//! let n: i64 = readers.read(|c| c.query_row("SELECT count(*) FROM notes", [], |r| r.get(0)))?;
//! assert_eq!(n, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backup;
pub mod check;
pub mod checkpoint;
pub mod conn_ext;
pub mod conversion;
pub mod diagnostics;
pub mod error;
pub mod files;
pub mod key;
pub mod leftovers;
pub mod migrate;
pub mod open_database;
pub mod orphans;
pub mod owner_lock;
pub mod private_dir;
pub mod process;
pub mod provenance;
pub mod read_pool;
pub mod records;
pub mod renumber;
pub mod restore;
pub mod salvage;
pub mod schema;
pub mod schema_objects;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use diagnostics::CheckLevel;
pub use error::{Banner, Describe, Error, ErrorKind, Result, SqliteResultExt};
pub use key::{Key, encryption_available};
pub use migrate::{
    BOOKKEEPING_SQL, MigratingCallback, MigrationHook, MigrationPhase, MigrationProgress, UpgradeReport,
};
pub use open_database::{OpenOptions, OpenReport, OwnerConnection};
pub use owner_lock::{FolderLock, FolderWait, LockHolder, LockState, OwnerLock, WaitingCallback, Waits};
pub use provenance::Provenance;
pub use read_pool::{ChangeToken, ReadPool};
pub use schema::{Compat, DerivedCheck, Disagreement, IdReference, Migration, Predecessor, Schema, Step, Tools};
pub use time::TimeRange;
pub use {rusqlite, serde};
