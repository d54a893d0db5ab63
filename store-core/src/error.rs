//! One error vocabulary for every crate built on store-core.
//!
//! - [`ErrorKind`] is the single list of conditions, in snake_case, shared by every error type built on this
//!   crate, by the UI [`Banner`], by JSON outputs and by diagnostics' problems. It also says whether waiting
//!   ([`ErrorKind::is_not_ready`]) or retrying ([`ErrorKind::is_retryable`]) can help.
//! - [`Error`] is this crate's error: every variant carries the path of the file it is about, and what to do
//!   next. There is no degraded or in-memory mode anywhere: an open gives a durable database or an error.
//! - [`Describe`] is what every error type says about itself (kind, path, what, remedy); the
//!   [`impl_error_surface!`](crate::impl_error_surface) macro gives a type implementing it the same
//!   `Display` (`"<what>. What to do: <remedy>"`), `Debug`, serde banner and inherent `kind()`,
//!   `is_not_ready()`, `is_retryable()`, `locked_by()` and `banner()` as this crate's `Error`. Written once.
//!
//! An error's `Display` already holds the text of its cause (an I/O or SQLite message), so `source()` does
//! not repeat it: an error reporter walking the chain prints each cause once. The underlying errors stay
//! reachable with [`Error::sqlite_error`] and [`Error::io_error`].

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::files::{parent_dir, shell_quoted};
use crate::owner_lock::LockHolder;
use crate::schema::Schema;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as one snake_case word a program can branch on and a UI can show. Shared by every error
/// type built on store-core and by diagnostics' problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another owner holds the file's lock.
    Locked,
    /// The `-shm` beside the file was removed or replaced while it was in use: its owner writes no more
    /// until every process using the file has stopped and started again.
    SharedMemoryReplaced,
    /// The owner's lock file, or its database file, was replaced while it owned the file: it writes no
    /// more (a restart opens again).
    OwnershipLost,
    /// The file's schema is newer than this build.
    SchemaNewer,
    /// The file's owner has not created or upgraded it to the schema this build reads yet.
    SchemaBehind,
    /// The data directory holds a predecessor database that was not converted yet.
    NotConvertedYet,
    /// A released migration differs from the one recorded in the file.
    MigrationChanged,
    /// A migration failed and rolled back.
    MigrationFailed,
    /// The build's migration list is malformed.
    InvalidMigrations,
    /// Not a SQLite file.
    NotADatabase,
    /// A SQLite file of another kind or application.
    WrongDatabase,
    /// This kind's file rebuilt without the ids SQLite keeps in its header (`application_id`,
    /// `user_version`), as `sqlite3 FILE .dump | sqlite3 NEW` rebuilds one, or whose `user_version` was set
    /// below the migrations it records (by hand, to let an earlier build open it): its tables and migration
    /// history are this build's, at a version it records. `repair` writes the ids back; an open never guesses.
    HeaderIdsLost,
    /// SQLite reports damage.
    Corrupt,
    /// A reader needs write access to the directory for `-wal`/`-shm`, or the file system is mounted
    /// read-only.
    ReadOnlyDirectory,
    /// The operating system refused access to a path.
    PermissionDenied,
    /// A command would write beside files that belong to another user (run as root on a user's data
    /// directory, say): what it created there, that user's processes could not open.
    AnotherUsersFiles,
    /// A database's path is longer than SQLite opens.
    PathTooLong,
    /// The file does not exist.
    Missing,
    /// The file does not exist, but the data directory shows it held data (it was opened, backed up or
    /// converted): it is not created anew, empty, in its place.
    Removed,
    /// A connection setting did not take effect.
    PragmaRejected,
    /// No space left.
    DiskFull,
    /// A table has handed out the largest id SQLite allows, and takes no more rows.
    IdsExhausted,
    /// A file names rows of another file by ids a repair has moved since (it was put back from before it).
    OldIds,
    /// The operating system refused a write.
    WriteFailed,
    /// A read came back short or failed: the file or its `-wal` changed under it, or the disk failed.
    ReadFailed,
    /// At an owner's open, the WAL's index kept by another process lists commits the `-wal` no longer holds:
    /// every process using the file has to stop and start again.
    WalIndexStale,
    /// A `-wal` beside a file that is not the one it was written for (the file was replaced or removed by
    /// hand while its owner was stopped after a crash): SQLite would mix its pages into the file there.
    OrphanWal,
    /// The `-wal` the file's last owner left when it stopped without emptying it (a crash) is gone: what it
    /// held since the last checkpoint is not in the file (doctor, until the owner's next start says it).
    WalGone,
    /// Another connection held a lock past the busy timeout.
    Busy,
    /// A write broke a rule of the schema.
    Constraint,
    /// No backup passes verification.
    NoBackup,
    /// The newest good backup is older than the damaged file: restoring it would leave out rows added since.
    BackupOlder,
    /// A backup folder holds backups of several files of this kind (several data directories) and nothing
    /// tells which are this file's.
    BackupsOfOtherFiles,
    /// A backup is named as taken later than the clock reads now, and a restore or repair would otherwise
    /// put an older copy in place, or none.
    BackupInFuture,
    /// A backup named as taken before the newest one by name holds rows that one lacks, and a restore or
    /// repair would otherwise put that one in place.
    BackupNamedEarlier,
    /// A read connection could not be handed out.
    Unavailable,
    /// A symbolic link, a non-regular file or an unsafe directory where a private file belongs.
    UnsafePath,
    /// Any other filesystem failure.
    Io,
    /// Any other SQLite failure.
    Sqlite,
    /// A row the request names does not exist.
    NotFound,
    /// The write would store something twice that may be stored once.
    Duplicate,
    /// An input value is unusable.
    InvalidInput,
    /// A stored value does not decode as the type asked for.
    WrongType,
    /// A value cannot be encoded to be stored.
    Unencodable,
    /// An input file is not one this tool converts.
    UnsupportedInput,
    /// Output files already exist and are not the finished work of this run.
    OutputsExist,
    /// Strict mode, and rows would have been rejected.
    RejectedRows,
    /// What was written differs from what reads back.
    VerificationFailed,
    /// An input changed while it was being read.
    ChangedDuringRun,
    /// Migrations are pending (diagnostics).
    MigrationsPending,
    /// Foreign keys point at missing rows (diagnostics).
    ForeignKeyViolations,
    /// The write-ahead log is large: a reader pins it (diagnostics).
    LargeWal,
    /// The file's `auto_vacuum` is not the incremental mode its schema creates it with (a tool turned it off
    /// and ran `VACUUM`): retention frees pages inside the file and no longer gives them back (diagnostics,
    /// and said at its owner's start).
    AutoVacuumOff,
    /// A derived table (activity.db's running totals) disagrees with the rows it is derived from: a row was
    /// deleted or changed by a tool that runs none of this build's code (diagnostics, `repair` recounts).
    TotalsDisagree,
    /// Indexes or triggers of the file's schema dropped or changed by a tool (diagnostics, `repair` creates them
    /// again).
    SchemaObjectsMissing,
    /// Files of a database (the file, its sidecars, backups, copies moved aside) that other users may read
    /// or write: copied in with other modes (diagnostics).
    ReadableByOthers,
    /// The data directory is on a network file system, where SQLite's WAL and the owner lock do not hold
    /// across machines (diagnostics).
    NetworkFileSystem,
    /// The database file has more than one name (hard links): a write through one name changes every
    /// other, and a process opening another name uses another `-wal`, `-shm` and lock file (diagnostics, and
    /// said at its owner's start).
    HardLinked,
    /// A backup in the clear beside a database under a key: the history it holds is read without the key
    /// (diagnostics).
    BackupInTheClear,
    /// A restore (repair, key rotation) of the data directory has not finished: it runs, or was interrupted
    /// and the next owner's open puts the files back as they were. Readers and backups wait (not ready).
    RestoreInterrupted,
    /// The journal of an interrupted restore (repair, key rotation) cannot be read: which files it moved
    /// cannot be told, so no owner's open can put them back by itself.
    RestoreJournalUnreadable,
    /// A restore, repair or key rotation put its files in place, then could not open them: it is done, and
    /// run again it would put the same in place once more (not retryable: the owners' next start opens them).
    PlacedNotOpened,
    /// The predecessor file was modified after its conversion: what was written to it since is in none of
    /// the converted files (diagnostics).
    WrittenAfterConversion,
    /// A backup is damaged: it would not restore (the database it is a backup of is not).
    BackupDamaged,
    /// The key does not open the file: a wrong key (never taken for damage).
    KeyRejected,
    /// The file is encrypted and was opened without a key.
    KeyRequired,
    /// A key was given for a file that is not encrypted.
    NotEncrypted,
    /// A key was given to a build without encryption.
    EncryptionUnavailable,
    /// The caller's stop flag ([`Waits::stop`](crate::Waits::stop)) was set while the call waited for
    /// another process, or split a legacy file: it gave up, nothing changed.
    Stopped,
}

