//! `splitstore daemon`: a reference daemon built on `ActivityWriter`, for trying the system out and for load.
//!
//! It owns DIR/activity.db (creating it if needed) and records what a real activity daemon would: sessions
//! of 100 events (apps, titles, urls, domains, project ids from `--project-ids`), each session ended with
//! its duration. Exit 0 when done or stopped by SIGTERM/SIGINT (after flushing and printing the summary),
//! 2 when it could not run (another daemon owns the file: the message names its pid).
//!
//! Acknowledgements (`--print-acks`) are printed only after the commit that holds the event returned, so
//! every acknowledged id survives a `kill -9` of this process (tests/daemon.rs checks exactly that).

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use activity_store::{ActivityWriter, Committed, GroupCommit, GroupCommitPolicy, NewEvent, NewSession, WalStatus};
use chrono::{DateTime, Utc};

/// Events per session.
const SESSION_EVENTS: u64 = 100;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db (created, with the file, if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Run this many seconds, then exit 0. Without --seconds or --events: run until SIGTERM/SIGINT.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Record exactly N events (in sessions of 100), then exit 0.
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
    /// Group commit: commit every B events (or every --batch-delay-ms) instead of one commit per event.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// With --batch: the longest an event waits for its group to commit.
    #[arg(long, value_name = "MS", default_value_t = 100, requires = "batch")]
    pub batch_delay_ms: u64,
    /// Print `ack <event id>` on its own line as soon as the event's commit returned (with --batch: one
    /// line per event of each group, after the group's commit).
    #[arg(long)]
    pub print_acks: bool,
    /// Project ids the sessions are assigned to, in turn, comma separated; `null` records sessions with
    /// no project.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1,2,3,4,5,null")]
    pub project_ids: Vec<ProjectId>,
    /// Events per second (default: as fast as possible).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
}

/// One entry of `--project-ids`: a project id, or `null` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectId(Option<i64>);

impl FromStr for ProjectId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("null") || s.eq_ignore_ascii_case("none") {
            return Ok(ProjectId(None));
        }
        s.parse()
            .map(|id| ProjectId(Some(id)))
            .map_err(|_| format!("{s:?} is not a project id (an integer, or `null` for no project)"))
    }
}

pub fn run(args: Args) -> ExitCode {
    if let Some(problem) = invalid(&args) {
        return super::fail("daemon", &problem);
    }
    if let Err(e) = super::install_stop_handlers() {
        return super::fail("daemon", &format!("could not install the SIGTERM/SIGINT handlers: {e}"));
    }
    let mut writer = match ActivityWriter::open_in(&args.data_dir) {
        Ok(w) => w,
        Err(e) => return super::fail("daemon", &e),
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    let outcome = record(&args, &mut writer, &mut tally);
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        tally.events as f64 / seconds
    } else {
        0.0
    };
    // The summary is printed even after a failure: it says how far the run got.
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "daemon: events={} sessions={} seconds={seconds:.2} rate={rate:.0}/s",
        tally.events, tally.sessions
    );
    let _ = out.flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail("daemon", &e),
    }
}

fn invalid(args: &Args) -> Option<String> {
    if args.seconds.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
        return Some("--seconds must be a number of seconds, 0 or more".into());
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Some("--rate must be a number of events per second above 0".into());
    }
    if args.project_ids.is_empty() {
        return Some("--project-ids needs at least one id (or `null`)".into());
    }
    None
}

#[derive(Debug, Default)]
struct Tally {
    /// Events committed (with --batch, pending ones are not counted until their group commits).
    events: u64,
    sessions: u64,
}

/// Why a run stopped early.
#[derive(Debug)]
enum Failure {
    Store(store_core::Error),
    Acks(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Store(e) => e.fmt(f),
            Failure::Acks(e) => write!(
                f,
                "could not print acknowledgements on stdout ({e}); the events committed so far are in activity.db"
            ),
        }
    }
}

impl From<store_core::Error> for Failure {
    fn from(e: store_core::Error) -> Self {
        Failure::Store(e)
    }
}

