//! The `splitstore` command: the reference daemon and server, reports, the demo, and operator tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser, Debug)]
#[command(
    name = "splitstore",
    version,
    about = "Two SQLite files, one writer each: the daemon's activity.db and the server's config.db"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Split a sample legacy database, race a real daemon and server against it, and prove nothing is lost.
    Demo(cli::demo::Args),
    /// Reference daemon: the only writer of DIR/activity.db.
    Daemon(cli::daemon::Args),
    /// Reference server: the only writer of DIR/config.db, reading activity.db.
    Server(cli::server::Args),
    /// Time per project, joining activity.db and config.db in the application.
    Report(cli::report::Args),
    /// Health of both databases, with the command that fixes each problem.
    Doctor(cli::doctor::Args),
    /// Consistent backups of both databases, safe while the daemon and server write.
    Backup(cli::backup::Args),
    /// Put backups back in place (both owners must be stopped).
    Restore(cli::restore::Args),
    /// Quarantine a damaged database and restore the newest good backup; give a table out of ids smaller ones.
    Repair(cli::repair::Args),
    /// Remove files holding user data outside the databases (quarantined, replaced, the split legacy file).
    Cleanup(cli::cleanup::Args),
    /// Change the encryption key of both databases, or encrypt a plaintext data directory (owners stopped).
    Rekey(cli::rekey::Args),
}

fn main() -> ExitCode {
    // Every command holds the user's data in memory (settings values, history; with encryption, the key):
    // none of it goes into a core dump (SECURITY.md, "Core dumps").
    if let Err(e) = splitstore::disable_core_dumps() {
        eprintln!(
            "splitstore: warning: could not turn core dumps off ({e}): a crash may write this process's memory to disk"
        );
    }
    let cli = match migrate_split::cli::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Daemon(args) => cli::daemon::run(args),
        Command::Server(args) => cli::server::run(args),
        Command::Report(args) => cli::report::run(args),
        Command::Doctor(args) => cli::doctor::run(args),
        Command::Backup(args) => cli::backup::run(args),
        Command::Restore(args) => cli::restore::run(args),
        Command::Repair(args) => cli::repair::run(args),
        Command::Cleanup(args) => cli::cleanup::run(args),
        Command::Rekey(args) => cli::rekey::run(args),
    }
}
