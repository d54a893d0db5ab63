//! What an owner leaves in the data directory's private folder about its opens, for whoever looks while it
//! is not running:
//! - `<file>.opened`: the first successful open of this file. It tells a database that existed (and was
//!   then emptied by a cut-short copy or sync) from a new install: a 0-byte file is new only when nothing
//!   shows it existed before.
//! - `<file>.failure.json`: the last failed open, as the error's banner (no secrets: banners never hold
//!   settings values), so an app can show why its daemon is down while it is down. Or what stopped a running
//!   owner's writes until an owner starts again (`ownership_lost`, `shared_memory_replaced`: [`note_stopped`]):
//!   that owner still holds the lock, so nothing else tells another process (the server's banner, doctor) that
//!   it records nothing. The next successful open removes it.
//!
//! - `<file>.damage.json`: the first damage (`corrupt`, `not_a_database`) the owner met while using the file,
//!   as the error's banner. An open does not look at every page, so a damaged page is met by whatever first
//!   reads it, perhaps long after the open: without this record a process that stops on it starts again
//!   cleanly, meets it again, and nobody looking while it is down sees why. Opens leave it (an open proves
//!   nothing about that page); it goes when a restore or repair puts another file in place, and it names the
//!   file's inode, so a file put at that path by hand is not taken for the damaged one.
//!
//! - `<file>.wal-<device>-<inode>-<created>.json`: the file whose `-wal` that one is, recorded by its owner at
//!   each open (the file's device, inode and creation time). After a crash the `-wal` still holds the last
//!   commits, and only its own file can take them: SQLite keeps nothing in either file that says they belong
//!   together (<https://sqlite.org/howtocorrupt.html#_mispairing_database_files_and_hot_journals>), so a copy
//!   put in the file's place by hand would be opened with the other file's pages ([`orphan_wal`]). The
//!   record is named by the `-wal` it is about, so that a folder put back from a copy of the user's own
//!   (whose private folder holds the record of an older `-wal`) does not replace the record of the `-wal` a
//!   crash left. An owner forgets it when it empties its `-wal` at a clean stop, so one still there whose
//!   `-wal` is gone tells a crash's `-wal` removed by hand ([`wal_gone`]).
//!
//! - `<file>.counters.json`: the highest id each AUTOINCREMENT counter of the file has handed out, kept by an
//!   owner whose store asks for it ([`OwnerConnection::keep_counters`](crate::OwnerConnection::keep_counters)),
//!   at its open and after each write that moved one. Other files refer to those ids (activity.db's sessions
//!   name config.db's projects), so one handed out twice would join their rows to another; the file itself
//!   forgets them when it goes back (a copy put back by hand, its last commits lost in a power loss, a file
//!   created anew), and the files that refer to them may not be readable then.
//!
//! - `<file>.migrating.json`: the pre-migration copies of the file taken by starts whose migration has not
//!   committed a step yet ([`note_migrating`]), with the file (its device and inode) and the version it was at.
//!   A start killed during its migration leaves its copy named here, and the next start, which takes a copy
//!   of its own of the same file at the same version, removes it ([`crate::backup`]'s pre-migration copies).
//!
//! All are 0600, written atomically; losing one costs a message, never data, so writing them is best
//! effort where the open itself must not fail because of them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Banner, Describe, ErrorKind};
use crate::files;
use crate::private_dir;

/// The record of a failed open, of what stopped a running owner's writes, or of damage met while running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
    /// The process that failed.
    pub pid: u32,
    /// The error, as a UI shows it.
    pub banner: Banner,
    /// Of damage met while running: the file it was met in (its inode), so a record outlives no file put
    /// in that path by hand (a deleted file created again, a copy moved over it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Met by a running owner, not by an open: its writes stopped until an owner starts again
    /// ([`note_stopped`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub while_running: bool,
}

impl FailureRecord {
    /// The record of `error`, met by this process now.
    fn now(error: &dyn Describe) -> FailureRecord {
        FailureRecord {
            at_ms: chrono::Utc::now().timestamp_millis(),
            pid: std::process::id(),
            banner: error.banner(),
            inode: None,
            while_running: false,
        }
    }

    /// When, as RFC 3339 in UTC to the second.
    pub fn at(&self) -> String {
        crate::time::show_ms(self.at_ms)
    }

