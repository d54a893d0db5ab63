//! Backup, restore and repair of a whole data directory (both databases).
//!
//! Restore and repair take BOTH owner locks before touching anything: the server reads activity.db while it
//! owns config.db and the daemon may read config.db, so swapping either file under a running process would
//! leave it reading the moved-aside inode. Holding the locks also keeps an owner from starting half-way.
//!
//! An encrypted data directory's operations take its key: both databases and their backups are encrypted
//! with the same key. A file the key does not open is `key_rejected`, never damage: repair moves nothing
//! for it. [`rekey`] changes the key of both databases, all or nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use store_core::backup::{self, Adopt, BackupClass, BackupListing, IgnoredFile};
use store_core::diagnostics::{CheckLevel, InspectOptions, inspect_owned};
use store_core::read_pool::{open_database_read_only, open_read_only};
pub use store_core::restore::RestoreHook;
use store_core::restore::{
    AddedSince, EmptyStart, Placed, Placement, Replacement, RestoreReport, VerifiedBackup, open_backup_file,
    replace_all, restore_all, rows_added_since, verify_backup, written_since_uncounted,
};
use store_core::salvage::{self, BuiltSalvage, SalvageHook, SalvageOptions, SalvageReport};
use store_core::{
    Error, ErrorKind, FolderLock, Key, OpenOptions, OwnerConnection, OwnerLock, Result, Schema, Waits, files,
};

use crate::DATABASES;

/// What [`backup()`] did: the backups taken, the databases it could not back up because they do not exist
/// (yet), and those it failed to back up (damaged, unreadable, no room for the copy), each with the error
/// that says so; and what the operator should know about a backup taken (`notes`: one named by a clock that
/// is behind).
#[derive(Debug)]
pub struct BackupReport {
    pub taken: Vec<PathBuf>,
    pub missing: Vec<Error>,
    pub failed: Vec<Error>,
    pub notes: Vec<String>,
}

/// Takes a consistent backup of each database that exists in `data_dir` into `to` (one-step online backup
/// from a read-only connection: it finishes while the daemon and server write), keeping the newest `keep`
/// manual backups of each. Each database is backed up on its own: one that fails (a damaged activity.db)
/// does not keep the other (the user's configuration) from its backup; the report names it. At least one
/// backup must be taken, else the error is the first failure (or that nothing exists yet).
pub fn backup(data_dir: &Path, to: &Path, keep: usize) -> Result<BackupReport> {
    backup_with_key(data_dir, to, keep, None, &Waits::default())
}

/// [`backup()`] of an encrypted data directory: each database is read with `key`, and each backup is encrypted
/// with it. The folder's lock is waited for as `waits` says (a command says for whom it waits).
pub fn backup_with_key(
    data_dir: &Path,
    to: &Path,
    keep: usize,
    key: Option<&Key>,
    waits: &Waits,
) -> Result<BackupReport> {
    let mut report = BackupReport {
        taken: Vec::new(),
        missing: Vec::new(),
        failed: Vec::new(),
        notes: Vec::new(),
    };
    for schema in DATABASES {
        let path = schema.path_in(data_dir);
        // Never a copy a restore has half put in place: with a sound backup rotated out for it, a repair
        // would later restore it, raised counters and all, and drop what the user's file held.
        let taken = store_core::restore::refuse_unfinished(&path, schema)
            .and_then(|()| open_database_read_only(&path, schema, key))
            .and_then(|conn| {
                let source = backup::Source {
                    conn: &conn,
                    db_path: &path,
                    schema,
                    key,
                };
                backup::take_backup(&source, to, BackupClass::Manual, keep, waits)
            });
        match taken {
            Ok(backup) => {
                // The file's earlier backups named later than the clock reads now: the clock is behind, or was
                // ahead when they were taken (nothing here tells which), and this backup, the newest, is named as
                // older than them. Said when it happens, not found out later.
                let named_later = backup::backups_of_file(&path, to, schema, key, Adopt::OwnOnly)
                    .map(|listing| listing.named_later)
                    .unwrap_or_default();
                if let Some(later) = named_later.first() {
                    report.notes.push(format!(
                        "{} backup(s) of {} taken before this one are named later than the clock reads now (the \
                         latest: {}, named as taken at {}), so {} is named as older than they are: either the clock \
                         is behind now (set it right and take a backup again) or it was ahead when they were taken \
                         (they are older than their names, and rotation keeps them on top of --keep until the clock \
                         passes those names: remove them by hand when they are not wanted). Until a backup is named \
                         later than them, restore, repair and doctor tell the backups apart by their rows",
                        named_later.len(),
                        path.display(),
                        later.path.display(),
                        store_core::time::show_utc(&later.name.taken_at),
                        backup.display()
                    ));
                }
                report.taken.push(backup)
            }
            // Not there yet is half a backup said, not failed; a restore under way is a failure: the
            // other file, backed up, may be of the pair before it.
            Err(e) if e.is_not_ready() && e.kind() != ErrorKind::RestoreInterrupted => report.missing.push(e),
            Err(e) => report.failed.push(e),
        }
    }
    if report.taken.is_empty() {
        let first_failure = report.failed.drain(..).next();
        if let Some(e) = first_failure.or_else(|| report.missing.pop()) {
            return Err(e);
        }
    }
    Ok(report)
}

/// Both owner locks of `data_dir`, or `Locked` naming the running owner. A restore (or repair, or key
/// rotation) interrupted there is undone first, as every owner's open does: a command that took the files
/// as they are would restore over, re-key or repair half of a pair, with the user's file still aside, and
/// write its own journal over the one that puts it back.
fn take_both_locks(data_dir: &Path) -> Result<Vec<(&'static Schema, OwnerLock)>> {
    store_core::restore::undo_interrupted(data_dir)?;
    DATABASES
        .iter()
        .map(|schema| Ok((*schema, OwnerLock::acquire(&schema.path_in(data_dir))?)))
        .collect()
}

/// `KeyRequired` when `data_dir` records its databases as encrypted and no key is given: a restore or repair
/// refuses before anything moves (backups in the clear would otherwise be put back in the clear), and a
/// backup that reads as no database without a key is the missing key, said as such, rather than "no backup
/// passes verification" or "not a database", whose remedies start over (salvage, an empty file).
fn key_required(data_dir: &Path, key: Option<&Key>) -> Option<Error> {
    if key.is_some() {
        return None;
    }
    DATABASES
        .iter()
        .find(|s| store_core::records::encryption(&s.path_in(data_dir)).is_some_and(|r| r.encrypted))
        .map(|s| Error::KeyRequired {
            path: s.path_in(data_dir),
            schema: Some(s),
        })
}

/// Which database kind a file is named for: a backup's name (`activity-<time>-v4.db`) or the database's own.
fn kind_by_name(file: &Path) -> Option<&'static Schema> {
    let name = file.file_name()?.to_str()?;
    let stem = backup::BackupName::parse(name).map(|n| n.stem);
    DATABASES
        .iter()
        .copied()
        .find(|s| name == s.file_name || stem.as_deref() == Some(s.stem()))
}

/// Which database kind a file holds, by its `application_id` (opened as [`open_backup_file`] opens one).
fn kind_of(file: &Path, key: Option<&Key>) -> Result<&'static Schema> {
    let expected = "a backup of activity.db or config.db";
    let conn = open_backup_file(file, expected, key)?;
    let id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| store_core::key::error_at(file, key, e))?;
    DATABASES
        .iter()
        .copied()
        .find(|s| s.application_id == id)
        .ok_or_else(|| Error::WrongDatabase {
            path: file.to_path_buf(),
            expected,
            found: format!("its application_id is {}", store_core::migrate::show_application_id(id)),
        })
}

/// Restores from `from`: a backup file (restores the database it is a backup of) or a backup directory
/// (restores the newest backup of each database found there that verifies, passing over damaged ones:
/// [`RestoreReport::passed_over_damaged`]). Refused while either owner runs. The files
/// in place move aside (never deleted) with their `-wal`/`-shm`. Both files are restored together, all or
/// nothing (see [`store_core::restore::restore_all`]), and their counters are raised so no id is ever
/// handed out twice.
pub fn restore(data_dir: &Path, from: &Path) -> Result<Vec<RestoreReport>> {
    restore_with(data_dir, from, None, None, &Waits::default())
}

/// [`restore`], with a hook called at each of its steps (drills inject failures and kills with it), and the
/// key of an encrypted data directory: the backups are read with it (a backup taken under another key is
/// `key_rejected`), and the restored files are opened with it. The backup folder's [`FolderLock`] is shared
/// throughout: a backup running into it is waited for (as `waits` says), and a rotation waits for this restore.
pub fn restore_with(
    data_dir: &Path,
    from: &Path,
    hook: Option<&RestoreHook>,
    key: Option<&Key>,
    waits: &Waits,
) -> Result<Vec<RestoreReport>> {
    // Before the owner locks: a backup running into the folder is waited for (never a half-rotated folder
    // read), and a rotation waits for this restore to have copied the backup it chose.
    let _folder = FolderLock::shared_with(&backup_folder_of(from), waits)?;
    // Before the files are opened to count what a backup would lose (which makes their `-wal` and `-shm`).
    files::ensure_entries_can_move(data_dir)?;
    restore_locked(take_both_locks(data_dir)?, data_dir, from, hook, key)
}

/// The backup folder a restore or repair from `from` reads, whose [`FolderLock`] it shares: `from` itself, or
/// the folder of the backup file `from`; for a pre-migration folder, the backup folder it is in (whose lock
/// guards both).
pub fn backup_folder_of(from: &Path) -> PathBuf {
    let folder = match from.is_dir() {
        true => from,
        false => files::parent_dir(from),
    };
    match backup::is_pre_migration_dir(folder) {
        true => files::parent_dir(&files::resolved(folder)).to_path_buf(),
        false => folder.to_path_buf(),
    }
}

