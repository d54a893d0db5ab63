//! Read-only connections for processes that do not own a database (a process reading the file another
//! process writes), pooled with r2d2.
//!
//! Readers never take the owner lock, never create the file and cannot write: connections open with
//! `SQLITE_OPEN_READ_ONLY` (`PRAGMA query_only` would still let COMMIT and checkpoints through). Not
//! `immutable=1`: it ignores the WAL and committed rows look missing (<https://sqlite.org/uri.html#uriimmutable>),
//! but on a file system mounted read-only with no commit in a `-wal`, where nothing can change the file and a
//! reader could not open it otherwise (`read_as_immutable`).
//!
//! Every read runs in one short transaction that ends before [`ReadPool::read`] returns, so no reader pins
//! the WAL (a reader holding a snapshot stops checkpoints from resetting it: <https://sqlite.org/wal.html#ckpt>).
//!
//! A connection reads the file it opened, wherever that file goes: after a restore or repair put another
//! file at the path (the old one moved aside), a pooled connection would go on reading the old one, and a
//! server's reports would show the replaced data (or the damage `repair` just fixed) until it restarted.
//! So each connection remembers the file it opened, each read compares it with the file at the path (one
//! `lstat`), and a connection to a replaced file is closed instead of used. Likewise its `-wal`: one removed
//! by hand while the file was in use is emptied by its owner, which then writes into the `-wal` now at the
//! path, while a connection still reading the removed one fails every read of what the owner writes next.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result, SqliteResultExt};
use crate::files::{self, FileId};
use crate::key::Key;
use crate::open_database::{DEFAULT_BUSY_TIMEOUT, STATEMENT_CACHE};
use crate::owner_lock::{LockState, OwnerLock};
use crate::schema::Schema;

/// Connections a reader pool keeps at most.
pub const DEFAULT_READERS: u32 = 4;

/// Whether a reader opens `path` as `immutable=1`: on a file system mounted read-only (a snapshot, a backup
/// disk) with no commits in a `-wal` beside the file (none, or one no longer than its header: a copy that
/// left out the `-shm`, as backup tools are told to). A reader of a WAL database must create `-shm` (and `-wal`) beside
/// it, which it cannot there: SQLite says "unable to open database file"
/// (<https://sqlite.org/wal.html#readonly>). Immutable is what SQLite offers for media nobody can write; with
/// no commit in a `-wal`, it misses none, and nobody can write one there. (A `-wal` with its `-shm` opens as
/// it is; one of commits without its `-shm` cannot be read there: [`Error::ReadOnlyWal`].)
fn read_as_immutable(path: &Path) -> bool {
    files::on_read_only_file_system(path) && !wal_holds_commits(path)
}

/// Whether a `-wal` beside `path` may hold commits: it is there and longer than its header (the rule
/// [`crate::records::orphan_wal`] goes by).
fn wal_holds_commits(path: &Path) -> bool {
    fs::metadata(files::with_suffix(path, "-wal")).is_ok_and(|m| m.len() > crate::records::WAL_HEADER_BYTES)
}

/// The file and flags of a reader of `path`: read-only, and never through a link in the file's place
/// (SQLite would put `-wal`/`-shm` beside the link's target, outside the data directory), the folders above
/// it resolved ([`files::sqlite_path`]); `immutable` ([`read_as_immutable`]): a `file:` URI saying so.
fn reader_target(path: &Path, immutable: bool) -> (PathBuf, OpenFlags) {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let at = files::sqlite_path(path);
    match immutable {
        true => (
            files::file_uri(&at, "immutable=1").into(),
            flags | OpenFlags::SQLITE_OPEN_URI,
        ),
        false => (at, flags),
    }
}