    /// This record of damage met using `db` ([`note_damage`]) as the error to show: `corrupt`, with repair's
    /// remedy.
    pub fn damage_error(&self, db: &Path, schema: &'static crate::Schema) -> crate::Error {
        let message = &self.banner.message;
        let what = message
            .strip_prefix(&format!("{} is damaged: ", db.display()))
            .unwrap_or(message);
        crate::Error::Corrupt {
            path: db.to_path_buf(),
            detail: format!(
                "{} met it while running ({}, pid {}): {what}",
                schema.owner,
                self.at(),
                self.pid
            ),
            schema: Some(schema),
        }
    }
}

/// `<when> pid <pid> [<kind>] <message>`, as doctor lists it.
impl std::fmt::Display for FailureRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {} [{}] {}",
            self.at(),
            self.pid,
            self.banner.kind,
            self.banner.message
        )
    }
}

/// The record of the first successful open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedRecord {
    /// When, in Unix epoch milliseconds (UTC).
    pub first_open_ms: i64,
}

/// `<private folder>/<file>.opened`.
pub fn opened_path(db: &Path) -> PathBuf {
    record_path(db, ".opened")
}

/// `<private folder>/<file>.failure.json`.
pub fn failure_path(db: &Path) -> PathBuf {
    record_path(db, ".failure.json")
}

fn record_path(db: &Path, suffix: &str) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    private_dir::private_dir_of(db).join(format!("{name}{suffix}"))
}

/// `<private folder>/<file>.damage.json`.
pub fn damage_path(db: &Path) -> PathBuf {
    record_path(db, ".damage.json")
}

/// Records damage met using `db`, if `error` is damage and none is recorded yet (the first is the one to
/// show: later ones are most often the same page met again). Best effort, as [`note_failure`]. Only a
/// process holding `db`'s owner lock calls this: nobody can be putting another file in its place then, so
/// what it met is this file's damage.
pub fn note_damage(db: &Path, error: &dyn Describe) {
    if !matches!(error.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase) || damage_seen(db).is_some() {
        return;
    }
    let record = FailureRecord {
        inode: inode(db),
        ..FailureRecord::now(error)
    };
    write_record(db, &damage_path(db), &record);
}

/// The damage met using `db` (see [`note_damage`]), while the file it was met in is at that path.
pub fn damage_seen(db: &Path) -> Option<FailureRecord> {
    let text = std::fs::read_to_string(damage_path(db)).ok()?;
    let record: FailureRecord = serde_json::from_str(&text).ok()?;
    (record.inode == inode(db)).then_some(record)
}

fn inode(db: &Path) -> Option<u64> {
    files::file_id(db).ok().map(|(_, inode)| inode)
}

/// Forgets the damage met using `db`: the file at that path is not the one it was met in any more.
pub fn clear_damage(db: &Path) -> crate::Result<()> {
    remove_record(&damage_path(db))
}

