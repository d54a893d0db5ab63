//! A daemon as an application would write one: it owns activity.db, reads config.db to attribute activity
//! to projects, commits events in groups, and prunes old history in short steps between commits while
//! events are pending, all from one struct. Run it beside `cargo run --example server` on the same data directory; their totals agree.
//!
//! `cargo run --example daemon -- --data-dir DIR [--seconds 5] [--rate 500] [--session-secs 2]`
//!
//! It prints `daemon: sessions=N seconds=S` at the end: the sessions it ended and their seconds (each to the nearest),
//! counted on its side.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use splitstore::activity_store::synthetic::Generator;
use splitstore::activity_store::{ActivityWriter, Committed, GroupCommit, GroupCommitPolicy};
use splitstore::config_store::ConfigReader;
use splitstore::{ChangeToken, ErrorKind};

/// Rows one retention step deletes at most: one short transaction between two commits.
const PRUNE_STEP_ROWS: u32 = 250;

/// A retention pass under way.
#[derive(Default)]
struct Pass {
    steps: u64,
    sessions: u64,
}

/// Everything the daemon keeps: the writer with its group, and a reader of the server's file.
struct Daemon {
    group: GroupCommit,
    config: ConfigReader,
    /// Domain lookups, valid while config.db does not change.
    projects: HashMap<String, Option<i64>>,
    seen: Option<ChangeToken>,
    /// Sessions ended (and made durable) so far, and their seconds (each to the nearest).
    ended: u64,
    seconds: i64,
}

impl Daemon {
    /// The project a domain belongs to, cached until the server commits anything.
    fn project_for(&mut self, domain: Option<&str>) -> Option<i64> {
        let domain = domain?;
        match self.config.change_token() {
            Ok(now) if Some(now) != self.seen => {
                self.projects.clear();
                self.seen = Some(now);
            }
            Ok(_) => {}
            // The server has not created config.db yet: no project is known.
            Err(e) if e.is_not_ready() => return None,
            Err(e) => {
                eprintln!("daemon: config.db unreadable, recording without projects: {e}");
                return None;
            }
        }
        if let Some(known) = self.projects.get(domain) {
            return *known;
        }
        match self.config.project_for_domain(domain) {
            Ok(found) => {
                self.projects.insert(domain.to_string(), found);
                found
            }
            // Said, and not cached: the next session of this domain asks again.
            Err(e) => {
                eprintln!("daemon: project of {domain} unknown, recording without one: {e}");
                None
            }
        }
    }

    fn acknowledge(&mut self, committed: Option<Committed>, durations: &mut HashMap<i64, i64>) {
        for id in committed.map(|c| c.ended_sessions).unwrap_or_default() {
            self.ended += 1;
            self.seconds += durations.remove(&id).unwrap_or(0);
        }
    }
}

struct Args {
    data_dir: PathBuf,
    seconds: f64,
    rate: f64,
    session_secs: f64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        data_dir: PathBuf::new(),
        seconds: 5.0,
        rate: 500.0,
        session_secs: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e6)
        };
        match flag.as_str() {
            "--data-dir" => a.data_dir = PathBuf::from(&value),
            "--seconds" => a.seconds = number().ok_or("--seconds: a number of seconds")?,
            "--rate" => a.rate = number().ok_or("--rate: events per second")?,
            "--session-secs" => a.session_secs = number().ok_or("--session-secs: seconds")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.data_dir.as_os_str().is_empty() {
        return Err("--data-dir DIR is required".into());
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let writer = match ActivityWriter::open_in(&args.data_dir) {
        Ok(w) => w,
        Err(e) if e.kind() == ErrorKind::Locked => {
            // A supervisor would retry with a bounded backoff; the example just says who holds what (another
            // daemon holds activity.db, or a stopped backup or restore its backup folder).
            return Err(format!("{e} (held by {:?})", e.locked_by()).into());
        }
        Err(e) => return Err(e.into()),
    };
    let policy = GroupCommitPolicy {
        max_events: 200,
        max_delay: Duration::from_millis(100),
    };
    let mut daemon = Daemon {
        group: writer.into_group_commit(policy),
        config: ConfigReader::open_in(&args.data_dir),
        projects: HashMap::new(),
        seen: None,
        ended: 0,
        seconds: 0,
    };
    let mut generator = Generator::new(vec![None]);
    // Session id -> its seconds, until the commit that ends it is acknowledged.
    let mut durations = HashMap::new();
    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.seconds);
    // Retention (a pass a day in a real daemon; every second here): one short step at a time between
    // pushes, while the group's events are pending, so recording never waits for a whole pass.
    let mut next_pass = Instant::now();
    // Damage an earlier run met is still in the file (an open does not read that page): retention would
    // meet it again.
    let pause = |e: &splitstore::activity_store::Error| {
        eprintln!("daemon: retention paused: {}. What to do: {}", e.what(), e.remedy())
    };
    let damage_seen = daemon.group.writer().owner().damage_seen();
    damage_seen.iter().for_each(pause);
    let mut retention_on = damage_seen.is_none();
    let mut pass = Pass::default();
    let mut made = 0u64;
    while started.elapsed() < run_for {
        let mut new = generator.session(Utc::now());
        new.project_id = daemon.project_for(new.domain.as_deref());
        let session_start = new.start;
        let id = daemon.group.start_session(&new)?;
        let session_began = Instant::now();
        while session_began.elapsed().as_secs_f64() < args.session_secs && started.elapsed() < run_for {
            let due = started + Duration::from_secs_f64(made as f64 / args.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let committed = daemon.group.push(generator.event(id, Utc::now()))?;
            daemon.acknowledge(committed, &mut durations);
            made += 1;
            if retention_on && Instant::now() >= next_pass {
                let pending = daemon.group.pending_len();
                let before = Utc::now() - chrono::Duration::days(365);
                let step = match daemon.group.writer_mut().prune_step(before, PRUNE_STEP_ROWS) {
                    Ok(step) => step,
                    // A damaged page in old history: retention stops, recording goes on (exiting would
                    // lose activity, and a supervisor would restart the daemon onto the same page).
                    Err(e) if matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotADatabase) => {
                        pause(&e);
                        retention_on = false;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                pass.sessions += step.sessions_deleted;
                pass.steps += 1;
                if step.done {
                    eprintln!(
                        "daemon: retention pass done in {} step(s), {} old sessions pruned ({pending} operations \
                         pending meanwhile)",
                        pass.steps, pass.sessions
                    );
                    pass = Pass::default();
                    next_pass = Instant::now() + Duration::from_secs(1);
                }
            }
        }
        let end = Utc::now();
        // Rounded to the nearest second as activity.db rounds them (`END_SESSION`), counted on this side.
        durations.insert(id, (((end - session_start).num_milliseconds() + 500) / 1000).max(0));
        let committed = daemon.group.end_session(id, end)?;
        daemon.acknowledge(committed, &mut durations);
    }
    let committed = daemon.group.flush()?;
    daemon.acknowledge(Some(committed), &mut durations);
    println!("daemon: sessions={} seconds={}", daemon.ended, daemon.seconds);
    Ok(())
}
