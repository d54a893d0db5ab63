//! One module per subcommand. Each has `Args` (clap) and `run(Args) -> ExitCode`.

pub mod backup;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod repair;
pub mod report;
pub mod restore;
pub mod server;

use std::process::ExitCode;

/// Prints an error the way every subcommand does (what happened, then what to do) and returns exit code 2
/// ("could not run").
pub fn fail(context: &str, err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("splitstore {context}: {err}");
    ExitCode::from(2)
}
