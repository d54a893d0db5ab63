//! The migration engine: versioned steps in `schema_migrations` and `PRAGMA user_version`, each step in its
//! own `BEGIN IMMEDIATE` transaction together with its bookkeeping, so a failure or a kill leaves the file at
//! the previous version and the next open finishes the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::backup;
use crate::check;
use crate::conn_ext::{self, ConnExt};
use crate::error::{Error, Result, SqliteResultExt};
use crate::schema::{Compat, Migration, Schema, Step};

/// Bookkeeping every database carries, created (if missing) inside each migration's
/// transaction so that a fresh file and an upgraded one end with the same schema.
pub const BOOKKEEPING_SQL: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reader_compatibility (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    min_reader_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS provenance (
    id             INTEGER PRIMARY KEY,
    event          TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    source_path    TEXT,
    source_sha256  TEXT,
    source_version INTEGER,
    detail         TEXT
);
";

/// Called inside each migration's transaction after its step ran and before its bookkeeping and COMMIT.
/// Returning `Err` fails the migration (the transaction rolls back). Drills use it to inject failures and
/// to hold a migration open while a test kills the process.
pub type MigrationHook = Arc<dyn Fn(&Migration) -> std::result::Result<(), String> + Send + Sync>;

/// What the file looked like before migrating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileState {
    pub application_id: i32,
    pub user_version: u32,
    pub table_count: u32,
}

impl FileState {
    /// A file nothing has been written into yet (a 0-byte or empty SQLite file).
    pub fn is_blank(&self) -> bool {
        self.application_id == 0 && self.user_version == 0 && self.table_count == 0
    }
}

/// Reads the header fields and forces SQLite to read and parse the schema, so a garbage or truncated file
/// fails here, at open, with `NotADatabase`/`Corrupt` (opening is lazy: https://sqlite.org/c3ref/open_v2.html).
pub(crate) fn read_state(conn: &Connection, path: &Path, schema: &'static Schema) -> Result<FileState> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id()),
                (SELECT user_version FROM pragma_user_version()),
                (SELECT count(*) FROM sqlite_schema WHERE type = 'table')",
        [],
        |r| {
            Ok(FileState {
                application_id: r.get(0)?,
                user_version: r.get(1)?,
                table_count: r.get(2)?,
            })
        },
    )
    .at_db(path, schema)
}

/// Refuses a file that is not this kind: another kind or application, or a SQLite file with tables but no
/// `application_id` (the schema's predecessor, for instance). This kind's file rebuilt without its header
/// fields ([`rebuilt_version`]) is [`Error::HeaderIdsLost`]: never taken for another application's, never
/// opened as it is (an open does not guess, nor write the header back: `repair` does, having checked).
pub(crate) fn check_identity(conn: &Connection, path: &Path, schema: &'static Schema, state: &FileState) -> Result<()> {
    if state.is_blank() || state.application_id == schema.application_id {
        return Ok(());
    }
    if let Some(version) = rebuilt_version(conn, schema, state) {
        return Err(Error::HeaderIdsLost {
            path: path.to_path_buf(),
            version,
            lowered_to: None,
            schema,
        });
    }
    let predecessor = schema
        .predecessor
        .filter(|p| state.application_id == 0 && (p.versions.0..=p.versions.1).contains(&state.user_version));
    let found = if state.application_id != 0 {
        format!(
            "its application_id is {} where {} has {}: it is another kind of database, or another \
             application's",
            show_application_id(state.application_id),
            schema.file_name,
            show_application_id(schema.application_id)
        )
    } else if let Some(p) = predecessor {
        format!(
            "it has {} tables, no application_id and user_version {}: it looks like the legacy database this \
             data comes from, which `{}` converts",
            state.table_count, state.user_version, p.converter
        )
    } else {
        format!(
            "it has {} tables, user_version {} and no application_id: it belongs to another application",
            state.table_count, state.user_version
        )
    };
    Err(Error::WrongDatabase {
        path: path.to_path_buf(),
        expected: schema.file_name,
        found,
    })
}

