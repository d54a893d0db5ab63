//! migrate-split: moves a legacy combined database (schema versions 1..=3, see `legacy/README.md`) into
//! the daemon's `activity.db` and the server's `config.db`.
//!
//! ```no_run
//! use migrate_split::{Options, split};
//! let report = split("legacy.db".as_ref(), "data".as_ref(), &Options::default())?;
//! println!("{}", report.human_summary());
//! # Ok::<(), migrate_split::SplitError>(())
//! ```
//!
//! What a run guarantees:
//! - the legacy file is opened read-only (`mode=ro` URI) and never written; anything but a legacy
//!   database whose tables match its version is refused before anything is created; its sha256 and
//!   `quick_check` are read while the outputs' indexes are built (on the second core), and a file that
//!   fails `quick_check` is refused: what was copied from it is deleted, nothing is put in place;
//! - both owner locks of the data directory are held for the whole run, so no daemon or server starts
//!   mid-split, and a running one is named by pid in the refusal;
//! - every legacy row is accounted for: copied with its id and values (times as epoch milliseconds UTC), or
//!   written to `split-rejects.jsonl` with the reason (no settings value is ever written there or shown);
//! - the outputs are created by the stores' own migrations, verified, and renamed into place only when
//!   complete; a killed run leaves nothing that is taken as done, and the next run finishes putting its
//!   outputs in place, or cleans up and starts over (see "Interrupted runs" below);
//! - a second run on the same legacy file finds the recorded split and changes nothing.
//!
//! # Interrupted runs
//!
//! A split records itself as under way (`store_core::conversion::begin`: the legacy file, wherever it is,
//! and the split id) before it writes anything in the data directory. It writes
//! `.split-tmp-<split id>.activity.db`, `.split-tmp-<split id>.config.db` and
//! `.split-tmp-<split id>.rejects.jsonl` there, verifies them, records that it is placing them, then renames
//! the rejects file, activity.db and config.db into place, fsyncing the directory after each rename; last it
//! records the split (`converted.json`) and ends the record of the run. Until then owners create no empty
//! store in the data directory and diagnostics say to run the split again, whose outputs cleanup keeps.
//!
//! The two renames are not one atomic step. A kill between them (or before the first) leaves the run
//! recorded as placing: the next run (or an owner's start, see [`prepare`]) first puts the outputs of that
//! run still under their temporary names in place and records the split. Every run holds both owner locks
//! from start to end, so any other `.split-tmp-*` file found at start is a leftover of a killed run and is
//! removed: a temporary file is never taken as an output unless its run recorded it complete.
//!
//! Both outputs carry a `split` provenance record with the same split id; an output whose split id the other
//! file does not have, or whose partner is missing, and which no record of a placing run explains (an
//! earlier version's kill), is an unfinished split: the next run moves it aside
//! (`activity.db.unfinished-<time>`, never deleted: a daemon may have written it since) and splits again.
//! Only two files naming the same split of the same legacy file (same sha256) count as done. One output of a
//! split the data directory records as finished (`converted.json`), its partner gone, was removed after the
//! split, not lost to a kill: that is refused ([`SplitError::OutputRemoved`]: restore it from its backup), as
//! splitting again would move aside the other, with what its owner wrote since; so are both gone. A rejects file
//! found without outputs is moved aside (`.stale-<time>`) the same way.
//!
//! # Exit codes
//!
//! 0: split, already split, or dry run done; 1: refused (the input, existing outputs without `--force`, a
//! held owner lock, `--strict`); 2: could not run (I/O, verification, the legacy file changed meanwhile,
//! stopped).
//! See [`SplitError::exit_code`].

#[cfg(feature = "cli")]
pub mod cli;
mod convert;
mod copy;
mod digest;
pub mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod kept_ids;
mod legacy;
pub mod legacy_time;
mod outputs;
mod progress;
mod queries;
mod rejects;
pub mod report;
pub mod upgrade;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use store_core::private_dir::{self, Scratch};
use store_core::{OwnerLock, conversion, files};

pub use copy::{CREDENTIAL_MARKERS, is_credential_key};
pub use error::{Result, SplitError};
pub use legacy::LATEST_LEGACY_VERSION;
pub use outputs::{REJECTS_FILE_NAME, TEMP_PREFIX};
pub use rejects::REDACTED;
pub use report::{LegacyInfo, Outcome, Report, TableCounts};
pub use upgrade::{Upgrade, UpgradeCallback, UpgradeEvent, UpgradeOptions, prepare};

