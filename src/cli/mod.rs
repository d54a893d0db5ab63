//! One module per subcommand. Each has `Args` (clap) and `run(Args) -> ExitCode`.

pub mod backup;
pub mod cleanup;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod rekey;
pub mod repair;
pub mod report;
pub mod restore;
pub mod server;
pub mod supervisor;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub use migrate_split::cli::{install_stop_handlers, stop_flag, stop_requested};

/// Prints an error the way every subcommand does (what happened, then what to do) and returns exit code 2
/// ("could not run").
pub fn fail(context: &str, err: &dyn std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "splitstore {context}: {err}");
    ExitCode::from(2)
}

/// [`fail`] of a command given `--json` (`json`): the error is also printed on stdout as one JSON object, in
/// the shape `migrate-split --json` prints (`{"outcome": "failed", "error": {"kind", "path", "message",
/// "remedy", "retryable", "exit_code"}}`), so a program reads a failure where it reads the result.
pub fn fail_json<E: store_core::Describe + std::fmt::Display>(context: &str, err: &E, json: bool) -> ExitCode {
    if json {
        let mut error = serde_json::to_value(err.banner()).unwrap_or_default();
        error["exit_code"] = 2.into();
        say!("{}", serde_json::json!({ "outcome": "failed", "error": error }));
    }
    fail(context, err)
}

/// The exit code of an owner (daemon, server) stopped by an error that retrying can help with
/// (`is_retryable()`: another owner holds the file, the disk is full, the peer is splitting): `EX_TEMPFAIL`
/// of sysexits.h. Every other failure exits 2: acting on its remedy is needed (a damaged file, a schema newer
/// than the build), and restarting the process would only meet it again. A supervisor restarts on 75 with a
/// backoff and not on 2 (systemd: `RestartPreventExitStatus=2`).
pub const EXIT_RETRYABLE: u8 = 75;

/// [`fail`] for an owner's typed error: exit [`EXIT_RETRYABLE`] when retrying can help, else 2; exit 0 for
/// [`Stopped`](store_core::ErrorKind::Stopped), a wait given up on SIGTERM/SIGINT.
pub fn fail_owner<E: store_core::Describe + std::fmt::Display>(context: &str, err: &E) -> ExitCode {
    if err.kind() == store_core::ErrorKind::Stopped {
        // Asked to stop (SIGTERM/SIGINT) while its open waited: the clean stop an owner exits 0 for.
        let _ = writeln!(std::io::stderr(), "splitstore {context}: {}", err.what());
        return ExitCode::SUCCESS;
    }
    let code = fail(context, err);
    if err.kind().is_retryable() {
        ExitCode::from(EXIT_RETRYABLE)
    } else {
        code
    }
}

/// Where a file moved aside went: `file` ("; the previous file is kept at") and its path, or, when only
/// the sidecars of a missing file were there to move, `sidecars` and theirs, said as what they are.
pub fn kept_at(aside: &Path, file: &str, sidecars: &str) -> String {
    if aside.exists() {
        return format!("{file} {}", aside.display());
    }
    let moved: Vec<String> = ["-wal", "-shm"]
        .iter()
        .map(|s| store_core::files::with_suffix(aside, s))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    format!("{sidecars} {}", moved.join(" and "))
}

/// What a restore left out of the file it put in place: the rows the replaced file had added since the
/// backup (it keeps them), the whole replaced file when it was another one, or nothing.
pub fn left_out(report: &store_core::restore::RestoreReport) -> String {
    let added = &report.added_since_backup;
    if report.replaced_another_file {
        "; the file it replaced was not the one this backup was taken from (another lineage: a new install's \
         file, or another data directory's): its rows are not in the restored file"
            .into()
    } else if added.is_empty() {
        String::new()
    } else {
        format!("; the file it replaced had added rows since the backup ({added}): they are not in the restored file")
    }
}

/// What a restore's line adds when the backup held ids a repair moved after it was taken, which it now names
/// by their new ids as the other files do, or nothing.
pub fn ids_moved(report: &store_core::restore::RestoreReport) -> String {
    report.ids_moved.iter().map(|c| format!("; {c}")).collect()
}