/// Removes the record at `path`; one that is not there is no error.
fn remove_record(path: &Path) -> crate::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::Error::io(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Whether `db` was ever opened successfully (by a build that keeps this record).
pub fn was_opened(db: &Path) -> bool {
    std::fs::symlink_metadata(opened_path(db)).is_ok()
}

/// Records the first successful open of `db` (nothing if one is recorded), and clears a failure record.
pub fn note_success(db: &Path) -> crate::Result<()> {
    let failure = failure_path(db);
    if std::fs::symlink_metadata(&failure).is_ok() {
        std::fs::remove_file(&failure).map_err(|e| crate::Error::io(&failure, "remove", e))?;
    }
    if !was_opened(db) {
        private_dir::ensure(files::parent_dir(db))?;
        let record = OpenedRecord {
            first_open_ms: chrono::Utc::now().timestamp_millis(),
        };
        files::write_json_atomically(&opened_path(db), &record, "write the open record")?;
    }
    Ok(())
}

/// Forgets the last failed open of `db` if it failed with `kind`: what it met is gone (moved aside by a
/// repair that leaves the file itself as it is, so no open clears it).
pub fn clear_failure(db: &Path, kind: ErrorKind) -> crate::Result<()> {
    let path = failure_path(db);
    match last_failure(db) {
        Some(f) if f.banner.kind == kind => {
            std::fs::remove_file(&path).map_err(|e| crate::Error::io(&path, "remove", e))
        }
        _ => Ok(()),
    }
}

/// Records a failed open of `db`. Best effort: the caller is already returning the error itself.
pub fn note_failure(db: &Path, error: &dyn Describe) {
    write_record(db, &failure_path(db), &FailureRecord::now(error));
}

/// Records that the running owner of `db` stopped writing on `error` (`ownership_lost`,
/// `shared_memory_replaced`), which only an owner starting again on the file ends, in the place of the last
/// failed open: the owner's next successful open removes it. Best effort, as [`note_failure`]. Only the
/// process that held `db`'s owner lock when it met the error calls this.
pub fn note_stopped(db: &Path, error: &dyn Describe) {
    let record = FailureRecord {
        while_running: true,
        ..FailureRecord::now(error)
    };
    write_record(db, &failure_path(db), &record);
}

/// Writes `record`, about `db`, at `path` (in its private folder). Best effort.
fn write_record(db: &Path, path: &Path, record: &FailureRecord) {
    if private_dir::ensure(files::parent_dir(db)).is_ok() {
        let _ = files::write_json_atomically(path, record, "write the failure record");
    }
}

/// The last failed open of `db` (or what stopped its running owner's writes: [`note_stopped`]) not yet
/// cleared by a successful open.
pub fn last_failure(db: &Path) -> Option<FailureRecord> {
    let text = std::fs::read_to_string(failure_path(db)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The file a `-wal` was beside at its owner's last open (see the module's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalPairRecord {
    pub db: files::FileStamp,
    /// Written by a build whose owner forgets this record when it empties its `-wal` at a clean stop
    /// ([`forget_wal_pairs`]); an earlier build's record outlives a clean stop, so it tells nothing of how
    /// its owner stopped ([`wal_gone`]).
    #[serde(default)]
    pub forgotten_at_clean_stop: bool,
}

/// `<private folder>/<file>.wal-<device>-<inode>-<created>.json`: the record about the `-wal` stamped `wal`.
pub fn wal_pair_path(db: &Path, wal: &files::FileStamp) -> PathBuf {
    let (dev, ino) = wal.id;
    record_path(db, &format!(".wal-{dev}-{ino}-{}.json", wal.born_ns.unwrap_or(0)))
}

/// Records that the `-wal` beside `db` now is the one of `db_file`, the file its owner has open (after an
/// open, and after the owner took back a removed `-wal`), and removes the records of earlier ones. Best
/// effort, as [`note_failure`]: without it an [`orphan_wal`] of a replaced file is not told, as before the
/// record existed.
pub fn note_wal_pair(db: &Path, db_file: files::FileId) {
    let (Ok(wal), Ok(stamp)) = (
        files::FileStamp::at(&files::with_suffix(db, "-wal")),
        files::FileStamp::at(db),
    ) else {
        return;
    };
    // Another file at the path is the owner's to tell (`ownership_lost`), not a pair to record.
    if stamp.id != db_file {
        return;
    }
    let record = WalPairRecord {
        db: stamp,
        forgotten_at_clean_stop: true,
    };
    let path = wal_pair_path(db, &wal);
    if wal_pair(&path) == Some(record) || private_dir::ensure(files::parent_dir(db)).is_err() {
        return;
    }
    if files::write_json_atomically(&path, &record, "write the -wal record").is_err() {
        return;
    }
    for other in wal_pair_records(db).filter(|other| *other != path) {
        let _ = std::fs::remove_file(&other);
    }
}

fn wal_pair(record: &Path) -> Option<WalPairRecord> {
    serde_json::from_str(&std::fs::read_to_string(record).ok()?).ok()
}

/// At an owner's open, before SQLite opens `db`: whether the `-wal` recorded at the last open of this very
/// file (the same device, inode and creation time) is no longer there, removed or another in its place. Its
/// owner forgets that record when it empties its `-wal` at a clean stop ([`forget_wal_pairs`]), so a record
/// still there means the owner stopped without emptying it (a crash, a kill), and whatever its `-wal` held
/// since the last checkpoint went with it: the open goes on (nothing is left to bring back), and says so.
pub fn wal_gone(db: &Path) -> bool {
    let Ok(stamp) = files::FileStamp::at(db) else {
        return false;
    };
    let now = files::FileStamp::at(&files::with_suffix(db, "-wal"))
        .ok()
        .map(|wal| wal_pair_path(db, &wal));
    wal_pair_records(db).any(|record| {
        wal_pair(&record).is_some_and(|r| r.db == stamp && r.forgotten_at_clean_stop) && Some(&record) != now.as_ref()
    })
}

/// Removes the records of `db`'s `-wal` ([`note_wal_pair`]): its owner emptied it at a clean stop, so no
/// commit can be lost with it. Best effort.
pub fn forget_wal_pairs(db: &Path) {
    for record in wal_pair_records(db) {
        let _ = std::fs::remove_file(record);
    }
}

/// The paths of the records of `db`'s `-wal`s ([`wal_pair_path`]).
fn wal_pair_records(db: &Path) -> impl Iterator<Item = PathBuf> {
    let prefix = record_path(db, ".wal-").to_string_lossy().into_owned();
    std::fs::read_dir(private_dir::private_dir_of(db))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(move |p| {
            let name = p.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".json")
        })
}

/// `<private folder>/<file>.counters.json` (see the module's list).
pub fn counters_path(db: &Path) -> PathBuf {
    record_path(db, ".counters.json")
}

/// The highest id each AUTOINCREMENT counter of `db` handed out, as recorded ([`note_counters`]); none when
/// there is no record (or it cannot be read: the record protects ids, it never stops an open). Bytes after
/// the record's JSON (padding, the tail of a longer record put there by hand) are not read.
pub fn counters_handed_out(db: &Path) -> std::collections::BTreeMap<String, i64> {
    let Ok(bytes) = std::fs::read(counters_path(db)) else {
        return Default::default();
    };
    serde_json::Deserializer::from_slice(&bytes)
        .into_iter()
        .next()
        .and_then(|first| first.ok())
        .unwrap_or_default()
}

/// Records `counters` as the highest ids `db` handed out. Best effort, as [`note_failure`]: without it a
/// file that goes back is raised only past the ids other files are seen to refer to.
///
/// Written in place, not renamed over the last one and not synced: it follows every commit that hands out an
/// id, and ext4 writes out a file renamed over another at once (about a millisecond here, more than the
/// commit, which `synchronous=NORMAL` does not sync either). A power loss may take it back with that commit,
/// or leave it torn (read as none); then the ids other files are seen to refer to still hold. Padded to a
/// multiple of 256 bytes: a record only grows, so a write never leaves a longer one's tail behind it.
pub fn note_counters(db: &Path, counters: &std::collections::BTreeMap<String, i64>) {
    use std::os::unix::fs::FileExt;
    let Ok(mut json) = serde_json::to_vec(counters) else {
        return;
    };
    json.resize(json.len().next_multiple_of(256), b' ');
    if private_dir::ensure(files::parent_dir(db)).is_ok()
        && let Ok(file) = files::open_private(&counters_path(db))
    {
        let _ = file.write_all_at(&json, 0);
    }
}

/// The bytes a `-wal` holds before its first frame: one of at most this size holds no commit.
pub(crate) const WAL_HEADER_BYTES: u64 = 32;

/// A `-wal` beside `db` holding commits of another file ([`Error::OrphanWal`](crate::Error::OrphanWal)):
/// `db` is gone (SQLite would delete the `-wal` when it creates the file anew), or the `-wal` was recorded
/// at an owner's open beside another file than the one at the path now ([`note_wal_pair`]): the file was
/// replaced by hand while its owner was stopped with commits in its `-wal` (a crash). Metadata reads only. A
/// whole data directory copied (`cp -a`, a restore of it from a backup of the user's own) gets a new `-wal`,
/// which no record names, and is not taken for it; a file copied over the old one in place (`cp`, the same
/// file) is not told. A file replaced or removed under an owner of this process that still runs is
/// [`Error::DatabaseReplaced`](crate::Error::DatabaseReplaced) instead, as that owner says it: the `-wal` is
/// the running owner's. So is one replaced under an owner of another process (it holds the lock), told by the
/// record of its `-wal` even while that `-wal` holds no commit.
pub fn orphan_wal(db: &Path, schema: &'static crate::Schema) -> Option<crate::Error> {
    if let Some(replaced) = crate::open_database::replaced_under_owner_here(db, schema) {
        return Some(replaced);
    }
    let wal = std::fs::symlink_metadata(files::with_suffix(db, "-wal"))
        .ok()
        .filter(|m| m.is_file())?;
    let removed = matches!(std::fs::symlink_metadata(db), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let recorded = wal_pair(&wal_pair_path(db, &files::FileStamp::of(&wal)));
    // Without a record, only a removed file tells that the `-wal` is not the one of the file at the path.
    let elsewhere = recorded.map_or(removed, |pair| files::FileStamp::at(db).ok() != Some(pair.db));
    let holds_commits = wal.len() > WAL_HEADER_BYTES;
    if recorded.is_none()
        && holds_commits
        && !removed
        && !matches!(crate::OwnerLock::probe(db), Ok(crate::LockState::Held { holder })
            if !holder.as_ref().is_some_and(crate::LockHolder::is_this_process))
        && let Some(older) = wal_older_than_file(db)
    {
        return Some(crate::Error::OrphanWal {
            path: db.to_path_buf(),
            wal_bytes: wal.len(),
            removed,
            older_than_file: Some(older),
            schema,
        });
    }
    // A `-wal` holding no commit yet is told only by its record: the one its owner made at its open.
    if !elsewhere || !(holds_commits || recorded.is_some()) {
        return None;
    }
    // An owner of another process holds the file's lock: the `-wal` is that running owner's, and the file it
    // has open was replaced or removed under it (said whether or not it wrote since its open: the server's
    // banner and doctor say what the owner's own process says). Not when this process holds the lock: an
    // owner at its open, or a repair or restore holding every lock, has no file open, and the `-wal` is a
    // crash's.
    if let Ok(crate::LockState::Held { holder }) = crate::OwnerLock::probe(db)
        && !holder.as_ref().is_some_and(crate::LockHolder::is_this_process)
    {
        return Some(crate::Error::DatabaseReplaced {
            path: db.to_path_buf(),
            schema,
            holder,
        });
    }
    // Nothing of another file to keep from this one.
    if !holds_commits {
        return None;
    }
    Some(crate::Error::OrphanWal {
        path: db.to_path_buf(),
        wal_bytes: wal.len(),
        removed,
        older_than_file: None,
        schema,
    })
}

/// For a `-wal` no record names beside the plaintext file `db` (no owner running): whether it is older than
/// the file, told by the AUTOINCREMENT counters, which only go up: the first one that the `-wal`'s last commit
/// would take back, as (table, in the file alone, with the `-wal`). A data directory copied while its owner
/// ran, the `-wal` copied before the file (and a checkpoint between the two copies), gets such a pair: a
/// whole directory copied gets new files, which no record names, and SQLite would write the `-wal`'s older
/// pages over the file's, losing rows the file holds, with no error when the mix still parses. A newer
/// `-wal` (the same copy taken file first, a crash of a build before the records) raises counters or
/// leaves them, and is opened as it was. Two read-only connections, the first `immutable` (it ignores the
/// `-wal`); none to an empty file (SQLite deletes a `-wal` beside one); an encrypted file is not read (no
/// key here).
fn wal_older_than_file(db: &Path) -> Option<(String, i64, i64)> {
    use rusqlite::{Connection, OpenFlags};
    if !files::nonempty_regular(db) {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let alone =
        Connection::open_with_flags(files::file_uri(db, "immutable=1"), flags | OpenFlags::SQLITE_OPEN_URI).ok()?;
    let in_file = crate::restore::read_sequences(&alone).ok()?;
    drop(alone);
    let with_wal = Connection::open_with_flags(db, flags).ok()?;
    let applied = crate::restore::read_sequences(&with_wal).ok()?;
    in_file.into_iter().find_map(|(table, n)| {
        let m = *applied.get(&table)?;
        (m < n).then_some((table, n, m))
    })
}

/// Whether a database was encrypted at its owner's last successful open, and with which key (its check
/// value, never the key): `<private folder>/<file>.key-check.json`. With it, a file SQLite cannot read is
/// told apart: opened with the recorded key, it is damaged; with another key, the key is wrong; without a
/// key, it needs one ([`crate::key::explain_not_a_database`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionRecord {
    pub encrypted: bool,
    /// [`Key::check_value`](crate::key::Key::check_value) of the key it was opened with.
    pub key_check: Option<String>,
}

/// `<private folder>/<file>.key-check.json`.
pub fn encryption_path(db: &Path) -> PathBuf {
    record_path(db, ".key-check.json")
}

/// What the data directory recorded about `db`'s encryption (see [`EncryptionRecord`]).
pub fn encryption(db: &Path) -> Option<EncryptionRecord> {
    let text = std::fs::read_to_string(encryption_path(db)).ok()?;
    serde_json::from_str(&text).ok()
}

/// An existing database beside `db` (in its data directory) whose last successful open was encrypted. A
/// data directory is encrypted as a whole (a split or `rekey` puts both files under one key), so a file
/// created there without a key would be the one written in the clear.
pub fn encrypted_sibling(db: &Path) -> Option<PathBuf> {
    const SUFFIX: &str = ".key-check.json";
    let own = encryption_path(db);
    let data_dir = files::parent_dir(db);
    std::fs::read_dir(private_dir::private_dir(data_dir))
        .ok()?
        .flatten()
        .filter(|entry| entry.path() != own)
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let sibling = data_dir.join(name.strip_suffix(SUFFIX)?);
            let exists = std::fs::symlink_metadata(&sibling).is_ok_and(|m| m.len() > 0);
            (exists && encryption(&sibling)?.encrypted).then_some(sibling)
        })
}

/// The record [`note_encryption`] writes for `key` (or none).
pub fn encryption_of(key: Option<&crate::key::Key>) -> EncryptionRecord {
    EncryptionRecord {
        encrypted: key.is_some(),
        key_check: key.map(|k| k.check_value()),
    }
}

/// Records that which key opens `db` is not known for now: something is about to put a file under another
/// key (or none) in its place. Until its next successful open records the key again, a failure under a
/// key is `key_rejected` and one without a key `key_required`, never damage: nothing is moved aside for it.
pub fn note_key_unknown(db: &Path) -> crate::Result<()> {
    let record = EncryptionRecord {
        encrypted: true,
        key_check: None,
    };
    private_dir::ensure(files::parent_dir(db))?;
    files::write_json_atomically(&encryption_path(db), &record, "write the key record")
}

/// Records that `db` opens with `key` (or without one), unless that is recorded already. Called by the
/// owner after each successful open, and by whatever puts a database in place under a key (a split, a key
/// rotation).
pub fn note_encryption(db: &Path, key: Option<&crate::key::Key>) -> crate::Result<()> {
    let record = encryption_of(key);
    if encryption(db).as_ref() == Some(&record) {
        return Ok(());
    }
    private_dir::ensure(files::parent_dir(db))?;
    files::write_json_atomically(&encryption_path(db), &record, "write the key record")
}

/// `<private folder>/<file>.migrating.json` (see the module's list).
pub fn migrating_path(db: &Path) -> PathBuf {
    record_path(db, ".migrating.json")
}

/// The pre-migration copies of a file taken by starts whose migration has not committed a step yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigratingRecord {
    /// The file they are copies of: another file put at its path since (a restore) is not the one they copy.
    pub file: files::FileId,
    /// The schema version the file was at when they were taken.
    pub version: u32,
    /// The copies.
    pub copies: Vec<PathBuf>,
    /// How many starts in a row took a copy of the file at this version with no step committed after: those
    /// before the last were stopped during their migration (killed).
    pub starts: u32,
    /// When the last of them took its copy, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
}

impl MigratingRecord {
    /// The record of `db`'s copies whose migration has not committed a step ([`note_migrating`]), when it is
    /// of the file at that path now, at `version`; `None` when there is none or it cannot be read (it then
    /// removes nothing).
    pub fn of(db: &Path, version: u32) -> Option<MigratingRecord> {
        let file = files::file_id(db).ok()?;
        let text = std::fs::read_to_string(migrating_path(db)).ok()?;
        serde_json::from_str::<MigratingRecord>(&text)
            .ok()
            .filter(|r| r.file == file && r.version == version)
    }
}

/// Records `record` as `db`'s copies whose migration has not committed a step.
pub fn note_migrating(db: &Path, record: &MigratingRecord) -> crate::Result<()> {
    private_dir::ensure(files::parent_dir(db))?;
    files::write_json_atomically(&migrating_path(db), record, "record the pre-migration copy")
}

/// Forgets `db`'s copies whose migration had not committed a step: one has now (its copy is the way back
/// from it), or the copy was removed.
pub fn clear_migrating(db: &Path) -> crate::Result<()> {
    remove_record(&migrating_path(db))
}
