//! Shared by the benches: daemon-like events, event times that only go forward, and the interleaved
//! comparison every `ratio ...` line is read from.
#![allow(dead_code)] // Not every bench uses every helper.

use std::cell::Cell;
use std::time::{Duration, Instant};

use activity_store::NewEvent;
use chrono::{DateTime, Utc};

pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A daemon-like event of session `session_id`, the `i`th of a run.
pub fn sample_event(session_id: i64, i: i64) -> NewEvent {
    NewEvent {
        session_id: Some(session_id),
        event_type: ["focus", "title_change", "input"][(i % 3) as usize].to_string(),
        app: Some("firefox".into()),
        title: Some(format!("firefox - task {}", i % 1000)),
        url: Some(format!("https://docs.rs/task/{}/{}", i % 1000, i % 16)),
        at: at(1_700_000_000_000 + i),
        idle_seconds: None,
    }
}

pub fn sample_events(n: i64) -> Vec<NewEvent> {
    (0..n).map(|i| sample_event(1, i)).collect()
}

/// Event times that only go forward, as a daemon's do (re-sending the same times would insert into the
/// middle of the time indexes and measure a workload no daemon has). Shared by both sides of a comparison.
pub struct Clock(Cell<i64>);

impl Clock {
    pub fn starting_at(ms: i64) -> Clock {
        Clock(Cell::new(ms))
    }

    pub fn now(&self) -> i64 {
        self.0.get()
    }

    pub fn stamp(&self, events: &mut [NewEvent]) {
        for e in events {
            self.0.set(self.0.get() + 1);
            e.at = at(self.0.get());
        }
    }
}

/// Both sides of an interleaved run: events per second (wall clock) and CPU microseconds per event (the
/// bench thread's own CPU time, whatever else the machine runs).
pub struct Interleaved {
    pub rate: (f64, f64),
    pub cpu_us_per_event: (f64, f64),
}

impl Interleaved {
    /// Prints the `ratio ...` line the README's numbers are read from: each side's rate (sides named `a`
    /// and `b`), their ratio, and each side's CPU per event.
    pub fn print(&self, name: &str, a: &str, b: &str) {
        let ((ra, rb), (ca, cb)) = (self.rate, self.cpu_us_per_event);
        println!(
            "ratio {name} (interleaved): {a} {ra:.0} events/s, {b} {rb:.0} events/s, {a}/{b} = {:.3}; \
             CPU {ca:.3} vs {cb:.3} µs/event, {b}/{a} = {:.3}",
            ra / rb,
            cb / ca
        );
    }
}

/// Runs `a` and `b` (each one chunk of work, returning the events it wrote) in alternation for `rounds`,
/// in random order each round, so both see the same machine load.
pub fn interleave(mut a: impl FnMut() -> u64, mut b: impl FnMut() -> u64, rounds: Duration) -> Interleaved {
    let mut wall = [Duration::ZERO; 2];
    let mut cpu = [Duration::ZERO; 2];
    let mut events = [0u64; 2];
    let start = Instant::now();
    while start.elapsed() < rounds {
        let first = usize::from(rand::random::<bool>());
        for side in [first, 1 - first] {
            let (t, c) = (Instant::now(), thread_cpu());
            events[side] += if side == 0 { a() } else { b() };
            cpu[side] += thread_cpu() - c;
            wall[side] += t.elapsed();
        }
    }
    let rate = |i: usize| events[i] as f64 / wall[i].as_secs_f64();
    let per_event = |i: usize| cpu[i].as_secs_f64() * 1e6 / events[i] as f64;
    Interleaved {
        rate: (rate(0), rate(1)),
        cpu_us_per_event: (per_event(0), per_event(1)),
    }
}

/// CPU time this thread has used.
pub fn thread_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