/// Restores the backup file `from`, taken under another key than the data directory's (`backup_key`; `None`:
/// in the clear, or the directory in the clear and the backup under a key): a copy of it under the directory's
/// key (or in the clear) is made into the directory's backup folder, named as a backup (the backup's own name,
/// else one from its modification time), checked to hold the rows `from` holds and verified, then restored as
/// [`restore`] restores a file. A backup of another data directory, say, is brought over in one command: the
/// data directory never holds files under two keys. Refused while either owner runs, before anything is
/// written. `from` is never changed, except when it is that very copy's place (a backup in the directory's
/// own folder): then it is replaced by the copy, as a key rotation replaces the backups it re-keys. Returns
/// where the copy is, and what the restore did. Backup folders are waited for as `waits` says.
pub fn restore_from_other_key(
    data_dir: &Path,
    from: &Path,
    backup_key: Option<&Key>,
    key: Option<&Key>,
    waits: &Waits,
) -> Result<(PathBuf, Vec<RestoreReport>)> {
    let folder = backup::default_backup_dir(&DATABASES[0].path_in(data_dir));
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    // `from`'s folder, when another than the one the copy goes to, is held as a restore holds it.
    let _source_folder = match canonical(&backup_folder_of(from)) == canonical(&folder) {
        true => None,
        false => Some(FolderLock::shared_with(&backup_folder_of(from), waits)?),
    };
    // The copy is renamed into the backup folder, then restored through renames in the data directory.
    for dir in [folder.as_path(), data_dir] {
        files::ensure_entries_can_move(dir)?;
    }
    let locks = take_both_locks(data_dir)?;
    let schema = kind_of(from, backup_key)?;
    let version: u32 = open_backup_file(from, schema.file_name, backup_key)?
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| store_core::key::error_at(from, backup_key, e))?;
    files::create_private_dir_all(&folder)?;
    // The copy is named and written into the folder, then read from it: held as a backup holds it.
    let _folder = FolderLock::exclusive_with(&folder, waits)?;
    // Named as a backup of the database (its own name when it has one), so that the folder's listing, a
    // rotation and doctor see it as one.
    let own_name = from
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(backup::BackupName::parse)
        .filter(|n| n.stem == schema.stem() && n.version == version);
    let in_place = own_name.is_some() && canonical(files::parent_dir(from)) == canonical(&folder);
    let copy = if in_place {
        from.to_path_buf()
    } else {
        let taken_at = std::fs::metadata(from)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(from, "read the modification time of", e))?;
        own_name
            .unwrap_or_else(|| backup::BackupName {
                stem: schema.stem().to_string(),
                taken_at: taken_at.into(),
                version,
                seq: 0,
            })
            .unused_path_in(&folder)
    };
    rekeyed_backup_at(from, &copy, schema, backup_key, key)?;
    let reports = restore_locked(locks, data_dir, &copy, None, key)?;
    Ok((copy, reports))
}

