//! Not built yet.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(_args: Args) -> ExitCode {
    super::fail("", &"this subcommand is not built yet")
}
