//! The owner's connection: the one writable connection to a database, opened honestly.
//!
//! Order matters, and each step is here for a reason:
//! 1. the data directory (0700, refused if others may write it) and the owner lock, before touching the file;
//! 2. the file and its sidecars checked to be private regular files (a planted link is refused, its target
//!    untouched); an empty file that the data directory shows held data before, or an empty file beside a
//!    live WAL, is damage, not a new install; a file about to be created beside an unconverted predecessor
//!    is not created;
//! 3. the file created 0600 if missing, so SQLite's `-wal`/`-shm` inherit 0600;
//! 4. the first schema read inside open (garbage fails now with `NotADatabase`, a truncated file with
//!    `Corrupt`), identity (`application_id`) and history (version, checksums) checked while nothing has
//!    been written, so a refused file keeps its bytes;
//! 5. the connection posture, each pragma read back, and the commits the WAL's index lists read once (a
//!    `-wal` removed while another process kept its index is said as such, not met by a later read);
//! 6. pending migrations (quick_check, pre-migration backup, one transaction per step);
//! 7. the outcome recorded in the private folder: the first successful open, or the failure's banner.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::backup::{self, BackupClass};
use crate::checkpoint::{self, CheckpointMode, TransactionHolders};
use crate::conn_ext::{self, ConnExt};
use crate::error::{Describe, Error, ErrorKind, Result, SqliteResultExt};
use crate::files::{self, FileId};
use crate::key::Key;
use crate::migrate::{self, MigrationHook, UpgradeReport};
use crate::owner_lock::{LockHolder, OwnerLock, Waits};
use crate::provenance::Provenance;
use crate::schema::Schema;
use crate::{conversion, private_dir, records};

/// How long a connection waits for a lock held by another connection before `Busy`.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest busy timeout SQLite takes: `i32::MAX` milliseconds (24.8 days). A longer one (an application
/// meaning "wait as long as it takes") waits this long: rusqlite panics on anything longer.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// `busy` as SQLite can take it: at most [`MAX_BUSY_TIMEOUT`].
pub fn busy_timeout_within_limit(busy: Duration) -> Duration {
    busy.min(MAX_BUSY_TIMEOUT)
}
/// `PRAGMA journal_size_limit`: after a checkpoint resets the WAL, the file is truncated to this size, so a
/// burst does not leave a huge `-wal` behind (<https://sqlite.org/pragma.html#pragma_journal_size_limit>).
pub const JOURNAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
/// Prepared statements cached per connection.
pub const STATEMENT_CACHE: usize = 64;
/// How often, at most, a write first confirms that the owner lock still guards the file and that the file at
/// the path, its `-wal` and its `-shm` are still the ones the owner has open (four `lstat`s,
/// [`OwnerConnection::write`]). Every write would cost 2-3% of a one-row commit on a machine where a system
/// call is slow; once a millisecond costs nothing measurable, and bounds what is written after a replacement
/// to a millisecond's writes.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(1);

/// Options for [`OwnerConnection::open_with`].
#[derive(Clone)]
pub struct OpenOptions {
    pub busy_timeout: Duration,
    /// Where backups go (pre-migration ones in its `pre-migration` folder); `None` means
    /// `<data dir>/backups`.
    pub backup_dir: Option<PathBuf>,
    /// Stop migrating at this version instead of the build's last (a restore leaves a backup at its own
    /// version; tests build old versions with it).
    pub target_version: Option<u32>,
    /// Runs inside each migration's transaction before COMMIT (fault-injection drills).
    pub migration_hook: Option<MigrationHook>,
    /// Where the schema's predecessor lives, if not at its conventional name in the data directory.
    pub predecessor: Option<PathBuf>,
    /// The file is a temporary one under construction (a converter's or a salvage's output before it is put
    /// in place), not a data directory's database: its opens are not recorded, it is created even beside an
    /// unconverted predecessor (it is the conversion), and migrating it takes no pre-migration backup (what
    /// it was built from is kept elsewhere).
    pub temporary_file: bool,
    /// The key of an encrypted database (`encryption` feature): every connection this open makes is keyed
    /// with it first, and the pre-migration backup is encrypted with it. `None`: a plaintext database.
    pub key: Option<Key>,
    /// Create the file empty even where it held data before ([`Error::Removed`] otherwise): a repair starting
    /// it empty on purpose.
    pub start_empty: bool,
    /// How the open waits for another process: for the backup folder its pre-migration backup goes into,
    /// while a backup or restore holds it. Its stop flag gives the wait up ([`Error::Stopped`], nothing
    /// changed); its callback is told who is in the way.
    pub waits: Waits,
    /// Told before the open migrates a file that already had a schema (before its checks and copy), and as
    /// each phase of the migration begins ([`migrate::MigrationPhase`]): a process says so in its log and to
    /// its supervisor, where a kill during a long migration (a start timeout) otherwise follows silence, and
    /// each next start is killed the same way; an app shows what its start waits for.
    pub on_migrating: Option<migrate::MigratingCallback>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            backup_dir: None,
            target_version: None,
            migration_hook: None,
            predecessor: None,
            temporary_file: false,
            key: None,
            start_empty: false,
            waits: Waits::default(),
            on_migrating: None,
        }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("busy_timeout", &self.busy_timeout)
            .field("backup_dir", &self.backup_dir)
            .field("target_version", &self.target_version)
            .field("migration_hook", &self.migration_hook.as_ref().map(|_| "<hook>"))
            .field("predecessor", &self.predecessor)
            .field("temporary_file", &self.temporary_file)
            .field("key", &self.key)
            .field("start_empty", &self.start_empty)
            .field("waits", &self.waits)
            .field("on_migrating", &self.on_migrating.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// What happened during open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The file did not exist, or was empty, and was initialised.
    pub created: bool,
    pub upgrade: UpgradeReport,
    /// Damage an owner met using this file while running, before this open ([`records::note_damage`]). An
    /// open reads only the pages it needs, so it says nothing about that page: the damage is still there
    /// until a restore or repair puts another file in place. An owner that cannot work around it stops at
    /// once with [`OwnerConnection::damage_seen`] rather than meeting the page again.
    pub damage_seen: Option<records::FailureRecord>,
    /// The AUTOINCREMENT counters found behind the ids the file had handed out, and raised past them: (table,
    /// the highest id handed out). Only for a store that keeps its counters ([`OwnerConnection::keep_counters`]).
    pub counters_raised: Vec<(String, i64)>,
    /// The `-wal` the file's last owner left when it stopped without emptying it (a crash, a kill) was gone
    /// before this open (removed by hand, by a cleanup or sync tool): whatever it held since the last
    /// checkpoint is not in the file ([`records::wal_gone`]). Nothing is left to bring back; said so that it
    /// is not lost in silence.
    pub wal_gone: bool,
    /// A restore killed before its commit was undone by this open ([`crate::restore::undo_interrupted`]):
    /// the files are as they were before it, the backup it was putting in place is not. Said so that an
    /// operator does not take the restore for done.
    pub restore_undone: bool,
    /// The file's folder is on a network file system ([`crate::diagnostics::network_file_system_problem`]):
    /// said at every start, as doctor says it, since nothing refuses it (one machine's processes work there).
    pub network_file_system: Option<crate::diagnostics::Problem>,
    /// The file has more than one name ([`crate::diagnostics::hard_linked_problem`]): said at every start, as
    /// doctor says it (refused only while another process has it open by another name).
    pub hard_linked: Option<crate::diagnostics::Problem>,
    /// The file's `auto_vacuum` was turned off by a tool ([`crate::diagnostics::auto_vacuum_problem`]): said at
    /// every start, as doctor says it, until `repair` sets it back.
    pub auto_vacuum_off: Option<crate::diagnostics::Problem>,
    /// Rows naming a parent row the file no longer holds ([`crate::diagnostics::foreign_key_problem`]): a tool
    /// with foreign keys off deleted the parent (the `sqlite3` shell does). Said at every start, as doctor says
    /// it, until `repair` removes them ([`OwnerConnection::remove_orphans`]); nothing else in the file tells them.
    pub foreign_key_violations: Option<crate::diagnostics::Problem>,
    /// Indexes or triggers of the file's schema that a tool dropped or changed
    /// ([`crate::diagnostics::schema_objects_problem`]): without a trigger what it keeps is no longer kept
    /// (activity.db's running totals stop counting the sessions that end). Said at every start, as doctor says
    /// it, until `repair` creates them again ([`OwnerConnection::restore_schema_objects`]).
    pub schema_objects_missing: Option<crate::diagnostics::Problem>,
}

