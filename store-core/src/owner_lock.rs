//! The single-writer rule: an exclusive advisory lock on `<db>.lock`, held for the owner's lifetime.
//!
//! The lock is a separate file because on Linux `flock` (fs2) and SQLite's `fcntl` locks do not see each
//! other, so locking the database file itself would exclude nothing (hazards: "The ownership lock").
//! `flock` locks belong to an open file description, so a second `acquire` in the same process conflicts
//! with the first exactly as another process would. The OS drops the lock when the holder dies, so after
//! `kill -9` the next owner gets it at once. The lock file is never deleted: unlinking a lock file that
//! another process has open would let two owners lock two different inodes. Because someone else may delete
//! it anyway, the owner confirms before it writes that the lock file at its path is still the one it locked
//! ([`OwnerLock::confirm`]; [`OwnerConnection`](crate::OwnerConnection) does at most once a millisecond).
//!
//! A backup folder has a lock of its own, [`FolderLock`], taken the same way (its file made by
//! [`files::open_private`] by whatever writes the folder, never by a reader; its holder recorded as an owner's
//! is), waited for rather than refused while its holders run, refused once they are all stopped.
//!
//! fs2 is called fully qualified: since Rust 1.89 `std::fs::File` has inherent `lock`/`try_lock`/... methods
//! that shadow fs2's and report contention differently.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, fs, io, thread};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::files::{self, FileId};
use crate::process;

/// Who holds a lock: an owner lock (as written into the lock file by the holder), a backup folder's, or a
/// transaction on a database ([`crate::checkpoint::TransactionHolders`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    pub pid: u32,
    /// RFC 3339 time the holder took the lock.
    pub since: Option<String>,
    /// What the holder runs (`splitstore repair`: [`crate::process::command_of`]), so that a refusal tells
    /// an owner from a repair or restore holding the file for a moment; `None` where the system does not
    /// tell, and for this process as [`LockHolder::this_process`] names it.
    pub command: Option<String>,
    /// The holder converts a predecessor file into the data directory ([`OwnerLock::acquire_converting`],
    /// as the lock file records it). It records the conversion done while it still holds the lock and lets go
    /// an instant later: a process that waited for the conversion waits for that too, or its own open would
    /// be refused by the converter's lock ([`Error::Locked`]) when the instant is stretched (a busy machine).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub converting: bool,
}

impl LockHolder {
    /// This process, as a holder (its start time left out).
    pub fn this_process() -> LockHolder {
        LockHolder {
            pid: std::process::id(),
            since: None,
            command: None,
            converting: false,
        }
    }

    /// Whether the holder is this very process (a second handle opened by the same program).
    pub fn is_this_process(&self) -> bool {
        self.pid == std::process::id()
    }

    /// `holders` as a sentence names them (each as it displays, joined by "and"); `None` when there are none.
    pub fn listed(holders: &[LockHolder]) -> Option<String> {
        let names: Vec<String> = holders.iter().map(LockHolder::to_string).collect();
        (!names.is_empty()).then(|| names.join(" and "))
    }

    /// The pids of `holders`, separated by spaces as `kill` takes them (`kill -CONT 12 34`).
    pub fn pids(holders: &[LockHolder]) -> String {
        let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
        pids.join(" ")
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if self.is_this_process() {
            write!(f, " (this process)")?;
        }
        if let Some(since) = &self.since {
            write!(f, " since {since}")?;
        }
        if let Some(command) = &self.command {
            write!(f, ", running `{command}`")?;
        }
        Ok(())
    }
}

/// Whether a database has an owner right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockState {
    Free,
    /// Held; `holder` is `None` only if the holder had not yet written its pid.
    Held {
        holder: Option<LockHolder>,
    },
}

