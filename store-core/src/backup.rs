//! Backups: page-exact copies of a database, verified, fsynced, private, and named by what they are.
//!
//! Copies use the online backup API in a single step (`sqlite3_backup_step(-1)`): it copies every page
//! while holding one read transaction, so it finishes however fast the owner writes. A paged backup restarts
//! whenever another connection writes the source and may never finish under load
//! (<https://sqlite.org/backup.html>). The copy is page-exact, so checking it checks the original.
//!
//! Two classes, kept apart: manual backups (`<data dir>/backups`, rotated: the newest K are kept) and the
//! copy taken before each migration (`<data dir>/backups/pre-migration`, never rotated: it is the one
//! way back from an upgrade). Only a copy no migration step committed after is ever removed: by the start
//! that took it when its migration fails at once (`discard_pre_migration_backup`), or by the next start's
//! copy of the same file at the same version when its start was killed (`note_pre_migration_copy`).
//!
//! A backup folder has one advisory lock ([`FolderLock`], `.backups.lock` in it, never taken for a backup):
//! a backup holds it exclusively from before its snapshot through its naming and rotation, a restore or a
//! repair shares it from choosing a backup there until it has copied it. Two overlapping backups are so named
//! in the order of their snapshots (a backup named later never holds fewer rows: `backup_named_earlier` is
//! only ever a clock's doing), and a rotation never removes the backup a restore is reading. A holder that
//! is stopped (Ctrl-Z) is not waited for: [`Error::FolderHeldByStopped`] names it.
//!
//! An encrypted database's backups are encrypted with its key: the copy is made between two connections
//! keyed with the same key, so its pages are written encrypted as they are copied (`key`; hazards:
//! "Encryption at rest"). Reading a backup (to list it, verify it, restore it) takes that key too.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::check::integrity_check_with_types_beside;
use crate::conn_ext::ConnExt;
use crate::error::{Error, Result, SqliteResultExt};
use crate::files;
use crate::key::Key;
use crate::owner_lock::{FolderLock, Waits};
use crate::provenance::Provenance;
use crate::records;
use crate::schema::Schema;

/// Name of the directory beside the databases where backups go unless told otherwise.
pub const BACKUP_DIR_NAME: &str = "backups";
/// Name of the folder inside a backup directory that holds the copies taken before migrations.
pub const PRE_MIGRATION_DIR_NAME: &str = "pre-migration";
/// How many manual backups of each database are kept unless told otherwise.
pub const DEFAULT_KEEP_BACKUPS: usize = 5;
/// The provenance event a backup records inside itself: when it was taken, from which file.
pub const BACKUP_EVENT: &str = "backup";

/// The default backup directory for a database: `<its directory>/backups`.
pub fn default_backup_dir(db_path: &Path) -> PathBuf {
    files::parent_dir(db_path).join(BACKUP_DIR_NAME)
}

/// Where the copies taken before migrations go, inside a backup directory.
pub fn pre_migration_dir(backup_dir: &Path) -> PathBuf {
    backup_dir.join(PRE_MIGRATION_DIR_NAME)
}

/// Whether `dir` is a folder of copies taken before migrations, however it is spelled (`--to .` inside one,
/// `pre-migration/x/..`).
pub fn is_pre_migration_dir(dir: &Path) -> bool {
    files::resolved(dir)
        .file_name()
        .is_some_and(|name| name == PRE_MIGRATION_DIR_NAME)
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupClass {
    /// Taken on request (`backup`), rotated: the newest K are kept.
    Manual,
    /// Taken by the owner just before migrating the file; never rotated.
    PreMigration,
}

/// A backup's file name: `<stem>-<taken, UTC>-v<schema version>[-<n>].db`, e.g.
/// `events-20261121T235614.123Z-v2.db`. `n` tells apart two backups taken in the same millisecond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupName {
    /// The database's file name without `.db`.
    pub stem: String,
    pub taken_at: DateTime<Utc>,
    /// The schema version the copy holds.
    pub version: u32,
    pub seq: u32,
}

impl BackupName {
    /// The format of the time in the name: sortable as text, no characters a file system dislikes.
    const TIME_FORMAT: &'static str = "%Y%m%dT%H%M%S%.3fZ";

    /// The file name.
    pub fn file_name(&self) -> String {
        let time = self.taken_at.format(Self::TIME_FORMAT);
        match self.seq {
            0 => format!("{}-{time}-v{}.db", self.stem, self.version),
            n => format!("{}-{time}-v{}-{n}.db", self.stem, self.version),
        }
    }

    /// The path in `dir` of a file of this name, numbered past any file already there (two backups taken in
    /// the same millisecond are both kept).
    pub fn unused_path_in(mut self, dir: &Path) -> PathBuf {
        while fs::symlink_metadata(dir.join(self.file_name())).is_ok() {
            self.seq += 1;
        }
        dir.join(self.file_name())
    }