/// The single writable connection to a database, holding its owner lock for as long as it lives.
#[derive(Debug)]
pub struct OwnerConnection {
    // Field order: the connection closes (and checkpoints) before the lock is released.
    conn: ClosingConnection,
    path: PathBuf,
    schema: &'static Schema,
    report: OpenReport,
    key: Option<Key>,
    busy_timeout: Duration,
    /// The connection settings the owning store made ([`configure`](Self::configure)), made again on a new
    /// connection.
    settings: Vec<(&'static str, String)>,
    /// The connection met damage under a key: SQLCipher then fails every later read on it (hazards:
    /// "Encryption at rest"), so the next write starts on a new one.
    spent: Cell<bool>,
    /// The database file this connection opened: what the path (`watched`, made absolute: see
    /// [`files::absolute`]) must still name for writes to reach the user's database (a file moved over it,
    /// or its removal, leaves this connection writing into a file no longer at that path, lost at the next
    /// start).
    file: FileId,
    watched: PathBuf,
    /// `None` for a temporary file under construction: it leaves WAL for its load (its own connection then
    /// removes the `-wal` and `-shm`), and no other process opens it.
    wal_files: Option<WalFiles>,
    /// When the last write confirmed the lock and the file ([`confirm`](Self::confirm)); `None`: the next
    /// write does.
    confirmed: Option<Instant>,
    /// The highest ids the file handed out, kept in its record after each write ([`keep_counters`](Self::keep_counters));
    /// `None`: not kept.
    counters_kept: Option<BTreeMap<String, i64>>,
    /// This connection's entry among the files owned in this process ([`replaced_under_owner_here`]).
    owned_here: Option<OwnedHere>,
    /// What stopped this handle's writes is recorded ([`note_stopped`](Self::note_stopped)).
    stop_noted: bool,
    lock: OwnerLock,
}

impl OwnerConnection {
    /// Opens `path` as the owner with default options.
    pub fn open(path: &Path, schema: &'static Schema) -> Result<OwnerConnection> {
        Self::open_with(path, schema, &OpenOptions::default())
    }

    /// Opens `path` as the owner: takes the lock, creates the file if missing, checks it is this kind and
    /// not newer than the build, sets and verifies the posture, and applies pending migrations.
    pub fn open_with(path: &Path, schema: &'static Schema, opts: &OpenOptions) -> Result<OwnerConnection> {
        let path = &files::absolute(path);
        files::check_sqlite_path(path)?;
        files::create_data_dir(files::parent_dir(path))?;
        // A restore killed half-way is undone first, so an owner never starts on half of a restored pair.
        let restore_undone = crate::restore::undo_interrupted(files::parent_dir(path))?;
        let lock = OwnerLock::acquire(path)?;
        let mut owner = Self::open_locked(lock, schema, opts)?;
        owner.report.restore_undone = restore_undone;
        Ok(owner)
    }

    /// Opens the database whose lock the caller already holds (restore and repair take the lock first, swap
    /// the file, then open it). Everything else is as [`open_with`](Self::open_with); every open goes
    /// through here. A failed open (other than a held lock) is recorded for a UI to show
    /// ([`records::last_failure`]); a successful one clears that record.
    pub fn open_locked(lock: OwnerLock, schema: &'static Schema, opts: &OpenOptions) -> Result<OwnerConnection> {
        let path = lock.db_path().to_path_buf();
        match Self::open_owned(lock, schema, opts) {
            Ok(mut owner) => {
                if !opts.temporary_file {
                    records::note_success(&path)?;
                    records::note_encryption(&path, opts.key.as_ref())?;
                    records::note_wal_pair(&path, owner.file);
                    owner.owned_here = OwnedHere::register(&owner.watched, owner.file);
                    private_dir::remove_stale_scratch(files::parent_dir(&path));
                }
                Ok(owner)
            }
            Err(e) => {
                let e = crate::key::explain(e, opts.key.as_ref());
                // An open writes too (a migration, recovery, the counters): one kept waiting past the busy
                // timeout names who holds the write lock, as a write does ([`Self::explained`]).
                let e = match e {
                    Error::Busy { path, writers: None } => busy_naming_writers(path),
                    e => e,
                };
                if !opts.temporary_file && e.kind() != ErrorKind::Locked {
                    records::note_failure(&path, &e);
                }
                Err(e)
            }
        }
    }