/// Exclusive ownership of one database file. Dropping it releases the lock.
#[derive(Debug)]
pub struct OwnerLock {
    file: File,
    /// The locked file: what `lock_path` must still name for this lock to guard the database.
    identity: FileId,
    /// Set once `lock_path` was found naming another file: from then on every [`confirm`](Self::confirm)
    /// fails, whatever the path names later.
    lost: bool,
    /// `lock_path` made absolute, which [`confirm`](Self::confirm) looks at: a process that changes its
    /// working directory after taking the lock (a daemon detaching) still looks at its own lock file.
    watched: PathBuf,
    lock_path: PathBuf,
    db_path: PathBuf,
    /// Taken by [`acquire_converting`](OwnerLock::acquire_converting): recorded in the lock file, and again
    /// when [`confirm`](OwnerLock::confirm) takes a removed lock file back.
    converting: bool,
}

/// How long `acquire` retries while another owner holds the lock before refusing: a real second owner is
/// refused well within a second.
const OWNER_GRACE: Duration = Duration::from_millis(60);

/// How long `acquire` waits while only [`probe`](OwnerLock::probe)s hold the lock. A probe holds its shared
/// lock for a few microseconds, but a probing thread descheduled on a busy machine can hold it for tens of
/// milliseconds or more, so probes are told from an owner by the kind of lock they hold, not by how long
/// they hold it. Only a shared lock kept this long (not a probe) makes `acquire` give up.
const SHARED_WAIT_LIMIT: Duration = Duration::from_secs(5);

impl OwnerLock {
    /// The lock file that guards `db_path`: `events.db` -> `events.db.lock`.
    pub fn path_for(db_path: &Path) -> PathBuf {
        files::with_suffix(db_path, ".lock")
    }