/// [`restore_with`], the owner locks of `data_dir` held.
fn restore_locked(
    locks: Vec<(&'static Schema, OwnerLock)>,
    data_dir: &Path,
    from: &Path,
    hook: Option<&RestoreHook>,
    key: Option<&Key>,
) -> Result<Vec<RestoreReport>> {
    // An encrypted data directory restored without its key: backups in the clear (taken before it was
    // encrypted) would put its data back in the clear, and the next start under the key would refuse them.
    if let Some(e) = key_required(data_dir, key) {
        return Err(e);
    }
    // A legacy file not split yet: the split would refuse the restored files beside it.
    if let Some(schema) = DATABASES.iter().copied().find(|s| s.predecessor.is_some())
        && let Some(legacy) = store_core::conversion::pending(&schema.path_in(data_dir), schema, None)
    {
        return Err(Error::RestoreBesideUnconverted { path: legacy, schema });
    }
    // Everything is verified before anything moves: each database's backup, and the newer ones of its
    // folder passed over as damaged.
    let mut chosen: Vec<(&'static Schema, VerifiedBackup, Vec<PathBuf>)> = Vec::new();
    // Whether the folder holds files named like backups that are none (or none for this key).
    let mut unreadable = false;
    if from.is_dir() {
        // Each file's own backups (its lineage's); a file with none there takes those of the one other file
        // the folder holds backups of (a new install restoring its old data): the file in place is kept.
        for schema in DATABASES.iter().copied() {
            let path = schema.path_in(data_dir);
            let BackupListing {
                backups,
                ignored,
                named_later,
            } = backup::backups_of_file(&path, from, schema, key, Adopt::SingleOther)?;
            unreadable |= !ignored.is_empty();
            if backups.is_empty() {
                // Backups the key does not open, or named later than now, are said, with the way to use one,
                // rather than the other file restored alone as if this one had none.
                if let Some(e) = backup_under_other_key(&path, &ignored, None, schema, key, false)
                    .or_else(|| backup_holding_more(&path, &[], &named_later, None, schema, key, false))
                {
                    return Err(e);
                }
                // Nor as if the only one there, one that cannot be read (a copy cut short), were none: a
                // backup damaged in a page is refused alike (below, `NoBackup`).
                if let Some(cut) = ignored.iter().find(|i| i.unreadable) {
                    return Err(Error::BackupDamaged {
                        path: cut.path.clone(),
                        data_dir: data_dir.to_path_buf(),
                        detail: format!("it {}", cut.reason),
                        schema,
                    });
                }
                continue;
            }
            let (sound, passed_over) = newest_sound(&path, &backups, schema, key, false)?;
            if let Some(e) = backup_holding_more(&path, &backups, &named_later, sound.as_ref(), schema, key, false) {
                return Err(e);
            }
            let Some(sound) = sound else {
                return Err(Error::NoBackup {
                    path,
                    backup_dir: from.to_path_buf(),
                    quarantined: None,
                    removed: false,
                    nothing_to_salvage: None,
                    restoring: true,
                    schema,
                });
            };
            // A newer backup the key does not open (a copy taken before a key rotation, put back in the folder)
            // is named, never passed over for an older one in silence.
            if let Some(e) = backup_under_other_key(&path, &ignored, Some(&sound), schema, key, false) {
                return Err(e);
            }
            chosen.push((schema, sound, passed_over));
        }
    } else {
        let kind = kind_of(from, key).map_err(|e| match e {
            Error::NotADatabase { .. } => key_required(data_dir, key).unwrap_or(e),
            // Unread, its kind is told by its name (a backup's, or the database's own), or, in the clear, by
            // reading it without the key.
            e => match (
                key_mismatch(e.kind()),
                kind_by_name(from).or_else(|| kind_of(from, None).ok()),
            ) {
                (Some(found), Some(schema)) => {
                    backup_key_mismatch(&schema.path_in(data_dir), from, found, false, None, schema, key)
                }
                _ => e,
            },
        })?;
        let verified = verify_backup(from, kind, key).map_err(|e| match e {
            Error::Corrupt { path, detail, .. } => Error::BackupDamaged {
                path,
                data_dir: data_dir.to_path_buf(),
                detail,
                schema: kind,
            },
            // Said of the backup, with the data directory's remedy (the file's own would restore into the
            // backup's folder).
            Error::SchemaNewer { found, supported, .. } => Error::BackupNewer {
                path: kind.path_in(data_dir),
                backup: from.to_path_buf(),
                found,
                supported,
                schema: kind,
            },
            e => e,
        })?;
        chosen.push((kind, verified, Vec::new()));
    }
    if chosen.is_empty() {
        // Backups that read as no database at all, without a key: they may well be under the directory's.
        if let Some(e) = key_required(data_dir, key).filter(|_| unreadable) {
            return Err(e);
        }
        // Nothing in that folder is a backup of either database: say so about the first of them.
        let schema = DATABASES[0];
        return Err(Error::NoBackup {
            path: schema.path_in(data_dir),
            backup_dir: from.to_path_buf(),
            quarantined: None,
            removed: false,
            nothing_to_salvage: None,
            restoring: true,
            schema,
        });
    }
    let placements = locks
        .into_iter()
        .filter_map(|(schema, lock)| {
            let (_, backup, _) = chosen.iter().find(|(s, _, _)| std::ptr::eq(*s, schema))?;
            Some(Placement {
                schema,
                id_floors: referenced_ids(data_dir, schema, key),
                moves_recorded: ids_moved_in(data_dir, schema, key, &[]),
                lock,
                backup: backup.clone(),
            })
        })
        .collect();
    let (mut reports, _locks) = restore_all(placements, "replaced", hook, key)?;
    for report in &mut reports {
        if let Some((_, _, passed_over)) = chosen.iter_mut().find(|(s, _, _)| s.file_name == report.database) {
            report.passed_over_damaged = std::mem::take(passed_over);
        }
    }
    Ok(reports)
}

/// The newest of `backups` (newest first) that verifies under `key`, and the newer ones passed over because
/// they are damaged. Any other failure stops here (one the key does not open as
/// [`Error::BackupKeyMismatch`], a newer schema, a file this user may not read): an older backup would be
/// restored, or the file started empty, for a reason the user can fix. `db` is the database the backups are
/// of; `damaged`, whether it is damaged (a repair).
fn newest_sound(
    db: &Path,
    backups: &[backup::BackupFile],
    schema: &'static Schema,
    key: Option<&Key>,
    damaged: bool,
) -> Result<(Option<VerifiedBackup>, Vec<PathBuf>)> {
    let mut passed_over = Vec::new();
    for b in backups {
        match verify_backup(&b.path, schema, key) {
            Ok(v) => return Ok((Some(v), passed_over)),
            Err(e) if e.kind() == ErrorKind::Corrupt => passed_over.push(b.path.clone()),
            Err(Error::SchemaNewer { found, supported, .. }) => {
                return Err(Error::BackupNewer {
                    path: db.to_path_buf(),
                    backup: b.path.clone(),
                    found,
                    supported,
                    schema,
                });
            }
            Err(e) => {
                return Err(match key_mismatch(e.kind()) {
                    Some(found) => backup_key_mismatch(db, &b.path, found, damaged, None, schema, key),
                    None => e,
                });
            }
        }
    }
    Ok((None, passed_over))
}

/// Of the files a backup folder holds named like `schema`'s backups that are not usable ones (`ignored`), the
/// newest by name that `key` does not open (taken under another key, in the clear, or perhaps encrypted when
/// no key is given), as the error that says how to bring it under the key; `None` when there is none. With
/// `instead` (the backup the key opens that would be restored), only one named later than it: the error then
/// also names `instead`, restored by name as the other way. `db` and `damaged` as for [`newest_sound`].
fn backup_under_other_key(
    db: &Path,
    ignored: &[IgnoredFile],
    instead: Option<&VerifiedBackup>,
    schema: &'static Schema,
    key: Option<&Key>,
    damaged: bool,
) -> Option<Error> {
    let named_at = |p: &Path| {
        let name = p.file_name()?.to_str()?;
        backup::BackupName::parse(name).map(|n| n.taken_at)
    };
    let floor = instead.and_then(|b| named_at(b.path()));
    ignored
        .iter()
        .filter_map(|i| Some((i, key_mismatch(i.key_problem?)?)))
        .filter(|(i, _)| instead.is_none() || named_at(&i.path) > floor)
        .max_by_key(|(i, _)| named_at(&i.path))
        .map(|(i, found)| {
            let older = instead.map(|b| b.path().to_path_buf());
            backup_key_mismatch(db, &i.path, found, damaged, older, schema, key)
        })
}

/// Of the file's backups other than `instead` (the one to be restored otherwise, if any: the newest by name
/// that verifies), one that verifies and holds rows `instead` does not (or any that verifies, with no
/// `instead`), as the error that names it; `None` when there is none. A backup's name is the clock's when it
/// was taken, so a clock that was wrong then gives a newer copy an older name. Looked at first: those named
/// later than the clock reads now (`named_later`, newest first), never chosen by their name; then, of
/// `backups` (the file's, newest first by name), those named before `instead`, each verified (a whole-file
/// read) only once its counters (cheap to read) show rows past `instead`'s. `db` and `damaged` as for
/// [`newest_sound`].
fn backup_holding_more(
    db: &Path,
    backups: &[backup::BackupFile],
    named_later: &[backup::BackupFile],
    instead: Option<&VerifiedBackup>,
    schema: &'static Schema,
    key: Option<&Key>,
    damaged: bool,
) -> Option<Error> {
    let in_future = named_later.iter().find_map(|b| {
        verify_backup(&b.path, schema, key).ok()?;
        let instead = match instead {
            Some(older) => {
                let added = rows_added_since(&b.path, older, key);
                if added.is_empty() {
                    return None;
                }
                Some(Box::new((older.path().to_path_buf(), added)))
            }
            None => None,
        };
        Some(Error::BackupInFuture {
            path: db.to_path_buf(),
            backup: b.path.clone(),
            named_at: b.name.taken_at,
            now: chrono::Utc::now(),
            instead,
            damaged,
            schema,
        })
    });
    if in_future.is_some() {
        return in_future;
    }
    let instead = instead?;
    let chosen = backups.iter().position(|b| b.path == instead.path())?;
    backups[chosen + 1..].iter().find_map(|b| {
        let added = rows_added_since(&b.path, instead, key);
        if added.is_empty() {
            return None;
        }
        verify_backup(&b.path, schema, key).ok()?;
        Some(Error::BackupNamedEarlier {
            path: db.to_path_buf(),
            backup: b.path.clone(),
            named_at: b.name.taken_at,
            instead: Box::new((instead.path().to_path_buf(), backups[chosen].name.taken_at, added)),
            damaged,
            schema,
        })
    })
}

/// [`Error::BackupKeyMismatch`] for `backup`, unless `key` does not open the database `db` either: then the
/// key is wrong for the whole data directory, and that is the error (the backup may well be under the
/// directory's right key).
fn backup_key_mismatch(
    db: &Path,
    backup: &Path,
    found: ErrorKind,
    damaged: bool,
    instead: Option<PathBuf>,
    schema: &'static Schema,
    key: Option<&Key>,
) -> Error {
    match open_read_only(db, schema, key) {
        Err(e) if is_key_problem(e.kind()) => e,
        _ => Error::BackupKeyMismatch {
            path: db.to_path_buf(),
            backup: backup.to_path_buf(),
            found,
            damaged,
            instead,
            schema,
        },
    }
}

/// The key problems of a backup that rekey mends: under another key, in the clear, encrypted when no key is
/// given.
fn key_mismatch(kind: ErrorKind) -> Option<ErrorKind> {
    matches!(
        kind,
        ErrorKind::KeyRejected | ErrorKind::NotEncrypted | ErrorKind::KeyRequired
    )
    .then_some(kind)
}

/// The highest ids of `schema`'s tables that the other databases of `data_dir` refer to (their
/// [`Schema::id_references`]), as floors for its AUTOINCREMENT counters: a restored or repaired file never
/// hands out an id that the other file already points at. An unreadable other file gives none (its own
/// restore guards it).
pub fn referenced_ids(data_dir: &Path, schema: &'static Schema, key: Option<&Key>) -> Vec<(String, i64)> {
    referenced_ids_in(data_dir, schema, key, &[])
}

/// [`referenced_ids`], reading also the files about to replace the other databases (`(database, file)`: a
/// salvage's output, put in place together with this file's replacement).
fn referenced_ids_in(
    data_dir: &Path,
    schema: &'static Schema,
    key: Option<&Key>,
    replacing: &[(&'static str, PathBuf)],
) -> Vec<(String, i64)> {
    // One floor per table: the highest of the columns that refer to it.
    let mut floors: BTreeMap<String, i64> = BTreeMap::new();
    for (other, conn) in other_files(data_dir, schema, key, replacing) {
        for r in other.id_references.iter().filter(|r| r.target_file == schema.file_name) {
            let sql = format!(
                "SELECT max({}) FROM {} WHERE {}",
                r.column,
                r.table,
                r.only_where.unwrap_or("1")
            );
            if let Ok(Some(max)) = conn.query_row(&sql, [], |row| row.get::<_, Option<i64>>(0)) {
                let floor = floors.entry(r.target_table.to_string()).or_insert(max);
                *floor = (*floor).max(max);
            }
        }
    }
    let floors: Vec<(String, i64)> = floors.into_iter().collect();
    // References at or past FAR_IDS are those of a file put back from before a repair moved them, or of a table
    // out of ids: only then are the moves read (one more open of each file).
    if floors.iter().any(|(_, floor)| *floor >= store_core::renumber::FAR_IDS) {
        let moves = ids_moved_in(data_dir, schema, key, replacing);
        return store_core::renumber::floors_after_moves(schema.file_name, floors, &moves);
    }
    floors
}

/// The moves of ids ([`store_core::renumber`]) that the files of `data_dir` record, `schema`'s own (the file
/// a backup replaces records its own tables' moves) and the others' (theirs, and those of tables they name):
/// what a backup of `schema`'s file taken before them is brought up to when it is put back. An unreadable
/// file gives none.
fn ids_moved_in(
    data_dir: &Path,
    schema: &'static Schema,
    key: Option<&Key>,
    replacing: &[(&'static str, PathBuf)],
) -> Vec<store_core::renumber::IdMoves> {
    let own = open_read_only(&schema.path_in(data_dir), schema, key).ok();
    let own = own.map(|conn| store_core::renumber::recorded_runs(&conn).unwrap_or_default());
    own.into_iter()
        .flatten()
        .chain(ids_moved_elsewhere(data_dir, schema, key, replacing))
        .collect()
}

/// The moves of ids the files of `data_dir`'s other databases record (and the files about to replace them,
/// `replacing`): doctor says when a table of `schema`'s file out of ids is one they record as given smaller
/// ids.
pub(crate) fn ids_moved_elsewhere(
    data_dir: &Path,
    schema: &'static Schema,
    key: Option<&Key>,
    replacing: &[(&'static str, PathBuf)],
) -> Vec<store_core::renumber::IdMoves> {
    other_files(data_dir, schema, key, replacing)
        .flat_map(|(_, conn)| store_core::renumber::recorded_runs(&conn).unwrap_or_default())
        .collect()
}

/// Read-only connections to the files of the databases of `data_dir` other than `schema`'s, and to the files
/// about to replace them (`replacing`), those that open.
fn other_files<'a>(
    data_dir: &'a Path,
    schema: &'static Schema,
    key: Option<&'a Key>,
    replacing: &'a [(&'static str, PathBuf)],
) -> impl Iterator<Item = (&'static Schema, rusqlite::Connection)> + 'a {
    DATABASES
        .iter()
        .filter(move |o| !std::ptr::eq(**o, schema))
        .flat_map(move |other| {
            let replacements = replacing
                .iter()
                .filter(|(db, _)| *db == other.file_name)
                .map(|(_, f)| f.clone());
            std::iter::once(other.path_in(data_dir))
                .chain(replacements)
                .filter_map(move |file| Some((*other, open_read_only(&file, other, key).ok()?)))
        })
}

/// What repair did to one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepairAction {
    /// The `-wal` and `-shm` beside the file held another file's commits (the one replaced or removed by hand
    /// after a crash: [`Error::OrphanWal`]): moved aside, `wal` being where the `-wal` went. Done first, and
    /// followed by what was done to the file itself, as with any other.
    OrphanWalSetAside {
        database: &'static str,
        #[serde(with = "store_core::files::lossy_path")]
        wal: PathBuf,
    },
    /// Not damaged: left alone.
    Healthy { database: &'static str },
    /// The file was this database's, rebuilt without the ids SQLite keeps in its header
    /// ([`Error::HeaderIdsLost`]: `sqlite3 FILE .dump | sqlite3 NEW`): checked against this build's schema at
    /// the `version` its `schema_migrations` records, its `application_id` and `user_version` written back in
    /// place (no row changed; activity.db's `auto_vacuum` too, by a `VACUUM`), and opened as its owner opens
    /// it. Its owner's next start migrates it, as any file of that version, when it is older than this build.
    /// Or only its `user_version`, which read `lowered_from`, below the migrations the file records (set back by
    /// hand, to let an earlier build open it).
    HeaderIdsRestored {
        database: &'static str,
        version: u32,
        /// The `user_version` it read, when only that was wrong; `None`: both ids were 0.
        lowered_from: Option<u32>,
    },
    /// There is no such file: nothing to repair (its owner creates it when it starts).
    Missing { database: &'static str },
    /// Rows naming a parent row the file no longer holds ([`ErrorKind::ForeignKeyViolations`]: the parent was
    /// deleted by a tool with foreign keys off, as the `sqlite3` shell has them): removed in place, in one
    /// transaction recorded in the file's `provenance`, as deleting the parent with foreign keys on removes
    /// them ([`store_core::orphans`]). Followed by what else was done to the file, if anything.
    OrphansRemoved {
        database: &'static str,
        removed: Vec<store_core::orphans::OrphansRemoved>,
    },
    /// Its `auto_vacuum` was turned off by a tool ([`ErrorKind::AutoVacuumOff`]): set back to INCREMENTAL by a
    /// `VACUUM`, which rewrites the file in place, atomically, every row kept; retention gives freed space
    /// back to the disk again.
    AutoVacuumRestored { database: &'static str },
    /// Indexes or triggers of its schema that a tool dropped or changed ([`ErrorKind::SchemaObjectsMissing`]):
    /// created again with the schema's SQL, in one transaction recorded in its `provenance`
    /// ([`store_core::schema_objects`]). Before any recount of the totals, which a missing trigger left behind.
    SchemaObjectsRestored {
        database: &'static str,
        restored: Vec<store_core::schema_objects::SchemaObject>,
    },
    /// Its running totals disagreed with the sessions it holds ([`ErrorKind::TotalsDisagree`]: a session deleted
    /// or changed by a tool with none of this build's triggers, the `sqlite3` shell say): recounted from the
    /// sessions held, from the moment nothing was pruned on, in one transaction recorded in its `provenance`
    /// ([`store_core::OwnerConnection::recount_derived`]).
    TotalsRecounted {
        database: &'static str,
        found: store_core::Disagreement,
    },
    /// Its rows named another file's rows by ids a repair moved since ([`Error::OldIds`]: it was put back
    /// from before that repair): moved to the new ids, as that file records them, in one transaction.
    IdsMoved {
        database: &'static str,
        moved: Vec<store_core::renumber::CaughtUp>,
    },
    /// A table out of ids ([`Error::IdsExhausted`]): its ids from [`FAR_IDS`](store_core::renumber::FAR_IDS)
    /// up given the next free ones, with every reference to them in either file (one transaction per file);
    /// its owner adds rows to it again.
    IdsGiven {
        database: &'static str,
        renumbered: store_core::renumber::Renumbered,
    },
    /// A table out of ids that a database this repair replaces (`being_replaced`: damaged) refers to: left as
    /// it is, to be given smaller ids with the references to them by a repair run once that one is in
    /// place. The command exits non-zero.
    IdsLeft {
        database: &'static str,
        table: String,
        being_replaced: Vec<&'static str>,
    },
    /// Damaged: moved aside, newest good backup restored.
    Restored {
        database: &'static str,
        #[serde(with = "store_core::files::lossy_path::option")]
        quarantined: Option<PathBuf>,
        report: RestoreReport,
    },
    /// Damaged, no good backup, `--allow-empty`: moved aside, started empty (activity.db; config.db only when
    /// nothing of it is left to keep: gone, or a file a salvage reads nothing of).
    StartedEmpty {
        database: &'static str,
        #[serde(with = "store_core::files::lossy_path::option")]
        quarantined: Option<PathBuf>,
    },
    /// Damaged, `--salvage`: every readable row copied (on top of the newest good backup, if any) into a new
    /// file, which was verified and put in place; the damaged file moved aside.
    Salvaged {
        database: &'static str,
        #[serde(with = "store_core::files::lossy_path::option")]
        quarantined: Option<PathBuf>,
        report: SalvageReport,
    },
}

/// How [`repair`] treats a damaged database.
#[derive(Clone, Default)]
pub struct RepairOptions {
    /// With no good backup, start activity.db empty (config.db only when nothing of it is left to keep: gone,
    /// or a file a salvage reads nothing of: [`store_core::salvage::nothing_to_salvage`]). Ignored with
    /// `salvage` where it reads something, as it always keeps what can be read.
    pub allow_empty: bool,
    /// Salvage: copy every row of the damaged file that can still be read into a new file, on top of the
    /// newest good backup when there is one (its rows, with the damaged file's values where it holds them
    /// changed, plus the rows it lacks).
    pub salvage: bool,
    /// Restore the newest good backup even when the damaged file added rows after it was taken (which the
    /// restore leaves out). Without it such a repair is refused (`backup_older`), nothing moved.
    pub accept_older_backup: bool,
    /// Fault injection for drills: runs on each salvage output before it is verified (see
    /// [`SalvageHook`]).
    pub salvage_hook: Option<SalvageHook>,
    /// Fault injection for drills: called at each step of putting the restored and salvaged files in place
    /// (see [`RestoreHook`] and [`store_core::restore::replace_all`]).
    pub place_hook: Option<RestoreHook>,
    /// The key of an encrypted data directory (databases and backups). A database it does not open is
    /// `key_rejected`: repair stops before moving anything.
    pub key: Option<Key>,
    /// How the backup folder's lock is waited for (a command says for whom it waits).
    pub waits: Waits,
}

impl std::fmt::Debug for RepairOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepairOptions")
            .field("allow_empty", &self.allow_empty)
            .field("salvage", &self.salvage)
            .field("salvage_hook", &self.salvage_hook.as_ref().map(|_| "<hook>"))
            .field("place_hook", &self.place_hook.as_ref().map(|_| "<hook>"))
            .field("key", &self.key)
            .field("waits", &self.waits)
            .finish()
    }
}

/// What repair decided for one database before moving anything.
enum Plan {
    Healthy,
    Missing,
    /// Rebuilt without its header ids: written back in place.
    RestoreIds,
    /// Tables out of ids: given smaller ones in place, the file opened at its own version.
    GiveIds,
    /// Rows naming another file's rows by ids a repair moved since ([`Error::OldIds`]): moved to the new ids
    /// in place; then, when tables of its own are out of ids too, given smaller ones as [`Plan::GiveIds`] (one
    /// repair mends both: the file put back from before a repair may have run out again).
    NewIds {
        out_of_ids: bool,
    },
    /// Made whole in place already (its header ids written back, its old ids moved): like a healthy file, it
    /// takes the references to ids a table out of them is given.
    FixedInPlace,
    /// The backup, and the newer ones passed over as damaged.
    Restore(VerifiedBackup, Vec<PathBuf>),
    StartEmpty,
    /// On top of the backup, if any; with notes on the backups not used.
    Salvage(Option<VerifiedBackup>, Vec<String>),
    /// A salvage built and verified at this temporary path, ready to be put in place.
    Built(PathBuf, Box<SalvageReport>),
}

/// The problems of a file that is not damaged that a repair mends in place, in the file's own transactions:
/// rows naming a missing parent, `auto_vacuum` turned off, indexes and triggers dropped, totals that disagree
/// with the sessions (recounted once the trigger that keeps them is back).
const MENDED_IN_PLACE: [ErrorKind; 4] = [
    ErrorKind::ForeignKeyViolations,
    ErrorKind::AutoVacuumOff,
    ErrorKind::SchemaObjectsMissing,
    ErrorKind::TotalsDisagree,
];

/// Whether a problem doctor finds in a file keeps a repair from reading it as this database, for a reason
/// that is not damage: it is another kind of file, a link, of a newer schema or migration history than this
/// build's, or unreadable to this user or where it is.
fn stops_repair(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::WrongDatabase
            | ErrorKind::UnsafePath
            | ErrorKind::SchemaNewer
            | ErrorKind::MigrationChanged
            | ErrorKind::InvalidMigrations
            | ErrorKind::ReadOnlyDirectory
            | ErrorKind::PermissionDenied
            | ErrorKind::AnotherUsersFiles
            | ErrorKind::ReadFailed
            | ErrorKind::Io
            | ErrorKind::Sqlite
    )
}

/// Repairs damaged databases in `data_dir`: a file that is not a database, fails `integrity_check`, or is
/// empty where it held data before, is quarantined (renamed `<name>.corrupt-<time>`, never deleted) and
/// replaced by
/// - with `opts.salvage`: a new file holding every row of it that can still be read, on top of the newest
///   backup in `backup_dir` that verifies, if any ([`store_core::salvage`]); both databases may be salvaged;
/// - otherwise the newest backup in `backup_dir` that verifies (both files at once when both are damaged:
///   all or nothing); with no good backup, activity.db may start empty if `opts.allow_empty`, and
///   config.db (the user's configuration) never does.
///
/// The backups and salvages are put in place together, all or nothing, through the restore's journal
/// ([`store_core::restore::replace_all`]): a repair killed while it moves them is undone by the next start
/// of an owner (or the next repair), every damaged file back in place with its `-wal`, so it can run again.
///
/// Newer backups passed over as damaged are named in what it returns (or in its `backup_older` refusal); a
/// backup it cannot use for another reason (a newer schema, say) stops it, named; one the key does not open is
/// [`Error::BackupKeyMismatch`] unless a salvage or an empty start was asked for (a salvage then says in a
/// note that it went on without it).
///
/// Not damaged, a file rebuilt without its header ids has them written back, rows naming a parent deleted with
/// foreign keys off are removed ([`RepairAction::OrphansRemoved`]), an `auto_vacuum` a tool turned off is set
/// back ([`RepairAction::AutoVacuumRestored`]), indexes and triggers a tool dropped are created again
/// ([`RepairAction::SchemaObjectsRestored`]), running totals that disagree with the sessions held are
/// recounted ([`RepairAction::TotalsRecounted`]), a file naming another's rows by
/// ids a repair moved since has them moved to the new ids ([`RepairAction::IdsMoved`]), and a table out of
/// ids is given smaller ones with every reference to them, in every file ([`RepairAction::IdsGiven`];
/// [`RepairAction::IdsLeft`] when a file that refers to it is damaged), each in place.
///
/// AUTOINCREMENT counters are raised so no id is handed out twice. Refused while either owner runs.
/// Everything is decided, and every salvage built and verified, before anything moves: a repair that
/// cannot finish moves nothing, but for a `-wal` (and `-shm`) of another file ([`Error::OrphanWal`]),
/// moved aside first: the file cannot be checked with it, and it is never used with that file (a repair
/// that stops after it leaves it moved; doctor lists it).
pub fn repair(data_dir: &Path, backup_dir: &Path, opts: &RepairOptions) -> Result<Vec<RepairAction>> {
    // As a restore holds it: no backup is rotated out of the folder while one is chosen and read.
    let _folder = FolderLock::shared_with(&backup_folder_of(backup_dir), &opts.waits)?;
    let locks = take_both_locks(data_dir)?;
    let key = opts.key.as_ref();
    // An encrypted data directory repaired without its key: whatever it put in place (a backup in the clear,
    // a file started empty) would be in the clear beside, or instead of, the user's encrypted files.
    if let Some(e) = key_required(data_dir, key) {
        return Err(e);
    }
    let mut plans = Vec::new();
    // Each file's schema version, to open it at, in place, without migrating it.
    let mut versions = BTreeMap::new();
    let mut actions = Vec::new();
    // What a file that is not damaged has that a write in place mends ([`MENDED_IN_PLACE`]).
    let mut mended_in_place = Vec::new();
    for (schema, lock) in locks {
        let path = schema.path_in(data_dir);
        if let Some(wal) = store_core::restore::set_orphan_wal_aside(&lock, schema)? {
            actions.push(RepairAction::OrphanWalSetAside {
                database: schema.file_name,
                wal,
            });
        }
        // The check a backup and a restore verify with: an index out of step with its table, which
        // `quick_check` does not compare, fails a backup, whose remedy is this repair. Not the `quick_check`
        // of the newest backup doctor adds: a repair acts on no `backup_damaged`, and every backup it would
        // restore or salvage onto is verified with `integrity_check` first (`newest_sound`, which passes
        // over a damaged one), so that check was a second whole read of the same backup (a quarter of a
        // repair's time on a 1 GB activity.db).
        let inspect_opts = InspectOptions {
            check: CheckLevel::Full,
            backup_dir: Some(backup_dir.to_path_buf()),
            key: opts.key.clone(),
            check_newest_backup: false,
            ..InspectOptions::default()
        };
        let health = inspect_owned(&lock, schema, &inspect_opts);
        versions.extend(health.schema_version.map(|v| (schema.file_name, v)));
        mended_in_place.extend(
            health
                .problems
                .iter()
                .filter(|p| MENDED_IN_PLACE.contains(&p.code))
                .map(|p| (schema.file_name, p.code)),
        );
        // A file the key does not open (or that needs one) is not damaged as far as anyone can tell: stop
        // before anything moves, saying so.
        if let Some(p) = health.problems.iter().find(|p| is_key_problem(p.code)) {
            let path = path.clone();
            let schema = Some(schema);
            return Err(match p.code {
                ErrorKind::KeyRequired => Error::KeyRequired { path, schema },
                ErrorKind::NotEncrypted => Error::NotEncrypted { path, schema },
                ErrorKind::EncryptionUnavailable => Error::EncryptionUnavailable { path },
                _ => Error::KeyRejected { path, schema },
            });
        }
        // This database's file rebuilt without its header ids (`sqlite3 .dump`): not damage (nothing is set
        // aside, no backup or salvage merged in, `--salvage` or not), nor another application's. Its ids
        // are written back in place, below, once every file has been looked at.
        if health.problems.iter().any(|p| p.code == ErrorKind::HeaderIdsLost) {
            plans.push((schema, lock, Plan::RestoreIds));
            continue;
        }
        // Unreadable for a reason that is not damage: said as doctor says it, not "healthy" (nor taken for
        // damage, which would set the file aside for a backup of what may not even be this database).
        if let Some(p) = health.problems.iter().find(|p| stops_repair(p.code)) {
            return Err(Error::NotDamage {
                path: path.clone(),
                kind: p.code,
                message: p.message.clone(),
                remedy: p.remedy.clone(),
            });
        }
        let damaged = health.problems.iter().any(|p| {
            matches!(
                p.code,
                ErrorKind::Corrupt | ErrorKind::NotADatabase | ErrorKind::Removed
            )
        });
        // Gone where it held data: its backup is put back as for damage; nothing is left to salvage, and
        // starting it empty (asked for) loses nothing more, config.db's too.
        let removed = health.problems.iter().any(|p| p.code == ErrorKind::Removed);
        let salvage = opts.salvage && !removed;
        let may_start_empty = schema.may_start_empty || removed;
        // Not damaged, but SQLite adds no row to a table whose counter is at the limit: its ids move down in
        // place, below, once every file has been looked at (with those of another file that refers to them).
        let out_of_ids = health.problems.iter().any(|p| p.code == ErrorKind::IdsExhausted);
        let old_ids = health.problems.iter().any(|p| p.code == ErrorKind::OldIds);
        let plan = if !damaged && old_ids && health.schema_version.is_some() {
            Plan::NewIds { out_of_ids }
        } else if !damaged && out_of_ids && health.schema_version.is_some() {
            Plan::GiveIds
        } else if !damaged {
            if health.exists { Plan::Healthy } else { Plan::Missing }
        } else {
            // Only the damaged file's own backups (by lineage): another data directory's in the same folder
            // would put (or, under a salvage, merge) another database's rows into this one.
            let BackupListing {
                backups,
                ignored,
                named_later,
            } = backup::backups_of_file(&path, backup_dir, schema, key, Adopt::OwnOnly)?;
            let holding_more = |instead: Option<&VerifiedBackup>| {
                backup_holding_more(&path, &backups, &named_later, instead, schema, key, true)
            };
            let chosen = newest_sound(&path, &backups, schema, key, true).and_then(|(good, passed_over)| match good {
                Some(_) => Ok((good, passed_over)),
                None => match backup_under_other_key(&path, &ignored, None, schema, key, true) {
                    Some(e) => Err(e),
                    None => Ok((None, passed_over)),
                },
            });
            // With no backup to start from, a salvage of a file it can read nothing of (empty, its schema
            // unreadable) would refuse: said instead, with starting empty, which then loses nothing more.
            let nothing_to_salvage = match &chosen {
                Ok((None, _)) if !removed => store_core::salvage::nothing_to_salvage(&path, schema, key),
                _ => None,
            };
            match chosen {
                // Asked for, a salvage goes on without that backup (said in its notes): it is what the error's
                // remedy offers besides bringing the backup under the key. So does starting empty, asked for
                // knowing the backups are there (their key may be lost).
                Err(e @ Error::BackupKeyMismatch { .. }) if salvage => {
                    Plan::Salvage(None, vec![format!("not used: {}", e.what())])
                }
                Err(Error::BackupKeyMismatch { .. }) if opts.allow_empty && may_start_empty => Plan::StartEmpty,
                Err(e) => return Err(e),
                Ok((good, passed_over)) if salvage && nothing_to_salvage.is_none() => {
                    let mut notes: Vec<String> = store_core::restore::passed_over_said(&passed_over)
                        .into_iter()
                        .collect();
                    notes.extend(holding_more(good.as_ref()).map(|e| format!("not used: {}", e.what())));
                    let newer_elsewhere = good
                        .as_ref()
                        .and_then(|g| backup_under_other_key(&path, &ignored, Some(g), schema, key, true));
                    notes.extend(newer_elsewhere.map(|e| format!("not used: {}", e.what())));
                    Plan::Salvage(good, notes)
                }
                Ok((Some(b), passed_over)) => {
                    // Another backup with rows this one lacks, named by a clock that was wrong: this one is
                    // older than its name says.
                    if let Some(e) = holding_more(Some(&b))
                        .or_else(|| backup_under_other_key(&path, &ignored, Some(&b), schema, key, true))
                    {
                        return Err(e);
                    }
                    // The damaged file is newer than its backup: restoring would drop rows that a salvage
                    // can still read. Said before anything moves, not found out after.
                    let added = rows_added_since(&path, &b, key);
                    // Damage that hides the counters themselves hides what was added: a file written after
                    // the backup is not taken to have added nothing. (A file that is no database at all has
                    // nothing a salvage reads.)
                    let corrupt = health.problems.iter().any(|p| p.code == ErrorKind::Corrupt);
                    let added = match backups.iter().find(|f| f.path == b.path()) {
                        Some(f) if added.is_empty() && corrupt => written_since_uncounted(&path, f.taken_at, key)
                            .map(|last_written| AddedSince::Uncounted { last_written }),
                        _ => (!added.is_empty()).then_some(AddedSince::Counted(added)),
                    };
                    if let Some(added) = added
                        && !opts.accept_older_backup
                    {
                        return Err(Error::BackupOlder {
                            path,
                            backup: b.path().to_path_buf(),
                            passed_over,
                            added,
                            schema,
                        });
                    }
                    Plan::Restore(b, passed_over)
                }
                Ok((None, _)) if opts.allow_empty && (may_start_empty || nothing_to_salvage.is_some()) => {
                    Plan::StartEmpty
                }
                Ok((None, _)) => {
                    return Err(holding_more(None).unwrap_or_else(|| Error::NoBackup {
                        path: path.clone(),
                        backup_dir: backup_dir.to_path_buf(),
                        quarantined: None,
                        removed,
                        nothing_to_salvage,
                        restoring: false,
                        schema,
                    }));
                }
            }
        };
        plans.push((schema, lock, plan));
    }

    // Header ids written back, rows naming a missing parent removed, `auto_vacuum` set back, old ids moved to
    // the new, and ids given to tables out of them, each in place and on its own (the file whole before and
    // after), before any salvage is built or file moved: one that fails stops the repair there. Its lock stays
    // held to the end. A file made whole here stays in the plans (`FixedInPlace`): ids given to a table below
    // move its references too.
    let mut fixed_in_place = Vec::new();
    for (schema, lock, plan) in std::mem::take(&mut plans) {
        let (lock, plan) = match plan {
            Plan::RestoreIds => {
                let (written, lock) = restore_header_ids(lock, schema, key)?;
                actions.push(RepairAction::HeaderIdsRestored {
                    database: schema.file_name,
                    version: written.version,
                    lowered_from: written.lowered_from,
                });
                versions.insert(schema.file_name, written.version);
                (lock, Plan::FixedInPlace)
            }
            plan => (lock, plan),
        };
        // A damaged file is not written in place: its backup or salvage takes its place (a salvage keeps no
        // row naming a missing parent, and is created with the schema's `auto_vacuum`).
        let version = versions.get(schema.file_name).copied();
        let mends = |kind| mended_in_place.contains(&(schema.file_name, kind));
        let (lock, plan) = match (plan, version) {
            (plan @ (Plan::Healthy | Plan::FixedInPlace | Plan::NewIds { .. } | Plan::GiveIds), Some(version))
                if MENDED_IN_PLACE.iter().any(|&kind| mends(kind)) =>
            {
                let mut owner = open_in_place(lock, schema, version, key)?;
                if mends(ErrorKind::ForeignKeyViolations) {
                    let removed = owner.remove_orphans()?;
                    actions.push(RepairAction::OrphansRemoved {
                        database: schema.file_name,
                        removed,
                    });
                }
                if mends(ErrorKind::AutoVacuumOff) {
                    owner.restore_auto_vacuum()?;
                    actions.push(RepairAction::AutoVacuumRestored {
                        database: schema.file_name,
                    });
                }
                if mends(ErrorKind::SchemaObjectsMissing) {
                    let restored = owner.restore_schema_objects()?;
                    actions.push(RepairAction::SchemaObjectsRestored {
                        database: schema.file_name,
                        restored,
                    });
                }
                if mends(ErrorKind::TotalsDisagree)
                    && let Some(found) = owner.recount_derived()?
                {
                    actions.push(RepairAction::TotalsRecounted {
                        database: schema.file_name,
                        found,
                    });
                }
                let plan = match plan {
                    Plan::Healthy => Plan::FixedInPlace,
                    plan => plan,
                };
                (owner.into_lock(), plan)
            }
            (plan, _) => (lock, plan),
        };
        match plan {
            Plan::NewIds { out_of_ids } => {
                let version = versions[schema.file_name];
                let mut owner = open_in_place(lock, schema, version, key)?;
                let moves = store_core::renumber::moves_recorded_beside(owner.path(), schema, key);
                let moved = owner.write(|tx| store_core::renumber::catch_up(tx, schema, &moves))?;
                actions.push(RepairAction::IdsMoved {
                    database: schema.file_name,
                    moved,
                });
                let next = if out_of_ids { Plan::GiveIds } else { Plan::FixedInPlace };
                plans.push((schema, owner.into_lock(), next));
            }
            plan => plans.push((schema, lock, plan)),
        }
    }
    if plans.iter().any(|(_, _, plan)| matches!(plan, Plan::GiveIds)) {
        let (given, left, fixed) = give_ids(plans, &versions, key)?;
        actions.extend(given);
        plans = left;
        fixed_in_place.extend(fixed);
    }

    // Build every salvage beside its database while the damaged file is still in place (read-only; the
    // locks prove nobody writes it). Any failure removes what was built and moves nothing.
    let salvage_opts = SalvageOptions {
        before_verify: opts.salvage_hook.clone(),
        key: opts.key.clone(),
        ..SalvageOptions::default()
    };
    for i in 0..plans.len() {
        let (schema, lock, plan) = &plans[i];
        let Plan::Salvage(base, notes) = plan else { continue };
        let temp = salvage::temp_path(lock.db_path());
        // Left by a salvage that was killed: ours (the lock is held), never the user's data.
        salvage::discard(&temp);
        match salvage::salvage_with(lock.db_path(), schema, base.as_ref(), &temp, &salvage_opts) {
            Ok(mut report) => {
                report.notes.extend(notes.iter().cloned());
                plans[i].2 = Plan::Built(temp, Box::new(report));
            }
            Err(e) => {
                for (_, _, plan) in &plans {
                    if let Plan::Built(temp, _) = plan {
                        salvage::discard(temp);
                    }
                }
                return Err(e);
            }
        }
    }

    // What each salvage will put in place of its database: a file the others' counters are raised past too.
    let salvaged: Vec<(&'static str, PathBuf)> = plans
        .iter()
        .filter_map(|(schema, _, plan)| match plan {
            Plan::Built(temp, _) => Some((schema.file_name, temp.clone())),
            _ => None,
        })
        .collect();
    let mut replacements = Vec::new();
    let mut passed_over_damaged = Vec::new();
    for (schema, lock, plan) in plans {
        let database = schema.file_name;
        match plan {
            Plan::Healthy => actions.push(RepairAction::Healthy { database }),
            Plan::FixedInPlace => fixed_in_place.push(lock),
            // Done above.
            Plan::RestoreIds | Plan::GiveIds | Plan::NewIds { .. } => {}
            Plan::Missing => actions.push(RepairAction::Missing { database }),
            Plan::Built(built, report) => replacements.push(Replacement::Salvage(BuiltSalvage {
                schema,
                id_floors: referenced_ids_in(data_dir, schema, key, &salvaged),
                moves_recorded: ids_moved_in(data_dir, schema, key, &salvaged),
                lock,
                built,
                report: *report,
            })),
            Plan::Restore(backup, passed_over) => {
                replacements.push(Replacement::Backup(Placement {
                    schema,
                    id_floors: referenced_ids_in(data_dir, schema, key, &salvaged),
                    moves_recorded: ids_moved_in(data_dir, schema, key, &salvaged),
                    lock,
                    backup,
                }));
                passed_over_damaged.push((database, passed_over));
            }
            Plan::StartEmpty => replacements.push(Replacement::Empty(EmptyStart {
                schema,
                id_floors: referenced_ids_in(data_dir, schema, key, &salvaged),
                lock,
            })),
            // Every salvage plan became `Built` above (or repair returned).
            Plan::Salvage(..) => {}
        }
    }
    // The damaged files move aside as `.corrupt-<time>` and their backups and salvages take their place,
    // together, through the restore's journal: all or nothing, and a kill before its commit is undone by the
    // next start (or repair), the damaged files back in place.
    let (placed, _locks) = replace_all(
        replacements,
        "corrupt",
        opts.place_hook.as_ref(),
        key,
        store_core::restore::RESTORE_EVENT,
    )?;
    for placed in placed {
        actions.push(match placed {
            Placed::Restored(mut report) => {
                if let Some((_, passed_over)) = passed_over_damaged.iter_mut().find(|(db, _)| *db == report.database) {
                    report.passed_over_damaged = std::mem::take(passed_over);
                }
                RepairAction::Restored {
                    database: report.database,
                    quarantined: report.moved_aside.clone(),
                    report,
                }
            }
            Placed::Salvaged { quarantined, report } => RepairAction::Salvaged {
                database: report.database,
                quarantined,
                report,
            },
            Placed::StartedEmpty { database, quarantined } => RepairAction::StartedEmpty { database, quarantined },
        });
    }
    // Reported in the order of the data directory's databases, whatever was done to each.
    actions.sort_by_key(|a| DATABASES.iter().position(|s| s.file_name == a.database()));
    Ok(actions)
}

/// `lock`'s file opened as its owner at `version`, its own: a repair that fixes a file in place migrates
/// nothing.
fn open_in_place(lock: OwnerLock, schema: &'static Schema, version: u32, key: Option<&Key>) -> Result<OwnerConnection> {
    let opts = OpenOptions {
        target_version: Some(version),
        key: key.cloned(),
        ..OpenOptions::default()
    };
    OwnerConnection::open_locked(lock, schema, &opts)
}

/// Writes back the header ids of `lock`'s file, rebuilt without them
/// ([`store_core::open_database::restore_header_ids`]), then verifies it: `quick_check`, and the open of its
/// owner, at the version written (its owner's next start migrates it, with a backup first, when older than
/// this build). Gives the version and the lock back.
fn restore_header_ids(
    lock: OwnerLock,
    schema: &'static Schema,
    key: Option<&Key>,
) -> Result<(store_core::open_database::HeaderIdsWritten, OwnerLock)> {
    let path = lock.db_path().to_path_buf();
    let Some(written) = store_core::open_database::restore_header_ids(&lock, schema, key)? else {
        return Err(Error::VerificationFailed {
            path,
            detail: "its header ids were there when repair came to write them back: nothing was written".into(),
        });
    };
    let owner = open_in_place(lock, schema, written.version, key)?;
    let problems = owner.read(store_core::check::quick_check)?;
    if !problems.is_empty() {
        return Err(Error::VerificationFailed {
            path,
            detail: format!(
                "quick_check after its header ids were written back found: {}",
                problems.join("; ")
            ),
        });
    }
    Ok((written, owner.into_lock()))
}

/// What [`give_ids`] holds of a database: its lock, or its file opened as its owner.
enum Held {
    Lock(OwnerLock),
    Open(Box<OwnerConnection>),
}

/// A database, its lock, and what repair decided for it.
type Planned = (&'static Schema, OwnerLock, Plan);

/// Gives every table out of ids of the databases planned [`Plan::GiveIds`] smaller ones
/// ([`store_core::renumber::give_smaller_ids`]), with the references to them in every database that refers to
/// it: the healthy ones and those given ids, each opened as its owner at the version of its file (a repair
/// migrates nothing). A table a database about to be replaced refers to (damaged, restored or salvaged below)
/// is left ([`RepairAction::IdsLeft`]): its references are moved once it is repaired, by a repair run again.
/// Returns the actions, the plans left to carry out (the healthy ones), and the locks of the databases given
/// ids (held to the end).
fn give_ids(
    plans: Vec<Planned>,
    versions: &BTreeMap<&'static str, u32>,
    key: Option<&Key>,
) -> Result<(Vec<RepairAction>, Vec<Planned>, Vec<OwnerLock>)> {
    let giving: Vec<&str> = plans
        .iter()
        .filter(|(_, _, plan)| matches!(plan, Plan::GiveIds))
        .map(|(schema, _, _)| schema.file_name)
        .collect();
    // A healthy database is opened only when its rows may name ids of a database given ids.
    let names_ids_of_giving = |schema: &Schema| {
        schema
            .id_references
            .iter()
            .any(|r| r.target_file != schema.file_name && giving.contains(&r.target_file))
    };
    let mut slots = Vec::new();
    for (schema, lock, plan) in plans {
        let held = match (&plan, versions.get(schema.file_name)) {
            (Plan::GiveIds, Some(version)) => Held::Open(Box::new(open_in_place(lock, schema, *version, key)?)),
            (Plan::Healthy | Plan::FixedInPlace, Some(version)) if names_ids_of_giving(schema) => {
                Held::Open(Box::new(open_in_place(lock, schema, *version, key)?))
            }
            _ => Held::Lock(lock),
        };
        slots.push((schema, held, plan));
    }
    let mut actions = Vec::new();
    for i in 0..slots.len() {
        let (schema, _, Plan::GiveIds) = &slots[i] else {
            continue;
        };
        let (schema, database) = (*schema, schema.file_name);
        let Held::Open(owner) = &slots[i].1 else { continue };
        for table in owner.read(store_core::restore::tables_out_of_ids)? {
            let refers = |other: &Schema| {
                !std::ptr::eq(other, schema)
                    && other
                        .id_references
                        .iter()
                        .any(|r| r.target_file == database && r.target_table == table)
            };
            let being_replaced: Vec<&'static str> = slots
                .iter()
                .filter(|(other, held, plan)| {
                    refers(other) && matches!(held, Held::Lock(_)) && !matches!(plan, Plan::Missing)
                })
                .map(|(other, _, _)| other.file_name)
                .collect();
            if !being_replaced.is_empty() {
                actions.push(RepairAction::IdsLeft {
                    database,
                    table,
                    being_replaced,
                });
                continue;
            }
            let (before, rest) = slots.split_at_mut(i);
            let Some(((_, Held::Open(owner), _), after)) = rest.split_first_mut() else {
                continue;
            };
            let mut others: Vec<&mut OwnerConnection> = before
                .iter_mut()
                .chain(after.iter_mut())
                .filter(|(other, _, _)| refers(other))
                .filter_map(|(_, held, _)| match held {
                    Held::Open(conn) => Some(&mut **conn),
                    Held::Lock(_) => None,
                })
                .collect();
            let renumbered = store_core::renumber::give_smaller_ids(owner, &table, &mut others)?;
            actions.push(RepairAction::IdsGiven { database, renumbered });
        }
    }
    let (mut left, mut fixed) = (Vec::new(), Vec::new());
    for (schema, held, plan) in slots {
        let lock = match held {
            Held::Open(owner) => owner.into_lock(),
            Held::Lock(lock) => lock,
        };
        match plan {
            Plan::GiveIds => fixed.push(lock),
            plan => left.push((schema, lock, plan)),
        }
    }
    Ok((actions, left, fixed))
}

impl RepairAction {
    /// The database it is about.
    pub fn database(&self) -> &'static str {
        match self {
            RepairAction::OrphanWalSetAside { database, .. }
            | RepairAction::Healthy { database }
            | RepairAction::HeaderIdsRestored { database, .. }
            | RepairAction::IdsGiven { database, .. }
            | RepairAction::IdsLeft { database, .. }
            | RepairAction::IdsMoved { database, .. }
            | RepairAction::Missing { database }
            | RepairAction::OrphansRemoved { database, .. }
            | RepairAction::AutoVacuumRestored { database }
            | RepairAction::TotalsRecounted { database, .. }
            | RepairAction::SchemaObjectsRestored { database, .. }
            | RepairAction::Restored { database, .. }
            | RepairAction::StartedEmpty { database, .. }
            | RepairAction::Salvaged { database, .. } => database,
        }
    }
}

/// The problems that are about the key, not the file: a wrong key, a missing one, a key for a plaintext file,
/// a key on a build without encryption. Never damage: nothing is moved aside for them.
pub fn is_key_problem(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::KeyRejected | ErrorKind::KeyRequired | ErrorKind::NotEncrypted | ErrorKind::EncryptionUnavailable
    )
}

/// What [`rekey`] did to one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    pub database: &'static str,
    #[serde(with = "store_core::files::lossy_path")]
    pub path: PathBuf,
    /// Where the file under the old key (or in the clear) was moved: kept, never deleted, until `cleanup`
    /// (`None` when it was [`already`](Self::already) under the new key).
    #[serde(with = "store_core::files::lossy_path::option")]
    pub previous: Option<PathBuf>,
    /// Rows per table, the same before and after (checked).
    pub rows: u64,
    /// The file was already under the new key (by an earlier rotation, interrupted while it re-keyed the
    /// backups, or a backup under the old key put back since): left as it was, only its backups re-keyed.
    pub already: bool,
    /// Its own backups in its backup folder and the folders named (pre-migration ones included) now under
    /// the new key (or in the clear), each replaced whole once its copy was checked.
    #[serde(with = "store_core::files::lossy_path::vec")]
    pub backups: Vec<PathBuf>,
    /// Its own backups that stay under the old key (or in the clear), with what kept each (a damaged one,
    /// say).
    pub backups_left: Vec<BackupLeft>,
}

/// A backup [`rekey`] left as it was, and what is wrong with it (the problem, without a remedy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupLeft {
    #[serde(with = "store_core::files::lossy_path")]
    pub path: PathBuf,
    pub reason: String,
}

/// The step [`rekey`] is about to take, for telling the operator how far it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyStep<'a> {
    /// A database is checked, then copied under the new key (or in the clear) and the copy checked, before
    /// anything is put in place.
    Database { path: &'a Path, bytes: u64 },
    /// Both are in place: one of their backups is checked and replaced by a copy under the new key, the
    /// `number`th of `count`.
    Backup {
        path: &'a Path,
        bytes: u64,
        number: usize,
        count: usize,
    },
}

/// The size of the file at `path` in bytes (0 when it cannot be read: only said, never relied on).
fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Suffix of the copy a key rotation builds beside each database before anything is put in place.
pub const REKEY_SUFFIX: &str = ".rekeying";
/// The tag of the files a key rotation moves aside (`<db>.rekeyed-<time>`).
pub const REKEYED_TAG: &str = "rekeyed";

/// Changes the key of both databases of `data_dir` from `old` to `new` (`old` `None`: a plaintext data
/// directory is encrypted; `new` `None`: it is decrypted). Refused while either owner runs. All or nothing:
/// 1. for each database, a copy is made beside it (`<db>.rekeying`): with both keys, a page-exact online
///    backup under the old key, then `PRAGMA rekey` on the copy; otherwise `sqlcipher_export` into a copy
///    under the new key (or none);
/// 2. each copy is verified under the new key (`integrity_check`, kind, schema version and the row count of
///    every table equal to the original's) before anything moves;
/// 3. both copies are put in place together the way a restore is ([`store_core::restore::place_all`]:
///    journal, moves, commit; a failure or a kill puts everything back as it was), the files under the old
///    key moving aside as `<db>.rekeyed-<time>` (never deleted; `cleanup` removes them);
/// 4. with the locks still held, each file's own backups in its backup folder (pre-migration ones included)
///    and in the folders `elsewhere` (where `backup --to` put them) that the old key opens are re-keyed one
///    by one the same way, each replaced whole by its checked copy ([`RekeyReport::backups`]); one that
///    fails stays as it was ([`RekeyReport::backups_left`]) and does not undo the rest. Run again (after a
///    kill in this step, once a backup under `old` is put back, or with another folder named), the same call
///    finds the files already under `new`, leaves them ([`RekeyReport::already`]) and re-keys the backups
///    `old` opens: the one command a restore's or a repair's remedy names for a backup under another key.
///    With nothing left that `old` opens, it is done when the file the last rotation moved aside opens with
///    `old` (every report [`already`](RekeyReport::already), no backups).
///
/// A wrong `old` key is `key_rejected` and changes nothing; with the files already under `new`, it is
/// [`Error::AlreadyUnderNewKey`] (of that kind): the two keys may have been given the other way round. A
/// `-wal` beside either file left by a crash of another file ([`Error::OrphanWal`]) is refused before
/// anything is read, as every open refuses it, and changes nothing: its remedy is `repair`'s. A
/// folder of `elsewhere` that cannot be read is refused too, before anything changes. Another file's backups
/// in those folders, and backups kept in folders not named, stay under the key they were taken with: a
/// restore or repair that comes to one names it ([`Error::BackupKeyMismatch`]) with the way to bring it under
/// the new key.
///
/// `progress` is told of each file before it is checked and copied (seconds per gigabyte, each: a rotation
/// with several backups of a large file takes minutes). Its backup folders are waited for as `waits` says.
pub fn rekey(
    data_dir: &Path,
    old: Option<&Key>,
    new: Option<&Key>,
    elsewhere: &[PathBuf],
    progress: &mut dyn FnMut(RekeyStep<'_>),
    waits: &Waits,
) -> Result<Vec<RekeyReport>> {
    if !store_core::encryption_available() {
        return Err(Error::EncryptionUnavailable {
            path: data_dir.to_path_buf(),
        });
    }
    // A folder named by mistake (a typo, a drive not mounted) is said, not taken for one without backups.
    for dir in elsewhere {
        std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read the backup folder", e))?;
    }
    let locks = take_both_locks(data_dir)?;
    let folders: Vec<PathBuf> = backup::backup_folders(&DATABASES[0].path_in(data_dir), elsewhere)
        .into_iter()
        .filter(|dir| dir.is_dir())
        .collect();
    // Each file and backup is re-keyed into a copy renamed over it: refused before any copy is made.
    for dir in std::iter::once(data_dir).chain(folders.iter().map(PathBuf::as_path)) {
        files::ensure_entries_can_move(dir)?;
    }
    // Every backup folder it re-keys in, held as a backup holds it until the end: no backup is named, rotated
    // or restored there while its backups are replaced one by one.
    let _folders = folders
        .iter()
        .map(|dir| FolderLock::exclusive_with(dir, waits))
        .collect::<Result<Vec<_>>>()?;
    // Checked for both files first: the copy's read of a file would take the -wal of another as damage (or
    // skip a file removed after a crash), and rotate the other file alone.
    if let Some(orphan) = locks
        .iter()
        .find_map(|(schema, lock)| store_core::records::orphan_wal(lock.db_path(), schema))
    {
        return Err(orphan);
    }
    // Every copy is built and verified before anything moves; any failure removes them all.
    let mut built: Vec<Rekeyed> = Vec::new();
    let discard = |built: &[Rekeyed]| {
        for r in built {
            let _ = files::remove_with_sidecars(&r.copy);
        }
    };
    // Files a rotation to this key already put in place (one interrupted while it re-keyed the backups, which
    // the old key still opens): the same command finishes it, their backups re-keyed, the files left as they
    // are.
    let mut rotated: Vec<(&'static Schema, OwnerLock, u64, Vec<PathBuf>)> = Vec::new();
    let mut refused = None;
    for (schema, lock) in locks {
        let path = schema.path_in(data_dir);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let copy = files::with_suffix(&path, REKEY_SUFFIX);
        // A copy left by a killed rotation is ours (the lock is held), never the user's data.
        files::remove_with_sidecars(&copy)?;
        progress(RekeyStep::Database {
            path: &path,
            bytes: size_of(&path),
        });
        match rekeyed_copy(&path, schema, &copy, old, new) {
            Ok((backup, rows)) => built.push(Rekeyed {
                placement: Placement {
                    schema,
                    lock,
                    backup,
                    id_floors: Vec::new(),
                    // The copy is of the file itself: it records what the file records.
                    moves_recorded: Vec::new(),
                },
                copy,
                rows,
                backups: own_backups(&path, schema, old, old, elsewhere),
            }),
            Err(e) => {
                let _ = files::remove_with_sidecars(&copy);
                let under_new = key_mismatch(e.kind())
                    .and_then(|_| open_read_only(&path, schema, new).ok())
                    .and_then(|c| store_core::check::row_counts(&c).ok());
                match under_new {
                    Some(rows) => {
                        rotated.push((
                            schema,
                            lock,
                            rows.values().sum(),
                            own_backups(&path, schema, new, old, elsewhere),
                        ));
                        refused.get_or_insert(e);
                    }
                    None => {
                        discard(&built);
                        return Err(e);
                    }
                }
            }
        }
    }
    // Files under the new key with no backup left under the old one: nothing to finish. A rotation from the
    // old key given is done (run again, or killed after its last step) when the file it moved aside opens with
    // that key; otherwise refused: the keys may be the other way round (the files are under the one given as
    // new), and a rotation said done would have the user set aside the one key that opens them.
    if let Some(e) = refused
        && built.is_empty()
        && rotated.iter().all(|(_, _, _, own)| own.is_empty())
        && let Some((schema, ..)) = rotated
            .iter()
            .find(|(schema, ..)| !last_rotated_from(&schema.path_in(data_dir), schema, old))
    {
        return Err(Error::AlreadyUnderNewKey {
            path: schema.path_in(data_dir),
            found: e.kind(),
            schema,
        });
    }
    if built.is_empty() && rotated.is_empty() {
        let schema = DATABASES[0];
        return Err(Error::Missing {
            path: schema.path_in(data_dir),
            schema,
        });
    }
    let copies: Vec<PathBuf> = built.iter().map(|r| r.copy.clone()).collect();
    let mut to_rekey: Vec<(&'static Schema, u64, Vec<PathBuf>)> = Vec::new();
    let placements = built
        .into_iter()
        .map(|r| {
            to_rekey.push((r.placement.schema, r.rows, r.backups));
            r.placement
        })
        .collect();
    let placed = store_core::restore::place_all(placements, REKEYED_TAG, None, new, "rekey");
    for copy in &copies {
        let _ = files::remove_with_sidecars(copy);
    }
    // The locks (these and the rotated files') stay held while the backups are re-keyed: no backup of either
    // file is taken or rotated away meanwhile.
    let (placed, _locks) = placed?;
    let report = |schema: &'static Schema, path, previous, rows, already| RekeyReport {
        database: schema.file_name,
        path,
        previous,
        rows,
        already,
        backups: Vec::new(),
        backups_left: Vec::new(),
    };
    // Each file's report, and its own backups still to re-key.
    let mut done: Vec<(&'static Schema, RekeyReport, Vec<PathBuf>)> = placed
        .into_iter()
        .map(|r| {
            let at = to_rekey
                .iter()
                .position(|(schema, _, _)| schema.file_name == r.database)
                .expect("a report per placement");
            let (schema, rows, own) = to_rekey.swap_remove(at);
            (schema, report(schema, r.path, r.moved_aside, rows, false), own)
        })
        .collect();
    let mut rotated_locks = Vec::new();
    for (schema, lock, rows, own) in rotated {
        done.push((schema, report(schema, schema.path_in(data_dir), None, rows, true), own));
        rotated_locks.push(lock);
    }
    done.sort_by_key(|(schema, _, _)| DATABASES.iter().position(|s| std::ptr::eq(*s, *schema)));
    // One by one, each replaced whole: a failure or a kill leaves that backup as it was (a partial file at
    // most, which `doctor` lists and the next rotation or backup into the folder removes) and the others
    // re-keyed.
    let count = done.iter().map(|(_, _, own)| own.len()).sum();
    let mut number = 0;
    let mut reports = Vec::new();
    for (schema, mut report, own) in done {
        for path in own {
            number += 1;
            progress(RekeyStep::Backup {
                path: &path,
                bytes: size_of(&path),
                number,
                count,
            });
            match rekey_backup(&path, schema, old, new) {
                Ok(()) => report.backups.push(path),
                // What is wrong only: the error's remedy is for a database in place, not for a backup.
                Err(e) => report.backups_left.push(BackupLeft { path, reason: e.what() }),
            }
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Whether the file the last key rotation of the database at `path` moved aside (the newest
/// `<db>.rekeyed-<time>`, kept until `cleanup`) opens with `old`: that rotation was from `old`.
fn last_rotated_from(path: &Path, schema: &'static Schema, old: Option<&Key>) -> bool {
    let prefix = format!("{}.{REKEYED_TAG}-", schema.file_name);
    let folder = files::parent_dir(path);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return false;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.starts_with(&prefix) && !files::SIDECAR_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
        })
        // `<time>` sorts as text (`files::name_timestamp`).
        .max()
        .is_some_and(|newest| open_read_only(&folder.join(newest), schema, old).is_ok())
}

/// The backups of the database at `path` in its backup folder and the folders `elsewhere` (pre-migration
/// ones included) that `old` opens, by the lineage the file records (read with `key`, the file's: `old`, or
/// `new` when a rotation is being finished): another file's backups in a folder are not this rotation's to
/// change.
fn own_backups(
    path: &Path,
    schema: &'static Schema,
    key: Option<&Key>,
    old: Option<&Key>,
    elsewhere: &[PathBuf],
) -> Vec<PathBuf> {
    let lineage = store_core::provenance::lineage_of(path, key);
    let mut own = Vec::new();
    for backup_dir in backup::backup_folders(path, elsewhere) {
        let listing = backup::all_backups(&backup_dir, schema, old);
        own.extend(
            backup::backups_for(
                listing.backups,
                lineage.as_deref(),
                Adopt::OwnOnly,
                path,
                &backup_dir,
                schema,
            )
            .map(|own| own.into_iter().map(|b| b.path).collect::<Vec<_>>())
            .unwrap_or_default(),
        );
    }
    own
}

/// A database's copy under the new key, built before anything is put in place, and its own backups.
struct Rekeyed {
    placement: Placement,
    copy: PathBuf,
    rows: u64,
    backups: Vec<PathBuf>,
}

/// Replaces the backup at `path` with a copy under the `new` key (or in the clear): [`rekeyed_backup_at`]
/// the same path.
fn rekey_backup(path: &Path, schema: &'static Schema, old: Option<&Key>, new: Option<&Key>) -> Result<()> {
    rekeyed_backup_at(path, path, schema, old, new)
}

/// Puts at `dest` a copy of the backup at `source` under the `new` key (or in the clear), built as a backup's
/// partial file in `dest`'s folder and checked as the database's copy is. The copy keeps the backup's
/// modification time: an earlier build's backup, which records no time inside, is dated by it.
fn rekeyed_backup_at(
    source: &Path,
    dest: &Path,
    schema: &'static Schema,
    old: Option<&Key>,
    new: Option<&Key>,
) -> Result<()> {
    let folder = files::parent_dir(dest);
    // Written into, so refused through a link as a backup is (the link may lead anywhere).
    files::refuse_symlink(folder)?;
    backup::remove_stale_partials(folder, schema.stem());
    let partial = backup::partial_path(folder, schema, chrono::Utc::now());
    let placed = rekeyed_copy(source, schema, &partial, old, new).and_then(|_| {
        let modified = std::fs::metadata(source)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(source, "read the modification time of", e))?;
        std::fs::File::options()
            .write(true)
            .open(&partial)
            .and_then(|f| f.set_modified(modified))
            .map_err(|e| Error::io(&partial, "set the modification time of", e))?;
        files::rename_durably(&partial, dest)
    });
    if placed.is_err() {
        let _ = files::remove_with_sidecars(&partial);
    }
    placed
}

/// Builds `copy`, the database at `path` under the `new` key, and checks it holds what the original holds
/// and verifies as a backup would. Returns it verified, with the rows it holds.
fn rekeyed_copy(
    path: &Path,
    schema: &'static Schema,
    copy: &Path,
    old: Option<&Key>,
    new: Option<&Key>,
) -> Result<(VerifiedBackup, u64)> {
    // The original is sound, this kind, and opens with the old key (a wrong one is `key_rejected`).
    verify_backup(path, schema, old)?;
    let source = open_read_only(path, schema, old)?;
    let before = store_core::check::row_counts(&source).map_err(|e| Error::from_sqlite(path, e))?;
    match (old, new) {
        (Some(old), Some(new)) => {
            drop(files::create_private_new(copy)?);
            let out = backup::snapshot_into(&source, path, copy, Some(old))?;
            // A copy of a WAL database is marked WAL; rekey it as a single file.
            out.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
                .map_err(|e| Error::from_sqlite(copy, e))?;
            store_core::key::rekey(&out, copy, new)?;
            out.close().map_err(|(_, e)| Error::from_sqlite(copy, e))?;
            drop(source);
        }
        (old, new) => {
            drop(source);
            drop(files::create_private_new(copy)?);
            store_core::key::export(path, old, copy, new)?;
        }
    }
    files::sync_file(copy)?;
    let after = open_read_only(copy, schema, new)
        .and_then(|check| store_core::check::row_counts(&check).map_err(|e| Error::from_sqlite(copy, e)))?;
    if after != before {
        return Err(Error::VerificationFailed {
            path: copy.to_path_buf(),
            detail: format!("the rows per table differ: {before:?} before, {after:?} after"),
        });
    }
    // Sound, this kind and at the original's version under the new key: the check a restore makes of a backup.
    // Damage found in the copy is the copy's, removed by the caller: not the user's file to repair.
    let verified = verify_backup(copy, schema, new).map_err(|e| match e {
        Error::Corrupt { path, detail, .. } => Error::VerificationFailed { path, detail },
        e => e,
    })?;
    Ok((verified, after.values().sum()))
}
