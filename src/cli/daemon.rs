//! `splitstore daemon`: a reference daemon built on `ActivityWriter`, for trying the system out and for load.
//!
//! It owns DIR/activity.db (creating it if needed) and records what a real activity daemon would: sessions
//! of 100 events (apps, titles, urls, domains, project ids from `--project-ids`), each session ended with
//! its duration. Exit 0 when done or stopped by SIGTERM/SIGINT (after flushing and printing the summary; or,
//! at a first start after an upgrade, while it split the legacy file or waited for a backup folder or a
//! peer's split, before it changed anything),
//! 75 when stopped by an error retrying can help with (another daemon owns the file: the message names its
//! pid), 2 when the remedy must be acted on first (a damaged file, a bad argument).
//!
//! Acknowledgements (`--print-acks`) are printed only after the commit that holds the event returned, so
//! every acknowledged id survives a `kill -9` of this process (tests/daemon.rs checks exactly that).
//!
//! With `--prune-older-than-days N` it runs retention while it records: one short `prune_step` between
//! two commits (through `GroupCommit::writer_mut`, pending events stay pending), recording on for at least
//! three times as long as the step took, until nothing older than N days is left; then again every hour. The summary
//! line says what was pruned and the longest gap between two commits (`longest_gap_ms`), which is the
//! longest an event waited because of anything the daemon did, retention included. A damaged page met by
//! retention pauses retention for the run (said once on stderr with the fix and in a service manager's
//! status, `retention=paused` in the summary); recording goes on. The damage is recorded, so the next start begins with retention paused.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use activity_store::synthetic::Generator;
use activity_store::{
    ActivityWriter, Committed, ErrorKind, GroupCommit, GroupCommitPolicy, OpenOptions, WriterOptions,
};
use chrono::{DateTime, Utc};

use super::supervisor::Running;

/// Rows per retention step by default: a step of this size takes a millisecond or two (see README,
/// "Measured"), so a daemon pruning a long history still commits every few milliseconds.
pub const DEFAULT_PRUNE_STEP_ROWS: u32 = 250;