    /// Removes the lock file of a temporary database (a restore's copy, a salvage's output) once its
    /// connection is closed: it is this process's alone, as the caller holds the real database's lock. One
    /// that is not there (an open that failed before it made one) is no error.
    pub(crate) fn remove_temporary(db_path: &Path) -> Result<()> {
        let lock = Self::path_for(db_path);
        match std::fs::remove_file(&lock) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&lock, "remove", e)),
            _ => Ok(()),
        }
    }

    /// Takes ownership of `db_path`, or fails at once with [`Error::Locked`] naming the holder's pid.
    /// The lock file is created 0600 (a link or FIFO in its place is refused, its target untouched) and
    /// records this process's pid and start time. A data directory other users may write is refused
    /// ([`files::check_private_dir`]): whoever can write it can plant links where the owner writes; so is
    /// a database, lock file or private folder that belongs to another user ([`files::check_same_owner`]).
    pub fn acquire(db_path: &Path) -> Result<OwnerLock> {
        Self::take(db_path, false)
    }

    /// [`acquire`](Self::acquire) for a conversion of a predecessor file into the data directory (the split):
    /// the lock file records that its holder converts ([`LockHolder::converting`]), so that a process waiting
    /// for the conversion also waits until the converter lets go of the lock.
    pub fn acquire_converting(db_path: &Path) -> Result<OwnerLock> {
        Self::take(db_path, true)
    }

    fn take(db_path: &Path, converting: bool) -> Result<OwnerLock> {
        // Absolute from here on: an owner whose process changes its working directory (a daemon detaching)
        // goes on writing its records, checking its `-wal` and naming its file where the file is.
        let db_path = &files::absolute(db_path);
        let lock_path = Self::path_for(db_path);
        // Before the lock file is made: nothing is left beside a database SQLite could never open.
        files::check_sqlite_path(db_path)?;
        files::check_private_dir(files::parent_dir(db_path))?;
        // The private folder too: made by the first owner to run in the directory, it tells whose directory
        // it is while this database is not there yet (root's server started on a user's directory where only
        // the daemon had run made root's config.db there).
        files::check_same_owner(&[db_path, &lock_path, &crate::private_dir::private_dir_of(db_path)])?;
        files::refuse_sudo_into_users_folder(files::parent_dir(db_path))?;
        let file = files::open_private(&lock_path)?;
        lock_exclusive(&file, &lock_path, db_path).map_err(|e| match e.kind() {
            // The lock file linked with the database (`cp -al` of a data directory): held by an owner of the
            // file's other name, which has to go; waiting for that owner to stop would not help.
            ErrorKind::Locked => crate::open_database::refuse_open_by_another_name(db_path)
                .err()
                .unwrap_or(e),
            _ => e,
        })?;
        Ok(OwnerLock {
            identity: identity(&file, &lock_path)?,
            file: record_holder(file, &lock_path, converting)?,
            lost: false,
            watched: files::absolute(&lock_path),
            lock_path,
            db_path: db_path.to_path_buf(),
            converting,
        })
    }

    /// Reports whether `db_path` has an owner, and who, without becoming the owner. It holds a shared lock
    /// for the instant of the test (flock has no test-only call); [`acquire`](Self::acquire) waits it out
    /// however long that instant is stretched.
    pub fn probe(db_path: &Path) -> Result<LockState> {
        probe_lock_file(&Self::path_for(db_path))
    }

    /// Confirms, before a write, that this lock still guards its database: the lock file at its path is the
    /// one this handle locked. flock locks a file, not a name, so whoever removes a held lock file (a cleanup
    /// of "stale" lock files, a sync tool putting back an old copy) lets a second owner create and lock a new
    /// one while this one still writes: two writers, what the lock exists to prevent (the second owner's
    /// open even closes the first one's open session as "left by a writer that stopped").
    ///
    /// A lock file that is only gone is created and locked again, and the write goes on: no other owner can
    /// have come in between, as it would have created the file. Another file at the path (one an owner
    /// created, or any other) means another owner may have written meanwhile: [`Error::OwnershipLost`], for
    /// this call and every later one. Costs one `lstat`.
    pub fn confirm(&mut self) -> Result<()> {
        if !self.lost {
            match files::file_id(&self.watched) {
                Ok(id) if id == self.identity => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.lock_again()? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(Error::io(&self.watched, "read the metadata of", e)),
            }
            self.lost = true;
        }
        let holder = match probe_lock_file(&self.watched) {
            Ok(LockState::Held { holder }) => holder,
            _ => None,
        };
        Err(Error::OwnershipLost {
            path: self.db_path.clone(),
            lock_path: self.lock_path.clone(),
            holder,
        })
    }

    /// Creates the missing lock file again and locks it: `false` if another owner locked it first.
    fn lock_again(&mut self) -> Result<bool> {
        // Its directory may be gone too (the data directory moved away while the owner ran).
        let file = files::open_private(&self.watched).map_err(|e| match e {
            Error::Io { source, .. } => Error::io(&self.watched, "take back the removed lock file", source),
            other => other,
        })?;
        match lock_exclusive(&file, &self.watched, &self.db_path) {
            Ok(()) => {}
            Err(Error::Locked { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.identity = identity(&file, &self.watched)?;
        // The old descriptor's lock is released as it closes: nobody can reach that file any more.
        self.file = record_holder(file, &self.watched, self.converting)?;
        Ok(true)
    }

    /// The database this lock owns.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes the release immediate
        // even if the descriptor were duplicated. The pid text is left as a harmless hint.
        let _ = fs2::FileExt::unlock(&self.file);
    }
}

/// One backup folder's advisory lock (`<folder>/.backups.lock`, 0600, never deleted, as an owner's lock file
/// is not): held exclusively by whatever names, writes or removes backups in the folder (a backup run from
/// before its snapshot through its naming and rotation, a key rotation of the folder's backups), shared by
/// whatever picks a backup there and reads it (a restore or a repair, from its choice until the copy is
/// made). So two backups into one folder (a scheduled run and a manual one) are named in the order their
/// snapshots were taken, and a rotation never removes the backup a restore is reading. Both wait for the
/// lock while its holders run, however long (a backup, a restore of a large file): flock's locks go with
/// their holder, so a killed holder frees the folder at once. A holder that is stopped (Ctrl-Z in its
/// terminal, SIGSTOP) would hold it for as long as nobody continues it, and a backup run by cron, or an
/// owner's start that takes a pre-migration backup, would hang behind it without a word: once every holder
/// has been seen stopped for [`STOPPED_HOLDER_GRACE`], the wait gives up with [`Error::FolderHeldByStopped`]
/// naming it, or, for a caller that can be asked to stop ([`Waits::through_stopped_holders`]), says so and
/// waits on. Dropping it releases the lock.
#[derive(Debug)]
pub struct FolderLock {
    /// `None`: a folder this user cannot write (a read-only backup drive) is read without a lock.
    file: Option<File>,
}

impl FolderLock {
    /// The name of a backup folder's lock file.
    pub const FILE_NAME: &'static str = ".backups.lock";

    /// The lock file of the backup folder `folder`.
    pub fn path_for(folder: &Path) -> PathBuf {
        folder.join(Self::FILE_NAME)
    }

    /// Takes `folder`'s lock exclusively, waiting for any holder, and records this process's pid in it (as an
    /// owner's lock file records it). `folder` must exist.
    pub fn exclusive(folder: &Path) -> Result<FolderLock> {
        Self::exclusive_with(folder, &Waits::default())
    }

    /// [`exclusive`](Self::exclusive), waiting as `waits` says: it tells its callback who is in the way when
    /// it has to wait, and gives up with [`Error::Stopped`] once its stop flag is set.
    pub fn exclusive_with(folder: &Path, waits: &Waits) -> Result<FolderLock> {
        let path = Self::path_for(folder);
        let file = files::open_private(&path)?;
        wait_for_folder(&file, folder, &path, fs2::FileExt::try_lock_exclusive, waits)?;
        Ok(FolderLock {
            file: Some(record_holder(file, &path, false)?),
        })
    }

    /// Takes `folder`'s lock shared, waiting for an exclusive holder (a backup running into it). Only a lock
    /// file that is there is taken, never made: a reader leaves nothing in a folder it reads (a restore from
    /// a folder of downloads; one run as root, whose lock file in the user's folder would have shut the user's
    /// own backups out). A folder without one has had no backup of this build taken into it, so only such a
    /// first backup, starting as the restore reads, is not waited for. A folder that is not there, or whose
    /// lock file this user cannot open (a read-only drive, another user's folder), is read without the lock.
    pub fn shared(folder: &Path) -> Result<FolderLock> {
        Self::shared_with(folder, &Waits::default())
    }

    /// [`shared`](Self::shared), waiting as `waits` says (see [`exclusive_with`](Self::exclusive_with)).
    pub fn shared_with(folder: &Path, waits: &Waits) -> Result<FolderLock> {
        let path = Self::path_for(folder);
        let file = match files::open_private_existing(&path) {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ReadOnlyDirectory | ErrorKind::PermissionDenied | ErrorKind::AnotherUsersFiles
                ) || e.io_error().is_some_and(|io| io.kind() == io::ErrorKind::NotFound) =>
            {
                return Ok(FolderLock { file: None });
            }
            Err(e) => return Err(e),
        };
        wait_for_folder(&file, folder, &path, fs2::FileExt::try_lock_shared, waits)?;
        Ok(FolderLock { file: Some(file) })
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = fs2::FileExt::unlock(file);
        }
    }
}

