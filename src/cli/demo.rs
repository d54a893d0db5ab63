//! `splitstore demo`: the main job, end to end, on a built-in sample, in a directory of its own.
//!
//! 1. builds a sample legacy combined database (schema v3, with the quirks of real files) in a new private
//!    data directory (0700; it refuses a directory that exists and is not empty: it never touches a
//!    user's data);
//! 2. starts `splitstore daemon` and `splitstore server` as two real processes at the same moment, as the
//!    first start after an upgrade: one of them splits the legacy database, the other waits for it;
//! 3. lets them race at full speed, each the only writer of its file and a reader of the other's, and
//!    takes a backup while they write;
//! 4. prints the time-per-project report (joined in the application) and a health summary;
//! 5. counts the rows of both files against the legacy file's and what each process reported writing.
//!
//! Encrypted: with `--key-file K` the data directory is encrypted with that key; built with the `encryption`
//! feature and given no key file, the demo generates a key and keeps it in `demo.key` in its directory (0600;
//! a real application keeps its key in the operating system's keychain, never beside the data). The legacy
//! database stays plaintext (it is the old app's file).
//!
//! Stopped by SIGTERM/SIGINT, it stops its two children first. Its last line is `demo: events=N
//! sessions=M projects_created=A projects_deleted=B settings=C reports=D lost=L`, and it exits non-zero if
//! anything was lost (or anything is there that nobody wrote).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use config_store::ConfigReader;
use migrate_split::fixtures::{LegacySpec, build};
use splitstore::{ProjectStatus, Reports, TimeRange, health, operations};
use store_core::LockState;
use store_core::check::row_counts;
use store_core::diagnostics::CheckLevel;
use store_core::read_pool::open_read_only;

use super::say;
use super::server::ROUNDS_SETTING;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in this directory, which must not exist yet (or be empty); it is created 0700. Default: a new
    /// private temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How long the daemon and the server race.
    #[arg(long, value_name = "S", default_value = "5", value_parser = super::parse_seconds)]
    pub seconds: Duration,
    /// Keep the temporary directory afterwards (its path is printed).
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

/// Where the demo keeps the key it generates, in its own directory.
const DEMO_KEY_FILE: &str = "demo.key";

pub fn run(args: Args) -> ExitCode {
    if let Err(e) = super::install_stop_handlers() {
        return super::fail("demo", &format!("could not install the SIGTERM/SIGINT handlers: {e}"));
    }
    if let Err(e) = args.key.load() {
        return super::fail("demo", &e);
    }
    let (dir, temp) = match prepare_dir(args.data_dir.as_deref()) {
        Ok(d) => d,
        Err(e) => return super::fail("demo", &e),
    };
    let outcome = demo_key(&dir, args.key.key_file.as_deref()).and_then(|key| demo(&dir, args.seconds, key));
    if let Some(temp) = temp
        && (args.keep || outcome.is_err())
    {
        say!("demo: files kept in {}", temp.keep().display());
    }
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => super::fail("demo", &e),
    }
}

/// The demo's own data directory: the one asked for, if it does not exist or is empty, or a new private
/// temporary one. Never a directory holding anything: the demo writes synthetic data.
fn prepare_dir(asked: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    let Some(dir) = asked else {
        let temp = tempfile::Builder::new()
            .prefix("splitstore-demo-")
            .permissions(std::fs::Permissions::from_mode(store_core::files::PRIVATE_DIR_MODE))
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory: {e}"))?;
        return Ok((temp.path().to_path_buf(), Some(temp)));
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: the demo writes synthetic data and never into a directory that holds \
                     anything (a user's data directory, say); give it a new path, or none for a temporary one",
                    dir.display()
                ));
            }
            store_core::files::check_private_dir(dir).map_err(|e| e.to_string())?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            store_core::files::create_private_dir_all(dir).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(format!("{} cannot be used: {e}", dir.display())),
    }
    Ok((dir.to_path_buf(), None))
}

/// Rows that matter for the loss count, read straight from the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    events: u64,
    sessions: u64,
    projects: u64,
}

