//! Health facts about one database file, as data: what `splitstore doctor` prints and what an app shows in
//! a persistent banner. Inspecting never writes to the database and never takes its owner lock.
//!
//! Integrity checks hold a read transaction for their whole run (O(N) for quick_check, O(N log N) for
//! integrity_check), and a reader holding a transaction pins the owner's WAL (https://sqlite.org/wal.html#ckpt).
//! So while an owner runs, the checks run on a page-exact snapshot (one-step backup into a scratch folder of
//! the data directory's private folder, deleted afterwards): the owner's WAL is pinned only for the time of
//! the copy. The snapshot holds user data, so it never goes to the shared system temp directory.

use rusqlite::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, SqliteResultExt};
use crate::files;
use crate::maintenance::{self, BackupFile};
use crate::migrate;
use crate::owner_lock::{LockState, OwnerLock};
use crate::private_dir::{self, Scratch};
use crate::read_pool;
use crate::schema::Schema;

/// A `-wal` larger than this is reported: something is keeping the owner from resetting it.
pub const LARGE_WAL_BYTES: u64 = 64 * 1024 * 1024;

/// How thoroughly to check the file's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    /// No structural check (fast; header, version and owner only).
    None,
    /// `PRAGMA quick_check` (O(N)).
    Quick,
    /// `PRAGMA integrity_check` (O(N log N); also verifies indexes against tables).
    Full,
}

/// Options for [`inspect`].
#[derive(Debug, Clone)]
pub struct InspectOptions {
    pub check: CheckLevel,
    /// Where to look for backups; `None` means `<data dir>/backups`.
    pub backup_dir: Option<PathBuf>,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            check: CheckLevel::Quick,
            backup_dir: None,
        }
    }
}

/// The outcome of a structural check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub level: CheckLevel,
    pub ok: bool,
    /// The first problems SQLite reported (empty when ok).
    pub messages: Vec<String>,
    /// Whether it ran on a snapshot because an owner was writing.
    pub on_snapshot: bool,
    /// The scratch folder that held the snapshot (removed before the check returned).
    pub snapshot_dir: Option<PathBuf>,
}

/// Something wrong with a database, with the command (or step) that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable identifier: `missing`, `corrupt`, `not_a_database`, `wrong_database`, `schema_newer`,
    /// `migrations_pending`, `foreign_keys`, `large_wal`, `unreadable`.
    pub code: &'static str,
    pub message: String,
    pub remedy: String,
}

/// Everything doctor knows about one database file. Never contains a settings value: only counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbHealth {
    pub database: &'static str,
    pub path: PathBuf,
    pub exists: bool,
    pub size_bytes: Option<u64>,
    pub wal_bytes: u64,
    /// `PRAGMA user_version` of the file.
    pub schema_version: Option<u32>,
    /// The version this build writes and reads.
    pub build_version: u32,
    pub pending_migrations: u32,
    pub newer_than_build: bool,
    pub application_id: Option<i32>,
    pub check: Option<CheckOutcome>,
    pub foreign_key_violations: Option<usize>,
    pub owner: Option<LockState>,
    pub row_counts: BTreeMap<String, u64>,
    pub newest_backup: Option<BackupFile>,
    pub problems: Vec<Problem>,
}

impl DbHealth {
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, code: &'static str, message: String, remedy: String) {
        self.problems.push(Problem { code, message, remedy });
    }

    fn problem_from(&mut self, err: &Error) {
        let code = match err.kind() {
            crate::ErrorKind::Missing => "missing",
            crate::ErrorKind::Corrupt => "corrupt",
            crate::ErrorKind::NotADatabase => "not_a_database",
            crate::ErrorKind::WrongDatabase => "wrong_database",
            crate::ErrorKind::SchemaNewer => "schema_newer",
            _ => "unreadable",
        };
        self.problem(code, err.what(), err.remedy());
    }
}

/// Inspects the database at `path`. Problems become entries in [`DbHealth::problems`]; this never fails.
/// While an owner holds the file, structural checks run on a snapshot.
pub fn inspect(path: &Path, schema: &'static Schema, opts: &InspectOptions) -> DbHealth {
    let owner = OwnerLock::probe(path).ok();
    let writer_may_run = matches!(owner, Some(LockState::Held { .. }));
    inspect_with(path, schema, opts, owner, writer_may_run)
}

/// Inspects the database whose owner lock the caller holds (repair, restore). Holding the lock is the proof
/// that nobody writes the file, so checks run on the file itself instead of on a copy of it.
pub fn inspect_owned(lock: &OwnerLock, schema: &'static Schema, opts: &InspectOptions) -> DbHealth {
    let owner = OwnerLock::probe(lock.db_path()).ok();
    inspect_with(lock.db_path(), schema, opts, owner, false)
}