impl ErrorKind {
    /// The kind as its snake_case word (`"locked"`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Locked => "locked",
            ErrorKind::OwnershipLost => "ownership_lost",
            ErrorKind::SharedMemoryReplaced => "shared_memory_replaced",
            ErrorKind::SchemaNewer => "schema_newer",
            ErrorKind::SchemaBehind => "schema_behind",
            ErrorKind::NotConvertedYet => "not_converted_yet",
            ErrorKind::MigrationChanged => "migration_changed",
            ErrorKind::MigrationFailed => "migration_failed",
            ErrorKind::InvalidMigrations => "invalid_migrations",
            ErrorKind::NotADatabase => "not_a_database",
            ErrorKind::WrongDatabase => "wrong_database",
            ErrorKind::HeaderIdsLost => "header_ids_lost",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::ReadOnlyDirectory => "read_only_directory",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::AnotherUsersFiles => "another_users_files",
            ErrorKind::PathTooLong => "path_too_long",
            ErrorKind::Missing => "missing",
            ErrorKind::Removed => "removed",
            ErrorKind::PragmaRejected => "pragma_rejected",
            ErrorKind::DiskFull => "disk_full",
            ErrorKind::IdsExhausted => "ids_exhausted",
            ErrorKind::OldIds => "old_ids",
            ErrorKind::WriteFailed => "write_failed",
            ErrorKind::ReadFailed => "read_failed",
            ErrorKind::WalIndexStale => "wal_index_stale",
            ErrorKind::OrphanWal => "orphan_wal",
            ErrorKind::WalGone => "wal_gone",
            ErrorKind::Busy => "busy",
            ErrorKind::Constraint => "constraint",
            ErrorKind::NoBackup => "no_backup",
            ErrorKind::BackupOlder => "backup_older",
            ErrorKind::BackupsOfOtherFiles => "backups_of_other_files",
            ErrorKind::BackupInFuture => "backup_in_future",
            ErrorKind::BackupNamedEarlier => "backup_named_earlier",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::UnsafePath => "unsafe_path",
            ErrorKind::Io => "io",
            ErrorKind::Sqlite => "sqlite",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::Unencodable => "unencodable",
            ErrorKind::UnsupportedInput => "unsupported_input",
            ErrorKind::OutputsExist => "outputs_exist",
            ErrorKind::RejectedRows => "rejected_rows",
            ErrorKind::VerificationFailed => "verification_failed",
            ErrorKind::ChangedDuringRun => "changed_during_run",
            ErrorKind::MigrationsPending => "migrations_pending",
            ErrorKind::ForeignKeyViolations => "foreign_key_violations",
            ErrorKind::LargeWal => "large_wal",
            ErrorKind::AutoVacuumOff => "auto_vacuum_off",
            ErrorKind::TotalsDisagree => "totals_disagree",
            ErrorKind::SchemaObjectsMissing => "schema_objects_missing",
            ErrorKind::ReadableByOthers => "readable_by_others",
            ErrorKind::NetworkFileSystem => "network_file_system",
            ErrorKind::HardLinked => "hard_linked",
            ErrorKind::BackupInTheClear => "backup_in_the_clear",
            ErrorKind::RestoreInterrupted => "restore_interrupted",
            ErrorKind::RestoreJournalUnreadable => "restore_journal_unreadable",
            ErrorKind::PlacedNotOpened => "placed_not_opened",
            ErrorKind::WrittenAfterConversion => "written_after_conversion",
            ErrorKind::BackupDamaged => "backup_damaged",
            ErrorKind::KeyRejected => "key_rejected",
            ErrorKind::KeyRequired => "key_required",
            ErrorKind::NotEncrypted => "not_encrypted",
            ErrorKind::EncryptionUnavailable => "encryption_unavailable",
            ErrorKind::Stopped => "stopped",
        }
    }

    /// The file is not there yet, not created or upgraded by its owner yet, not converted yet, or a restore
    /// of its data directory has not finished: a reader (or a process started before its peer) waits this out
    /// and asks again.
    pub fn is_not_ready(self) -> bool {
        matches!(
            self,
            ErrorKind::Missing | ErrorKind::SchemaBehind | ErrorKind::NotConvertedYet | ErrorKind::RestoreInterrupted
        )
    }

    /// Whether the same call can succeed later without anyone changing the files or the build: another
    /// owner may stop, a lock may be released, space may come back, an I/O error may pass, a peer may finish
    /// creating a file. For an owner whose lock file was replaced, the call is opening the owner again (its
    /// handle writes no more). `false` means retrying fails the same way (a migration's SQL, damage, a newer
    /// schema, a wrong file): someone has to act on the remedy first.
    pub fn is_retryable(self) -> bool {
        self.is_not_ready()
            || matches!(
                self,
                ErrorKind::Locked
                    | ErrorKind::OwnershipLost
                    | ErrorKind::Busy
                    | ErrorKind::DiskFull
                    | ErrorKind::WriteFailed
                    | ErrorKind::ReadFailed
                    | ErrorKind::Io
                    | ErrorKind::Unavailable
                    | ErrorKind::ChangedDuringRun
            )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong opening, migrating, reading or writing a database of a [`Schema`].
///
/// Variants whose remedy names a command carry the [`Schema`] (its tools); where an error is made without
/// one (a bare SQLite error), [`Error::with_schema`] adds it at the first layer that knows the kind.
#[non_exhaustive]
pub enum Error {
    /// Another owner holds `<db>.lock`: only one process (and one handle) may write a database.
    Locked { path: PathBuf, holder: Option<LockHolder> },
    /// A backup folder's lock ([`FolderLock`](crate::FolderLock)) is held by processes that are all stopped
    /// (Ctrl-Z, SIGSTOP): a wait for it would last until someone continues them. Its kind is
    /// [`ErrorKind::Locked`] (retryable: a holder continued finishes and lets go).
    FolderHeldByStopped { folder: PathBuf, holders: Vec<LockHolder> },
    /// The owner's lock file was removed or replaced while it owned `path`, and another file is at its
    /// place: another owner may have locked it and written. This handle writes no more.
    OwnershipLost {
        path: PathBuf,
        lock_path: PathBuf,
        /// Who holds the file now at `lock_path`, if anyone does.
        holder: Option<LockHolder>,
    },
    /// Another file was put at the database's path (or it was removed) while its owner had it open: what
    /// the owner wrote would go into a file no longer at that path. This handle writes no more. Told to a
    /// reader too, which would otherwise take the running owner's `-wal` beside the path for one a crash
    /// left ([`Error::OrphanWal`]).
    DatabaseReplaced {
        path: PathBuf,
        schema: &'static Schema,
        /// The owner that has the replaced file open: this process, or another one (`None` when that one
        /// has not recorded its pid).
        holder: Option<LockHolder>,
    },
    /// The `-shm` beside the database (the index of its write-ahead log, which every process using the file
    /// shares) was removed or replaced while its owner had the file open: processes that opened the file
    /// since use another index than the owner's. This handle writes no more; nothing committed is lost.
    SharedMemoryReplaced {
        path: PathBuf,
        schema: &'static Schema,
        /// The other processes seen with the old `-shm` or the new one open: those to stop.
        keepers: Vec<LockHolder>,
    },
    /// The file's schema is newer than this build knows. Nothing was written.
    SchemaNewer {
        path: PathBuf,
        found: u32,
        supported: u32,
        schema: &'static Schema,
    },
    /// A reader met a file its owner has not created (found 0) or upgraded to the schema this build reads.
    SchemaBehind {
        path: PathBuf,
        found: u32,
        expected: u32,
        schema: &'static Schema,
    },
    /// The data directory holds the schema's predecessor (a legacy database) and no record of its
    /// conversion: the file is not created empty beside it. `interrupted`: a conversion of the data directory
    /// (of `predecessor`, wherever it is) was recorded as under way and did not finish.
    NotConvertedYet {
        path: PathBuf,
        predecessor: PathBuf,
        interrupted: bool,
        schema: &'static Schema,
    },
    /// An applied migration recorded in the file differs from this build's migration of that version.
    MigrationChanged {
        path: PathBuf,
        version: u32,
        name: &'static str,
        detail: String,
        schema: &'static Schema,
    },
    /// A migration failed; its transaction rolled back, so the file is still at `version - 1`.
    MigrationFailed {
        path: PathBuf,
        version: u32,
        name: &'static str,
        /// The statement that failed, when it is known.
        sql: Option<Box<str>>,
        detail: String,
        /// The backup taken before migrating, if one was. (Boxed, like `sql`, to keep every `Result` of
        /// these crates small.)
        backup: Option<Box<Path>>,
        schema: &'static Schema,
    },
    /// The build's own migration list is malformed (a bug in this build; the file was not touched).
    InvalidMigrations { path: PathBuf, detail: String },
    /// The file is not a SQLite database at all.
    NotADatabase {
        path: PathBuf,
        schema: Option<&'static Schema>,
    },
    /// The file is a SQLite database, but not the kind that was asked for.
    WrongDatabase {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    /// The file is this kind's at schema `version` (its `schema_migrations` and its tables, indexes and
    /// triggers are exactly this build's at that version), rebuilt without its header's `application_id` and
    /// `user_version`, both 0: what `sqlite3 FILE .dump | sqlite3 NEW` (or `.recover`) makes of it. Or, with
    /// its `application_id` there, its `user_version` set below `version` by hand (`PRAGMA user_version`, as
    /// done to let an earlier build open a newer file): an open then ran a migration already applied, which
    /// failed. Not opened as it is; `repair` writes them back.
    HeaderIdsLost {
        path: PathBuf,
        version: u32,
        /// The `user_version` the header holds when its `application_id` is there; `None`: both are 0.
        lowered_to: Option<u32>,
        schema: &'static Schema,
    },
    /// SQLite reports the file damaged.
    Corrupt {
        path: PathBuf,
        detail: String,
        schema: Option<&'static Schema>,
    },
    /// A backup asked to be restored into `data_dir` is damaged (its check failed): another one is restored,
    /// not this one repaired.
    BackupDamaged {
        path: PathBuf,
        data_dir: PathBuf,
        detail: String,
        schema: &'static Schema,
    },
    /// A read-only connection needs to create `-wal`/`-shm` beside the file and may not.
    ReadOnlyDirectory { path: PathBuf },
    /// A write (`action`) at `path` was refused: the file system holding it is mounted read-only (a
    /// recovery boot, a disk the kernel remounted after errors). Of kind [`ErrorKind::ReadOnlyDirectory`].
    ReadOnlyFileSystem { path: PathBuf, action: &'static str },
    /// A read-only connection cannot read the `-wal` beside the file where it is: SQLite reads a `-wal` only
    /// with the `-shm` it creates beside it, and the file system holding them is mounted read-only (a
    /// snapshot, a backup disk, of a directory whose owner had not stopped). Of kind
    /// [`ErrorKind::ReadOnlyDirectory`].
    ReadOnlyWal { path: PathBuf },
    /// The operating system refused this user access to the path.
    PermissionDenied { path: PathBuf, action: &'static str },
    /// `path` (a database, its `-wal`, `-shm` or lock file, or a folder they are made in) belongs to user
    /// `owner`, and its own mode shuts that user out (`chmod 400`, say): the owner's start is refused. Said to
    /// the superuser (doctor under `sudo`), who writes whatever the mode, where [`Error::PermissionDenied`]
    /// tells the owner itself. `mode` is the `chmod` mode that lets the owner in. Of kind
    /// [`ErrorKind::PermissionDenied`].
    ShutsOutItsOwner {
        path: PathBuf,
        owner: u32,
        mode: &'static str,
    },
    /// `path`, a file this command would write beside (or a folder it would write into), belongs to user
    /// `owner`, and the command runs as user `user`.
    /// `stray`: the folder holding it belongs to `user`, so the file is the odd one out (left there by a
    /// command run as `owner`, root say) and goes back to `user`, rather than the command running as `owner`;
    /// `left_beside`, the rest of `owner`'s in that folder (what the same command left), goes back with it.
    AnotherUsersFiles {
        path: PathBuf,
        owner: u32,
        user: u32,
        stray: bool,
        left_beside: Vec<PathBuf>,
    },
    /// The database `path` is `bytes` long as SQLite would be given it (its folders' links resolved), more
    /// than it opens ([`crate::files::SQLITE_MAX_DB_PATH`]).
    PathTooLong { path: PathBuf, bytes: usize },
    /// The database `path` has another name (a hard link), `other`, by which `holder` has it open: refused
    /// to an owner, which would write the same file beside another `-wal` and under another lock file.
    OpenByAnotherName {
        path: PathBuf,
        other: PathBuf,
        holder: crate::LockHolder,
    },
    /// A restore into a data directory whose predecessor (`path`) was not converted yet: the converter would
    /// refuse the restored files beside it, and no owner could start.
    RestoreBesideUnconverted { path: PathBuf, schema: &'static Schema },
    /// The database file does not exist (readers never create it).
    Missing { path: PathBuf, schema: &'static Schema },
    /// The database file does not exist, but it held data: `evidence` says what shows it (an owner would
    /// otherwise start it empty, and every reader report nothing, as for a new install).
    Removed {
        path: PathBuf,
        evidence: String,
        schema: &'static Schema,
    },
    /// A restore, repair or key rotation of the file's data directory has not finished (its journal is there):
    /// the file at the path may be its copy, not the user's file, so a reader or a backup does not take it as
    /// the user's data. `holder`: the process running it, when one holds the file's lock; with none, it was
    /// interrupted, and the owner's next open puts every file back.
    RestoreUnfinished {
        path: PathBuf,
        holder: Option<LockHolder>,
        schema: &'static Schema,
    },
    /// The journal of a restore, repair or key rotation interrupted in the data directory (`path`) cannot be
    /// read (cut short by a power loss, a disk error, written by something else): which files it moved
    /// cannot be told, and nothing is moved back by guess.
    RestoreJournalUnreadable { path: PathBuf, detail: String },
    /// A connection setting did not take effect.
    PragmaRejected {
        path: PathBuf,
        pragma: &'static str,
        wanted: String,
        got: String,
    },
    /// SQLITE_FULL: no space left for the write.
    DiskFull { path: PathBuf },
    /// SQLite could not open the file ("unable to open database file"): it must create a `-wal` or `-shm`
    /// beside it, and the file system holding it has no inode left for a new file (many small files fill
    /// them with space to spare; `df -i`). Of kind [`ErrorKind::DiskFull`].
    NoFreeInodes { path: PathBuf },
    /// SQLITE_FULL from an insert into an AUTOINCREMENT table whose largest id is `i64::MAX`: SQLite adds no
    /// row after it and never reuses a smaller id (<https://sqlite.org/autoinc.html>), whatever the disk holds.
    IdsExhausted {
        path: PathBuf,
        table: String,
        schema: &'static Schema,
        /// A file referring to the table records that a repair gave its rows smaller ids, and names them by
        /// the new ids: the repair stopped before this file changed, or this file was put back from before it
        /// (copied by hand). Known to doctor only ([`crate::diagnostics::InspectOptions::moves_recorded_elsewhere`]).
        given_ids_since: bool,
    },
    /// The file's rows name rows of other files' `tables` (`config.db's projects`) by ids a repair gave
    /// smaller ones since ([`crate::renumber`]), as those files record: it was put back from before that
    /// repair (copied by hand, or restored by a build that did not move them).
    OldIds {
        path: PathBuf,
        tables: Vec<String>,
        schema: &'static Schema,
    },
    /// The OS refused a write (I/O error, file-size limit, quota).
    WriteFailed { path: PathBuf, detail: String },
    /// SQLITE_IOERR_READ or SQLITE_IOERR_SHORT_READ (`extended`): a read failed, or found the file (or its
    /// `-wal`) shorter than SQLite expected.
    ReadFailed {
        path: PathBuf,
        detail: String,
        extended: i32,
    },
    /// At an owner's open, the index of the write-ahead log (`-shm`), kept by another process that has the
    /// file open, lists commits the `-wal` no longer holds: the `-wal` was removed while that process had
    /// the file open (its owner not running to take it back). Nothing can be read or written consistently
    /// until every process using the file has stopped.
    WalIndexStale {
        path: PathBuf,
        schema: &'static Schema,
        /// The other processes seen with the `-shm` open: those that keep the old index.
        keepers: Vec<LockHolder>,
    },
    /// The `-wal` beside `path` holds commits of another file: the one that was at `path` (the owner's last
    /// open recorded which `-wal` was that file's) before another was put in its place, or before it was
    /// removed (`removed`), while its owner was stopped with commits still in the `-wal` (after a crash).
    /// SQLite cannot tell: it would apply those pages to the file there now (which then reads as damaged,
    /// and a checkpoint writes them into it), or delete the `-wal` when it creates the file anew. Refused
    /// before SQLite reads either.
    OrphanWal {
        path: PathBuf,
        wal_bytes: u64,
        removed: bool,
        /// No record names the `-wal`, and it is older than the file: applied, its last commit would take
        /// this table's AUTOINCREMENT counter back from the first number to the second (a data directory
        /// copied while its owner ran, the `-wal` copied before the file).
        older_than_file: Option<(String, i64, i64)>,
        schema: &'static Schema,
    },
    /// Another connection held a lock longer than the busy timeout. `writers`: the processes seen holding a
    /// write transaction open on it when an owner's write gave up (an operator's `sqlite3` shell, a database
    /// browser), `None` where none is seen or it was not asked.
    Busy {
        path: PathBuf,
        writers: Option<crate::checkpoint::TransactionHolders>,
    },
    /// A write broke a constraint of the schema (uniqueness, foreign key, NOT NULL).
    Constraint { path: PathBuf, detail: String },
    /// A restore or repair found no backup that passes verification.
    NoBackup {
        path: PathBuf,
        backup_dir: PathBuf,
        quarantined: Option<PathBuf>,
        /// The file is gone where it held data ([`Error::Removed`]): a repair has nothing to salvage of it.
        removed: bool,
        /// Why a salvage would read nothing of the damaged file (empty, its schema unreadable), when that is
        /// so: starting it empty loses nothing more, config.db's too.
        nothing_to_salvage: Option<String>,
        /// A restore asked for (not a repair): the file in place is not known to be damaged, and stays.
        restoring: bool,
        schema: &'static Schema,
    },
    /// A repair would restore a backup older than the damaged file, which has added rows since it was taken
    /// (AUTOINCREMENT ids handed out after the backup's, per table): refused unless asked for.
    BackupOlder {
        path: PathBuf,
        backup: PathBuf,
        /// Newer backups passed over because they are damaged.
        passed_over: Vec<PathBuf>,
        added: crate::restore::AddedSince,
        schema: &'static Schema,
    },
    /// A restore or repair from a folder that holds backups of several files of this kind (each its own
    /// lineage: several data directories backing up into one folder) with none of this file's own.
    BackupsOfOtherFiles {
        path: PathBuf,
        backup_dir: PathBuf,
        /// The newest backup of each lineage, with the path it was taken from.
        newest: Vec<(PathBuf, Option<String>)>,
        schema: &'static Schema,
    },
    /// A restore or repair from a folder came to a backup of the file whose name says it was taken later
    /// than the clock reads now (the clock was ahead when it was taken, or is behind now), while the newest
    /// backup named before now holds fewer rows, or there is none: never chosen by its name (it would pass
    /// for the newest over every later backup), nor an older copy restored in its place, nor the file
    /// started empty, in silence. Nothing was changed.
    BackupInFuture {
        path: PathBuf,
        backup: PathBuf,
        /// The time its name gives, and the clock's when it was found.
        named_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        /// The backup that would have been restored instead (the newest named before now that verifies),
        /// with the rows the later-named one holds past it.
        instead: Option<Box<(PathBuf, crate::restore::RowsAdded)>>,
        /// The database is damaged (a repair): a salvage keeps what it can still read.
        damaged: bool,
        schema: &'static Schema,
    },
    /// A restore or repair from a folder came to a backup of the file named as taken before the one it would
    /// restore (the newest by name that verifies) that holds rows this one lacks (its AUTOINCREMENT counters
    /// are past them): the clock was behind when it was taken, or ahead when the other was. The one named
    /// newest is not restored over it in silence. Nothing was changed.
    BackupNamedEarlier {
        path: PathBuf,
        backup: PathBuf,
        /// The time its name gives.
        named_at: chrono::DateTime<chrono::Utc>,
        /// The backup that would have been restored instead, the time its name gives, and the rows `backup`
        /// holds past it.
        instead: Box<(PathBuf, chrono::DateTime<chrono::Utc>, crate::restore::RowsAdded)>,
        /// The database is damaged (a repair): a salvage keeps what it can still read.
        damaged: bool,
        schema: &'static Schema,
    },
    /// The read pool could not hand out a connection.
    Unavailable { path: PathBuf, detail: String },
    /// A path that must be a private regular file or directory of the data directory is not (a symbolic
    /// link, a FIFO, a directory others may write): refused rather than followed.
    UnsafePath { path: PathBuf, problem: String },
    /// The data directory is writable by other users (`mode`), who could plant links where its files go.
    NotPrivate { path: PathBuf, mode: u32 },
    /// A filesystem operation around the database failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// Any other SQLite error.
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
        schema: Option<&'static Schema>,
    },
    /// A file this crate built (a salvage's output) failed its checks before being handed over; it was
    /// removed, and what it was built from was not changed.
    VerificationFailed { path: PathBuf, detail: String },
    /// A restore or repair came to a backup that the key given does not open: taken under another key
    /// (before a key rotation), in the clear (before the data directory was encrypted), or, read without a
    /// key, no database, not SQLite's header and whole pages (encrypted before the directory was
    /// decrypted, or not a database at all). An older backup is not restored in its place, nor the file
    /// started empty: the remedy brings this one under the directory's key (or none). Nothing was changed.
    BackupKeyMismatch {
        /// The database the backup is of.
        path: PathBuf,
        backup: PathBuf,
        /// How the backup failed to open, [`ErrorKind::KeyRejected`], [`ErrorKind::NotEncrypted`] or
        /// [`ErrorKind::KeyRequired`]: the error's kind.
        found: ErrorKind,
        /// The database is damaged (a repair): a salvage keeps what it can still read, without the backup.
        damaged: bool,
        /// The older backup the key opens that would have been restored instead (`None`: none does): named, so
        /// that a newer copy under another key is never passed over in silence.
        instead: Option<PathBuf>,
        schema: &'static Schema,
    },
    /// A repair found the file unreadable for a reason that is not damage (another kind of file, a link, a
    /// schema newer than this build, a file this user may not read): it mends damage only, and says the
    /// problem (`kind`, `message`, `remedy`, as doctor says it) instead of "healthy". Nothing was changed.
    NotDamage {
        path: PathBuf,
        kind: ErrorKind,
        message: String,
        remedy: String,
    },
    /// A restore or repair came to a backup of a schema newer than this build's (taken by a newer build). An
    /// older backup is not restored in its place in silence. Nothing was changed.
    BackupNewer {
        /// The database the backup is of.
        path: PathBuf,
        backup: PathBuf,
        found: u32,
        supported: u32,
        schema: &'static Schema,
    },
    /// A key rotation found the file already under the new key (or in the clear, for a decryption), and
    /// the old key given opens neither it nor a backup of it left to re-key, nor the file the last rotation
    /// moved aside: nothing to finish, and nothing shows that a rotation from that key put the file there (a
    /// wrong old key, or the two keys given the other way round). Nothing was changed.
    AlreadyUnderNewKey {
        path: PathBuf,
        /// How the old key failed to open the file, [`ErrorKind::KeyRejected`], [`ErrorKind::NotEncrypted`]
        /// or [`ErrorKind::KeyRequired`]: the error's kind.
        found: ErrorKind,
        schema: &'static Schema,
    },
    /// The key given does not open the file: it is encrypted with another key (or records no key and is
    /// not a plaintext database). Never taken for damage: nothing is moved aside for it.
    KeyRejected {
        path: PathBuf,
        schema: Option<&'static Schema>,
    },
    /// The file is encrypted (its owner recorded so) and was opened without a key.
    KeyRequired {
        path: PathBuf,
        schema: Option<&'static Schema>,
    },
    /// The file does not exist and was to be created without a key, while a database beside it is
    /// recorded encrypted: it would have been written in the clear. Nothing was created.
    KeyRequiredBeside {
        path: PathBuf,
        /// The encrypted database beside it.
        encrypted: PathBuf,
        schema: Option<&'static Schema>,
    },
    /// A key was given, and the file is a plaintext database.
    NotEncrypted {
        path: PathBuf,
        schema: Option<&'static Schema>,
    },
    /// A key was given to a build without encryption (the `encryption` feature): nothing was opened.
    EncryptionUnavailable { path: PathBuf },
    /// A key file that cannot be used (missing, not private, not 64 hexadecimal characters). The message
    /// never holds its content.
    BadKeyFile { path: PathBuf, problem: String },
    /// A value given to a write cannot be stored (activity.db: a time outside the years it keeps): nothing
    /// was written.
    InvalidInput {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    /// A restore, repair or key rotation committed (its files stand in place, each carrying its counters and
    /// provenance, and the files they replaced are kept aside), then `source` stopped it while it opened them
    /// as their owner. Its path and holder are `source`'s; its kind is [`ErrorKind::PlacedNotOpened`] (not
    /// retryable: running the command again would put the same in place once more).
    AfterPlacing { placed: Vec<PathBuf>, source: Box<Error> },
    /// The caller's stop flag ([`Waits::stop`](crate::Waits::stop): a SIGTERM handler's) was set `during`
    /// what the call did (said with `path` in it: waiting for another process's backup into the folder
    /// `path`, or for its split of the data directory `path`; splitting into `path`): it gave up, leaving
    /// the files as they were.
    Stopped { path: PathBuf, during: String },
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Locked { .. } | Error::FolderHeldByStopped { .. } => ErrorKind::Locked,
            Error::OwnershipLost { .. } | Error::DatabaseReplaced { .. } => ErrorKind::OwnershipLost,
            Error::SharedMemoryReplaced { .. } => ErrorKind::SharedMemoryReplaced,
            Error::SchemaNewer { .. } => ErrorKind::SchemaNewer,
            Error::SchemaBehind { .. } => ErrorKind::SchemaBehind,
            Error::NotConvertedYet { .. } | Error::RestoreBesideUnconverted { .. } => ErrorKind::NotConvertedYet,
            Error::MigrationChanged { .. } => ErrorKind::MigrationChanged,
            Error::MigrationFailed { .. } => ErrorKind::MigrationFailed,
            Error::InvalidMigrations { .. } => ErrorKind::InvalidMigrations,
            Error::NotADatabase { .. } => ErrorKind::NotADatabase,
            Error::WrongDatabase { .. } => ErrorKind::WrongDatabase,
            Error::HeaderIdsLost { .. } => ErrorKind::HeaderIdsLost,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::ReadOnlyDirectory { .. } | Error::ReadOnlyFileSystem { .. } | Error::ReadOnlyWal { .. } => {
                ErrorKind::ReadOnlyDirectory
            }
            Error::PermissionDenied { .. } | Error::ShutsOutItsOwner { .. } => ErrorKind::PermissionDenied,
            Error::AnotherUsersFiles { .. } => ErrorKind::AnotherUsersFiles,
            Error::PathTooLong { .. } => ErrorKind::PathTooLong,
            Error::OpenByAnotherName { .. } => ErrorKind::HardLinked,
            Error::Missing { .. } => ErrorKind::Missing,
            Error::Removed { .. } => ErrorKind::Removed,
            Error::RestoreUnfinished { .. } => ErrorKind::RestoreInterrupted,
            Error::RestoreJournalUnreadable { .. } => ErrorKind::RestoreJournalUnreadable,
            Error::PragmaRejected { .. } => ErrorKind::PragmaRejected,
            Error::DiskFull { .. } | Error::NoFreeInodes { .. } => ErrorKind::DiskFull,
            Error::IdsExhausted { .. } => ErrorKind::IdsExhausted,
            Error::OldIds { .. } => ErrorKind::OldIds,
            Error::WriteFailed { .. } => ErrorKind::WriteFailed,
            Error::ReadFailed { .. } => ErrorKind::ReadFailed,
            Error::WalIndexStale { .. } => ErrorKind::WalIndexStale,
            Error::OrphanWal { .. } => ErrorKind::OrphanWal,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Constraint { .. } => ErrorKind::Constraint,
            Error::NoBackup { .. } => ErrorKind::NoBackup,
            Error::BackupDamaged { .. } => ErrorKind::BackupDamaged,
            Error::BackupOlder { .. } => ErrorKind::BackupOlder,
            Error::BackupsOfOtherFiles { .. } => ErrorKind::BackupsOfOtherFiles,
            Error::BackupInFuture { .. } => ErrorKind::BackupInFuture,
            Error::BackupNamedEarlier { .. } => ErrorKind::BackupNamedEarlier,
            Error::BackupKeyMismatch { found, .. } => *found,
            Error::BackupNewer { .. } => ErrorKind::SchemaNewer,
            Error::NotDamage { kind, .. } => *kind,
            Error::AlreadyUnderNewKey { found, .. } => *found,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::UnsafePath { .. } | Error::NotPrivate { .. } => ErrorKind::UnsafePath,
            Error::Io { .. } => ErrorKind::Io,
            Error::Sqlite { .. } => ErrorKind::Sqlite,
            Error::VerificationFailed { .. } => ErrorKind::VerificationFailed,
            Error::KeyRejected { .. } => ErrorKind::KeyRejected,
            Error::KeyRequired { .. } | Error::KeyRequiredBeside { .. } => ErrorKind::KeyRequired,
            Error::NotEncrypted { .. } => ErrorKind::NotEncrypted,
            Error::EncryptionUnavailable { .. } => ErrorKind::EncryptionUnavailable,
            Error::BadKeyFile { .. } | Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::AfterPlacing { .. } => ErrorKind::PlacedNotOpened,
            Error::Stopped { .. } => ErrorKind::Stopped,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Locked { path, .. }
            | Error::OwnershipLost { path, .. }
            | Error::DatabaseReplaced { path, .. }
            | Error::SharedMemoryReplaced { path, .. }
            | Error::SchemaNewer { path, .. }
            | Error::SchemaBehind { path, .. }
            | Error::NotConvertedYet { path, .. }
            | Error::RestoreBesideUnconverted { path, .. }
            | Error::MigrationChanged { path, .. }
            | Error::MigrationFailed { path, .. }
            | Error::InvalidMigrations { path, .. }
            | Error::NotADatabase { path, .. }
            | Error::WrongDatabase { path, .. }
            | Error::HeaderIdsLost { path, .. }
            | Error::Corrupt { path, .. }
            | Error::ReadOnlyDirectory { path }
            | Error::ReadOnlyFileSystem { path, .. }
            | Error::ReadOnlyWal { path }
            | Error::PermissionDenied { path, .. }
            | Error::ShutsOutItsOwner { path, .. }
            | Error::AnotherUsersFiles { path, .. }
            | Error::PathTooLong { path, .. }
            | Error::OpenByAnotherName { path, .. }
            | Error::Missing { path, .. }
            | Error::Removed { path, .. }
            | Error::RestoreUnfinished { path, .. }
            | Error::RestoreJournalUnreadable { path, .. }
            | Error::PragmaRejected { path, .. }
            | Error::DiskFull { path }
            | Error::NoFreeInodes { path }
            | Error::IdsExhausted { path, .. }
            | Error::OldIds { path, .. }
            | Error::WriteFailed { path, .. }
            | Error::ReadFailed { path, .. }
            | Error::WalIndexStale { path, .. }
            | Error::OrphanWal { path, .. }
            | Error::Busy { path, .. }
            | Error::Constraint { path, .. }
            | Error::NoBackup { path, .. }
            | Error::BackupDamaged { path, .. }
            | Error::BackupOlder { path, .. }
            | Error::BackupsOfOtherFiles { path, .. }
            | Error::BackupInFuture { path, .. }
            | Error::BackupNamedEarlier { path, .. }
            | Error::BackupKeyMismatch { path, .. }
            | Error::BackupNewer { path, .. }
            | Error::NotDamage { path, .. }
            | Error::AlreadyUnderNewKey { path, .. }
            | Error::Unavailable { path, .. }
            | Error::UnsafePath { path, .. }
            | Error::NotPrivate { path, .. }
            | Error::Io { path, .. }
            | Error::Sqlite { path, .. }
            | Error::VerificationFailed { path, .. }
            | Error::KeyRejected { path, .. }
            | Error::KeyRequired { path, .. }
            | Error::KeyRequiredBeside { path, .. }
            | Error::NotEncrypted { path, .. }
            | Error::EncryptionUnavailable { path }
            | Error::BadKeyFile { path, .. }
            | Error::InvalidInput { path, .. }
            | Error::Stopped { path, .. } => path,
            Error::FolderHeldByStopped { folder, .. } => folder,
            Error::AfterPlacing { source, .. } => source.path(),
        }
    }

    /// Who holds the lock, for [`Error::Locked`] (and [`Error::OwnershipLost`]: who holds the lock file now
    /// in its place; [`Error::DatabaseReplaced`]: the owner that has the replaced file open) whose holder is
    /// known.
    pub fn locked_by(&self) -> Option<&LockHolder> {
        match self {
            Error::Locked { holder, .. }
            | Error::OwnershipLost { holder, .. }
            | Error::DatabaseReplaced { holder, .. }
            | Error::RestoreUnfinished { holder, .. } => holder.as_ref(),
            Error::FolderHeldByStopped { holders, .. } => holders.first(),
            Error::AfterPlacing { source, .. } => source.locked_by(),
            _ => None,
        }
    }

    /// The SQLite error underneath, if this came from one.
    pub fn sqlite_error(&self) -> Option<&rusqlite::Error> {
        match self {
            Error::Sqlite { source, .. } => Some(source),
            Error::AfterPlacing { source, .. } => source.sqlite_error(),
            _ => None,
        }
    }

    /// The I/O error underneath, if this came from one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::AfterPlacing { source, .. } => source.io_error(),
            _ => None,
        }
    }

    /// Names the database kind on an error made without it, so its remedy can name the right commands.
    pub fn with_schema(mut self, kind: &'static Schema) -> Error {
        match &mut self {
            Error::NotADatabase { schema, .. }
            | Error::Corrupt { schema, .. }
            | Error::Sqlite { schema, .. }
            | Error::KeyRejected { schema, .. }
            | Error::KeyRequired { schema, .. }
            | Error::KeyRequiredBeside { schema, .. }
            | Error::NotEncrypted { schema, .. } => {
                schema.get_or_insert(kind);
            }
            _ => {}
        }
        self
    }

    /// What happened, in one sentence that names the file.
    pub fn what(&self) -> String {
        let p = self.path().display();
        match self {
            Error::Locked { holder, .. } => match holder {
                Some(h) => format!("{p} is already owned by {h}"),
                None => format!(
                    "{p} is already owned by another process (it has not recorded its pid, or the recorded pid is \
                     not that process)"
                ),
            },
            Error::FolderHeldByStopped { holders, .. } => {
                let which = match holders.len() {
                    1 => "which is stopped",
                    _ => "all of them stopped",
                };
                format!(
                    "the backup folder {p} is held by {} ({which}: Ctrl-Z, SIGSTOP or a debugger), and stays held until it is \
                     continued",
                    LockHolder::listed(holders).unwrap_or_default()
                )
            }
            Error::OwnershipLost { lock_path, holder, .. } => {
                let now = match holder {
                    Some(h) => format!("{h} holds the file now in its place"),
                    None => "no process holds the file now in its place".into(),
                };
                format!(
                    "{p} is no longer this process's to write: its lock file {} was removed or replaced while this \
                     process owned it, so another owner may have written ({now})",
                    lock_path.display()
                )
            }
            Error::DatabaseReplaced { holder, .. } => match holder {
                Some(h) if h.is_this_process() => format!(
                    "{p} was replaced or removed while this process owned it: the file this process has open is \
                     no longer at that path, so nothing more is written to it (it would be lost)"
                ),
                _ => format!(
                    "{p} was replaced or removed while its owner ({}) had it open: the -wal beside it is that \
                     owner's, of the file it has open, not one a crash left",
                    holder.as_ref().map_or("another process".into(), |h| h.to_string())
                ),
            },
            Error::SharedMemoryReplaced { .. } => format!(
                "{p}-shm, the index of the write-ahead log that every process using {p} shares, was removed or \
                 replaced while this process owned {p}: a process that opened the file since reads another index \
                 than the one this process writes, so nothing more is written"
            ),
            Error::SchemaNewer { found, supported, .. } => {
                format!("{p} is at schema version {found}, newer than this build supports ({supported})")
            }
            Error::SchemaBehind { found: 0, schema, .. } => {
                format!("{p} is being created by {} and has no schema yet", schema.owner)
            }
            Error::SchemaBehind {
                found,
                expected,
                schema,
                ..
            } => {
                let oldest = schema.oldest_readable_version();
                let reads = if oldest < *expected {
                    format!("{oldest} to {expected}")
                } else {
                    expected.to_string()
                };
                format!(
                    "{p} is at schema {found}, this build reads {reads}: {} has not upgraded it yet",
                    schema.owner
                )
            }
            Error::RestoreBesideUnconverted { .. } => format!(
                "{p} has not been split, and the split refuses files it did not make beside it: restored there, \
                 neither owner could start"
            ),
            Error::NotConvertedYet {
                predecessor,
                interrupted: true,
                ..
            } => format!(
                "{p} is not in place: the conversion of {} (this data from an earlier version) into this directory \
                 was interrupted before it put all its outputs in place",
                predecessor.display()
            ),
            Error::NotConvertedYet { predecessor, .. } => format!(
                "{p} was not created: {} beside it holds this data from an earlier version and has not been \
                 converted yet",
                predecessor.display()
            ),
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
            Error::HeaderIdsLost {
                version,
                lowered_to: None,
                schema,
                ..
            } => format!(
                "{p} is {} at schema {version} rebuilt without the ids SQLite keeps in its header: its \
                 application_id and user_version are 0 (a copy made with `sqlite3 {} .dump` or `.recover` carries \
                 every table and row, not them), while its schema_migrations and its tables are exactly this \
                 build's at that version",
                schema.file_name, schema.file_name
            ),
            Error::HeaderIdsLost {
                version,
                lowered_to: Some(found),
                schema,
                ..
            } => format!(
                "{p} is {} at schema {version} whose user_version reads {found}: its schema_migrations records this \
                 build's migrations 1 to {version} and its tables are exactly this build's at that version, so \
                 user_version was set back by hand (`PRAGMA user_version = {found}`, as done to let an earlier \
                 build open a newer file), and migrating it again would fail",
                schema.file_name
            ),
            Error::Corrupt { detail, .. } | Error::BackupDamaged { detail, .. } => format!("{p} is damaged: {detail}"),
            Error::ReadOnlyDirectory { .. } => format!(
                "{p} cannot be opened: SQLite must create {p}-wal and {p}-shm beside it (its owner to write, a reader to \
                 read it in WAL mode), and this user may not write the directory holding it"
            ),
            Error::ReadOnlyFileSystem { action, .. } => {
                format!("could not {action} {p}: the file system holding it is mounted read-only")
            }
            Error::ReadOnlyWal { .. } => format!(
                "{p} cannot be read where it is: {p}-wal beside it holds commits not yet in the file, which SQLite \
                 reads only with a {p}-shm it creates beside them, and the file system holding them is mounted \
                 read-only"
            ),
            Error::PermissionDenied { action, .. } => format!("this user may not {action} {p}"),
            Error::ShutsOutItsOwner { owner, .. } => {
                format!("user {owner} owns {p} and may not write it: its mode shuts its owner out")
            }
            Error::AnotherUsersFiles { owner, user, .. } => format!(
                "{p} belongs to user {owner} and this command runs as user {user}: the files it would write beside \
                 it would belong to user {user}, and the processes of user {owner} that use it could not open them"
            ),
            Error::PathTooLong { bytes, .. } => format!(
                "{p} is {bytes} bytes long (links in its folders resolved): SQLite opens a database by a path of at \
                 most {} bytes, so that the name of its journal fits in 512",
                crate::files::SQLITE_MAX_DB_PATH
            ),
            Error::OpenByAnotherName { other, holder, .. } => format!(
                "{p} is open by another name, {}, in {holder}: the same file (a hard link), whose -wal, -shm and lock \
                 file go by that name, so two processes writing it by its two names would corrupt it",
                other.display()
            ),
            Error::Missing { schema, .. } => format!("{p} does not exist: {} has not created it yet", schema.owner),
            Error::RestoreUnfinished { holder: Some(h), .. } => format!(
                "a restore, repair or key rotation run by {h} is replacing the files of {}: until it finishes, {p} \
                 may be its copy, not the user's file",
                parent_dir(self.path()).display()
            ),
            Error::RestoreUnfinished { holder: None, .. } => format!(
                "a restore, repair or key rotation in {} was interrupted before it finished: {p} may be its copy, \
                 not the user's file",
                parent_dir(self.path()).display()
            ),
            Error::RestoreJournalUnreadable { detail, .. } => format!(
                "{p}, the journal of a restore, repair or key rotation in {} that did not finish, cannot be read \
                 ({detail}): which files it moved cannot be told",
                parent_dir(parent_dir(self.path())).display()
            ),
            Error::Removed { evidence, .. } => format!(
                "{p} is gone, but it held data: {evidence}; it is not created anew, empty, over the data it held \
                 (removed or moved away by hand, by a sync or cleanup tool, or a copy of the directory without it)"
            ),
            Error::PragmaRejected {
                pragma, wanted, got, ..
            } => {
                format!("{p}: PRAGMA {pragma} reads back {got:?} after setting it to {wanted:?}")
            }
            Error::DiskFull { .. } => format!("{p}: the disk is full"),
            Error::NoFreeInodes { .. } => format!(
                "{p} cannot be opened: SQLite must create its -wal and -shm beside it, and the file system holding it \
                 has no inode left for a new file (see `df -i {}`)",
                shell_quoted(parent_dir(self.path()))
            ),
            Error::OldIds { tables, .. } => format!(
                "{p} names {} by ids a repair has moved since: it was put back from before that repair (copied by \
                 hand, or restored by an earlier build), and its rows name rows the other file no longer has \
                 under those ids (a report marks their time `(old id)`)",
                tables.join(" and ")
            ),
            Error::IdsExhausted {
                table, given_ids_since, ..
            } => format!(
                "{p}: no row can be added to {table}: it has handed out id {}, the largest SQLite allows, and an \
                 AUTOINCREMENT table never reuses a smaller one (SQLite answers an insert with SQLITE_FULL, \
                 \"database or disk is full\", whatever the disk holds){}",
                i64::MAX,
                if *given_ids_since {
                    "; the files naming its rows record that a repair gave them smaller ids: it stopped before this \
                     file changed, or this file was put back from before it (copied by hand); those files name the \
                     rows by the new ids (a report marks their time `(new id)`)"
                } else {
                    ""
                }
            ),
            Error::WriteFailed { detail, .. } => format!("{p}: the operating system refused a write ({detail})"),
            Error::ReadFailed { detail, .. } => format!("{p}: a read failed ({detail})"),
            Error::WalIndexStale { .. } => format!(
                "{p}: the index of its write-ahead log ({p}-shm), which a process that has the file open keeps, \
                 lists commits its -wal no longer holds: the -wal was removed while that process had the file \
                 open, and what it held is gone"
            ),
            Error::OrphanWal {
                wal_bytes,
                older_than_file: Some((table, in_file, with_wal)),
                ..
            } => format!(
                "{p}-wal ({wal_bytes} bytes) is older than the file: opened together, SQLite would write its pages \
                 over the file's newer ones, taking {table}'s counter back from {in_file} to {with_wal} and losing \
                 what the file holds past it; no record names this -wal (a data directory copied while its owner \
                 ran, the -wal copied before the file)"
            ),
            Error::OrphanWal {
                wal_bytes,
                removed: false,
                ..
            } => format!(
                "{p}-wal ({wal_bytes} bytes) holds the last writes of the file that was at {p} before another file \
                 was put in its place while its owner was stopped after a crash: opened together, SQLite would mix \
                 that file's pages into this one, which would then read as damaged"
            ),
            Error::OrphanWal {
                wal_bytes,
                removed: true,
                ..
            } => format!(
                "{p} is gone, but {p}-wal ({wal_bytes} bytes) holds its last writes: the file was removed while its \
                 owner was stopped after a crash, and SQLite would delete that -wal when it creates the file anew"
            ),
            Error::Busy { writers: None, .. } => {
                format!("{p} stayed locked by another connection past the busy timeout")
            }
            Error::Busy {
                writers: Some(writers), ..
            } => format!(
                "{p} stayed locked past the busy timeout by the write transaction of {}",
                writers.named()
            ),
            Error::Constraint { detail, .. } => format!("{p}: the write breaks a rule of the schema ({detail})"),
            Error::NoBackup {
                backup_dir,
                quarantined,
                removed,
                nothing_to_salvage,
                ..
            } => {
                let mut s = format!("no backup of {p} in {} passes verification", backup_dir.display());
                if *removed {
                    s.push_str(", and the file is gone where it held data");
                }
                if let Some(why) = nothing_to_salvage {
                    s.push_str(&format!(", and {why}"));
                }
                if let Some(q) = quarantined {
                    s.push_str(&format!(" (the damaged file is kept at {})", q.display()));
                }
                s
            }
            Error::BackupOlder {
                backup,
                passed_over,
                added,
                ..
            } => format!(
                "{p} is damaged, and its newest good backup ({}) is older: {}{}",
                backup.display(),
                match added {
                    crate::restore::AddedSince::Counted(rows) => {
                        format!("since the backup the damaged file added rows that a restore would leave out ({rows})")
                    }
                    crate::restore::AddedSince::Uncounted { last_written } => format!(
                        "the damaged file was written after the backup was taken (last at {}), and what it added \
                         since cannot be counted (its counters cannot be read): a restore may leave rows out",
                        last_written.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                },
                crate::restore::passed_over_said(passed_over)
                    .map(|s| format!("; {s}"))
                    .unwrap_or_default()
            ),
            Error::BackupsOfOtherFiles {
                backup_dir,
                newest,
                schema,
                ..
            } => {
                let each: Vec<String> = newest
                    .iter()
                    .map(|(b, from)| match from {
                        Some(from) => format!("{}, taken from {from}", b.display()),
                        None => b.display().to_string(),
                    })
                    .collect();
                format!(
                    "{} holds backups of {} different {} files (the newest of each: {}), and nothing tells which of \
                     them are {p}'s",
                    backup_dir.display(),
                    newest.len(),
                    schema.file_name,
                    each.join("; ")
                )
            }
            Error::BackupKeyMismatch {
                backup, found, instead, ..
            } => {
                let why = match found {
                    ErrorKind::NotEncrypted => {
                        "cannot be read with the key given: it is in the clear (taken before the data directory was \
                         encrypted), and the key given is for an encrypted file"
                    }
                    ErrorKind::KeyRequired => {
                        "cannot be read without a key: it reads as no database, so it is encrypted (taken before the \
                         data directory was decrypted, say), or not a database at all"
                    }
                    _ => {
                        "cannot be read with the key given: it was taken under another key (before a key rotation, say)"
                    }
                };
                let newer = instead
                    .as_ref()
                    .map(|older| format!(", and it is newer than {}, the backup the key opens", older.display()))
                    .unwrap_or_default();
                format!("the backup {} of {p} {why}{newer}", backup.display())
            }
            Error::NotDamage { message, .. } => {
                format!("{message}; that is not damage, which is what repair mends")
            }
            Error::BackupNewer {
                backup,
                found,
                supported,
                ..
            } => format!(
                "the backup {} of {p} is at schema version {found}, newer than this build supports ({supported}): it \
                 was taken by a newer build",
                backup.display()
            ),
            Error::AlreadyUnderNewKey { found, .. } => {
                let state = match found {
                    ErrorKind::KeyRequired => {
                        "is already encrypted, under the new key given, and neither a backup of it to encrypt nor the \
                         file the last key rotation moved aside is in the clear"
                    }
                    ErrorKind::NotEncrypted => {
                        "is already in the clear, and the key given opens neither a backup of it to decrypt nor the \
                         file the last key rotation moved aside"
                    }
                    _ => {
                        "is already under the new key given, and the old key given opens neither it, nor a backup of \
                         it to re-key, nor the file the last key rotation moved aside"
                    }
                };
                format!(
                    "{p} {state}: nothing is left to do, and nothing shows that an earlier run of this rotation did it"
                )
            }
            Error::BackupInFuture {
                backup,
                named_at,
                now,
                instead,
                ..
            } => {
                let over = match instead.as_deref() {
                    Some((older, added)) => format!(
                        ", and it holds rows that {}, the newest backup named before now, does not ({added})",
                        older.display()
                    ),
                    None => ", and no backup named before now verifies".into(),
                };
                format!(
                    "the backup {} of {p} is named as taken at {}, later than the clock reads now ({}){over}: the \
                     clock was ahead when it was taken, or is behind now",
                    backup.display(),
                    crate::time::show_utc(named_at),
                    crate::time::show_utc(now)
                )
            }
            Error::BackupNamedEarlier {
                backup,
                named_at,
                instead,
                ..
            } => {
                let (newest, newest_at, added) = instead.as_ref();
                format!(
                    "the backup {} of {p} is named as taken at {}, before {} ({}), the one a restore from the \
                     folder takes by name, yet it holds rows that one does not ({added}): the clock was behind when \
                     it was taken, or ahead when the other was",
                    backup.display(),
                    crate::time::show_utc(named_at),
                    newest.display(),
                    crate::time::show_utc(newest_at)
                )
            }
            Error::Unavailable { detail, .. } => format!("{p} could not be opened for reading: {detail}"),
            Error::UnsafePath { problem, .. } => format!("{p} {problem}"),
            Error::NotPrivate { mode, .. } => {
                format!("{p} is writable by other users (mode {mode:04o}), who could plant links to files outside it")
            }
            Error::Io { action, source, .. } => format!("could not {action} {p}: {source}"),
            Error::Sqlite { source, .. } => format!("SQLite error on {p}: {source}"),
            Error::VerificationFailed { detail, .. } => {
                format!("{p} was built but failed its checks, so it was removed: {detail}")
            }
            Error::KeyRejected { .. } => {
                format!(
                    "the key was rejected: {p} cannot be read with the key given (it is encrypted with another key)"
                )
            }
            Error::KeyRequired { .. } => format!("{p} is encrypted and was opened without its key"),
            Error::KeyRequiredBeside { encrypted, .. } => format!(
                "{p} does not exist and was to be created without a key, in the clear, while {} beside it is \
                 encrypted",
                encrypted.display()
            ),
            Error::NotEncrypted { .. } => {
                format!("{p} is not encrypted (a plaintext database), but it was opened with a key")
            }
            Error::EncryptionUnavailable { .. } => format!(
                "{p} was to be opened with a key, but this build has no encryption (built without the `encryption` \
                 feature)"
            ),
            Error::BadKeyFile { problem, .. } => format!("the key file {p} {problem}"),
            Error::InvalidInput { field, problem, .. } => format!("{p}: the {field} {problem}"),
            Error::AfterPlacing { placed, source } => {
                let placed: Vec<String> = placed.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "{} put in place (what it replaced is kept aside), then: {}",
                    placed.join(" and "),
                    source.what()
                )
            }
            // `during` names the path (a folder, a data directory) in its place in the sentence.
            Error::Stopped { during, .. } => {
                format!("asked to stop while {during}, it stopped before changing anything")
            }
        }
    }

    /// The path whose mode decides a refusal at `path`: the folder holding it for an action that changes the
    /// folder's entries (removing, moving, renaming, replacing or creating the file: the file's own mode plays
    /// no part; as [`crate::files::resolved_folder_of`] names it), else `path` itself.
    fn whose_mode_refused(&self, path: &Path) -> PathBuf {
        match self {
            Error::PermissionDenied { action, .. }
                if ["remove", "move", "rename", "replace", "create"]
                    .iter()
                    .any(|a| action.starts_with(a)) =>
            {
                crate::files::resolved_folder_of(path)
            }
            _ => path.to_path_buf(),
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        let dir = parent_dir(self.path());
        let quoted_dir = shell_quoted(dir);
        // A command of the schema's application on this data directory (with `extra` arguments, and the key
        // when the file is encrypted: `Schema::command`), quoted for copying, or a description of it when the
        // kind is not known.
        let command = |schema: Option<&Schema>, subcommand: &str, extra: &str| match schema {
            Some(s) => format!("`{}`", s.command(subcommand, dir, extra)),
            None => format!("the application's {subcommand} command on {quoted_dir}"),
        };
        // repair and rekey act on the whole data directory, so they take every owner's lock, not only this
        // file's: stopping this file's owner alone is not enough.
        let stop_owners = format!("stop every owner of a database in {quoted_dir} (the command takes all their locks)");
        // The rest of a remedy for a backup named by a clock that was wrong: the backup that would have been
        // restored (`instead`), without the rows the named one holds, and a salvage of a damaged file.
        let or_restore_instead = |instead: Option<&PathBuf>, damaged: bool, schema: &Schema| {
            let mut s = String::new();
            if let Some(instead) = instead {
                s.push_str(&format!(
                    "; or restore the older backup, without those rows, with {}",
                    command(Some(schema), "restore", &format!("--from {}", shell_quoted(instead)))
                ));
            }
            if damaged {
                s.push_str(&format!(
                    "; or copy every row that can still be read from the damaged file into a new file with {}",
                    command(Some(schema), "repair", "--salvage")
                ));
            }
            s + "; nothing was changed"
        };
        match self {
            Error::Locked { .. } => "only one process may write this file: stop the other owner (or drop the other \
                 handle in this process) and try again; a supervisor retries with a bounded backoff; readers do not \
                 need the lock"
                .to_string(),
            Error::FolderHeldByStopped { holders, .. } => {
                let pids = LockHolder::pids(holders);
                format!(
                    "continue it ({}) and it finishes, or end it ({}); then run this again; nothing was changed",
                    crate::process::continue_stopped(&pids),
                    crate::process::end_stopped(&pids)
                )
            }
            Error::OwnershipLost { .. } => "this handle writes nothing more (what it committed before is in the \
                 file): open the owner again, or restart the process (splitstore's daemon and server exit 75 for it, \
                 which a supervisor restarts); the new open takes the lock once no other owner holds it. Never remove \
                 or replace a lock file: the kernel releases it when its holder exits, even after kill -9"
                .to_string(),
            Error::DatabaseReplaced { schema, holder, .. } => {
                let restart = if holder.as_ref().is_some_and(LockHolder::is_this_process) {
                    "this handle writes nothing more (what it committed before is in the file it has open): open \
                     the owner again, or restart the process (splitstore's daemon and server exit 75 for it), and \
                     it opens the file now at the path"
                        .to_string()
                } else {
                    format!(
                        "read again once {} has been restarted: its next write (or check of its files) finds the \
                         file replaced and writes nothing more (splitstore's daemon and server exit 75 for it, which \
                         a supervisor restarts), and its next open opens the file now at the path",
                        schema.owner
                    )
                };
                format!(
                    "{restart}. To put a backup back, {stop_owners} and run {}: a file moved or copied over a database \
                     its owner has open is not where the owner writes",
                    command(Some(schema), "restore", "--from BACKUP")
                )
            }
            Error::SharedMemoryReplaced { schema, keepers, .. } => format!(
                "nothing committed is lost (it is in the database file and its -wal): stop every process using \
                 {quoted_dir} ({}, and every process reading the file{}), then start them again; the first to open \
                 the file builds the index again from the -wal. Restarting {} alone is not enough while another \
                 process holds the old index. Never remove the -wal or -shm of a database in use",
                schema.owner,
                open_in(keepers),
                schema.owner
            ),
            Error::SchemaNewer { schema, .. } => format!(
                "it was written by a newer version of this application: upgrade this one, or restore a backup taken \
                 before the upgrade with {}; the file was not changed",
                command(Some(schema), "restore", "--from BACKUP")
            ),
            Error::SchemaBehind { found: 0, .. } => "retry in a moment".into(),
            Error::SchemaBehind { schema, .. } => format!(
                "start {} from this build ({}) so it upgrades the file, then retry",
                schema.owner,
                command(Some(schema), schema.tools.owner_subcommand, "")
            ),
            // A restore after the split would set the split's files aside: nothing merges the two.
            Error::RestoreBesideUnconverted { path, schema } => format!(
                "to keep what the backups hold (its data too, if they were taken after its split elsewhere), move \
                 {} out of {quoted_dir} and restore; to keep its data instead, start {} once, which splits it, and \
                 do not restore; nothing was changed",
                shell_quoted(path),
                schema.owner
            ),
            Error::NotConvertedYet {
                predecessor,
                schema,
                interrupted: true,
                ..
            } => match schema.predecessor {
                Some(p) => format!(
                    "run `{} --legacy {} --data-dir {quoted_dir}` again (or start {}, which does it first): it \
                     finishes the interrupted conversion, or redoes it, and loses nothing; nothing was created",
                    p.converter,
                    shell_quoted(predecessor),
                    schema.owner
                ),
                None => "convert it first; nothing was created".into(),
            },
            Error::NotConvertedYet {
                predecessor, schema, ..
            } => match schema.predecessor {
                Some(p) => format!(
                    "start the application's upgrade step, which converts it once, or run `{} --legacy {} \
                     --data-dir {quoted_dir}`; nothing was created",
                    p.converter,
                    shell_quoted(predecessor)
                ),
                None => "convert it first; nothing was created".into(),
            },
            Error::MigrationChanged { schema, .. } => format!(
                "released migrations must never be edited: run the build that wrote this file, or restore a backup \
                 with {}; the file was not changed",
                command(Some(schema), "restore", "--from BACKUP")
            ),
            Error::MigrationFailed {
                version,
                backup,
                schema,
                ..
            } => {
                let mut s = format!(
                    "nothing of this migration was applied (the file is still at version {}), and starting this \
                     build again fails the same way: go back to the previous version of the application (it reads \
                     the file as it is) or install a fixed build",
                    version.saturating_sub(1)
                );
                if let Some(b) = backup {
                    s.push_str(&format!(
                        "; the copy taken before migrating is {}, restored with {}",
                        b.display(),
                        command(Some(schema), "restore", &format!("--from {}", shell_quoted(b)))
                    ));
                }
                s
            }
            Error::InvalidMigrations { .. } => {
                "this is a bug in this build: report it; the file was not touched".into()
            }
            Error::NotADatabase { schema, .. } => format!(
                "check the path; if this file should be the database, {stop_owners} and run {}: it quarantines the \
                 file (nothing is deleted) and restores the newest good backup",
                command(*schema, "repair", "")
            ),
            Error::WrongDatabase { .. } => {
                "check the path: a database of another kind or application is never written into".into()
            }
            Error::HeaderIdsLost {
                version,
                lowered_to,
                schema,
                ..
            } => format!(
                "{stop_owners}, then run {}: it checks the file's tables against this build's schema again and \
                 writes {} back into its header, changing no row; the file was not changed",
                command(Some(schema), "repair", ""),
                match lowered_to {
                    None => "the two ids".to_string(),
                    Some(_) => format!("user_version {version}"),
                }
            ),
            Error::Corrupt { schema, .. } => format!(
                "{stop_owners}, then run {}: it quarantines the damaged file (nothing is deleted) and restores the \
                 newest backup that verifies, or says what else can be done",
                command(*schema, "repair", "")
            ),
            Error::BackupDamaged { data_dir, schema, .. } => format!(
                "restore another backup instead: `{}`, or `--from {quoted_dir}` for the newest one there that \
                 verifies; nothing was changed",
                schema.command("restore", data_dir, "--from FILE")
            ),
            // An attribute refuses root too, and no `chmod` changes it (chmod itself is refused): said first. One
            // on the folder refuses what changes its entries (a `-wal` made, a file removed).
            Error::PermissionDenied { path, .. }
                if let Some((at, (attribute, letter))) = [path.clone(), crate::files::resolved_folder_of(path)]
                    .into_iter()
                    .find_map(|at| crate::files::write_refusing_attribute(&at).map(|found| (at, found))) =>
            {
                let at = shell_quoted(&at);
                format!(
                    "{at} is {attribute} (see `lsattr -d {at}`), which refuses every writer, root included: `sudo \
                     chattr -{letter} {at}`, where it was not made so on purpose"
                )
            }
            // The mode is read as the remedy is said: what shuts this user out now.
            Error::ReadOnlyDirectory { path } | Error::PermissionDenied { path, .. }
                if let Some((at, mode)) = crate::files::shut_out_by_own_mode(&self.whose_mode_refused(path)) =>
            {
                let all = with_sidecars_shut_out(&at, |s| {
                    crate::files::shut_out_by_own_mode(s).is_some_and(|(by, _)| by == s)
                });
                let at = shell_quoted(&at);
                format!(
                    "this user owns {at}, and its mode shuts this user out (see `ls -ld {at}`): `chmod {mode} {all}`; \
                     or, where it was made so on purpose, give the command another place"
                )
            }
            Error::ShutsOutItsOwner { path, owner, mode } => {
                let all = with_sidecars_shut_out(path, |s| crate::files::shuts_out_its_owner(s).is_some());
                let at = shell_quoted(path);
                format!(
                    "`chmod {mode} {all}` (see `ls -ld {at}`; as root or user {owner}); or, where it was made so on \
                     purpose, give that user's commands another place"
                )
            }
            Error::ReadOnlyDirectory { .. } => format!(
                "run the command as the user that owns {quoted_dir} (see `ls -ld {quoted_dir}`), or give this user write \
                 access to it; a reader also reads it while its owner runs (the -wal and -shm then exist)"
            ),
            Error::ReadOnlyWal { .. } => format!(
                "copy the data directory to a writable disk, its -wal files with it (`cp -a {quoted_dir} COPY`), and \
                 run the command on the copy; or remount the file system holding {quoted_dir} read-write (see \
                 `findmnt -T {quoted_dir}`)"
            ),
            Error::ReadOnlyFileSystem { .. } => format!(
                "remount the file system holding {quoted_dir} read-write (see `findmnt -T {quoted_dir}`; a disk the \
                 kernel remounted read-only after errors wants `fsck` first), or copy the data directory to a \
                 writable disk; doctor, report and backup --to a writable folder work on it as it is"
            ),
            Error::PermissionDenied { .. } => format!(
                "run as the user that owns {quoted_dir} (see `ls -ld {quoted_dir}`), or give this user access to it"
            ),
            Error::AnotherUsersFiles {
                path,
                user,
                stray: true,
                left_beside,
                ..
            } => {
                let all: Vec<&PathBuf> = std::iter::once(path).chain(left_beside).collect();
                let it = if all.len() == 1 { "it" } else { "them" };
                format!(
                    "the rest of {quoted_dir} belongs to user {user}: a command run as another user left {it}; give \
                     {it} back with `sudo chown {}{user} {}`{}, then run the command again; nothing was changed",
                    // A folder (the private folder, the backups) holds that user's files too.
                    if all
                        .iter()
                        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
                    {
                        "-R "
                    } else {
                        ""
                    },
                    shell_quoted_all(all.iter().map(|p| p.as_path())),
                    // Listed when they are there: then none is missed.
                    if left_beside.is_empty() {
                        " (and its -wal and -shm, if any)"
                    } else {
                        ""
                    }
                )
            }
            Error::AnotherUsersFiles { owner, .. } => {
                format!("run the command as user {owner} (`sudo -u '#{owner}' COMMAND` as root); nothing was changed")
            }
            Error::OpenByAnotherName { other, holder, .. } => format!(
                "stop pid {} first; then remove the other name (`rm {}`: it is this same file, so nothing is lost) \
                 and start again; nothing was written",
                holder.pid,
                shell_quoted(other)
            ),
            Error::PathTooLong { .. } => format!(
                "use a folder with a shorter path (move one that holds files whole, its owners stopped): a data \
                 directory's files and backups add up to {} bytes to its path, so keep its path under {} bytes (a \
                 link to it does not shorten it); nothing was changed",
                crate::files::DATA_DIR_NAMES_MAX,
                crate::files::SQLITE_MAX_DB_PATH - crate::files::DATA_DIR_NAMES_MAX
            ),
            Error::RestoreUnfinished { holder: Some(_), .. } => {
                "wait for it to finish, then read the file again".into()
            }
            Error::RestoreUnfinished {
                holder: None, schema, ..
            } => format!(
                "start {} ({}): its open puts every file back as it was before; then run this again",
                schema.owner,
                command(Some(schema), schema.tools.owner_subcommand, "")
            ),
            Error::RestoreJournalUnreadable { .. } => {
                let data_dir = parent_dir(dir);
                format!(
                    "with every owner of {0} stopped, look at the files there: `<db>.restoring` is a backup's copy \
                     that was to be put in place, `<db>.<tag>-<time>` (replaced, corrupt, rekeyed) a file moved \
                     aside; put back by hand any database that is not at its path (rename its moved-aside file), \
                     then move the journal away (`mv {1} {1}.unreadable`) and start the owners; nothing was changed",
                    shell_quoted(data_dir),
                    shell_quoted(self.path())
                )
            }
            Error::Removed { schema, .. } => format!(
                "if it was moved or renamed, put it back at {}; otherwise {stop_owners}, then run {}: it restores the \
                 file's newest backup that verifies, or, with none, says so, and {} starts it empty on purpose",
                shell_quoted(self.path()),
                command(Some(schema), "repair", ""),
                command(Some(schema), "repair", "--allow-empty")
            ),
            Error::Missing { schema, .. } => format!(
                "start {} ({}): it creates the file; or check that {quoted_dir} is the right data directory",
                schema.owner,
                command(Some(schema), schema.tools.owner_subcommand, "")
            ),
            Error::PragmaRejected { .. } => {
                "the file system may not support it (WAL needs a local disk with shared memory): move the data \
                 directory to a local file system"
                    .into()
            }
            Error::DiskFull { .. } => format!(
                "free space on the disk holding {quoted_dir}{}; committed data is intact and writes succeed again \
                 once space returns",
                temp_dir_clause(dir, crate::files::sqlite_temp_dir().as_deref(), "on the disk holding")
            ),
            Error::NoFreeInodes { .. } => format!(
                "remove files no longer needed on the file system holding {quoted_dir} (each file takes an inode, \
                 whatever its size: a folder of many small files is the usual cause; `df -i {quoted_dir}` shows what \
                 is left); committed data is intact, and it opens again once there is room for two files"
            ),
            Error::OldIds { schema, .. } => format!(
                "{stop_owners}, then run {}: it moves them to the new ids, as the other file records them; no row \
                 is lost in the meantime",
                command(Some(schema), "repair", "")
            ),
            Error::IdsExhausted {
                table,
                schema,
                given_ids_since: false,
                ..
            } => format!(
                "freeing disk space does not help, and restarting fails the same way: the rows already in {table} \
                 are intact and read as before; {stop_owners}, then run {}: it gives the table's ids from {} up \
                 (the legacy file's: splitstore hands out the next id after the largest) the next free ones, with \
                 every reference to them in either database, and the owner adds rows again",
                command(Some(schema), "repair", ""),
                crate::renumber::FAR_IDS
            ),
            Error::IdsExhausted {
                table,
                schema,
                given_ids_since: true,
                ..
            } => format!(
                "freeing disk space does not help, and restarting fails the same way: the rows already in {table} \
                 are intact and read as before; {stop_owners}, then run {}: it gives them the ids the files naming \
                 them record, with every reference to them, and the owner adds rows again",
                command(Some(schema), "repair", "")
            ),
            Error::WriteFailed { .. } => format!(
                "check free space, quotas and file-size limits (ulimit -f) for {quoted_dir}{}; committed data is \
                 intact and writes succeed again once the cause is fixed",
                temp_dir_clause(dir, crate::files::sqlite_temp_dir().as_deref(), "for")
            ),
            Error::ReadFailed { .. } => {
                "retry: the file or its -wal was shorter than SQLite expected (a -wal removed by \
                 hand while the file was in use, which its owner takes back at its next write) or the disk failed to \
                 read it; if it persists, check the disk and run the application's doctor command"
                    .into()
            }
            Error::WalIndexStale { schema, keepers, .. } => format!(
                "stop every process using {quoted_dir} ({}, and every process reading the file{}), then start them \
                 again: the first to open the file builds the index again from the -wal, and the file opens with \
                 everything the database file and the -wal still hold. Restarting {} alone meets this again while \
                 another process keeps the old index. Never remove the -wal or -shm of a database in use",
                schema.owner,
                open_in(keepers),
                schema.owner
            ),
            Error::OrphanWal {
                removed,
                older_than_file,
                schema,
                ..
            } => {
                let aside = format!(
                    "{stop_owners}, then run {}: it moves the -wal and -shm aside as {}.orphan-<time>-wal and -shm \
                     (nothing is deleted)",
                    command(Some(schema), "repair", ""),
                    schema.file_name
                );
                if older_than_file.is_some() {
                    format!("{aside}, and the file opens as it is, newer than that -wal")
                } else if *removed {
                    format!(
                        "if the file was removed on purpose, {aside}, and puts back the file's newest backup that \
                         verifies ({} starts it empty where there is none); otherwise put the file back in its place \
                         first: with its -wal it opens with every write it had",
                        command(Some(schema), "repair", "--allow-empty")
                    )
                } else {
                    format!(
                        "if the file there now is the one to keep (a copy put back from a backup of your own), \
                         {aside}, and the file opens as it is, without those writes; otherwise put the file that was \
                         there back in its place: with its -wal it opens with every write it had"
                    )
                }
            }
            Error::Busy { writers: None, .. } => {
                "retry: some connection kept a write transaction open longer than the \
                 busy timeout; if it persists, look for a process that keeps one open"
                    .into()
            }
            Error::Busy {
                writers: Some(writers), ..
            } => format!(
                "{}, then retry: only the file's owner writes it (readers never need its write lock)",
                writers.remedy()
            ),
            Error::Constraint { .. } => "change the value so it no longer conflicts; nothing was written".into(),
            Error::BackupOlder { schema, .. } => format!(
                "keep what can still be read of them, on top of that backup, with {}; or restore the backup without \
                 them with {}; either way the damaged file is kept; nothing was changed",
                command(Some(schema), "repair", "--salvage"),
                command(Some(schema), "repair", "--accept-older-backup")
            ),
            Error::NoBackup {
                schema,
                removed,
                nothing_to_salvage,
                restoring,
                ..
            } => {
                let restore = command(Some(schema), "restore", "--from FILE");
                let salvage = command(Some(schema), "repair", "--salvage");
                if *restoring {
                    // The file in place may be sound: a salvage or an empty start is a repair's remedy, not one
                    // for a restore that found nothing to put back.
                    format!(
                        "restore a backup kept elsewhere with {restore}; nothing was changed ({} says whether the \
                         files in place are sound, and what to do if one is not)",
                        command(Some(schema), "doctor", "")
                    )
                } else if nothing_to_salvage.is_some() {
                    // Not `--salvage`, which would refuse, its remedy leading back here.
                    format!(
                        "restore a backup kept elsewhere with {restore}, or start it empty with {} (the damaged \
                         file is kept aside); nothing was changed",
                        command(Some(schema), "repair", "--allow-empty")
                    )
                } else if *removed {
                    // Nothing of it is left to salvage, and starting it empty loses nothing more (config.db's
                    // too): the remedy of the owner's refusal, down to the branch this repair found.
                    format!(
                        "if it was moved or renamed, put it back at {}; otherwise restore a backup kept elsewhere \
                         with {restore}, or start it empty on purpose with {}; nothing was changed",
                        shell_quoted(self.path()),
                        command(Some(schema), "repair", "--allow-empty")
                    )
                } else if schema.may_start_empty {
                    format!(
                        "restore a backup kept elsewhere with {restore}, copy every row that can still be read into \
                         a new file with {salvage}, or start the file empty with {}",
                        command(Some(schema), "repair", "--allow-empty")
                    )
                } else {
                    // Not "convert the legacy database again": a split refuses a directory it split already,
                    // and forced, it would set activity.db aside too, with all recorded since.
                    format!(
                        "{} holds what the user configured and never starts empty: restore a backup kept elsewhere \
                         with {restore}, or copy every row that can still be read into a new file with {salvage}",
                        schema.file_name
                    )
                }
            }
            Error::BackupsOfOtherFiles { backup_dir, schema, .. } => format!(
                "restore the one you mean by naming its file: {}; or move the other data directories' backups out \
                 of {} and run the command again; nothing was changed",
                command(Some(schema), "restore", "--from FILE"),
                backup_dir.display()
            ),
            Error::BackupKeyMismatch {
                backup,
                found,
                damaged,
                instead,
                schema,
                ..
            } => {
                let (its_key, rekey) = match found {
                    ErrorKind::NotEncrypted => ("--backup-in-clear", "--new-key-file FILE"),
                    ErrorKind::KeyRequired => ("--backup-key-file BACKUP_KEY", "--key-file BACKUP_KEY --decrypt"),
                    _ => (
                        "--backup-key-file BACKUP_KEY",
                        "--key-file BACKUP_KEY --new-key-file FILE",
                    ),
                };
                let program = schema.tools.program;
                // The rotation run again: it leaves files already under the new key as they are and re-keys
                // their backups the old key opens, in the backup folder and the folders named. Written out, not
                // `command`: that would add the directory's key as the old one.
                let folder = parent_dir(backup).to_path_buf();
                let elsewhere = if crate::backup::backup_folders(self.path(), std::slice::from_ref(&folder)).len() > 1 {
                    format!(" --backups {}", shell_quoted(&folder))
                } else {
                    String::new()
                };
                // Else, another data directory's backup: restore copies it under the directory's key into the
                // directory's backup folder, then restores that copy: the data directory never holds files under
                // two keys.
                let mut s = format!(
                    "bring it under the data directory's key with the key it was taken with, `{program} rekey \
                     --data-dir {quoted_dir} {rekey}{elsewhere}` (files already under their key are left as they \
                     are, and their backups that key opens are re-keyed), then run this command again; if rekey \
                     finds nothing of this data directory's under that key (the backup is another data \
                     directory's), restore it with the key it was taken with, which first puts a copy of it in the \
                     data directory's backup folder, as the directory's files are (under its key, or in the clear): \
                     {}",
                    command(
                        Some(schema),
                        "restore",
                        &format!("--from {} {its_key}", shell_quoted(backup))
                    )
                );
                if *found == ErrorKind::KeyRequired {
                    s.push_str(&format!(
                        "; if it is no backup at all, move it out of {}",
                        shell_quoted(parent_dir(backup))
                    ));
                }
                if let Some(older) = instead {
                    s.push_str(&format!(
                        "; or restore the older backup, without what the newer one holds past it, with {}",
                        command(Some(schema), "restore", &format!("--from {}", shell_quoted(older)))
                    ));
                }
                if *damaged {
                    s.push_str(&format!(
                        "; or copy every row that can still be read from the damaged file into a new file, \
                         without that backup, with {}",
                        command(Some(schema), "repair", "--salvage")
                    ));
                }
                s.push_str("; nothing was changed");
                s
            }
            Error::AlreadyUnderNewKey { found, schema, .. } => match found {
                ErrorKind::NotEncrypted => format!(
                    "it is in the clear already: open it without a key ({}); nothing was changed",
                    command(Some(schema), "doctor", "")
                ),
                ErrorKind::KeyRequired => format!(
                    "it is encrypted with the key of --new-key-file already: open it with that key ({}); to change \
                     its key, give that key as --key-file and the new one as --new-key-file; nothing was changed",
                    command(Some(schema), "doctor", "--key-file FILE")
                ),
                _ => format!(
                    "if a rotation to the key of --new-key-file ran before (and `cleanup` removed the file it moved \
                     aside), it is done: the file and the backups it re-keyed open with that key ({}); if you meant \
                     to rotate away from that key, give it as --key-file and the new one as --new-key-file; nothing \
                     was changed",
                    command(Some(schema), "doctor", "--key-file FILE")
                ),
            },
            Error::BackupInFuture {
                backup,
                instead,
                damaged,
                schema,
                ..
            } => {
                let mut s = format!(
                    "if the clock is right now, restore that backup by naming its file, which a restore takes \
                     whatever its name ({}; the file in place is kept aside); if the clock is behind, set it right \
                     and run this command again",
                    command(Some(schema), "restore", &format!("--from {}", shell_quoted(backup)))
                );
                s.push_str(&or_restore_instead(
                    instead.as_deref().map(|(older, _)| older),
                    *damaged,
                    schema,
                ));
                s
            }
            Error::BackupNamedEarlier {
                backup,
                instead,
                damaged,
                schema,
                ..
            } => format!(
                "restore that backup by naming its file, which a restore takes whatever its name ({}; the file in \
                 place is kept aside){}",
                command(Some(schema), "restore", &format!("--from {}", shell_quoted(backup))),
                or_restore_instead(Some(&instead.0), *damaged, schema)
            ),
            Error::NotDamage { remedy, .. } => format!("{remedy}; the repair changed nothing"),
            Error::BackupNewer { found, schema, .. } => format!(
                "restore it with a build of schema {found} or later, or restore an older backup by naming its file \
                 with {}; nothing was changed",
                command(Some(schema), "restore", "--from FILE")
            ),
            Error::Unavailable { .. } => "retry; if it persists, check the file's health".into(),
            Error::Sqlite { schema, .. } => format!("run {} for a diagnosis", command(*schema, "doctor", "")),
            // A file with something in it where a folder belongs: a database given as its own data directory,
            // say. "Remove it" told a user to delete the data the command was meant to use.
            Error::UnsafePath { path, .. }
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) =>
            {
                format!(
                    "nothing was written through it; it may hold data (a database given where its folder belongs, \
                     say), so never delete it unread: give the folder to use instead ({} holds it), or move it away \
                     (`mv {q} {q}.moved`) so that the folder can be created there",
                    shell_quoted(crate::files::parent_dir(path)),
                    q = shell_quoted(path)
                )
            }
            Error::UnsafePath { .. } => {
                "nothing was written through it: remove it (or move it away) so that what belongs at that path (a \
                 file or a folder) can be created there, and make sure only this user can write the data directory \
                 (chmod 700)"
                    .into()
            }
            Error::NotPrivate { path, .. } => format!(
                "make it private, writable by this user only: `chmod 700 {}`; nothing was written in it",
                shell_quoted(path)
            ),
            Error::Io { .. } => "check that the path exists and that this user may read and write it".into(),
            Error::VerificationFailed { path, .. } if path.to_string_lossy().ends_with(crate::salvage::TEMP_SUFFIX) => {
                "nothing was put in place and the source file was not changed; restore a backup kept elsewhere, and \
                 report this: a salvage is meant to produce a sound file"
                    .into()
            }
            // A copy of a sound file (a key rotation's): the same copy made again normally verifies.
            Error::VerificationFailed { .. } => "nothing was put in place and the file it was copied from was not \
                 changed; run the command again (a failing disk or memory can spoil a copy), and report this if it \
                 fails the same way"
                .into(),
            Error::KeyRejected { schema, .. } => format!(
                "supply the right key with --key-file, or restore from a backup taken with the key you have ({}); \
                 the file was not changed (a wrong key is never taken for damage)",
                command(*schema, "restore", "--from BACKUP --key-file FILE")
            ),
            Error::KeyRequired { .. } if !crate::key::encryption_available() => {
                "use a build with encryption (the `encryption` feature) and supply its key with --key-file; the file \
                 was not changed"
                    .into()
            }
            Error::KeyRequired { .. } => "supply its key with --key-file; the file was not changed".into(),
            Error::KeyRequiredBeside { schema, .. } => format!(
                "start its owner with the data directory's key ({}); nothing was created",
                match schema {
                    Some(s) => command(Some(s), s.tools.owner_subcommand, ""),
                    None => command(None, "owner", ""),
                }
            ),
            Error::NotEncrypted { path, schema } => {
                // Written out, not `command`: that adds the directory's key as the old one, and a file in the
                // clear has none.
                let program = schema.map_or("splitstore", |s| s.tools.program);
                let rekey = format!("`{program} rekey --data-dir {quoted_dir} --new-key-file FILE`");
                match crate::records::encrypted_sibling(path) {
                    // Opened without a key, this file would be written in the clear and the other refused.
                    Some(sibling) => format!(
                        "{} beside it is encrypted, and a data directory is encrypted as a whole: encrypt this one \
                         with that key: {stop_owners} and run {rekey} (FILE: that key's file; the encrypted file is \
                         left as it is)",
                        sibling.display()
                    ),
                    None => format!("open it without a key, or encrypt it with the key: {stop_owners} and run {rekey}"),
                }
            }
            Error::EncryptionUnavailable { .. } => "use a build with the `encryption` feature, or open the \
                 database without a key (it is then written in the clear)"
                .into(),
            Error::BadKeyFile { .. } => "a key file holds the 256-bit key as 64 hexadecimal characters and only its \
                 owner may read or write it (`chmod 600 FILE`)"
                .into(),
            Error::InvalidInput { field, .. } => format!("correct the {field} and retry; nothing was written"),
            Error::AfterPlacing { source, .. } => format!(
                "do not run the command again (it would put the same in place once more): the files named stand \
                 in place with what they need; deal with what stopped their open ({}), then start the owners, \
                 whose open does what this one could not",
                source.kind()
            ),
            Error::Stopped { .. } => "none: it stopped as asked, and nothing was changed; the next run (a \
                 daemon's or server's next start) does what this one did not"
                .into(),
        }
    }

    /// Maps a SQLite error met while working on `path` to the typed error a user can act on. Does no I/O.
    /// A stored value read as a type it cannot be read as (text where an integer belongs, say) is damage:
    /// [`Error::Corrupt`], naming where it is when the read did ([`UnreadableValue`]).
    pub fn from_sqlite(path: &Path, err: rusqlite::Error) -> Error {
        let path = path.to_path_buf();
        if let Some(detail) = unreadable_value(&err) {
            return Error::Corrupt {
                path,
                detail,
                schema: None,
            };
        }
        let (code, extended) = match &err {
            rusqlite::Error::SqliteFailure(e, _) => (e.code, e.extended_code),
            _ => {
                return Error::Sqlite {
                    path,
                    source: err,
                    schema: None,
                };
            }
        };
        match code {
            ErrorCode::NotADatabase => Error::NotADatabase { path, schema: None },
            ErrorCode::DatabaseCorrupt => Error::Corrupt {
                path,
                detail: err.to_string(),
                schema: None,
            },
            ErrorCode::DiskFull => Error::DiskFull { path },
            ErrorCode::SystemIoFailure
                if matches!(
                    extended,
                    rusqlite::ffi::SQLITE_IOERR_READ | rusqlite::ffi::SQLITE_IOERR_SHORT_READ
                ) =>
            {
                Error::ReadFailed {
                    path,
                    detail: format!("{err} (extended code {extended})"),
                    extended,
                }
            }
            ErrorCode::SystemIoFailure if crate::files::out_of_space(&path) => Error::DiskFull { path },
            ErrorCode::SystemIoFailure => Error::WriteFailed {
                path,
                detail: format!("{err} (extended code {extended})"),
            },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Busy { path, writers: None },
            ErrorCode::ReadOnly if extended == rusqlite::ffi::SQLITE_READONLY_DIRECTORY => {
                Error::ReadOnlyDirectory { path }
            }
            ErrorCode::PermissionDenied => Error::PermissionDenied { path, action: "open" },
            ErrorCode::CannotOpen if let Err(too_long) = crate::files::check_sqlite_path(&path) => too_long,
            ErrorCode::CannotOpen if crate::files::out_of_inodes(&path) => Error::NoFreeInodes { path },
            ErrorCode::ConstraintViolation => Error::Constraint {
                path,
                detail: err.to_string(),
            },
            _ => Error::Sqlite {
                path,
                source: err,
                schema: None,
            },
        }
    }

    /// An I/O error on `path` while trying to `action` it, typed by its cause: permission denied, a
    /// read-only file system, or anything else.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        let path = path.to_path_buf();
        match (source.kind(), source.raw_os_error()) {
            // Another user's file (or folder) in this user's folder: give it back, not "run as its folder's
            // owner", who is this user.
            (std::io::ErrorKind::PermissionDenied, _) => match crate::files::stray_of_another_user(&path) {
                Some((at, owner)) => Error::AnotherUsersFiles {
                    left_beside: crate::files::left_in_data_dir_beside(&at, owner),
                    path: at,
                    owner,
                    user: crate::files::this_user(),
                    stray: true,
                },
                None => Error::PermissionDenied { path, action },
            },
            (_, Some(libc::EROFS)) => Error::ReadOnlyFileSystem { path, action },
            (_, Some(libc::ELOOP)) => Error::UnsafePath {
                path,
                problem: "is a symbolic link".into(),
            },
            // Something the stores create is there as a directory (a lock file, say): no write went through it.
            (_, Some(libc::EISDIR)) => Error::UnsafePath {
                path,
                problem: "is a directory, not a regular file".into(),
            },
            // A folder on the way is a file (the private folder, say): name that one, not the path below it.
            (_, Some(libc::ENOTDIR)) => match path.ancestors().skip(1).find_map(|a| {
                std::fs::symlink_metadata(a)
                    .ok()
                    .filter(|m| !m.is_dir())
                    .map(|m| (a, m))
            }) {
                Some((not_a_dir, meta)) => crate::files::not_a_directory(not_a_dir, &meta),
                None => Error::Io { path, action, source },
            },
            // No room (the disk, a quota, a file-size limit): the same remedy as SQLite's failed write, not
            // "check that the path exists".
            (_, Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)) => Error::WriteFailed {
                path,
                detail: format!("could not {action} it: {source}"),
            },
            _ => Error::Io { path, action, source },
        }
    }
}

