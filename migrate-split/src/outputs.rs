//! The data directory: what is already there, temporary files, and putting finished outputs in place.
//! The protocol (temporary names, rename order, what counts as a finished split after a kill) is
//! documented once, in the crate documentation ("Interrupted runs").

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use store_core::{Provenance, files};

use crate::convert::{OutputPaths, SplitDetail};
use crate::error::{Result, SplitError};
use store_core::files::file_uri;

/// Name of the rejects file in the data directory (declared with the stores' predecessor).
pub const REJECTS_FILE_NAME: &str = activity_store::schema::LEGACY.converter_rejects;
/// Prefix of every temporary file a split creates in the data directory (declared with the stores'
/// predecessor, so diagnostics recognise a killed run's files).
pub const TEMP_PREFIX: &str = activity_store::schema::LEGACY.converter_temp_prefix;

/// The temporary files of split `split_id` in `dir`.
pub(crate) fn temp_paths(dir: &Path, split_id: &str) -> OutputPaths {
    let name = |what: &str| dir.join(format!("{TEMP_PREFIX}{split_id}.{what}"));
    OutputPaths {
        activity: name("activity.db"),
        config: name("config.db"),
        rejects: name("rejects.jsonl"),
    }
}

/// The final names in `dir`.
pub(crate) fn final_paths(dir: &Path) -> OutputPaths {
    OutputPaths {
        activity: activity_store::SCHEMA.path_in(dir),
        config: config_store::SCHEMA.path_in(dir),
        rejects: dir.join(REJECTS_FILE_NAME),
    }
}

/// Removes every `.split-tmp-*` file in `dir` (leftovers of killed runs; the caller holds both owner locks,
/// so no live run owns them). Returns what was removed.
pub(crate) fn remove_leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SplitError::io(dir, "list", e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SplitError::io(dir, "list", e))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| SplitError::io(&path, "remove", e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        files::sync_dir(dir)?;
    }
    removed.sort();
    Ok(removed)
}

/// Removes the temporary files of one run (after a failure): databases, sidecars, lock files, rejects.
/// Best effort: whatever remains is removed by the next run.
pub(crate) fn remove_temp(paths: &OutputPaths) {
    for db in [&paths.activity, &paths.config] {
        files::discard_temporary_database(db);
    }
    let _ = fs::remove_file(&paths.rejects);
}

/// What the data directory holds before a split.
#[derive(Debug)]
pub(crate) enum Existing {
    /// No output.
    Absent,
    /// Both outputs record the same completed split of this legacy file.
    AlreadySplit(SplitDetail),
    /// A split that did not finish (killed between the two renames): to be moved aside and redone.
    Unfinished(String),
    /// Outputs of a split the data directory records as finished, gone since: (missing, the one kept if
    /// any, split id).
    Removed(Vec<PathBuf>, Option<PathBuf>, String),
    /// Outputs that are not a split of this file (a fresh store, another legacy file, damage).
    Other(String),
}

/// A `split` provenance record read from an output.
#[derive(Debug)]
struct SplitRecord {
    sha256: Option<String>,
    detail: SplitDetail,
}

