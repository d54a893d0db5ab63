//! Health facts about one database file, as data: what a doctor command prints and what an app shows in a
//! persistent banner. Inspecting never writes to the database and never takes its owner lock.
//!
//! Integrity checks hold a read transaction for their whole run (O(N) for quick_check, O(N log N) for
//! integrity_check), and a reader holding a transaction pins the owner's WAL (<https://sqlite.org/wal.html#ckpt>).
//! So while an owner runs, the checks run on a page-exact snapshot (one-step backup into a scratch folder of
//! the data directory's private folder, deleted afterwards): the owner's WAL is pinned only for the time of
//! the copy. The snapshot holds user data, so it never goes to the shared system temp directory.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::backup::{self, Adopt, BackupClass, BackupFile, IgnoredFile};
use crate::check;
use crate::checkpoint;
use crate::error::{Error, ErrorKind, SqliteResultExt};
use crate::files;
use crate::key::Key;
use crate::leftovers::{self, Leftover};
use crate::migrate;
use crate::owner_lock::{FolderLock, LockState, OwnerLock};
use crate::private_dir::{self, Scratch};
use crate::provenance::{Provenance, RECOVERY_EVENT, lineage_of};
use crate::read_pool;
use crate::records::{self, FailureRecord};
use crate::schema::Schema;

/// A `-wal` larger than this is reported: something is keeping the owner from resetting it.
pub const LARGE_WAL_BYTES: u64 = 64 * 1024 * 1024;

/// How thoroughly to check the file's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    /// No structural check: header, version, owner, row counts, backups; fast at any size (what a UI banner
    /// asks for).
    None,
    /// `PRAGMA quick_check` (O(N)) and, on a second connection beside it, the values' types
    /// ([`check::type_check`], O(N), counted when the quick check passes), of the file and of its newest
    /// backup; while an owner writes, of a snapshot copied first. Seconds on a file of years (`splitstore
    /// doctor` on a 1 GB activity.db and its backup, before the type check was added: 2.2 s from a warm page
    /// cache, 11 s cold, 6.4 s while the daemon writes; `None`: 0.03 s): for a doctor or a daily job.
    Quick,
    /// `PRAGMA integrity_check` (O(N log N); also verifies indexes against tables), the values' types beside it.
    Full,
}

/// Options for [`inspect`].
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// The structural check of the file (and, unless `None`, a `quick_check` of its newest backup).
    pub check: CheckLevel,
    /// Where to look for backups; `None` means `<data dir>/backups`.
    pub backup_dir: Option<PathBuf>,
    /// The key of an encrypted database (and of its backups); `None` for a plaintext one. A file the key
    /// does not open is reported as `key_rejected` (or `key_required`, `not_encrypted`), never as damage.
    pub key: Option<Key>,
    /// With a structural check, also `quick_check` the newest backup (`backup_damaged`): one more read of
    /// its whole size. Off only for a caller that verifies every backup it would use itself, more
    /// thoroughly, and never acts on `backup_damaged` (a repair: `integrity_check` of each backup before
    /// it restores one).
    pub check_newest_backup: bool,
    /// The moves of ids ([`crate::renumber::recorded_runs`]) the files beside this one record: a table out of
    /// ids whose rows one of them records as given smaller ids (and names by the new ids) is said so: a
    /// repair stopped before this file changed, or this file was put back from before it. Empty: not looked
    /// for.
    pub moves_recorded_elsewhere: Vec<crate::renumber::IdMoves>,
}

impl InspectOptions {
    /// The folder the backups of the database at `path` are looked for in.
    fn backup_dir_of(&self, path: &Path) -> PathBuf {
        self.backup_dir
            .clone()
            .unwrap_or_else(|| backup::default_backup_dir(path))
    }
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            check: CheckLevel::Quick,
            backup_dir: None,
            key: None,
            check_newest_backup: true,
            moves_recorded_elsewhere: Vec::new(),
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
    #[serde(with = "crate::files::lossy_path::option")]
    pub snapshot_dir: Option<PathBuf>,
}

/// Something wrong with a database, with the command (or step) that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of problem: the same vocabulary as errors.
    pub code: ErrorKind,
    pub message: String,
    pub remedy: String,
}

/// Everything doctor knows about one database file. Never contains a settings value: only counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbHealth {
    pub database: &'static str,
    #[serde(with = "crate::files::lossy_path")]
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
    /// The file's lineage ([`crate::provenance::LINEAGE_EVENT`]), when it records one and can be read.
    pub lineage: Option<String>,
    /// The newest backup of either class: of this file's lineage (or recording none), or, for a file whose
    /// lineage is unknown, of the one file the folder holds backups of (none when it holds several).
    pub newest_backup: Option<BackupFile>,
    /// The copies taken before migrations, newest first (never rotated away), chosen as `newest_backup`.
    pub pre_migration_backups: Vec<BackupFile>,
    /// Backups in the same folder that are not this file's (another lineage: another data directory backing
    /// up there, or a lineage no file carries any more), newest first: never rotated by this file's backups;
    /// a restore takes them only for a file with none of its own there (`backup::backups_for`).
    pub other_files_backups: Vec<BackupFile>,
    /// Files named like backups of this database that are not (reported, never used or pruned).
    pub ignored_backups: Vec<IgnoredFile>,
    /// The last failed open by the owner, or what stopped a running owner's writes
    /// ([`FailureRecord::while_running`]), not yet cleared by a successful open.
    pub last_failure: Option<FailureRecord>,
    /// The damage an owner met using the file while running ([`records::note_damage`]), until a restore
    /// or repair puts another file in place.
    pub damage_seen: Option<FailureRecord>,
    /// The last time an owner found what a previous one left behind by stopping uncleanly, and what it
    /// recovered (its `recovery` provenance record).
    pub last_recovery: Option<Provenance>,
    /// Copies of this database's data outside the database (quarantined, replaced, unfinished files).
    pub leftovers: Vec<Leftover>,
    pub problems: Vec<Problem>,
}

