//! Files that hold a database's user data outside the database itself: kept on purpose (a damaged file
//! quarantined by repair, the file a restore replaced) or left by a command that was killed (a restore's
//! temporary copy, a backup's partial file). Nothing removes the ones kept on purpose by itself; they are
//! listed by diagnostics with their age and size, and removed only when the operator asks ([`remove`]).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::files;
use crate::schema::Predecessor;

/// One such file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    #[serde(with = "crate::files::lossy_path")]
    pub path: PathBuf,
    /// What it is, in a few words.
    pub what: String,
    pub size_bytes: u64,
    /// Since when it is one: for a file moved aside, the time in its name (a rename keeps the time the file
    /// was last written, maybe months before: a restore's replaced config.db would be as old as the server's
    /// last write), else its last modification.
    pub since: DateTime<Utc>,
}

impl Leftover {
    /// Its age in whole days at `now` (below 0 for a time ahead of the clock).
    pub fn age_days(&self, now: DateTime<Utc>) -> i64 {
        (now - self.since).num_days()
    }

    /// Reads the metadata of `path` into a leftover described as `what`, one since its last modification.
    /// `None` if it is gone or not a regular file: every leftover a command leaves is one, so a folder, a
    /// link or a FIFO named like one is the user's, never listed nor removed.
    pub fn at(path: PathBuf, what: impl Into<String>) -> Option<Leftover> {
        let meta = fs::symlink_metadata(&path).ok().filter(|m| m.is_file())?;
        Some(Leftover {
            what: what.into(),
            size_bytes: meta.len(),
            since: meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or(DateTime::UNIX_EPOCH),
            path,
        })
    }
}