/// The demo's key: the one given, or (built with encryption) a new one kept in the demo's directory; `None`
/// for a plaintext demo (built without encryption). Returns the key and its file.
fn demo_key(dir: &Path, given: Option<&Path>) -> Result<Option<(store_core::Key, PathBuf)>, String> {
    if let Some(file) = given {
        let key = store_core::Key::read_file(file).map_err(|e| e.to_string())?;
        let file = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
        return Ok(Some((key, file)));
    }
    if !store_core::encryption_available() {
        return Ok(None);
    }
    let key = store_core::Key::generate().map_err(|e| format!("could not generate a key: {e}"))?;
    let file = dir.join(DEMO_KEY_FILE);
    key.write_file(&file).map_err(|e| e.to_string())?;
    Ok(Some((key, file)))
}

fn counts(dir: &Path, key: Option<&store_core::Key>) -> Result<Counts, String> {
    let rows = |schema: &'static store_core::Schema| -> Result<BTreeMap<String, u64>, String> {
        let path = schema.path_in(dir);
        let conn = open_read_only(&path, schema, key).map_err(|e| e.to_string())?;
        row_counts(&conn).map_err(|e| format!("{}: {e}", path.display()))
    };
    let activity = rows(&activity_store::SCHEMA)?;
    let config = rows(&config_store::SCHEMA)?;
    Ok(Counts {
        events: activity.get("activity_events").copied().unwrap_or(0),
        sessions: activity.get("activity_sessions").copied().unwrap_or(0),
        projects: config.get("projects").copied().unwrap_or(0),
    })
}

