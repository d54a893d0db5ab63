//! Health of a data directory, as serde data: the facts `splitstore doctor` prints, for an app to show as a
//! persistent banner (path, problem, remedy). Both the daemon and the server can call [`check`]; it never
//! writes, never takes an owner lock, and never reads a settings value (only row counts).

use std::path::{Path, PathBuf};

use serde::Serialize;
use store_core::ErrorKind;
use store_core::diagnostics::{self, CheckLevel, DbHealth, InspectOptions, Problem};
use store_core::leftovers::{self, Leftover};

use crate::DATABASES;

/// The health of both databases in a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    #[serde(with = "store_core::files::lossy_path")]
    pub data_dir: PathBuf,
    pub healthy: bool,
    pub databases: Vec<DbHealth>,
    /// Files holding user data that belong to neither database: the legacy database after its split, the
    /// split's rejects, a killed split's temporary files. Each database's own are in its
    /// [`DbHealth::leftovers`]. Removed only when asked (`splitstore cleanup`).
    pub leftovers: Vec<Leftover>,
}

impl Health {
    /// Every problem, with the database it is about.
    pub fn problems(&self) -> impl Iterator<Item = (&DbHealth, &diagnostics::Problem)> {
        self.databases
            .iter()
            .flat_map(|db| db.problems.iter().map(move |p| (db, p)))
    }
}

/// Inspects activity.db and config.db in `data_dir`. While an owner writes, structural checks run on a
/// snapshot so the owner's WAL is not pinned. Unless `level` is `None`, the newest backup of each is checked
/// too (`quick_check`: one more read of its size), so a backup that would not restore is said now. A banner
/// a UI refreshes asks with `None`; the checks read every page (see [`CheckLevel`]) and belong to a doctor
/// or a daily job.
pub fn check(data_dir: &Path, level: CheckLevel) -> Health {
    check_with_key(data_dir, level, None)
}

/// [`check`] of an encrypted data directory: both databases and their backups are read with `key`. A file
/// the key does not open is reported as `key_rejected` (`key_required` without a key), never as damage.
pub fn check_with_key(data_dir: &Path, level: CheckLevel, key: Option<&store_core::Key>) -> Health {
    let opts = InspectOptions {
        check: level,
        key: key.cloned(),
        ..InspectOptions::default()
    };
    let mut databases: Vec<DbHealth> = DATABASES
        .iter()
        .map(|schema| {
            // A table out of ids whose rows another file records as given smaller ids (a repair stopped
            // before this file changed, or the file was put back from before it): said so.
            let opts = InspectOptions {
                moves_recorded_elsewhere: crate::operations::ids_moved_elsewhere(data_dir, schema, key, &[]),
                ..opts.clone()
            };
            diagnostics::inspect(&schema.path_in(data_dir), schema, &opts)
        })
        .collect();
    // A legacy file waiting to be split that the split would refuse is said as the owners' start says it:
    // the remedy "split it" would fail the same way. Looked for only when a database said it waits for the
    // split (a banner refreshed often reads nothing more otherwise).
    let waits_for_split = |db: &DbHealth| db.problems.iter().any(|p| p.code == ErrorKind::NotConvertedYet);
    let pending = databases.iter().any(waits_for_split).then(|| {
        store_core::conversion::pending(&activity_store::SCHEMA.path_in(data_dir), &activity_store::SCHEMA, None)
    });
    if let Some(refusal) = pending.flatten().as_deref().and_then(migrate_split::refusal_of) {
        for problem in databases.iter_mut().flat_map(|db| db.problems.iter_mut()) {
            if problem.code == ErrorKind::NotConvertedYet {
                *problem = Problem {
                    code: refusal.kind(),
                    message: refusal.what(),
                    remedy: refusal.remedy(),
                };
            }
        }
    }
    let leftovers = conversion_leftovers(data_dir);
    // The legacy file and the split's rejects are in the clear (the legacy file holds the old app's settings
    // and tokens): said with activity.db's problems, whose predecessor they are, when other users may read
    // them, as each database's own files are.
    let open =
        diagnostics::readable_by_others_problem("the split left", leftovers.iter().map(|l| l.path.clone()), |paths| {
            let paths: Vec<String> = paths.iter().map(|p| store_core::files::shell_quoted(p)).collect();
            format!(
                "make them private: `chmod go= {}` (the legacy file holds the old application's data, its settings \
             too, in the clear); `splitstore cleanup` removes them once you no longer need the way back",
                paths.join(" ")
            )
        });
    // The folder's file system is the data directory's, said once, with activity.db's problems.
    let network = diagnostics::network_file_system_problem(data_dir);
    if let Some(activity) = databases.first_mut() {
        activity.problems.extend(open.into_iter().chain(network));
    }
    Health {
        data_dir: data_dir.to_path_buf(),
        healthy: databases.iter().all(DbHealth::is_healthy),
        databases,
        leftovers,
    }
}

/// The data directory's leftovers of the legacy split (see [`Health::leftovers`]).
pub fn conversion_leftovers(data_dir: &Path) -> Vec<Leftover> {
    activity_store::SCHEMA
        .predecessor
        .as_ref()
        .map(|p| leftovers::of_conversion(data_dir, p))
        .unwrap_or_default()
}

/// Every leftover of the data directory: both databases' and the split's.
pub fn all_leftovers(data_dir: &Path) -> Vec<Leftover> {
    let mut all: Vec<Leftover> = DATABASES
        .iter()
        .flat_map(|schema| {
            let db = schema.path_in(data_dir);
            leftovers::find(&db, &store_core::backup::default_backup_dir(&db))
        })
        .collect();
    all.extend(conversion_leftovers(data_dir));
    all
}