use legacy::LegacyFile;
use outputs::Existing;
use progress::Progress;
pub use progress::{PhaseTime, ProgressCallback, SplitProgress};

/// The scratch folders of dry runs under the system temp directory: `migrate-split-dry-run-<pid>-<n>`.
const DRY_RUN_SCRATCH: &str = "migrate-split-dry-run";

/// How to run a split.
#[derive(Clone, Default)]
pub struct Options {
    /// Do the full conversion and counting in a scratch directory outside the data directory, report, and
    /// delete it: nothing is written in the data directory.
    pub dry_run: bool,
    /// Any rejected row or unknown table is a failure, and no output is left.
    pub strict: bool,
    /// Outputs that exist and are not a completed split of this legacy file are moved aside (renamed with
    /// a `.replaced-<time>` suffix, never deleted) instead of refusing. A completed split of the same file
    /// is never redone, with or without it.
    pub force: bool,
    /// Receives progress updates (phase, rows copied of all), for a UI or a terminal's progress bar.
    pub progress: Option<ProgressCallback>,
    /// Encrypt the outputs with this key (`encryption` feature): activity.db, config.db and everything the
    /// split writes of them (a dry run's scratch copies included). The legacy file stays as it is (the old
    /// app's, in the clear); the rejects file holds no secret. `None`: plaintext outputs.
    pub key: Option<store_core::Key>,
    /// Set it (a SIGTERM handler's flag: a daemon splitting at its first start, asked to stop) and the split
    /// gives up at its next 4096 rows or phase, its long statements (the index builds, the legacy file's
    /// `quick_check`, the verification's reads) interrupted, with [`store_core::Error::Stopped`]: its
    /// temporary outputs are removed, nothing is put in place. On a 1 GB legacy file it stops 0.04-0.8 s
    /// after the flag is set (the legacy file's sha256 read given up within a mebibyte). Once it is closing
    /// its outputs it finishes.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dry_run", &self.dry_run)
            .field("strict", &self.strict)
            .field("force", &self.force)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .field("key", &self.key)
            .field("stop", &self.stop)
            .finish()
    }
}

/// The checks a split makes of `legacy_path` before it creates anything (header, size, schema against its
/// version: cheap, the whole file is not read): the refusal a split of it would start with, for a doctor to
/// say instead of "not converted yet", whose remedy (split it) would fail the same way.
pub fn refusal_of(legacy_path: &Path) -> Option<SplitError> {
    LegacyFile::open(legacy_path).err()
}