/// One read-only connection outside any pool (backups, checks) to a database of `schema`, keyed with `key`
/// for an encrypted one: a missing file is [`Error::Missing`], never created. The file is read once here,
/// so a wrong key (or a missing one) fails now, typed ([`crate::key::explain_not_a_database`]). An empty
/// file that is damage, or one beside the `-wal` of another file, is refused before SQLite opens it, which
/// would delete that `-wal` or read its pages as this file's ([`crate::open_database`]'s
/// `refuse_before_open`).
pub fn open_read_only(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<Connection> {
    if !exists(path, schema)? {
        return Err(crate::open_database::missing(path, schema, key));
    }
    crate::open_database::refuse_before_open(path, schema, key)?;
    let cannot_open = |e: Error| {
        let said_unable = e
            .sqlite_error()
            .is_some_and(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen));
        said_unable
            .then(|| unable_to_open(path))
            .flatten()
            .unwrap_or(e)
            .with_schema(schema)
    };
    let conn = open_reader(path, key).map_err(cannot_open)?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map_err(|e| cannot_open(crate::key::error_at(path, key, e)))?;
    Ok(conn)
}

/// SQLite says "unable to open" for a link (never followed) or anything but a regular file in the file's
/// place (`unsafe_path`, as doctor says it), a file this user may not read (`permission_denied`, run as its
/// owner, as the operating system says it), an immutable folder where its `-wal` and `-shm` would go
/// ([`crate::open_database::immutable_folder`]), and a `-wal` it cannot read where it is
/// ([`Error::ReadOnlyWal`]): which it is, or `None`. Asked without opening the file (closing a descriptor of
/// it would drop this process's SQLite locks on it).
fn unable_to_open(path: &Path) -> Option<Error> {
    if let Ok(meta) = fs::symlink_metadata(path)
        && let Err(not_a_file) = files::regular(path, meta)
    {
        return Some(not_a_file);
    }
    if let Err(e) = files::accessible(path, libc::R_OK) {
        return Some(Error::io(path, "read", e));
    }
    if let Some(immutable) = crate::open_database::immutable_folder(path) {
        return Some(immutable);
    }
    (files::on_read_only_file_system(path) && wal_holds_commits(path)).then(|| Error::ReadOnlyWal {
        path: path.to_path_buf(),
    })
}

/// [`open_read_only`] for reading the file as a database of `schema` (to back it up): one of another kind
/// is [`Error::WrongDatabase`], and one its owner has not written yet (empty, or created and not migrated)
/// is [`Error::SchemaBehind`] (not ready), never read as a database with nothing in it; blank where it held
/// data before (its first open recorded, a backup of it), it is damage.
pub fn open_database_read_only(path: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<Connection> {
    let conn = open_read_only(path, schema, key)?;
    let state = crate::migrate::read_state(&conn, path, schema)?;
    if state.is_blank() {
        if let Some(damage) = crate::open_database::blank_that_held_data(path, schema, key) {
            return Err(damage);
        }
        return Err(Error::SchemaBehind {
            path: path.to_path_buf(),
            found: 0,
            expected: schema.end_version(),
            schema,
        });
    }
    crate::migrate::check_identity(&conn, path, schema, &state)?;
    Ok(conn)
}

/// Whether the file is there. Only "not found" means missing: a directory this user may not search is
/// `PermissionDenied`, never "the owner has not created it yet"; nor is a file removed by hand after a crash,
/// whose last commits are in the `-wal` beside it ([`crate::records::orphan_wal`]).
fn exists(path: &Path, schema: &'static Schema) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match crate::records::orphan_wal(path, schema) {
            Some(orphan) => Err(orphan),
            None => Ok(false),
        },
        Err(e) => Err(Error::io(path, "read", e).with_schema(schema)),
    }
}

/// A read-only connection (keyed with `key`) to the file at `path` for a look that may fail quietly (what a
/// moved-aside or damaged file still says), or `None`: the file is missing, not a regular non-empty file
/// (SQLite deletes a `-wal` it finds beside an empty one: [`files::nonempty_regular`]), or cannot be
/// opened under `key`.
pub(crate) fn open_if_readable(path: &Path, key: Option<&Key>) -> Option<Connection> {
    if !files::nonempty_regular(path) {
        return None;
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).ok()?;
    crate::key::apply(&conn, path, key).ok()?;
    Some(conn)
}

