//! The legacy input: checked, hashed and opened read-only, never written.
//!
//! Order matters: the file is stat'ed and opened with `std::fs` first (its header checked), and only then
//! opened by SQLite. While a SQLite connection to it is open this process never opens or closes another
//! descriptor of it: closing any descriptor of a file drops every POSIX lock SQLite holds on it
//! (<https://sqlite.org/howtocorrupt.html> §2.2). The one descriptor opened before SQLite's (the sha256 is
//! taken through it) stays open until SQLite's connection is closed. Only `metadata` (no descriptor) is used
//! afterwards, to see whether another program changed it. (More SQLite connections are safe: SQLite keeps
//! a closed connection's descriptor open while another connection of the process holds a lock on the file.)
//!
//! Opening checks what is cheap (the header, the schema against its version). The two reads of the whole
//! file, its sha256 and `quick_check`, are [`Checks`]: the split runs them on its second core while the
//! outputs' indexes are built (one core's work), and nothing is put in place before they passed.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Result, SplitError};
use crate::progress::Progress;
use crate::queries::{self, TABLES};

/// The newest legacy schema version this tool knows.
pub const LATEST_LEGACY_VERSION: u32 = 3;

/// Identity of the file's bytes as the file system reports them; a writer changes at least one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// An open legacy file whose header and schema were checked.
#[derive(Debug)]
pub(crate) struct LegacyFile {
    pub path: PathBuf,
    pub version: u32,
    /// Tables no legacy version has (an add-on's), left where they are.
    pub unknown_tables: Vec<String>,
    pub stamp: FileStamp,
    pub conn: Connection,
    /// The reads of the whole file. Declared after `conn`: the descriptor it holds closes after SQLite's
    /// connection did, also when dropped (see the module's comment).
    pub checks: Checks,
}

impl LegacyFile {
    /// Checks the header, opens `path` read-only and checks its schema; refuses anything that is not a
    /// legacy database at version 1..=3 whose tables match its version. Its sha256 and `quick_check` are
    /// [`LegacyFile::checks`], run later.
    pub fn open(path: &Path) -> Result<LegacyFile> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SplitError::refused(path, "it does not exist"));
            }
            Err(e) => return Err(SplitError::io(path, "read the metadata of", e)),
        };
        if !meta.is_file() {
            return Err(SplitError::refused(path, "it is not a regular file"));
        }
        let stamp = FileStamp::of(path).map_err(|e| SplitError::io(path, "read the metadata of", e))?;
        // Only a regular file: reading a FIFO would wait for a writer forever.
        store_core::files::require_regular_file(path, "read")?;
        // Opened before SQLite opens the file, closed only after SQLite's connection is (see the module's
        // comment).
        let held = File::open(path).map_err(|e| SplitError::io(path, "open", e))?;
        let mut header = [0u8; 100];
        let got = read_at_most(&held, &mut header).map_err(|e| SplitError::io(path, "read", e))?;
        check_header(path, &header[..got], stamp.len)?;
        let conn = open_read_only(path)?;
        let (version, unknown_tables) = check_schema(&conn, path)?;
        Ok(LegacyFile {
            path: path.to_path_buf(),
            version,
            unknown_tables,
            stamp,
            conn,
            checks: Checks {
                path: path.to_path_buf(),
                held,
                sha256: OnceLock::new(),
            },
        })
    }

    /// Whether a legacy table exists in this file's version.
    pub fn has(&self, table: &queries::Table) -> bool {
        table.since <= self.version
    }

    /// Closes the connection (then the checks' descriptor) and checks nobody wrote the file meanwhile.
    pub fn close_unchanged(self) -> Result<()> {
        let path = self.path.clone();
        let checks = self.checks;
        self.conn.close().map_err(|(_, e)| legacy_error(&path, e))?;
        drop(checks);
        match FileStamp::of(&path) {
            Ok(now) if now == self.stamp => Ok(()),
            _ => Err(SplitError::LegacyChanged { path }),
        }
    }
}

/// The two reads of the whole legacy file, each O(N): its sha256 and `quick_check`. Shared by reference
/// with the thread that runs them (see [`Checks::run`]).
#[derive(Debug)]
pub(crate) struct Checks {
    path: PathBuf,
    /// The descriptor opened before SQLite's connection: the sha256 is read through it.
    held: File,
    sha256: OnceLock<String>,
}

impl Checks {
    /// The file's sha256, read on first use.
    pub fn sha256(&self) -> Result<&str> {
        self.sha256_unless_stopped(&Progress::new(None))
    }

    /// [`sha256`](Self::sha256), given up within a mebibyte once `progress`'s stop flag is set (a split asked
    /// to stop otherwise waited for this read to end: about a second per gigabyte).
    fn sha256_unless_stopped(&self, progress: &Progress) -> Result<&str> {
        if let Some(sha256) = self.sha256.get() {
            return Ok(sha256);
        }
        let sha256 = store_core::files::sha256_of_while(&self.held, || progress.go_on())?
            .map_err(|e| SplitError::io(&self.path, "read", e))?;
        Ok(self.sha256.get_or_init(|| sha256))
    }