/// Splits the legacy database at `legacy_path` into `data_dir/activity.db` and `data_dir/config.db`.
pub fn split(legacy_path: &Path, data_dir: &Path, options: &Options) -> Result<Report> {
    let started = Instant::now();
    // Every path the report, its errors and its records name is absolute: a program reading `--json` from
    // another working directory, or a remedy run from another shell, finds the files.
    let (legacy_path, data_dir) = (&files::absolute(legacy_path), &files::absolute(data_dir));
    refuse_legacy_among_outputs(legacy_path, data_dir)?;
    let legacy = LegacyFile::open(legacy_path)?;
    // The first phase, before anything is written.
    let checked_legacy = PhaseTime {
        phase: "checking the legacy file".to_string(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let mut report = Report {
        outcome: Outcome::Split,
        legacy: LegacyInfo {
            path: legacy.path.clone(),
            version: legacy.version,
            // Read later, while the split builds indexes (see `legacy::Checks`): set from the conversion, or
            // before any earlier return of the report.
            sha256: String::new(),
        },
        data_dir: data_dir.to_path_buf(),
        tables: Default::default(),
        unknown_tables: legacy.unknown_tables.clone(),
        rejects_file: None,
        split_id: None,
        moved_aside: Vec::new(),
        cleaned_up: Vec::new(),
        existing_outputs: Vec::new(),
        warnings: legacy
            .unknown_tables
            .iter()
            .map(|t| format!("table {t} is not part of any legacy version: it was left in the legacy file, not copied"))
            .collect(),
        phases: vec![checked_legacy],
        seconds: 0.0,
    };
    if options.strict && !report.unknown_tables.is_empty() {
        report.legacy.sha256 = legacy.checks.sha256()?.to_string();
        return Err(strict_failure(report, started));
    }
    if options.dry_run {
        return dry_run(legacy, report, options, started);
    }

    // The outputs belong to whoever writes them. A legacy file in the data directory, often the only file
    // there before its first split, counts as an owner's files do (`OwnerLock` checks the outputs and lock
    // files): a start after the upgrade run as root (`sudo`) on a user's directory left root's 0600 files
    // that the user's daemon and server could not open.
    if files::resolved_folder_of(legacy_path) == files::resolved(data_dir) {
        files::check_same_owner(&[legacy_path])?;
    }
    files::create_data_dir(data_dir)?;
    // The outputs are written under temporary names and renamed into place.
    files::ensure_entries_can_move(data_dir)?;
    let finals = outputs::final_paths(data_dir);
    // Held until this function returns: no daemon, server or other split works in the directory meanwhile.
    // Taken as a converter's, which a start waiting for this split (`upgrade::prepare`) waits to see released.
    let _activity_lock = OwnerLock::acquire_converting(&finals.activity)?;
    let _config_lock = OwnerLock::acquire_converting(&finals.config)?;
    let finished = finish_interrupted(data_dir)?;
    report.cleaned_up = outputs::remove_leftovers(data_dir)?;

    let key = options.key.as_ref();
    // A data directory whose files were last opened encrypted is split into with its key only: without it,
    // the split record of a file still there cannot be read, and `--force` would write the legacy rows in
    // the clear beside what the key protects (the owners then refuse the key, or run without one).
    let encrypted = |db: &Path| store_core::records::encryption(db).is_some_and(|r| r.encrypted);
    let outputs = [finals.activity.as_path(), finals.config.as_path()];
    // The file still there first: the error names a file that is encrypted.
    let named = outputs.iter().find(|db| db.exists() && encrypted(db));
    if key.is_none()
        && let Some(db) = named.or_else(|| outputs.iter().find(|db| encrypted(db)))
    {
        return Err(store_core::Error::KeyRequired {
            path: db.to_path_buf(),
            schema: None,
        }
        .into());
    }
    match outputs::inspect(data_dir, || legacy.checks.sha256().map(str::to_string), key)? {
        Existing::AlreadySplit(detail) => {
            report.legacy.sha256 = legacy.checks.sha256()?.to_string();
            legacy.close_unchanged()?;
            // A data directory split by an earlier version has no record yet.
            if store_core::conversion::recorded(data_dir).is_none() {
                record_conversion(&report.legacy.path, &report.legacy.sha256, data_dir, &detail.split_id)?;
            }
            conversion::end(data_dir)?;
            report.outcome = Outcome::AlreadySplit;
            if let Some((run_id, placed)) = finished.filter(|(id, _)| *id == detail.split_id) {
                report.outcome = Outcome::Split;
                let names: Vec<String> = placed.iter().map(|p| p.display().to_string()).collect();
                report.warnings.push(match names.is_empty() {
                    true => format!("split {run_id} was interrupted after it put its outputs in place: recorded now"),
                    false => format!(
                        "split {run_id} was interrupted while it put its outputs in place: this run put the rest \
                         in place ({})",
                        names.join(", ")
                    ),
                });
            }
            report.tables = detail.tables;
            report.split_id = Some(detail.split_id);
            report.rejects_file = finals.rejects.exists().then(|| finals.rejects.clone());
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        Existing::Unfinished(state) => {
            report.warnings.push(format!(
                "an earlier split did not finish ({state}): its files were moved aside"
            ));
            report.moved_aside = outputs::move_aside_all(data_dir, "unfinished")?;
        }
        Existing::Removed(missing, kept, split_id) if !options.force => {
            return Err(SplitError::OutputRemoved {
                missing,
                kept,
                split_id,
                legacy: legacy_path.to_path_buf(),
            });
        }
        Existing::Removed(missing, kept, split_id) => {
            report.moved_aside = outputs::move_aside_all(data_dir, "replaced")?;
            let missing: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
            report.warnings.push(format!(
                "--force: {} removed after split {split_id} finished{}",
                missing.join(" and "),
                if kept.is_some() {
                    "; what was left was moved aside"
                } else {
                    ""
                }
            ));
        }
        Existing::Other(state) if options.force => {
            report.moved_aside = outputs::move_aside_all(data_dir, "replaced")?;
            report
                .warnings
                .push(format!("--force: existing outputs were moved aside ({state})"));
        }
        Existing::Other(state) => {
            return Err(SplitError::OutputsExist {
                data_dir: data_dir.to_path_buf(),
                found: state,
                legacy: legacy_path.to_path_buf(),
            });
        }
        Existing::Absent => {
            if let Some(to) = outputs::move_aside_rejects(data_dir, "stale")? {
                report.warnings.push(format!(
                    "a rejects file without outputs (from an interrupted run) was moved aside to {}",
                    to.display()
                ));
                report.moved_aside.push(to);
            }
        }
    }

    let split_id = new_split_id();
    let temp = outputs::temp_paths(data_dir, &split_id);
    // Recorded before anything is written: until the run ends, no owner creates an empty store here (the
    // legacy file may be outside the data directory, where they do not look), and a kill is said as an
    // interrupted split with its remedy (see "Interrupted runs").
    let mut under_way = conversion::InProgress {
        predecessor: std::fs::canonicalize(legacy_path).unwrap_or_else(|_| legacy_path.to_path_buf()),
        run_id: split_id.clone(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        placing: false,
        sha256: None,
    };
    let private = private_dir::private_dir(data_dir);
    let private_existed = std::fs::symlink_metadata(&private).is_ok();
    conversion::begin(data_dir, &under_way)?;
    // Nothing of this run is in place: its files go, and so does its record, with the private folder made
    // for it (best effort: the next run removes what remains).
    let abandon = |temp: &convert::OutputPaths| {
        outputs::remove_temp(temp);
        if conversion::end(data_dir).is_ok() && !private_existed {
            let _ = std::fs::remove_dir(&private);
        }
    };
    let splitting = format!("splitting {} into {}", legacy_path.display(), data_dir.display());
    let progress = Progress::new(options.progress.clone()).stopped_by(options.stop.clone(), data_dir, splitting);
    let converted = convert::convert(&legacy, &temp, &split_id, &progress, key);
    let converted = converted.and_then(|c| legacy.close_unchanged().map(|()| c));
    let converted = match converted {
        Ok(c) => c,
        Err(e) => {
            abandon(&temp);
            return Err(e);
        }
    };
    report.legacy.sha256 = converted.sha256;
    report.tables = converted.tables;
    report.warn_out_of_ids(&converted.out_of_ids);
    report.split_id = Some(split_id);
    if options.strict && report.rejected() > 0 {
        abandon(&temp);
        return Err(strict_failure(report, started));
    }
    // Whether the outputs are encrypted, and with which key (its check value), recorded before they are in
    // place: a wrong key (or a missing one) is told from damage from the first open on.
    let recorded = [&finals.activity, &finals.config]
        .into_iter()
        .try_for_each(|db| store_core::records::note_encryption(db, key));
    if let Err(e) = recorded {
        abandon(&temp);
        return Err(e.into());
    }
    // From here on the temporary outputs are the split's outputs: a kill or a failure between the renames
    // leaves them for the next run (or an owner's start) to put in place, never to remove.
    under_way.placing = true;
    under_way.sha256 = Some(report.legacy.sha256.clone());
    if let Err(e) = conversion::begin(data_dir, &under_way) {
        abandon(&temp);
        return Err(e.into());
    }
    progress.phase("putting the outputs in place");
    report.rejects_file = outputs::place(&temp, converted.rejects_file.as_deref(), data_dir)?;
    record_conversion(
        &under_way.predecessor,
        &report.legacy.sha256,
        data_dir,
        report.split_id.as_deref().unwrap_or_default(),
    )?;
    conversion::end(data_dir)?;
    report.phases.extend(progress.finish());
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Finishes a split of `data_dir` that a kill interrupted while it put its outputs in place (recorded as
/// placing by `store_core::conversion`): puts the rest in place, records the split and ends its record.
/// Returns its id and what was put in place; `None` when there is no such split, or when its files are not
/// all there (the run then starts over: its leftovers are removed as any killed run's). The caller holds
/// both owner locks.
fn finish_interrupted(data_dir: &Path) -> Result<Option<(String, Vec<PathBuf>)>> {
    let Some(run) = conversion::in_progress(data_dir).filter(|r| r.placing) else {
        return Ok(None);
    };
    let (Some(sha256), Some(placed)) = (&run.sha256, outputs::finish_placing(data_dir, &run.run_id)?) else {
        return Ok(None);
    };
    record_conversion(&run.predecessor, sha256, data_dir, &run.run_id)?;
    conversion::end(data_dir)?;
    Ok(Some((run.run_id, placed)))
}

/// The full conversion in a scratch directory (deleted afterwards), reported as what would happen.
fn dry_run(legacy: LegacyFile, mut report: Report, options: &Options, started: Instant) -> Result<Report> {
    report.outcome = Outcome::DryRun;
    let finals = outputs::final_paths(&report.data_dir);
    report.existing_outputs = [&finals.activity, &finals.config, &finals.rejects]
        .iter()
        .filter(|p| p.exists())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    // A private (0700) folder under the system temp directory, removed afterwards; one a killed dry run
    // left behind is removed by the next.
    let temp_root = std::env::temp_dir();
    private_dir::remove_stale_scratch_under(&temp_root, Some(DRY_RUN_SCRATCH));
    let scratch = Scratch::under(&temp_root, DRY_RUN_SCRATCH)?;
    let split_id = new_split_id();
    let temp = outputs::temp_paths(scratch.path(), &split_id);
    let splitting = format!("trying a split of {} (a dry run)", legacy.path.display());
    let progress = Progress::new(options.progress.clone()).stopped_by(options.stop.clone(), &legacy.path, splitting);
    let converted = convert::convert(&legacy, &temp, &split_id, &progress, options.key.as_ref());
    let conversion = converted.and_then(|c| legacy.close_unchanged().map(|()| c));
    drop(scratch);
    let conversion = conversion?;
    report.legacy.sha256 = conversion.sha256;
    report.tables = conversion.tables;
    report.warn_out_of_ids(&conversion.out_of_ids);
    report.phases.extend(progress.finish());
    if options.strict && report.rejected() > 0 {
        return Err(strict_failure(report, started));
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn strict_failure(mut report: Report, started: Instant) -> SplitError {
    report.seconds = started.elapsed().as_secs_f64();
    let mut reasons = Vec::new();
    if !report.unknown_tables.is_empty() {
        reasons.push(format!(
            "the legacy file has tables no legacy version has ({})",
            report.unknown_tables.join(", ")
        ));
    }
    let rejected = report.rejected();
    if rejected > 0 {
        reasons.push(format!("{rejected} row(s) would be rejected"));
    }
    report.rejects_file = None;
    SplitError::Strict {
        reasons,
        report: Box::new(report),
    }
}

/// Records the completed split in the data directory, so owners know the legacy file beside the outputs
/// is converted (they never create an empty file beside an unconverted one).
fn record_conversion(legacy: &Path, sha256: &str, data_dir: &Path, split_id: &str) -> Result<()> {
    let record = store_core::conversion::ConversionRecord {
        predecessor: std::fs::canonicalize(legacy).unwrap_or_else(|_| legacy.to_path_buf()),
        sha256: sha256.to_string(),
        run_id: split_id.to_string(),
        at_ms: chrono::Utc::now().timestamp_millis(),
    };
    Ok(store_core::conversion::record(data_dir, &record)?)
}

/// Refuses a legacy path that is one of the split's own outputs (`DIR/activity.db`, `config.db`, the rejects
/// file): moving existing outputs aside would move the legacy file itself away.
fn refuse_legacy_among_outputs(legacy: &Path, data_dir: &Path) -> Result<()> {
    let (Ok(legacy_real), Ok(dir_real)) = (std::fs::canonicalize(legacy), std::fs::canonicalize(data_dir)) else {
        return Ok(()); // a missing legacy file or data directory is said by the steps that need them
    };
    let finals = outputs::final_paths(&dir_real);
    if [&finals.activity, &finals.config, &finals.rejects]
        .iter()
        .any(|p| **p == legacy_real)
    {
        return Err(SplitError::refused(
            legacy,
            format!(
                "it is where the split writes one of its outputs in {}: copy it out of the data directory (or \
                 rename it legacy.db) and split that",
                data_dir.display()
            ),
        ));
    }
    Ok(())
}

/// A data directory split before splits were recorded in it: when both outputs record a completed split of
/// `legacy`, records it now (reading only, no owner lock needed) and returns `true`.
pub(crate) fn adopt_recorded_split(legacy: &Path, data_dir: &Path, key: Option<&store_core::Key>) -> Result<bool> {
    let finals = outputs::final_paths(data_dir);
    if !(finals.activity.exists() && finals.config.exists()) {
        return Ok(false);
    }
    // The legacy file is hashed (O(N)) only when both outputs record the same split: inspect asks then.
    let mut hashed = None;
    let existing = outputs::inspect(
        data_dir,
        || {
            let sha256 = store_core::files::sha256_of_path(legacy)?;
            hashed = Some(sha256.clone());
            Ok(sha256)
        },
        key,
    )?;
    match (existing, hashed) {
        (Existing::AlreadySplit(detail), Some(sha256)) => {
            record_conversion(legacy, &sha256, data_dir, &detail.split_id)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A split id: when and by which process, unique in practice and readable in file names and provenance.
fn new_split_id() -> String {
    format!("{}-{}", files::name_timestamp(chrono::Utc::now()), std::process::id())
}

/// The paths a split of `data_dir` writes: activity.db, config.db and the rejects file.
pub fn output_paths(data_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let f = outputs::final_paths(data_dir);
    (f.activity, f.config, f.rejects)
}