/// How long every holder of a backup folder's lock must have been seen stopped before a wait for it gives up
/// (or, waiting through stopped holders, says they are): a stop of a moment (a debugger stepping, job
/// control) is waited out.
pub const STOPPED_HOLDER_GRACE: Duration = Duration::from_secs(1);

/// What a wait for a backup folder tells its caller ([`Waits::on_waiting`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FolderWait<'a> {
    /// The backup folder waited for.
    pub folder: &'a Path,
    /// Who holds its lock (empty when no holder could be named).
    pub holders: &'a [LockHolder],
    /// Every holder has been stopped (Ctrl-Z, SIGSTOP, a debugger) for [`STOPPED_HOLDER_GRACE`]; told only to
    /// a wait that waits through stopped holders ([`Waits::through_stopped_holders`]), each time they stop.
    pub holders_stopped: bool,
    /// The wait told of is over: the lock is taken (`holders` is then empty). Told once, after a wait that
    /// was told, so that a process showing "waiting for ..." (a service manager's status) stops showing it
    /// while it goes on with what it waited for (a copy of the whole file, before a migration).
    pub over: bool,
}

/// Told when a wait for another process begins, what it waits for and whom, and when it is over
/// ([`FolderWait`]).
pub type WaitingCallback = Arc<dyn Fn(&FolderWait<'_>) + Send + Sync>;

/// How a call that may wait for another process behaves while it waits: an owner's open for the backup folder
/// its pre-migration backup goes into, a backup, restore, repair or key rotation for the folder it writes
/// or reads, each held by another of those. The default waits silently until it can go on (and fails on
/// holders that are all stopped).
#[derive(Clone, Default)]
pub struct Waits {
    /// Set it (from a SIGTERM handler, say: signal-hook's `flag::register` sets one) and the wait gives up
    /// within 10 ms with [`Error::Stopped`], nothing changed. A process asked to stop while it waited would
    /// otherwise stop only once the other process let go, after doing what it had waited to do.
    pub stop: Option<Arc<AtomicBool>>,
    /// Told once, when the call has to wait, for what and for whom: a process that waits says why. Told again
    /// each time the holders are found stopped, when [`through_stopped_holders`](Self::through_stopped_holders),
    /// and once the wait is over with the lock taken ([`FolderWait::over`]).
    pub on_waiting: Option<WaitingCallback>,
    /// Keep waiting while every holder is stopped, instead of failing with [`Error::FolderHeldByStopped`] once
    /// they have been for [`STOPPED_HOLDER_GRACE`]. For a process a supervisor restarts (a daemon): failing,
    /// it was started again into the same refusal about once a second, until the supervisor gave up on it
    /// (systemd stops restarting a unit started five times in ten seconds: `StartLimitBurst`), and it was then
    /// not running when the holder was continued. Honoured only with a [`stop`](Self::stop) flag, the one way
    /// out of such a wait besides the holder: without one the wait fails as before.
    pub through_stopped_holders: bool,
}

impl Waits {
    /// Whether the stop flag is set.
    pub fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop.load(Ordering::SeqCst))
    }

    /// Whether a wait goes on while its holders are stopped: asked for, and a stop flag to end it.
    fn waits_through_stopped_holders(&self) -> bool {
        self.through_stopped_holders && self.stop.is_some()
    }

    /// Tells [`on_waiting`](Self::on_waiting), if any, what the wait waits for.
    fn tell(&self, wait: &FolderWait<'_>) {
        if let Some(on_waiting) = &self.on_waiting {
            on_waiting(wait);
        }
    }
}

