//! A server as an application would write one: it owns config.db (projects and their domains), reads
//! activity.db, polls for changes, and reports "this week" in local time. Run it beside
//! `cargo run --example daemon` on the same data directory; their totals agree.
//!
//! `cargo run --example server -- --data-dir DIR [--seconds 7] [--stop-on-stdin-eof]`
//!
//! It runs `--seconds`, or (with `--stop-on-stdin-eof`) until its standard input closes, as a supervised
//! child process stops when its parent lets go of it.
//!
//! It prints `server: sessions=N seconds=S` at the end: all recorded sessions and their seconds, read from
//! activity.db and joined with config.db's projects.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{Datelike, Local, NaiveTime, TimeZone, Utc};
use splitstore::config_store::NewProject;
use splitstore::{ChangeToken, ProjectStatus, Server, TimeRange};

/// Monday 00:00 of this week in the local time zone, to now. Where the clocks jump forward at that midnight
/// (Asia/Tehran did on a Monday in 2016 and 2021), Monday 00:00 does not exist: the week starts at the first
/// local time of Monday that does, the gap's end (gaps end on a quarter hour in every zone), not at the
/// start of history (`None`).
fn this_week() -> TimeRange {
    let today = Local::now().date_naive();
    let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let start = (0..24 * 4)
        .map(|quarter| monday.and_time(NaiveTime::MIN) + chrono::Duration::minutes(15 * quarter))
        .find_map(|local| Local.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc));
    TimeRange { from: start, to: None }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data_dir = None;
    let mut seconds = 7.0;
    let stop = Arc::new(AtomicBool::new(false));
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--stop-on-stdin-eof" {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
                stop.store(true, Ordering::Relaxed);
            });
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--seconds" => {
                seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
                    .ok_or("--seconds: a number of seconds")?
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let data_dir = data_dir.ok_or("--data-dir DIR is required")?;

    let mut server = Server::open(&data_dir)?;
    // Damage an earlier run met in config.db is still there (an open does not read that page): show it now
    // rather than run until the page is met again.
    if let Some(damage) = server.config().owner().damage_seen() {
        return Err(damage.into());
    }
    if server.config().reader().project_summaries()?.is_empty() {
        for (name, domain) in [
            ("Docs", "docs.rs"),
            ("Code review", "github.com"),
            ("Design", "figma.com"),
        ] {
            server.config_mut().create_project(&NewProject {
                domains: vec![domain.into()],
                ..NewProject::named(name)
            })?;
        }
    }

    let activity = server.reports().activity().clone();
    let mut seen: Option<ChangeToken> = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) && !stop.load(Ordering::Relaxed) {
        // One PRAGMA tells whether the daemon committed anything; only then is the report read again.
        let changed = match &seen {
            None => activity.change_token().map(Some),
            Some(token) => activity.changed_since(token),
        };
        match changed {
            Ok(Some(token)) => {
                seen = Some(token);
                let week = server.reports().time_per_project(&this_week())?;
                let named: Vec<String> = week
                    .iter()
                    .map(|row| {
                        let name = match (row.status, &row.name) {
                            (ProjectStatus::Unassigned, _) => "(no project)",
                            (ProjectStatus::LeftOutByRestore, _) => "(left out by a restore)",
                            (ProjectStatus::LostToDamage, _) => "(lost with damage)",
                            (ProjectStatus::NamedByOldId, _) => "(by an old id: run `splitstore repair`)",
                            (ProjectStatus::NamedByNewId, _) => "(by a new id: run `splitstore repair`)",
                            (_, Some(name)) => name,
                            (_, None) => "(deleted)",
                        };
                        format!("{name} {} s", row.seconds)
                    })
                    .collect();
                eprintln!("server: this week: {}", named.join(", "));
            }
            Ok(None) => {}
            // The daemon has not created activity.db yet.
            Err(e) if e.is_not_ready() => {}
            Err(e) => return Err(e.into()),
        }
        // Idle between configuration changes: what a write would confirm first, confirmed now (a -wal
        // removed from beside config.db is taken back at once).
        server.config_mut().confirm_files()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let all = server.reports().time_per_project(&TimeRange::all())?;
    let sessions: i64 = all.iter().map(|r| r.sessions).sum();
    let seconds: i64 = all.iter().map(|r| r.seconds).sum();
    println!("server: sessions={sessions} seconds={seconds}");
    Ok(())
}