/// The newer backups a restore passed over as damaged, said first after the backup it restored (older than
/// the user may think), or nothing.
pub fn passed_over(report: &store_core::restore::RestoreReport) -> String {
    store_core::restore::passed_over_said(&report.passed_over_damaged)
        .map(|s| format!("; {s}"))
        .unwrap_or_default()
}

/// What a restore's line adds when it put a file older than this build in place (a restore never migrates:
/// the previous build must still open a pre-migration backup put back), or nothing.
pub fn upgraded_later(report: &store_core::restore::RestoreReport) -> String {
    splitstore::DATABASES
        .iter()
        .find(|s| s.file_name == report.database && report.version < s.end_version())
        .map_or(String::new(), |schema| {
            format!(
                ", as the backup was: {} of this build upgrades it when it starts; a build of schema {} reads it as \
                 it is",
                schema.owner, report.version
            )
        })
}

/// Prints on stdout. A closed stdout (`splitstore report | head -1`) is not an error worth a panic: the
/// text is dropped, as the reader asked, and the command goes on to its usual exit code.
pub fn print_out(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(text).and_then(|()| out.flush());
}

/// How a command (backup, restore, repair, rekey) waits for a backup folder's lock: saying on stderr, when the
/// wait begins, who holds it (a backup waiting behind a long restore, or a restore behind a backup, is not
/// silent); nothing when nobody is in the way. A stopped holder fails the command (`locked`): one run by cron
/// does not hang.
pub fn command_waits(context: &str) -> store_core::Waits {
    let context = context.to_string();
    store_core::Waits {
        on_waiting: Some(Arc::new(move |wait: &store_core::FolderWait<'_>| {
            say_waiting(&context, wait)
        })),
        ..Default::default()
    }
}

/// The line said when a command waits for a backup folder's lock (its holders named, or "another process"),
/// and, when an owner's start waits on through holders that are all stopped, what continues them.
fn say_waiting(context: &str, wait: &store_core::FolderWait<'_>) {
    if wait.over {
        supervisor::waited();
        return;
    }
    let by = store_core::LockHolder::listed(wait.holders).unwrap_or_else(|| "another process".to_string());
    let folder = wait.folder.display();
    let line = match wait.holders_stopped {
        false => format!("waiting for the backup folder {folder}, held by {by}"),
        true => format!(
            "the backup folder {folder} is held by {by}, stopped (Ctrl-Z, SIGSTOP or a debugger): waiting until it \
             is continued (`kill -CONT {}`) or ended, or until this process is asked to stop (SIGTERM)",
            store_core::LockHolder::pids(wait.holders)
        ),
    };
    let _ = writeln!(std::io::stderr(), "splitstore {context}: {line}");
    supervisor::waiting(&line);
}

/// How an owner's open (the daemon's, the server's) waits for a backup folder its pre-migration backup goes
/// into: saying for whom, and giving up on SIGTERM/SIGINT ([`install_stop_handlers`]) rather than stopping
/// only after it took the backup and migrated the file. A stopped holder is waited through, said: failing
/// (exit 75), the owner was restarted into the same refusal by its supervisor until it gave up on it.
pub fn owner_waits(context: &str) -> store_core::Waits {
    store_core::Waits {
        stop: Some(stop_flag()),
        through_stopped_holders: true,
        ..command_waits(context)
    }
}

/// What an owner's open says of a migration of its file ([`store_core::OpenOptions::on_migrating`]): on
/// stderr before it begins, since a start killed during a long migration (a supervisor's start timeout)
/// otherwise leaves no line saying what it was doing, and the next start is killed the same way; and each
/// phase to a service manager ([`supervisor`]), which gives the start more time while it works.
pub fn say_migrating(context: &str) -> store_core::MigratingCallback {
    let context = context.to_string();
    Arc::new(move |m: &store_core::MigrationProgress<'_>| {
        let upgrading = format!(
            "upgrading {} from schema {} to {}",
            m.path.display(),
            m.from_version,
            m.to_version
        );
        supervisor::doing(format_args!("{upgrading}: {}", m.phase));
        if m.phase != store_core::MigrationPhase::Starting {
            return;
        }
        let stopped = match m.stopped_before {
            0 => String::new(),
            n => format!(" (the last {n} start(s) were stopped during this migration before it ended)"),
        };
        let _ = writeln!(
            std::io::stderr(),
            "splitstore {context}: {upgrading}{stopped}: a copy of the file first, then the migration; stopping it \
             meanwhile starts it over at the next start"
        );
    })
}

