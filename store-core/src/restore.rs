//! Putting a backup back, and quarantining a damaged file. Both require the database's [`OwnerLock`]: the
//! lock is the proof that no owner is running (hazards: "Backups and restore").
//!
//! Placement follows https://sqlite.org/howtocorrupt.html: the current file moves aside together with its
//! `-wal`/`-shm` (a database separated from its WAL loses committed rows, and a stale WAL beside a new file
//! would be replayed into it); the backup is copied to a temporary name in the same directory, fsynced,
//! renamed into place, and the directory fsynced. Nothing is ever deleted.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::check;
use crate::conn_ext::ConnExt;
use crate::error::{Error, Result, SqliteResultExt};
use crate::files;
use crate::migrate;
use crate::open_database::{OpenOptions, OwnerConnection};
use crate::owner_lock::OwnerLock;
use crate::provenance::Provenance;
use crate::schema::Schema;

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    pub database: &'static str,
    pub path: PathBuf,
    pub restored_from: PathBuf,
    /// Where the file that was in place went (None if there was none).
    pub moved_aside: Option<PathBuf>,
    /// Schema version of the backup, and after opening it with this build.
    pub backup_version: u32,
    pub version: u32,
}

/// A backup [`verify_backup`] found sound: the only thing [`restore_from`] accepts, so a backup is always
/// verified before it is placed, and verified once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBackup {
    path: PathBuf,
    version: u32,
}

impl VerifiedBackup {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its schema version.
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// Checks that `backup` is a sound copy of this kind of database that this build can open:
/// `integrity_check` clean, the right `application_id`, a schema version in 1..=this build's.
/// Errors name the backup file.
pub fn verify_backup(backup: &Path, schema: &'static Schema) -> Result<VerifiedBackup> {
    // Only a regular file: opening a FIFO would wait for a writer forever (with both owner locks held).
    files::require_regular_file(backup, "read the backup")?;
    let conn = Connection::open_with_flags(
        backup,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .at_db(backup, schema)?;
    let state = migrate::read_state(&conn, backup, schema)?;
    if state.is_blank() {
        return Err(Error::WrongDatabase {
            path: backup.to_path_buf(),
            expected: schema.file_name,
            found: "it is an empty database, not a backup".into(),
        });
    }
    migrate::check_identity(backup, schema, &state)?;
    if state.user_version > schema.end_version() {
        return Err(Error::SchemaNewer {
            path: backup.to_path_buf(),
            found: state.user_version,
            supported: schema.end_version(),
            schema,
        });
    }
    let problems = check::integrity_check(&conn).at_db(backup, schema)?;
    if !problems.is_empty() {
        return Err(Error::Corrupt {
            path: backup.to_path_buf(),
            detail: format!("integrity_check of the backup found: {}", problems.join("; ")),
            schema: Some(schema),
        });
    }
    let version: u32 = conn.pragma_value("user_version").at_db(backup, schema)?;
    Ok(VerifiedBackup {
        path: backup.to_path_buf(),
        version,
    })
}

/// Replaces the database guarded by `lock` with the verified `backup`, then opens it once as the owner
/// with `lock`, which brings it to this build's schema and records a `restore` provenance row. Returns the
/// lock so the caller can keep holding it.
pub fn restore_from(
    lock: OwnerLock,
    schema: &'static Schema,
    backup: &VerifiedBackup,
    aside_tag: &str,
) -> Result<(RestoreReport, OwnerLock)> {
    let backup_version = backup.version;
    let backup = backup.path();
    let path = lock.db_path().to_path_buf();
    let dir = files::parent_dir(&path);
    let temp = files::with_suffix(&path, ".restoring");
    if std::fs::symlink_metadata(&temp).is_ok() {
        // Left by a restore that was killed before its rename: ours, never the user's data.
        std::fs::remove_file(&temp).map_err(|e| Error::io(&temp, "remove a leftover of an earlier restore", e))?;
    }
    copy_private(backup, &temp)?;
    let moved_aside = files::move_aside(&path, aside_tag)?;
    files::rename_durably(&temp, &path)?;
    files::sync_dir(dir)?;

    let mut owner = OwnerConnection::open_locked(lock, schema, &OpenOptions::default())?;
    let mut record = Provenance::now("restore");
    record.source_path = Some(backup.display().to_string());
    record.source_version = Some(backup_version as i64);
    owner.record_provenance(&record)?;
    let version = owner.schema_version()?;
    let lock = owner.into_lock();
    Ok((
        RestoreReport {
            database: schema.file_name,
            path,
            restored_from: backup.to_path_buf(),
            moved_aside,
            backup_version,
            version,
        },
        lock,
    ))
}

/// Moves a damaged database (and its `-wal`/`-shm`) aside as `<name>.corrupt-<time>`. Returns where it went.
pub fn quarantine(lock: &OwnerLock) -> Result<Option<PathBuf>> {
    files::move_aside(lock.db_path(), "corrupt")
}

/// Copies `from` to the new file `to`, created 0600, and fsyncs it. Opens both with std::fs: only for files
/// no SQLite connection of this process has open (a backup being restored, its temporary copy).
pub(crate) fn copy_private(from: &Path, to: &Path) -> Result<()> {
    files::require_regular_file(from, "read the backup")?;
    let mut src = File::open(from).map_err(|e| Error::io(from, "open", e))?;
    let mut dst = files::create_private_new(to)?;
    io::copy(&mut src, &mut dst).map_err(|e| Error::io(to, "write", e))?;
    dst.sync_all().map_err(|e| Error::io(to, "fsync", e))
}
