//! Health of a data directory, as serde data: the facts `splitstore doctor` prints, for an app to show as a
//! persistent banner (path, problem, remedy). Both the daemon and the server can call [`check`]; it never
//! writes, never takes an owner lock, and never reads a settings value (only row counts).

use std::path::{Path, PathBuf};

use serde::Serialize;
use store_core::diagnostics::{self, CheckLevel, DbHealth, InspectOptions};

use crate::DATABASES;

/// The health of both databases in a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub data_dir: PathBuf,
    pub healthy: bool,
    pub databases: Vec<DbHealth>,
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
/// snapshot so the owner's WAL is not pinned.
pub fn check(data_dir: &Path, level: CheckLevel) -> Health {
    let opts = InspectOptions {
        check: level,
        backup_dir: None,
    };
    let databases: Vec<DbHealth> = DATABASES
        .iter()
        .map(|schema| diagnostics::inspect(&schema.path_in(data_dir), schema, &opts))
        .collect();
    Health {
        data_dir: data_dir.to_path_buf(),
        healthy: databases.iter().all(DbHealth::is_healthy),
        databases,
    }
}