/// The version of a file of this kind rebuilt without its header fields, as `sqlite3 FILE .dump | sqlite3
/// NEW` (or `.recover`) rebuilds one: the dump carries every table, index, trigger and row, `schema_migrations`
/// with them, but not `application_id` nor `user_version`, which live in the file's header. Such a file has
/// both 0 and tables; it is taken for this kind's, at version N, only when `schema_migrations` records
/// exactly this schema's migrations 1..=N (the same versions, names and checksums) and its tables, indexes,
/// views and triggers are exactly those of a fresh file at version N (compared as
/// [`objects_fingerprint`](crate::schema::objects_fingerprint) does). A file with some of the same tables
/// and another schema, or a history this build did not write, stays another application's (`None`).
/// Likewise a file with this kind's `application_id` whose `user_version` is below the N it records: set back
/// by hand ([`check_user_version_lowered`]).
pub(crate) fn rebuilt_version(conn: &Connection, schema: &'static Schema, state: &FileState) -> Option<u32> {
    let header_lost = state.application_id == 0 && state.user_version == 0;
    if state.table_count == 0 || !(header_lost || state.application_id == schema.application_id) {
        return None;
    }
    let has_history: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .ok()?;
    if !has_history {
        return None;
    }
    let recorded: Vec<(i64, String, String)> = conn
        .prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .ok()?;
    if recorded.is_empty() || recorded.len() > schema.migrations.len() {
        return None;
    }
    let same_history = recorded
        .iter()
        .zip(schema.migrations)
        .all(|((version, name, checksum), m)| {
            *version == i64::from(m.version) && name == m.name && *checksum == m.checksum()
        });
    if !same_history {
        return None;
    }
    let version = recorded.len() as u32;
    if version <= state.user_version {
        return None;
    }
    let found = crate::schema::objects_fingerprint(conn).ok()?;
    let fresh = fresh_file(schema, version)?;
    (found == crate::schema::objects_fingerprint(&fresh).ok()?).then_some(version)
}

/// A fresh file of `schema` at `version`, built in memory by this engine.
pub(crate) fn fresh_file(schema: &'static Schema, version: u32) -> Option<Connection> {
    let mut fresh = Connection::open_in_memory().ok()?;
    upgrade(
        &mut fresh,
        Path::new(":memory:"),
        schema,
        (0, version),
        None,
        &crate::OpenOptions::default(),
    )
    .ok()?;
    Some(fresh)
}

/// An `application_id` as hex, with its four bytes as text when they are printable (`0x4e4f5445 "NOTE"`).
pub fn show_application_id(id: i32) -> String {
    let bytes = id.to_be_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic()) {
        format!("{id:#010x} \"{}\"", String::from_utf8_lossy(&bytes))
    } else {
        format!("{id:#010x}")
    }
}

/// Refuses a file of this kind whose `user_version` is below the migrations its `schema_migrations` records,
/// its tables exactly this build's at the last of them ([`rebuilt_version`]): `user_version` set back by hand
/// (`PRAGMA user_version`, as done to let an earlier build open a newer file). Its owner ran a migration
/// already applied, which failed at every start; `repair` writes the version back
/// ([`Error::HeaderIdsLost`]). Reads only.
pub(crate) fn check_user_version_lowered(
    conn: &Connection,
    path: &Path,
    schema: &'static Schema,
    state: &FileState,
) -> Result<()> {
    if state.application_id != schema.application_id {
        return Ok(());
    }
    match rebuilt_version(conn, schema, state) {
        Some(version) => Err(Error::HeaderIdsLost {
            path: path.to_path_buf(),
            version,
            lowered_to: Some(state.user_version),
            schema,
        }),
        None => Ok(()),
    }
}