    /// Parses a file name [`file_name`](Self::file_name) made; `None` for anything else.
    pub fn parse(file_name: &str) -> Option<BackupName> {
        let rest = file_name.strip_suffix(".db")?;
        let (head, tail) = rest.rsplit_once("-v")?;
        let (version, seq) = match tail.split_once('-') {
            Some((v, n)) => (v.parse().ok()?, n.parse().ok().filter(|n| *n > 0)?),
            None => (tail.parse().ok()?, 0),
        };
        let (stem, time) = head.rsplit_once('-')?;
        let taken_at = NaiveDateTime::parse_from_str(time, Self::TIME_FORMAT).ok()?.and_utc();
        (!stem.is_empty()).then(|| BackupName {
            stem: stem.to_string(),
            taken_at,
            version,
            seq,
        })
    }
}

/// A backup of one database found in a backup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    #[serde(with = "crate::files::lossy_path")]
    pub path: PathBuf,
    pub class: BackupClass,
    /// When it was taken: as recorded inside the copy, or (for a copy that records nothing) the file's
    /// modification time. Never the time in its name, which anyone can type.
    pub taken_at: DateTime<Utc>,
    /// The schema version it holds, read from the copy.
    pub version: u32,
    pub size_bytes: u64,
    /// Its file name, parsed.
    pub name: BackupName,
    /// The lineage of the file it is a copy of ([`crate::provenance::LINEAGE_EVENT`]); `None` for a copy
    /// of a file that had none (taken by an earlier build, or of a file no owner of this build opened yet).
    pub lineage: Option<String>,
    /// The path of the database it was taken from, as its `backup` record gives it.
    pub taken_from: Option<String>,
}

impl BackupFile {
    /// Whether a backup that records no lineage (an earlier build's) may be one of the file at `path`: unless
    /// it records another path whole. Another data directory's, of an earlier build, in a folder shared with
    /// this one would otherwise be restored in this file's place, its rows for this file's.
    fn may_have_been_taken_from(&self, path: &Path) -> bool {
        match self.taken_from.as_deref().map(Path::new) {
            Some(from) if from.is_absolute() => std::path::absolute(path).is_ok_and(|p| p == from),
            // As typed to an earlier build (relative to where it ran), or not recorded: nothing tells.
            _ => true,
        }
    }

    /// Whether `self` and `other` are backups of the same database file: the same lineage when both
    /// have one, else the same recorded source path.
    fn same_file_as(&self, other: &BackupFile) -> bool {
        match (&self.lineage, &other.lineage) {
            (Some(a), Some(b)) => a == b,
            _ => self.taken_from.is_some() && self.taken_from == other.taken_from,
        }
    }
}

/// A file in a backup directory named like a backup of a database but not taken for one: reported, never
/// pruned, never restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredFile {
    #[serde(with = "crate::files::lossy_path")]
    pub path: PathBuf,
    pub reason: String,
    /// When the key was the reason (`key_rejected`: taken under another key, say before a key rotation;
    /// `not_encrypted`: in the clear; `key_required`: read without a key, no database, not SQLite's
    /// header and whole pages, so perhaps encrypted): the file may well be a sound backup, just not for
    /// this key.
    pub key_problem: Option<crate::ErrorKind>,
    /// It cannot be read as a database at all (empty, cut short, damaged at its start): a backup of this file
    /// once, most likely, that a copy did not finish.
    pub unreadable: bool,
}

/// What a backup directory holds for one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupListing {
    /// Backups whose content is this database kind, newest first.
    pub backups: Vec<BackupFile>,
    /// Files named like its backups that are not (another kind, not SQLite, a link, a name from the future).
    pub ignored: Vec<IgnoredFile>,
    /// Of `ignored`, the backups of this kind whose name says they were taken later than the clock reads
    /// now (the clock was ahead when they were taken, or is behind now), newest first: never chosen by
    /// name, since each would pass for the newest over every backup taken after it, but a restore or repair
    /// that would otherwise put an older copy in place (or none) names them.
    pub named_later: Vec<BackupFile>,
}

/// Lists the backups of `schema` in `dir` (one class), reading each candidate (with `key`, for an encrypted
/// database's) to learn what it is. Only regular files are looked at; a name from the future is reported
/// and the file is left out, and so is one that `key` does not open (with the reason), and one owned by
/// another user than this one and the folder's: in a folder others may write (`/tmp`, a shared drive) anyone
/// could have put it there, and a restore from the folder would put their rows in the user's database.
pub fn list_backups(dir: &Path, schema: &Schema, class: BackupClass, key: Option<&Key>) -> BackupListing {
    let mut listing = BackupListing::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return listing;
    };
    let trusted = [Some(files::this_user()), files::owner_of(dir)];
    let now = Utc::now();
    for entry in entries.filter_map(|e| e.ok()) {
        let Some(name) = entry.file_name().to_str().and_then(BackupName::parse) else {
            continue;
        };
        if name.stem != schema.stem() {
            continue;
        }
        let path = entry.path();
        let ignore = |reason: String| IgnoredFile {
            path: path.clone(),
            reason,
            key_problem: None,
            unreadable: false,
        };
        match examine(&path, schema, key, &trusted) {
            Err(not) => listing.ignored.push(IgnoredFile {
                key_problem: not.key_problem,
                unreadable: not.unreadable,
                ..ignore(not.reason)
            }),
            Ok(found) => {
                let named_later = name.taken_at > now + chrono::Duration::minutes(5);
                let backup = BackupFile {
                    path: path.clone(),
                    class,
                    taken_at: found.taken_at,
                    version: found.version,
                    size_bytes: found.size_bytes,
                    name,
                    lineage: found.lineage,
                    taken_from: found.taken_from,
                };
                if named_later {
                    listing.ignored.push(ignore(format!(
                        "its name says it was taken at {}, later than the clock reads now: never chosen by its name (a \
                         restore takes it when given its file)",
                        backup.name.taken_at.to_rfc3339()
                    )));
                    listing.named_later.push(backup);
                } else {
                    listing.backups.push(backup);
                }
            }
        }
    }
    listing.backups.sort_by(newest_first);
    listing.named_later.sort_by(newest_first);
    listing.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    listing
}