/// After a retention pass finished, the next one starts this much later.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The least time recorded between two retention steps. Each step is also followed by recording for at
/// least three times as long as it took: retention takes at most a quarter of the daemon's time, and adds
/// at most that much to the WAL traffic (and so to the checkpoints) recording makes.
const PRUNE_MIN_PAUSE: Duration = Duration::from_millis(2);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db (created, with the file, if missing).
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// The legacy database to split on the first start after the upgrade (default: DIR/legacy.db).
    #[arg(long, value_name = "FILE")]
    pub legacy: Option<PathBuf>,
    /// Run this many seconds, then exit 0. Without --seconds or --events: run until SIGTERM/SIGINT.
    #[arg(long, value_name = "S", value_parser = super::parse_seconds)]
    pub seconds: Option<Duration>,
    /// Record exactly N events (in sessions of 100), then exit 0.
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
    /// Group commit: commit every B events (or every --batch-delay-ms) instead of one commit per event.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: Option<u64>,
    /// With --batch: the longest an event waits for its group to commit.
    #[arg(long, value_name = "MS", default_value_t = 100, requires = "batch",
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub batch_delay_ms: u64,
    /// Print `ack <event id>` on its own line as soon as the event's commit returned (with --batch: one
    /// line per event of each group, after the group's commit).
    #[arg(long)]
    pub print_acks: bool,
    /// Project ids the sessions are assigned to, in turn, comma separated; `null` records sessions with
    /// no project.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1,2,3,4,5,null")]
    pub project_ids: Vec<ProjectId>,
    /// Events per second (default: as fast as possible), from 0.001 to 1e9.
    #[arg(long, value_name = "R", value_parser = super::parse_rate)]
    pub rate: Option<f64>,
    /// Events per session.
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub session_events: u64,
    /// Retention while recording: delete events and ended sessions older than N days (their totals stay),
    /// in short steps between commits, then return the freed pages to the file system; again every hour.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub prune_older_than_days: Option<u32>,
    /// With --prune-older-than-days: rows (at the end, pages) per retention step, each one short
    /// transaction between two commits.
    #[arg(long, value_name = "R", default_value_t = DEFAULT_PRUNE_STEP_ROWS, requires = "prune_older_than_days",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub prune_step_rows: u32,
    /// Record as if the clock were D days behind: history for retention to prune, in load tests.
    #[arg(long, value_name = "D", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub backdate_days: u32,
    #[command(flatten)]
    pub key: super::KeyArgs,
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
    if let Err(e) = super::install_stop_handlers() {
        return super::fail("daemon", &format!("could not install the SIGTERM/SIGINT handlers: {e}"));
    }
    super::supervisor::starting("daemon");
    let key = match args.key.load() {
        Ok(key) => key,
        Err(e) => return super::fail("daemon", &e),
    };
    if let Err(e) = super::owners_data_dir(&args.data_dir) {
        return super::fail("daemon", &e);
    }
    if let Err(code) = super::upgrade_first("daemon", &args.data_dir, args.legacy.as_deref(), key.as_ref()) {
        return code;
    }
    let options = WriterOptions {
        open: OpenOptions {
            predecessor: args.legacy.clone(),
            key,
            waits: super::owner_waits("daemon"),
            on_migrating: Some(super::say_migrating("daemon")),
            ..OpenOptions::default()
        },
        ..WriterOptions::default()
    };

    let writer = match ActivityWriter::open_with(&activity_store::SCHEMA.path_in(&args.data_dir), &options) {
        Ok(w) => w,
        Err(e) => return super::fail_owner("daemon", &e),
    };
    super::say_opened("daemon", writer.owner());
    let mut running = super::supervisor::ready(format_args!("recording into {}", writer.path().display()));
    if !writer.recovery().is_empty() {
        let _ = writeln!(io::stderr(), "splitstore daemon: recovered: {}", writer.recovery());
    }
    let policy = match args.batch {
        Some(b) => GroupCommitPolicy {
            max_events: usize::try_from(b).unwrap_or(usize::MAX),
            max_delay: Duration::from_millis(args.batch_delay_ms),
        },
        None => GroupCommitPolicy::every_event(),
    };
    let mut daemon = writer.into_group_commit(policy);
    let started = Instant::now();
    let mut tally = Tally::default();
    let outcome = record(&args, &mut daemon, &mut tally, &mut running);
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        tally.events as f64 / seconds
    } else {
        0.0
    };
    // The summary is printed even after a failure: it says how far the run got.
    let pruned = match &tally.pruned {
        Some(p) => format!(
            " pruned_events={} pruned_sessions={} pruned_pages={} prune_steps={} longest_prune_step_ms={:.1} \
             retention={}",
            p.events,
            p.sessions,
            p.pages,
            p.steps,
            p.longest_step.as_secs_f64() * 1e3,
            if p.paused.is_some() { "paused" } else { "running" }
        ),
        None => String::new(),
    };
    let gaps = match &tally.gaps {
        Some(g) => format!(
            " longest_gap_ms={:.1} gap_p99_ms={:.1} gap_p999_ms={:.1} gaps_over_20ms={}",
            g.longest.as_secs_f64() * 1e3,
            g.percentile_ms(0.99),
            g.percentile_ms(0.999),
            g.over_ms(20)
        ),
        None => String::new(),
    };
    super::say!(
        "daemon: events={} sessions={} seconds={seconds:.2} rate={rate:.0}/s{gaps}{pruned}",
        tally.events,
        tally.sessions
    );
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Store(e)) => {
            let wal = daemon.writer().wal_status();
            let cannot_grow = matches!(
                e.kind(),
                activity_store::ErrorKind::DiskFull | activity_store::ErrorKind::WriteFailed
            );
            if cannot_grow && wal.pinned_by_reader {
                let path = daemon.writer().path();
                eprintln!(
                    "splitstore daemon: the WAL of {} had grown to {} bytes because a reader holds an old snapshot \
                     ({}): close that reader, or the WAL fills the disk again once space is freed",
                    path.display(),
                    wal.wal_bytes,
                    reader_holding(path)
                );
            }
            super::fail_owner("daemon", &e)
        }
        Err(e) => super::fail("daemon", &e),
    }
}

#[derive(Debug, Default)]
struct Tally {
    /// Events committed (with --batch, pending ones are not counted until their group commits).
    events: u64,
    sessions: u64,
    /// The time between two commits of recorded activity (the first from the start).
    gaps: Option<Gaps>,
    /// What retention did, when it runs.
    pruned: Option<Pruned>,
}

#[derive(Debug, Default)]
struct Pruned {
    events: u64,
    sessions: u64,
    pages: u64,
    steps: u64,
    longest_step: Duration,
    /// Retention met a damaged page and stopped for the rest of the run (recording went on): why, and what
    /// to do, as said.
    paused: Option<String>,
}

impl Pruned {
    /// Stops retention for the rest of the run because of `damage`, saying so once with the fix.
    fn pause(&mut self, damage: &activity_store::Error) {
        let paused = format!(
            "retention paused: {}. What to do: {}. Recording goes on.",
            damage.what(),
            damage.remedy()
        );
        eprintln!("splitstore daemon: {paused}");
        self.paused = Some(paused);
    }
}