/// Refuses a file newer than this build, one whose `user_version` was set back by hand, and one whose applied
/// migrations differ from this build's. Reads only: the file is untouched when this fails.
pub(crate) fn check_history(conn: &Connection, path: &Path, schema: &'static Schema, state: &FileState) -> Result<()> {
    let end = schema.end_version();
    if state.user_version > end {
        return Err(Error::SchemaNewer {
            path: path.to_path_buf(),
            found: state.user_version,
            supported: end,
            schema,
        });
    }
    check_user_version_lowered(conn, path, schema, state)?;
    if state.user_version == 0 {
        return Ok(());
    }
    let mut stmt = conn
        .prepare("SELECT name, checksum FROM schema_migrations WHERE version = ?1")
        .at_db(path, schema)?;
    for m in &schema.migrations[..state.user_version as usize] {
        let recorded: Option<(String, String)> = stmt
            .query_row([m.version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .at_db(path, schema)?;
        let detail = match recorded {
            None => "the file's user_version says it was applied, but schema_migrations has no record of it".into(),
            Some((_, checksum)) if checksum != m.checksum() => {
                format!("its checksum is {checksum}, this build's is {}", m.checksum())
            }
            Some(_) => continue,
        };
        return Err(Error::MigrationChanged {
            path: path.to_path_buf(),
            version: m.version,
            name: m.name,
            detail,
            schema,
        });
    }
    Ok(())
}

/// Where an owner's open is in the migration of a file that already had a schema
/// ([`crate::OpenOptions::on_migrating`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MigrationProgress<'a> {
    pub path: &'a Path,
    pub from_version: u32,
    pub to_version: u32,
    /// As [`UpgradeReport::stopped_before`].
    pub stopped_before: u32,
    /// What it begins now.
    pub phase: MigrationPhase,
}

/// A phase of a migration, told as it begins. A file of any size spends most of its time in `Copying` and in
/// the steps that rewrite every row of a table (the running totals' backfill over every session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationPhase {
    /// Told first, before anything: the file is about to be checked, copied and migrated.
    Starting,
    /// Reading the whole file for damage (`quick_check`) before changing it.
    Checking,
    /// Copying the file whole (and checking the copy): the way back to the build before.
    Copying,
    /// Running the step that brings the file to `version`, in one transaction.
    Step { version: u32, name: &'static str },
}

impl std::fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationPhase::Starting => f.write_str("starting"),
            MigrationPhase::Checking => f.write_str("checking the file (quick_check)"),
            MigrationPhase::Copying => f.write_str("copying the file"),
            MigrationPhase::Step { version, name } => write!(f, "migrating to schema {version} ({name})"),
        }
    }
}

/// Told as an owner's open begins to migrate a file that already had a schema, and as each phase of that
/// migration begins ([`MigrationProgress`]).
pub type MigratingCallback = Arc<dyn Fn(&MigrationProgress<'_>) + Send + Sync>;

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    pub from_version: u32,
    pub to_version: u32,
    /// The backup taken before migrating a file that already had a schema.
    pub backup: Option<PathBuf>,
    /// The starts before this one, in a row, that took a copy of the file at `from_version` and were stopped
    /// (killed) before a step of their migration committed ([`crate::records::MigratingRecord`]): the startup
    /// loop of a supervisor's start timeout shorter than the migration, or of an app quit while it looked hung.
    pub stopped_before: u32,
    /// How long the upgrade took, its copy and checks included, in milliseconds: what such a timeout must allow.
    pub took_ms: u64,
}

