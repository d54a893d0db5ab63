//! Checkpoints: only a writable connection can run one, so the owner runs the policy
//! (<https://sqlite.org/wal.html#ckpt>).

use std::fs;
use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::files;

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