/// Reads what `dir` holds. Opens existing outputs only to read their provenance (see [`read_split_record`]).
/// `legacy_sha256` is asked for only when both outputs record the same split (reading it is O(N)).
pub(crate) fn inspect(
    dir: &Path,
    legacy_sha256: impl FnOnce() -> Result<String>,
    key: Option<&store_core::Key>,
) -> Result<Existing> {
    let finals = final_paths(dir);
    let present = |db: &Path| fs::symlink_metadata(db).is_ok();
    let a_present = present(&finals.activity);
    let c_present = present(&finals.config);
    let finished = store_core::conversion::recorded(dir).map(|record| record.run_id);
    if !a_present && !c_present {
        // Both gone after a split that finished: splitting again would put the legacy rows where the backups
        // hold what the owners wrote since.
        if let Some(id) = finished {
            return Ok(Existing::Removed(vec![finals.activity, finals.config], None, id));
        }
        let strays: Vec<String> = [&finals.activity, &finals.config]
            .iter()
            .flat_map(|db| files::sidecars(db))
            .filter(|s| present(s))
            .map(|s| s.display().to_string())
            .collect();
        return Ok(if strays.is_empty() {
            Existing::Absent
        } else {
            Existing::Other(format!("sidecar files without their database: {}", strays.join(", ")))
        });
    }
    let read = |db: &Path, there: bool| there.then(|| read_split_record(db, key));
    let a = read(&finals.activity, a_present);
    let c = read(&finals.config, c_present);
    let id = |r: &Option<std::result::Result<Option<SplitRecord>, String>>| match r {
        Some(Ok(Some(rec))) => Some(rec.detail.split_id.clone()),
        _ => None,
    };
    let (a_id, c_id) = (id(&a), id(&c));
    if let (Some(Ok(Some(ra))), Some(Ok(Some(rc)))) = (&a, &c)
        && ra.detail.split_id == rc.detail.split_id
    {
        let legacy_sha256 = legacy_sha256()?;
        let this_file = |r: &SplitRecord| r.sha256.as_deref() == Some(legacy_sha256.as_str());
        return Ok(if this_file(ra) && this_file(rc) {
            Existing::AlreadySplit(ra.detail.clone())
        } else {
            Existing::Other(format!(
                "activity.db and config.db are split {} of another legacy file (sha256 {})",
                ra.detail.split_id,
                ra.sha256.as_deref().unwrap_or("unknown")
            ))
        });
    }
    let describe = |name: &str, r: &Option<std::result::Result<Option<SplitRecord>, String>>| match r {
        None => format!("{name} is missing"),
        Some(Err(why)) => format!("{name} cannot be read ({why})"),
        Some(Ok(None)) => format!("{name} records no split"),
        Some(Ok(Some(rec))) => format!("{name} records split {}", rec.detail.split_id),
    };
    let state = format!("{}, {}", describe("activity.db", &a), describe("config.db", &c));
    // The split that wrote the output still there finished: the other was removed after it, not lost to a
    // kill between the renames (those runs record their end only after both).
    match (a_present, c_present, &a_id, &c_id) {
        (false, true, _, Some(id)) if finished.as_ref() == Some(id) => {
            return Ok(Existing::Removed(
                vec![finals.activity],
                Some(finals.config),
                id.clone(),
            ));
        }
        (true, false, Some(id), _) if finished.as_ref() == Some(id) => {
            return Ok(Existing::Removed(
                vec![finals.config],
                Some(finals.activity),
                id.clone(),
            ));
        }
        _ => {}
    }
    // An output of the split that finished beside one of no split or another (started empty by a repair,
    // put back from another directory's backup): the directory moved on after that split, it was not left
    // half-way by a kill.
    let of_finished = |id: &Option<String>| id.is_some() && *id == finished;
    Ok(
        if (a_id.is_some() || c_id.is_some()) && !of_finished(&a_id) && !of_finished(&c_id) {
            Existing::Unfinished(state)
        } else {
            Existing::Other(state)
        },
    )
}