fn demo(dir: &Path, seconds: Duration, key: Option<(store_core::Key, PathBuf)>) -> Result<u64, String> {
    say!("demo: working in {}", dir.display());
    let (key, key_file) = match key {
        Some((key, file)) => (Some(key), Some(file)),
        None => (None, None),
    };
    match &key_file {
        Some(f) => say!(
            "demo: encrypted at rest (SQLCipher) with the key in {} (activity.db, config.db, their WAL and backups)",
            f.display()
        ),
        None => say!("demo: not encrypted (built without the `encryption` feature)"),
    }
    let key_file_text = key_file
        .as_ref()
        .map(|f| {
            f.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{} is not valid UTF-8", f.display()))
        })
        .transpose()?;
    let key_args: Vec<&str> = key_file_text.iter().flat_map(|f| ["--key-file", f.as_str()]).collect();

    // 1. A sample legacy database, as the old app left it (private: it holds a sample token).
    let legacy = dir.join(activity_store::schema::LEGACY.file_name);
    let summary = build(&LegacySpec::small(3), &legacy).map_err(|e| e.to_string())?;
    store_core::files::ensure_private(&legacy).map_err(|e| e.to_string())?;
    let copied = |table: &str| summary.counts().get(table).map_or(0, |c| c.copied);
    let before = Counts {
        events: copied("activity_events"),
        sessions: copied("activity_sessions"),
        projects: copied("projects"),
    };
    say!(
        "demo: built a sample legacy database {} ({} rows, schema v3)",
        legacy.display(),
        summary.rows()
    );

    // 2-3. The first start after an upgrade, then the race: two real processes, one writer per file.
    say!(
        "demo: starting `splitstore daemon` and `splitstore server` together for {seconds:?}: one splits the legacy database, the other waits"
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let secs = seconds.as_secs_f64().to_string();
    let data = dir
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", dir.display()))?;
    let mut children = Children(Vec::new());
    let mut daemon_args = vec!["daemon", "--data-dir", data, "--seconds", &secs, "--batch", "500"];
    daemon_args.extend(&key_args);
    let mut server_args = vec!["server", "--data-dir", data, "--seconds", &secs];
    server_args.extend(&key_args);
    children.spawn(&exe, &daemon_args)?;
    children.spawn(&exe, &server_args)?;
    // The backup is taken while both write: once both own their files (the split is done), halfway.
    children.wait_until_both_own(dir)?;
    children.sleep_unless_stopped(seconds / 2)?;
    let started = Instant::now();
    let folder = dir.join(store_core::backup::BACKUP_DIR_NAME);
    let report = operations::backup_with_key(dir, &folder, 5, key.as_ref(), &store_core::Waits::default())
        .map_err(|e| e.to_string())?;
    if let Some(e) = report.failed.first() {
        return Err(e.to_string());
    }
    let backups = report.taken;
    say!(
        "demo: backup taken while both wrote, in {} ms: {}",
        started.elapsed().as_millis(),
        backups
            .iter()
            .map(|b| b.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let [daemon_out, server_out] = children.finish()?;
    let daemon_line = summary_line(&daemon_out, "daemon")?;
    let server_line = summary_line(&server_out, "server")?;
    for line in daemon_out.stderr.iter().chain(&server_out.stderr) {
        say!("  {line}");
    }
    say!("  {daemon_line}\n  {server_line}");
    let d = fields(&daemon_line);
    let s = fields(&server_line);
    let (events, sessions) = (d("events")?, d("sessions")?);
    let (created, deleted, settings, reports) = (
        s("projects_created")?,
        s("projects_deleted")?,
        s("settings_written")?,
        s("reports")?,
    );

    // 4. The report, joined in the application, and the health of both files.
    let rows = Reports::open_with_key(dir, key.clone())
        .time_per_project(&TimeRange::all())
        .map_err(|e| e.to_string())?;
    say!("demo: time per project (all sessions), top 8 of {}:", rows.len());
    for r in rows.iter().take(8) {
        let name = match r.status {
            ProjectStatus::Unassigned => "(no project)".to_string(),
            ProjectStatus::Deleted => format!("(deleted project {})", r.project_id.unwrap_or_default()),
            ProjectStatus::LeftOutByRestore => format!(
                "(project {}, left out by a restore of config.db)",
                r.project_id.unwrap_or_default()
            ),
            ProjectStatus::LostToDamage => format!(
                "(project {}, lost with damage to config.db)",
                r.project_id.unwrap_or_default()
            ),
            ProjectStatus::NamedByOldId => format!(
                "{} (by its id before a repair: run repair)",
                r.name.as_deref().unwrap_or("(deleted project)")
            ),
            ProjectStatus::NamedByNewId => format!(
                "{} (by its id after a repair: run repair)",
                r.name.as_deref().unwrap_or_default()
            ),
            _ => r.name.clone().unwrap_or_default(),
        };
        say!(
            "  {:<40} {:>8} sessions {:>10.1} h",
            name,
            r.sessions,
            r.seconds as f64 / 3600.0
        );
    }
    let health = health::check_with_key(dir, CheckLevel::Quick, key.as_ref());
    for db in &health.databases {
        say!(
            "demo: health {}: schema v{}/{}, quick_check {}, owner {}, {} problem(s)",
            db.database,
            db.schema_version.unwrap_or(0),
            db.build_version,
            db.check.as_ref().map_or("-", |c| if c.ok { "ok" } else { "FAILED" }),
            match &db.owner {
                Some(LockState::Free) => "free".to_string(),
                Some(other) => format!("{other:?}"),
                None => "-".into(),
            },
            db.problems.len()
        );
    }

    // 5. Count: every legacy row that was kept and every acknowledged write is in its file, and nothing
    // that nobody wrote.
    let after = counts(dir, key.as_ref())?;
    let rounds: u64 = ConfigReader::open_with_key(&config_store::SCHEMA.path_in(dir), key.clone())
        .setting(ROUNDS_SETTING)
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    let expected = Counts {
        events: before.events + events,
        sessions: before.sessions + sessions,
        projects: (before.projects + created).saturating_sub(deleted),
    };
    let checks = [
        ("activity_events", expected.events, after.events),
        ("activity_sessions", expected.sessions, after.sessions),
        ("projects", expected.projects, after.projects),
    ];
    let mut lost = 0;
    let mut unexplained = 0;
    for (what, want, got) in checks {
        let verdict = if want == got { "ok" } else { "MISMATCH" };
        say!("demo: {what}: expected {want}, found {got}: {verdict}");
        lost += want.saturating_sub(got);
        unexplained += got.saturating_sub(want);
    }
    // A settings value is never printed, this one included: only whether it is the last one written.
    let rounds_ok = rounds == settings;
    say!(
        "demo: setting {ROUNDS_SETTING}: the last value the server wrote: {}",
        if rounds_ok { "ok" } else { "MISMATCH" }
    );
    lost += u64::from(!rounds_ok);
    if !health.healthy {
        unexplained += 1;
    }
    say!(
        "demo: events={events} sessions={sessions} projects_created={created} projects_deleted={deleted} \
         settings={settings} reports={reports} lost={lost}"
    );
    Ok(lost + unexplained)
}

/// What a child printed.
struct Output {
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// The demo's child processes: stopped (SIGTERM, then waited for) if the demo stops or fails first.
struct Children(Vec<(String, Child)>);

impl Children {
    fn spawn(&mut self, exe: &Path, args: &[&str]) -> Result<(), String> {
        let child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start `{} {}`: {e}", exe.display(), args[0]))?;
        self.0.push((args[0].to_string(), child));
        Ok(())
    }

    /// Sleeps `d`, or less if the demo is asked to stop (then the children are stopped too).
    fn sleep_unless_stopped(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if super::stop_requested() {
                return Err("stopped (SIGTERM/SIGINT): the daemon and server were stopped too".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits until the daemon and the server both own their files (after the first start's split), or one
    /// of them has exited (its failure is reported by [`finish`](Self::finish)).
    fn wait_until_both_own(&mut self, dir: &Path) -> Result<(), String> {
        let owned = |db: &str| {
            matches!(store_core::OwnerLock::probe(&dir.join(db)), Ok(LockState::Held { .. }))
                && dir.join(db).metadata().is_ok_and(|m| m.len() > 0)
        };
        while !(owned("activity.db") && owned("config.db")) {
            if self.0.iter_mut().any(|(_, c)| c.try_wait().ok().flatten().is_some()) {
                return Ok(());
            }
            self.sleep_unless_stopped(Duration::from_millis(20))?;
        }
        Ok(())
    }

    /// Waits for both children (stopping them if the demo is stopped) and returns what they printed.
    fn finish(mut self) -> Result<[Output; 2], String> {
        let mut outputs = Vec::new();
        for (name, mut child) in std::mem::take(&mut self.0) {
            let pipes = (child.stdout.take(), child.stderr.take());
            let status = loop {
                if super::stop_requested() {
                    terminate(&mut child);
                }
                match child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            };
            let read = |pipe: Option<Box<dyn Read>>| -> Vec<String> {
                pipe.map(|p| BufReader::new(p).lines().map_while(Result::ok).collect())
                    .unwrap_or_default()
            };
            let output = Output {
                stdout: read(pipes.0.map(|p| Box::new(p) as Box<dyn Read>)),
                stderr: read(pipes.1.map(|p| Box::new(p) as Box<dyn Read>)),
            };
            if !status.success() {
                return Err(format!("{name} failed ({status}): {}", output.stderr.join(" | ")));
            }
            outputs.push(output);
        }
        if super::stop_requested() {
            return Err("stopped (SIGTERM/SIGINT): the daemon and server were stopped too".into());
        }
        outputs
            .try_into()
            .map_err(|_| "the demo runs exactly two processes".to_string())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            terminate(child);
            let _ = child.wait();
        }
    }
}

/// Asks a child to stop cleanly (it flushes and exits on SIGTERM).
fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// The child's summary line (the last line of stdout starting with `<name>:`).
fn summary_line(output: &Output, name: &str) -> Result<String, String> {
    let prefix = format!("{name}:");
    output
        .stdout
        .iter()
        .rfind(|l| l.starts_with(&prefix))
        .cloned()
        .ok_or_else(|| format!("{name} printed no summary line"))
}

/// `key=value` fields of a summary line, as numbers.
fn fields(line: &str) -> impl Fn(&str) -> Result<u64, String> + '_ {
    move |key| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {key}= in {line:?}"))
    }
}
