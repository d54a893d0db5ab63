//! Checkpoints: only a writable connection can run one, so the owner runs the policy
//! (<https://sqlite.org/wal.html#ckpt>).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::files;
use crate::owner_lock::LockHolder;
use crate::process;

/// Checkpoint modes (<https://sqlite.org/c3ref/wal_checkpoint_v2.html>).
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

/// Whether the database's `-wal` holds a frame of page `page` (<https://sqlite.org/fileformat2.html#walformat>:
/// a 32-byte header, then frames of a 24-byte header and a page; a frame counts while its salt is the
/// header's, as SQLite counts it). Reads the frame headers with `pread`, one per frame. The `-wal` carries no
/// lock of SQLite's (those are on the file and the `-shm`), so opening and closing it here drops none.
pub fn wal_holds_page(db_path: &Path, page: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(wal) = fs::File::open(files::with_suffix(db_path, "-wal")) else {
        return false;
    };
    let mut header = [0u8; 32];
    if wal.read_exact_at(&mut header, 0).is_err() {
        return false;
    }
    let page_size = u64::from(u32::from_be_bytes([header[8], header[9], header[10], header[11]]));
    let page_size = if page_size == 1 { 65_536 } else { page_size };
    let mut frame = [0u8; 24];
    let mut at = 32;
    while page_size >= 512 && wal.read_exact_at(&mut frame, at).is_ok() && frame[8..16] == header[16..24] {
        if u64::from(u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])) == page {
            return true;
        }
        at += 24 + page_size;
    }
    false
}

/// Size of the database's `-wal` file in bytes (0 when there is none). Reads metadata only.
pub fn wal_bytes(db_path: &Path) -> u64 {
    fs::metadata(files::with_suffix(db_path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A transaction another connection holds open on a database: a read transaction keeps its WAL from being
/// reset, a write transaction keeps every other writer waiting (past its busy timeout: `busy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Read,
    Write,
}

/// The processes holding a transaction open on a database (told by their locks on its `-shm`), as doctor,
/// the daemon and a `busy` error say them. A stopped one (Ctrl-Z on a `sqlite3` shell) is said stopped: it
/// never ends its transaction by itself, and closing it takes continuing it first, or a `kill` it acts on
/// only once continued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionHolders {
    transaction: Transaction,
    holders: Vec<LockHolder>,
    /// The pids among `holders` that are stopped ([`process::stopped`]).
    stopped: Vec<u32>,
}

impl TransactionHolders {
    /// Those holding a read transaction on the database at `db_path`, keeping its WAL from being reset;
    /// `None` where none is seen.
    pub fn reading(db_path: &Path) -> Option<TransactionHolders> {
        let reading = |lock: &process::ListedLock| lock.shared && lock.covers_any(&READ_MARK_BYTES);
        Self::found(Transaction::Read, shm_lock_holders(db_path, reading))
    }

    /// Those holding a write transaction on the database at `db_path`: every other writer waits for them;
    /// `None` where none is seen.
    pub fn writing(db_path: &Path) -> Option<TransactionHolders> {
        let writing =
            |lock: &process::ListedLock| !lock.shared && lock.covers_any(&(WRITE_LOCK_BYTE..=WRITE_LOCK_BYTE));
        Self::found(Transaction::Write, shm_lock_holders(db_path, writing))
    }

    fn found(transaction: Transaction, holders: Vec<LockHolder>) -> Option<TransactionHolders> {
        let stopped = holders
            .iter()
            .map(|h| h.pid)
            .filter(|pid| process::stopped(*pid))
            .collect();
        (!holders.is_empty()).then_some(TransactionHolders {
            transaction,
            holders,
            stopped,
        })
    }

    /// Each one as it displays, a stopped one followed by ", which is stopped (Ctrl-Z, SIGSTOP or a
    /// debugger)", joined by "and".
    pub fn named(&self) -> String {
        let names: Vec<String> = self
            .holders
            .iter()
            .map(|h| match self.stopped.contains(&h.pid) {
                true => format!("{h}, which is stopped (Ctrl-Z, SIGSTOP or a debugger)"),
                false => h.to_string(),
            })
            .collect();
        names.join(" and ")
    }

    /// What ends their transactions, for an operator to do.
    pub fn remedy(&self) -> String {
        let (kind, ends) = match self.transaction {
            Transaction::Read => ("read", "close that program, or let its read finish"),
            Transaction::Write => ("write", "commit or roll it back, or close that program"),
        };
        let named = self.named();
        if self.stopped.is_empty() {
            return format!("end the {kind} transaction of {named} ({ends})");
        }
        let pids: Vec<String> = self.stopped.iter().map(u32::to_string).collect();
        let pids = pids.join(" ");
        format!(
            "end the {kind} transaction of {named}: continue pid {pids} ({}), then {ends}; or end it ({})",
            process::continue_stopped(&pids),
            process::end_stopped(&pids)
        )
    }
}

/// The byte of a `-shm` whose exclusive lock is the WAL's write lock (os_unix.c, `UNIX_SHM_BASE`; wal.c,
/// `WAL_WRITE_LOCK`): one writer at a time holds it from its first write to its commit or rollback.
const WRITE_LOCK_BYTE: u64 = 120;

/// The bytes of a `-shm` whose shared locks are read transactions: SQLite's unix VFS takes its WAL locks on
/// the bytes from 120 on (os_unix.c, `UNIX_SHM_BASE`), and a reader holds lock 3 + i while it reads at read
/// mark i, of five (wal.c, `WAL_READ_LOCK`, `WAL_NREADER`). A checkpoint copies nothing past a reader's mark,
/// and none while one reads at mark 0 (the file alone), so whoever holds one of these bytes holds the WAL.
const READ_MARK_BYTES: std::ops::RangeInclusive<u64> = 123..=127;

/// The processes holding a POSIX lock on the `-shm` of the database at `db_path` that `wanted` picks (this
/// one included), named. Told in three looks 20 ms apart, so that a transaction that only passes by (a
/// report's read, the owner's own commit) is left out: asked of each descriptor of the `-shm` this process
/// may look into (`/proc/PID/fdinfo/FD`, written whole), and of `/proc/locks` for the processes of other
/// users, whose descriptors are closed to it (read a page at a time, it may skip a line while other locks
/// come and go: a best effort). Empty where none holds one in every look, or the system does not tell. The
/// `-shm` is never opened: closing a descriptor of it would drop this process's SQLite locks on it
/// (<https://sqlite.org/howtocorrupt.html>, 2.2).
fn shm_lock_holders(db_path: &Path, wanted: impl Fn(&process::ListedLock) -> bool) -> Vec<LockHolder> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(files::with_suffix(db_path, "-shm")) else {
        return Vec::new();
    };
    let id = (meta.dev(), meta.ino());
    let wanted = |lock: &process::ListedLock| lock.class == "POSIX" && wanted(lock);
    let descriptors = process::descriptors_on(id);
    let seen: BTreeSet<u32> = descriptors.iter().map(|(pid, _)| *pid).collect();
    process::named(process::seen_throughout(|| {
        let mut held = process::holding(&descriptors, id, wanted);
        held.extend(
            process::locks_on(id)
                .into_iter()
                .filter(|lock| wanted(lock) && !seen.contains(&lock.pid))
                .map(|lock| lock.pid),
        );
        held
    }))
}