    fn open_owned(lock: OwnerLock, schema: &'static Schema, opts: &OpenOptions) -> Result<OwnerConnection> {
        let path = lock.db_path().to_path_buf();
        let path = path.as_path();
        schema.validate().map_err(|detail| Error::InvalidMigrations {
            path: path.to_path_buf(),
            detail,
        })?;
        let target = opts.target_version.unwrap_or(schema.end_version());
        if target > schema.end_version() {
            return Err(Error::InvalidMigrations {
                path: path.to_path_buf(),
                detail: format!(
                    "target version {target} is past the last migration ({})",
                    schema.end_version()
                ),
            });
        }
        files::ensure_private(path)?;
        for sidecar in files::sidecars(path) {
            files::ensure_private(&sidecar)?;
        }
        if opts.temporary_file {
            refuse_truncated(path, schema, opts.key.as_ref())?;
        } else {
            refuse_open_by_another_name(path)?;
            refuse_before_open(path, schema, opts.key.as_ref())?;
        }
        // Before SQLite opens the file, which creates a `-wal` in place of one removed.
        let wal_gone = !opts.temporary_file && records::wal_gone(path);
        let size = std::fs::symlink_metadata(path).map(|m| m.len()).ok();
        if size.unwrap_or(0) == 0
            && !opts.temporary_file
            && let Some(predecessor) = conversion::pending(path, schema, opts.predecessor.as_deref())
        {
            return Err(Error::NotConvertedYet {
                path: path.to_path_buf(),
                predecessor,
                interrupted: conversion::in_progress(files::parent_dir(path)).is_some(),
                schema,
            });
        }
        // Encryption at rest is a property of the data directory: a new file in the clear beside an encrypted
        // one (its owner started without the key) would hold the user's data unprotected.
        if size.unwrap_or(0) == 0
            && opts.key.is_none()
            && !opts.temporary_file
            && let Some(encrypted) = records::encrypted_sibling(path)
        {
            return Err(Error::KeyRequiredBeside {
                path: path.to_path_buf(),
                encrypted,
                schema: Some(schema),
            });
        }
        if size.is_none() {
            // A file that held data is not started empty in its place, unless that is asked for.
            if !opts.temporary_file
                && !opts.start_empty
                && let e @ Error::Removed { .. } = missing(path, schema, opts.key.as_ref())
            {
                return Err(e);
            }
            drop(files::create_private_new(path)?);
        }

        let mut conn = connect(path, schema, opts.key.as_ref(), opts.busy_timeout)?;
        let state = migrate::read_state(&conn, path, schema).map_err(|e| stale_index(e, schema))?;
        migrate::check_identity(&conn, path, schema, &state)?;
        // A file that was there blank (not one created above, nor one a start asked to be empty).
        if state.is_blank()
            && size.is_some()
            && !opts.temporary_file
            && !opts.start_empty
            && let Some(e) = blank_that_held_data(path, schema, opts.key.as_ref())
        {
            return Err(e);
        }
        migrate::check_history(&conn, path, schema, &state)?;

        set_posture(&conn, path, schema, state.is_blank(), opts.busy_timeout)?;
        if !opts.temporary_file {
            // Reads every commit the WAL's index lists and has not copied back yet (copying what no reader's
            // snapshot holds back; never waits): a -wal removed while the owner was stopped and another
            // process kept the index fails here, said as such, rather than in whichever read meets it later.
            match checkpoint::checkpoint(&conn, CheckpointMode::Passive).at(path) {
                // A passive checkpoint does not wait for one another connection is running (a recovery of
                // the index): nothing to say then.
                Err(e) if e.kind() == ErrorKind::Busy => {}
                Err(e) => return Err(stale_index(e.with_schema(schema), schema)),
                Ok(_) => {}
            }
        }
        // A temporary file under construction is not the user's database: what it is built from is kept
        // elsewhere (a verified backup a salvage starts from), so its migrations take no backup of it.
        let backup_dir = match (&opts.backup_dir, opts.temporary_file) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => Some(backup::default_backup_dir(path)),
        };
        let upgrade = migrate::upgrade(
            &mut conn,
            path,
            schema,
            (state.user_version, target),
            backup_dir.as_deref(),
            opts,
        );
        // Back to NORMAL whatever happened: FULL is only for the migration itself.
        conn_ext::set_and_verify(&conn, path, "synchronous", "NORMAL", "1")?;
        let upgrade = upgrade?;
        // A file this open created was verified INCREMENTAL as it was made (`initialize`); one a tool changed
        // since is opened as it is and said, not refused: refusing stopped every start of its owner, with a
        // remedy about the file system, over space not given back.
        let auto_vacuum_off = crate::diagnostics::auto_vacuum_problem(&conn, path, schema)?;
        // Rows a tool left naming a deleted parent: a migration no longer stops on them (it fails only on those
        // it makes), so this says them at the owner's start, not only to doctor. A temporary file is built
        // from checked rows. One seek per child row: 5-7 ms for 100 000 calendar events.
        let (foreign_key_violations, schema_objects_missing) = if opts.temporary_file {
            (None, None)
        } else {
            let violations = crate::check::foreign_key_violations(&conn).at_db(path, schema)?;
            (
                crate::diagnostics::foreign_key_problem(path, schema, &violations),
                crate::diagnostics::schema_objects_problem(&conn, path, schema, upgrade.to_version)?,
            )
        };
        // The user's database (not a file under construction) gets the lineage its backups are told by.
        if !opts.temporary_file {
            Provenance::ensure_lineage(&conn).at_db(path, schema)?;
        }
        // Nobody else may replace the file while the lock is held, so the file at the path now is the one
        // the connection opened.
        let file = files::file_id(path).map_err(|e| Error::io(path, "read the metadata of", e))?;
        let watched = files::absolute(path);
        Ok(OwnerConnection {
            conn: ClosingConnection {
                conn,
                truncate_on_close: true,
                db: (!opts.temporary_file).then(|| path.to_path_buf()),
            },
            path: path.to_path_buf(),
            schema,
            report: OpenReport {
                created: state.is_blank(),
                upgrade,
                damage_seen: records::damage_seen(path),
                counters_raised: Vec::new(),
                wal_gone,
                restore_undone: false,
                network_file_system: (!opts.temporary_file)
                    .then(|| crate::diagnostics::network_file_system_problem(files::parent_dir(path)))
                    .flatten(),
                hard_linked: (!opts.temporary_file)
                    .then(|| crate::diagnostics::hard_linked_problem(path, schema))
                    .flatten(),
                auto_vacuum_off,
                foreign_key_violations,
                schema_objects_missing,
            },
            key: opts.key.clone(),
            busy_timeout: opts.busy_timeout,
            settings: Vec::new(),
            spent: Cell::new(false),
            file,
            wal_files: (!opts.temporary_file).then(|| WalFiles::beside(&watched)),
            watched,
            confirmed: None,
            counters_kept: None,
            owned_here: None,
            stop_noted: false,
            lock,
        })
    }

    /// Sets a connection setting (`PRAGMA name = value`, checked to read back as `value`) that the owning
    /// store needs, and keeps it: a new connection ([`try_write`](Self::try_write) after damage under a
    /// key) gets it too.
    pub fn configure(&mut self, pragma: &'static str, value: &str) -> Result<()> {
        conn_ext::set_and_verify(&self.conn, &self.path, pragma, value, value)?;
        self.settings.push((pragma, value.to_string()));
        Ok(())
    }

    /// Replaces a connection SQLCipher will not read with any more (see `spent`), or one whose `-wal` was
    /// removed ([`take_back_wal_files`](Self::take_back_wal_files)), by a new one, set up as open set up the
    /// first. The old one closes without a checkpoint: the new one is open, so SQLite does not checkpoint on
    /// that close either (https://sqlite.org/wal.html#automatic_checkpoint).
    fn reconnect(&mut self) -> Result<()> {
        let conn = connect(&self.path, self.schema, self.key.as_ref(), self.busy_timeout)?;
        set_posture(&conn, &self.path, self.schema, false, self.busy_timeout)?;
        for (pragma, value) in &self.settings {
            conn_ext::set_and_verify(&conn, &self.path, pragma, value, value)?;
        }
        drop(std::mem::replace(&mut self.conn.conn, conn));
        self.spent.set(false);
        if self.wal_files.is_some() {
            self.wal_files = Some(WalFiles::beside(&self.watched));
            records::note_wal_pair(&self.watched, self.file);
        }
        Ok(())
    }