/// Applies migrations `from+1 ..= target`. On a file that already had a schema: `quick_check` first, then
/// a pre-migration backup into `backup_dir` (waiting for its folder as `opts.waits` says), then the steps
/// (`opts.migration_hook` inside each). `synchronous=FULL` while migrating, since a
/// power loss under NORMAL may roll back the last commits (https://sqlite.org/wal.html#performance_considerations);
/// the caller restores NORMAL.
pub(crate) fn upgrade(
    conn: &mut Connection,
    path: &Path,
    schema: &'static Schema,
    (from, target): (u32, u32),
    backup_dir: Option<&Path>,
    opts: &crate::OpenOptions,
) -> Result<UpgradeReport> {
    let (hook, key) = (opts.migration_hook.as_ref(), opts.key.as_ref());
    let started = std::time::Instant::now();
    let mut report = UpgradeReport {
        from_version: from,
        to_version: from,
        backup: None,
        stopped_before: 0,
        took_ms: 0,
    };
    if from >= target {
        return Ok(report);
    }
    let stopped_before = match from {
        0 => 0,
        _ => crate::records::MigratingRecord::of(path, from).map_or(0, |r| r.starts),
    };
    report.stopped_before = stopped_before;
    // Only a file that already had a schema is told of: creating one takes no time worth waiting through.
    let tell = |phase| {
        if let Some(on_migrating) = opts.on_migrating.as_ref().filter(|_| from > 0) {
            on_migrating(&MigrationProgress {
                path,
                from_version: from,
                to_version: target,
                stopped_before,
                phase,
            });
        }
    };
    if from > 0 {
        tell(MigrationPhase::Starting);
        tell(MigrationPhase::Checking);
        let problems = check::quick_check(conn).at_db(path, schema)?;
        let problems = crate::key::explain_check(path, key, problems);
        if !problems.is_empty() {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: format!("quick_check before migrating found: {}", problems.join("; ")),
                schema: Some(schema),
            });
        }
        if let Some(dir) = backup_dir {
            // The backup is of this file, so it carries the file's lineage: a file an earlier build made
            // gets it now rather than after the migrations, or its pre-migration backup would record none
            // and count as any file's in a folder two data directories share.
            crate::provenance::Provenance::ensure_lineage(conn).at_db(path, schema)?;
            let source = backup::Source {
                conn,
                db_path: path,
                schema,
                key,
            };
            tell(MigrationPhase::Copying);
            report.backup = Some(backup::pre_migration_backup(&source, dir, &opts.waits)?);
        }
    }
    conn_ext::set_and_verify(conn, path, "synchronous", "FULL", "2")?;
    for m in &schema.migrations[from as usize..target as usize] {
        tell(MigrationPhase::Step {
            version: m.version,
            name: m.name,
        });
        let applied = apply_one(conn, path, schema, m, hook);
        // Failed before any step committed: the file is the copy, which would only fill the disk at every
        // start that fails the same way. Kept (and named) when it is the way back from steps that committed.
        if applied.is_err()
            && report.to_version == from
            && let (Some(dir), Some(copy)) = (backup_dir, &report.backup)
            && backup::discard_pre_migration_backup(dir, copy, &opts.waits).is_ok()
        {
            report.backup = None;
            let _ = crate::records::clear_migrating(path);
        }
        applied.map_err(|e| match e {
            Error::MigrationFailed {
                path,
                version,
                name,
                sql,
                detail,
                schema,
                ..
            } => Error::MigrationFailed {
                path,
                version,
                name,
                sql,
                detail,
                backup: report.backup.clone().map(PathBuf::into_boxed_path),
                schema,
            },
            other => other,
        })?;
        if report.to_version == from && report.backup.is_some() {
            // A step committed after the copy: it is the way back from this upgrade now, which no later
            // start's copy supersedes. Best effort: a record left names a copy of a version the file is past.
            let _ = crate::records::clear_migrating(path);
        }
        report.to_version = m.version;
    }
    report.took_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn apply_one(
    conn: &mut Connection,
    path: &Path,
    schema: &'static Schema,
    m: &Migration,
    hook: Option<&MigrationHook>,
) -> Result<()> {
    let rebuild = matches!(m.step, Step::Rebuild(_));
    if rebuild {
        // Must happen outside the transaction: inside one it is a silent no-op
        // (https://sqlite.org/foreignkeys.html#fk_enable).
        conn_ext::set_and_verify(conn, path, "foreign_keys", "OFF", "0")?;
    }
    let outcome = run_in_transaction(conn, path, schema, m, hook);
    if rebuild {
        conn_ext::set_and_verify(conn, path, "foreign_keys", "ON", "1")?;
    }
    outcome
}

