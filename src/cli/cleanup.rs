//! `splitstore cleanup`: removes the files that hold user data outside the databases (quarantined, replaced
//! and unfinished copies, the legacy database after its split, the split's rejects, leftovers of killed
//! commands) once they are older than asked, and only when asked. `--dry-run` lists what it would remove.
//! A legacy database written after its conversion is kept whatever its age: nothing else holds those writes;
//! so is one that is not the file converted (its sha256 is not the recorded one).

use std::path::PathBuf;
use std::process::ExitCode;

use splitstore::health::all_leftovers;
use store_core::OwnerLock;
use store_core::leftovers::{self, Leftover};

use super::say;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// Remove only files at least this many days old (0: all of them).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub older_than: u32,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> ExitCode {
    if let Err(e) = super::existing_data_dir(&args.data_dir) {
        return super::fail("cleanup", &e);
    }
    // A folder that cannot be listed would list no leftovers, and "removed 0 files" would be a lie.
    let backups = store_core::backup::default_backup_dir(&activity_store::SCHEMA.path_in(&args.data_dir));
    for dir in [args.data_dir.as_path(), backups.as_path()] {
        match std::fs::read_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return super::fail("cleanup", &store_core::Error::io(dir, "list", e));
            }
            _ => {}
        }
    }
    let now = chrono::Utc::now();
    // 0 takes every one, those dated ahead of the clock too (written while it was ahead).
    let old: Vec<Leftover> = all_leftovers(&args.data_dir)
        .into_iter()
        .filter(|l| args.older_than == 0 || l.age_days(now) >= i64::from(args.older_than))
        .collect();
    // Temporary files of a restore, a rotation, a salvage or a split may belong to one that is running:
    // removed only while this command holds both owner locks (nobody else can then be using them), taken
    // for a dry run too, so that it says what the run would do.
    let predecessor = activity_store::SCHEMA.predecessor.as_ref();
    let locks: Option<Vec<OwnerLock>> = splitstore::DATABASES
        .iter()
        .map(|s| OwnerLock::acquire(&s.path_in(&args.data_dir)))
        .collect::<Result<_, _>>()
        .ok();
    // The legacy file written after its conversion holds what the old app wrote since, and nothing else
    // does: never removed here, whatever its age. Nor is a legacy file that is not the one converted (its
    // sha256 differs from the record's: another one put there by a copy that kept an older time).
    let written_since = store_core::conversion::written_since(&args.data_dir)
        .and_then(|w| store_core::files::file_id(&w.predecessor).ok());
    let conversion = store_core::conversion::recorded(&args.data_dir);
    let not_converted = |l: &Leftover| {
        conversion.as_ref().is_some_and(|record| {
            store_core::conversion::predecessor_now(&args.data_dir, record) == l.path
                && store_core::conversion::not_the_converted_file(&l.path, record) == Some(true)
        })
    };
    let mut removed = 0u64;
    let mut freed = 0u64;
    for l in &old {
        let what = format!(
            "{} ({} bytes, {} days old): {}",
            l.path.display(),
            l.size_bytes,
            l.age_days(now),
            l.what
        );
        if written_since.is_some() && store_core::files::file_id(&l.path).ok() == written_since {
            say!("kept {what}: nothing else holds it; move it away by hand once kept");
            continue;
        }
        if not_converted(l) {
            say!(
                "kept {what}: it is not the file that was converted (its sha256 differs from the one recorded then), \
                 so its rows may be in neither database; move it away by hand once kept"
            );
            continue;
        }
        if let Some(why) = leftovers::in_use(l, predecessor, locks.is_some()) {
            say!("kept {what}: {why}");
            continue;
        }
        if args.dry_run {
            say!("would remove {what}");
            continue;
        }
        match leftovers::remove(l) {
            Ok(()) => {
                removed += 1;
                freed += l.size_bytes;
                say!("removed {what}");
            }
            Err(e) => return super::fail("cleanup", &e),
        }
    }
    if !args.dry_run {
        say!("cleanup: removed {removed} file(s), {freed} bytes");
    }
    ExitCode::SUCCESS
}
