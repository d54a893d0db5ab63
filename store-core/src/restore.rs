//! Putting a backup back, and quarantining a damaged file. Both require the database's [`OwnerLock`]: the
//! lock is the proof that no owner is running (hazards: "Backups and restore").
//!
//! Placement follows <https://sqlite.org/howtocorrupt.html>: the current file moves aside together with its
//! `-wal`/`-shm` (a database separated from its WAL loses committed rows, and a stale WAL beside a new file
//! would be replayed into it); the backup is copied to a temporary name in the same directory, fsynced,
//! renamed into place, and the directory fsynced. Nothing is ever deleted.
//!
//! A repair's salvage output is put in place the same way, through the same journal ([`replace_all`]): a
//! kill between moving the damaged file aside and renaming the output into place is undone like a
//! restore's, never left as a file gone from its path.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::check;
use crate::conn_ext::ConnExt;
use crate::error::{Error, Result, SqliteResultExt};
use crate::files;
use crate::key::Key;
use crate::migrate;
use crate::open_database::{OpenOptions, OwnerConnection};
use crate::owner_lock::OwnerLock;
use crate::provenance::{IdRange, Provenance, lineage_of};
use crate::renumber::{self, CaughtUp, IdMoves};
use crate::schema::Schema;

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    pub database: &'static str,
    #[serde(with = "crate::files::lossy_path")]
    pub path: PathBuf,
    #[serde(with = "crate::files::lossy_path")]
    pub restored_from: PathBuf,
    /// Where the file that was in place went (None if there was none).
    #[serde(with = "crate::files::lossy_path::option")]
    pub moved_aside: Option<PathBuf>,
    /// Schema version of the file put in place: the backup's, never migrated by the restore (an older one
    /// is migrated by its owner's next start of this build; the build that wrote it reads it as it is).
    pub version: u32,
    /// Rows the file it replaced had added after the backup was taken and still held (see
    /// [`rows_added_since`]; those it had deleted since are not counted): not in the restored file, still in
    /// `moved_aside`. Empty when nothing was replaced, or nothing can be told, or the file replaced was
    /// another one.
    pub added_since_backup: RowsAdded,
    /// The file it replaced was not the one the backup was taken from (their lineages differ: a new
    /// install's file, say, replaced by the old one's backup); it is kept at `moved_aside`.
    pub replaced_another_file: bool,
    /// The file it replaced could not be opened with the key given (under another key, or no database at
    /// all): what it held past the backup could not be counted (`added_since_backup` is empty for that
    /// reason, not because it added nothing); it is kept at `moved_aside`.
    pub replaced_unread: bool,
    /// Newer backups of the file that a restore from their folder passed over because they are damaged (it
    /// restores the newest that verifies). Left as they are.
    #[serde(with = "crate::files::lossy_path::vec")]
    pub passed_over_damaged: Vec<PathBuf>,
    /// Ids a repair moved after the backup was taken ([`crate::renumber`]), which the restored file held
    /// and now names by their new ids, as the other files do ([`renumber::catch_up`]).
    pub ids_moved: Vec<CaughtUp>,
}

/// Rows added per table, at most (AUTOINCREMENT ids handed out), by table name; shown as
/// "at most 500 in activity_events, 5 in activity_sessions".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowsAdded(pub Vec<(String, u64)>);

impl RowsAdded {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for RowsAdded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let each: Vec<String> = self.0.iter().map(|(table, n)| format!("{n} in {table}")).collect();
        write!(f, "at most {}", each.join(", "))
    }
}

/// What a damaged file added after its backup was taken, as far as can be told: a repair that would restore
/// the backup asks first ([`Error::BackupOlder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddedSince {
    /// Counted by its AUTOINCREMENT counters ([`rows_added_since`]).
    Counted(RowsAdded),
    /// Its counters cannot be read, and it was written after the backup was taken
    /// ([`written_since_uncounted`]).
    Uncounted { last_written: DateTime<Utc> },
}