impl DbHealth {
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, code: ErrorKind, message: String, remedy: String) {
        self.problems.push(Problem { code, message, remedy });
    }

    /// The problem an error describes. Damage also names the newest backup repair would restore.
    fn problem_from(&mut self, err: &Error) {
        let mut remedy = err.remedy();
        if matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase)
            && let Some(b) = &self.newest_backup
        {
            remedy.push_str(&format!("; the newest backup is {}", b.path.display()));
        }
        self.problem(err.kind(), err.what(), remedy);
    }
}

/// Inspects the database at `path`. Problems become entries in [`DbHealth::problems`]; this never fails.
/// While an owner holds the file, structural checks run on a snapshot.
pub fn inspect(path: &Path, schema: &'static Schema, opts: &InspectOptions) -> DbHealth {
    let probed = OwnerLock::probe(path);
    let owner = probed.as_ref().ok().cloned();
    let writer_may_run = matches!(owner, Some(LockState::Held { .. }));
    let mut h = inspect_with(path, schema, opts, owner, writer_may_run);
    // A lock file that cannot be probed (a directory in its place, say) stops every owner's start too.
    if let Err(e) = probed {
        h.problem_from(&e);
    }
    h
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
    let mut h = inspect_file(path, schema, opts, owner, writer_may_run);
    // Last: what is wrong with the file comes first.
    h.problems.extend(hard_linked_problem(path, schema));
    if let Some(refused) = write_refused(path, &opts.backup_dir_of(path)) {
        // What the owner's last start met, recorded then, is said as it stands now: the remedy recorded may
        // miss a `-wal` made since with the file's mode, or speak to another user than doctor's. The record
        // is still shown as the last failure.
        if let Some(failure) = h
            .last_failure
            .as_ref()
            .filter(|f| !f.while_running && f.banner.kind == refused.kind())
        {
            h.problems
                .retain(|p| !(p.code == failure.banner.kind && p.message.ends_with(&failure.banner.message)));
        }
        // Said once: a reader of the file meets an immutable folder too.
        if !h.problems.iter().any(|p| p.message == refused.what()) {
            h.problem_from(&refused);
        }
    }
    readable_by_others(&mut h, path, schema, opts);
    h
}

/// What the owner's start would refuse, asked as this user: the database, its `-wal`, `-shm`
/// ([`crate::open_database::refuse_unwritable`]) or lock file that its mode or an attribute (`chattr +i`) keeps
/// this user from writing, or an immutable folder where they go; the private folder, where the owner records
/// what keeps ids from being handed out twice and why its last start failed (best effort: it runs without
/// them, unsaid); and the data directory or backup folder (`backup_dir`) an attribute keeps from renaming
/// files into place (`chattr +a`), where backups, restores, repairs and key rotations are refused. Run as
/// the superuser (`sudo`), which writes whatever the modes, the modes are read for the files' owner
/// ([`Error::ShutsOutItsOwner`]). A file system mounted read-only is not told here: doctor reads snapshots
/// and backup disks as they are.
fn write_refused(path: &Path, backup_dir: &Path) -> Option<Error> {
    let lock = files::with_suffix(path, ".lock");
    let private = private_dir::private_dir_of(path);
    crate::open_database::refuse_unwritable(path)
        .and_then(|()| files::ensure_writable(&lock))
        .and_then(|()| files::ensure_writable(&private))
        .and_then(|()| files::ensure_entries_can_move(files::parent_dir(path)))
        .and_then(|()| files::ensure_entries_can_move(backup_dir))
        .err()
        .filter(|e| e.kind() == ErrorKind::PermissionDenied)
        .or_else(|| {
            let [wal, shm, _] = files::sidecars(path);
            [path, &wal, &shm, &lock, &private, files::parent_dir(path)]
                .into_iter()
                .find_map(|at| {
                    files::shuts_out_its_owner(at).map(|(owner, mode)| Error::ShutsOutItsOwner {
                        path: at.to_path_buf(),
                        owner,
                        mode,
                    })
                })
        })
}

