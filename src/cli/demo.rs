//! `splitstore demo`: the main job, end to end, on a built-in sample.
//!
//! 1. builds a sample legacy combined database (schema v3, with the quirks of real files);
//! 2. splits it into activity.db and config.db with migrate-split's library;
//! 3. runs `splitstore daemon` and `splitstore server` as two real child processes at full speed, each the
//!    only writer of its file and a reader of the other's, and takes a backup while they write;
//! 4. prints the time-per-project report (joined in the application) and a health summary;
//! 5. counts the rows of both files against what each process reported writing.
//!
//! Its last line is `demo: events=N sessions=M projects_created=A projects_deleted=B settings=C reports=D
//! lost=L`, and it exits non-zero if anything was lost (or anything is there that nobody wrote).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use activity_store::TimeRange;
use config_store::ConfigReader;
use migrate_split::fixtures::{LegacySpec, build};
use migrate_split::{Options, split};
use splitstore::{ProjectStatus, Reports, health, operations};
use store_core::check::row_counts;
use store_core::diagnostics::CheckLevel;
use store_core::read_pool::open_read_only;

use super::server::ROUNDS_SETTING;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in this directory (created if missing) instead of a fresh temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How long the daemon and the server race.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Keep the temporary directory afterwards (its path is printed).
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: Args) -> ExitCode {
    let temp = match args.data_dir {
        Some(_) => None,
        None => match tempfile::Builder::new().prefix("splitstore-demo-").tempdir() {
            Ok(t) => Some(t),
            Err(e) => return super::fail("demo", &format!("could not create a temporary directory: {e}")),
        },
    };
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
    let outcome = demo(&dir, args.seconds);
    if let Some(temp) = temp
        && (args.keep || outcome.is_err())
    {
        super::say!("demo: files kept in {}", temp.keep().display());
    }
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => super::fail("demo", &e),
    }
}

/// Rows that matter for the loss count, read straight from the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    events: u64,
    sessions: u64,
    projects: u64,
}

fn counts(dir: &Path) -> Result<Counts, String> {
    let rows = |schema: &'static store_core::Schema| -> Result<BTreeMap<String, u64>, String> {
        let path = schema.path_in(dir);
        let conn = open_read_only(&path, schema).map_err(|e| e.to_string())?;
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

fn demo(dir: &Path, seconds: f64) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    super::say!("demo: working in {}", dir.display());

    // 1. A sample legacy database, as the old app left it.
    let legacy = dir.join("legacy.db");
    if !legacy.exists() {
        let summary = build(&LegacySpec::small(3), &legacy).map_err(|e| e.to_string())?;
        super::say!(
            "demo: built a sample legacy database {} ({} rows, schema v3)",
            legacy.display(),
            summary.rows()
        );
    }

    // 2. The one-shot split.
    let report = split(&legacy, dir, &Options::default()).map_err(|e| e.to_string())?;
    super::print_out(format_args!("{}", indent(&report.human_summary())));
    let before = counts(dir)?;
    let project_ids: Vec<String> = ConfigReader::open_in(dir)
        .project_summaries()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| !p.archived)
        .take(6)
        .map(|p| p.id.to_string())
        .chain(std::iter::once("null".to_string()))
        .collect();

    // 3. The race: two real processes, one writer per file, each reading the other's file.
    super::say!("demo: racing `splitstore daemon` and `splitstore server` for {seconds} s");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let secs = seconds.to_string();
    let daemon = spawn(
        &exe,
        &[
            "daemon",
            "--data-dir",
            path_str(dir)?,
            "--seconds",
            &secs,
            "--batch",
            "500",
            "--project-ids",
            &project_ids.join(","),
        ],
    )?;
    let server = spawn(&exe, &["server", "--data-dir", path_str(dir)?, "--seconds", &secs])?;
    std::thread::sleep(Duration::from_secs_f64(seconds / 2.0));
    let started = Instant::now();
    let backups = operations::backup(dir, &dir.join("backups"), 5).map_err(|e| e.to_string())?;
    super::say!(
        "demo: backup taken while both wrote, in {} ms: {}",
        started.elapsed().as_millis(),
        backups
            .iter()
            .map(|b| b.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let daemon_line = finish(daemon, "daemon")?;
    let server_line = finish(server, "server")?;
    super::say!("  {daemon_line}\n  {server_line}");
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
    let rows = Reports::open(dir)
        .time_per_project(&TimeRange::all())
        .map_err(|e| e.to_string())?;
    super::say!("demo: time per project (all sessions), top 8 of {}:", rows.len());
    for r in rows.iter().take(8) {
        let name = match r.status {
            ProjectStatus::Unassigned => "(no project)".to_string(),
            ProjectStatus::Deleted => format!("(deleted project {})", r.project_id.unwrap_or_default()),
            _ => r.name.clone().unwrap_or_default(),
        };
        super::say!(
            "  {:<40} {:>8} sessions {:>10.1} h",
            name,
            r.sessions,
            r.seconds as f64 / 3600.0
        );
    }
    let health = health::check(dir, CheckLevel::Quick);
    for db in &health.databases {
        super::say!(
            "demo: health {}: schema v{}/{}, quick_check {}, owner {}, {} problem(s)",
            db.database,
            db.schema_version.unwrap_or(0),
            db.build_version,
            db.check.as_ref().map_or("-", |c| if c.ok { "ok" } else { "FAILED" }),
            match &db.owner {
                Some(store_core::LockState::Free) => "free".to_string(),
                Some(other) => format!("{other:?}"),
                None => "-".into(),
            },
            db.problems.len()
        );
    }

    // 5. Count: every acknowledged write is in its file, and nothing nobody wrote.
    let after = counts(dir)?;
    let rounds: u64 = ConfigReader::open_in(dir)
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
        super::say!("demo: {what}: expected {want}, found {got}: {verdict}");
        lost += want.saturating_sub(got);
        unexplained += got.saturating_sub(want);
    }
    // A settings value is never printed, this one included: only whether it is the last one written.
    let rounds_ok = rounds == settings;
    super::say!(
        "demo: setting {ROUNDS_SETTING}: the last value the server wrote: {}",
        if rounds_ok { "ok" } else { "MISMATCH" }
    );
    lost += u64::from(!rounds_ok);
    if !health.healthy {
        unexplained += 1;
    }
    super::say!(
        "demo: events={events} sessions={sessions} projects_created={created} projects_deleted={deleted} \
         settings={settings} reports={reports} lost={lost}"
    );
    Ok(lost + unexplained)
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("{} is not valid UTF-8", p.display()))
}

fn spawn(exe: &Path, args: &[&str]) -> Result<Child, String> {
    Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("could not start `{} {}`: {e}", exe.display(), args[0]))
}

/// Waits for a child and returns its summary line (the last line starting with `<name>:`).
fn finish(child: Child, name: &str) -> Result<String, String> {
    let output = child.wait_with_output().map_err(|e| format!("{name}: {e}"))?;
    let prefix = format!("{name}:");
    let line = BufReader::new(&output.stdout[..])
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with(&prefix))
        .last()
        .ok_or_else(|| format!("{name} printed no summary line"))?;
    if !output.status.success() {
        return Err(format!("{name} failed ({}); its summary: {line}", output.status));
    }
    Ok(line)
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

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