/// One count per table, summed over its ranges (a table whose ids have gaps has one range per run).
impl From<&[IdRange]> for RowsAdded {
    fn from(ids: &[IdRange]) -> RowsAdded {
        let mut counts: Vec<(String, u64)> = Vec::new();
        for range in ids {
            let n = (range.last - range.first + 1) as u64;
            match counts.iter_mut().find(|(table, _)| *table == range.table) {
                Some((_, count)) => *count += n,
                None => counts.push((range.table.clone(), n)),
            }
        }
        RowsAdded(counts)
    }
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

/// A read-only connection, keyed with `key`, to `path`, a file named to be read as `expected` (a backup): only
/// a regular file (opening a FIFO would wait for a writer forever, with both owner locks held), and never an
/// empty one, which is refused as [`Error::WrongDatabase`] before SQLite opens it: there is nothing to read,
/// and SQLite would delete a `-wal` beside it ([`files::nonempty_regular`]).
pub fn open_backup_file(path: &Path, expected: &'static str, key: Option<&Key>) -> Result<Connection> {
    files::require_regular_file(path, "read the backup")?;
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(Error::WrongDatabase {
            path: path.to_path_buf(),
            expected,
            found: "it is empty (0 bytes)".into(),
        });
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .at(path)?;
    crate::key::apply(&conn, path, key)?;
    Ok(conn)
}

/// How a restore or repair says the newer backups it passed over as damaged
/// ([`RestoreReport::passed_over_damaged`]): `None` when there were none.
pub fn passed_over_said(passed_over: &[PathBuf]) -> Option<String> {
    (!passed_over.is_empty()).then(|| {
        let paths: Vec<String> = passed_over.iter().map(|p| p.display().to_string()).collect();
        format!("passed over as damaged, the newer {} (left as it is)", paths.join(", "))
    })
}

/// Checks that `backup` is a sound copy of this kind of database that this build can open:
/// `integrity_check` clean and no value of another type than its column ([`check::type_check`]), the right
/// `application_id`, a schema version in 1..=this build's. An encrypted
/// database's backup is read with its `key`; one taken under another key is [`Error::KeyRejected`].
/// Errors name the backup file.
pub fn verify_backup(backup: &Path, schema: &'static Schema, key: Option<&Key>) -> Result<VerifiedBackup> {
    let conn = open_backup_file(backup, schema.file_name, key).map_err(|e| e.with_schema(schema))?;
    let state = migrate::read_state(&conn, backup, schema).map_err(|e| crate::key::explain(e, key))?;
    if state.is_blank() {
        return Err(Error::WrongDatabase {
            path: backup.to_path_buf(),
            expected: schema.file_name,
            found: "it is an empty database, not a backup".into(),
        });
    }
    // A backup rebuilt without its header ids is no copy this application took: refused as another file is
    // (the remedy of `header_ids_lost`, a repair of the data directory, is not one for a backup).
    migrate::check_identity(&conn, backup, schema, &state).map_err(|e| match e {
        Error::HeaderIdsLost { version, .. } => Error::WrongDatabase {
            path: backup.to_path_buf(),
            expected: schema.file_name,
            found: format!(
                "it holds {} at schema {version} rebuilt without its header's application_id and user_version \
                 (by `sqlite3 .dump`, say): not a backup this application took",
                schema.file_name
            ),
        },
        e => e,
    })?;
    if state.user_version > schema.end_version() {
        return Err(Error::SchemaNewer {
            path: backup.to_path_buf(),
            found: state.user_version,
            supported: schema.end_version(),
            schema,
        });
    }
    let beside = open_backup_file(backup, schema.file_name, key).map_err(|e| e.with_schema(schema))?;
    let problems = check::integrity_check_with_types_beside(&conn, beside)
        .map_err(|e| crate::key::error_at(backup, key, e).with_schema(schema))?;
    let problems = crate::key::explain_check(backup, key, problems);
    if !problems.is_empty() {
        return Err(Error::Corrupt {
            path: backup.to_path_buf(),
            detail: format!("integrity_check found: {}", problems.join("; ")),
            schema: Some(schema),
        });
    }
    let version: u32 = conn.pragma_value("user_version").at_db(backup, schema)?;
    Ok(VerifiedBackup {
        path: backup.to_path_buf(),
        version,
    })
}

/// One database to restore: its kind, its owner lock (the proof nobody writes it), the verified backup to
/// put in place, the lowest AUTOINCREMENT counters it must end with (ids other files already refer to:
/// `(table, highest id referenced)`), and the moves of ids the data directory's files record
/// ([`renumber::recorded_runs`]: the file it replaces and the others), which the backup's copy is brought up
/// to before it is placed ([`renumber::catch_up`]).
#[derive(Debug)]
pub struct Placement {
    pub schema: &'static Schema,
    pub lock: OwnerLock,
    pub backup: VerifiedBackup,
    pub id_floors: Vec<(String, i64)>,
    pub moves_recorded: Vec<IdMoves>,
}

/// Called at each step of [`restore_all`] with the step's name; an `Err` fails the restore there (drills
/// inject failures and kills with it).
pub type RestoreHook = std::sync::Arc<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

/// The journal of a restore in progress, in the data directory's private folder.
pub const JOURNAL_FILE_NAME: &str = "restore.journal";

/// What a restore in progress wrote down before moving anything, so that an interrupted one is undone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Journal {
    entries: Vec<JournalEntry>,
}

/// Its paths are all in the data directory, and read back as their file names there ([`undo_interrupted`]):
/// still right if the directory was moved since. They are written whole where they are UTF-8, as builds
/// before this one read them (one of those, started after a restore of this build was killed, undoes it
/// too, where a bare name sent it to look in its working directory and drop the journal); else as the file
/// name (a database's name and ASCII suffixes: serde refuses a path that is not UTF-8, and an empty journal
/// could not undo anything).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct JournalEntry {
    #[serde(serialize_with = "whole_or_file_name")]
    db: PathBuf,
    /// The backup's copy, before it is renamed into place.
    #[serde(serialize_with = "whole_or_file_name")]
    restoring: PathBuf,
    /// Where the file in place moves to.
    #[serde(serialize_with = "whole_or_file_name")]
    aside: PathBuf,
    /// Whether there was a file in place (a restore into an empty data directory has none).
    had_original: bool,
}

fn whole_or_file_name<S: serde::Serializer>(path: &Path, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    match path.to_str().or_else(|| path.file_name().and_then(|n| n.to_str())) {
        Some(text) => serializer.serialize_str(text),
        None => Err(serde::ser::Error::custom(format!(
            "{} has no UTF-8 file name",
            path.display()
        ))),
    }
}

impl Journal {
    /// The entries' paths in `data_dir`: each one's file name there (a journal names only files of its data
    /// directory, wherever that was when it was written).
    fn in_dir(mut self, data_dir: &Path) -> Journal {
        for e in &mut self.entries {
            for path in [&mut e.db, &mut e.restoring, &mut e.aside] {
                if let Some(name) = path.file_name() {
                    *path = data_dir.join(name);
                }
            }
        }
        self
    }
}

fn journal_path(data_dir: &Path) -> PathBuf {
    crate::private_dir::private_dir(data_dir).join(JOURNAL_FILE_NAME)
}