fn run_in_transaction(
    conn: &mut Connection,
    path: &Path,
    schema: &'static Schema,
    m: &Migration,
    hook: Option<&MigrationHook>,
) -> Result<()> {
    let failed = |sql: Option<String>, detail: String| Error::MigrationFailed {
        path: path.to_path_buf(),
        version: m.version,
        name: m.name,
        sql: sql.map(String::into_boxed_str),
        detail,
        backup: None,
        schema,
    };
    let sqlite_failed = |sql: Option<String>, e: rusqlite::Error| match Error::from_sqlite(path, e) {
        // Damage, a full disk and a failed read or write say more than "migration failed"; keep their own types.
        e @ (Error::Corrupt { .. }
        | Error::DiskFull { .. }
        | Error::WriteFailed { .. }
        | Error::ReadFailed { .. }
        | Error::Busy { .. }) => e.with_schema(schema),
        Error::Sqlite { source, .. } => failed(sql, source.to_string()),
        other => failed(sql, other.what()),
    };

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sqlite_failed(None, e))?;
    // Converge: if the version moved while we waited for the write lock, this step is already done.
    let current: u32 = tx.pragma_value("user_version").map_err(|e| sqlite_failed(None, e))?;
    if current >= m.version {
        return Ok(());
    }
    if current != m.version - 1 {
        return Err(failed(
            None,
            format!("the file is at version {current}, not {}", m.version - 1),
        ));
    }
    tx.execute_batch(BOOKKEEPING_SQL)
        .map_err(|e| sqlite_failed(Some(BOOKKEEPING_SQL.into()), e))?;
    // Rows already naming a missing parent are not this step's doing: a parent deleted by a tool with foreign
    // keys off, as they are by default (<https://sqlite.org/foreignkeys.html>, section 2; the `sqlite3` shell).
    // Failing on them would stop the owner's every start after an upgrade; doctor names them and `repair`
    // removes them. Only violations the step makes fail it.
    let before = check::foreign_key_violations(&tx).map_err(|e| sqlite_failed(None, e))?;
    match &m.step {
        Step::Sql(sql) | Step::Rebuild(sql) => run_statements(&tx, sql).map_err(|(s, e)| sqlite_failed(s, e))?,
        Step::Rust { run, .. } => run(&tx).map_err(|e| sqlite_failed(None, e))?,
    }
    if let Some(hook) = hook {
        hook(m).map_err(|why| failed(None, format!("injected failure: {why}")))?;
    }
    let mut violations = check::foreign_key_violations(&tx).map_err(|e| sqlite_failed(None, e))?;
    violations.retain(|v| !before.contains(v));
    if !violations.is_empty() {
        let shown: Vec<String> = violations.iter().take(5).map(|v| v.to_string()).collect();
        return Err(failed(
            None,
            format!(
                "foreign_key_check found {} violation(s) the migration made, before COMMIT: {}",
                violations.len(),
                shown.join("; ")
            ),
        ));
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
        params![m.version, m.name, m.checksum(), chrono::Utc::now().timestamp_millis()],
    )
    .map_err(|e| sqlite_failed(None, e))?;
    // The oldest reader version that still reads the file: unchanged by an additive step, this version
    // after a breaking one. A file from before this record knew only its own version: the step before.
    tx.execute(
        "INSERT INTO reader_compatibility (id, min_reader_version) VALUES (1, ?1 - ?2)
         ON CONFLICT (id) DO UPDATE SET min_reader_version = CASE WHEN ?2 THEN min_reader_version ELSE ?1 END",
        params![m.version, m.compat == Compat::Additive],
    )
    .map_err(|e| sqlite_failed(None, e))?;
    // Both header fields are written by the transaction and commit (or vanish) with it.
    tx.pragma_update(None, "user_version", m.version)
        .map_err(|e| sqlite_failed(None, e))?;
    if m.version == 1 {
        tx.pragma_update(None, "application_id", schema.application_id)
            .map_err(|e| sqlite_failed(None, e))?;
    }
    tx.commit().map_err(|e| sqlite_failed(None, e))
}

/// Runs each statement of `sql` in turn, and on failure says which one failed.
fn run_statements(conn: &Connection, sql: &str) -> std::result::Result<(), (Option<String>, rusqlite::Error)> {
    for statement in split_statements(sql) {
        let failed = |e| (Some(statement.to_string()), e);
        let mut stmt = conn.prepare(statement).map_err(failed)?;
        stmt.raw_query().next().map_err(failed)?;
    }
    Ok(())
}

/// Splits SQL text into complete statements the way the sqlite3 shell does: a `;` ends a statement only
/// where `sqlite3_complete` says the text so far is complete (not inside a string, comment or trigger body).
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in sql.match_indices(';') {
        let candidate = &sql[start..=i];
        if is_complete(candidate) {
            let trimmed = candidate.trim();
            if trimmed != ";" {
                out.push(trimmed);
            }
            start = i + 1;
        }
    }
    let rest = sql[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn is_complete(sql: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(sql) else {
        return false;
    };
    // SAFETY: sqlite3_complete only reads the NUL-terminated string it is given.
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

/// The oldest reader version that reads this file (see [`Compat`]): `None` if the file records none.
pub(crate) fn min_reader_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let recorded: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'reader_compatibility')",
        [],
        |r| r.get(0),
    )?;
    if !recorded {
        return Ok(None);
    }
    conn.query_row(
        "SELECT min_reader_version FROM reader_compatibility WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn statements_split_on_semicolons_outside_strings_comments_and_trigger_bodies() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT ';');
-- a comment; with a semicolon
CREATE TRIGGER t AFTER INSERT ON a BEGIN
  UPDATE a SET x = 'y;z';
  DELETE FROM a WHERE x = ';';
END;
INSERT INTO a VALUES ('last')";
        assert_eq!(
            split_statements(sql),
            [
                "CREATE TABLE a (x TEXT DEFAULT ';');",
                "-- a comment; with a semicolon\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 'y;z';\n  DELETE FROM a WHERE x = ';';\nEND;",
                "INSERT INTO a VALUES ('last')",
            ]
        );
        assert!(split_statements(" ; ;\n").is_empty());
    }
}