    /// Notes an error met on this connection: damage is recorded ([`records::note_damage`]), and under a key
    /// it spends the connection.
    fn met(&self, e: &dyn Describe) {
        records::note_damage(&self.path, e);
        if self.key.is_some() && matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase) {
            self.spent.set(true);
        }
    }

    /// The connection, for what the owning store runs on it besides statements (checkpoints). Single
    /// statements go through [`autocommit`](Self::autocommit) and anything with more than one through
    /// [`write`](Self::write): both record damage and replace a connection that damage under a key spent.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Before a write, at most once per [`CONFIRM_INTERVAL`]: the owner lock still guards the file
    /// ([`OwnerLock::confirm`]), and the database file at the path is the one this connection has open. A
    /// backup moved over a live database (or the database removed) would otherwise take every later write
    /// into a file no longer at that path: [`Error::DatabaseReplaced`]. Likewise its `-wal` and `-shm`
    /// ([`take_back_wal_files`](Self::take_back_wal_files)).
    fn confirm(&mut self) -> Result<()> {
        if self.confirmed.is_some_and(|at| at.elapsed() < CONFIRM_INTERVAL) {
            return Ok(());
        }
        self.confirm_now().inspect_err(|e| self.note_stopped(e))?;
        self.confirmed = Some(Instant::now());
        Ok(())
    }

    /// Records, once, an error of [`confirm`](Self::confirm) that stops this handle's writes until an owner
    /// starts again on the file ([`records::note_stopped`]): this owner still holds the lock, so no other
    /// process (the server's banner, doctor) tells otherwise that nothing is recorded. Not when another
    /// owner holds the lock file now in place of this one's: that owner started on the file, and it writes.
    fn note_stopped(&mut self, e: &Error) {
        let stops = match e {
            Error::OwnershipLost { holder, .. } => holder.is_none(),
            Error::DatabaseReplaced { .. } | Error::SharedMemoryReplaced { .. } => true,
            _ => false,
        };
        if stops && !self.stop_noted && self.wal_files.is_some() {
            records::note_stopped(&self.path, e);
            self.stop_noted = true;
        }
    }

    /// [`confirm`](Self::confirm), whatever the time since the last.
    fn confirm_now(&mut self) -> Result<()> {
        self.lock.confirm()?;
        match files::file_id(&self.watched) {
            Ok(id) if id == self.file => {}
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&self.path, "read the metadata of", e));
            }
            // Another file, or none.
            _ => {
                return Err(Error::DatabaseReplaced {
                    path: self.path.clone(),
                    schema: self.schema,
                    holder: Some(LockHolder::this_process()),
                });
            }
        }
        if let Some((opened, now)) = self.wal_files.as_mut().and_then(WalFiles::changed) {
            self.take_back_wal_files(opened, now)?;
        }
        Ok(())
    }

    /// The `-wal` or `-shm` at its path is not the one this connection uses ([`WalFiles`]): someone removed
    /// it while the owner ran (a cleanup of "temporary" files, say).
    ///
    /// A removed `-wal` still holds, in the file this connection has open, every commit since the last
    /// checkpoint: a crash would lose them all, and a reader opening the file now makes an empty `-wal` where
    /// the index says those commits are (its reads fail with SQLITE_IOERR_SHORT_READ). A TRUNCATE checkpoint
    /// copies them into the database file and empties the index; a new connection then uses the `-wal` at
    /// the path, and the owner writes on.
    ///
    /// A removed `-shm` (the WAL's index, shared by every process using the file) cannot be taken back the
    /// same way: this process's connections share the one it mapped until they all close, while a process
    /// that opened the file since made a new one, blind to what this one writes
    /// (<https://sqlite.org/walformat.html#the_wal_index_or_shm_file>). Every commit is still in the
    /// `-wal` at the path (or, when it went too, in the database file now); the owner writes nothing more and
    /// leaves that `-wal` as it is on close: every process using the file has to stop and start again
    /// ([`Error::SharedMemoryReplaced`]).
    fn take_back_wal_files(&mut self, opened: WalIds, now: WalIds) -> Result<()> {
        if now.0 != opened.0 {
            // It waits (busy timeout) for readers to leave the WAL. One holding its snapshot longer makes this
            // write fail `busy` (retryable); the next write tries again, the commits safe while this lives.
            let done = checkpoint::checkpoint(&self.conn, CheckpointMode::Truncate).map_err(|e| self.error(e))?;
            if done.busy {
                return Err(Error::Busy {
                    path: self.path.clone(),
                    writers: None,
                });
            }
        }
        if now.1 != opened.1 {
            self.conn.truncate_on_close = false;
            return Err(Error::SharedMemoryReplaced {
                path: self.path.clone(),
                schema: self.schema,
                keepers: crate::process::others_with_open(&[opened.1, now.1].into_iter().flatten().collect::<Vec<_>>()),
            });
        }
        self.reconnect()
    }

    /// Raises the file's AUTOINCREMENT counters to at least `floors` (per table: the highest id another
    /// database refers to), in one write, and returns the floors they were behind (nothing is written when
    /// none). Counters behind such an id mean the file went back: handing that id out again would give a new
    /// row the references meant for the old one.
    pub fn raise_counters(&mut self, floors: &[(String, i64)]) -> Result<Vec<(String, i64)>> {
        let counters = crate::restore::read_sequences(&self.conn).at_db(&self.path, self.schema)?;
        let behind: Vec<(String, i64)> = floors
            .iter()
            .filter(|(table, floor)| counters.get(table).copied().unwrap_or(0) < *floor)
            .cloned()
            .collect();
        if !behind.is_empty() {
            self.write(|tx| crate::restore::raise_counters(tx, &behind))?;
        }
        Ok(behind)
    }

    /// Keeps the highest id each AUTOINCREMENT counter handed out in a record beside the file
    /// ([`records::counters_path`]), from now on after every write, for a store whose ids other files refer
    /// to: first raises the counters the file has behind that record (it went back: a copy put back by hand,
    /// its last commits lost in a power loss, a file created anew), in one write, so that no id is handed out
    /// twice even while the files that refer to them cannot be read. Says what it raised in
    /// [`OpenReport::counters_raised`].
    pub fn keep_counters(&mut self) -> Result<()> {
        let mut recorded = records::counters_handed_out(&self.path);
        // A record at the old ids of a table a repair has given smaller ids since (an owner ran on a copy of
        // the file from before the repair, put back by hand, and a restore or repair then put the file back):
        // those ids moved, as the file records, and the record is lowered to where the repair left the counter.
        if recorded.values().any(|seq| *seq >= crate::renumber::FAR_IDS) {
            let moves = crate::renumber::recorded_runs(&self.conn).unwrap_or_default();
            let lowered: BTreeMap<String, i64> = crate::renumber::floors_after_moves(
                self.schema.file_name,
                recorded.clone().into_iter().collect(),
                &moves,
            )
            .into_iter()
            .collect();
            if lowered != recorded {
                records::note_counters(&self.path, &lowered);
                recorded = lowered;
            }
        }
        let floors: Vec<(String, i64)> = recorded.clone().into_iter().collect();
        self.report.counters_raised = self.raise_counters(&floors)?;
        self.counters_kept = Some(recorded);
        self.note_counters();
        Ok(())
    }

    /// Records the counters past those kept ([`keep_counters`](Self::keep_counters)). Best effort: the write
    /// before it has committed, and a record not written costs protection, never data.
    fn note_counters(&mut self) {
        let Some(kept) = &mut self.counters_kept else {
            return;
        };
        raise_counters_record(&self.conn, &self.path, kept);
    }

    /// Raises the record of the highest ids each AUTOINCREMENT counter handed out ([`records::counters_path`])
    /// to the file's counters now, for a store that does not keep it after every write
    /// ([`keep_counters`](Self::keep_counters)): the activity writer, at a clean stop. A restore over the file
    /// removed since raises its backup's counters past that record. Never lowers it. Best effort, and nothing
    /// when no file is at the path any more (its folder may be gone: never created again for this).
    pub fn record_counters(&self) {
        if std::fs::symlink_metadata(&self.path).is_err() {
            return;
        }
        let mut recorded = records::counters_handed_out(&self.path);
        raise_counters_record(&self.conn, &self.path, &mut recorded);
    }

    /// Confirms now, without writing, what every write confirms first: the owner lock, the database file,
    /// its `-wal` and `-shm` (the same errors). An owner that can be idle for long (a server between
    /// configuration changes, a daemon while the user is away) calls it from its idle loop, once a second
    /// say: a `-wal` removed meanwhile is then taken back at once, rather than at the next write (its
    /// commits lost if the process dies before; readers opening the file meanwhile fail to read them).
    pub fn confirm_files(&mut self) -> Result<()> {
        self.confirm()
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it, once the owner lock and the database
    /// file are confirmed to be this owner's still (at most every [`CONFIRM_INTERVAL`]: [`Error::OwnershipLost`],
    /// [`Error::DatabaseReplaced`] or [`Error::SharedMemoryReplaced`] otherwise; a removed `-wal` is taken
    /// back). `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that reads and then writes fails with `SQLITE_BUSY_SNAPSHOT`
    /// if another connection committed in between, and busy_timeout does not retry that
    /// (<https://sqlite.org/rescode.html#busy_snapshot>). If `f` fails, nothing of it is written.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        let (path, schema) = (self.path.clone(), self.schema);
        self.try_write(|tx| f(tx).at_db(&path, schema))
    }

    /// Like [`write`](Self::write) for callers whose closure returns their own error type.
    pub fn try_write<T, E: From<Error> + Describe>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.confirm()?;
        if self.spent.get() {
            self.reconnect()?;
        }
        let (path, schema) = (self.path.clone(), self.schema);
        let written = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .at_db(&path, schema)?;
            let value = f(&tx)?;
            tx.commit().at_db(&path, schema)?;
            Ok(value)
        })();
        if written.is_ok() {
            self.note_counters();
        }
        written.map_err(|e| self.explained(e)).inspect_err(|e| self.failed(e))
    }

    /// Runs one statement in autocommit (atomic on its own, committed on return) through `f`: like
    /// [`write`](Self::write) without the transaction, for the owning store's single statements.
    pub fn autocommit<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.confirm()?;
        if self.spent.get() {
            self.reconnect()?;
        }
        f(&self.conn).map_err(|e| {
            let e = self.explained(Error::from_sqlite(&self.path, e).with_schema(self.schema));
            self.failed(&e);
            e
        })
    }

    /// A failed write's error `e`, told further by what the files show (SQLite's code says too little):
    /// - SQLITE_FULL with a table's AUTOINCREMENT counter at `i64::MAX` is [`Error::IdsExhausted`]: SQLite
    ///   answers an insert there with SQLITE_FULL whatever the disk holds (<https://sqlite.org/autoinc.html>).
    ///   Said as a full disk, its remedy sent the operator to free space on a disk with room, and the daemon,
    ///   exiting as for a retryable error, was restarted into the same failure by its supervisor.
    /// - `busy` names the processes holding a write transaction open on the file
    ///   ([`TransactionHolders::writing`]): an operator's `sqlite3` shell left in a transaction kept the
    ///   daemon failing (and restarted by its supervisor) with "look for a process that keeps one open".
    fn explained<E: From<Error> + Describe>(&self, e: E) -> E {
        match e.kind() {
            ErrorKind::DiskFull => match crate::restore::tables_out_of_ids(&self.conn)
                .ok()
                .and_then(|tables| tables.into_iter().next())
            {
                Some(table) => Error::IdsExhausted {
                    path: self.path.clone(),
                    table,
                    schema: self.schema,
                    given_ids_since: false,
                }
                .into(),
                None => e,
            },
            ErrorKind::Busy => busy_naming_writers(self.path.clone()).into(),
            _ => e,
        }
    }

    /// After a failed write: notes the error ([`met`](Self::met)) and replaces a spent connection at once
    /// (best effort: a failure leaves it spent, and the next write tries again).
    fn failed(&mut self, e: &dyn Describe) {
        self.met(e);
        if self.spent.get() {
            let _ = self.reconnect();
        }
    }

    /// Runs read-only work on the owner's connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.conn).map_err(|e| self.error(e))
    }

    /// Maps a SQLite error met on this database to the typed error. Damage is recorded
    /// ([`records::note_damage`]): whoever looks while the owner is down sees what stopped it.
    pub fn error(&self, e: rusqlite::Error) -> Error {
        let e = Error::from_sqlite(&self.path, e).with_schema(self.schema);
        self.met(&e);
        e
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// What open did (created, migrated, backup taken).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The damage met using this file while running, before this open ([`OpenReport::damage_seen`]), as the
    /// error to show (`corrupt`, with repair's remedy).
    pub fn damage_seen(&self) -> Option<Error> {
        let seen = self.report.damage_seen.as_ref()?;
        Some(seen.damage_error(&self.path, self.schema))
    }

    pub fn lock(&self) -> &OwnerLock {
        &self.lock
    }

    /// The key the database was opened with (`None`: a plaintext database).
    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The schema version of the file.
    pub fn schema_version(&self) -> Result<u32> {
        self.conn.pragma_value("user_version").at_db(&self.path, self.schema)
    }

    /// Sets `auto_vacuum=INCREMENTAL` back on a file whose schema creates it so and that a tool changed
    /// ([`OpenReport::auto_vacuum_off`]): a `VACUUM` rewrites it in place, atomically, every row kept. What
    /// `repair` does for doctor's `auto_vacuum_off`.
    pub fn restore_auto_vacuum(&mut self) -> Result<()> {
        vacuum_to_incremental(&self.conn, &self.path, self.schema)?;
        self.report.auto_vacuum_off = None;
        Ok(())
    }

    /// Removes the rows naming a parent row the file no longer holds ([`OpenReport::foreign_key_violations`]),
    /// in one transaction, recorded in `provenance` ([`crate::orphans::remove`]). What `repair` does for
    /// doctor's `foreign_key_violations`.
    pub fn remove_orphans(&mut self) -> Result<Vec<crate::orphans::OrphansRemoved>> {
        let removed = self.write(|tx| crate::orphans::remove(tx))?;
        self.report.foreign_key_violations = None;
        Ok(removed)
    }

    /// Recounts the derived tables where they disagree with the rows the file holds ([`Schema::derived_check`]),
    /// in one transaction with a [`DERIVED_RECOUNTED_EVENT`](crate::provenance::DERIVED_RECOUNTED_EVENT) record
    /// in `provenance`. What `repair` does for doctor's `totals_disagree`. `None`: they agreed, nothing written.
    pub fn recount_derived(&mut self) -> Result<Option<crate::Disagreement>> {
        let Some(check) = self.schema.derived_check else {
            return Ok(None);
        };
        self.write(|tx| {
            let Some(found) = (check.recount)(tx)? else {
                return Ok(None);
            };
            Provenance::with_json_detail(crate::provenance::DERIVED_RECOUNTED_EVENT, &found)?.insert(tx)?;
            Ok(Some(found))
        })
    }

    /// Creates again the indexes and triggers of the file's schema that a tool dropped or changed
    /// ([`crate::schema_objects`]), with the schema's SQL, in one transaction recorded in `provenance`. What
    /// `repair` does for doctor's `schema_objects_missing`. Empty: none were missing, nothing written.
    pub fn restore_schema_objects(&mut self) -> Result<Vec<crate::schema_objects::SchemaObject>> {
        let (schema, version) = (self.schema, self.schema_version()?);
        let restored = self.write(|tx| crate::schema_objects::restore(tx, schema, version))?;
        self.report.schema_objects_missing = None;
        Ok(restored)
    }

    /// Closes the connection and hands back the owner lock, still held.
    pub fn into_lock(self) -> OwnerLock {
        let OwnerConnection { conn, lock, .. } = self;
        drop(conn);
        lock
    }

    /// Takes a manual backup of this database into `backup_dir`, keeping the newest `keep` there (see
    /// [`backup::backup_connection`]).
    pub fn backup_to(&self, backup_dir: &Path, keep: usize) -> Result<PathBuf> {
        backup::backup_connection(
            &self.conn,
            &self.path,
            self.schema,
            backup_dir,
            BackupClass::Manual,
            keep,
            self.key.as_ref(),
        )
    }

    /// Records where this file's content came from (a split, a restore) in its `provenance` table.
    pub fn record_provenance(&mut self, record: &crate::Provenance) -> Result<()> {
        self.write(|tx| record.insert(tx))
    }
}