/// Where events go: one commit each, or a group-commit buffer.
enum Sink<'w> {
    Direct(&'w mut ActivityWriter),
    Grouped(GroupCommit<'w>),
}

impl Sink<'_> {
    fn start_session(&mut self, s: &NewSession) -> store_core::Result<i64> {
        match self {
            Sink::Direct(w) => w.start_session(s),
            Sink::Grouped(g) => g.start_session(s),
        }
    }

    // Each method below returns how many events became committed (and were acknowledged) by the call.

    fn end_session(&mut self, id: i64, end: DateTime<Utc>, acks: &mut Acks<'_>) -> Result<u64, Failure> {
        match self {
            Sink::Direct(w) => {
                w.end_session(id, end)?;
                Ok(0)
            }
            Sink::Grouped(g) => acks.committed(g.end_session(id, end)?),
        }
    }

    fn record(&mut self, e: NewEvent, acks: &mut Acks<'_>) -> Result<u64, Failure> {
        match self {
            Sink::Direct(w) => {
                let id = w.record_event(&e)?;
                acks.ack(id)?;
                acks.flush()?;
                Ok(1)
            }
            Sink::Grouped(g) => acks.committed(g.push(e)?),
        }
    }

    /// Commits a group that has waited long enough (the event stream may be paced).
    fn tick(&mut self, acks: &mut Acks<'_>) -> Result<u64, Failure> {
        match self {
            Sink::Direct(_) => Ok(0),
            Sink::Grouped(g) => acks.committed(g.flush_if_due()?),
        }
    }

    fn flush(&mut self, acks: &mut Acks<'_>) -> Result<u64, Failure> {
        match self {
            Sink::Direct(_) => Ok(0),
            Sink::Grouped(g) => acks.committed(Some(g.flush()?)),
        }
    }

    fn wal(&self) -> &WalStatus {
        match self {
            Sink::Direct(w) => w.wal_status(),
            Sink::Grouped(g) => g.writer().wal_status(),
        }
    }
}

/// `ack <id>` lines on stdout, flushed after each commit's ids.
struct Acks<'o> {
    out: Option<BufWriter<StdoutLock<'o>>>,
}

impl Acks<'_> {
    fn ack(&mut self, id: i64) -> Result<(), Failure> {
        match &mut self.out {
            Some(out) => writeln!(out, "ack {id}").map_err(Failure::Acks),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), Failure> {
        match &mut self.out {
            Some(out) => out.flush().map_err(Failure::Acks),
            None => Ok(()),
        }
    }

    /// Acknowledges a group's events; returns how many there were.
    fn committed(&mut self, c: Option<Committed>) -> Result<u64, Failure> {
        let Some(c) = c else { return Ok(0) };
        let n = c.event_ids.len() as u64;
        if self.out.is_some() {
            for id in c.event_ids {
                self.ack(id)?;
            }
            self.flush()?;
        }
        Ok(n)
    }
}

fn record(args: &Args, writer: &mut ActivityWriter, tally: &mut Tally) -> Result<(), Failure> {
    let path = writer.path().to_path_buf();
    let mut sink = match args.batch {
        Some(b) => Sink::Grouped(writer.group_commit(GroupCommitPolicy {
            max_events: usize::try_from(b).unwrap_or(usize::MAX),
            max_delay: Duration::from_millis(args.batch_delay_ms),
        })),
        None => Sink::Direct(writer),
    };
    let mut acks = Acks {
        out: args
            .print_acks
            .then(|| BufWriter::with_capacity(64 * 1024, io::stdout().lock())),
    };
    let mut make = Generator::new(args.project_ids.iter().map(|p| p.0).collect());
    let started = Instant::now();
    let deadline = args.seconds.map(|s| started + Duration::from_secs_f64(s));
    let mut session: Option<(i64, u64)> = None;
    let mut escalations_seen = 0;
    // Events handed to the sink; `tally.events` counts those committed.
    let mut made = 0u64;

    let result = (|| {
        loop {
            if super::stop_requested()
                || args.events.is_some_and(|n| made >= n)
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Ok(());
            }
            if let Some(rate) = args.rate {
                let due = started + Duration::from_secs_f64(made as f64 / rate);
                let now = Instant::now();
                if now < due {
                    tally.events += sink.tick(&mut acks)?;
                    std::thread::sleep((due - now).min(Duration::from_millis(10)));
                    continue;
                }
            }
            let now = Utc::now();
            let (id, n) = match session {
                Some(open) => open,
                None => {
                    tally.sessions += 1;
                    (sink.start_session(&make.session(now))?, 0)
                }
            };
            made += 1;
            tally.events += sink.record(make.event(id, now), &mut acks)?;
            session = if n + 1 == SESSION_EVENTS {
                tally.events += sink.end_session(id, Utc::now(), &mut acks)?;
                None
            } else {
                Some((id, n + 1))
            };
            let wal = sink.wal();
            if wal.escalations != escalations_seen {
                escalations_seen = wal.escalations;
                if wal.pinned_by_reader {
                    eprintln!(
                        "splitstore daemon: warning: the WAL of {} is {} bytes and a reader holds an old snapshot \
                         (a read transaction left open), so it cannot be reset until that reader finishes",
                        path.display(),
                        wal.wal_bytes
                    );
                }
            }
        }
    })();
    // Whatever stopped the loop: end the open session and commit what is pending, then report the first
    // failure (a failed flush after a failed record is the same failure again).
    let closing = (|| {
        if let Some((id, _)) = session {
            tally.events += sink.end_session(id, Utc::now(), &mut acks)?;
        }
        tally.events += sink.flush(&mut acks)?;
        Ok(())
    })();
    result.and(closing)
}

