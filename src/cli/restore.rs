//! `splitstore restore`: put backups back in place. Refused while the daemon or the server runs.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A backup file (restores the database it is a backup of) or a backup directory (restores the newest
    /// backup of each database in it).
    #[arg(long)]
    pub from: PathBuf,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: Args) -> ExitCode {
    let key = match args.key.load("restore") {
        Ok(key) => key,
        Err(code) => return code,
    };
    // Restoring into a new data directory (the old one is lost) is fine: it is created 0700.
    if let Err(e) = store_core::files::create_private_dir_all(&args.data_dir) {
        return super::fail("restore", &e);
    }
    match splitstore::operations::restore_with(&args.data_dir, &args.from, None, key.as_ref()) {
        Ok(reports) => {
            for r in reports {
                // A newer backup passed over is said first: the one restored is older than the user may think.
                super::say!(
                    "restored {} from {} (schema {}{}){}{}{}",
                    r.path.display(),
                    r.restored_from.display(),
                    r.version,
                    super::upgraded_later(&r),
                    super::passed_over(&r),
                    r.moved_aside
                        .as_ref()
                        .map(|a| format!("; the previous file is kept at {}", a.display()))
                        .unwrap_or_default(),
                    super::left_out(&r)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::fail("restore", &e),
    }
}