/// `println!` that never panics on a closed stdout (see [`print_out`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::print_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// A size for a person: `436.0 KB`, `1.0 GB`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// The longest `--seconds` any command accepts: ten years. Longer is a typo, and a time that far ahead is
/// not representable on every clock.
const MAX_SECONDS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;

/// Parses a data directory as an absolute path (not resolving links): the remedies printed, and the failure
/// records doctor shows later from anywhere, name it so that they can be pasted in any working directory
/// (`rel` read from elsewhere named nothing, and `-dir` read as an option).
pub fn absolute_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    clap::builder::PathBufValueParser::new().map(|p| std::path::absolute(&p).unwrap_or(p))
}

/// Parses `--seconds`: a finite number of seconds from 0 to ten years.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs.is_finite() && (0.0..=MAX_SECONDS).contains(&secs)) {
        return Err(format!(
            "{s:?} is not a number of seconds from 0 to {MAX_SECONDS:.0} (ten years)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--rate`: events per second, from 0.001 to 1e9.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of events per second"))?;
    if !(rate.is_finite() && (0.001..=1e9).contains(&rate)) {
        return Err(format!("{s:?} is not a rate from 0.001 to 1e9 events per second"));
    }
    Ok(rate)
}

/// Why a command did not start: what it checks of its arguments before it opens anything (the data
/// directory, the key file, a report's range). It says itself as every error of these crates does (kind,
/// path, message, remedy: `store_core::impl_error_surface!`), so a command given `--json` prints it with
/// [`fail_json`] like a failure of its own, and the others with [`fail`].
pub enum NotStarted {
    /// `--data-dir` is not a directory this user can read: `problem` says what it is instead.
    DataDir {
        path: PathBuf,
        kind: store_core::ErrorKind,
        problem: String,
    },
    /// The key file cannot be used, or a key was given to a build without encryption: store-core's error,
    /// of its kind: `invalid_input` for a key file that holds no key or is not private, the read's failure
    /// (`io`, `permission_denied`) for one that cannot be read, `encryption_unavailable`.
    Key(store_core::Error),
    /// An argument asks what no answer fits (`report --from` not before `--to`), about the data directory
    /// at `path`.
    InvalidInput {
        path: PathBuf,
        what: String,
        remedy: &'static str,
    },
}

impl NotStarted {
    pub fn kind(&self) -> store_core::ErrorKind {
        match self {
            NotStarted::DataDir { kind, .. } => *kind,
            NotStarted::Key(e) => e.kind(),
            NotStarted::InvalidInput { .. } => store_core::ErrorKind::InvalidInput,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            NotStarted::DataDir { path, .. } | NotStarted::InvalidInput { path, .. } => path,
            NotStarted::Key(e) => e.path(),
        }
    }

    pub fn what(&self) -> String {
        match self {
            NotStarted::DataDir { path, problem, .. } => format!("{} {problem}", path.display()),
            NotStarted::Key(e) => e.what(),
            NotStarted::InvalidInput { what, .. } => what.clone(),
        }
    }

    pub fn remedy(&self) -> String {
        match self {
            NotStarted::DataDir { .. } => "pass the --data-dir that holds activity.db and config.db".into(),
            NotStarted::Key(e) => e.remedy(),
            NotStarted::InvalidInput { remedy, .. } => (*remedy).into(),
        }
    }

    pub fn locked_by(&self) -> Option<&store_core::LockHolder> {
        None
    }
}

store_core::impl_error_surface!(NotStarted);

impl From<store_core::Error> for NotStarted {
    fn from(e: store_core::Error) -> Self {
        NotStarted::Key(e)
    }
}