/// Newest first: by the time taken; two taken in the same millisecond by their number (`-1` after none).
fn newest_first(a: &BackupFile, b: &BackupFile) -> std::cmp::Ordering {
    b.taken_at
        .cmp(&a.taken_at)
        .then_with(|| b.name.seq.cmp(&a.name.seq))
        .then_with(|| b.path.cmp(&a.path))
}

/// Every backup of `schema` under `backup_dir`, both classes, newest first.
pub fn all_backups(backup_dir: &Path, schema: &Schema, key: Option<&Key>) -> BackupListing {
    let mut all = list_backups(backup_dir, schema, BackupClass::Manual, key);
    let pre = list_backups(&pre_migration_dir(backup_dir), schema, BackupClass::PreMigration, key);
    all.backups.extend(pre.backups);
    all.ignored.extend(pre.ignored);
    all.named_later.extend(pre.named_later);
    all.backups.sort_by(newest_first);
    all.named_later.sort_by(newest_first);
    all
}

/// Why a file is not a backup ([`IgnoredFile`]'s fields).
struct NotABackup {
    reason: String,
    key_problem: Option<crate::ErrorKind>,
    unreadable: bool,
}

impl NotABackup {
    fn other(reason: String) -> NotABackup {
        NotABackup {
            reason,
            key_problem: None,
            unreadable: false,
        }
    }

    fn unreadable(reason: String) -> NotABackup {
        NotABackup {
            unreadable: true,
            ..NotABackup::other(reason)
        }
    }
}

/// What [`examine`] reads of a backup.
struct Examined {
    taken_at: DateTime<Utc>,
    version: u32,
    size_bytes: u64,
    lineage: Option<String>,
    taken_from: Option<String>,
}