    /// Refuses a file whose b-trees are damaged (`PRAGMA quick_check`, through a read-only connection of
    /// its own). SQLite reads such a file without always reporting an error: it may return a row twice, out
    /// of order, or not at all, so a copy of it could lose rows without anything noticing
    /// (https://sqlite.org/pragma.html#pragma_quick_check). Whatever was copied from a file that fails it
    /// is thrown away.
    pub fn structure(&self) -> Result<()> {
        self.structure_unless_stopped(&Progress::new(None))
    }

    /// [`structure`](Self::structure), its `quick_check` interrupted once `progress`'s stop flag is set.
    fn structure_unless_stopped(&self, progress: &Progress) -> Result<()> {
        let conn = open_read_only(&self.path)?;
        let problems = progress.interruptible(&[conn.get_interrupt_handle()], || {
            store_core::check::quick_check(&conn).map_err(|e| legacy_error(&self.path, e))
        })?;
        conn.close().map_err(|(_, e)| legacy_error(&self.path, e))?;
        if problems.is_empty() {
            return Ok(());
        }
        let mut found = problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        if let Some((cut, _)) = found.char_indices().nth(300) {
            found.truncate(cut);
            found.push('…');
        }
        Err(SplitError::refused(
            &self.path,
            format!("it is damaged (quick_check: {found})"),
        ))
    }

    /// Both reads, one after the other: what a split runs on its second core while its first builds
    /// the outputs' indexes. A damaged file is refused before its sha256 is read. Asked to stop (`progress`),
    /// the `quick_check` is interrupted and the sha256 given up.
    pub fn run(&self, progress: &Progress) -> Result<()> {
        self.structure_unless_stopped(progress)?;
        self.sha256_unless_stopped(progress).map(|_| ())
    }
}

/// Maps a SQLite error met reading the legacy file: damage is a refusal of the input, the rest is an error.
pub(crate) fn legacy_error(path: &Path, e: rusqlite::Error) -> SplitError {
    // An error SQLite places in the query's text ("no such column": a damaged schema) comes as
    // `SqlInputError`, with the same SQLite error underneath (and no `sqlite_error_code()`).
    let failure = match &e {
        rusqlite::Error::SqliteFailure(f, _) | rusqlite::Error::SqlInputError { error: f, .. } => Some(f),
        _ => None,
    };
    if let Some(f) = failure {
        match f.code {
            ErrorCode::NotADatabase => return SplitError::refused(path, "it is not a SQLite database"),
            ErrorCode::DatabaseCorrupt => return SplitError::refused(path, format!("it is damaged ({e})")),
            ErrorCode::ReadOnly if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK => {
                return SplitError::refused(
                    path,
                    format!(
                        "a hot journal ({}-journal) is beside it: the old app was interrupted in the middle of a \
                         write; open the file once with the old app or the sqlite3 shell so SQLite rolls it back",
                        path.display()
                    ),
                );
            }
            // Every query here is fixed and the schema was checked against it, so a plain SQLITE_ERROR
            // ("unsupported file format", a column missing from sqlite_sequence) means damaged bytes.
            _ if f.extended_code == rusqlite::ffi::SQLITE_ERROR => {
                return SplitError::refused(path, format!("it is damaged ({e})"));
            }
            _ => {}
        }
    }
    // A typed read met a value SQLite's own tables cannot hold (a sqlite_sequence name that is not UTF-8).
    if let rusqlite::Error::Utf8Error(..)
    | rusqlite::Error::FromSqlConversionFailure(..)
    | rusqlite::Error::InvalidColumnType(..)
    | rusqlite::Error::IntegralValueOutOfRange(..) = e
    {
        return SplitError::refused(path, format!("it is damaged (a value of an unexpected type: {e})"));
    }
    SplitError::Store(store_core::Error::from_sqlite(path, e))
}

/// Reads up to `buf.len()` bytes from the start of `file` (fewer only at its end).
fn read_at_most(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Refuses what the header already tells: an empty file, another format, a truncated database
/// (https://sqlite.org/fileformat.html#the_database_header).
fn check_header(path: &Path, header: &[u8], len: u64) -> Result<()> {
    if len == 0 {
        return Err(SplitError::refused(
            path,
            "it is empty (0 bytes), as a crash during the old app's whole-file export leaves it",
        ));
    }
    let prefix = &header[..header.len().min(16)];
    if !store_core::files::SQLITE_HEADER.starts_with(prefix) {
        return Err(SplitError::refused(
            path,
            "it is not a SQLite database (its first bytes are not \"SQLite format 3\")",
        ));
    }
    if header.len() < 100 {
        return Err(SplitError::refused(
            path,
            format!("it is truncated: {len} bytes, shorter than SQLite's 100-byte header"),
        ));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
        return Err(SplitError::refused(
            path,
            format!("it is damaged: its header gives a page size of {page_size} bytes"),
        ));
    }
    let pages = u64::from(u32::from_be_bytes([header[28], header[29], header[30], header[31]]));
    // The in-header size is valid only when the change counter matches version-valid-for.
    let size_valid = header[24..28] == header[92..96] && pages > 0;
    if size_valid && pages * page_size > len {
        return Err(SplitError::refused(
            path,
            format!(
                "it is truncated: its header says {pages} pages of {page_size} bytes ({} bytes), the file has {len}",
                pages * page_size
            ),
        ));
    }
    if header[18] == 2 || header[19] == 2 {
        // Reading a WAL database creates -wal and -shm beside it; the old app never wrote one.
        return Err(SplitError::refused(
            path,
            "it is in WAL mode, which the old app never used (a splitstore output, or a converted copy); if it \
             is a legacy file, switch it back with `sqlite3 FILE 'PRAGMA journal_mode=DELETE'` first",
        ));
    }
    if !len.is_multiple_of(page_size) {
        return Err(SplitError::refused(
            path,
            format!("it is truncated: {len} bytes is not a whole number of {page_size}-byte pages"),
        ));
    }
    Ok(())
}

/// Opens read-only through a `mode=ro` URI: SQLite cannot write the file, nor create one if it vanished.
fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(store_core::files::file_uri(path, "mode=ro"), flags).map_err(|e| legacy_error(path, e))
}

