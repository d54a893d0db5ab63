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