/// Reads what a candidate file is: its time (recorded, else mtime), schema version, size, lineage and
/// source, or why it is not a backup of this kind. Opens only regular files of a `trusted` owner, read-only.
fn examine(
    path: &Path,
    schema: &Schema,
    key: Option<&Key>,
    trusted: &[Option<u32>],
) -> std::result::Result<Examined, NotABackup> {
    let meta = fs::symlink_metadata(path).map_err(|e| NotABackup::unreadable(format!("cannot be read: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(NotABackup::other("is not a regular file".into()));
    }
    if !trusted.contains(&Some(meta.uid())) {
        return Err(NotABackup::other(format!(
            "belongs to another user (uid {}) than this one and the folder's: anyone who may write the folder \
             could have put it there, so it is not taken",
            meta.uid()
        )));
    }
    // Not opened: SQLite would delete a `-wal` beside it (`files::nonempty_regular`).
    if meta.len() == 0 {
        return Err(NotABackup::unreadable("is empty (0 bytes)".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| NotABackup::unreadable(format!("cannot be opened: {e}")))?;
    crate::key::apply(&conn, path, key).map_err(|e| NotABackup {
        key_problem: Some(e.kind()),
        ..NotABackup::other(e.what())
    })?;
    let read = || -> rusqlite::Result<(i32, u32, Option<Provenance>, Option<String>)> {
        let id: i32 = conn.pragma_value("application_id")?;
        let version: u32 = conn.pragma_value("user_version")?;
        let recorded = Provenance::read_all(&conn)?
            .into_iter()
            .rev()
            .find(|p| p.event == BACKUP_EVENT);
        Ok((id, version, recorded, Provenance::lineage(&conn)?))
    };
    let (id, version, recorded, lineage) = read().map_err(|e| match crate::key::error_at(path, key, e) {
        // Left from before the directory was encrypted: the whole history, readable by anyone.
        e @ Error::NotEncrypted { .. } => NotABackup {
            key_problem: Some(e.kind()),
            ..NotABackup::other(format!(
                "is in the clear ({}): it holds the data unencrypted beside a database encrypted with the key \
                 given; once a backup under the key exists, delete it",
                e.kind()
            ))
        },
        e @ Error::KeyRejected { .. } => NotABackup {
            key_problem: Some(e.kind()),
            ..NotABackup::other(format!("cannot be read with the key given ({})", e.kind()))
        },
        // Without a key, one that may be encrypted (a backup taken before the data directory was decrypted):
        // a key problem, so a restore or repair names it rather than no backup.
        e => {
            let maybe_encrypted = key.is_none()
                && crate::key::encryption_available()
                && e.kind() == crate::ErrorKind::NotADatabase
                && crate::files::may_be_encrypted(path, meta.len());
            NotABackup {
                key_problem: maybe_encrypted.then_some(crate::ErrorKind::KeyRequired),
                unreadable: !maybe_encrypted,
                reason: format!("is not a readable SQLite database ({})", e.what()),
            }
        }
    })?;
    if id != schema.application_id {
        return Err(NotABackup::other(format!(
            "is not a copy of {} (its application_id is {id:#010x})",
            schema.file_name
        )));
    }
    let taken_at = recorded
        .as_ref()
        .and_then(|r| DateTime::from_timestamp_millis(r.at_ms))
        .or_else(|| meta.modified().ok().map(DateTime::<Utc>::from))
        .unwrap_or(DateTime::UNIX_EPOCH);
    Ok(Examined {
        taken_at,
        version,
        size_bytes: meta.len(),
        lineage,
        taken_from: recorded.and_then(|r| r.source_path),
    })
}

/// Whose backups a restore or repair may take from a folder for a file whose own have gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// Only the file's own (a repair: the damaged file is the user's, another database's backup is not).
    OwnOnly,
    /// Those of the one database the folder holds backups of, when it holds none of the file's own (a
    /// restore the user asked for: a new install restoring its old data, the file in place kept aside).
    SingleOther,
}

/// Of `backups` (newest first, from one folder), those that may stand for the database file at `path`,
/// whose lineage is `lineage` (`None`: unknown, the file missing or unreadable). A file of known lineage
/// takes its own backups and those that record no lineage (an earlier build's) but were not taken from
/// another path; with none of those, [`Adopt`] says whether the folder's others may stand for it. A file of
/// unknown lineage takes the folder's backups when they are all of one lineage. Backups of two or more
/// other lineages are [`Error::BackupsOfOtherFiles`]: nothing tells which is the file's.
pub fn backups_for(
    backups: Vec<BackupFile>,
    lineage: Option<&str>,
    adopt: Adopt,
    path: &Path,
    backup_dir: &Path,
    schema: &'static Schema,
) -> Result<Vec<BackupFile>> {
    if let Some(own) = lineage {
        let mine: Vec<BackupFile> = backups
            .iter()
            .filter(|b| match b.lineage.as_deref() {
                Some(l) => l == own,
                None => b.may_have_been_taken_from(path),
            })
            .cloned()
            .collect();
        if !mine.is_empty() || adopt == Adopt::OwnOnly {
            return Ok(mine);
        }
    }
    // Of each file the folder holds backups of: its lineage, or, for an earlier build's backup (none
    // recorded), the path it records being taken from whole; one recording neither is anyone's.
    let mut newest_of_each: Vec<&BackupFile> = Vec::new();
    for b in backups
        .iter()
        .filter(|b| b.lineage.is_some() || !b.may_have_been_taken_from(path))
    {
        if !newest_of_each.iter().any(|n| n.same_file_as(b)) {
            newest_of_each.push(b);
        }
    }
    if newest_of_each.len() > 1 {
        return Err(Error::BackupsOfOtherFiles {
            path: path.to_path_buf(),
            backup_dir: backup_dir.to_path_buf(),
            newest: newest_of_each
                .into_iter()
                .map(|b| (b.path.clone(), b.taken_from.clone()))
                .collect(),
            schema,
        });
    }
    Ok(backups)
}

/// The backups under `backup_dir` (either class, newest first) that may stand for the database file at
/// `path`: [`backups_for`] with the lineage read from the file (unknown when it cannot be read); with the
/// files there named like its backups that are not usable ones, from the same reading of the folder.
pub fn backups_of_file(
    path: &Path,
    backup_dir: &Path,
    schema: &'static Schema,
    key: Option<&Key>,
    adopt: Adopt,
) -> Result<BackupListing> {
    let lineage = crate::provenance::lineage_of(path, key);
    let listing = all_backups(backup_dir, schema, key);
    // Only named, never restored by themselves: the file's own by the rule its backups are told by, and none
    // when nothing tells whose they are (another directory's would be named as this file's).
    let named_later = backups_for(
        listing.named_later,
        lineage.as_deref(),
        Adopt::OwnOnly,
        path,
        backup_dir,
        schema,
    )
    .unwrap_or_default();
    Ok(BackupListing {
        backups: backups_for(listing.backups, lineage.as_deref(), adopt, path, backup_dir, schema)?,
        ignored: listing.ignored,
        named_later,
    })
}

/// The newest backup of `schema` under `backup_dir` (either class).
pub fn newest_backup(backup_dir: &Path, schema: &Schema, key: Option<&Key>) -> Option<BackupFile> {
    all_backups(backup_dir, schema, key).backups.into_iter().next()
}

/// Copies the database behind `conn` (an owner or a read-only connection) into a new backup file of
/// `class` under `backup_dir`: one-step online backup into a 0600 file under a temporary name,
/// `integrity_check` of the copy, a `backup` record inside it (time and source), fsync, rename to its
/// [`BackupName`], fsync of the directory. Manual backups are then rotated: only the newest `keep` manual
/// backups of this database stay, the one just taken always among them, and only files that are backups of
/// this database kind are ever removed. A pre-migration copy is recorded as one no migration step committed
/// after, until one does: the next pre-migration copy of the same file at the same version replaces it (see
/// `note_pre_migration_copy`). `key` is the database's (the one `conn` was keyed with): the backup
/// is encrypted with it. Holds `backup_dir`'s [`FolderLock`] exclusively throughout, waiting for another
/// backup into it, or a restore reading from it, to finish. Returns the backup's path.
pub fn backup_connection(
    conn: &Connection,
    db_path: &Path,
    schema: &'static Schema,
    backup_dir: &Path,
    class: BackupClass,
    keep: usize,
    key: Option<&Key>,
) -> Result<PathBuf> {
    let source = Source {
        conn,
        db_path,
        schema,
        key,
    };
    take_backup(&source, backup_dir, class, keep, &Waits::default())
}

/// The backup an owner's open takes before it migrates its file (see [`backup_connection`]), waiting for
/// the backup folder as `waits` says: a daemon asked to stop while another process's backup holds the
/// folder gives up ([`Error::Stopped`]) before it changes anything.
pub(crate) fn pre_migration_backup(source: &Source<'_>, backup_dir: &Path, waits: &Waits) -> Result<PathBuf> {
    take_backup(source, backup_dir, BackupClass::PreMigration, 0, waits)
}

/// Removes the pre-migration backup `backup` of `backup_dir` (its folder, as given to
/// [`pre_migration_backup`]) when no migration after it committed: the file is then still exactly what the copy
/// holds, so the copy is no way back from anything. Without this a migration failing at every start (a
/// supervisor restarting the owner) kept one more copy of the whole file per start, never rotated, until the
/// disk was full. Under the folder's lock, as the copy was taken.
pub(crate) fn discard_pre_migration_backup(backup_dir: &Path, backup: &Path, waits: &Waits) -> Result<()> {
    let _folder = FolderLock::exclusive_with(backup_dir, waits)?;
    files::remove_with_sidecars(backup)?;
    files::sync_dir(&pre_migration_dir(backup_dir))
}

/// The copies earlier starts took of the file at `db` at `version` (its version now) whose migration never
/// committed a step ([`records::MigratingRecord`]: killed during it), which `copy`, of the same file at the
/// same version, replaces: each holds an earlier state of what `copy` holds, and is the way back from no
/// upgrade. Without this a start killed during its migration at every attempt (a supervisor's start timeout,
/// a user quitting an app that looked hung) kept one more copy of the whole file per attempt, never rotated,
/// until the disk was full. Records `copy` beside them before it is put in place (so a kill at any point
/// leaves every copy of those starts named for the next one) and returns them, to remove once it is
/// ([`remove_superseded_copies`]). Only files of `folder` (the pre-migration folder) named as copies of
/// `schema` at `version` are returned, whatever the record says. Best effort: a record that cannot be written
/// leaves the earlier copies as they are.
fn note_pre_migration_copy(db: &Path, schema: &Schema, version: u32, folder: &Path, copy: &Path) -> Vec<PathBuf> {
    let Ok(file) = files::file_id(db) else {
        return Vec::new();
    };
    let before = records::MigratingRecord::of(db, version);
    let starts = before.as_ref().map_or(0, |r| r.starts) + 1;
    let superseded = |old: &Path| {
        old != copy
            && old.parent() == Some(folder)
            && old
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(BackupName::parse)
                .is_some_and(|n| n.stem == schema.stem() && n.version == version)
    };
    let earlier: Vec<PathBuf> = before
        .map(|r| r.copies)
        .unwrap_or_default()
        .into_iter()
        .filter(|old| superseded(old))
        .collect();
    let record = records::MigratingRecord {
        file,
        version,
        copies: earlier.iter().cloned().chain([copy.to_path_buf()]).collect(),
        starts,
        at_ms: Utc::now().timestamp_millis(),
    };
    match records::note_migrating(db, &record) {
        Ok(()) => earlier,
        Err(_) => Vec::new(),
    }
}

/// Removes `earlier` ([`note_pre_migration_copy`]) now that `copy` is in place, and records `copy` alone.
fn remove_superseded_copies(db: &Path, version: u32, folder: &Path, earlier: &[PathBuf], copy: &Path) -> Result<()> {
    if earlier.is_empty() {
        return Ok(());
    }
    for old in earlier {
        files::remove_with_sidecars(old)?;
    }
    files::sync_dir(folder)?;
    let Some(mut record) = records::MigratingRecord::of(db, version) else {
        return Ok(());
    };
    record.copies = vec![copy.to_path_buf()];
    records::note_migrating(db, &record)
}

/// The database a backup is taken of: `conn` on the file at `db_path`, keyed with `key`.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub conn: &'a Connection,
    pub db_path: &'a Path,
    pub schema: &'static Schema,
    pub key: Option<&'a Key>,
}

/// [`backup_connection`] of `source`, its folder's lock waited for as `waits` says (said to whom the caller
/// shows it, given up when asked to stop).
pub fn take_backup(
    source: &Source<'_>,
    backup_dir: &Path,
    class: BackupClass,
    keep: usize,
    waits: &Waits,
) -> Result<PathBuf> {
    let Source {
        conn,
        db_path,
        schema,
        key,
    } = *source;
    let dest_dir = match class {
        // The backups taken before migrations are never rotated (the way back from an upgrade): manual
        // backups among them would rotate them away, and be taken for them.
        BackupClass::Manual if is_pre_migration_dir(backup_dir) => {
            return Err(Error::InvalidInput {
                path: files::resolved(backup_dir),
                field: "backup folder",
                problem: "is where the backups taken before migrations are kept, never rotated: a manual backup \
                          there would rotate them away; give the folder it is in, or another"
                    .into(),
            });
        }
        BackupClass::Manual => backup_dir.to_path_buf(),
        BackupClass::PreMigration => pre_migration_dir(backup_dir),
    };
    // Taken by another user than the database's (root, say) into that user's folder: its backups, and a
    // folder created for them, would be closed to the user's own backups and restores.
    if files::owner_of(db_path).is_some_and(|owner| owner != files::this_user()) {
        files::check_same_owner(&[files::nearest_existing(&dest_dir)])?;
    }
    // The longest name the copy has, before the folder and its lock file are made.
    files::check_sqlite_path(&partial_path(&dest_dir, schema, Utc::now()))?;
    refuse_link_in_data_dir(&dest_dir, db_path)?;
    files::ensure_entries_can_move(&dest_dir)?;
    files::create_private_dir_all(&dest_dir)?;
    // Held from before the snapshot through the naming and the rotation: another backup into the folder
    // (a scheduled run overlapping a manual one) waits, so the later name always holds at least as much;
    // and a restore reading a backup of the folder is waited for, never rotated out from under it.
    let _folder = FolderLock::exclusive_with(backup_dir, waits)?;
    remove_stale_partials(&dest_dir, schema.stem());
    let partial = partial_path(&dest_dir, schema, Utc::now());
    drop(files::create_private_new(&partial)?);
    let (version, taken_at) = match copy_and_check(conn, db_path, schema, &partial, key) {
        Ok(v) => v,
        Err(e) => {
            let _ = files::remove_with_sidecars(&partial);
            return Err(e);
        }
    };
    files::sync_file(&partial)?;
    let target = BackupName {
        stem: schema.stem().to_string(),
        taken_at,
        version,
        seq: 0,
    }
    .unused_path_in(&dest_dir);
    let superseded = match class {
        BackupClass::PreMigration => note_pre_migration_copy(db_path, schema, version, &dest_dir, &target),
        BackupClass::Manual => Vec::new(),
    };
    files::rename_durably(&partial, &target)?;
    match class {
        BackupClass::Manual => prune_backups(&dest_dir, schema, keep, &target, key)?,
        // Best effort: copies left are still named for the next start.
        BackupClass::PreMigration => {
            let _ = remove_superseded_copies(db_path, version, &dest_dir, &superseded, &target);
        }
    }
    Ok(target)
}

/// Refuses a backup folder that is a link when it sits in the data directory of `db_path` (the default
/// `backups`, its `pre-migration`), and any link between the two (`backups` above `pre-migration`: an
/// upgrade's copy went through one): a link there was planted or made by mistake, and would send the user's
/// data wherever it points. A folder named elsewhere that is a link (`--to ~/Backups`, linked to an external
/// disk) is the user's layout and is followed, as the data directory's own path is, and as restores read
/// through it (it was refused, with a remedy to remove the user's link).
fn refuse_link_in_data_dir(folder: &Path, db_path: &Path) -> Result<()> {
    let data_dir = files::parent_dir(db_path);
    // However the two are spelled (the data directory through a link, the folder not).
    if files::resolved(files::parent_dir(folder)).starts_with(files::resolved(data_dir)) {
        files::refuse_symlink(folder)?;
    }
    let (data_dir, folder) = (files::absolute(data_dir), files::absolute(folder));
    let mut at = data_dir.clone();
    for part in folder.strip_prefix(&data_dir).into_iter().flat_map(Path::components) {
        at.push(part);
        files::refuse_symlink(&at)?;
    }
    Ok(())
}

/// Page-exact copy of `conn`'s main database into the existing empty file `dest`, in one step, so it
/// finishes however fast the owner writes. Returns a connection to the copy. Works from a read-only
/// connection: the copy holds one read transaction on the source for its duration, nothing longer. `key`
/// is the one `conn` was keyed with: the copy is keyed with it too, so its pages are written encrypted
/// (SQLCipher copies between two connections only when both are keyed alike).
pub fn snapshot_into(conn: &Connection, db_path: &Path, dest: &Path, key: Option<&Key>) -> Result<Connection> {
    let mut out = open_copy(dest, key)?;
    {
        let backup = Backup::new(conn, &mut out).at(dest)?;
        let mut waited = Duration::ZERO;
        loop {
            // Only the copy is written: a failed write is about where the copy goes (a full backup drive),
            // never about the database, which is only read.
            let step = backup.step(-1).map_err(|e| {
                let at = if failed_writing(&e) { dest } else { db_path };
                Error::from_sqlite(at, e)
            });
            match step? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if waited < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(20));
                    waited += Duration::from_millis(20);
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(Error::Busy {
                        path: db_path.to_path_buf(),
                        writers: None,
                    });
                }
                // `More` cannot follow step(-1); treat it as another round rather than trust it.
                _ => {}
            }
        }
    }
    Ok(out)
}