/// Checks that `--data-dir` names an existing directory, for the commands that only work on one (report,
/// doctor, backup, restore, repair); the error says what it is instead.
pub fn existing_data_dir(dir: &Path) -> Result<(), NotStarted> {
    data_dir_as(dir, false)
}

/// [`existing_data_dir`] for the owners (daemon, server), which create a data directory not there yet: anything
/// else in its place is said as the other commands say it. A database given as the data directory was
/// said by the library's open, whose remedy was to remove what was in the way.
pub fn owners_data_dir(dir: &Path) -> Result<(), NotStarted> {
    data_dir_as(dir, true)
}

fn data_dir_as(dir: &Path, created_if_missing: bool) -> Result<(), NotStarted> {
    use store_core::ErrorKind;
    let (kind, problem) = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Err(e) if created_if_missing && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // The kind the owners (daemon, server) give a data directory that is a file: one word for one path.
        Ok(_) => (ErrorKind::UnsafePath, "is a file, not a directory".into()),
        // Not there yet: the owners (daemon, server) create the data directory when they first start, so a reader
        // (or a script started before them) may wait for it, as for a database file not created yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ErrorKind::Missing, "does not exist".into()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (ErrorKind::PermissionDenied, "cannot be read by this user".into())
        }
        Err(e) => (ErrorKind::Io, format!("cannot be read: {e}")),
    };
    Err(NotStarted::DataDir {
        path: dir.to_path_buf(),
        kind,
        problem,
    })
}

/// What every command on an existing data directory checks before it starts: the directory
/// ([`existing_data_dir`]), then the key file ([`KeyArgs::load`]). Returns the key.
pub fn start(data_dir: &Path, key: &KeyArgs) -> Result<Option<store_core::Key>, NotStarted> {
    existing_data_dir(data_dir)?;
    Ok(key.load()?)
}

/// The first start after an upgrade: splits the data directory's legacy database once (or waits while the
/// peer process does), saying so on stderr. Returns the failure, as the command prints it, if it cannot.
pub fn upgrade_first(
    context: &str,
    data_dir: &Path,
    legacy: Option<&Path>,
    key: Option<&store_core::Key>,
) -> Result<(), ExitCode> {
    let context_owned = context.to_string();
    let last_phase = std::sync::Mutex::new(String::new());
    let options = migrate_split::UpgradeOptions {
        legacy: legacy.map(Path::to_path_buf),
        key: key.cloned(),
        stop: Some(stop_flag()),
        on_event: Some(Arc::new(move |event: &migrate_split::UpgradeEvent| {
            // Waiting is said once a second (by prepare); splitting only when its phase changes (its rows go
            // to the service manager's status).
            if let migrate_split::UpgradeEvent::Splitting(p) = event {
                let mut last = last_phase.lock().unwrap_or_else(|e| e.into_inner());
                if p.phase.is_empty() || *last == p.phase {
                    supervisor::progress(event);
                    return;
                }
                last.clone_from(&p.phase);
            }
            let _ = writeln!(std::io::stderr(), "splitstore {context_owned}: {event}");
            supervisor::doing(event);
        })),
        ..Default::default()
    };
    match migrate_split::prepare(data_dir, &options) {
        Ok(migrate_split::Upgrade::Split(report)) => {
            let rejected = match report.rejected() {
                0 => String::new(),
                n => format!(", {n} rejected"),
            };
            let _ = writeln!(
                std::io::stderr(),
                "splitstore {context}: upgraded: split {} into {} ({} rows{rejected})",
                report.legacy.path.display(),
                data_dir.display(),
                report.tables.values().map(|t| t.legacy).sum::<u64>()
            );
            // The rows rejected and where they are, tables not copied: what `migrate-split` would have said.
            for notice in report.notices() {
                let _ = writeln!(std::io::stderr(), "splitstore {context}: {notice}");
            }
            Ok(())
        }
        Ok(_) => {
            // Said at every start until acted on: the old application may still be writing there.
            if let Some(written) = store_core::conversion::written_since(data_dir) {
                let _ = writeln!(
                    std::io::stderr(),
                    "splitstore {context}: warning: {}. What to do: {}",
                    written.message("activity.db or config.db"),
                    written.remedy()
                );
            }
            Ok(())
        }
        Err(e) => Err(fail_owner(context, &e)),
    }
}