/// Whether the file at `path` opens under `key` and its first page reads (opening reads nothing; a look at
/// the schema reads page 1, which a wrong key does not open): [`open_if_readable`], then that look.
pub(crate) fn reads_with(path: &Path, key: Option<&Key>) -> bool {
    open_if_readable(path, key).is_some_and(|conn| {
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
            .is_ok()
    })
}

/// A reader's connection outside the pool: [`reader_connection`], its failures typed. A key on a build
/// without encryption is [`Error::EncryptionUnavailable`] (plain SQLite ignores `PRAGMA key`).
fn open_reader(path: &Path, key: Option<&Key>) -> Result<Connection> {
    if key.is_some() && !crate::key::encryption_available() {
        return Err(Error::EncryptionUnavailable {
            path: path.to_path_buf(),
        });
    }
    reader_connection(path, key).connect().at(path)
}

/// How a reader connects to the file at `path` as it is now, pooled or not: opened immutable when the file
/// system is mounted read-only ([`read_as_immutable`]; it may be remounted after a pool was made), its
/// folders resolved ([`reader_target`]; one made, or linked, after a pool was made is followed), keyed first,
/// then its busy timeout and statement cache.
fn reader_connection(path: &Path, key: Option<&Key>) -> SqliteConnectionManager {
    let (target, flags) = reader_target(path, read_as_immutable(path));
    let key = key.cloned();
    SqliteConnectionManager::file(target)
        .with_flags(flags)
        .with_init(move |c| {
            if let Some(key) = &key {
                // First, before any other statement (hazards: "Encryption at rest").
                crate::key::apply_raw(c, key)?;
            }
            c.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(())
        })
}

/// A pool of read-only connections to one database of a known kind and schema version. Cheap to clone:
/// clones share the connections.
#[derive(Clone)]
pub struct ReadPool {
    pool: Pool<Manager>,
    path: PathBuf,
    wal_path: PathBuf,
    schema: &'static Schema,
    key: Option<Key>,
    watcher: Arc<Watcher>,
}

/// Opens a connection with `connect` and says which file it opened: the file at `path` just before and just
/// after the open, when they agree (`None` when the file changed meanwhile: such a connection is never used).
fn connect_to_file<C, E>(
    path: &Path,
    connect: impl FnOnce() -> std::result::Result<C, E>,
) -> std::result::Result<(C, Option<FileId>), E> {
    let before = files::file_id(path).ok();
    let conn = connect()?;
    let file = before.filter(|b| files::file_id(path).ok() == Some(*b));
    Ok((conn, file))
}

/// A pooled connection and the file it opened.
struct Reader {
    conn: Connection,
    file: Option<FileId>,
    /// The `-wal` it reads, recorded after its first read (which opens it).
    wal: Cell<Option<FileId>>,
    /// Met damage under a key: SQLCipher fails every later read on such a connection (hazards: "Encryption
    /// at rest"), or opened a file no longer at the path. Closed when returned instead of being handed out
    /// again.
    spent: Cell<bool>,
}

impl std::ops::Deref for Reader {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// SQLite's connection manager; it tells r2d2 a spent connection is broken.
#[derive(Debug)]
struct Manager {
    path: PathBuf,
    key: Option<Key>,
}

impl ManageConnection for Manager {
    type Connection = Reader;
    type Error = rusqlite::Error;

    fn connect(&self) -> std::result::Result<Reader, rusqlite::Error> {
        let sqlite = reader_connection(&self.path, self.key.as_ref());
        let (conn, file) = connect_to_file(&self.path, || sqlite.connect())?;
        Ok(Reader {
            conn,
            file,
            wal: Cell::new(None),
            spent: Cell::new(false),
        })
    }

    fn is_valid(&self, reader: &mut Reader) -> std::result::Result<(), rusqlite::Error> {
        reader.conn.execute_batch("")
    }

