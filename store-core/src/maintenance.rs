//! Checks, checkpoints and backups.
//!
//! Backups use the online backup API in a single step (`sqlite3_backup_step(-1)`): it copies every page
//! while holding one read transaction, so it finishes however fast the owner writes. A paged backup restarts
//! whenever another connection writes the source and may never finish under load
//! (https://sqlite.org/backup.html). The copy is page-exact, so checking it checks the original.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::conn_ext::ConnExt;
use crate::error::{Error, Result, SqliteResultExt};
use crate::files;
use crate::schema::Schema;

/// Name of the directory beside the databases where backups go unless told otherwise.
pub const BACKUP_DIR_NAME: &str = "backups";
/// How many backups of each database are kept unless told otherwise.
pub const DEFAULT_KEEP_BACKUPS: usize = 5;

/// The default backup directory for a database: `<its directory>/backups`.
pub fn default_backup_dir(db_path: &Path) -> PathBuf {
    db_path.parent().unwrap_or(Path::new(".")).join(BACKUP_DIR_NAME)
}

/// `PRAGMA quick_check`: the problems found, empty when the file is fine. O(N); holds a read transaction
/// for the whole run, so on a live file prefer checking a snapshot (see `diagnostics`).
pub fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA quick_check")
}

/// `PRAGMA integrity_check`: the problems found, empty when the file is fine. O(N log N).
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA integrity_check")
}

fn check_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if rows.len() == 1 && rows[0] == "ok" {
        Vec::new()
    } else {
        rows
    })
}

/// One row of `PRAGMA foreign_key_check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FkViolation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

impl fmt::Display for FkViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rowid {
            Some(id) => write!(f, "{} row {} points at a missing {}", self.table, id, self.parent),
            None => write!(f, "a {} row points at a missing {}", self.table, self.parent),
        }
    }
}

/// `PRAGMA foreign_key_check` (integrity checks do not look at foreign keys).
pub fn foreign_key_violations(conn: &Connection) -> rusqlite::Result<Vec<FkViolation>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    stmt.query_map([], |r| {
        Ok(FkViolation {
            table: r.get(0)?,
            rowid: r.get(1)?,
            parent: r.get(2)?,
        })
    })?
    .collect()
}

/// Checkpoint modes (https://sqlite.org/c3ref/wal_checkpoint_v2.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckpointMode {
    /// Copies what it can without waiting for anyone.
    Passive,
    /// Waits for readers, then makes the next writer restart the WAL from the beginning.
    Restart,
    /// Like `Restart`, and truncates the WAL file to zero bytes.
    Truncate,
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckpointResult {
    pub mode: CheckpointMode,
    /// The checkpoint could not finish: a reader holds an old snapshot (or a writer was active).
    pub busy: bool,
    /// Frames in the WAL.
    pub wal_frames: i64,
    /// Frames copied back into the database.
    pub checkpointed_frames: i64,
}

/// Runs `PRAGMA wal_checkpoint(mode)`. Only a writable connection can checkpoint.
pub fn checkpoint(conn: &Connection, mode: CheckpointMode) -> rusqlite::Result<CheckpointResult> {
    let sql = match mode {
        CheckpointMode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        CheckpointMode::Restart => "PRAGMA wal_checkpoint(RESTART)",
        CheckpointMode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    conn.query_row(sql, [], |r| {
        Ok(CheckpointResult {
            mode,
            busy: r.get::<_, i64>(0)? != 0,
            wal_frames: r.get(1)?,
            checkpointed_frames: r.get(2)?,
        })
    })
}

/// Size of the database's `-wal` file in bytes (0 when there is none). Reads metadata only.
pub fn wal_bytes(db_path: &Path) -> u64 {
    fs::metadata(files::with_suffix(db_path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A backup file found in a backup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    pub path: PathBuf,
    /// When it was taken, as in its name (`20261121T235614.123Z`).
    pub taken_at: String,
    /// The schema version it holds, as in its name.
    pub version: Option<u32>,
    /// Why it was taken, as in its name (`pre-migration-v2`), if not a plain backup.
    pub label: Option<String>,
    pub size_bytes: u64,
}

/// Backups of the database named `stem` (`activity`) in `dir`, newest first. A missing directory has none.
pub fn list_backups(dir: &Path, stem: &str) -> Vec<BackupFile> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{stem}-");
    let mut found: Vec<BackupFile> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(&prefix)?.strip_suffix(".db")?;
            let (taken_at, tail) = rest.split_at_checked(20)?;
            if !taken_at.ends_with('Z') || !taken_at.as_bytes()[8].eq(&b'T') {
                return None;
            }
            let tail = tail.strip_prefix("-v")?;
            let (version, label) = match tail.split_once('-') {
                Some((v, l)) => (v, Some(l.to_string())),
                None => (tail, None),
            };
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| BackupFile {
                path: e.path(),
                taken_at: taken_at.to_string(),
                version: version.parse().ok(),
                label,
                size_bytes: meta.len(),
            })
        })
        .collect();
    found.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then_with(|| b.path.cmp(&a.path)));
    found
}