/// A value of a row that its reader cannot read as the type it asks for, named by its table, column and row
/// ([`crate::conn_ext::in_table`] puts it in the error of the row's read, for [`Error::from_sqlite`]).
#[derive(Debug)]
pub struct UnreadableValue {
    pub table: &'static str,
    pub column: String,
    /// The row's `id`, when the read has it.
    pub row_id: Option<i64>,
    /// What the read said of the value (rusqlite's message: the column's index and the type found).
    pub cause: String,
}

impl fmt::Display for UnreadableValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row_id {
            Some(id) => write!(
                f,
                "{} row {id}: {} cannot be read ({})",
                self.table, self.column, self.cause
            ),
            None => write!(f, "{}: {} cannot be read ({})", self.table, self.column, self.cause),
        }
    }
}

impl std::error::Error for UnreadableValue {}

/// What a read that met a stored value of another type than it asks for (text where an integer belongs, a
/// BLOB where text does) or out of the range it maps says of it, or `None` for any other error. The
/// application never writes such a value; these tables are not STRICT, so SQLite keeps whatever type a
/// damaged record's header says, and reads of the row fail on it: it is damage (`corrupt`, whose repair
/// finds it: [`crate::check::type_check`]), not an SQLite failure with nothing to do.
fn unreadable_value(err: &rusqlite::Error) -> Option<String> {
    let value = match err {
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => match cause.downcast_ref::<UnreadableValue>() {
            Some(named) => named.to_string(),
            None => format!("a stored value cannot be read ({err})"),
        },
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::IntegralValueOutOfRange(..) => {
            format!("a stored value cannot be read ({err})")
        }
        _ => return None,
    };
    Some(format!(
        "{value}: a value its column never holds, as damage that still parses leaves it (the tables are not \
         STRICT, so SQLite keeps whatever type a damaged record says)"
    ))
}