/// Whether `path` is a file (or a sidecar of one) that the journal of a restore interrupted in its folder
/// names: the file it moved aside (the user's, which its undo puts back) or its copy of the backup. Never a
/// leftover to remove then, whatever its name says.
pub(crate) fn named_by_interrupted(path: &Path) -> bool {
    let Some(journal) = interrupted_journal(files::parent_dir(path)) else {
        return false;
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = files::sidecar_base(name);
    journal.entries.iter().any(|e| {
        [&e.aside, &e.restoring]
            .iter()
            .any(|named| named.file_name().and_then(|n| n.to_str()) == Some(base))
    })
}

/// Whether the journal of a restore (or repair, or key rotation) interrupted in its folder moves the
/// database at `path` aside, and the file is there, aside: the undo puts it back, so its absence at `path`
/// is no removal.
pub(crate) fn moved_aside_by_interrupted(path: &Path) -> bool {
    let Some(journal) = interrupted_journal(files::parent_dir(path)) else {
        return false;
    };
    journal
        .entries
        .iter()
        .any(|e| e.db.file_name() == path.file_name() && e.had_original && std::fs::symlink_metadata(&e.aside).is_ok())
}

/// Whether a restore was interrupted in `data_dir` (its journal is there): the next owner's open undoes it.
pub fn interrupted(data_dir: &Path) -> bool {
    std::fs::symlink_metadata(journal_path(data_dir)).is_ok()
}

/// The journal of a restore interrupted (or running) in `data_dir`, its paths in that folder; `None` when
/// there is none or it cannot be read.
fn interrupted_journal(data_dir: &Path) -> Option<Journal> {
    read_journal(data_dir).ok().flatten()
}

/// The journal in `data_dir`, its paths in that folder: `None` when there is none,
/// [`Error::RestoreJournalUnreadable`] when it does not parse.
fn read_journal(data_dir: &Path) -> Result<Option<Journal>> {
    let path = journal_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, "read", e)),
    };
    match serde_json::from_str::<Journal>(&text) {
        Ok(journal) => Ok(Some(journal.in_dir(data_dir))),
        Err(e) => Err(Error::RestoreJournalUnreadable {
            path,
            detail: e.to_string(),
        }),
    }
}

/// [`Error::RestoreJournalUnreadable`] when the data directory's journal cannot be read (for doctor: every
/// owner's open fails with it until it is dealt with).
pub fn unreadable_journal(data_dir: &Path) -> Option<Error> {
    read_journal(data_dir)
        .err()
        .filter(|e| e.kind() == crate::ErrorKind::RestoreJournalUnreadable)
}

/// [`Error::RestoreUnfinished`] when a restore, repair or key rotation of the data directory of `path` that
/// replaces it has not finished (running, or interrupted): for code that reads the file without its lock
/// (readers, backups), which would otherwise take a copy half put in place for the user's data, report it,
/// or back it up and rotate a sound backup out for it. Owners undo an interrupted one at their open instead
/// ([`undo_interrupted`]). Costs one failed `open` when there is no journal.
pub fn refuse_unfinished(path: &Path, schema: &'static Schema) -> Result<()> {
    // Only the databases it replaces: a repair of activity.db alone leaves config.db the user's. A journal
    // that cannot be parsed may name any of them: its own error, which says what to do.
    let dir = files::parent_dir(path);
    let names_it = match read_journal(dir) {
        Ok(None) => false,
        Ok(Some(journal)) => journal.entries.iter().any(|e| e.db.file_name() == path.file_name()),
        Err(e) if e.kind() == crate::ErrorKind::RestoreJournalUnreadable => return Err(e),
        // Not to be read by this user (a private folder it may not search): there, if it is there at all.
        Err(_) => interrupted(dir),
    };
    if !names_it {
        return Ok(());
    }
    let holder = match OwnerLock::probe(path) {
        Ok(crate::owner_lock::LockState::Held { holder }) => holder,
        _ => None,
    };
    Err(Error::RestoreUnfinished {
        path: path.to_path_buf(),
        holder,
        schema,
    })
}

/// Replaces every database of `placements` with its verified backup, all or nothing ([`replace_all`] of
/// backups): each backup is copied beside its database first; a journal naming every move is written; then
/// each current file moves aside (with its `-wal`/`-shm`, never deleted) and its copy is renamed into place;
/// the journal is removed (the commit point). A failure before that puts every file back as it was; a kill before that is undone by the
/// next owner's open ([`undo_interrupted`]). Each copy carries, before its journal is written, its
/// AUTOINCREMENT counters raised to at least the replaced file's and the given floors (no id is ever handed
/// out twice) and a `restore` provenance row naming the ids it leaves out: a kill after the commit leaves
/// them right. Then each is opened as the owner (at the backup's schema version: an older one is migrated by
/// the owner's next start). Each is opened with `key` (an encrypted database's backups are encrypted with
/// its key). Returns the locks, still held.
pub fn restore_all(
    placements: Vec<Placement>,
    aside_tag: &str,
    hook: Option<&RestoreHook>,
    key: Option<&Key>,
) -> Result<(Vec<RestoreReport>, Vec<OwnerLock>)> {
    place_all(placements, aside_tag, hook, key, RESTORE_EVENT)
}

/// The provenance event a restore records in the file it puts in place.
pub const RESTORE_EVENT: &str = "restore";

/// [`restore_all`], recording `event` (what put the files in place: a restore, a key rotation) in each.
pub fn place_all(
    placements: Vec<Placement>,
    aside_tag: &str,
    hook: Option<&RestoreHook>,
    key: Option<&Key>,
    event: &str,
) -> Result<(Vec<RestoreReport>, Vec<OwnerLock>)> {
    let replacements = placements.into_iter().map(Replacement::Backup).collect();
    let (placed, locks) = replace_all(replacements, aside_tag, hook, key, event)?;
    let reports = placed
        .into_iter()
        .filter_map(|p| match p {
            Placed::Restored(report) => Some(report),
            Placed::Salvaged { .. } | Placed::StartedEmpty { .. } => None,
        })
        .collect();
    Ok((reports, locks))
}

/// What [`replace_all`] puts in place of one database.
#[derive(Debug)]
pub enum Replacement {
    /// A verified backup: copied beside the database (`<name>.restoring`) first, placed at its own schema
    /// version, a `restore` (or the caller's) provenance row recorded.
    Backup(Placement),
    /// A salvage built and verified beside the database ([`salvage::temp_path`](crate::salvage::temp_path)):
    /// renamed into place as it is, a `salvage` provenance row recorded.
    Salvage(crate::salvage::BuiltSalvage),
    /// A new empty file of the database's schema at this build's version (a repair asked to start it empty):
    /// created beside it (`<name>.restoring`), a `repair-empty` provenance row recorded.
    Empty(EmptyStart),
}