/// Plausible activity, deterministic (a fixed-seed xorshift: no dependency, same stream every run).
struct Generator {
    state: u64,
    project_ids: Vec<Option<i64>>,
    sessions: usize,
    session: Shape,
}

/// What the current session is about; its events repeat it with small variations.
#[derive(Clone, Copy)]
struct Shape {
    app: &'static str,
    domain: Option<&'static str>,
    task: u64,
}

const APPS: &[(&str, Option<&str>)] = &[
    ("code", None),
    ("firefox", Some("docs.rs")),
    ("firefox", Some("github.com")),
    ("slack", Some("app.slack.com")),
    ("terminal", None),
    ("figma", Some("figma.com")),
];
const EVENT_TYPES: &[&str] = &["focus", "title_change", "url_change", "input", "input", "input"];

impl Generator {
    fn new(project_ids: Vec<Option<i64>>) -> Generator {
        Generator {
            state: 0x9E37_79B9_7F4A_7C15,
            project_ids,
            sessions: 0,
            session: Shape {
                app: APPS[0].0,
                domain: APPS[0].1,
                task: 0,
            },
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn session(&mut self, start: DateTime<Utc>) -> NewSession {
        let (app, domain) = APPS[(self.next() % APPS.len() as u64) as usize];
        let shape = Shape {
            app,
            domain,
            task: self.next() % 1000,
        };
        let project_id = self.project_ids[self.sessions % self.project_ids.len()];
        self.sessions += 1;
        self.session = shape;
        NewSession {
            app: app.to_string(),
            title: Some(shape.title()),
            url: shape.url(0),
            domain: domain.map(str::to_string),
            project_id,
            start,
            is_idle: false,
        }
    }

    fn event(&mut self, session_id: i64, at: DateTime<Utc>) -> NewEvent {
        let shape = self.session;
        let r = self.next();
        let event_type = EVENT_TYPES[(r % EVENT_TYPES.len() as u64) as usize];
        NewEvent {
            session_id: Some(session_id),
            event_type: event_type.to_string(),
            app: Some(shape.app.to_string()),
            title: Some(shape.title()),
            url: shape.url(r % 16),
            at,
            idle_seconds: None,
        }
    }
}

impl Shape {
    fn title(&self) -> String {
        format!("{} - task {}", self.app, self.task)
    }

    fn url(&self, page: u64) -> Option<String> {
        self.domain.map(|d| format!("https://{d}/task/{}/{page}", self.task))
    }
}

#[cfg(test)]
mod tests {
    use super::ProjectId;

    #[test]
    fn project_ids_parse_integers_and_null() {
        assert_eq!("7".parse::<ProjectId>().unwrap(), ProjectId(Some(7)));
        assert_eq!(" NULL ".parse::<ProjectId>().unwrap(), ProjectId(None));
        let err = "seven".parse::<ProjectId>().unwrap_err();
        assert!(err.contains("not a project id"), "{err}");
    }
}