impl fmt::Debug for Waits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waits")
            .field("stop", &self.stop)
            .field("on_waiting", &self.on_waiting.as_ref().map(|_| "<callback>"))
            .field("through_stopped_holders", &self.through_stopped_holders)
            .finish()
    }
}

/// Waits for `try_lock` on `file`, the lock file of `folder`, while its holders run; fails with
/// [`Error::FolderHeldByStopped`] once they have all been stopped for [`STOPPED_HOLDER_GRACE`] (unless `waits`
/// waits through them: it then says so and goes on), or with [`Error::Stopped`] once `waits`' stop flag is
/// set. Polled rather than a blocking flock, which no stopped holder would ever let return, nor a stop flag
/// interrupt.
fn wait_for_folder(
    file: &File,
    folder: &Path,
    lock_path: &Path,
    try_lock: fn(&File) -> io::Result<()>,
    waits: &Waits,
) -> Result<()> {
    let mut stopped_since: Option<Instant> = None;
    let mut next_look = Instant::now();
    let mut told = false;
    let mut told_stopped = false;
    let over = |told: bool| {
        if told {
            waits.tell(&FolderWait {
                folder,
                holders: &[],
                holders_stopped: false,
                over: true,
            });
        }
        Ok(())
    };
    loop {
        match try_lock(file) {
            Ok(()) => return over(told),
            Err(e) if is_contended(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(lock_path, "lock", e)),
        }
        if waits.stop_requested() {
            let during = match LockHolder::listed(&named_holders(file, lock_path)) {
                None => format!("waiting for the backup folder {}", folder.display()),
                Some(by) => format!("waiting for the backup folder {}, held by {by}", folder.display()),
            };
            return Err(Error::Stopped {
                path: folder.to_path_buf(),
                during,
            });
        }
        if !told {
            // Named, then tried once more: a holder that let go since the try above would be said as "another
            // process" (no one holds it) in a line about a wait that ends at once.
            let holders = named_holders(file, lock_path);
            if try_lock(file).is_ok() {
                return Ok(());
            }
            told = true;
            waits.tell(&FolderWait {
                folder,
                holders: &holders,
                holders_stopped: false,
                over: false,
            });
        }
        if Instant::now() >= next_look {
            next_look = Instant::now() + Duration::from_millis(100);
            let holders = holders_of(file, lock_path);
            let all_stopped = !holders.is_empty() && holders.iter().all(|&pid| process::stopped(pid));
            match (all_stopped, stopped_since) {
                (false, _) => (stopped_since, told_stopped) = (None, false),
                (true, None) => stopped_since = Some(Instant::now()),
                (true, Some(since)) if since.elapsed() >= STOPPED_HOLDER_GRACE && !told_stopped => {
                    let holders = named_holders(file, lock_path);
                    if !waits.waits_through_stopped_holders() {
                        return Err(Error::FolderHeldByStopped {
                            folder: folder.to_path_buf(),
                            holders,
                        });
                    }
                    told_stopped = true;
                    waits.tell(&FolderWait {
                        folder,
                        holders: &holders,
                        holders_stopped: true,
                        over: false,
                    });
                }
                (true, Some(_)) => {}
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of the processes holding a lock on `file`: those `/proc/locks` names ([`flock_holders`]), or,
/// where none of those runs, those whose descriptors of the file carry the lock ([`process::holding`],
/// this process included). `/proc/locks` names the process that took the lock, which may have exited after
/// handing its descriptor on (flock(1)'s `exec 9>FILE; flock 9` idiom, a fork); and, read a page at a time,
/// it may skip the holder's line while other locks come and go.
fn holders_of(file: &File, lock_path: &Path) -> Vec<u32> {
    let holders = flock_holders(file);
    if holders.iter().any(|&pid| i32::try_from(pid).is_ok_and(process::alive)) {
        return holders;
    }
    let Ok(id) = identity(file, lock_path) else {
        return Vec::new();
    };
    process::holding(&process::descriptors_on(id), id, |lock| lock.class == "FLOCK")
        .into_iter()
        .collect()
}

/// [`holders_of`], named: each pid with what it runs, and the time it took the lock where it recorded it
/// (an exclusive holder does; a shared one, a restore, does not).
fn named_holders(file: &File, lock_path: &Path) -> Vec<LockHolder> {
    let recorded = read_holder(file);
    holders_of(file, lock_path)
        .into_iter()
        .map(|pid| LockHolder {
            pid,
            since: recorded.as_ref().filter(|r| r.pid == pid).and_then(|r| r.since.clone()),
            command: process::command_of(pid),
            converting: recorded.as_ref().is_some_and(|r| r.pid == pid && r.converting),
        })
        .collect()
}

/// The pids that hold a flock on `file`, as the kernel lists them in `/proc/locks` ([`process::locks_on`]).
/// Empty where `/proc/locks` does not tell.
fn flock_holders(file: &File) -> Vec<u32> {
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = process::locks_on((meta.dev(), meta.ino()))
        .into_iter()
        .filter(|lock| lock.class == "FLOCK")
        .map(|lock| lock.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Takes the exclusive lock on `file`, or fails with [`Error::Locked`] naming the holder once an owner has
/// held it past [`OWNER_GRACE`] (or only probes past [`SHARED_WAIT_LIMIT`]).
fn lock_exclusive(file: &File, lock_path: &Path, db_path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match fs2::FileExt::try_lock_exclusive(file) {
            Ok(()) => return Ok(()),
            Err(e) if is_contended(&e) => {
                // Held by an owner (exclusive) or only by probes (shared). A shared lock is granted only
                // while no exclusive lock is held, so trying one tells the two apart.
                let owner_holds = match fs2::FileExt::try_lock_shared(file) {
                    Ok(()) => {
                        fs2::FileExt::unlock(file).map_err(|e| Error::io(lock_path, "unlock", e))?;
                        false
                    }
                    Err(e) if is_contended(&e) => true,
                    Err(e) => return Err(Error::io(lock_path, "lock", e)),
                };
                let limit = if owner_holds { OWNER_GRACE } else { SHARED_WAIT_LIMIT };
                if start.elapsed() >= limit {
                    // Named, then tried once more: a holder that let go since the try above (a daemon exiting
                    // as its successor starts) would be refused as "another process", or by a pid that no
                    // longer holds the lock.
                    let holder = read_holder(file);
                    return match fs2::FileExt::try_lock_exclusive(file) {
                        Ok(()) => Ok(()),
                        Err(e) if is_contended(&e) => Err(Error::Locked {
                            path: db_path.to_path_buf(),
                            holder,
                        }),
                        Err(e) => Err(Error::io(lock_path, "lock", e)),
                    };
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io(lock_path, "lock", e)),
        }
    }
}

/// Writes this process's pid and the time into the lock file it just locked (what [`read_holder`] reads), and
/// whether it converts ([`LockHolder::converting`]; a line earlier builds do not read).
fn record_holder(mut file: File, lock_path: &Path, converting: bool) -> Result<File> {
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut record = format!("pid={}\nsince={since}\n", std::process::id());
    if converting {
        record.push_str("converting=true\n");
    }
    file.set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(record.as_bytes()))
        .map_err(|e| Error::io(lock_path, "write the owner's pid into", e))?;
    Ok(file)
}

/// Which file an open lock file is.
fn identity(file: &File, lock_path: &Path) -> Result<FileId> {
    files::file_id_of(file).map_err(|e| Error::io(lock_path, "read the metadata of", e))
}

/// [`OwnerLock::probe`] of the lock file at `lock_path`.
fn probe_lock_file(lock_path: &Path) -> Result<LockState> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(lock_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Free),
        Err(e) => return Err(Error::io(lock_path, "open", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(lock_path, "read the metadata of", e))?;
    files::regular(lock_path, meta)?;
    match fs2::FileExt::try_lock_shared(&file) {
        Ok(()) => {
            fs2::FileExt::unlock(&file).map_err(|e| Error::io(lock_path, "unlock", e))?;
            Ok(LockState::Free)
        }
        Err(e) if is_contended(&e) => Ok(LockState::Held {
            holder: read_holder(&file),
        }),
        Err(e) => Err(Error::io(lock_path, "probe the lock", e)),
    }
}

fn is_contended(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// The holder recorded in the lock file, read through the open descriptor. A recorded pid that names no
/// live process is not the holder (the holder has not written its pid yet, or is a process that inherited
/// the descriptor): `None`, "another process".
fn read_holder(file: &File) -> Option<LockHolder> {
    let mut bytes = vec![0u8; 256];
    let n = std::os::unix::fs::FileExt::read_at(file, &mut bytes, 0).ok()?;
    let text = String::from_utf8_lossy(&bytes[..n]);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::trim)
    };
    let pid: u32 = field("pid")?.parse().ok()?;
    if !process::alive(i32::try_from(pid).ok()?) {
        return None;
    }
    Some(LockHolder {
        pid,
        since: field("since").map(str::to_string),
        command: (pid != std::process::id()).then(|| process::command_of(pid)).flatten(),
        converting: field("converting") == Some("true"),
    })
}