/// A database to start empty in place of the one guarded by `lock`, its AUTOINCREMENT counters ending at
/// least at `id_floors` (ids other files refer to) and the replaced file's.
#[derive(Debug)]
pub struct EmptyStart {
    pub schema: &'static Schema,
    pub lock: OwnerLock,
    pub id_floors: Vec<(String, i64)>,
}

/// The provenance event of a database started empty by a repair.
pub const REPAIR_EMPTY_EVENT: &str = "repair-empty";

impl Replacement {
    fn lock(&self) -> &OwnerLock {
        match self {
            Replacement::Backup(p) => &p.lock,
            Replacement::Salvage(s) => &s.lock,
            Replacement::Empty(s) => &s.lock,
        }
    }
}

/// What [`replace_all`] put in place of one database.
#[derive(Debug)]
pub enum Placed {
    Restored(RestoreReport),
    /// `quarantined`: where the damaged file went (`<name>.<aside_tag>-<time>`); `report` names it as
    /// [`SalvageReport::from`](crate::salvage::SalvageReport::from) and the database's path as its `out`.
    Salvaged {
        quarantined: Option<PathBuf>,
        report: crate::salvage::SalvageReport,
    },
    /// `quarantined`: where the file it replaced went.
    StartedEmpty {
        database: &'static str,
        quarantined: Option<PathBuf>,
    },
}

