//! `splitstore repair`: quarantine a damaged database and restore the newest good backup (or, for activity.db
//! only and only with --allow-empty, start it empty). Nothing is ever deleted.

use std::path::PathBuf;
use std::process::ExitCode;

use splitstore::operations::RepairAction;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where to look for backups. Default: DATA_DIR/backups.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// With no good backup, start activity.db empty (config.db never starts empty).
    #[arg(long)]
    pub allow_empty: bool,
}

pub fn run(args: Args) -> ExitCode {
    if let Err(code) = super::existing_data_dir("repair", &args.data_dir) {
        return code;
    }
    let from = args
        .from
        .unwrap_or_else(|| args.data_dir.join(store_core::backup::BACKUP_DIR_NAME));
    match splitstore::operations::repair(&args.data_dir, &from, args.allow_empty) {
        Ok(actions) => {
            for a in actions {
                let aside = |q: &Option<PathBuf>| {
                    q.as_ref()
                        .map(|q| format!(" (damaged file kept at {})", q.display()))
                        .unwrap_or_default()
                };
                match a {
                    RepairAction::Healthy { database } => super::say!("{database}: healthy, left alone"),
                    RepairAction::Missing { database } => super::say!(
                        "{database}: does not exist, nothing to repair (its owner creates it when it starts)"
                    ),
                    RepairAction::Restored {
                        database,
                        quarantined,
                        report,
                    } => super::say!(
                        "{database}: restored from {}{}",
                        report.restored_from.display(),
                        aside(&quarantined)
                    ),
                    RepairAction::StartedEmpty { database, quarantined } => {
                        super::say!("{database}: started empty{}", aside(&quarantined))
                    }
                    other => super::say!("{other:?}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::fail("repair", &e),
    }
}
