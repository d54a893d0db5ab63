//! `splitstore restore`: put backups back in place. Refused while the daemon or the server runs.

use std::path::PathBuf;
use std::process::ExitCode;

use store_core::ErrorKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// A backup file (restores the database it is a backup of) or a backup directory (restores the newest
    /// backup of each database in it).
    #[arg(long)]
    pub from: PathBuf,
    /// The key the backup file of --from was taken under, when it is not the data directory's (another data
    /// directory's backup, or one from before a key rotation): a copy under the directory's key (or in the
    /// clear, for a directory without one) is put in its backup folder, then restored.
    #[arg(long, value_name = "FILE", conflicts_with = "backup_in_clear")]
    pub backup_key_file: Option<PathBuf>,
    /// The backup file of --from is in the clear while the data directory is encrypted (taken before it was):
    /// a copy under the directory's key is put in its backup folder, then restored.
    #[arg(long, requires = "key_file")]
    pub backup_in_clear: bool,
    /// Print what was done as one JSON object: `restored` (per database: its path, the backup, where the
    /// replaced file was moved, the rows it held past the backup, ...) and `copied` (the copy under the
    /// directory's key made with --backup-key-file or --backup-in-clear). A failure is printed as
    /// `{"outcome": "failed", "error": {...}}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: Args) -> ExitCode {
    let (key, backup_key) = match args
        .key
        .load()
        .and_then(|key| Ok((key, super::load_key(args.backup_key_file.as_deref())?)))
    {
        Ok(keys) => keys,
        Err(e) => return super::fail_json("restore", &e, args.json),
    };
    let other_key = args.backup_key_file.is_some() || args.backup_in_clear;
    if other_key && args.from.is_dir() {
        let given_a_folder = super::NotStarted::InvalidInput {
            path: args.from.clone(),
            what: format!(
                "{} is a folder: --backup-key-file and --backup-in-clear take one backup file as --from",
                args.from.display()
            ),
            remedy: "give the file of the backup to restore (a backup's name holds the time it was taken: \
                     `<db>-<time>-v<version>.db`); nothing was changed",
        };
        return super::fail_json("restore", &given_a_folder, args.json);
    }
    // Restoring into a new data directory (the old one is lost) is fine: it is created 0700.
    if let Err(e) = store_core::files::create_data_dir(&args.data_dir) {
        return super::fail_json("restore", &e, args.json);
    }
    let waits = super::command_waits("restore");
    let restored = if other_key {
        let restored = splitstore::operations::restore_from_other_key(
            &args.data_dir,
            &args.from,
            backup_key.as_ref(),
            key.as_ref(),
            &waits,
        );
        // The backup's own key (or its being in the clear) is what was given wrong: said of that option, not
        // with the remedies of a data directory's file (`--key-file`, a repair of the backup's folder).
        if let Err(e) = &restored
            && e.path() == args.from
            && matches!(
                e.kind(),
                ErrorKind::KeyRejected | ErrorKind::KeyRequired | ErrorKind::NotEncrypted | ErrorKind::NotADatabase
            )
        {
            let given = match &args.backup_key_file {
                Some(file) => format!("with the key of --backup-key-file {}", file.display()),
                None => "in the clear (--backup-in-clear)".to_string(),
            };
            let wrong_key = super::NotStarted::InvalidInput {
                path: args.from.clone(),
                what: format!("{} cannot be read {given}: {}", args.from.display(), e.what()),
                remedy: "give the key it was taken with as --backup-key-file (or --backup-in-clear for a backup in \
                         the clear); nothing was changed",
            };
            return super::fail_json("restore", &wrong_key, args.json);
        }
        restored.map(|(copy, reports)| {
            if !args.json {
                super::say!(
                    "copied {} {} as {}",
                    args.from.display(),
                    if key.is_some() {
                        "under the data directory's key"
                    } else {
                        "in the clear"
                    },
                    copy.display()
                );
            }
            (Some(copy), reports)
        })
    } else {
        splitstore::operations::restore_with(&args.data_dir, &args.from, None, key.as_ref(), &waits).map(|r| (None, r))
    };
    let (copied, reports) = match restored {
        Ok(done) => done,
        Err(e) => return super::fail_json("restore", &e, args.json),
    };
    if args.json {
        let object = serde_json::json!({
            "data_dir": args.data_dir.to_string_lossy(),
            "copied": copied.map(|c| c.to_string_lossy().into_owned()),
            "restored": reports,
        });
        super::say!("{object:#}");
        return ExitCode::SUCCESS;
    }
    for r in reports {
        // A newer backup passed over is said first: the one restored is older than the user may think.
        super::say!(
            "restored {} from {} (schema {}{}){}{}{}{}{}",
            r.path.display(),
            r.restored_from.display(),
            r.version,
            super::upgraded_later(&r),
            super::passed_over(&r),
            r.moved_aside
                .as_deref()
                .map(|a| {
                    super::kept_at(
                        a,
                        "; the previous file is kept at",
                        "; there was no file, and what was beside its path is kept at",
                    )
                })
                .unwrap_or_default(),
            super::left_out(&r),
            super::ids_moved(&r),
            if r.replaced_unread {
                "; the file it replaced could not be read with the key given (it is under another key, or \
                 no database at all), so what it held past the backup is not counted: read it with its own \
                 key before removing it"
            } else {
                ""
            }
        );
    }
    ExitCode::SUCCESS
}