/// Puts each replacement in place of its database, all or nothing, through one journal: what a restore of
/// backups ([`restore_all`]) and a repair's salvages share, so a salvage killed between moving the damaged
/// file aside and renaming its output into place is undone like a restore (the damaged file back with its
/// `-wal`, the output removed) and the repair can run again. Each backup is copied beside its database
/// first (a salvage's output is already there); a journal naming every move is written; each current file
/// moves aside as `<name>.<aside_tag>-<time>` (with its `-wal`/`-shm`, never deleted) and its replacement is
/// renamed into place; the journal is removed (the commit point). A failure before that puts every file back
/// as it was (and removes the copies and the salvage outputs); a kill before that is undone by the next
/// owner's open ([`undo_interrupted`]). Each replacement's AUTOINCREMENT counters are raised and a provenance
/// row written into it before the journal (`event` for a backup, see [`restore_all`]; `salvage` for a
/// salvage, see [`crate::salvage`]), so a kill after the commit leaves every placed file as complete as a
/// finished run; then each is opened as the owner, and a failure of those opens is
/// [`Error::AfterPlacing`] (the files stand: a second run would place the same again). Each is opened with
/// `key`. Returns what was placed, in order, and the locks, still held.
pub fn replace_all(
    mut replacements: Vec<Replacement>,
    aside_tag: &str,
    hook: Option<&RestoreHook>,
    key: Option<&Key>,
    event: &str,
) -> Result<(Vec<Placed>, Vec<OwnerLock>)> {
    let Some(first) = replacements.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let data_dir = files::parent_dir(first.lock().db_path()).to_path_buf();
    files::ensure_entries_can_move(&data_dir)?;
    let step = |name: &str| -> Result<()> {
        match hook.map(|h| h(name)) {
            Some(Err(why)) => Err(Error::Io {
                path: data_dir.clone(),
                action: "restore (injected failure)",
                source: std::io::Error::other(format!("{name}: {why}")),
            }),
            _ => Ok(()),
        }
    };
    let journal = Journal {
        entries: replacements
            .iter()
            .map(|r| {
                let db = r.lock().db_path().to_path_buf();
                JournalEntry {
                    restoring: match r {
                        Replacement::Backup(_) | Replacement::Empty(_) => files::with_suffix(&db, ".restoring"),
                        Replacement::Salvage(s) => s.built.clone(),
                    },
                    aside: files::aside_path(&db, aside_tag),
                    had_original: files::exists_with_sidecars(&db),
                    db,
                }
            })
            .collect(),
    };
    // 1. Copies beside each database (a leftover of a killed restore is ours, never the user's data), and the
    // journal; a failure removes the copies again (a private folder this user may not write, say), and the
    // salvage outputs. A file about to be replaced by one under another key (or none) has its key recorded
    // as unknown first: until the new file's first open records its key, a failing open is a key problem,
    // never damage (whichever file a kill leaves there).
    let prepared = (|| -> Result<Vec<Replaced>> {
        for (r, e) in replacements.iter().zip(&journal.entries) {
            match r {
                Replacement::Backup(p) => {
                    files::remove_with_sidecars(&e.restoring)?;
                    copy_private(p.backup.path(), &e.restoring)?;
                    // A backup read with the `-wal` beside it (a copy taken with its `-wal`, one sqlite3 wrote
                    // to since) was verified with the commits in it: they go with the copy, whose close
                    // (`write_before_placing`) checkpoints them into it.
                    let wal = files::with_suffix(p.backup.path(), "-wal");
                    if files::nonempty_regular(&wal) {
                        copy_private(&wal, &files::with_suffix(&e.restoring, "-wal"))?;
                    }
                    step(&format!("copied {}", p.schema.file_name))?;
                }
                // Created by its stamp below (a leftover of a killed repair is ours).
                Replacement::Empty(_) => files::remove_with_sidecars(&e.restoring)?,
                Replacement::Salvage(s) => {
                    files::ensure_regular(&s.built)?;
                    if files::parent_dir(&s.built) != files::parent_dir(&e.db) {
                        return Err(Error::io(
                            &s.built,
                            "put in place",
                            std::io::Error::other("a salvage output is built beside its database"),
                        ));
                    }
                }
            }
        }
        // What each replacement must carry from the moment it stands (its counters raised, where it came
        // from), written into it here: a kill after the commit, before the files are opened below, leaves
        // them right.
        let replaced = replacements
            .iter_mut()
            .zip(&journal.entries)
            .map(|(r, e)| match r {
                Replacement::Backup(p) => stamp_backup(p, e, key, event),
                Replacement::Empty(s) => stamp_empty(s, e, key).map(|()| Replaced::default()),
                // A salvage reads the file it replaces itself.
                Replacement::Salvage(s) => {
                    crate::salvage::stamp(s, &e.db, e.had_original.then_some(e.aside.as_path()), key)
                        .map(|()| Replaced::default())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        crate::private_dir::ensure(&data_dir)?;
        for e in &journal.entries {
            if crate::records::encryption(&e.db) != Some(crate::records::encryption_of(key)) {
                crate::records::note_key_unknown(&e.db)?;
            }
        }
        files::write_json_atomically(&journal_path(&data_dir), &journal, "write the restore journal")?;
        Ok(replaced)
    })();
    let replaced = match prepared {
        Ok(replaced) => replaced,
        Err(e) => {
            for entry in &journal.entries {
                let _ = files::remove_with_sidecars(&entry.restoring);
            }
            return Err(e);
        }
    };
    // 2. The moves; any failure puts everything back.
    let moved = (|| -> Result<()> {
        step("journal written")?;
        for e in &journal.entries {
            if e.had_original {
                // The sidecars first, then the file: a stop between the two leaves the user's file in place
                // with its `-wal` aside, which `undo` moves back (never taking the file for the copy).
                files::move_sidecars(&e.db, &e.aside)?;
                step(&format!("moved aside the sidecars of {}", e.db.display()))?;
                files::move_with_sidecars(&e.db, &e.aside)?;
            }
            step(&format!("moved aside {}", e.db.display()))?;
            files::rename_durably(&e.restoring, &e.db)?;
            step(&format!("placed {}", e.db.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = moved {
        // Best effort, then the journal stays if the undo failed: the next owner's open finishes it.
        if undo(&journal).is_ok() {
            let _ = std::fs::remove_file(journal_path(&data_dir));
        }
        return Err(e);
    }
    std::fs::remove_file(journal_path(&data_dir)).map_err(|e| Error::io(&journal_path(&data_dir), "remove", e))?;
    files::sync_dir(&crate::private_dir::private_dir(&data_dir))?;
    step("committed")?;
    // From here the new files stand: a failure says so (`Error::AfterPlacing`), as a second run would place
    // the same again.
    let placed_paths: Vec<PathBuf> = journal.entries.iter().map(|e| e.db.clone()).collect();
    let opened = (|| -> Result<(Vec<Placed>, Vec<OwnerLock>)> {
        // The damage met in the files that were there went aside with them.
        for e in &journal.entries {
            crate::records::clear_damage(&e.db)?;
        }

        // 3. Open each as its owner.
        let mut placed = Vec::new();
        let mut locks = Vec::new();
        for ((r, e), facts) in replacements.into_iter().zip(journal.entries).zip(replaced) {
            let moved_aside = e.had_original.then(|| e.aside.clone());
            let (done, lock) = match r {
                Replacement::Backup(p) => {
                    let (report, lock) = finish_restore(p, e.db, moved_aside, facts, key)?;
                    (Placed::Restored(report), lock)
                }
                Replacement::Empty(s) => {
                    let options = OpenOptions {
                        key: key.cloned(),
                        ..OpenOptions::default()
                    };
                    let owner = OwnerConnection::open_locked(s.lock, s.schema, &options)?;
                    (
                        Placed::StartedEmpty {
                            database: s.schema.file_name,
                            quarantined: moved_aside,
                        },
                        owner.into_lock(),
                    )
                }
                Replacement::Salvage(s) => {
                    let (report, lock) = crate::salvage::finish_placed(s, key)?;
                    (
                        Placed::Salvaged {
                            quarantined: moved_aside,
                            report,
                        },
                        lock,
                    )
                }
            };
            placed.push(done);
            locks.push(lock);
        }
        Ok((placed, locks))
    })();
    opened.map_err(|source| Error::AfterPlacing {
        placed: placed_paths,
        source: Box::new(source),
    })
}

/// What a restore read of the file it replaces, before moving it aside: for its report.
#[derive(Default)]
struct Replaced {
    left_out: Vec<IdRange>,
    another_file: bool,
    unread: bool,
    ids_moved: Vec<CaughtUp>,
}

/// Reads the file the backup of `p` replaces (still at `e.db`, if there is one) and writes into the backup's
/// copy (`e.restoring`, not placed yet) its counters raised past that file's and the floors, and `event`
/// with the ids the restore leaves out.
fn stamp_backup(p: &Placement, e: &JournalEntry, key: Option<&Key>, event: &str) -> Result<Replaced> {
    let mut replaced = Replaced::default();
    // First, on its own: the counters the copy is compared by below are those of the ids it then holds (a
    // table's rows moved down from the far ids count as rows the backup has).
    if !p.moves_recorded.is_empty() {
        write_before_placing(&e.restoring, p.schema, Some(p.backup.version), key, |tx| {
            replaced.ids_moved = renumber::catch_up(tx, p.schema, &p.moves_recorded)?;
            Ok(())
        })?;
    }
    let copy = if replaced.ids_moved.is_empty() {
        p.backup.path()
    } else {
        e.restoring.as_path()
    };
    let counters = counters_of(&e.db, key);
    let mut floors = p.id_floors.clone();
    floors.extend(handed_out_by(&e.db, &counters, key));
    // The file replaced may be from before a repair gave its tables smaller ids (copied back by hand), its
    // counters and rows still at the old ids: the moves of those tables are recorded in the backup when it
    // was taken after the repair (the file replaced does not record them).
    let mut moves = p.moves_recorded.clone();
    let own = crate::read_pool::open_if_readable(copy, key).and_then(|conn| renumber::recorded_runs(&conn).ok());
    moves.extend(own.unwrap_or_default());
    let floors = renumber::floors_after_moves(p.schema.file_name, floors, &moves);
    // What the replaced file recorded of ids it lacked past the backup's counters: the restored file
    // lacks them too.
    let mut carried = (Vec::new(), Vec::new());
    if e.had_original {
        replaced.unread = files::nonempty_regular(&e.db) && !crate::read_pool::reads_with(&e.db, key);
        // Counters compared across two different files say nothing about rows added since the backup.
        replaced.another_file = matches!(
            (lineage_of(&e.db, key), lineage_of(p.backup.path(), key)),
            (Some(a), Some(b)) if a != b
        );
        if !replaced.another_file {
            // The ids it handed out after the backup was taken, those it still held: a restore leaves
            // them out (`Provenance::with_missing_ids`).
            let backup_counters = counters_of(copy, key);
            let handed_out = ids_between(&backup_counters, &counters);
            replaced.left_out = ids_still_in(&e.db, handed_out, key);
            carried = crate::provenance::missing_ranges_past(&e.db, key, &backup_counters);
        }
    }
    let left_out: Vec<IdRange> = replaced.left_out.iter().cloned().chain(carried.0).collect();
    let mut record = Provenance::from_file(event, p.backup.path()).with_missing_ids(&left_out, &carried.1);
    record.source_version = Some(i64::from(p.backup.version));
    // At the backup's own version, never migrated here: restoring a pre-migration backup is how a user goes
    // back to the build that wrote it, which refuses a file this build migrated (`schema_newer`). An older
    // backup is migrated by its owner's next start of this build, with the usual check and backup.
    write_before_placing(&e.restoring, p.schema, Some(p.backup.version), key, |tx| {
        raise_counters(tx, &floors)?;
        record.insert(tx)
    })?;
    Ok(replaced)
}

/// Every id the file at `db` (the one a placement replaces, if there is one) handed out, as far as anything
/// shows, as floors for [`raise_counters`]: its `counters` (read by the caller), the highest id each table
/// still shows ([`highest_ids_of`]: its `sqlite_sequence` page may be the damaged one), and the record beside
/// it ([`crate::records::counters_handed_out`]: what a file removed since leaves, up to its owner's last
/// clean stop).
fn handed_out_by(db: &Path, counters: &[(String, i64)], key: Option<&Key>) -> Vec<(String, i64)> {
    let mut floors = counters.to_vec();
    floors.extend(highest_ids_of(db, key));
    floors.extend(crate::records::counters_handed_out(db));
    floors
}

/// Creates the empty file of `s` (at `e.restoring`, not placed yet) with its counters raised past the file it
/// replaces (still at `e.db`, if there is one) and the floors, and a `repair-empty` row naming where that file
/// goes.
fn stamp_empty(s: &EmptyStart, e: &JournalEntry, key: Option<&Key>) -> Result<()> {
    let mut floors = s.id_floors.clone();
    floors.extend(handed_out_by(&e.db, &counters_of(&e.db, key), key));
    let mut record = Provenance::now(REPAIR_EMPTY_EVENT);
    if e.had_original {
        record.detail = Some(format!("damaged file quarantined at {}", e.aside.display()));
    }
    write_before_placing(&e.restoring, s.schema, None, key, |tx| {
        raise_counters(tx, &floors)?;
        record.insert(tx)
    })
}

/// Writes `f` in one transaction into the temporary file at `path` (a backup's copy or a salvage's output,
/// not placed yet), opened as its owner at `version` (this build's if `None`), then closes it (its `-wal`
/// checkpointed into it and removed: only the file is renamed into place) and fsyncs it.
pub(crate) fn write_before_placing(
    path: &Path,
    schema: &'static Schema,
    version: Option<u32>,
    key: Option<&Key>,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
) -> Result<()> {
    let options = OpenOptions {
        key: key.cloned(),
        target_version: version,
        temporary_file: true,
        ..OpenOptions::default()
    };
    let written = OwnerLock::acquire(path)
        .and_then(|lock| OwnerConnection::open_locked(lock, schema, &options))
        .and_then(|mut owner| owner.write(f));
    OwnerLock::remove_temporary(path)?;
    written?;
    let wal = files::with_suffix(path, "-wal");
    if std::fs::symlink_metadata(&wal).is_ok() {
        return Err(Error::io(
            &wal,
            "checkpoint",
            io::Error::other("still there after its connection closed: its commits are not in the file yet"),
        ));
    }
    files::sync_file(path)
}

/// The backup of `p` stands at `db`, the file it replaced at `moved_aside`: opened as its owner at the
/// backup's version (it carries its counters and provenance: [`stamp_backup`]).
fn finish_restore(
    p: Placement,
    db: PathBuf,
    moved_aside: Option<PathBuf>,
    replaced: Replaced,
    key: Option<&Key>,
) -> Result<(RestoreReport, OwnerLock)> {
    let options = OpenOptions {
        key: key.cloned(),
        target_version: Some(p.backup.version),
        ..OpenOptions::default()
    };
    let owner = OwnerConnection::open_locked(p.lock, p.schema, &options)?;
    let version = owner.schema_version()?;
    let report = RestoreReport {
        database: p.schema.file_name,
        path: db,
        restored_from: p.backup.path().to_path_buf(),
        moved_aside,
        version,
        added_since_backup: RowsAdded::from(&replaced.left_out[..]),
        replaced_another_file: replaced.another_file,
        replaced_unread: replaced.unread,
        passed_over_damaged: Vec::new(),
        ids_moved: replaced.ids_moved,
    };
    Ok((report, owner.into_lock()))
}

/// Replaces the database guarded by `lock` with the verified `backup`: [`restore_all`] of one.
pub fn restore_from(
    lock: OwnerLock,
    schema: &'static Schema,
    backup: &VerifiedBackup,
    aside_tag: &str,
    key: Option<&Key>,
) -> Result<(RestoreReport, OwnerLock)> {
    let placement = Placement {
        schema,
        lock,
        backup: backup.clone(),
        id_floors: Vec::new(),
        moves_recorded: Vec::new(),
    };
    let (mut reports, mut locks) = restore_all(vec![placement], aside_tag, None, key)?;
    let report = reports.pop().expect("restore_all reports every placement");
    let lock = locks.pop().expect("restore_all returns every lock");
    Ok((report, lock))
}

/// Puts every file of an interrupted restore back as it was: the copy in place (if placed) removed, the
/// file moved aside renamed back, the temporary copy removed. Each step leaves what the next run of it
/// (after a kill here) reads right: the file at `db` is removed only while the file itself is aside (so it
/// is the copy), and the file goes back before its sidecars (so a kill between never leaves the user's
/// `-wal` at `db` with the file still aside, where the next run would remove it as the copy's).
fn undo(journal: &Journal) -> Result<()> {
    for e in &journal.entries {
        // A file moves aside its sidecars first ([`place_all`]): stopped between the two, its `-wal` and
        // `-shm` are aside and the file itself is still at `db`, the user's, never removed.
        let file_aside = std::fs::symlink_metadata(&e.aside).is_ok();
        if file_aside || !e.had_original {
            // What is at `db` now is the backup's copy (or nothing): ours to remove.
            files::remove_with_sidecars(&e.db)?;
        }
        if file_aside {
            std::fs::rename(&e.aside, &e.db).map_err(|err| Error::io(&e.aside, "move back", err))?;
        }
        files::move_with_sidecars(&e.aside, &e.db)?;
        files::remove_with_sidecars(&e.restoring)?;
    }
    Ok(())
}

/// If a restore was interrupted in `data_dir` (killed between its journal and its commit), takes the owner
/// locks of every file it names and puts them back as they were. Every owner's open calls this first.
/// `Locked` if another process holds one of them (it is doing the same; retry).
pub fn undo_interrupted(data_dir: &Path) -> Result<bool> {
    let path = journal_path(data_dir);
    let Some(journal) = read_journal(data_dir)? else {
        return Ok(false);
    };
    let _locks: Vec<OwnerLock> = journal
        .entries
        .iter()
        .map(|e| OwnerLock::acquire(&e.db))
        .collect::<Result<_>>()?;
    undo(&journal)?;
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, "remove", e))?;
    files::sync_dir(files::parent_dir(&path))?;
    Ok(true)
}

/// The AUTOINCREMENT counters of a file (one moved aside, say), as floors for [`raise_counters`]. A
/// damaged, empty or unreadable file (or one `key` does not open) gives none; an empty one is never
/// opened (SQLite would delete a `-wal` beside it: [`files::nonempty_regular`]). A counter at or past
/// [`FAR_IDS`](crate::renumber::FAR_IDS) counts as the largest id below it the table holds
/// ([`crate::renumber`]: a repair moves such ids down, and a copy taken before is not a copy holding more).
/// Opens a connection: not for a file an owner of this process has open.
pub fn counters_of(db: &Path, key: Option<&Key>) -> Vec<(String, i64)> {
    let Some(conn) = crate::read_pool::open_if_readable(db, key) else {
        return Vec::new();
    };
    read_sequences(&conn)
        .map(|counters| {
            let counted = |(table, seq): (String, i64)| {
                let seq = crate::renumber::counted(&conn, &table, seq);
                (table, seq)
            };
            counters.into_iter().map(counted).collect()
        })
        .unwrap_or_default()
}

/// The highest id each AUTOINCREMENT table of a file still shows (`max(rowid)`, one seek down the right edge
/// of its b-tree), as floors for [`raise_counters`]: what a damaged file holds where its `sqlite_sequence`
/// cannot be read (a damaged page of its own), so that the file put in its place never hands those ids out
/// again while the damaged file is kept aside. A table that cannot be read is left out; a file that does not
/// open gives none. Opens a connection: not for a file an owner of this process has open.
pub fn highest_ids_of(db: &Path, key: Option<&Key>) -> Vec<(String, i64)> {
    let Some(conn) = crate::read_pool::open_if_readable(db, key) else {
        return Vec::new();
    };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    tables
        .into_iter()
        .filter_map(|table| {
            let sql = format!("SELECT max(rowid) FROM \"{}\"", table.replace('"', "\"\""));
            let max: Option<i64> = conn.query_row(&sql, [], |r| r.get(0)).ok()?;
            max.map(|id| (table, id))
        })
        .collect()
}

/// `sqlite_sequence` of a file: table name -> highest AUTOINCREMENT id handed out. Statements cached: an
/// owner that keeps its counters reads them after every write.
pub(crate) fn read_sequences(conn: &Connection) -> rusqlite::Result<BTreeMap<String, i64>> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence')")?
        .query_row([], |r| r.get(0))?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    conn.prepare_cached("SELECT name, seq FROM sqlite_sequence")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect()
}

/// The tables (by name) of a file whose AUTOINCREMENT counter stands at the largest id SQLite allows:
/// SQLite adds no row to them, and answers an insert with SQLITE_FULL whatever the disk holds
/// (<https://sqlite.org/autoinc.html>).
pub fn tables_out_of_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    Ok(read_sequences(conn)?
        .into_iter()
        .filter(|(_, seq)| *seq == i64::MAX)
        .map(|(table, _)| table)
        .collect())
}

/// The rows `file` (a damaged file, or one a restore replaced) added after `backup` was taken, at most, per
/// table (by name): how far each of its AUTOINCREMENT counters is past the backup's (ids handed out since; a
/// row added and deleted since counts too). Tables it did not add to are left out; a file whose counters
/// cannot be read (under `key`) gives none. Changes to rows the backup has (a session ended, a setting
/// changed) are not counted. Opens connections: not for a file an owner of this process has open.
pub fn rows_added_since(file: &Path, backup: &VerifiedBackup, key: Option<&Key>) -> RowsAdded {
    rows_past(file, backup.path(), key)
}

/// When the AUTOINCREMENT counters of the damaged `file` cannot be read at all (a truncated file whose
/// `sqlite_sequence` page is gone, say), [`rows_added_since`] counts none, yet the file may hold rows its
/// backup lacks: its last write (the later of the file's and its `-wal`'s modification times; a `-wal` that
/// holds no frame is only a reader's open) when that is after the backup was taken, at `taken_at`. `None`
/// when the counters read (they count), when nothing was written since, or when the file is empty (a copy
/// cut short beside its `-wal`: nothing in it for a salvage to read; a repair's quarantine keeps the `-wal`
/// as it is).
pub fn written_since_uncounted(file: &Path, taken_at: DateTime<Utc>, key: Option<&Key>) -> Option<DateTime<Utc>> {
    if !files::nonempty_regular(file) {
        return None;
    }
    let counted = crate::read_pool::open_if_readable(file, key).is_some_and(|conn| read_sequences(&conn).is_ok());
    if counted {
        return None;
    }
    let wal = files::with_suffix(file, "-wal");
    let last = [(file, 0), (wal.as_path(), crate::records::WAL_HEADER_BYTES)]
        .into_iter()
        .filter_map(|(p, empty)| {
            let meta = std::fs::metadata(p).ok()?;
            (meta.len() > empty).then_some(meta.modified().ok()?)
        })
        .max()
        .map(DateTime::<Utc>::from)?;
    (last > taken_at).then_some(last)
}

/// The rows the copy `file` holds past the copy `than`, by their AUTOINCREMENT counters (as
/// [`rows_added_since`] counts them), neither of them verified: which of two backups of a file is the later
/// copy, whatever their names say.
pub fn rows_past(file: &Path, than: &Path, key: Option<&Key>) -> RowsAdded {
    RowsAdded::from(&ids_between(&counters_of(than, key), &counters_of(file, key))[..])
}

/// The ids past the counters `before` up to the counters `counters`, per table (by name).
fn ids_between(before: &[(String, i64)], counters: &[(String, i64)]) -> Vec<IdRange> {
    let before: BTreeMap<&str, i64> = before.iter().map(|(table, seq)| (table.as_str(), *seq)).collect();
    let after: BTreeMap<&str, i64> = counters.iter().map(|(table, seq)| (table.as_str(), *seq)).collect();
    after
        .into_iter()
        .filter_map(|(table, last)| {
            let first = before.get(table).copied().unwrap_or(0).saturating_add(1);
            (last >= first).then(|| IdRange {
                table: table.to_string(),
                first,
                last,
            })
        })
        .collect()
}

/// Of `handed_out` (ids `file` handed out, per table), those `file` still holds, as ranges: a row added after
/// a backup and deleted before a restore of it was deleted by the user, not left out by the restore, and a
/// report says so. A table `file` cannot be read from (a damaged file a repair replaces) keeps its ranges
/// whole: nothing tells which of them it held.
fn ids_still_in(file: &Path, handed_out: Vec<IdRange>, key: Option<&Key>) -> Vec<IdRange> {
    let Some(conn) = crate::read_pool::open_if_readable(file, key) else {
        return handed_out;
    };
    let mut held: Vec<IdRange> = Vec::new();
    for range in handed_out {
        let sql = format!(
            "SELECT rowid FROM \"{}\" WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
            range.table.replace('"', "\"\"")
        );
        // Streamed into ranges, not collected: a backup a week old leaves out millions of events.
        let table_start = held.len();
        let read = conn.prepare(&sql).and_then(|mut stmt| {
            let mut rows = stmt.query([range.first, range.last])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                match held[table_start..].last_mut() {
                    Some(last) if last.last + 1 == id => last.last = id,
                    _ => held.push(IdRange {
                        table: range.table.clone(),
                        first: id,
                        last: id,
                    }),
                }
            }
            Ok(())
        });
        if read.is_err() {
            held.truncate(table_start);
            held.push(range);
        }
    }
    held
}

/// Raises each table's AUTOINCREMENT counter to at least its floor (tables the file does not have, or
/// without AUTOINCREMENT, are skipped): the next id handed out is above every id anyone has seen.
pub fn raise_counters(conn: &Connection, floors: &[(String, i64)]) -> rusqlite::Result<()> {
    for (table, floor) in floors {
        let autoincrement: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1
                AND sql LIKE '%AUTOINCREMENT%')",
            [table],
            |r| r.get(0),
        )?;
        if !autoincrement {
            continue;
        }
        conn.execute(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?2) WHERE name = ?1",
            rusqlite::params![table, floor],
        )?;
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 WHERE NOT EXISTS
                (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
            rusqlite::params![table, floor],
        )?;
    }
    Ok(())
}