/// Reads the version and checks every table against it. Returns the version and the unknown tables.
fn check_schema(conn: &Connection, path: &Path) -> Result<(u32, Vec<String>)> {
    let (user_version, application_id): (i64, i64) = conn
        .query_row(queries::LEGACY_HEADER, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| legacy_error(path, e))?;
    let tables: Vec<String> = conn
        .prepare(queries::LEGACY_TABLES)
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| legacy_error(path, e))?;
    let listed = if tables.is_empty() {
        "no tables".to_string()
    } else {
        format!("tables {}", tables.join(", "))
    };
    if application_id != 0 {
        let id = application_id as i32;
        let split_kind = [&activity_store::SCHEMA, &config_store::SCHEMA]
            .into_iter()
            .find(|s| s.application_id == id);
        let what = match split_kind {
            Some(s) => format!(
                "it is a splitstore {} (application_id {id:#010x}), already split",
                s.file_name
            ),
            None => format!("it belongs to another application (application_id {id:#010x}; {listed})"),
        };
        return Err(SplitError::refused(path, what));
    }
    let version = match u32::try_from(user_version) {
        Ok(v @ 1..=LATEST_LEGACY_VERSION) => v,
        _ => {
            return Err(SplitError::refused(
                path,
                format!(
                    "its user_version is {user_version}, and legacy files have 1, 2 or 3 (it has {listed}); a file of \
                     another app, or of a newer legacy version than this tool knows"
                ),
            ));
        }
    };

    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    for name in &tables {
        let Some(table) = queries::table(name) else {
            unknown.push(name.clone());
            continue;
        };
        if table.since > version {
            problems.push(format!(
                "table {name} belongs to version {}, but the file says version {version}",
                table.since
            ));
            continue;
        }
        let present: Vec<String> = conn
            .prepare(queries::LEGACY_COLUMNS)
            .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
            .map_err(|e| legacy_error(path, e))?;
        for expected in table.legacy_columns(version) {
            if !present.iter().any(|p| p == expected) {
                problems.push(format!(
                    "table {name} lacks column {expected}, which version {version} has"
                ));
            }
        }
        for col in &present {
            match table.column_since(col) {
                Some(since) if since <= version => {}
                Some(since) => problems.push(format!(
                    "table {name} has column {col} of version {since} in a version {version} file"
                )),
                None => problems.push(format!(
                    "table {name} has column {col}, which no legacy version has (copying would drop it)"
                )),
            }
        }
    }
    for table in TABLES.iter().filter(|t| t.since <= version) {
        if !tables.iter().any(|t| t == table.name) {
            problems.push(format!("table {} is missing (version {version} has it)", table.name));
        }
    }
    if !problems.is_empty() {
        return Err(SplitError::refused(
            path,
            format!(
                "its tables do not match its version (user_version {version}): {}",
                problems.join("; ")
            ),
        ));
    }
    Ok((version, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A split asked to stop gives up the legacy file's sha256 (it read it to the end first, about a second
    /// per gigabyte), caches nothing, and reads it whole when not asked to.
    #[test]
    fn the_legacy_files_sha256_is_given_up_when_the_split_is_asked_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("legacy.db");
        fs::write(&path, vec![1u8; 3 << 20]).unwrap();
        let checks = Checks {
            path: path.clone(),
            held: File::open(&path).unwrap(),
            sha256: OnceLock::new(),
        };
        let stop = Arc::new(AtomicBool::new(true));
        let progress = Progress::new(None).stopped_by(Some(stop.clone()), &path, "splitting it".into());
        let err = checks.sha256_unless_stopped(&progress).unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::Stopped, "{err}");
        assert!(checks.sha256.get().is_none(), "nothing cached");
        stop.store(false, Ordering::SeqCst);
        let whole = checks.sha256_unless_stopped(&progress).unwrap().to_string();
        assert_eq!(whole, store_core::files::sha256_of_path(&path).unwrap());
    }
}