/// A connection to the copy being made at `dest` (this process's own file, never a link), keyed with `key`.
pub(crate) fn open_copy(dest: &Path, key: Option<&Key>) -> Result<Connection> {
    let out = Connection::open_with_flags(
        files::sqlite_path(dest),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .at(dest)?;
    crate::key::apply(&out, dest, key)?;
    Ok(out)
}

/// Whether a failed backup step failed writing (the disk full or refusing a write), not reading.
fn failed_writing(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|f| {
        f.code == rusqlite::ErrorCode::DiskFull
            || matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_IOERR_WRITE
                    | rusqlite::ffi::SQLITE_IOERR_FSYNC
                    | rusqlite::ffi::SQLITE_IOERR_TRUNCATE
            )
    })
}

/// Snapshot of `conn` into the empty file `dest`, checked, with a `backup` record, made a single
/// self-contained file. Returns the schema version of the copy and when it was taken: a time read once the
/// snapshot's read transaction had begun, so a backup named later never holds less than one named earlier.
fn copy_and_check(
    conn: &Connection,
    db_path: &Path,
    schema: &'static Schema,
    dest: &Path,
    key: Option<&Key>,
) -> Result<(u32, DateTime<Utc>)> {
    // The read transaction the copy is made in begins here (the backup API uses the one its source has
    // open), before the clock is read: a time read first would name the copy by a moment before its rows.
    let begun = conn.is_autocommit();
    if begun {
        conn.execute_batch("BEGIN DEFERRED")
            .and_then(|()| conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())))
            .map_err(|e| crate::key::explain(Error::from_sqlite(db_path, e).with_schema(schema), key))?;
    }
    let taken_at = Utc::now();
    // Under a key, a source page that fails its HMAC check stops the copy with a bare "SQL logic error"
    // (hazards: "Encryption at rest"): `explain` tells that damage from a failure of the copy.
    let out = snapshot_into(conn, db_path, dest, key);
    if begun {
        // Only read in: ending it cannot lose anything, and the source is not pinned through the check.
        let _ = conn.execute_batch("ROLLBACK");
    }
    let out = out.map_err(|e| crate::key::explain(e.with_schema(schema), key))?;
    // The check a restore verifies a backup with ([`crate::restore::verify_backup`]), not the cheaper
    // `quick_check`, which does not compare an index with its table: a backup that passed it and not the
    // restore's would be kept, and rotate out the last one that does restore.
    let problems = integrity_check_with_types_beside(&out, open_copy(dest, key)?).at(dest)?;
    if !problems.is_empty() {
        // The copy is page-exact: its damage is the source's.
        return Err(Error::Corrupt {
            path: db_path.to_path_buf(),
            detail: format!("integrity_check of a fresh backup found: {}", problems.join("; ")),
            schema: Some(schema),
        });
    }
    let version: u32 = out.pragma_value("user_version").at(dest)?;
    if Provenance::table_exists(&out).at(dest)? {
        let record = Provenance {
            at_ms: taken_at.timestamp_millis(),
            source_version: Some(i64::from(version)),
            ..Provenance::from_file(BACKUP_EVENT, db_path)
        };
        record.insert(&out).at(dest)?;
    }
    // A copy of a WAL database is itself marked WAL; make it a single self-contained file.
    out.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(())).at(dest)?;
    out.close().map_err(|(_, e)| Error::from_sqlite(dest, e))?;
    Ok((version, taken_at))
}

