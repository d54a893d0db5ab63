//! `splitstore rekey`: changes the encryption key of both databases (or encrypts a plaintext data
//! directory), all or nothing, while the daemon and the server are stopped. The files under the old key are
//! kept aside until `cleanup` removes them; existing backups stay under the key they were taken with.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long)]
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
}

pub fn run(args: Args) -> ExitCode {
    if let Err(code) = super::existing_data_dir("rekey", &args.data_dir) {
        return code;
    }
    let old = match super::load_key("rekey", args.key_file.as_deref()) {
        Ok(key) => key,
        Err(code) => return code,
    };
    let new = match super::load_key("rekey", args.new_key_file.as_deref()) {
        Ok(key) => key,
        Err(code) => return code,
    };
    match splitstore::operations::rekey(&args.data_dir, old.as_ref(), new.as_ref()) {
        Ok(reports) => {
            let state = if new.is_some() {
                "under the new key"
            } else {
                "in the clear"
            };
            for r in &reports {
                super::say!("{}: {} rows, now {state}", r.path.display(), r.rows);
            }
            let previous: Vec<String> = reports
                .iter()
                .filter_map(|r| r.previous.as_ref().map(|p| p.display().to_string()))
                .collect();
            if !previous.is_empty() {
                super::say!(
                    "the files as they were are kept at {} (readable with the old key, or by anyone if they were \
                     plaintext): once the new files work, remove them with `splitstore cleanup --data-dir {} \
                     --older-than 0`",
                    previous.join(", "),
                    store_core::files::shell_quoted(&args.data_dir)
                );
            }
            super::say!(
                "existing backups stay under the key they were taken with: restore one with that key, or take new \
                 backups now (`splitstore backup --data-dir {} --key-file NEW`)",
                store_core::files::shell_quoted(&args.data_dir)
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::fail("rekey", &e),
    }
}
