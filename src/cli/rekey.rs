//! `splitstore rekey`: changes the encryption key of both databases (or encrypts a plaintext data
//! directory), all or nothing, while the daemon and the server are stopped. The files under the old key are
//! kept aside until `cleanup` removes them. The files' own backups in their backup folder (and in the folders
//! named by `--backups`) are re-keyed too, one by one once the files are in place; any other backup stays
//! under the key it was taken with. Each file is said on stderr as it is started; what was done, on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use splitstore::operations::RekeyStep;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// The current key (64 hexadecimal characters, chmod 600). Without it: the data directory is plaintext
    /// and gets encrypted.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The new key (64 hexadecimal characters, chmod 600).
    #[arg(long, value_name = "FILE", required_unless_present = "decrypt")]
    pub new_key_file: Option<PathBuf>,
    /// Decrypt instead: write both databases in the clear (needs --key-file).
    #[arg(long, conflicts_with = "new_key_file", requires = "key_file")]
    pub decrypt: bool,
    /// Another folder holding backups of these files (one `splitstore backup --to DIR` wrote) whose backups
    /// are re-keyed too; repeat it for each. DATA_DIR/backups always is.
    #[arg(long, value_name = "DIR")]
    pub backups: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    if let Err(e) = super::existing_data_dir(&args.data_dir) {
        return super::fail("rekey", &e);
    }
    let (old, new) = match super::load_key(args.key_file.as_deref())
        .and_then(|old| Ok((old, super::load_key(args.new_key_file.as_deref())?)))
    {
        Ok(keys) => keys,
        Err(e) => return super::fail("rekey", &e),
    };
    // The same key given twice rotates nothing, yet every line after would say "now under the new key": after
    // a leak, false assurance.
    if let (Some(old), Some(new), Some(new_file)) = (&old, &new, &args.new_key_file)
        && old.check_value() == new.check_value()
    {
        return super::fail(
            "rekey",
            &format!(
                "{} holds the same key as --key-file: a rotation to it would change nothing. What to do: give the \
                 file of a new key as --new-key-file (64 hexadecimal characters from a random source, chmod 600); \
                 nothing was changed",
                new_file.display()
            ),
        );
    }
    let state = if new.is_some() {
        "under the new key"
    } else {
        "in the clear"
    };
    // On stderr, each file as it is started: with backups of a large file, a rotation takes minutes.
    let mut progress = |step: RekeyStep<'_>| match step {
        RekeyStep::Database { path, bytes } => eprintln!(
            "rekey: checking {} ({}), then copying it {state}",
            path.display(),
            super::human_bytes(bytes)
        ),
        RekeyStep::Backup {
            path,
            bytes,
            number,
            count,
        } => eprintln!(
            "rekey: backup {number} of {count}: checking {} ({}), then copying it {state}",
            path.display(),
            super::human_bytes(bytes)
        ),
    };
    let waits = super::command_waits("rekey");
    match splitstore::operations::rekey(
        &args.data_dir,
        old.as_ref(),
        new.as_ref(),
        &args.backups,
        &mut progress,
        &waits,
    ) {
        Ok(reports) => {
            for r in &reports {
                if r.already {
                    super::say!(
                        "{}: {} rows, already {state} (by an earlier rotation): left as it is",
                        r.path.display(),
                        r.rows
                    );
                } else {
                    super::say!("{}: {} rows, now {state}", r.path.display(), r.rows);
                }
            }
            let previous: Vec<String> = reports
                .iter()
                .filter_map(|r| r.previous.as_ref().map(|p| p.display().to_string()))
                .collect();
            let dir = store_core::files::shell_quoted(&args.data_dir);
            let readable = if old.is_some() {
                "readable with the old key"
            } else {
                "in the clear: anyone who reads the disk reads them"
            };
            if !previous.is_empty() {
                super::say!(
                    "the files as they were are kept at {} ({readable}): once the new files work, remove them with \
                     `splitstore cleanup --data-dir {dir} --older-than 0`",
                    previous.join(", "),
                );
            }
            if old.is_none() {
                // Moved aside by a restore or a repair, the legacy file, the split's rejects: written before the
                // directory was encrypted, so in the clear as well. (Files of a rotation, this one's or an earlier
                // one's, are said above or may be under a key.)
                let rotated = format!(".{}-", splitstore::operations::REKEYED_TAG);
                let others: Vec<String> = splitstore::health::all_leftovers(&args.data_dir)
                    .iter()
                    .filter(|l| {
                        !l.path
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().contains(&rotated))
                    })
                    .map(|l| l.path.display().to_string())
                    .collect();
                if !others.is_empty() {
                    super::say!(
                        "{} other file(s) outside the databases hold data in the clear too ({}): doctor says what \
                         each is; `splitstore cleanup --data-dir {dir} --older-than 0` removes them",
                        others.len(),
                        others.join(", ")
                    );
                }
            }
            let rekeyed: Vec<String> = reports
                .iter()
                .flat_map(|r| &r.backups)
                .map(|p| p.display().to_string())
                .collect();
            if !rekeyed.is_empty() {
                super::say!(
                    "{} backup(s) of the files, now {state} too: {}",
                    rekeyed.len(),
                    rekeyed.join(", ")
                );
            }
            let as_it_was = if old.is_some() {
                "under the old key"
            } else {
                "in the clear"
            };
            for left in reports.iter().flat_map(|r| &r.backups_left) {
                super::say!("not re-keyed, left {as_it_was}: {}", left.reason);
            }
            // The backups (pre-migration ones included, which rotation never removes) the old key still reads in
            // the folders rekey looked in: those left above, and any of another file's.
            let backups: Vec<String> = splitstore::DATABASES
                .iter()
                .flat_map(|schema| {
                    store_core::backup::backup_folders(&schema.path_in(&args.data_dir), &args.backups)
                        .into_iter()
                        .flat_map(|dir| store_core::backup::all_backups(&dir, schema, old.as_ref()).backups)
                })
                .map(|b| b.path.display().to_string())
                .collect();
            let take_new = match &new {
                Some(_) => format!("`splitstore backup --data-dir {dir} --key-file NEW`"),
                None => format!("`splitstore backup --data-dir {dir}`"),
            };
            // Run again after it finished (or was killed after its last step): the files were already under
            // the new key, and nothing the old key opens was left.
            let done_before = reports
                .iter()
                .all(|r| r.already && r.backups.is_empty() && r.backups_left.is_empty());
            match (backups.is_empty(), old.is_some()) {
                (true, _) if done_before => super::say!("nothing was left {as_it_was}: the rotation is done"),
                (true, _) if rekeyed.is_empty() => {
                    super::say!("no backup was taken under the old key: take new backups now ({take_new})")
                }
                (true, _) => {}
                (false, false) => super::say!(
                    "{} existing backup(s) are in the clear and hold the data unencrypted ({}): take new backups now \
                     ({take_new}), then delete them",
                    backups.len(),
                    backups.join(", ")
                ),
                (false, true) => super::say!(
                    "{} existing backup(s) stay under the key they were taken with ({}): take new backups now \
                     ({take_new}); a restore or repair that comes to one of them says how to bring it {state}",
                    backups.len(),
                    backups.join(", ")
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::fail("rekey", &e),
    }
}
