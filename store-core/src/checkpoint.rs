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

/// Size of the database's `-wal` file in bytes (0 when there is none). Reads metadata only.
pub fn wal_bytes(db_path: &Path) -> u64 {
    fs::metadata(files::with_suffix(db_path, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}
