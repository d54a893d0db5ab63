//! `migrate-split --legacy FILE --data-dir DIR [--dry-run] [--json] [--strict] [--force]`
//!
//! A human summary goes to stderr; with `--json`, exactly one JSON object goes to stdout (the report, or
//! `{"outcome": "failed", "error": {...}}`). Exit codes: 0 done (split, already split, dry run), 1 refused,
//! 2 could not run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use migrate_split::{Options, SplitError, split};

#[derive(Parser, Debug)]
#[command(
    name = "migrate-split",
    version,
    about = "Split a legacy combined database into activity.db (daemon) and config.db (server)",
    after_help = "Exit codes: 0 split, already split or dry run done; 1 refused (not a legacy file, outputs exist \
                  without --force, an owner is running, --strict); 2 could not run (I/O, verification)."
)]
struct Args {
    /// The legacy combined database (schema version 1, 2 or 3). Opened read-only, never written.
    #[arg(long, value_name = "FILE")]
    legacy: PathBuf,
    /// Where activity.db, config.db and split-rejects.jsonl go (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Convert and count everything in a scratch directory, report, write nothing in DIR.
    #[arg(long)]
    dry_run: bool,
    /// Print exactly one JSON object on stdout (no progress bar).
    #[arg(long)]
    json: bool,
    /// Fail, leaving no output, if any row would be rejected or the legacy file has unknown tables.
    #[arg(long)]
    strict: bool,
    /// Move existing outputs aside (renamed, never deleted) instead of refusing.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        dry_run: args.dry_run,
        strict: args.strict,
        force: args.force,
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    match split(&args.legacy, &args.data_dir, &options) {
        Ok(report) => {
            eprint!("{}", report.human_summary());
            if args.json {
                print_json(&serde_json::to_value(&report).expect("report serialises"));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if let SplitError::Strict { report, .. } = &err {
                eprint!("{}", report.human_summary());
            }
            eprintln!("migrate-split: {err}");
            if args.json {
                let mut out = serde_json::json!({ "outcome": "failed", "error": err.to_json() });
                if let SplitError::Strict { report, .. } = &err {
                    out["report"] = serde_json::to_value(report).expect("report serialises");
                }
                print_json(&out);
            }
            ExitCode::from(err.exit_code())
        }
    }
}

fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}
