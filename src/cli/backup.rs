//! `splitstore backup`: consistent copies of both databases, safe while the daemon and server write.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use store_core::backup::DEFAULT_KEEP_BACKUPS;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// Directory the backups go to (created 0700 if missing). Default: DATA_DIR/backups.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// How many backups of each database to keep there, the one just taken among them (at least 1: `0`
    /// would read as "keep them all" to some and as "keep none" to others, and neither is what it did).
    #[arg(long, default_value_t = DEFAULT_KEEP_BACKUPS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keep: u64,
    /// Print what was done as one JSON object: `taken` (the backup files), `not_backed_up` and `failed` (each
    /// an error: kind, path, message, remedy, retryable), `notes`. Exit 2 when `failed` is not empty.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: Args) -> ExitCode {
    let key = match super::start(&args.data_dir, &args.key) {
        Ok(key) => key,
        Err(e) => return super::fail_json("backup", &e, args.json),
    };
    let to = args
        .to
        .unwrap_or_else(|| args.data_dir.join(store_core::backup::BACKUP_DIR_NAME));
    let waits = super::command_waits("backup");
    let report =
        match splitstore::operations::backup_with_key(&args.data_dir, &to, args.keep as usize, key.as_ref(), &waits) {
            Ok(report) => report,
            Err(e) => return super::fail_json("backup", &e, args.json),
        };
    if args.json {
        let banners = |errors: &[store_core::Error]| errors.iter().map(|e| e.banner()).collect::<Vec<_>>();
        let object = serde_json::json!({
            "data_dir": args.data_dir.to_string_lossy(),
            "taken": report.taken.iter().map(|f| f.to_string_lossy()).collect::<Vec<_>>(),
            "not_backed_up": banners(&report.missing),
            "failed": banners(&report.failed),
            "notes": report.notes,
        });
        super::say!("{object:#}");
    } else {
        for f in &report.taken {
            super::say!("backup: {}", f.display());
        }
        // On stderr: stdout lists the files taken, one per line, for scripts.
        for note in &report.notes {
            let _ = writeln!(std::io::stderr(), "splitstore backup: note: {note}");
        }
        // Half a backup is said, not hidden: the other file does not exist (yet). On stderr with the notes:
        // stdout holds only the files taken.
        for e in &report.missing {
            let _ = writeln!(
                std::io::stderr(),
                "splitstore backup: note: not backed up: {}",
                e.what()
            );
        }
    }
    // Or it failed: said as any failure (stderr, exit 2), after the backup that was taken.
    match report.failed.first() {
        Some(e) => super::fail("backup", e),
        None => ExitCode::SUCCESS,
    }
}