fn inspect_file(
    path: &Path,
    schema: &'static Schema,
    opts: &InspectOptions,
    owner: Option<LockState>,
    writer_may_run: bool,
) -> DbHealth {
    let dir = files::parent_dir(path);
    let backup_dir = opts.backup_dir_of(path);
    let key = opts.key.as_ref();
    let backups = backup::all_backups(&backup_dir, schema, key);
    let lineage = lineage_of(path, key);
    let own = backup::backups_for(
        backups.backups.clone(),
        lineage.as_deref(),
        Adopt::OwnOnly,
        path,
        &backup_dir,
        schema,
    )
    .unwrap_or_default();
    let other_files_backups = backups.backups.into_iter().filter(|b| !own.contains(b)).collect();
    let owner_running = matches!(owner, Some(LockState::Held { .. }));
    let mut h = DbHealth {
        database: schema.file_name,
        path: path.to_path_buf(),
        exists: false,
        size_bytes: None,
        wal_bytes: checkpoint::wal_bytes(path),
        schema_version: None,
        build_version: schema.end_version(),
        pending_migrations: 0,
        newer_than_build: false,
        application_id: None,
        check: None,
        foreign_key_violations: None,
        owner,
        row_counts: BTreeMap::new(),
        lineage,
        newest_backup: own.first().cloned(),
        pre_migration_backups: own
            .iter()
            .filter(|b| b.class == BackupClass::PreMigration)
            .cloned()
            .collect(),
        other_files_backups,
        ignored_backups: backups.ignored,
        last_failure: records::last_failure(path),
        damage_seen: records::damage_seen(path),
        last_recovery: None,
        leftovers: leftovers::find(path, &backup_dir),
        problems: Vec::new(),
    };
    for d in [dir, backup_dir.as_path()] {
        if let Err(e @ Error::NotPrivate { .. }) = files::check_private_dir(d) {
            h.problem_from(&e);
        }
    }
    // Every owner's open reads and writes the private folder: anything else in its place stops them all.
    let private = crate::private_dir::private_dir(dir);
    if let Ok(meta) = std::fs::symlink_metadata(&private)
        && !meta.is_dir()
    {
        h.problem_from(&files::not_a_directory(&private, &meta));
    }
    // Every backup into the folder, a migration's at an upgrade included, takes its lock file: one that is no
    // regular file, or another user's than the folder's (left by a command run as root), stops them all while
    // the files themselves are healthy.
    let folder_lock = FolderLock::path_for(&backup_dir);
    if let Ok(meta) = std::fs::symlink_metadata(&folder_lock) {
        use std::os::unix::fs::MetadataExt;
        let owner = meta.uid();
        if let Err(e) = files::regular(&folder_lock, meta) {
            h.problem_from(&e);
        } else if let Some(user) = files::owner_of(&backup_dir).filter(|&user| user != owner) {
            // Said as the folder's owner meets it, whoever runs doctor (root, say).
            h.problem(
                ErrorKind::AnotherUsersFiles,
                format!(
                    "{} belongs to user {owner} and its folder to user {user}: no backup of user {user} into the \
                     folder can take it",
                    folder_lock.display()
                ),
                format!(
                    "give it back with `sudo chown {user} {}`",
                    files::shell_quoted(&folder_lock)
                ),
            );
        }
    }
    // A backup in the clear beside a file under a key (one a key rotation could not re-key, being damaged;
    // another directory's copied in): anyone who can read the folder reads the history it holds. Only listed
    // as not used, the directory was said healthy. Only beside a file whose last open was encrypted: a key
    // given to doctor by mistake for a plaintext directory finds every backup "in the clear" too.
    let encrypted = records::encryption(path).is_some_and(|record| record.encrypted);
    let in_the_clear: Vec<PathBuf> = h
        .ignored_backups
        .iter()
        .filter(|ignored| encrypted && ignored.key_problem == Some(ErrorKind::NotEncrypted))
        .map(|ignored| ignored.path.clone())
        .collect();
    for clear in in_the_clear {
        let rm = format!("`rm {}`", files::shell_quoted(&clear));
        let remedy = match &h.newest_backup {
            Some(newest) => format!("delete it ({rm}): {} is a backup under the key", newest.path.display()),
            None => format!(
                "take a backup under the key (`{}`), then delete it ({rm})",
                schema.command("backup", dir, "")
            ),
        };
        h.problem(
            ErrorKind::BackupInTheClear,
            format!(
                "{} is a backup in the clear beside {}, which is encrypted: anyone who can read the folder reads \
                 the data it holds",
                clear.display(),
                path.display()
            ),
            remedy,
        );
    }
    if let Some(unreadable) = crate::restore::unreadable_journal(dir) {
        h.problem_from(&unreadable);
    } else if crate::restore::interrupted(dir) {
        h.problem(
            ErrorKind::RestoreInterrupted,
            format!(
                "a restore, repair or key rotation in {} was interrupted before it finished",
                dir.display()
            ),
            format!(
                "start {} (`{}`): its open puts every file back as it was before; then run that command again",
                schema.owner,
                schema.owner_command(dir)
            ),
        );
    }
    if schema.predecessor.is_some()
        && let Some(written) = crate::conversion::written_since(dir)
    {
        h.problem(
            ErrorKind::WrittenAfterConversion,
            written.message(schema.file_name),
            written.remedy(),
        );
    }
    // Opened with a -wal of another file, SQLite would read that file's pages as this one's (and call the
    // mix damaged): nothing of the file is read until repair has moved that -wal aside.
    let orphan = records::orphan_wal(path, schema);
    // While the owner runs, a failed open's record is from an earlier start that a later one superseded; one
    // that met the -wal of another file is said below as it is now. What stopped a running owner's writes is
    // said until an owner starts again (which removes the record), the owner that met it running or not.
    let superseded = |f: &FailureRecord| {
        !f.while_running && (owner_running || (orphan.is_some() && f.banner.kind == ErrorKind::OrphanWal))
    };
    let failure = h.last_failure.clone().filter(|f| !superseded(f));
    if let Some(failure) = &failure {
        let message = if failure.while_running {
            format!(
                "{} (pid {}) stopped writing ({}): {}",
                schema.owner,
                failure.pid,
                failure.at(),
                failure.banner.message
            )
        } else {
            format!(
                "the last start of {} failed ({}): {}",
                schema.owner,
                failure.at(),
                failure.banner.message
            )
        };
        h.problem(failure.banner.kind, message, failure.banner.remedy.clone());
    }
    if let Some(orphan) = orphan {
        h.size_bytes = std::fs::symlink_metadata(path).ok().map(|m| m.len());
        h.exists = h.size_bytes.is_some();
        // The file replaced under its owner, which met it already: said above as that owner said it.
        if !failure.is_some_and(|f| f.while_running && f.banner.kind == orphan.kind()) {
            h.problem_from(&orphan);
        }
        return h;
    }
    // Said before the owner's next start, which says it too and forgets it.
    if !owner_running && records::wal_gone(path) {
        h.problem(
            ErrorKind::WalGone,
            format!(
                "{}: the -wal its last owner left when it stopped without closing (a crash or a kill) is gone: \
                 whatever it held since the last checkpoint is not in the file (unless another SQLite program, or \
                 an earlier build, opened the file since and closed it, which writes the -wal into the file first: \
                 nothing tells the two apart)",
                path.display()
            ),
            format!(
                "if it was moved, put it back at {} before {} starts; otherwise nothing brings it back: start {} \
                 (`{}`), which opens the file as its last checkpoint left it; never remove the -wal of a database",
                files::with_suffix(path, "-wal").display(),
                schema.owner,
                schema.owner,
                schema.owner_command(dir)
            ),
        );
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Moved aside by the interrupted restore (or repair) said above, whose undo puts it back: not
            // removed, and a repair would restore over it.
            if !crate::restore::moved_aside_by_interrupted(path) {
                h.problem_from(&crate::open_database::missing(path, schema, key));
            }
            return h;
        }
        Err(e) => {
            h.problem_from(&Error::io(path, "read the metadata of", e));
            return h;
        }
    };
    h.exists = true;
    h.size_bytes = Some(meta.len());
    if h.wal_bytes > LARGE_WAL_BYTES {
        // Only a running owner checkpoints: with none, the WAL stays this size whatever the readers do.
        let readers = checkpoint::TransactionHolders::reading(path);
        let remedy = match (owner_running, &readers) {
            (true, Some(readers)) => format!(
                "{}: the owner truncates the WAL at its next checkpoint",
                readers.remedy()
            ),
            (true, None) => "a reader is holding an old snapshot: restart long-running readers; the owner truncates \
                             the WAL at its next checkpoint"
                .to_string(),
            (false, _) => format!(
                "no owner is running, and only {} checkpoints it: {}, then start {} (`{}`), which copies the WAL \
                 into the file and truncates it (the file grows by up to the WAL's size: free disk space first if \
                 the disk is full)",
                schema.owner,
                readers.as_ref().map_or_else(
                    || "close programs that keep the file open (a database browser, a backup tool)".to_string(),
                    checkpoint::TransactionHolders::remedy
                ),
                schema.owner,
                schema.owner_command(dir)
            ),
        };
        let held = readers.map_or(String::new(), |readers| {
            format!(", held by a read transaction of {}", readers.named())
        });
        h.problem(
            ErrorKind::LargeWal,
            format!("{}-wal is {} MB{held}", path.display(), h.wal_bytes / (1024 * 1024)),
            remedy,
        );
    }
    let elsewhere = &opts.moves_recorded_elsewhere;
    if let Err(e) = inspect_contents(&mut h, path, schema, opts.check, writer_may_run, key, elsewhere) {
        h.problem_from(&crate::key::explain(e, key));
    }
    // A backup that would not restore is found now, not on the day it is needed: the newest one is checked
    // with the file (a restore from its folder passes over it to the newest that verifies).
    if opts.check != CheckLevel::None
        && opts.check_newest_backup
        && let Some(newest) = &h.newest_backup
        && let Some(finding) = backup_damage(&newest.path, key)
    {
        h.problem(
            ErrorKind::BackupDamaged,
            format!(
                "the newest backup of {}, {}, is damaged: {finding}",
                path.display(),
                newest.path.display()
            ),
            format!(
                "take a new backup now (`{}`); a restore from the folder passes over the damaged one to the \
                 newest that verifies. Remove it once a new one is taken",
                schema.command("backup", dir, "")
            ),
        );
    }
    // A backup named before the newest that holds rows it lacks was taken while the clock was behind (or the
    // newest while it was ahead): a restore or repair from the folder stops at it, naming both. Said now, with
    // the way to end it, rather than on the day a restore is needed. Counters only: cheap.
    if let Some(newest) = &h.newest_backup
        && let Some((earlier, added)) = own.iter().skip(1).find_map(|b| {
            let added = crate::restore::rows_past(&b.path, &newest.path, key);
            (!added.is_empty()).then_some((b, added))
        })
    {
        let named = Error::BackupNamedEarlier {
            path: path.to_path_buf(),
            backup: earlier.path.clone(),
            named_at: earlier.name.taken_at,
            instead: Box::new((newest.path.clone(), newest.name.taken_at, added)),
            damaged: false,
            schema,
        };
        h.problem(
            named.kind(),
            named.what(),
            format!(
                "with the clock right, take a new backup now (`{}`): it holds every row and is the newest by name; \
                 until then a restore or repair from the folder stops at that backup, naming both",
                schema.command("backup", dir, "")
            ),
        );
    }
    // Damage met while running is damage until the file is replaced, even where this check does not reach
    // (quick_check does not compare an index with its table) or did not run: repair acts on it.
    let damage_found = h
        .problems
        .iter()
        .any(|p| matches!(p.code, ErrorKind::Corrupt | ErrorKind::NotADatabase));
    if let Some(seen) = h.damage_seen.clone().filter(|_| !damage_found) {
        h.problem_from(&seen.damage_error(path, schema));
    }
    h
}