/// Keeps `just_taken` and the newest `keep - 1` (`keep` at least 1) of the older manual backups of the file
/// it is a backup of in `dir`, and removes the rest of those older ones. A newer backup is never removed:
/// another backup of the same file finished meanwhile (two scheduled runs overlapping), and its command
/// is about to say where it is. Only backups of the same file are removed (the same lineage; for a copy
/// that records none, the same source path): another data directory's backups in the same folder are left
/// alone, and so is anything named like a backup that is not one of this kind (see [`list_backups`]). A
/// backup its user marked immutable or append-only (`chattr +i`, to keep it for good) is kept and not counted:
/// its removal failed every later backup, after the new one was taken.
pub fn prune_backups(dir: &Path, schema: &Schema, keep: usize, just_taken: &Path, key: Option<&Key>) -> Result<()> {
    let listing = list_backups(dir, schema, BackupClass::Manual, key);
    // Newest first: those after the one just taken are older.
    let Some(at) = listing.backups.iter().position(|b| b.path == just_taken) else {
        return Ok(());
    };
    let taken = &listing.backups[at];
    let older = listing.backups[at + 1..]
        .iter()
        .filter(|b| b.same_file_as(taken) && files::write_refusing_attribute(&b.path).is_none());
    for old in older.skip(keep.max(1) - 1) {
        fs::remove_file(&old.path).map_err(|e| Error::io(&old.path, "remove an old backup", e))?;
    }
    Ok(())
}