/// Raises `kept` (the record of `db`'s counters) to the counters `conn` reads now, and writes it when one
/// moved.
fn raise_counters_record(conn: &Connection, db: &Path, kept: &mut BTreeMap<String, i64>) {
    let Ok(now) = crate::restore::read_sequences(conn) else {
        return;
    };
    let mut moved = false;
    for (table, seq) in now {
        let high = kept.entry(table).or_insert(i64::MIN);
        if seq > *high {
            *high = seq;
            moved = true;
        }
    }
    if moved {
        records::note_counters(db, kept);
    }
}

/// A read-write connection to `path`, keyed, with the busy timeout and the statement cache, before anything
/// else is read.
fn connect(path: &Path, schema: &'static Schema, key: Option<&Key>, busy: Duration) -> Result<Connection> {
    let busy = busy_timeout_within_limit(busy);
    // NOFOLLOW: SQLite itself refuses a database path that is a link (https://sqlite.org/c3ref/open.html);
    // the folders above it resolved, as it refuses a link there too.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    // SQLite opens a file it may not write for reading only, without a word: asked first, to say which file
    // and why, then checked of the connection.
    refuse_unwritable(path).map_err(|e| e.with_schema(schema))?;
    let conn = Connection::open_with_flags(files::sqlite_path(path), flags).at_db(path, schema)?;
    if conn.is_readonly(rusqlite::MAIN_DB).at_db(path, schema)? {
        return Err(Error::PermissionDenied {
            path: path.to_path_buf(),
            action: "write",
        });
    }
    // The key before any other statement (hazards: "Encryption at rest").
    crate::key::apply(&conn, path, key).map_err(|e| e.with_schema(schema))?;
    conn.busy_timeout(busy).at_db(path, schema)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// What keeps a writer of `path` from writing it, asked before SQLite opens it: the database, its `-wal` or
/// `-shm` this process may not write ([`files::ensure_writable`]: SQLite would open it for reading only, without
/// a word), or an immutable folder where SQLite must create a `-wal` or `-shm` ([`immutable_folder`]; a mode
/// shutting this user out of it is `SQLITE_READONLY_DIRECTORY`, said as [`Error::ReadOnlyDirectory`]).
pub(crate) fn refuse_unwritable(path: &Path) -> Result<()> {
    for file in std::iter::once(path.to_path_buf()).chain(files::sidecars(path)) {
        files::ensure_writable(&file)?;
    }
    immutable_folder(path).map_or(Ok(()), Err)
}

/// The folder holding `path` is immutable (`chattr +i`) and a `-wal` or `-shm` is not there yet: SQLite cannot
/// create it, for a reader as for the owner, and says only "unable to open database file". A data directory
/// given as a link is asked, and named, as the folder it links to.
pub(crate) fn immutable_folder(path: &Path) -> Option<Error> {
    let folder = files::resolved_folder_of(path);
    let creates = files::opening_creates_sidecars(path);
    matches!(files::write_refusing_attribute(&folder), Some(("immutable", _)) if creates).then(|| {
        Error::PermissionDenied {
            path: folder,
            action: "create the -wal and -shm in",
        }
    })
}

/// The posture every owner connection has, each setting read back.
fn set_posture(conn: &Connection, path: &Path, schema: &Schema, blank: bool, busy: Duration) -> Result<()> {
    let busy = busy_timeout_within_limit(busy);
    if blank && schema.incremental_vacuum {
        // auto_vacuum is fixed when the first table is created; set it before anything writes page 1.
        conn_ext::set_and_verify(conn, path, "auto_vacuum", "INCREMENTAL", "2")?;
    }
    // journal_mode returns the mode now in effect; anything but "wal" (a network file system, say) is refused.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).at(path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::PragmaRejected {
            path: path.to_path_buf(),
            pragma: "journal_mode",
            wanted: "wal".into(),
            got: mode,
        });
    }
    // WAL + NORMAL never corrupts and keeps every commit across a process crash; a power loss may roll back
    // the last commits (https://sqlite.org/wal.html; hazards: "Durability").
    conn_ext::set_and_verify(conn, path, "synchronous", "NORMAL", "1")?;
    // Bundled SQLite enables foreign keys by default; set and check anyway: the posture must not depend on
    // how SQLite was built.
    conn_ext::set_and_verify(conn, path, "foreign_keys", "ON", "1")?;
    let limit = JOURNAL_SIZE_LIMIT.to_string();
    conn_ext::set_and_verify(conn, path, "journal_size_limit", &limit, &limit)?;
    conn_ext::verify(
        conn,
        path,
        "busy_timeout",
        &busy.as_millis().to_string(),
        &busy.as_millis().to_string(),
    )
}