/// The newest backup of the database at `db_path`, looked for in its default backup directory.
pub fn newest_backup_near(db_path: &Path) -> Option<PathBuf> {
    let stem = db_path.file_name()?.to_str()?.strip_suffix(".db")?;
    list_backups(&default_backup_dir(db_path), stem)
        .into_iter()
        .next()
        .map(|b| b.path)
}

/// Copies the database behind `conn` (an owner or a read-only connection) into a new backup file in
/// `dest_dir`: one-step online backup into a 0600 file under a temporary name, `quick_check` of the copy,
/// fsync, rename to `<stem>-<time>-v<version>[-<label>].db`, fsync of the directory; then only the newest
/// `keep` backups of this database are kept. Returns the backup's path.
pub fn backup_connection(
    conn: &Connection,
    db_path: &Path,
    schema: &Schema,
    dest_dir: &Path,
    label: &str,
    keep: usize,
) -> Result<PathBuf> {
    files::create_private_dir_all(dest_dir)?;
    remove_stale_partials(dest_dir, schema.stem());
    let stamp = files::name_timestamp(chrono::Utc::now());
    let partial = dest_dir.join(format!(".{}-{stamp}-{}.partial", schema.stem(), std::process::id()));
    drop(files::create_private_new(&partial)?);
    let outcome = copy_and_check(conn, db_path, &partial);
    let version = match outcome {
        Ok(v) => v,
        Err(e) => {
            remove_with_sidecars(&partial);
            return Err(e);
        }
    };
    files::sync_file(&partial)?;
    let suffix = if label.is_empty() {
        String::new()
    } else {
        format!("-{label}")
    };
    let mut target = dest_dir.join(format!("{}-{stamp}-v{version}{suffix}.db", schema.stem()));
    let mut n = 1;
    while target.exists() {
        // Two backups in the same millisecond: keep both, the later one numbered.
        target = dest_dir.join(format!("{}-{stamp}-v{version}{suffix}-{n}.db", schema.stem()));
        n += 1;
    }
    files::rename_durably(&partial, &target)?;
    prune_backups(dest_dir, schema.stem(), keep)?;
    Ok(target)
}

/// Page-exact copy of `conn`'s main database into the existing empty file `dest`, in one step, so it
/// finishes however fast the owner writes. Returns a connection to the copy. Works from a read-only
/// connection: the copy holds one read transaction on the source for its duration, nothing longer.
pub fn snapshot_into(conn: &Connection, db_path: &Path, dest: &Path) -> Result<Connection> {
    let mut out = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .at(dest)?;
    {
        let backup = Backup::new(conn, &mut out).at(dest)?;
        let mut waited = Duration::ZERO;
        loop {
            match backup.step(-1).at(db_path)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if waited < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(20));
                    waited += Duration::from_millis(20);
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(Error::Busy {
                        path: db_path.to_path_buf(),
                    });
                }
                // `More` cannot follow step(-1); treat it as another round rather than trust it.
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Snapshot of `conn` into the empty file `dest`, checked, made a single self-contained file.
/// Returns the schema version of the copy.
fn copy_and_check(conn: &Connection, db_path: &Path, dest: &Path) -> Result<u32> {
    let out = snapshot_into(conn, db_path, dest)?;
    let problems = quick_check(&out).at(dest)?;
    if !problems.is_empty() {
        // The copy is page-exact: its damage is the source's.
        return Err(Error::Corrupt {
            path: db_path.to_path_buf(),
            detail: format!("quick_check of a fresh backup found: {}", problems.join("; ")),
            newest_backup: newest_backup_near(db_path),
        });
    }
    let version: u32 = out.pragma_value("user_version").at(dest)?;
    // A copy of a WAL database is itself marked WAL; make it a single self-contained file.
    out.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(())).at(dest)?;
    out.close().map_err(|(_, e)| Error::from_sqlite(dest, e))?;
    Ok(version)
}

/// Keeps the newest `keep` backups of `stem` in `dir` and removes the rest.
pub fn prune_backups(dir: &Path, stem: &str, keep: usize) -> Result<()> {
    for old in list_backups(dir, stem).into_iter().skip(keep.max(1)) {
        fs::remove_file(&old.path).map_err(|e| Error::io(&old.path, "remove an old backup", e))?;
    }
    Ok(())
}

/// Removes temporary backup files left by a backup process that no longer runs.
fn remove_stale_partials(dir: &Path, stem: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{stem}-");
    for e in entries.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".partial")) else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| !crate::process::alive(pid)) {
            remove_with_sidecars(&e.path());
        }
    }
}

fn remove_with_sidecars(path: &Path) {
    let _ = fs::remove_file(path);
    for s in files::sidecars(path) {
        let _ = fs::remove_file(s);
    }
}
