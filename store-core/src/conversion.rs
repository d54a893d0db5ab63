//! A kind's predecessor (see [`Predecessor`](crate::Predecessor)): an earlier version of the application
//! kept this data in another file, which a converter turns into the current kinds once.
//!
//! Until that conversion is recorded in the data directory, no owner creates an empty file beside the
//! predecessor, and readers report [`Error::NotConvertedYet`]: an empty file there would make the user's
//! data look lost (it is only not converted yet), and would then stand in the converter's way. The
//! converter records its completed work with [`record`]; a data directory with no predecessor file needs
//! no record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files;
use crate::private_dir;
use crate::schema::Schema;

/// The record's file name in the private folder.
pub const RECORD_FILE_NAME: &str = "converted.json";

/// What a completed conversion left in the data directory's private folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionRecord {
    /// The predecessor file that was converted (as given to the converter; shown, never opened: bytes of its
    /// path that are not UTF-8 are replaced in the record).
    #[serde(with = "crate::files::lossy_path")]
    pub predecessor: PathBuf,
    /// Its sha256 when it was converted.
    pub sha256: String,
    /// The converter's id for the run.
    pub run_id: String,
    /// When, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
}

/// Where the conversion record of `data_dir` lives.
pub fn record_path(data_dir: &Path) -> PathBuf {
    private_dir::private_dir(data_dir).join(RECORD_FILE_NAME)
}

/// The conversion recorded in `data_dir`, if any.
pub fn recorded(data_dir: &Path) -> Option<ConversionRecord> {
    let text = std::fs::read_to_string(record_path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records a completed conversion (0600, written to a temporary name, fsynced, renamed, directory fsynced).
pub fn record(data_dir: &Path, record: &ConversionRecord) -> Result<()> {
    let dir = private_dir::ensure(data_dir)?;
    // Never an empty record: the next start would take the data directory for one not converted yet.
    files::write_json_atomically(&dir.join(RECORD_FILE_NAME), record, "write the conversion record")
}

/// A predecessor modified after its conversion was recorded ([`written_since`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenSince {
    /// The predecessor file, as the record names it.
    #[serde(with = "crate::files::lossy_path")]
    pub predecessor: PathBuf,
    /// When the conversion was recorded, in Unix epoch milliseconds (UTC).
    pub converted_at_ms: i64,
    /// Its latest modification (of the file, or of a `-wal` holding writes), in Unix epoch milliseconds.
    pub modified_at_ms: i64,
}

impl WrittenSince {
    /// What a user reads about it, for `db` (one of the converted files).
    pub fn message(&self, db: &str) -> String {
        format!(
            "{} was modified at {}, after it was converted at {}: what was written to it since is not in {db}",
            self.predecessor.display(),
            crate::time::show_ms(self.modified_at_ms),
            crate::time::show_ms(self.converted_at_ms)
        )
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        format!(
            "if the old application still runs, stop it: nothing reads {} any more, and what it wrote there since \
             the conversion is only there (the file is never converted again). If the file was only copied or \
             touched, nothing is missing. Once what you need of it is kept, move it away from there",
            self.predecessor.display()
        )
    }
}

/// Whether the predecessor whose conversion `data_dir` records was modified after it: the old application
/// still runs (or ran again), and what it wrote since is in none of the converted files, with no error
/// anywhere. Told by the modification times of the file and of its `-wal` when that holds writes (in WAL
/// mode a write reaches the main file only at a checkpoint); the converter only reads the file, so both
/// predate the record. Never opens the file.
pub fn written_since(data_dir: &Path) -> Option<WrittenSince> {
    let mut record = recorded(data_dir)?;
    record.predecessor = predecessor_now(data_dir, &record);
    let modified_ms = |path: &Path, only_with_content: bool| {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if only_with_content && meta.len() == 0 {
            return None;
        }
        Some(chrono::DateTime::<chrono::Utc>::from(meta.modified().ok()?).timestamp_millis())
    };
    let latest = [
        modified_ms(&record.predecessor, false),
        modified_ms(&files::with_suffix(&record.predecessor, "-wal"), true),
    ]
    .into_iter()
    .flatten()
    .max()?;
    (latest > record.at_ms).then_some(WrittenSince {
        predecessor: record.predecessor,
        converted_at_ms: record.at_ms,
        modified_at_ms: latest,
    })
}

/// Where the predecessor a conversion of `data_dir` converted is now: where the record names it, or, once
/// nothing is there, at that name in `data_dir` (the record names it by its absolute path, which a data
/// directory moved or restored elsewhere no longer has).
pub fn predecessor_now(data_dir: &Path, record: &ConversionRecord) -> PathBuf {
    match record.predecessor.file_name() {
        Some(name) if std::fs::symlink_metadata(&record.predecessor).is_err() => data_dir.join(name),
        _ => record.predecessor.clone(),
    }
}

/// Whether the predecessor file now at `path` is another file than the one `record` converted: its sha256
/// is not the one recorded (a different legacy file put there, by a copy that kept an older time, say),
/// so its rows may be in none of the converted files. Reads the whole file: for a command about to remove
/// it, not for every start. `None` when it cannot be read (nothing is said then).
pub fn not_the_converted_file(path: &Path, record: &ConversionRecord) -> Option<bool> {
    Some(files::sha256_of_path(path).ok()? != record.sha256)
}

/// The predecessor of `schema` in the data directory of `db` (at `predecessor`, or its conventional place)
/// when it exists and no conversion is recorded: the file a new `db` must not be created beside.
pub fn pending(db: &Path, schema: &Schema, predecessor: Option<&Path>) -> Option<PathBuf> {
    let data_dir = files::parent_dir(db);
    let path = match predecessor {
        Some(p) => p.to_path_buf(),
        None => data_dir.join(schema.predecessor?.file_name),
    };
    let exists = std::fs::symlink_metadata(&path).is_ok();
    (exists && recorded(data_dir).is_none()).then_some(path)
}

/// [`Error::NotConvertedYet`] for `db` if its predecessor (in its conventional place) is pending.
pub fn pending_error(db: &Path, schema: &'static Schema) -> Option<Error> {
    pending(db, schema, None).map(|predecessor| Error::NotConvertedYet {
        path: db.to_path_buf(),
        predecessor,
        schema,
    })
}