/// The leftovers of the database at `db`: `<name>.<tag>-<time>[-n]` files moved aside (with their
/// sidecars), `<name>.restoring` of a killed restore, and `.partial` files of killed backups in
/// `backup_dir`.
pub fn find(db: &Path, backup_dir: &Path) -> Vec<Leftover> {
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let prefix = format!("{name}.");
    for entry in read_dir(files::parent_dir(db)) {
        let Some(file) = entry.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        // The lock file a temporary copy's open took (`<name>.restoring.lock`) goes with the copy.
        let base = without_temporary_lock(files::sidecar_base(rest));
        let mut moved_at = None;
        let what = if base == "restoring" {
            "the temporary copy of a restore that did not finish".to_string()
        } else if base == "rekeying" {
            "the copy of a key rotation that did not finish (under the new key)".to_string()
        } else if base == crate::salvage::TEMP_SUFFIX.trim_start_matches('.') {
            "the output of a salvage that did not finish".to_string()
        } else if let Some((tag, stamp)) = base.split_once('-')
            && let Some(at) = stamp
                .get(..20)
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.3fZ").ok())
        {
            moved_at = Some(at.and_utc());
            match tag {
                "corrupt" => "a damaged copy moved aside by repair".to_string(),
                "replaced" => "the file a restore replaced".to_string(),
                "orphan" => "the -wal (and -shm) of a file replaced or removed by hand after a crash, moved aside \
                             by repair: that file's last writes"
                    .to_string(),
                "unfinished" => "the output of a split that did not finish, moved aside by the next split (a daemon \
                                 may have written to it since)"
                    .to_string(),
                "rekeyed" => {
                    "the file as it was before a key rotation (under the old key, or in the clear)".to_string()
                }
                other => format!("a copy moved aside ({other})"),
            }
        } else {
            continue;
        };
        found.extend(Leftover::at(entry, what).map(|l| Leftover {
            since: moved_at.unwrap_or(l.since),
            ..l
        }));
    }
    let stem = name.strip_suffix(".db").unwrap_or(name);
    let partial = format!(".{stem}-");
    for dir in [backup_dir.to_path_buf(), crate::backup::pre_migration_dir(backup_dir)] {
        for entry in read_dir(&dir) {
            let is_partial = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&partial) && n.contains(".partial"));
            if is_partial {
                found.extend(Leftover::at(entry, "the partial file of a backup that did not finish"));
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The leftovers of a conversion in `data_dir`: the predecessor file once its conversion is recorded (kept
/// for a rollback, but a plaintext copy of the user's data), the converter's rejects file, and its temporary
/// files (a killed run's; a running one holds the owner locks, so only remove them with the locks held).
pub fn of_conversion(data_dir: &Path, predecessor: &Predecessor) -> Vec<Leftover> {
    let mut found = Vec::new();
    if let Some(record) = crate::conversion::recorded(data_dir) {
        let legacy = data_dir.join(predecessor.file_name);
        let converted = crate::time::show_ms(record.at_ms);
        let what = match crate::conversion::written_since(data_dir) {
            Some(w) => format!(
                "the legacy database, converted {converted} and modified since (at {}): what was written to it \
                 since is only there",
                crate::time::show_ms(w.modified_at_ms)
            ),
            None => format!("the legacy database, converted {converted}: kept for a rollback to the old app"),
        };
        found.extend(Leftover::at(legacy, what));
    }
    for entry in read_dir(data_dir) {
        let Some(name) = entry.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if crate::conversion::unplaced_output(data_dir, &entry, predecessor.converter_temp_prefix) {
            found.extend(Leftover::at(
                entry,
                format!(
                    "an output of a conversion interrupted while it put them in place, not in place yet: kept, and \
                     put in place by the next run of {}",
                    predecessor.converter
                ),
            ));
        } else if name.starts_with(predecessor.converter_temp_prefix) {
            found.extend(Leftover::at(
                entry,
                "a temporary file of a conversion that did not finish",
            ));
        } else if name == predecessor.converter_rejects {
            found.extend(Leftover::at(
                entry,
                "the rows the conversion could not keep (secrets redacted)",
            ));
        } else if name.starts_with(&format!("{}.", predecessor.converter_rejects)) {
            found.extend(Leftover::at(entry, "the rejects of an earlier, interrupted conversion"));
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Why `leftover` may still be in use by a command that runs now, if it may: a file of an interrupted
/// restore (until the next owner's start undoes it), an output of an interrupted conversion not in place yet
/// (until the converter runs again: [`crate::conversion::unplaced_output`]), a backup's partial file while the process named in it
/// lives, or (unless the caller holds both owner locks, `locks_held`) a temporary
/// file of a command that holds them: a restore, a key rotation, a salvage, a split.
pub fn in_use(leftover: &Leftover, predecessor: Option<&Predecessor>, locks_held: bool) -> Option<String> {
    if crate::restore::named_by_interrupted(&leftover.path) {
        return Some(
            "a restore, repair or key rotation was interrupted and this is one of its files (the user's file moved \
             aside, or the copy that was to replace it): the next start of an owner puts the files back"
                .into(),
        );
    }
    let name = leftover.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(p) = predecessor
        && crate::conversion::unplaced_output(
            files::parent_dir(&leftover.path),
            &leftover.path,
            p.converter_temp_prefix,
        )
    {
        return Some(format!(
            "an output of a conversion interrupted while it put them in place, held nowhere else: run {} again (as \
             doctor says), which puts it in place",
            p.converter
        ));
    }
    if let Some(p) = predecessor
        && name == p.converter_rejects
        && crate::conversion::in_progress(files::parent_dir(&leftover.path)).is_some_and(|r| r.placing)
    {
        return Some(format!(
            "the rejects of a conversion interrupted while it put its outputs in place: kept until {} runs again",
            p.converter
        ));
    }
    let base = without_temporary_lock(files::sidecar_base(name));
    if let Some(pid) = crate::backup::partial_writer(base).filter(|pid| crate::process::alive(*pid)) {
        return Some(format!("the backup writing it (pid {pid}) still runs"));
    }
    let of_lock_holder = TEMPORARY_SUFFIXES.iter().any(|suffix| base.ends_with(suffix))
        || predecessor.is_some_and(|p| name.starts_with(p.converter_temp_prefix));
    (of_lock_holder && !locks_held).then(|| {
        "an owner, a restore, a repair or a split holds the owner locks, and it may still be using it".to_string()
    })
}

/// What the temporary copies of a command holding the owner locks end with: a restore's, a key rotation's, a
/// salvage's.
const TEMPORARY_SUFFIXES: [&str; 3] = [".restoring", ".rekeying", crate::salvage::TEMP_SUFFIX];

/// `name` without the `.lock` of a temporary copy's lock file (`x.restoring.lock`: the copy's open took it),
/// which is a leftover of that copy.
fn without_temporary_lock(name: &str) -> &str {
    name.strip_suffix(".lock")
        .filter(|copy| {
            TEMPORARY_SUFFIXES
                .iter()
                .any(|suffix| copy.ends_with(suffix) || *copy == &suffix[1..])
        })
        .unwrap_or(name)
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Removes `leftover`, a regular file (anything else now at its path, a folder put there since, is refused:
/// [`Error::UnsafePath`]). The caller decides which: nothing here chooses by age or name.
pub fn remove(leftover: &Leftover) -> Result<()> {
    let path = &leftover.path;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(meta) if !meta.is_file() => return files::regular(path, meta),
        _ => {}
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}