fn inspect_contents(
    h: &mut DbHealth,
    path: &Path,
    schema: &'static Schema,
    level: CheckLevel,
    on_snapshot: bool,
    key: Option<&Key>,
    moves_recorded_elsewhere: &[crate::renumber::IdMoves],
) -> crate::Result<()> {
    files::ensure_regular(path)?;
    let conn = read_pool::open_read_only(path, schema, key)?;
    let state = migrate::read_state(&conn, path, schema)?;
    h.application_id = Some(state.application_id);
    h.schema_version = Some(state.user_version);
    migrate::check_identity(&conn, path, schema, &state)?;
    if state.is_blank()
        && let Some(damage) = crate::open_database::blank_that_held_data(path, schema, key)
    {
        return Err(damage);
    }
    if state.user_version > schema.end_version() {
        h.newer_than_build = true;
        return Err(Error::SchemaNewer {
            path: path.to_path_buf(),
            found: state.user_version,
            supported: schema.end_version(),
            schema,
        });
    }
    migrate::check_user_version_lowered(&conn, path, schema, &state)?;
    h.problems.extend(auto_vacuum_problem(&conn, path, schema)?);
    h.problems
        .extend(schema_objects_problem(&conn, path, schema, state.user_version)?);
    h.pending_migrations = schema.end_version() - state.user_version;
    if h.pending_migrations > 0 {
        let start = format!(
            "start {} from this build (`{}`): it backs the file up, then migrates it",
            schema.owner,
            schema.owner_command(files::parent_dir(path))
        );
        // An owner runs and has not migrated the file: a second one would only be refused as locked.
        let remedy = match &h.owner {
            Some(LockState::Held { holder }) => format!(
                "{} running now ({}) has not upgraded it (an earlier build, or an upgrade under way: look again in \
                 a minute): stop it, then {start}",
                schema.owner,
                holder.as_ref().map_or("pid unknown".to_string(), ToString::to_string)
            ),
            _ => start,
        };
        // Starts stopped during the migration (killed): a supervisor's start timeout, or a user quitting an
        // app that looked hung, stops each next start the same way, the startup loop of a migration that takes
        // longer than they allow. Said while no owner runs (one that does may be
        // migrating now).
        let stopped = match &h.owner {
            Some(LockState::Held { .. }) => None,
            _ => records::MigratingRecord::of(path, state.user_version),
        };
        let (said, remedy) = match stopped {
            None => (String::new(), remedy),
            Some(r) => (
                format!(
                    "; the last {} start(s) that migrated it were stopped during the migration (killed), the last at \
                     {}: each copies the whole file first and migrates from the beginning again",
                    r.starts,
                    crate::time::show_ms(r.at_ms)
                ),
                format!(
                    "{remedy}, and let it run until the migration ends: it takes longer than whatever stopped those \
                     starts allowed (a supervisor's start timeout: raise it, as systemd's `TimeoutStartSec`, or let \
                     the start ask for the time it needs, as systemd's `Type=notify` does; or the app quit while it \
                     looked hung)"
                ),
            ),
        };
        h.problem(
            ErrorKind::MigrationsPending,
            format!(
                "{} is at schema {}, this build writes {}: {} migration(s) pending{said}",
                path.display(),
                state.user_version,
                schema.end_version(),
                h.pending_migrations
            ),
            remedy,
        );
    }
    // A table out of ids takes no more rows: its owner's next insert would fail (said then as this too).
    // Unreadable counters are left to the check below, which names the damage.
    for table in crate::restore::tables_out_of_ids(&conn).unwrap_or_default() {
        let given_ids_since = moves_recorded_elsewhere
            .iter()
            .any(|m| m.database == schema.file_name && m.table == table);
        h.problem_from(&Error::IdsExhausted {
            path: path.to_path_buf(),
            table,
            schema,
            given_ids_since,
        });
    }
    // Rows naming another file's rows by ids a repair moved since: put back from before it without the
    // moves. Read as far as the file reads (damage is the check's below).
    let moves = crate::renumber::moves_recorded_beside(path, schema, key);
    let tables = crate::renumber::tables_named_by_old_ids(&conn, schema, &moves).unwrap_or_default();
    if !tables.is_empty() {
        h.problem_from(&Error::OldIds {
            path: path.to_path_buf(),
            tables,
            schema,
        });
    }

    // Declared before the snapshot's connection, so that connection closes before the folder is removed.
    let scratch = if on_snapshot && level != CheckLevel::None {
        private_dir::remove_stale_scratch(files::parent_dir(path));
        Some(Scratch::new(files::parent_dir(path), "check")?)
    } else {
        None
    };
    let snapshot = match &scratch {
        Some(scratch) => match take_snapshot(&conn, path, scratch, schema, key) {
            Ok(copy) => Some(copy),
            // A disk too full for the copy stops the check, not the rest of the report (read from the file),
            // and is said as what it is: the file is fine as far as anyone knows, its copy had no room.
            Err(e)
                if matches!(e.kind(), ErrorKind::WriteFailed | ErrorKind::DiskFull)
                    && e.path().starts_with(scratch.path()) =>
            {
                let size = h.size_bytes.unwrap_or(0) + h.wal_bytes;
                h.problem(
                    e.kind(),
                    format!(
                        "{} was not checked: while {} runs the check reads a copy of it, and the copy ({:.1} MB) \
                         could not be written in {}: {}",
                        path.display(),
                        schema.owner,
                        size as f64 / f64::from(1 << 20),
                        private_dir::private_dir_of(path).display(),
                        e.what()
                    ),
                    format!(
                        "free that much space on the disk holding {} (or lift the quota or file-size limit), or stop \
                         {} and run doctor again: it then checks the file in place. The database itself is not \
                         affected",
                        files::parent_dir(path).display(),
                        schema.owner
                    ),
                );
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let no_room_for_the_copy = scratch.is_some() && snapshot.is_none();
    let checked = snapshot.as_ref().unwrap_or(&conn);
    if level != CheckLevel::None && !no_room_for_the_copy {
        // The type check reads every page too: on a connection of its own, beside the structural check.
        let beside = match &scratch {
            Some(scratch) => backup::open_copy(&snapshot_path(scratch, schema), key)?,
            None => read_pool::open_read_only(path, schema, key)?,
        };
        let checked_rows = match level {
            CheckLevel::Full => check::integrity_check_with_types_beside(checked, beside),
            _ => check::quick_check_with_types_beside(checked, beside),
        };
        let problems = checked_rows.at_db(path, schema)?;
        let problems = crate::key::explain_check(path, key, problems);
        let ok = problems.is_empty();
        h.check = Some(CheckOutcome {
            level,
            ok,
            messages: problems.iter().take(10).cloned().collect(),
            on_snapshot,
            snapshot_dir: scratch.as_ref().map(|s| s.path().to_path_buf()),
        });
        if !ok {
            h.problem_from(&Error::Corrupt {
                path: path.to_path_buf(),
                detail: problems.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
                schema: Some(schema),
            });
            return Ok(());
        }
        let violations = check::foreign_key_violations(checked).at_db(path, schema)?;
        h.foreign_key_violations = Some(violations.len());
        h.problems.extend(foreign_key_problem(path, schema, &violations));
        if let Some(check) = &schema.derived_check {
            let found = (check.find)(checked).at_db(path, schema)?;
            h.problems.extend(found.map(|d| derived_problem(path, schema, &d)));
        }
    }
    h.row_counts = check::row_counts(checked).at_db(path, schema)?;
    h.last_recovery = Provenance::read_all(checked)
        .at_db(path, schema)?
        .into_iter()
        .rev()
        .find(|p| p.event == RECOVERY_EVENT);
    Ok(())
}

/// Files of the database at `path` that other users may read: the file, its sidecars and lock file, the
/// copies moved aside beside it, the backups of files of its kind in its backup folder (pre-migration ones
/// too). Every file the stores create is 0600 and an owner's open makes its database and sidecars so again,
/// but a data directory copied with other modes (`cp -r` without `-p` under umask 022, an archive extracted,
/// a sync) leaves the rest readable, backups of config.db and their settings (tokens) among them. Metadata
/// reads only: one `readdir` per backup folder.
fn readable_by_others(h: &mut DbHealth, path: &Path, schema: &'static Schema, opts: &InspectOptions) {
    let backup_dir = opts.backup_dir_of(path);
    let backups = [backup_dir.clone(), backup::pre_migration_dir(&backup_dir)]
        .into_iter()
        .flat_map(|folder| std::fs::read_dir(folder).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{}-", schema.stem())))
        });
    let candidates = std::iter::once(path.to_path_buf())
        .chain(files::sidecars(path))
        .chain(std::iter::once(files::with_suffix(path, ".lock")))
        .chain(h.leftovers.iter().map(|l| l.path.clone()))
        .chain(backups);
    let dir = files::parent_dir(path);
    let folders = if backup_dir.starts_with(dir) {
        files::shell_quoted(dir)
    } else {
        format!("{} {}", files::shell_quoted(dir), files::shell_quoted(&backup_dir))
    };
    let whose = format!("of {}", schema.file_name);
    let problem = readable_by_others_problem(&whose, candidates, |_| {
        format!(
            "make them private: `chmod -R go= {folders}` (files splitstore creates are 0600, in 0700 folders; a copy \
             without `-p`, an archive extracted or a sync leaves other modes)"
        )
    });
    h.problems.extend(problem);
}

/// The `readable_by_others` problem of the files among `candidates` that other users may read
/// ([`files::open_to_others`]), `whose` saying whose files they are ("of activity.db"), the first named with its
/// mode; `remedy` is given every such file. None when there is none.
pub fn readable_by_others_problem(
    whose: &str,
    candidates: impl IntoIterator<Item = PathBuf>,
    remedy: impl FnOnce(&[PathBuf]) -> String,
) -> Option<Problem> {
    let open: Vec<(PathBuf, u32)> = candidates
        .into_iter()
        .filter_map(|p| files::open_to_others(&p).map(|mode| (p, mode)))
        .collect();
    let (first, mode) = open.first()?;
    let message = format!(
        "{} file(s) {whose} may be read by other users: {} (mode {mode:04o}){}",
        open.len(),
        first.display(),
        if open.len() > 1 { " and others" } else { "" }
    );
    let paths: Vec<PathBuf> = open.into_iter().map(|(p, _)| p).collect();
    Some(Problem {
        code: ErrorKind::ReadableByOthers,
        message,
        remedy: remedy(&paths),
    })
}

/// The `foreign_key_violations` problem of the file at `path`, when `violations` (its `foreign_key_check`)
/// names any row: a parent deleted by a tool with foreign keys off.
pub fn foreign_key_problem(path: &Path, schema: &'static Schema, violations: &[check::FkViolation]) -> Option<Problem> {
    if violations.is_empty() {
        return None;
    }
    let shown: Vec<String> = violations.iter().take(3).map(|v| v.to_string()).collect();
    Some(Problem {
        code: ErrorKind::ForeignKeyViolations,
        message: format!(
            "{} has {} foreign key violation(s): {}",
            path.display(),
            violations.len(),
            shown.join("; ")
        ),
        remedy: format!(
            "a parent row was deleted by a tool with foreign keys off (the sqlite3 shell's default): `{}` removes the \
             rows naming it, as that delete removes them with foreign keys on",
            schema.command("repair", files::parent_dir(path), "")
        ),
    })
}

/// The `schema_objects_missing` problem of `conn`'s file at `path`, at schema `version`, when a tool dropped
/// or changed indexes or triggers of its schema ([`crate::schema_objects`]). A few milliseconds: the fresh
/// file it compares with is built in memory.
pub fn schema_objects_problem(
    conn: &rusqlite::Connection,
    path: &Path,
    schema: &'static Schema,
    version: u32,
) -> crate::Result<Option<Problem>> {
    let missing = crate::schema_objects::missing(conn, schema, version).at_db(path, schema)?;
    if missing.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
    Ok(Some(Problem {
        code: ErrorKind::SchemaObjectsMissing,
        message: format!(
            "{} lacks {} of its schema's indexes and triggers, dropped or changed by a tool: {}. Without an index \
             the reads that use it scan the table; without a trigger what it keeps is no longer kept",
            path.display(),
            missing.len(),
            names.join(", ")
        ),
        remedy: format!(
            "`{}` creates them again as this build's schema {version} has them, in one transaction (and recounts \
             what a missing trigger did not keep)",
            schema.command("repair", files::parent_dir(path), "")
        ),
    }))
}

/// The `totals_disagree` problem of the file at `path`, whose derived tables disagree with its rows as
/// [`DerivedCheck::find`](crate::DerivedCheck::find) found.
fn derived_problem(path: &Path, schema: &'static Schema, found: &crate::Disagreement) -> Problem {
    Problem {
        code: ErrorKind::TotalsDisagree,
        message: format!(
            "{}: {} (a row deleted or changed by a tool that runs none of this application's code, such as the \
             sqlite3 shell or a database browser); reports count what the totals count",
            path.display(),
            found.detail
        ),
        remedy: format!(
            "`{}` recounts them from the rows the file holds, from {} on (before it they keep what retention \
             pruned), in one transaction",
            schema.command("repair", files::parent_dir(path), ""),
            crate::time::show_ms(found.since_ms)
        ),
    }
}

/// The `auto_vacuum_off` problem of `conn`'s file at `path`, when its schema creates it with
/// `auto_vacuum=INCREMENTAL` and it no longer has it. Only a `VACUUM` after `PRAGMA auto_vacuum` changes the
/// mode of a file that has tables (<https://sqlite.org/pragma.html#pragma_auto_vacuum>): a tool did that, or
/// rebuilt the file and wrote its header ids back by hand. Not refused: the owner works as before, and
/// `PRAGMA incremental_vacuum` does nothing, so space retention frees is reused but not given back.
pub fn auto_vacuum_problem(
    conn: &rusqlite::Connection,
    path: &Path,
    schema: &'static Schema,
) -> crate::Result<Option<Problem>> {
    if !schema.incremental_vacuum {
        return Ok(None);
    }
    let mode = crate::conn_ext::ConnExt::pragma_value::<i64>(conn, "auto_vacuum").at_db(path, schema)?;
    if mode == 2 {
        return Ok(None);
    }
    let mode = if mode == 1 { "FULL" } else { "NONE" };
    Ok(Some(Problem {
        code: ErrorKind::AutoVacuumOff,
        message: format!(
            "{} has auto_vacuum={mode}, not the INCREMENTAL it was created with (a tool changed it and ran VACUUM): \
             the space retention frees stays inside the file, never given back to the disk",
            path.display()
        ),
        remedy: format!(
            "`{}` sets it back: a VACUUM rewrites the file in place, atomically, every row kept (it needs free disk \
             space the size of the file)",
            schema.command("repair", files::parent_dir(path), "")
        ),
    }))
}

/// The `hard_linked` problem of the database at `path`, when the file has more than one name (`cp -al` or
/// `ln` of a data directory or a database, taken for a copy). A write through one name changes every other,
/// so another name is no backup; and SQLite names a database's `-wal` and `-shm` by the path it was opened
/// by, as splitstore names its lock file, so a process opening another name writes the same file beside
/// another log and under another lock, which corrupts it (<https://sqlite.org/howtocorrupt.html>, "Multiple
/// links to the same file"; os_unix.c's `verifyDbFile` only logs "multiple links to file"). Said, not
/// refused: nothing is wrong while nothing opens the other names, and refusing would stop the recording (an
/// owner is refused while another process has the file open by another name).
pub fn hard_linked_problem(path: &Path, schema: &'static Schema) -> Option<Problem> {
    use std::os::unix::fs::MetadataExt;
    let names = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?.nlink();
    (names > 1).then(|| Problem {
        code: ErrorKind::HardLinked,
        message: format!(
            "{} has {names} names (hard links): a write through one changes them all, so another name is no \
             backup, and a process opening the file by another name uses another -wal, -shm and lock file, \
             which corrupts it",
            path.display()
        ),
        remedy: format!(
            "find the other names (`find {} -xdev -samefile {}`) and remove them: they are this same file, so \
             nothing is lost; for a copy, take a backup (`{}`)",
            files::shell_quoted(&files::mount_point(path).unwrap_or_else(|| PathBuf::from("/"))),
            files::shell_quoted(path),
            schema.command("backup", files::parent_dir(path), "")
        ),
    })
}

/// The `network_file_system` problem of the data directory `dir`, when it lies on one
/// ([`files::network_file_system`]). Not refused: every process of one machine works there, and a home folder
/// on NFS is common; what breaks is a second machine using the same files.
pub fn network_file_system_problem(dir: &Path) -> Option<Problem> {
    let name = files::network_file_system(dir)?;
    Some(Problem {
        code: ErrorKind::NetworkFileSystem,
        message: format!(
            "{} is on a network file system ({name}): SQLite's write-ahead log needs every process using a \
             database on one machine, and the lock that keeps one owner per file may not be seen from another \
             machine, so the same files used from two machines can be corrupted",
            dir.display()
        ),
        remedy: format!(
            "move the data directory to a local disk: stop the processes using it (splitstore's daemon and server), \
             move {} to a folder on a local disk, and start them on the new place (`--data-dir`); until then, use \
             it from one machine at a time",
            files::shell_quoted(dir)
        ),
    })
}

/// What `quick_check` finds wrong in the backup at `path` (read with `key`), first finding only, or `None`.
fn backup_damage(path: &Path, key: Option<&Key>) -> Option<String> {
    let conn = read_pool::open_if_readable(path, key)?;
    let beside = read_pool::open_if_readable(path, key)?;
    match check::quick_check_with_types_beside(&conn, beside) {
        Ok(problems) => crate::key::explain_check(path, key, problems).into_iter().next(),
        Err(e) => Some(e.to_string()),
    }
}

/// A page-exact copy of the file `conn` reads, in `scratch`, for the checks to hold their transaction on.
fn take_snapshot(
    conn: &rusqlite::Connection,
    path: &Path,
    scratch: &Scratch,
    schema: &'static Schema,
    key: Option<&Key>,
) -> crate::Result<rusqlite::Connection> {
    let copy = snapshot_path(scratch, schema);
    drop(files::create_private_new(&copy)?);
    backup::snapshot_into(conn, path, &copy, key)
}

/// Where [`take_snapshot`] copies the file.
fn snapshot_path(scratch: &Scratch, schema: &'static Schema) -> PathBuf {
    scratch.path().join(schema.file_name)
}
