//! One public error for everything that can go wrong with a splitstore database.
//!
//! Every variant carries the path of the file it is about, `Display` says what happened and what to do
//! next, and the whole error serialises (serde) into a [`Banner`] a daemon can hand to its UI. There is no
//! degraded or in-memory mode anywhere in this crate: an open either gives a durable database or one of
//! these errors.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;
use serde::Serialize;

use crate::owner_lock::LockHolder;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of an [`Error`], for programs that branch on it (and for the UI banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    Locked,
    SchemaNewer,
    SchemaBehind,
    MigrationChanged,
    MigrationFailed,
    InvalidMigrations,
    NotADatabase,
    WrongDatabase,
    Corrupt,
    ReadOnlyDirectory,
    Missing,
    PragmaRejected,
    DiskFull,
    WriteFailed,
    Busy,
    Constraint,
    NoBackup,
    Unavailable,
    UnsafePath,
    Io,
    Sqlite,
}

/// Everything that can go wrong opening, migrating, reading or writing a splitstore database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another owner holds `<db>.lock`: only one process (and one handle) may write a database.
    Locked { path: PathBuf, holder: Option<LockHolder> },
    /// The file's schema is newer than this build knows. Nothing was written.
    SchemaNewer { path: PathBuf, found: u32, supported: u32 },
    /// A reader met a file its owner has not upgraded to the schema this build reads.
    SchemaBehind {
        path: PathBuf,
        found: u32,
        expected: u32,
        owner: &'static str,
    },
    /// An applied migration recorded in the file differs from this build's migration of that version.
    MigrationChanged {
        path: PathBuf,
        version: u32,
        name: &'static str,
        detail: String,
    },
    /// A migration failed; its transaction rolled back, so the file is still at `version - 1`.
    MigrationFailed {
        path: PathBuf,
        version: u32,
        name: &'static str,
        /// The statement that failed, when it is known.
        sql: Option<String>,
        detail: String,
        #[source]
        source: Option<Box<rusqlite::Error>>,
    },
    /// The build's own migration list is malformed (a bug in this build; the file was not touched).
    InvalidMigrations { path: PathBuf, detail: String },
    /// The file is not a SQLite database at all.
    NotADatabase { path: PathBuf },
    /// The file is a SQLite database, but not the kind that was asked for.
    WrongDatabase {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    /// SQLite reports the file damaged.
    Corrupt {
        path: PathBuf,
        detail: String,
        newest_backup: Option<PathBuf>,
    },
    /// A read-only connection needs to create `-wal`/`-shm` beside the file and may not.
    ReadOnlyDirectory { path: PathBuf },
    /// The database file does not exist (readers never create it).
    Missing { path: PathBuf, owner: &'static str },
    /// A connection setting did not take effect.
    PragmaRejected {
        path: PathBuf,
        pragma: &'static str,
        wanted: String,
        got: String,
    },
    /// SQLITE_FULL: no space left for the write.
    DiskFull { path: PathBuf },
    /// The OS refused a write (I/O error, file-size limit, quota).
    WriteFailed { path: PathBuf, detail: String },
    /// Another connection held a lock longer than the busy timeout.
    Busy { path: PathBuf },
    /// A write broke a constraint of the schema (uniqueness, foreign key, NOT NULL).
    Constraint { path: PathBuf, detail: String },
    /// A restore or repair found no backup that passes verification.
    NoBackup {
        path: PathBuf,
        backup_dir: PathBuf,
        quarantined: Option<PathBuf>,
    },
    /// The read pool could not hand out a connection.
    Unavailable { path: PathBuf, detail: String },
    /// A path the stores would write is not a plain file or directory of their own (a symbolic link, a
    /// FIFO, a directory others may write): refused rather than followed.
    UnsafePath { path: PathBuf, problem: String },
    /// A filesystem operation around the database failed.
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Any other SQLite error.
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Locked { .. } => ErrorKind::Locked,
            Error::SchemaNewer { .. } => ErrorKind::SchemaNewer,
            Error::SchemaBehind { .. } => ErrorKind::SchemaBehind,
            Error::MigrationChanged { .. } => ErrorKind::MigrationChanged,
            Error::MigrationFailed { .. } => ErrorKind::MigrationFailed,
            Error::InvalidMigrations { .. } => ErrorKind::InvalidMigrations,
            Error::NotADatabase { .. } => ErrorKind::NotADatabase,
            Error::WrongDatabase { .. } => ErrorKind::WrongDatabase,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::ReadOnlyDirectory { .. } => ErrorKind::ReadOnlyDirectory,
            Error::Missing { .. } => ErrorKind::Missing,
            Error::PragmaRejected { .. } => ErrorKind::PragmaRejected,
            Error::DiskFull { .. } => ErrorKind::DiskFull,
            Error::WriteFailed { .. } => ErrorKind::WriteFailed,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Constraint { .. } => ErrorKind::Constraint,
            Error::NoBackup { .. } => ErrorKind::NoBackup,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::UnsafePath { .. } => ErrorKind::UnsafePath,
            Error::Io { .. } => ErrorKind::Io,
            Error::Sqlite { .. } => ErrorKind::Sqlite,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Locked { path, .. }
            | Error::SchemaNewer { path, .. }
            | Error::SchemaBehind { path, .. }
            | Error::MigrationChanged { path, .. }
            | Error::MigrationFailed { path, .. }
            | Error::InvalidMigrations { path, .. }
            | Error::NotADatabase { path }
            | Error::WrongDatabase { path, .. }
            | Error::Corrupt { path, .. }
            | Error::ReadOnlyDirectory { path }
            | Error::Missing { path, .. }
            | Error::PragmaRejected { path, .. }
            | Error::DiskFull { path }
            | Error::WriteFailed { path, .. }
            | Error::Busy { path }
            | Error::Constraint { path, .. }
            | Error::NoBackup { path, .. }
            | Error::Unavailable { path, .. }
            | Error::UnsafePath { path, .. }
            | Error::Io { path, .. }
            | Error::Sqlite { path, .. } => path,
        }
    }

    /// What happened, in one sentence that names the file.
    pub fn what(&self) -> String {
        let p = self.path().display();
        match self {
            Error::Locked { holder, .. } => match holder {
                Some(h) => format!("{p} is already owned by {h}"),
                None => format!("{p} is already owned by another process (its pid could not be read)"),
            },
            Error::SchemaNewer { found, supported, .. } => {
                format!("{p} is at schema version {found}, newer than this build supports ({supported})")
            }
            Error::SchemaBehind {
                found, expected, owner, ..
            } => {
                format!("{p} is at schema {found}, this build reads {expected}: {owner} has not upgraded it yet")
            }
            Error::MigrationChanged {
                version, name, detail, ..
            } => {
                format!("migration {version} ({name}) recorded in {p} does not match this build: {detail}")
            }
            Error::MigrationFailed {
                version,
                name,
                sql,
                detail,
                ..
            } => {
                let mut s = format!("migration {version} ({name}) failed on {p}: {detail}");
                if let Some(sql) = sql {
                    s.push_str(&format!(" [failing SQL: {}]", shorten(sql, 300)));
                }
                s
            }
            Error::InvalidMigrations { detail, .. } => {
                format!("this build's migration list for {p} is invalid: {detail}")
            }
            Error::NotADatabase { .. } => format!("{p} is not a SQLite database (its header is not SQLite's)"),
            Error::WrongDatabase { expected, found, .. } => format!("{p} is not {expected}: {found}"),
            Error::Corrupt { detail, .. } => format!("{p} is damaged: {detail}"),
            Error::ReadOnlyDirectory { .. } => format!(
                "{p} cannot be read: a reader must create {p}-wal and {p}-shm beside it and the directory is not writable"
            ),
            Error::Missing { owner, .. } => format!("{p} does not exist: {owner} has not created it yet"),
            Error::PragmaRejected {
                pragma, wanted, got, ..
            } => {
                format!("{p}: PRAGMA {pragma} reads back {got:?} after setting it to {wanted:?}")
            }
            Error::DiskFull { .. } => format!("{p}: the disk is full (SQLITE_FULL)"),
            Error::WriteFailed { detail, .. } => format!("{p}: the operating system refused a write ({detail})"),
            Error::Busy { .. } => format!("{p} stayed locked by another connection past the busy timeout"),
            Error::Constraint { detail, .. } => format!("{p}: the write breaks a rule of the schema ({detail})"),
            Error::NoBackup {
                backup_dir,
                quarantined,
                ..
            } => {
                let mut s = format!("no backup of {p} in {} passes verification", backup_dir.display());
                if let Some(q) = quarantined {
                    s.push_str(&format!(" (the damaged file is kept at {})", q.display()));
                }
                s
            }
            Error::Unavailable { detail, .. } => format!("{p} could not be opened for reading: {detail}"),
            Error::UnsafePath { problem, .. } => format!("{p} {problem}"),
            Error::Io { action, source, .. } => format!("could not {action} {p}: {source}"),
            Error::Sqlite { source, .. } => format!("SQLite error on {p}: {source}"),
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        let dir = data_dir_of(self.path());
        match self {
            Error::Locked { .. } => "only one process may write this file: stop the other owner (or drop the other \
                 handle in this process) and try again; readers do not need the lock"
                .to_string(),
            Error::SchemaNewer { .. } => format!(
                "it was written by a newer splitstore: upgrade this app, or restore a backup taken before the upgrade \
                 (`splitstore restore --data-dir {dir} --from BACKUP`); the file was not changed"
            ),
            Error::SchemaBehind { owner, .. } => {
                format!("start {owner} from this build so it upgrades the file, then retry")
            }
            Error::MigrationChanged { .. } => format!(
                "released migrations must never be edited: run the build that wrote this file, or restore a backup \
                 (`splitstore restore --data-dir {dir} --from BACKUP`); the file was not changed"
            ),
            Error::MigrationFailed { version, .. } => format!(
                "nothing of this migration was applied (the file is still at version {}); fix the cause and open \
                 again to finish the upgrade; a pre-migration backup is in {dir}/backups",
                version.saturating_sub(1)
            ),
            Error::InvalidMigrations { .. } => {
                "this is a bug in this build: report it; the file was not touched".into()
            }
            Error::NotADatabase { .. } => format!(
                "check the path; if this file should be the database, quarantine it and restore a backup with \
                 `splitstore repair --data-dir {dir}`"
            ),
            Error::WrongDatabase { .. } => {
                "check the path: splitstore never writes into a database of another kind or application".into()
            }
            Error::Corrupt { newest_backup, .. } => match newest_backup {
                Some(b) => format!(
                    "stop the owner, then restore the newest backup: `splitstore restore --data-dir {dir} --from {}` \
                     (or `splitstore repair --data-dir {dir}`, which quarantines the damaged file first)",
                    b.display()
                ),
                None => format!(
                    "no backup was found in {dir}/backups: run `splitstore repair --data-dir {dir}` to quarantine the \
                     damaged file (nothing is deleted); activity.db may start empty with --allow-empty"
                ),
            },
            Error::ReadOnlyDirectory { .. } => format!(
                "give this user write access to {dir}, or keep the owner running so -wal and -shm already exist"
            ),
            Error::Missing { owner, .. } => format!("start {owner} (it creates the file), or check --data-dir"),
            Error::PragmaRejected { .. } => {
                "the file system may not support it (WAL needs a local disk with shared memory): move the data \
                 directory to a local file system"
                    .into()
            }
            Error::DiskFull { .. } => format!(
                "free space on the disk holding {dir}; committed data is intact and writes succeed again once space returns"
            ),
            Error::WriteFailed { .. } => format!(
                "check free space, quotas and file-size limits (ulimit -f) for {dir}; committed data is intact and \
                 writes succeed again once the cause is fixed"
            ),
            Error::Busy { .. } => {
                format!("retry; if it persists, see who holds the file with `splitstore doctor --data-dir {dir}`")
            }
            Error::Constraint { .. } => "change the value so it no longer conflicts; nothing was written".into(),
            Error::NoBackup { path, .. } if path.file_name().is_some_and(|n| n == "config.db") => {
                "config.db holds the user's configuration and never starts empty: restore a backup kept elsewhere \
                 with `splitstore restore --data-dir DIR --from FILE`, or split the legacy database again with \
                 `migrate-split --legacy FILE --data-dir DIR --force`"
                    .to_string()
            }
            Error::NoBackup { .. } => format!(
                "restore a backup kept elsewhere with `splitstore restore --data-dir {dir} --from FILE`, or start \
                 activity.db empty with `splitstore repair --data-dir {dir} --allow-empty`"
            ),
            Error::Unavailable { .. } | Error::Sqlite { .. } => {
                format!("run `splitstore doctor --data-dir {dir}` for a diagnosis")
            }
            Error::UnsafePath { .. } => {
                "nothing was written through it: remove it (or move it away) so the file can be created in place".into()
            }
            Error::Io { .. } => "check that the path exists and that this user may read and write it".into(),
        }
    }

    /// The error as a UI banner: kind, path, message and remedy.
    pub fn banner(&self) -> Banner {
        Banner {
            kind: self.kind(),
            path: self.path().to_path_buf(),
            message: self.what(),
            remedy: self.remedy(),
        }
    }

    /// Maps a SQLite error met while working on `path` to the typed error a user can act on.
    pub fn from_sqlite(path: &Path, err: rusqlite::Error) -> Error {
        let path = path.to_path_buf();
        let (code, extended) = match &err {
            rusqlite::Error::SqliteFailure(e, _) => (e.code, e.extended_code),
            _ => return Error::Sqlite { path, source: err },
        };
        match code {
            ErrorCode::NotADatabase => Error::NotADatabase { path },
            ErrorCode::DatabaseCorrupt => {
                let newest_backup = crate::maintenance::newest_backup_near(&path);
                Error::Corrupt {
                    path,
                    detail: err.to_string(),
                    newest_backup,
                }
            }
            ErrorCode::DiskFull => Error::DiskFull { path },
            ErrorCode::SystemIoFailure => Error::WriteFailed {
                path,
                detail: format!("{err} (extended code {extended})"),
            },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Busy { path },
            ErrorCode::ReadOnly if extended == rusqlite::ffi::SQLITE_READONLY_DIRECTORY => {
                Error::ReadOnlyDirectory { path }
            }
            ErrorCode::ConstraintViolation => Error::Constraint {
                path,
                detail: err.to_string(),
            },
            _ => Error::Sqlite { path, source: err },
        }
    }

    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}. What to do: {}", self.what(), self.remedy())
    }
}

/// An error as data for a UI: a persistent banner with the file, the problem and the remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Banner {
    pub kind: ErrorKind,
    pub path: PathBuf,
    pub message: String,
    pub remedy: String,
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.banner().serialize(serializer)
    }
}

/// The directory a database lives in, as shown in remedies (`--data-dir`).
fn data_dir_of(path: &Path) -> String {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => ".".to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// Adds the path to a rusqlite result, for code that works on one known file.
pub trait SqliteResultExt<T> {
    /// Maps a SQLite error to the typed [`Error`] for `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> SqliteResultExt<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::from_sqlite(path, e))
    }
}
