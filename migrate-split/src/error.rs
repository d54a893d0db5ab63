//! What can stop a split, with the exit code the binary gives each.
//!
//! Exit codes: 0 the outputs are in place (split now, or already done earlier) or a dry run finished;
//! 1 refused: the legacy file is not one this tool converts, the outputs exist and are not a finished split
//! of this file (use `--force`), one output of a finished split was removed since (restore it), an owner lock
//! is held, the data directory is encrypted and no key was given, or `--strict` found rejects or unknown
//! tables;
//! 2 could not run: I/O, a full disk, a failed verification, the legacy file changed during the run.
//! Whatever the code, nothing half-done is left in the data directory.

use std::path::{Path, PathBuf};

use store_core::{ErrorKind, LockHolder};

use crate::report::Report;

/// `Result` with [`SplitError`].
pub type Result<T, E = SplitError> = std::result::Result<T, E>;

/// Why a split did not happen. It has the surface every error of these crates has
/// (`store_core::impl_error_surface!`): `kind()` in the shared vocabulary, `is_retryable()`, `locked_by()`,
/// and the same serde banner.
#[non_exhaustive]
pub enum SplitError {
    /// The legacy file is not a legacy database this tool knows. Nothing was created.
    Refused { path: PathBuf, found: String },
    /// The data directory holds outputs that are not a finished split of this legacy file.
    OutputsExist {
        data_dir: PathBuf,
        found: String,
        /// The legacy file the split was asked to convert, for the command the remedy names.
        legacy: PathBuf,
    },
    /// Outputs of a split that finished (recorded in the data directory) are gone: removed after the split,
    /// holding (as may the other, when one is left) what their owners wrote since. Splitting again would put
    /// the legacy rows in their place (and move the other aside), so it is refused without `--force`: the
    /// missing files come back from their backups.
    OutputRemoved {
        /// The outputs gone (one or both).
        missing: Vec<PathBuf>,
        /// The output still there, when one is.
        kept: Option<PathBuf>,
        split_id: String,
        legacy: PathBuf,
    },
    /// `--strict`, and the split would have rejected rows or left unknown tables behind. No output is left.
    Strict { reasons: Vec<String>, report: Box<Report> },
    /// The copy, read back from the output, differs from what was written (a bug or a failing disk).
    /// No output was put in place.
    Verification { path: PathBuf, detail: String },
    /// The legacy file was modified while the split read it (another program still writes it).
    LegacyChanged { path: PathBuf },
    /// A store error: an owner lock held by another process, a full disk, I/O.
    Store(store_core::Error),
}

impl From<store_core::Error> for SplitError {
    fn from(e: store_core::Error) -> SplitError {
        SplitError::Store(e)
    }
}

impl SplitError {
    /// The process exit code for this error: 1 refused, 2 could not run.
    pub fn exit_code(&self) -> u8 {
        match self {
            SplitError::Refused { .. }
            | SplitError::OutputsExist { .. }
            | SplitError::OutputRemoved { .. }
            | SplitError::Strict { .. } => 1,
            SplitError::Store(e) if matches!(e.kind(), ErrorKind::Locked | ErrorKind::KeyRequired) => 1,
            SplitError::Verification { .. } | SplitError::LegacyChanged { .. } | SplitError::Store(_) => 2,
        }
    }