fn inspect_with(
    path: &Path,
    schema: &'static Schema,
    opts: &InspectOptions,
    owner: Option<LockState>,
    writer_may_run: bool,
) -> DbHealth {
    let dir = path.parent().unwrap_or(Path::new(".")).display().to_string();
    let backup_dir = opts
        .backup_dir
        .clone()
        .unwrap_or_else(|| maintenance::default_backup_dir(path));
    let mut h = DbHealth {
        database: schema.file_name,
        path: path.to_path_buf(),
        exists: false,
        size_bytes: None,
        wal_bytes: maintenance::wal_bytes(path),
        schema_version: None,
        build_version: schema.end_version(),
        pending_migrations: 0,
        newer_than_build: false,
        application_id: None,
        check: None,
        foreign_key_violations: None,
        owner,
        row_counts: BTreeMap::new(),
        newest_backup: maintenance::list_backups(&backup_dir, schema.stem()).into_iter().next(),
        problems: Vec::new(),
    };
    let Ok(meta) = std::fs::metadata(path) else {
        h.problem(
            "missing",
            format!("{} does not exist", path.display()),
            format!(
                "start {} (`{} --data-dir {dir}`), or split a legacy database into {dir} \
                 (`migrate-split --legacy FILE --data-dir {dir}`)",
                schema.owner, schema.owner_command
            ),
        );
        return h;
    };
    h.exists = true;
    h.size_bytes = Some(meta.len());
    if h.wal_bytes > LARGE_WAL_BYTES {
        h.problem(
            "large_wal",
            format!("{}-wal is {} MB", path.display(), h.wal_bytes / (1024 * 1024)),
            "a reader is holding an old snapshot: restart long-running readers; the owner truncates the WAL at \
             its next checkpoint"
                .into(),
        );
    }
    if let Err(e) = inspect_contents(&mut h, path, schema, opts.check, writer_may_run) {
        h.problem_from(&e);
    }
    h
}

fn inspect_contents(
    h: &mut DbHealth,
    path: &Path,
    schema: &'static Schema,
    level: CheckLevel,
    on_snapshot: bool,
) -> crate::Result<()> {
    crate::open_database::refuse_orphaned_wal(path)?;
    let conn = read_pool::open_read_only(path, schema.owner)?;
    let state = migrate::read_state(&conn, path)?;
    h.application_id = Some(state.application_id);
    h.schema_version = Some(state.user_version);
    migrate::check_identity(path, schema, &state)?;
    let dir = path.parent().unwrap_or(Path::new(".")).display().to_string();
    if state.user_version > schema.end_version() {
        h.newer_than_build = true;
        return Err(Error::SchemaNewer {
            path: path.to_path_buf(),
            found: state.user_version,
            supported: schema.end_version(),
        });
    }
    h.pending_migrations = schema.end_version() - state.user_version;
    if h.pending_migrations > 0 {
        h.problem(
            "migrations_pending",
            format!(
                "{} is at schema {}, this build writes {}: {} migration(s) pending",
                path.display(),
                state.user_version,
                schema.end_version(),
                h.pending_migrations
            ),
            format!(
                "start {} from this build (`{} --data-dir {dir}`): it backs the file up, then migrates it",
                schema.owner, schema.owner_command
            ),
        );
    }

    // Declared before the snapshot's connection, so that connection closes before the folder is removed.
    let scratch = if on_snapshot && level != CheckLevel::None {
        private_dir::remove_stale_scratch(files::parent_dir(path));
        Some(Scratch::new(files::parent_dir(path), "check")?)
    } else {
        None
    };
    let checked = match &scratch {
        Some(scratch) => {
            let copy = scratch.path().join(schema.file_name);
            drop(files::create_private_new(&copy)?);
            maintenance::snapshot_into(&conn, path, &copy)?
        }
        None => conn,
    };
    if level != CheckLevel::None {
        let problems = match level {
            CheckLevel::Full => maintenance::integrity_check(&checked),
            _ => maintenance::quick_check(&checked),
        }
        .at(path)?;
        let ok = problems.is_empty();
        h.check = Some(CheckOutcome {
            level,
            ok,
            messages: problems.iter().take(10).cloned().collect(),
            on_snapshot,
            snapshot_dir: scratch.as_ref().map(|s| s.path().to_path_buf()),
        });
        if !ok {
            let err = Error::Corrupt {
                path: path.to_path_buf(),
                detail: problems.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
                newest_backup: h.newest_backup.as_ref().map(|b| b.path.clone()),
            };
            h.problem_from(&err);
            return Ok(());
        }
        let violations = maintenance::foreign_key_violations(&checked).at(path)?;
        h.foreign_key_violations = Some(violations.len());
        if !violations.is_empty() {
            let shown: Vec<String> = violations.iter().take(3).map(|v| v.to_string()).collect();
            h.problem(
                "foreign_keys",
                format!(
                    "{} has {} foreign key violation(s): {}",
                    path.display(),
                    violations.len(),
                    shown.join("; ")
                ),
                format!("restore the newest backup with `splitstore restore --data-dir {dir} --from BACKUP`"),
            );
        }
    }
    h.row_counts = row_counts(&checked).at(path)?;
    Ok(())
}

/// Rows per table (bookkeeping tables included; SQLite's internal tables excluded).
pub fn row_counts(conn: &Connection) -> rusqlite::Result<BTreeMap<String, u64>> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts = BTreeMap::new();
    for t in tables {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        counts.insert(t, n as u64);
    }
    Ok(counts)
}
