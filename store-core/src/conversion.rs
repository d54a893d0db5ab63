//! A kind's predecessor (see [`Predecessor`](crate::Predecessor)): an earlier version of the application
//! kept this data in another file, which a converter turns into the current kinds once.
//!
//! Until that conversion is recorded in the data directory, no owner creates an empty file beside the
//! predecessor, and readers report [`Error::NotConvertedYet`]: an empty file there would make the user's
//! data look lost (it is only not converted yet), and would then stand in the converter's way. The
//! converter records its completed work with [`record`]; a data directory with no predecessor file needs
//! no record.
//!
//! A converter also records the run it starts ([`begin`], `converting.json`), before it writes anything in
//! the data directory, and once more when it starts putting its outputs in place ([`InProgress::placing`]);
//! the record goes when the run ends ([`end`]). Until then the conversion is [pending] wherever the
//! predecessor is (a legacy file given from outside the data directory too): no owner creates an empty file
//! beside the half of a conversion a kill left in place, diagnostics say to run the converter again, and
//! cleanup keeps its outputs not in place yet ([`unplaced_output`]): the next run puts them in place.

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

/// The file name of the record of a conversion under way ([`begin`]) in the private folder.
pub const IN_PROGRESS_FILE_NAME: &str = "converting.json";

/// A conversion under way in the data directory, as its converter recorded it ([`begin`]): the run that a
/// kill interrupted, once that converter is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    /// The predecessor file it converts (as given to the converter).
    #[serde(with = "crate::files::lossy_path")]
    pub predecessor: PathBuf,
    /// The converter's id for the run (the one its [`ConversionRecord`] will have).
    pub run_id: String,
    /// When the run started, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
    /// The outputs are complete and verified, and the converter has started to put them in place: the
    /// temporary files of this run that are still there are outputs, to be put in place, never removed.
    #[serde(default)]
    pub placing: bool,
    /// The predecessor's sha256 as the run read it (known once [`placing`](Self::placing)).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Records the conversion `run` as under way (or its new stage): 0600, written to a temporary name, fsynced,
/// renamed, directory fsynced.
pub fn begin(data_dir: &Path, run: &InProgress) -> Result<()> {
    let dir = private_dir::ensure(data_dir)?;
    files::write_json_atomically(&dir.join(IN_PROGRESS_FILE_NAME), run, "record the conversion under way")
}

/// Removes the record of the conversion under way (the run ended: done, or failed with nothing in place).
pub fn end(data_dir: &Path) -> Result<()> {
    let path = private_dir::private_dir(data_dir).join(IN_PROGRESS_FILE_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => files::sync_dir(files::parent_dir(&path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path, "remove", e)),
    }
}

/// The conversion recorded as under way in `data_dir` and not completed (a record of a completed run of
/// the same id, left by a converter killed between its two records, is not one).
pub fn in_progress(data_dir: &Path) -> Option<InProgress> {
    let path = private_dir::private_dir(data_dir).join(IN_PROGRESS_FILE_NAME);
    let text = std::fs::read_to_string(path).ok()?;
    let run: InProgress = serde_json::from_str(&text).ok()?;
    match recorded(data_dir) {
        Some(done) if done.run_id == run.run_id => None,
        _ => Some(run),
    }
}

/// Whether `path` (a file of `data_dir` named with `temp_prefix`, the converter's prefix of temporary files)
/// is an output of the interrupted conversion that was being put in place: the next run of the converter
/// puts it in place, and nothing else holds its data.
pub fn unplaced_output(data_dir: &Path, path: &Path, temp_prefix: &str) -> bool {
    let Some(run) = in_progress(data_dir).filter(|r| r.placing) else {
        return false;
    };
    let prefix = format!("{temp_prefix}{}.", run.run_id);
    files::parent_dir(path) == data_dir
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix))
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
/// when it exists and no conversion is recorded: the file a new `db` must not be created beside. Or, with a
/// conversion of the data directory recorded as under way ([`in_progress`]: a converter killed mid-run),
/// the predecessor that run converts, wherever it is.
pub fn pending(db: &Path, schema: &Schema, predecessor: Option<&Path>) -> Option<PathBuf> {
    let data_dir = files::parent_dir(db);
    if schema.predecessor.is_some()
        && let Some(run) = in_progress(data_dir)
    {
        return Some(run.predecessor);
    }
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
        interrupted: in_progress(files::parent_dir(db)).is_some(),
        schema,
    })
}