/// `busy` on the file at `path`, naming the processes holding a write transaction open on it
/// ([`TransactionHolders::writing`]): an owner's open or write that gave up waiting says whom it waited for.
fn busy_naming_writers(path: PathBuf) -> Error {
    Error::Busy {
        writers: TransactionHolders::writing(&path),
        path,
    }
}

/// A read the owner's open found short ([`Error::ReadFailed`] with SQLITE_IOERR_SHORT_READ): nobody else
/// writes the file while the owner holds its lock, and a WAL never holds fewer frames than its index lists
/// (after a crash, the first open rebuilds the index), so the index is one another process keeps over a
/// `-wal` since removed: [`Error::WalIndexStale`].
fn stale_index(e: Error, schema: &'static Schema) -> Error {
    match e {
        Error::ReadFailed {
            path,
            extended: rusqlite::ffi::SQLITE_IOERR_SHORT_READ,
            ..
        } => Error::WalIndexStale {
            keepers: crate::process::others_with_open(
                files::file_id(&files::with_suffix(&path, "-shm")).ok().as_slice(),
            ),
            path,
            schema,
        },
        other => other,
    }
}

/// The database files the owners of this process have open, by absolute path, each stamped as it was at
/// the open: a reader in the same process (the server's reports reading config.db through its owner's
/// reader) that finds another file at the path, or none, beside the owner's `-wal`, is looking at a file
/// replaced under its running owner, not at one put back after a crash.
static OWNED_HERE: std::sync::Mutex<Vec<(PathBuf, files::FileStamp)>> = std::sync::Mutex::new(Vec::new());

/// An entry of [`OWNED_HERE`], removed when its owner's connection is dropped.
#[derive(Debug)]
struct OwnedHere(PathBuf, files::FileStamp);

impl OwnedHere {
    /// `None` when the file at `watched` is not `file` any more (replaced since the open: the owner's next
    /// write says so).
    fn register(watched: &Path, file: FileId) -> Option<OwnedHere> {
        let stamp = files::FileStamp::at(watched).ok().filter(|s| s.id == file)?;
        let mut owned = OWNED_HERE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        owned.push((watched.to_path_buf(), stamp));
        Some(OwnedHere(watched.to_path_buf(), stamp))
    }
}

impl Drop for OwnedHere {
    fn drop(&mut self) {
        let mut owned = OWNED_HERE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(i) = owned.iter().position(|(p, s)| *p == self.0 && *s == self.1) {
            owned.swap_remove(i);
        }
    }
}

/// [`Error::DatabaseReplaced`] when an owner of this process has `db` open and the file at the path is
/// another one now, or none ([`OWNED_HERE`]): what that owner says at its next write (`ownership_lost`,
/// which a supervisor restarts), told to a reader of this process that meets it first. The `-wal` beside the
/// path is the owner's, so [`records::orphan_wal`] would call it another file's left by a crash.
pub(crate) fn replaced_under_owner_here(db: &Path, schema: &'static Schema) -> Option<Error> {
    let abs = files::absolute(db);
    let opened = {
        let owned = OWNED_HERE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        owned.iter().find(|(p, _)| *p == abs).map(|(_, stamp)| *stamp)?
    };
    let replaced = match files::FileStamp::at(db) {
        Ok(now) => now != opened,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    replaced.then(|| Error::DatabaseReplaced {
        path: db.to_path_buf(),
        schema,
        holder: Some(LockHolder::this_process()),
    })
}

/// Refuses to own `path` while another process has the file open by another of its names (a hard link:
/// [`crate::diagnostics::hard_linked_problem`]). The owner lock is taken by name, as SQLite names the `-wal`
/// and `-shm`: an owner on each name would each hold its own lock and log, think itself the only writer, and
/// corrupt the file (<https://sqlite.org/howtocorrupt.html>, "Multiple links to the same file"). Looked for only
/// when the file has more than one name (it reads every process's descriptors).
pub(crate) fn refuse_open_by_another_name(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(meta) = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file() && m.nlink() > 1)
    else {
        return Ok(());
    };
    match crate::process::open_by_another_name((meta.dev(), meta.ino()), path) {
        Some((holder, other)) => Err(Error::OpenByAnotherName {
            path: path.to_path_buf(),
            other,
            holder,
        }),
        None => Ok(()),
    }
}

