//! `splitstore server`: a reference server built on [`splitstore::Server`]. It is the only writer of
//! DIR/config.db: it creates, edits and deletes projects (with domains and keywords), writes settings, and
//! reads the time-per-project report over both files, in a loop at full speed. On exit (after --seconds, or
//! on SIGTERM/SIGINT) it prints one summary line:
//! `server: projects_created=A projects_deleted=B settings_written=C reports_failed=F reports=D`.
//!
//! Exit codes as the daemon's: 0, 75 (retrying can help: another server owns config.db), 2 (act on the
//! remedy first: a damaged config.db, met now or by an earlier run, stops it before any change).
//!
//! A report that meets damage in activity.db (the daemon's file), or a `-wal` beside it of a file replaced by
//! hand (after a crash or under the running daemon), fails alone, said once on stderr with the fix and counted
//! in `reports_failed`: the server goes on serving changes to config.db, which it could not do if it exited
//! (under a supervisor it would start again onto the same page).
//!
//! An activity.db older than this build reads (its daemon not upgraded yet) makes the reports wait, said once
//! on stderr; a file the daemon of the build before the running totals keeps is read as it is. Under a
//! service manager, its status says either beside what the server does while it lasts.
//!
//! It deletes only projects it created itself (the oldest first), never the user's (e.g. those a split
//! brought in), so `projects in config.db = before + created - deleted` holds for anyone checking.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use activity_store::TimeRange;
use config_store::{NewProject, ProjectUpdate};
use splitstore::Server;

use super::supervisor::Running;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding config.db (created if missing) and activity.db (read only).
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// The legacy database to split on the first start after the upgrade (default: DIR/legacy.db).
    #[arg(long, value_name = "FILE")]
    pub legacy: Option<PathBuf>,
    /// Run this many seconds, then exit 0. Without it: until SIGTERM/SIGINT.
    #[arg(long, value_name = "S", value_parser = super::parse_seconds)]
    pub seconds: Option<Duration>,
    /// After each committed change print `created <id>` / `deleted <id>` on its own line, flushed at once.
    #[arg(long)]
    pub print_changes: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

/// The setting the server bumps every round; its final value equals the rounds that wrote it.
pub const ROUNDS_SETTING: &str = "server.rounds";

#[derive(Debug, Default)]
struct Tally {
    created: u64,
    deleted: u64,
    settings: u64,
    reports: u64,
    reports_failed: u64,
    reports_waiting_said: bool,
}

pub fn run(args: Args) -> ExitCode {
    if let Err(e) = super::install_stop_handlers() {
        return super::fail("server", &format!("could not install the SIGTERM/SIGINT handlers: {e}"));
    }
    super::supervisor::starting("server");
    let key = match args.key.load() {
        Ok(key) => key,
        Err(e) => return super::fail("server", &e),
    };
    if let Err(e) = super::owners_data_dir(&args.data_dir) {
        return super::fail("server", &e);
    }
    if let Err(code) = super::upgrade_first("server", &args.data_dir, args.legacy.as_deref(), key.as_ref()) {
        return code;
    }
    let options = store_core::OpenOptions {
        predecessor: args.legacy.clone(),
        key,
        waits: super::owner_waits("server"),
        on_migrating: Some(super::say_migrating("server")),
        ..Default::default()
    };
    let mut server = match Server::open_with(&args.data_dir, &options) {
        Ok(s) => s,
        Err(e) => return super::fail_owner("server", &e),
    };
    // The server cannot serve around a damaged page of config.db (every change and report reads the projects),
    // and an open does not read that page: without this, each start would run until it met the page again.
    if let Some(damage) = server.config().owner().damage_seen() {
        return super::fail_owner("server", &damage);
    }
    super::say_opened("server", server.config().owner());
    let mut running = super::supervisor::ready(format_args!("serving {}", server.config().path().display()));
    let config = server.config().path().display();
    let went_back = "it was put back from a copy, created anew, or lost its last commits in a power loss. Its counters \
                     now start past those ids, so no id is handed out twice";
    let listed = |raised: &[(String, i64)]| {
        let tables: Vec<String> = raised.iter().map(|(table, id)| format!("{table} up to {id}")).collect();
        tables.join(", ")
    };
    let own = &server.config().owner().open_report().counters_raised;
    if !own.is_empty() {
        eprintln!(
            "splitstore server: note: {config} had handed out ids past where its counters are now ({}, as recorded \
             beside it): {went_back}",
            listed(own)
        );
    }
    if !server.counters_raised().is_empty() {
        eprintln!(
            "splitstore server: note: activity.db names ids past where the counters of {config} are now ({}): \
             {went_back}; what activity.db names that config.db no longer holds is reported as deleted",
            listed(server.counters_raised())
        );
    }
    let deadline = args.seconds.map(|s| Instant::now() + s);
    let mut tally = Tally::default();
    let outcome = serve(&mut server, deadline, args.print_changes, &mut tally, &mut running);
    super::say!(
        "server: projects_created={} projects_deleted={} settings_written={} reports_failed={} reports={}",
        tally.created,
        tally.deleted,
        tally.settings,
        tally.reports_failed,
        tally.reports
    );
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail_owner("server", &e),
    }
}