    fn has_broken(&self, reader: &mut Reader) -> bool {
        reader.spent.get()
    }
}

/// One connection kept aside for change polling: `PRAGMA data_version` is per connection
/// (https://sqlite.org/pragma.html#pragma_data_version), and the file it opened.
#[derive(Default)]
struct Watcher {
    conn: Mutex<Option<(Connection, Option<FileId>)>>,
    epoch: AtomicU64,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool")
            .field("path", &self.path)
            .field("file", &self.schema.file_name)
            .finish()
    }
}

/// A token that changes whenever anyone commits to the database: compare two with `!=`, or ask
/// [`ReadPool::changed_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeToken {
    /// Which watcher connection produced `version` (values of different connections do not compare).
    pub epoch: u64,
    /// `PRAGMA data_version` of that connection.
    pub version: i64,
}

impl ReadPool {
    /// A pool for `path`. Touches nothing: the file may not exist yet, and start-up never waits for it
    /// (r2d2's `build()` would wait for `min_idle` connections and fail after 30 s).
    pub fn new(path: &Path, schema: &'static Schema) -> ReadPool {
        Self::with_size(path, schema, DEFAULT_READERS)
    }

    /// Like [`new`](Self::new) with at most `max` connections.
    pub fn with_size(path: &Path, schema: &'static Schema, max: u32) -> ReadPool {
        Self::with_key_and_size(path, schema, None, max)
    }

    /// Like [`new`](Self::new) for an encrypted database: every connection (pooled, the change watcher, the
    /// checks) is keyed with `key` before anything else. `None` is [`new`](Self::new).
    pub fn with_key(path: &Path, schema: &'static Schema, key: Option<Key>) -> ReadPool {
        Self::with_key_and_size(path, schema, key, DEFAULT_READERS)
    }

    /// [`with_key`](Self::with_key) with at most `max` connections.
    pub fn with_key_and_size(path: &Path, schema: &'static Schema, key: Option<Key>, max: u32) -> ReadPool {
        // Absolute: a process that changes its working directory later still reads this file.
        let path = &files::absolute(path);
        let manager = Manager {
            path: path.to_path_buf(),
            key: key.clone(),
        };
        let pool = Pool::builder()
            .max_size(max.max(1))
            .min_idle(Some(0))
            // Validation happens in `read`, inside the read transaction, where it also sees schema changes.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build_unchecked(manager);
        ReadPool {
            pool,
            path: path.to_path_buf(),
            wal_path: files::with_suffix(path, "-wal"),
            schema,
            key,
            watcher: Arc::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one read transaction on a pooled connection, after checking that the file is this kind
    /// at the schema version this build reads. The transaction ends before this returns.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.read_versioned(|conn, _| f(conn))
    }

    /// [`read`](Self::read), telling `f` the file's schema version: for a kind whose readers read files
    /// older than this build's ([`Schema::readers_read_from`]), `f` answers from what that version holds.
    pub fn read_versioned<T>(&self, f: impl FnOnce(&Connection, u32) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.connection()?;
        let tx = conn.unchecked_transaction().at_db(&self.path, self.schema)?;
        let version = self.check_file(&tx)?;
        if conn.wal.get().is_none() {
            conn.wal.set(files::file_id(&self.wal_path).ok());
        }
        let value = f(&tx, version).map_err(|e| self.met(&conn, self.sqlite_error(e)))?;
        tx.commit().at_db(&self.path, self.schema)?;
        Ok(value)
    }

    /// An error met reading on `conn`. Damage spends the connection under a key ([`Spent`]), and is recorded
    /// ([`crate::records::note_damage`]) when this process owns the file (an owner's own readers): only then
    /// can nobody be putting another file in its place, which a reader in another process may be meeting
    /// halfway.
    fn met(&self, reader: &Reader, e: Error) -> Error {
        if !matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase) {
            return e;
        }
        if self.key.is_some() {
            reader.spent.set(true);
        }
        if let Ok(LockState::Held { holder: Some(holder) }) = OwnerLock::probe(&self.path)
            && holder.is_this_process()
        {
            crate::records::note_damage(&self.path, &e);
        }
        e
    }