/// What every error type built on store-core says about itself, for code that handles any of them (a
/// failure record, a banner). [`impl_error_surface!`](crate::impl_error_surface) implements it.
pub trait Describe {
    fn kind(&self) -> ErrorKind;
    /// The file (or directory) it is about.
    fn path(&self) -> &Path;
    /// What happened, in one sentence that names the file.
    fn what(&self) -> String;
    /// What to do about it.
    fn remedy(&self) -> String;
    /// Who holds the owner lock, when the error is that a lock is held.
    fn locked_by(&self) -> Option<&LockHolder>;

    /// The error as a UI banner.
    fn banner(&self) -> Banner {
        Banner {
            kind: self.kind(),
            path: self.path().to_path_buf(),
            message: self.what(),
            remedy: self.remedy(),
            retryable: self.kind().is_retryable(),
        }
    }
}

/// Gives an error type the surface every error of these crates has, from its inherent `kind()`, `path()`,
/// `what()`, `remedy()` and `locked_by()`: [`Describe`], `Display`
/// (`"<what>. What to do: <remedy>"`), a `Debug` that shows the kind, path and message (what `fn main() ->
/// Result<..>` prints), `std::error::Error` with no `source()` (the message already holds the cause),
/// `Serialize` as a [`Banner`], and inherent `is_not_ready()`, `is_retryable()` and `banner()`.
#[macro_export]
macro_rules! impl_error_surface {
    ($ty:ty) => {
        impl $crate::Describe for $ty {
            fn kind(&self) -> $crate::ErrorKind {
                <$ty>::kind(self)
            }
            fn path(&self) -> &::std::path::Path {
                <$ty>::path(self)
            }
            fn what(&self) -> String {
                <$ty>::what(self)
            }
            fn remedy(&self) -> String {
                <$ty>::remedy(self)
            }
            fn locked_by(&self) -> Option<&$crate::LockHolder> {
                <$ty>::locked_by(self)
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(
                    f,
                    "{}. What to do: {}",
                    $crate::Describe::what(self),
                    $crate::Describe::remedy(self)
                )
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("kind", &$crate::Describe::kind(self))
                    .field("path", &$crate::Describe::path(self))
                    .field("message", &$crate::Describe::what(self))
                    .field("remedy", &$crate::Describe::remedy(self))
                    .finish()
            }
        }

        impl ::std::error::Error for $ty {}

        impl $crate::serde::Serialize for $ty {
            fn serialize<S: $crate::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::Describe::banner(self).serialize(serializer)
            }
        }

        impl $ty {
            /// The file is not there or not ready yet: wait and ask again (see `ErrorKind::is_not_ready`).
            pub fn is_not_ready(&self) -> bool {
                $crate::Describe::kind(self).is_not_ready()
            }

            /// Whether the same call can succeed later without anyone acting (see `ErrorKind::is_retryable`).
            pub fn is_retryable(&self) -> bool {
                $crate::Describe::kind(self).is_retryable()
            }

            /// The error as a UI banner: kind, path, message, remedy and whether retrying can help.
            pub fn banner(&self) -> $crate::Banner {
                $crate::Describe::banner(self)
            }
        }
    };
}