/// The newest `split` record of an output. Opened read-write without create when it has no `-wal`/`-shm`
/// (a read-only connection would create them and could not remove them; the read-write one removes them
/// when it closes, and reading writes nothing to the database), read-only when they exist (the caller
/// holds the owner lock, so they are a killed owner's and are left exactly as they are).
fn read_split_record(db: &Path, key: Option<&store_core::Key>) -> std::result::Result<Option<SplitRecord>, String> {
    let has_sidecars = files::sidecars(db).iter().take(2).any(|s| s.exists());
    let conn = if has_sidecars {
        Connection::open_with_flags(
            file_uri(db, "mode=ro"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    } else {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    }
    .map_err(|e| e.to_string())?;
    store_core::key::apply(&conn, db, key).map_err(|e| e.what())?;
    let records = Provenance::read_all(&conn).map_err(|e| store_core::key::error_at(db, key, e).what())?;
    drop(conn);
    let Some(last) = records.into_iter().rev().find(|r| r.event == "split") else {
        return Ok(None);
    };
    let detail: SplitDetail = last
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(|| "its split record has no readable detail".to_string())?;
    Ok(Some(SplitRecord {
        sha256: last.source_sha256,
        detail,
    }))
}

/// Moves the outputs and the rejects file of `dir` aside (`<name>.<tag>-<time>`), never deleting.
pub(crate) fn move_aside_all(dir: &Path, tag: &str) -> Result<Vec<PathBuf>> {
    let finals = final_paths(dir);
    let mut moved = Vec::new();
    for path in [&finals.activity, &finals.config, &finals.rejects] {
        if let Some(to) = files::move_aside(path, tag)? {
            moved.push(to);
        }
    }
    Ok(moved)
}

/// Moves a rejects file left without outputs (a run killed between its renames) aside.
pub(crate) fn move_aside_rejects(dir: &Path, tag: &str) -> Result<Option<PathBuf>> {
    Ok(files::move_aside(&final_paths(dir).rejects, tag)?)
}

/// Puts finished temporary outputs in place: rejects file, activity.db, config.db, each rename followed by
/// an fsync of the directory; then removes the temporary lock files. Returns the final rejects path. The
/// caller has recorded the run as placing its outputs (`store_core::conversion::InProgress::placing`): a
/// kill between the renames is finished by the next run ([`finish_placing`]).
pub(crate) fn place(temp: &OutputPaths, rejects: Option<&Path>, dir: &Path) -> Result<Option<PathBuf>> {
    let finals = final_paths(dir);
    let placed_rejects = match rejects {
        Some(r) => {
            files::rename_durably(r, &finals.rejects)?;
            Some(finals.rejects.clone())
        }
        None => None,
    };
    #[cfg(feature = "fixtures")]
    crate::fixtures::reached(crate::fixtures::StopPoint::BeforePlacing);
    files::rename_durably(&temp.activity, &finals.activity)?;
    #[cfg(feature = "fixtures")]
    crate::fixtures::reached(crate::fixtures::StopPoint::BetweenPlacements);
    files::rename_durably(&temp.config, &finals.config)?;
    for db in [&temp.activity, &temp.config] {
        let lock = store_core::OwnerLock::path_for(db);
        fs::remove_file(&lock).map_err(|e| SplitError::io(&lock, "remove", e))?;
    }
    files::sync_dir(dir)?;
    Ok(placed_rejects)
}

/// Finishes the placing of split `run_id` in `dir`, interrupted by a kill: puts its outputs still under their
/// temporary names in place (the rejects file, activity.db, config.db, in that order, each rename fsynced)
/// and removes its temporary lock files. Returns what it put in place, or `None` when the files of that run
/// are not all there (each output in place or under its temporary name, and not both): nothing is moved
/// then, and the caller splits again.
pub(crate) fn finish_placing(dir: &Path, run_id: &str) -> Result<Option<Vec<PathBuf>>> {
    let temp = temp_paths(dir, run_id);
    let finals = final_paths(dir);
    let present = |p: &Path| fs::symlink_metadata(p).is_ok();
    let pairs = [(&temp.activity, &finals.activity), (&temp.config, &finals.config)];
    if pairs.iter().any(|(t, f)| present(t) == present(f)) {
        return Ok(None);
    }
    let mut placed = Vec::new();
    if present(&temp.rejects) {
        move_aside_rejects(dir, "stale")?;
        files::rename_durably(&temp.rejects, &finals.rejects)?;
        placed.push(finals.rejects.clone());
    }
    for (t, f) in pairs {
        if present(t) {
            files::rename_durably(t, f)?;
            placed.push(f.clone());
        }
    }
    for db in [&temp.activity, &temp.config] {
        let lock = store_core::OwnerLock::path_for(db);
        match fs::remove_file(&lock) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SplitError::io(&lock, "remove", e)),
            _ => {}
        }
    }
    files::sync_dir(dir)?;
    Ok(Some(placed))
}