/// The backup folders of the database at `db`: its own ([`default_backup_dir`]), then each of `elsewhere`
/// (where `backup --to` put them), each folder once however it is spelled, and none that is the
/// pre-migration folder of another (a folder's listing, [`all_backups`], holds its pre-migration backups:
/// a key rotation would re-key them twice, the second time failing).
pub fn backup_folders(db: &Path, elsewhere: &[PathBuf]) -> Vec<PathBuf> {
    let canonical = |dir: &Path| fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let all: Vec<PathBuf> = std::iter::once(default_backup_dir(db))
        .chain(elsewhere.iter().cloned())
        .collect();
    let pre_migration: Vec<PathBuf> = all.iter().map(|dir| canonical(&pre_migration_dir(dir))).collect();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut folders = Vec::new();
    for dir in all {
        let same = canonical(&dir);
        if !seen.contains(&same) && !pre_migration.contains(&same) {
            seen.push(same);
            folders.push(dir);
        }
    }
    folders
}

/// Where a file bound for `dir` as a backup of `schema` is written before it is complete: a hidden name
/// with this process's id, which `doctor` lists and the next backup into `dir` removes once that process
/// is gone (a kill leaves it behind).
pub fn partial_path(dir: &Path, schema: &Schema, at: DateTime<Utc>) -> PathBuf {
    dir.join(format!(
        ".{}-{}-{}.partial",
        schema.stem(),
        files::name_timestamp(at),
        std::process::id()
    ))
}