/// Retention while recording: when the next step may run, and against which cut-off.
struct Retention {
    keep: chrono::Duration,
    rows: u32,
    /// The cut-off of the pass under way (fixed for the pass, so it ends).
    pass: Option<DateTime<Utc>>,
    next_step: Instant,
}

impl Retention {
    /// Runs one step if one is due.
    fn step(&mut self, daemon: &mut GroupCommit, now: DateTime<Utc>, pruned: &mut Pruned) -> Result<(), Failure> {
        if pruned.paused.is_some() || Instant::now() < self.next_step {
            return Ok(());
        }
        let before = *self.pass.get_or_insert(now - self.keep);
        let started = Instant::now();
        let step = match daemon.writer_mut().prune_step(before, self.rows) {
            Ok(step) => step,
            // Damage that retention meets is in old history: recording appends to the newest pages and goes
            // on. Stopping would lose activity until someone repairs the file and, under a supervisor,
            // restart the daemon only to meet the same page again (a start loop). So retention alone stops
            // (the step's transaction rolled back), said once with the fix; doctor shows the damage too.
            Err(e) if matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase) => {
                pruned.pause(&e);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let took = started.elapsed();
        pruned.events += step.events_deleted;
        pruned.sessions += step.sessions_deleted;
        pruned.pages += step.pages_returned;
        pruned.steps += 1;
        pruned.longest_step = pruned.longest_step.max(took);
        if step.done {
            self.pass = None;
            self.next_step = Instant::now() + PRUNE_EVERY;
        } else {
            self.next_step = Instant::now() + (took * 3).max(PRUNE_MIN_PAUSE);
        }
        Ok(())
    }
}

/// Who keeps the WAL of `path` from being reset, as the daemon's lines about it say: the processes holding a
/// read transaction open on it, by pid and program, a stopped one said stopped
/// ([`store_core::checkpoint::TransactionHolders`]), or, where
/// none is seen, what such a reader usually is.
fn reader_holding(path: &std::path::Path) -> String {
    match store_core::checkpoint::TransactionHolders::reading(path) {
        Some(readers) => format!("a read transaction left open by {}", readers.named()),
        None => "a read transaction left open: a database browser, a long report".to_string(),
    }
}

/// Why a run stopped early.
#[derive(Debug)]
enum Failure {
    Store(activity_store::Error),
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

impl From<activity_store::Error> for Failure {
    fn from(e: activity_store::Error) -> Self {
        Failure::Store(e)
    }
}

/// Gaps between commits: the longest, and a histogram in 0.1 ms steps up to one second for percentiles.
#[derive(Debug, Clone)]
struct Gaps {
    last_commit: Instant,
    longest: Duration,
    tenths_of_ms: Vec<u64>,
    count: u64,
}

impl Gaps {
    const SLOTS: usize = 10_000;

    fn new() -> Gaps {
        Gaps {
            last_commit: Instant::now(),
            longest: Duration::ZERO,
            tenths_of_ms: vec![0; Self::SLOTS + 1],
            count: 0,
        }
    }

    fn commit(&mut self) {
        let now = Instant::now();
        let gap = now - self.last_commit;
        self.last_commit = now;
        self.longest = self.longest.max(gap);
        let slot = usize::try_from(gap.as_micros() / 100)
            .unwrap_or(usize::MAX)
            .min(Self::SLOTS);
        self.tenths_of_ms[slot] += 1;
        self.count += 1;
    }

    /// The gap (in ms, to 0.1 ms) that a fraction `p` of all gaps do not exceed.
    fn percentile_ms(&self, p: f64) -> f64 {
        let want = (self.count as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (slot, n) in self.tenths_of_ms.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return (slot + 1) as f64 / 10.0;
            }
        }
        self.longest.as_secs_f64() * 1e3
    }

    /// Gaps longer than `ms` milliseconds.
    fn over_ms(&self, ms: usize) -> u64 {
        self.tenths_of_ms[(ms * 10).min(Self::SLOTS)..].iter().sum()
    }
}

/// `ack <id>` lines on stdout, flushed after each commit's ids; and the time between commits.
struct Acks<'o> {
    out: Option<BufWriter<StdoutLock<'o>>>,
    gaps: Gaps,
}