/// Refuses the user's database file where SQLite would read another file's pages as its own or delete what
/// is left of it, before SQLite opens it: an empty file that is damage ([`refuse_truncated`]), a `-wal`
/// beside it of another file ([`records::orphan_wal`]: the file was replaced or removed by hand after a
/// crash), or a file cut inside a page ([`refuse_cut_mid_page`]). Every open of it goes through here: the
/// owner's, readers', doctor's.
pub(crate) fn refuse_before_open(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<()> {
    refuse_truncated(path, schema, key)?;
    if let Some(orphan) = records::orphan_wal(path, schema) {
        return Err(orphan);
    }
    refuse_cut_mid_page(path, schema, key)
}

/// Refuses a database file that ends inside a page that its `-wal` does not hold: a copy or sync cut short.
/// SQLite does not refuse it: it reads the missing end of the last page as zeros (os_unix.c, `unixRead`,
/// zero-fills a short read; pager.c, `readDbPage`, takes that as success), so the rows of that page come back,
/// with no error, as rows of rowid 0 and NULLs or as values cut short into NUL bytes, and an owner would write
/// the page back that way. Refused before any connection that can write opens it: one that closes last
/// checkpoints the `-wal` into the file, which can make it whole pages again and the cut invisible. SQLite
/// writes only whole pages, one `pwrite` each; a file that ends inside one whose `-wal` holds that page (a
/// checkpoint extending the file, cut by a power loss) is completed from the `-wal` by the next checkpoint:
/// left to it. A file of whole 64 KiB blocks is whole pages of any size: nothing more is read. Otherwise the
/// page size comes from an `immutable` read-only connection (no lock, `-wal` or `-shm`; under `key`,
/// SQLCipher's page); the file's length is read before its `-wal`, which is emptied only after a checkpoint
/// has written every page whole, and only the frame headers of the `-wal` beside a cut file are read
/// (`checkpoint::wal_holds_page`, which finds none in a `-wal` that is missing or empty).
fn refuse_cut_mid_page(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<()> {
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
        return Ok(());
    };
    if len.is_multiple_of(65_536) {
        return Ok(());
    }
    let Some(page_size) = page_size_of(path, key) else {
        return Ok(());
    };
    let cut = len % page_size;
    if cut == 0 || checkpoint::wal_holds_page(path, len / page_size + 1) {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        detail: format!(
            "the file ends inside a page ({len} bytes is not a whole number of {page_size}-byte pages: the last \
             {} bytes of page {} are missing); a copy or sync cut short leaves such a file, and SQLite would read \
             the missing bytes as zeros, giving that page's rows as zeros without an error",
            page_size - cut,
            len / page_size + 1
        ),
        schema: Some(schema),
    })
}

/// The page size of the database at `path` (under `key`), read through an `immutable` read-only connection,
/// or None when it cannot be read or the file is no database. Under a key SQLCipher answers
/// `PRAGMA page_size` itself, as text (its `cipher_page_size`).
fn page_size_of(path: &Path, key: Option<&Key>) -> Option<u64> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(files::file_uri(path, "immutable=1"), flags).ok()?;
    crate::key::apply(&conn, path, key).ok()?;
    // Opening reads nothing: a file that is no database (or one under another key) gives the default size
    // unless its header is read first. Such a file is said as what it is by the open after this.
    let schema_read = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0));
    if let Err(e) = schema_read
        && e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase)
    {
        return None;
    }
    let size = conn
        .query_row("PRAGMA page_size", [], |r| {
            Ok(match r.get::<_, rusqlite::types::Value>(0)? {
                rusqlite::types::Value::Integer(n) => u64::try_from(n).ok(),
                rusqlite::types::Value::Text(t) => t.trim().parse().ok(),
                _ => None,
            })
        })
        .ok()??;
    (size > 0).then_some(size)
}