    /// The schema of the file this pool reads.
    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// Opens a connection outside the pool and checks the file, mapping every failure to its typed error.
    /// Useful at start-up to report a problem before the first real read.
    pub fn check(&self) -> Result<()> {
        self.probe()
    }

    /// A token that changes whenever any connection (any process) commits to the database. Cheap: it reads
    /// the WAL index, not the file. Holds no transaction between calls.
    /// A file put in place of the watched one (a restore, a repair) is a change: the token's epoch moves.
    pub fn change_token(&self) -> Result<ChangeToken> {
        let file = self.file_now()?;
        let mut slot = self.watcher.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|(_, opened)| *opened != Some(file)) {
            *slot = None;
            self.probe()?;
            let key = self.key.as_ref();
            let opened =
                connect_to_file(&self.path, || open_reader(&self.path, key)).map_err(|e| e.with_schema(self.schema))?;
            *slot = Some(opened);
            self.watcher.epoch.fetch_add(1, Ordering::Relaxed);
        }
        let epoch = self.watcher.epoch.load(Ordering::Relaxed);
        let (conn, _) = slot.as_ref().ok_or_else(|| Error::Unavailable {
            path: self.path.clone(),
            detail: "the watcher connection is gone".into(),
        })?;
        match conn.query_row("PRAGMA data_version", [], |r| r.get(0)) {
            Ok(version) => Ok(ChangeToken { epoch, version }),
            Err(e) => {
                *slot = None;
                Err(self.sqlite_error(e))
            }
        }
    }

    /// `None` if nothing was committed since `token` was taken; otherwise the new token.
    pub fn changed_since(&self, token: &ChangeToken) -> Result<Option<ChangeToken>> {
        let now = self.change_token()?;
        Ok((now != *token).then_some(now))
    }

    /// A connection to the file at the path now. Connections to a file no longer there (replaced by a
    /// restore or a repair), or to a `-wal` no longer there, are closed as they are met: at most every pooled
    /// one, then a new one. None while a restore of the data directory has not finished
    /// ([`Error::RestoreUnfinished`], not ready).
    fn connection(&self) -> Result<PooledConnection<Manager>> {
        // Costs one failed `open` (no journal): the file at the path may be a restore's copy, half put in place.
        crate::restore::refuse_unfinished(&self.path, self.schema)?;
        let file = self.file_now()?;
        let wal = files::file_id(&self.wal_path).ok();
        for _ in 0..=self.pool.max_size() {
            let reader = match self.pool.try_get() {
                Some(reader) => reader,
                None => {
                    // A new connection is about to be made: r2d2 would retry a failing open until its timeout
                    // and then report only a string, so open one here first and map its failure precisely.
                    if self.pool.state().connections < self.pool.max_size() {
                        self.probe()?;
                    }
                    self.pool.get().map_err(|e| Error::Unavailable {
                        path: self.path.clone(),
                        detail: e.to_string(),
                    })?
                }
            };
            if reader.file == Some(file) && reader.wal.get().is_none_or(|opened| Some(opened) == wal) {
                return Ok(reader);
            }
            reader.spent.set(true);
        }
        Err(Error::Unavailable {
            path: self.path.clone(),
            detail: "another file was put at this path every time a connection was opened".into(),
        })
    }

    /// The file at the path now; not there is [`Error::Missing`] (or not converted yet).
    fn file_now(&self) -> Result<FileId> {
        match files::file_id(&self.path) {
            Ok(id) => Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.missing()),
            Err(e) => Err(Error::io(&self.path, "read", e).with_schema(self.schema)),
        }
    }

    fn probe(&self) -> Result<()> {
        if !exists(&self.path, self.schema)? {
            return Err(self.missing());
        }
        crate::open_database::refuse_before_open(&self.path, self.schema, self.key.as_ref())?;
        let conn = match open_reader(&self.path, self.key.as_ref()) {
            Ok(conn) => conn,
            Err(Error::Sqlite { source, .. }) => return Err(self.open_error(source)),
            Err(e) => return Err(e.with_schema(self.schema)),
        };
        let tx = conn.unchecked_transaction().at_db(&self.path, self.schema)?;
        let checked = self.check_file(&tx);
        drop(tx);
        drop(conn);
        checked.map(drop).map_err(|e| match e {
            // Opening reads nothing: SQLite finds it cannot open the file (or its `-wal`) at the first read.
            Error::Sqlite { source, .. } if source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
                self.open_error(source)
            }
            e => crate::key::explain(e, self.key.as_ref()),
        })
    }

    /// A SQLite error met reading the file, typed (a wrong or missing key told from damage).
    fn sqlite_error(&self, e: rusqlite::Error) -> Error {
        crate::key::error_at(&self.path, self.key.as_ref(), e).with_schema(self.schema)
    }

    /// The file is not there: not created yet by its owner, or not converted yet from its predecessor, or
    /// removed by hand (after a crash: [`exists`]; where it held data: [`Error::Removed`]).
    fn missing(&self) -> Error {
        crate::records::orphan_wal(&self.path, self.schema)
            .unwrap_or_else(|| crate::open_database::missing(&self.path, self.schema, self.key.as_ref()))
    }

    fn open_error(&self, e: rusqlite::Error) -> Error {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) {
            if !self.path.exists() {
                return self.missing();
            }
            if let Some(e) = unable_to_open(&self.path) {
                return e;
            }
        }
        self.sqlite_error(e)
    }

    /// The file is this kind, at a version this build reads (its own, an older one its readers still read:
    /// [`Schema::readers_read_from`]) or a newer one that readers of this version still read
    /// ([`Compat`](crate::schema::Compat)); returns that version. The first read here is also where a
    /// missing `-shm` in a read-only directory surfaces (SQLITE_READONLY_DIRECTORY).
    fn check_file(&self, conn: &Connection) -> Result<u32> {
        let (application_id, version): (i32, u32) = conn
            .prepare_cached(
                "SELECT (SELECT application_id FROM pragma_application_id()),
                        (SELECT user_version FROM pragma_user_version())",
            )
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.sqlite_error(e))?;
        let expected = self.schema.end_version();
        let path = self.path.clone();
        if application_id != self.schema.application_id {
            // Off the path of every read: the file is not this kind, or not written yet. Its tables tell the
            // two apart: a file with neither id nor version may be another application's (any SQLite file
            // is), not one its owner has yet to migrate.
            let state = crate::migrate::read_state(conn, &self.path, self.schema)?;
            if state.is_blank() {
                if let Some(damage) =
                    crate::open_database::blank_that_held_data(&self.path, self.schema, self.key.as_ref())
                {
                    return Err(damage);
                }
                // Created, but the owner has not committed its first migration yet (or crashed before it).
                return Err(Error::SchemaBehind {
                    path,
                    found: 0,
                    expected,
                    schema: self.schema,
                });
            }
            return crate::migrate::check_identity(conn, &self.path, self.schema, &state).map(|()| version);
        }
        match version.cmp(&expected) {
            std::cmp::Ordering::Equal => Ok(version),
            std::cmp::Ordering::Less if version >= self.schema.oldest_readable_version() => Ok(version),
            std::cmp::Ordering::Less => Err(Error::SchemaBehind {
                path,
                found: version,
                expected,
                schema: self.schema,
            }),
            // A newer file is still read when every migration past this build's was additive: the queries
            // name the columns they read, and those are all there.
            std::cmp::Ordering::Greater => {
                match crate::migrate::min_reader_version(conn).at_db(&self.path, self.schema)? {
                    Some(min) if min <= expected => Ok(version),
                    _ => Err(Error::SchemaNewer {
                        path,
                        found: version,
                        supported: expected,
                        schema: self.schema,
                    }),
                }
            }
        }
    }
}