impl Acks<'_> {
    /// A commit of recorded activity returned now.
    fn mark_commit(&mut self) {
        self.gaps.commit();
    }

    /// Acknowledges a commit's events; returns how many there were.
    fn committed(&mut self, c: Option<Committed>) -> Result<u64, Failure> {
        let Some(c) = c else { return Ok(0) };
        self.mark_commit();
        let n = c.event_ids.len() as u64;
        if let Some(out) = &mut self.out {
            for id in c.event_ids {
                writeln!(out, "ack {id}").map_err(Failure::Acks)?;
            }
            out.flush().map_err(Failure::Acks)?;
        }
        Ok(n)
    }
}

fn record(args: &Args, daemon: &mut GroupCommit, tally: &mut Tally, running: &mut Running) -> Result<(), Failure> {
    let path = daemon.writer().path().to_path_buf();
    let mut acks = Acks {
        out: args
            .print_acks
            .then(|| BufWriter::with_capacity(64 * 1024, io::stdout().lock())),
        gaps: Gaps::new(),
    };
    let mut make = Generator::new(args.project_ids.iter().map(|p| p.0).collect());
    let backdate = chrono::Duration::days(i64::from(args.backdate_days));
    let mut retention = args.prune_older_than_days.map(|days| Retention {
        keep: chrono::Duration::days(i64::from(days)),
        rows: args.prune_step_rows,
        pass: None,
        next_step: Instant::now(),
    });
    let mut pruned = Pruned::default();
    // The manager is told once that retention stopped (its status, beside what the daemon does).
    let mut pause_told = false;
    // Damage met before this start (by an earlier run) is still in the file: retention would meet it again.
    if let Some(damage) = daemon.writer().owner().damage_seen().filter(|_| retention.is_some()) {
        pruned.pause(&damage);
    }
    let started = Instant::now();
    let deadline = args.seconds.map(|s| started + s);
    let mut session: Option<(i64, u64)> = None;
    let mut escalations_seen = 0;
    let mut warned_at: u64 = 0;
    // Events handed to the group; `tally.events` counts those committed.
    let mut made = 0u64;

    let result = (|| {
        loop {
            running.still_working();
            if !pause_told && let Some(paused) = &pruned.paused {
                running.troubled(paused);
                pause_told = true;
            }
            if super::stop_requested()
                || args.events.is_some_and(|n| made >= n)
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Ok(());
            }
            if let Some(rate) = args.rate {
                // Within bounds by validation: `made / rate` seconds is a representable time.
                let due = started + Duration::from_secs_f64(made as f64 / rate);
                let now = Instant::now();
                if now < due {
                    tally.events += acks.committed(daemon.flush_if_due()?)?;
                    std::thread::sleep((due - now).min(Duration::from_millis(10)));
                    continue;
                }
            }
            let now = Utc::now() - backdate;
            if let Some(retention) = &mut retention {
                retention.step(daemon, now, &mut pruned)?;
            }
            let (id, n) = match session {
                Some(open) => open,
                None => {
                    tally.sessions += 1;
                    let id = daemon.start_session(&make.session(now))?;
                    acks.mark_commit();
                    (id, 0)
                }
            };
            made += 1;
            tally.events += acks.committed(daemon.push(make.event(id, now))?)?;
            session = if n + 1 == args.session_events {
                tally.events += acks.committed(daemon.end_session(id, Utc::now() - backdate)?)?;
                None
            } else {
                Some((id, n + 1))
            };
            let wal = daemon.writer().wal_status();
            if wal.escalations != escalations_seen {
                escalations_seen = wal.escalations;
                // Said when a reader first pins the WAL, then each time the WAL has doubled since: a reader
                // left open for a day is a few dozen lines, not one every escalation interval.
                if wal.pinned_by_reader && wal.wal_bytes >= 2 * warned_at {
                    warned_at = wal.wal_bytes.max(1);
                    eprintln!(
                        "splitstore daemon: warning: the WAL of {} is {} bytes and a reader holds an old snapshot \
                         ({}), so it cannot be reset until that reader finishes",
                        path.display(),
                        wal.wal_bytes,
                        reader_holding(&path)
                    );
                } else if !wal.pinned_by_reader {
                    warned_at = 0;
                }
            }
        }
    })();
    // Whatever stopped the loop: end the open session and commit what is pending, then report the first
    // failure (a failed flush after a failed record is the same failure again).
    let closing = (|| {
        if let Some((id, _)) = session {
            tally.events += acks.committed(daemon.end_session(id, Utc::now() - backdate)?)?;
        }
        tally.events += acks.committed(Some(daemon.flush()?))?;
        Ok(())
    })();
    tally.gaps = Some(acks.gaps);

    tally.pruned = retention.map(|_| pruned);
    result.and(closing)
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