/// The process that writes (or wrote) the partial file named `name` ([`partial_path`]), if it is one.
pub fn partial_writer(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".partial")?;
    rest.rsplit('-').next()?.parse().ok()
}

/// Removes the partial files in `dir` of `stem`'s backups whose process is gone (a kill left them).
pub fn remove_stale_partials(dir: &Path, stem: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{stem}-");
    for e in entries.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if !name.starts_with(&prefix) {
            continue;
        }
        if partial_writer(&name).is_some_and(|pid| !crate::process::alive(pid)) {
            let _ = files::remove_with_sidecars(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BackupName, backup_folders, newest_first};
    use std::path::PathBuf;

    #[test]
    fn each_backup_folder_once_and_no_pre_migration_folder_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let (data, drive) = (dir.path().join("data"), dir.path().join("drive"));
        for folder in [data.join("backups/pre-migration"), drive.join("pre-migration")] {
            std::fs::create_dir_all(folder).unwrap();
        }
        let named: Vec<PathBuf> = vec![
            data.join("backups/pre-migration"),
            drive.join("pre-migration"),
            drive.clone(),
            data.join("./backups"),
            dir.path().join("data/../drive"),
        ];
        assert_eq!(
            backup_folders(&data.join("activity.db"), &named),
            [data.join("backups"), drive]
        );
    }

    #[test]
    fn two_backups_taken_in_the_same_millisecond_order_by_their_number() {
        let file = |seq| {
            let suffix = if seq == 0 { String::new() } else { format!("-{seq}") };
            crate::testing::listed_backup(&format!("events-20260922T102000.123Z-v3{suffix}.db"), None)
        };
        let mut files = [file(0), file(2), file(1)];
        files.sort_by(newest_first);
        assert_eq!(files.iter().map(|f| f.name.seq).collect::<Vec<_>>(), [2, 1, 0]);
    }

    #[test]
    fn backup_names_format_and_parse_back() {
        let taken_at = chrono::DateTime::from_timestamp_millis(1_790_000_000_123).unwrap();
        for seq in [0, 3] {
            let name = BackupName {
                stem: "my-events".into(),
                taken_at,
                version: 12,
                seq,
            };
            assert_eq!(BackupName::parse(&name.file_name()), Some(name));
        }
        assert_eq!(
            BackupName {
                stem: "events".into(),
                taken_at,
                version: 2,
                seq: 0
            }
            .file_name(),
            "events-20260921T141320.123Z-v2.db"
        );
        for not_a_backup in [
            "events.db",
            "events-2026-v2.db",
            "events-20260921T140320.123Z-v2.txt",
            "x-20260921T140320.123Z-vx.db",
        ] {
            assert_eq!(BackupName::parse(not_a_backup), None, "{not_a_backup}");
        }
    }
}