    /// What kind of error this is, in the vocabulary every error of these crates shares.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SplitError::Refused { .. } => ErrorKind::UnsupportedInput,
            SplitError::OutputsExist { .. } => ErrorKind::OutputsExist,
            SplitError::OutputRemoved { .. } => ErrorKind::Removed,
            SplitError::Strict { .. } => ErrorKind::RejectedRows,
            SplitError::Verification { .. } => ErrorKind::VerificationFailed,
            SplitError::LegacyChanged { .. } => ErrorKind::ChangedDuringRun,
            SplitError::Store(e) => e.kind(),
        }
    }

    /// Who holds an owner lock of the data directory, when the error is that one is held.
    pub fn locked_by(&self) -> Option<&LockHolder> {
        match self {
            SplitError::Store(e) => e.locked_by(),
            _ => None,
        }
    }

    /// What happened, naming the file.
    pub fn what(&self) -> String {
        match self {
            SplitError::Refused { path, found } => {
                format!(
                    "{} is not a legacy database this tool converts: {found}",
                    path.display()
                )
            }
            SplitError::OutputsExist { data_dir, found, .. } => {
                format!("{} already holds output files: {found}", data_dir.display())
            }
            SplitError::OutputRemoved {
                missing,
                kept,
                split_id,
                ..
            } => {
                let (names, gone) = match &missing[..] {
                    [one] => (one.display().to_string(), "it was removed since"),
                    _ => (
                        missing
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" and "),
                        "they were removed since",
                    ),
                };
                let kept = kept.as_ref().map_or(String::new(), |kept| {
                    format!(", and {} may hold what its owner wrote after the split", kept.display())
                });
                format!(
                    "{names} {} missing, though split {split_id} finished (the data directory records it): {gone}{kept}",
                    if missing.len() == 1 { "is" } else { "are" }
                )
            }
            SplitError::Strict { reasons, .. } => format!("--strict: {}", reasons.join("; ")),
            SplitError::Verification { path, detail } => {
                format!("verification of {} failed: {detail}", path.display())
            }
            SplitError::LegacyChanged { path } => format!("{} was modified while it was being split", path.display()),
            SplitError::Store(e) => e.what(),
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        match self {
            SplitError::Refused { .. } => "check the path; if this should be the legacy database, restore it from a \
                 backup (a crash during the old app's whole-file export leaves empty or truncated files); no output was \
                 put in place and the file was not changed"
                .into(),
            // Named in full: the daemon and server that meet it at their first start take no --force.
            SplitError::OutputsExist { data_dir, legacy, .. } => format!(
                "if they are disposable, run `migrate-split --legacy {} --data-dir {} --force`: they are moved aside \
                 (renamed, never deleted) and the split is redone; otherwise split into another data directory, or, \
                 if they hold that data already, move the legacy file away",
                store_core::files::shell_quoted(legacy),
                store_core::files::shell_quoted(data_dir)
            ),
            SplitError::OutputRemoved {
                missing, kept, legacy, ..
            } => {
                let data_dir = store_core::files::parent_dir(&missing[0]);
                let name = |p: &Path| p.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let (names, backups) = match &missing[..] {
                    [one] => (name(one), "its newest backup"),
                    _ => (
                        missing.iter().map(|p| name(p)).collect::<Vec<_>>().join(" and "),
                        "their newest backups",
                    ),
                };
                let aside = kept.as_ref().map_or(String::new(), |kept| {
                    format!(
                        ": {} is moved aside (renamed, never deleted) and what was written to it since the split stays \
                         only there",
                        name(kept)
                    )
                });
                format!(
                    "put {names} back from {backups}: `splitstore repair --data-dir {}` (`splitstore doctor` lists the \
                     backups); to split the legacy file again instead, run `migrate-split --legacy {} --data-dir {} \
                     --force`{aside}",
                    store_core::files::shell_quoted(data_dir),
                    store_core::files::shell_quoted(legacy),
                    store_core::files::shell_quoted(data_dir),
                )
            }
            SplitError::Strict { .. } => "look at the counts (run without --strict, or with --dry-run, to get the \
                 rejects file), fix the legacy file or accept the rejects; no output was left"
                .into(),
            SplitError::Verification { .. } => "nothing was put in place; check the disk (dmesg, free space) and run \
                 again; if it repeats, report it with the --json output"
                .into(),
            SplitError::LegacyChanged { .. } => "stop every program that still writes the legacy file (the old app), \
                 then run again; nothing was put in place"
                .into(),
            SplitError::Store(e) => e.remedy(),
        }
    }

    /// The file or directory this error is about.
    pub fn path(&self) -> &Path {
        match self {
            SplitError::Refused { path, .. }
            | SplitError::Verification { path, .. }
            | SplitError::LegacyChanged { path } => path,
            SplitError::OutputsExist { data_dir, .. } => data_dir,
            SplitError::OutputRemoved { missing, .. } => &missing[0],
            SplitError::Strict { report, .. } => &report.legacy.path,
            SplitError::Store(e) => e.path(),
        }
    }

    pub(crate) fn refused(path: &Path, found: impl Into<String>) -> SplitError {
        SplitError::Refused {
            path: path.to_path_buf(),
            found: found.into(),
        }
    }

    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> SplitError {
        SplitError::Store(store_core::Error::io(path, action, source))
    }
}

store_core::impl_error_surface!(SplitError);