fn serve(
    server: &mut Server,
    deadline: Option<Instant>,
    print: bool,
    tally: &mut Tally,
    running: &mut Running,
) -> splitstore::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut say = |line: String| {
        if print {
            // A closed stdout must not stop the server; the summary line reports the counts anyway.
            let _ = writeln!(stdout, "{line}").and_then(|_| stdout.flush());
        }
    };
    let mut mine: VecDeque<i64> = VecDeque::new();
    // What keeps reports from being answered now, as the manager's status says it (told when it changes).
    let mut reports_trouble: Option<ReportsTrouble> = None;
    let mut round: u64 = 0;
    while !super::stop_requested() && deadline.is_none_or(|d| Instant::now() < d) {
        running.still_working();
        round += 1;
        let project = server.config_mut().create_project(&NewProject {
            name: format!("Server project {round}"),
            color: Some(["#d33", "#3a3", "#33d"][round as usize % 3].into()),
            archived: false,
            domains: vec![format!("p{round}.example.com"), format!("docs.p{round}.example.org")],
            keywords: vec![format!("standup {round}")],
        })?;
        tally.created += 1;
        mine.push_back(project.id);
        say(format!("created {}", project.id));

        if round.is_multiple_of(3) {
            let update = ProjectUpdate {
                name: Some(format!("Server project {round} (renamed)")),
                domains: Some(vec![
                    format!("p{round}.example.com"),
                    format!("app.p{round}.example.net"),
                ]),
                ..ProjectUpdate::default()
            };
            server.config_mut().update_project(project.id, &update)?;
        }
        if round.is_multiple_of(2)
            && let Some(oldest) = mine.pop_front()
            && server.config_mut().delete_project(oldest)?
        {
            tally.deleted += 1;
            say(format!("deleted {oldest}"));
        }
        server.config_mut().set_setting(ROUNDS_SETTING, &round)?;
        tally.settings += 1;

        // Today's report: the sessions the daemon is recording now, joined with the projects.
        let today = TimeRange::since(chrono::Utc::now() - chrono::Duration::hours(24));
        match server.reports().time_per_project(&today) {
            Ok(_) => {
                tally.reports += 1;
                if reports_trouble.take().is_some() {
                    running.untroubled();
                }
            }
            // activity.db is older than this build reads (its daemon has not upgraded it yet), or not
            // converted yet: the report waits for it, said once (a missing one is an empty report).
            Err(e) if e.is_not_ready() => {
                if !tally.reports_waiting_said {
                    eprintln!(
                        "splitstore server: reports wait: {}. What to do: {}. Serving goes on.",
                        e.what(),
                        e.remedy()
                    );
                    tally.reports_waiting_said = true;
                }
                if reports_trouble.replace(ReportsTrouble::Wait) != Some(ReportsTrouble::Wait) {
                    running.troubled(format_args!("reports wait: {}. What to do: {}", e.what(), e.remedy()));
                }
            }
            // Anything wrong with activity.db (the daemon's file, which the server cannot mend while the daemon
            // runs): damage, a read of it that failed (its -wal removed by hand), a -wal beside it of the file
            // replaced by hand (after a crash, or under the running daemon: `ownership_lost` on activity.db,
            // which is not the server's), a link or another application's file in its place, a file gone or
            // unreadable to this user: the report fails alone, rather than the server exit and stop serving
            // config.db.
            Err(e) if e.path() == server.reports().activity().path() => {
                if tally.reports_failed == 0 {
                    eprintln!(
                        "splitstore server: a report failed: {}. What to do: {}. Serving goes on (reports_failed \
                         counts the reports that fail).",
                        e.what(),
                        e.remedy()
                    );
                }
                tally.reports_failed += 1;
                if reports_trouble.replace(ReportsTrouble::Fail) != Some(ReportsTrouble::Fail) {
                    running.troubled(format_args!("reports fail: {}. What to do: {}", e.what(), e.remedy()));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why reports are not answered now: activity.db not ready for this build, or failing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReportsTrouble {
    Wait,
    Fail,
}