/// Moves a `-wal` (and `-shm`) holding another file's commits ([`crate::records::orphan_wal`]) aside as
/// `<name>.orphan-<time>-wal`, leaving the file at its path. Returns where the `-wal` went (`None`: there is
/// no such `-wal`). Holding the lock proves no owner has the file open.
pub fn set_orphan_wal_aside(lock: &OwnerLock, schema: &'static Schema) -> Result<Option<PathBuf>> {
    if crate::records::orphan_wal(lock.db_path(), schema).is_none() {
        return Ok(None);
    }
    let aside = files::move_sidecars_aside(lock.db_path(), "orphan")?;
    crate::records::clear_failure(lock.db_path(), crate::ErrorKind::OrphanWal)?;
    Ok(Some(files::with_suffix(&aside, "-wal")))
}

/// Copies `from` to the new file `to`, created 0600, and fsyncs it. Opens both with std::fs: only for files
/// no SQLite connection of this process has open (a backup being restored, its temporary copy).
pub(crate) fn copy_private(from: &Path, to: &Path) -> Result<()> {
    files::require_regular_file(from, "read the backup")?;
    copy_private_first(from, to, u64::MAX)
}

/// Copies the first `len` bytes of `from` (all of them: `u64::MAX`) into the new file `to`, created 0600 and
/// fsynced.
pub(crate) fn copy_private_first(from: &Path, to: &Path, len: u64) -> Result<()> {
    let src = File::open(from).map_err(|e| Error::io(from, "open", e))?;
    let mut dst = files::create_private_new(to)?;
    io::copy(&mut io::Read::take(src, len), &mut dst).map_err(|e| Error::io(to, "write", e))?;
    dst.sync_all().map_err(|e| Error::io(to, "fsync", e))
}