impl_error_surface!(Error);

/// An error as data for a UI: a persistent banner with the file, the problem, the remedy, and whether
/// retrying (rather than acting on the remedy) can help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banner {
    pub kind: ErrorKind,
    #[serde(with = "crate::files::lossy_path")]
    pub path: PathBuf,
    pub message: String,
    pub remedy: String,
    pub retryable: bool,
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// Adds the path (and the kind, when known) to a rusqlite result, for code that works on one known file.
pub trait SqliteResultExt<T> {
    /// Maps a SQLite error to the typed [`Error`] for `path`.
    fn at(self, path: &Path) -> Result<T>;
    /// Maps a SQLite error to the typed [`Error`] for `path`, a database of `schema`.
    fn at_db(self, path: &Path, schema: &'static Schema) -> Result<T>;
}

impl<T> SqliteResultExt<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::from_sqlite(path, e))
    }

    fn at_db(self, path: &Path, schema: &'static Schema) -> Result<T> {
        self.map_err(|e| Error::from_sqlite(path, e).with_schema(schema))
    }
}

/// What a remedy that asks to stop every process using a file adds to name them: "; it is open in pid N,
/// running `x`" (nothing when none is seen).
fn open_in(keepers: &[LockHolder]) -> String {
    LockHolder::listed(keepers).map_or(String::new(), |keepers| format!("; it is open in {keepers}"))
}

