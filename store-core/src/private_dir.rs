//! The data directory's private folder, `<data dir>/.private` (0700): what the stores keep beside their
//! databases that is not a database. Check snapshots (copies of user data) live here rather than under the
//! system temp directory, so they are never readable by another user and never outlive the data directory;
//! a snapshot a kill left behind is removed by the next run that looks ([`remove_stale_scratch`]).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::files;

/// Name of the private folder inside a data directory.
pub const PRIVATE_DIR_NAME: &str = ".private";

/// `<data_dir>/.private`.
pub fn private_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(PRIVATE_DIR_NAME)
}

/// The private folder of the data directory holding `db`.
pub fn private_dir_of(db: &Path) -> PathBuf {
    private_dir(files::parent_dir(db))
}

/// Creates the private folder (0700) if missing and returns it. A symlink in its place is refused.
pub fn ensure(data_dir: &Path) -> Result<PathBuf> {
    let dir = private_dir(data_dir);
    files::create_private_dir_all(&dir)?;
    files::refuse_symlink(&dir)?;
    Ok(dir)
}

/// A folder of one run inside the private folder, named `<purpose>-<pid>-<n>` so that no two runs (two
/// processes, or two threads of one process) ever share one; removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch(PathBuf);

/// Numbers the scratch folders of this process.
static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

impl Scratch {
    /// A new, empty, private scratch folder for `purpose` (`check`) in `data_dir`'s private folder.
    pub fn new(data_dir: &Path, purpose: &str) -> Result<Scratch> {
        Self::under(&ensure(data_dir)?, purpose)
    }

    /// A new, empty, private (0700) scratch folder for `purpose` directly under `parent`, which must exist.
    pub fn under(parent: &Path, purpose: &str) -> Result<Scratch> {
        let n = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{purpose}-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(files::PRIVATE_DIR_MODE)
            .create(&dir)
            .map_err(|e| Error::io(&dir, "create the scratch folder", e))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the scratch folders (`<purpose>-<pid>-<n>`) of processes that no longer run: a check killed
/// mid-way leaves its snapshot behind. Returns what was removed.
pub fn remove_stale_scratch(data_dir: &Path) -> Vec<PathBuf> {
    remove_stale_scratch_under(&private_dir(data_dir), None)
}

/// Removes the scratch folders under `parent` (of `purpose` only, if given) whose process no longer runs.
pub fn remove_stale_scratch_under(parent: &Path, purpose: Option<&str>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if purpose.is_some_and(|p| !name.starts_with(&format!("{p}-"))) {
            continue;
        }
        let Some(pid) = scratch_pid(&name) else { continue };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !crate::process::alive(pid) && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The pid in a scratch folder's name `<purpose>-<pid>-<n>`.
fn scratch_pid(name: &str) -> Option<i32> {
    let mut parts = name.rsplitn(3, '-');
    let n = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::scratch_pid;

    #[test]
    fn scratch_names_give_their_pid() {
        assert_eq!(scratch_pid("check-4242-0"), Some(4242));
        assert_eq!(scratch_pid("check-extra-4242-17"), Some(4242));
        assert_eq!(scratch_pid("check-4242"), None);
        assert_eq!(scratch_pid("events.db.opened"), None);
    }
}