/// Says, once at start, what the owner's open found or did that the user should hear of: the `-wal` a crash
/// left, gone before it; a network file system; a file with other names; `auto_vacuum` turned off by a tool;
/// rows naming a parent a tool deleted; indexes or triggers a tool dropped; a migration of its file and where
/// the file as it was is kept: the way back to the previous build (docs/upgrade.md, "Rolling back"), which
/// otherwise only doctor lists.
pub fn say_opened(context: &str, owner: &store_core::OwnerConnection) {
    let report = owner.open_report();
    if report.wal_gone {
        let _ = writeln!(
            std::io::stderr(),
            "splitstore {context}: note: the -wal that the last owner of {} left when it stopped without closing (a \
             crash or a kill) was gone before this start (removed by hand, or by a cleanup or sync tool): whatever \
             it held since the last checkpoint is not in the file, and nothing can bring it back (unless another \
             SQLite program, or an earlier build, opened the file since and closed it, which writes the -wal into \
             the file first). Never remove the -wal of a database",
            owner.path().display()
        );
    }
    for problem in report
        .network_file_system
        .iter()
        .chain(&report.hard_linked)
        .chain(&report.auto_vacuum_off)
        .chain(&report.foreign_key_violations)
        .chain(&report.schema_objects_missing)
    {
        let _ = writeln!(
            std::io::stderr(),
            "splitstore {context}: warning: {}. What to do: {}",
            problem.message,
            problem.remedy
        );
    }
    if report.restore_undone {
        let _ = writeln!(
            std::io::stderr(),
            "splitstore {context}: note: a restore in {} was stopped before it finished (killed, or the machine \
             went down): this start put every file it had touched back as it was before it, so the backup is not \
             in place. To put it in place, stop both processes and run the restore again",
            store_core::files::parent_dir(owner.path()).display()
        );
    }
    let upgrade = &report.upgrade;
    if report.created || upgrade.to_version <= upgrade.from_version {
        return;
    }
    let mut line = format!(
        "splitstore {context}: upgraded {} from schema {} to {}",
        owner.path().display(),
        upgrade.from_version,
        upgrade.to_version
    );
    if let Some(backup) = &upgrade.backup {
        let restore = owner.schema().command(
            "restore",
            store_core::files::parent_dir(owner.path()),
            &format!("--from {}", store_core::files::shell_quoted(backup)),
        );
        line.push_str(&format!(
            "; the file as it was is kept at {} (to go back to the previous build: stop both processes, then `{restore}`)",
            backup.display()
        ));
    }
    if upgrade.stopped_before > 0 {
        line.push_str(&format!(
            "; the last {} start(s) that migrated it were stopped during the migration (killed) before it ended, and \
             this one's took {:.1} s: whatever stopped them (a supervisor's start timeout) must allow that long",
            upgrade.stopped_before,
            upgrade.took_ms as f64 / 1000.0
        ));
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `--key-file FILE`, on every command that opens a database.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// The key of an encrypted data directory: a file holding the 256-bit key as 64 hexadecimal characters,
    /// readable by its owner only (chmod 600). Needs a build with the `encryption` feature. Without it the
    /// databases are plaintext.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// Reads the key file, if one was given; the failure never shows the file's content. A key on a build
    /// without encryption is refused here, before anything is opened.
    pub fn load(&self) -> Result<Option<store_core::Key>, store_core::Error> {
        load_key(self.key_file.as_deref())
    }
}

/// Reads the key file at `path` (see [`KeyArgs::load`]).
pub fn load_key(path: Option<&Path>) -> Result<Option<store_core::Key>, store_core::Error> {
    let Some(path) = path else { return Ok(None) };
    if !store_core::encryption_available() {
        return Err(store_core::Error::EncryptionUnavailable {
            path: path.to_path_buf(),
        });
    }
    store_core::Key::read_file(path).map(Some)
}