/// `at` and those of its `-wal`, `-shm` and `-journal` that `shut_out` says are shut out too, quoted for one
/// `chmod`: a database's sidecars made while it was read-only took its mode.
fn with_sidecars_shut_out(at: &Path, shut_out: impl Fn(&Path) -> bool) -> String {
    let sidecars = crate::files::sidecars(at);
    shell_quoted_all(std::iter::once(at).chain(sidecars.iter().map(PathBuf::as_path).filter(|s| shut_out(s))))
}

/// `paths`, each quoted for a shell, one space apart: the arguments of one command.
fn shell_quoted_all<'a>(paths: impl Iterator<Item = &'a Path>) -> String {
    paths.map(shell_quoted).collect::<Vec<_>>().join(" ")
}

/// What a full disk's or a failed write's remedy adds when SQLite's temporary files (`temp_dir`) lie on
/// another file system than the database (`dir`): SQLITE_FULL and a failed write(2) do not say which file
/// they came from, the database or a temporary file (the sort of an index build spills there: about 100 MB
/// for a salvage of a 1 GB activity.db). Naming only the data directory sent a user with a small tmpfs
/// `/tmp` to free space where there was plenty.
///
/// `lead` joins the folder to the remedy's sentence ("on the disk holding", "for").
fn temp_dir_clause(dir: &Path, temp_dir: Option<&Path>, lead: &str) -> String {
    match temp_dir {
        Some(temp) if crate::files::on_different_file_systems(dir, temp) => format!(
            ", and {lead} {}, where SQLite writes its temporary files (sorts, index builds), or point SQLITE_TMPDIR \
             at a folder on a disk with room",
            shell_quoted(temp)
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, temp_dir_clause};
    use std::path::Path;

    /// Removing a file is refused by its folder's mode, never its own: a read-only file in a read-only folder
    /// was told to be made writable (`chmod u+rw FILE`), which left its removal refused.
    #[test]
    fn a_removal_refused_names_the_folders_mode_not_the_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("kept");
        let file = folder.join("legacy.db");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o500)).unwrap();
        let remedy = |action| {
            Error::PermissionDenied {
                path: file.clone(),
                action,
            }
            .remedy()
        };
        let (removal, write) = (remedy("remove"), remedy("write"));
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            removal.contains(&format!("`chmod u+rwx {}`", folder.display())),
            "{removal}"
        );
        assert!(write.contains(&format!("`chmod u+rw {}`", file.display())), "{write}");
    }

    #[test]
    fn a_copy_that_fails_its_checks_says_what_to_do_by_what_it_was_copied_for() {
        let failed = |path: &str| {
            Error::VerificationFailed {
                path: path.into(),
                detail: "the rows per table differ".into(),
            }
            .to_string()
        };
        assert_eq!(
            failed("/d/activity.db.salvaging"),
            "/d/activity.db.salvaging was built but failed its checks, so it was removed: the rows per table \
             differ. What to do: nothing was put in place and the source file was not changed; restore a backup \
             kept elsewhere, and report this: a salvage is meant to produce a sound file"
        );
        assert_eq!(
            failed("/d/activity.db.rekeying"),
            "/d/activity.db.rekeying was built but failed its checks, so it was removed: the rows per table \
             differ. What to do: nothing was put in place and the file it was copied from was not changed; run \
             the command again (a failing disk or memory can spoil a copy), and report this if it fails the same \
             way"
        );
    }

    /// A directory this user may not write, which SQLite needs to write into to open a WAL database: said for
    /// the owner as for a reader (it told an owner to "keep the owner running").
    #[test]
    fn a_directory_sqlite_cannot_write_into_is_said_for_owners_and_readers_alike() {
        let err = Error::ReadOnlyDirectory {
            path: std::path::PathBuf::from("/data/activity.db"),
        };
        assert_eq!(
            err.to_string(),
            "/data/activity.db cannot be opened: SQLite must create /data/activity.db-wal and /data/activity.db-shm \
             beside it (its owner to write, a reader to read it in WAL mode), and this user may not write the \
             directory holding it. What to do: run the command as the user that owns /data (see `ls -ld /data`), \
             or give this user write access to it; a reader also reads it while its owner runs (the -wal and -shm \
             then exist)"
        );
    }

    /// A write refused by a read-only mount names the write and the mount, not a reader's `-wal` (it said
    /// "cannot be read: a reader must create ...-wal" of a lock file an owner could not open).
    #[test]
    fn a_write_on_a_read_only_file_system_says_so() {
        let err = Error::io(
            Path::new("/data/activity.db.lock"),
            "open",
            std::io::Error::from_raw_os_error(libc::EROFS),
        );
        assert_eq!(err.kind(), crate::ErrorKind::ReadOnlyDirectory);
        assert_eq!(
            err.to_string(),
            "could not open /data/activity.db.lock: the file system holding it is mounted read-only. What to do: \
             remount the file system holding /data read-write (see `findmnt -T /data`; a disk the kernel remounted \
             read-only after errors wants `fsck` first), or copy the data directory to a writable disk; doctor, \
             report and backup --to a writable folder work on it as it is"
        );
    }

    #[test]
    fn a_temporary_folder_on_another_file_system_is_named_with_how_to_move_it() {
        let dir = tempfile::tempdir().unwrap();
        // procfs is never the file system of a temporary folder.
        assert_eq!(
            temp_dir_clause(dir.path(), Some(Path::new("/proc")), "on the disk holding"),
            ", and on the disk holding /proc, where SQLite writes its temporary files (sorts, index builds), or \
             point SQLITE_TMPDIR at a folder on a disk with room"
        );
        let beside = dir.path().join("tmp");
        std::fs::create_dir(&beside).unwrap();
        assert_eq!(temp_dir_clause(dir.path(), Some(&beside), "for"), "");
        assert_eq!(temp_dir_clause(dir.path(), None, "for"), "");
    }
}