/// Refuses an empty database file that is damage, not a new install:
/// - beside a non-empty `-wal`. A live database's main file always holds at least its header page once it
///   is in WAL mode (switching to WAL writes it), so this pair means the main file was truncated or
///   replaced (a whole-file export that crashed, a bad copy). SQLite would replay the WAL's pages into the
///   empty file and produce a partial database.
/// - when the data directory shows the file held data before: its first open is recorded, a backup of it
///   exists, or its data was converted from a predecessor. A copy or sync cut short leaves exactly such a
///   file; taking it for a new install would start an empty database over the user's data.
///
/// Either way `repair` moves it aside (with its sidecars) and restores the newest good backup.
fn refuse_truncated(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<()> {
    if std::fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(1) != 0 {
        return Ok(());
    }
    let corrupt = |detail: String| {
        Err(Error::Corrupt {
            path: path.to_path_buf(),
            detail,
            schema: Some(schema),
        })
    };
    let wal = checkpoint::wal_bytes(path);
    if wal > 0 {
        return corrupt(format!(
            "the file is empty but {}-wal holds {wal} bytes of an earlier database: the main file was truncated \
             or replaced, and replaying that WAL alone would give a partial database",
            path.display()
        ));
    }
    match held_data(path, schema, key) {
        Some(why) => corrupt(format!(
            "the file is empty (0 bytes), but it held data before: {why}; a copy or sync cut short leaves such a \
             file"
        )),
        None => Ok(()),
    }
}

/// A database file that is blank (a SQLite file without a table: `sqlite3 FILE 'PRAGMA journal_mode=WAL'` run
/// on its path once it was moved away, a program's "new database" put in its place) where the data directory
/// shows it held data: damage, as an empty file is ([`refuse_truncated`]), not a database its owner has yet
/// to create. Taken for one, the owner started it empty (config.db's projects all said deleted in reports),
/// readers said "not ready" and gave empty reports, doctor said to start the owner and repair found it
/// healthy, the backup never offered. As [`Error::Corrupt`], `repair` moves it aside and restores the
/// newest good backup. `None` when nothing shows it held data (a first start, or one killed before its
/// first migration committed).
pub(crate) fn blank_that_held_data(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Option<Error> {
    held_data(path, schema, key).map(|why| Error::Corrupt {
        path: path.to_path_buf(),
        detail: format!(
            "the file is a SQLite file without a table, but it held data before: {why}; a file created anew \
             in its place leaves such a file"
        ),
        schema: Some(schema),
    })
}

/// What shows that the database at `path` held data, if anything: its first open is recorded, a backup of it
/// exists, or its data was converted from a predecessor. An empty or missing file there is not a new install.
fn held_data(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Option<String> {
    if records::was_opened(path) {
        Some(format!(
            "it was opened before ({})",
            records::opened_path(path).display()
        ))
    } else if let Some(b) = backup::newest_backup(&backup::default_backup_dir(path), schema, key) {
        Some(format!("a backup of it exists ({})", b.path.display()))
    } else if schema.predecessor.is_some()
        && let Some(c) = conversion::recorded(files::parent_dir(path))
    {
        Some(format!("it was converted from {}", c.predecessor.display()))
    } else {
        None
    }
}

/// Sets `auto_vacuum=INCREMENTAL` back on the file of `conn` (no transaction open). The mode is fixed when the
/// first table is created: only a `VACUUM` changes it (<https://sqlite.org/pragma.html#pragma_auto_vacuum>),
/// rewriting the file atomically as any commit, every row and every INTEGER PRIMARY KEY kept.
fn vacuum_to_incremental(conn: &Connection, path: &Path, schema: &'static Schema) -> Result<()> {
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
        .at_db(path, schema)?;
    conn_ext::verify(conn, path, "auto_vacuum", "INCREMENTAL", "2")
}

/// Writes back the header ids of the file `lock` holds when it is this kind's file rebuilt without them
/// ([`Error::HeaderIdsLost`]: `sqlite3 FILE .dump | sqlite3 NEW`), or its `user_version` when that was set
/// below the migrations it records, and says what it wrote; `None` when its header already has them. The
/// caller holds the owner lock (`repair` takes every owner's): an owner's open never does this, since only a
/// person who changed the file can say it is the one they meant.
///
/// `quick_check` first (damage is repaired otherwise), then, when the schema wants `auto_vacuum=INCREMENTAL`
/// (a header field too, lost with the others), the file is rebuilt in place by `VACUUM`, atomic as any
/// commit. Then in one `BEGIN IMMEDIATE` transaction the file is taken for this kind's again, under the
/// write lock, exactly as the open found it (`schema_migrations` this build's migrations 1..=N, tables,
/// indexes, views and triggers those of a fresh file at N), and `user_version` (N) and `application_id`
/// are written, with a [`HEADER_IDS_EVENT`](crate::provenance::HEADER_IDS_EVENT) row in `provenance`. No
/// other row changes, and a file that is not such a file is refused as an open refuses it, unchanged.
pub fn restore_header_ids(
    lock: &OwnerLock,
    schema: &'static Schema,
    key: Option<&Key>,
) -> Result<Option<HeaderIdsWritten>> {
    let path = lock.db_path();
    files::ensure_private(path)?;
    let mut conn = connect(path, schema, key, DEFAULT_BUSY_TIMEOUT)?;
    let state = migrate::read_state(&conn, path, schema)?;
    let (version, lowered_from) = match migrate::check_identity(&conn, path, schema, &state)
        .and_then(|()| migrate::check_user_version_lowered(&conn, path, schema, &state))
    {
        Ok(()) => return Ok(None),
        Err(Error::HeaderIdsLost {
            version, lowered_to, ..
        }) => (version, lowered_to),
        Err(e) => return Err(e),
    };
    let problems = crate::check::quick_check(&conn).at_db(path, schema)?;
    let problems = crate::key::explain_check(path, key, problems);
    if !problems.is_empty() {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "quick_check before writing its header ids back found: {}",
                problems.join("; ")
            ),
            schema: Some(schema),
        });
    }
    if schema.incremental_vacuum {
        let auto_vacuum: i64 = conn.pragma_value("auto_vacuum").at_db(path, schema)?;
        if auto_vacuum != 2 {
            vacuum_to_incremental(&conn, path, schema)?;
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at_db(path, schema)?;
    let state = migrate::read_state(&tx, path, schema)?;
    if migrate::rebuilt_version(&tx, schema, &state) != Some(version) {
        return Err(Error::VerificationFailed {
            path: path.to_path_buf(),
            detail: format!(
                "the file changed while its header ids were being written back: it no longer reads as {} at \
                 schema {version}; nothing was written",
                schema.file_name
            ),
        });
    }
    let mut record = Provenance::now(crate::provenance::HEADER_IDS_EVENT);
    record.source_version = Some(i64::from(version));
    record.detail = Some(match lowered_from {
        None => "application_id and user_version written back (the file was rebuilt without them)".into(),
        Some(found) => format!("user_version written back (it read {found}, set back by hand)"),
    });
    record.insert(&tx).at_db(path, schema)?;
    tx.pragma_update(None, "user_version", version).at_db(path, schema)?;
    tx.pragma_update(None, "application_id", schema.application_id)
        .at_db(path, schema)?;
    tx.commit().at_db(path, schema)?;
    Ok(Some(HeaderIdsWritten { version, lowered_from }))
}

/// What [`restore_header_ids`] wrote back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderIdsWritten {
    /// The schema version written as `user_version`.
    pub version: u32,
    /// The `user_version` the header held when only it was wrong (set back by hand, the `application_id`
    /// there); `None`: both ids were 0.
    pub lowered_from: Option<u32>,
}

/// Why the database at `path` is not there: not converted yet from its predecessor
/// ([`Error::NotConvertedYet`]), gone where it held data ([`Error::Removed`]), or not created yet by its owner
/// ([`Error::Missing`]). What an owner's open, a reader and doctor each say of a missing file.
pub fn missing(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Error {
    if let Some(pending) = conversion::pending_error(path, schema) {
        return pending;
    }
    match held_data(path, schema, key) {
        Some(evidence) => Error::Removed {
            path: path.to_path_buf(),
            evidence,
            schema,
        },
        None => Error::Missing {
            path: path.to_path_buf(),
            schema,
        },
    }
}

/// The owner's connection. Closing it runs a TRUNCATE checkpoint: SQLite checkpoints and deletes the WAL
/// only when the *last* connection to a file closes (https://sqlite.org/wal.html#the_wal_file), and an
/// owner's process often still holds read-only connections (its reader pool, a reader of the same file)
/// that cannot. Without this, a cleanly stopped owner would leave its last commits in `-wal` rather than in
/// the database file, and a copy of the file alone would miss them.
#[derive(Debug)]
struct ClosingConnection {
    conn: Connection,
    /// `false` once the `-shm` was replaced: emptying the `-wal` another process's index points into would
    /// make its reads fail ([`OwnerConnection::take_back_wal_files`]).
    truncate_on_close: bool,
    /// The user's database (not a temporary file), whose `-wal` records are forgotten once its `-wal` is
    /// emptied here ([`records::wal_gone`] tells a crash's `-wal` removed by hand by the record left).
    db: Option<PathBuf>,
}

impl Drop for ClosingConnection {
    fn drop(&mut self) {
        if !self.truncate_on_close {
            // The `-wal` is left as it is. But when this is the file's last connection, SQLite's own close
            // still checkpoints the `-wal` (through this connection's index, which is right for it) and
            // deletes it once every commit is in the file: its records then name a `-wal` that went with
            // nothing lost, and would make doctor, the health banner and the next open say `wal_gone` (a
            // crash's commits lost) after this clean stop. So the connection is closed here, and the records
            // forgotten when the `-wal` went with that close.
            let Some(db) = self.db.take() else { return };
            let wal = files::with_suffix(&db, "-wal");
            let had_wal = files::file_id(&wal).is_ok();
            if let Ok(placeholder) = Connection::open_in_memory() {
                drop(std::mem::replace(&mut self.conn, placeholder));
                if had_wal && files::file_id(&wal).is_err() {
                    records::forget_wal_pairs(&db);
                }
            }
            return;
        }
        // A reader holding an old snapshot makes TRUNCATE wait for it: never wait long when closing. If it
        // cannot finish, nothing is lost: the WAL stays and the next open replays it.
        let _ = self.conn.busy_timeout(Duration::from_millis(200));
        let emptied = checkpoint::checkpoint(&self.conn, CheckpointMode::Truncate).is_ok_and(|r| !r.busy);
        if let Some(db) = self.db.as_deref().filter(|_| emptied) {
            records::forget_wal_pairs(db);
        }
    }
}

impl std::ops::Deref for ClosingConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for ClosingConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// The `-wal` and `-shm` beside a database as a connection of it found them. While any connection has the
/// file open in WAL mode it holds a shared lock on it, and SQLite removes these two only on the close of a
/// connection that can take an exclusive one, the last (https://sqlite.org/wal.html#the_wal_file): so
/// another file at either path, or none, means someone outside SQLite removed them.
#[derive(Debug)]
struct WalFiles {
    wal: PathBuf,
    shm: PathBuf,
    /// `None`: not there when recorded (SQLite had not opened it yet).
    opened: WalIds,
}

/// The files at the `-wal` and `-shm` paths (`None`: not there).
type WalIds = (Option<FileId>, Option<FileId>);

impl WalFiles {
    fn beside(db: &Path) -> WalFiles {
        let mut found = WalFiles {
            wal: files::with_suffix(db, "-wal"),
            shm: files::with_suffix(db, "-shm"),
            opened: (None, None),
        };
        found.opened = found.now();
        found
    }

    fn now(&self) -> WalIds {
        (files::file_id(&self.wal).ok(), files::file_id(&self.shm).ok())
    }

    /// `(opened, now)` when another file, or none, is at either path now. One not there when recorded (not
    /// opened yet by SQLite when the connection was set up) is the one there now.
    fn changed(&mut self) -> Option<(WalIds, WalIds)> {
        let now = self.now();
        let opened = &mut self.opened;
        *opened = (opened.0.or(now.0), opened.1.or(now.1));
        (now != *opened).then_some((*opened, now))
    }
}
