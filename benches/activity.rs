//! activity-store against raw rusqlite doing the same work on the same schema with the same pragmas, in
//! one run, so the ratios can be read off directly.
//!
//! Criterion groups (mean time and throughput of each side):
//! - `insert_one_per_commit`: one event per commit (autocommit INSERT);
//! - `insert_batch_1000`: 1000 events per `BEGIN IMMEDIATE` transaction;
//! - `group_commit_1000`: 1000 single pushes into a group-commit buffer (raw: a Vec and a transaction);
//! - `session_of_100_one_per_commit`, `sessions_of_100_group_commit_1000`: a daemon's whole work per event,
//!   sessions started and ended around their 100 events, by the writer keeping the running totals and by
//!   the same writer with the triggers that keep them switched off (the writer before the totals);
//! - `read_under_full_speed_writer/*`: reader latency while another thread writes as fast as it can;
//! - `writer_with_polling_reader`: writer throughput with one reader idle or polling for changes;
//! - `recovery_of_open_sessions`: the writer's open closing 2000 sessions a crash left open over 520 days
//!   of history, against raw rusqlite closing them one `UPDATE` at a time with the schema's trigger (the
//!   writer before it set the trigger aside); each side on a fresh copy of one file, the copy untimed.
//!
//! Criterion measures one side after the other, so on a machine shared with other work (2 cores here)
//! the load can differ between the two. Each group is therefore followed by an *interleaved* run printed
//! as `ratio ...` lines: the two sides alternate in short chunks, in random order each round, for a few
//! seconds, so both see the same machine; reader latencies there are timed call by call for p50/p99, and
//! the writer's own CPU time per event is printed beside its wall-clock rate. The goals are read off the
//! `ratio` lines.
//!
//! The insert benches write both sides into the *same* file: raw rusqlite is a second connection to the
//! writer's activity.db (so schema, pragmas written in the file, size and WAL state are identical), and
//! sets the owner's connection pragmas itself (synchronous=NORMAL, foreign_keys, busy_timeout,
//! journal_size_limit; wal_autocheckpoint stays at SQLite's default 1000, as the writer sets it). With
//! two files, whichever file's checkpoint fsync comes first pays for the other's dirty pages too (ext4
//! flushes the whole journal), which skewed one side by up to 40% in trials. The raw inserts use one
//! held prepared statement: the leanest rusqlite code for the job.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use activity_store::{ActivityReader, ActivityWriter, GroupCommitPolicy, NewEvent, NewSession, TimeRange, queries};
use common::{Clock, at, interleave, sample_event, sample_events, thread_cpu};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, OpenFlags, Statement};

const MEASURE: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(2);
/// How long each interleaved comparison runs.
const INTERLEAVED: Duration = Duration::from_secs(6);
/// Sessions in the file the readers query (each with 20 events, one second apart).
const PREFILL_SESSIONS: i64 = 10_000;
/// The read range: the last 2000 of those sessions.
const RANGE_SESSIONS: i64 = 2_000;
const GROUP: GroupCommitPolicy = GroupCommitPolicy {
    max_events: 1000,
    max_delay: Duration::from_secs(3600),
};

fn sample_session(project: i64, start_ms: i64) -> NewSession {
    NewSession {
        app: "firefox".into(),
        title: Some("firefox - task".into()),
        url: Some("https://docs.rs/task".into()),
        domain: Some("docs.rs".into()),
        project_id: (project % 6 != 0).then_some(project % 6),
        start: at(start_ms),
        is_idle: false,
    }
}

/// The raw baseline: a plain rusqlite connection with the owner's posture.
fn raw_connection(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA journal_size_limit = 16777216;",
    )
    .unwrap();
    c
}

fn raw_insert(stmt: &mut Statement<'_>, e: &NewEvent) -> i64 {
    stmt.insert((
        e.session_id,
        e.event_type.as_str(),
        e.app.as_deref(),
        e.title.as_deref(),
        e.url.as_deref(),
        e.at.timestamp_millis(),
        e.idle_seconds,
    ))
    .unwrap()
}

fn raw_batch(c: &Connection, stmt: &mut Statement<'_>, events: &[NewEvent]) -> Vec<i64> {
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    let ids = events.iter().map(|e| raw_insert(stmt, e)).collect();
    c.execute_batch("COMMIT").unwrap();
    ids
}

fn inserts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activity.db");
    let mut store = ActivityWriter::open(&path).unwrap();
    let raw = raw_connection(&path);
    let mut raw_stmt = raw.prepare(queries::INSERT_EVENT).unwrap();
    let (mut store_events, mut raw_events) = (sample_events(1000), sample_events(1000));
    let clock = Clock::starting_at(1_700_000_000_000);

    // One event per commit.
    let mut store_one = || {
        clock.stamp(&mut store_events[..1]);
        store.record_event(&store_events[0]).unwrap();
    };
    let mut raw_one = || {
        clock.stamp(&mut raw_events[..1]);
        raw_insert(&mut raw_stmt, &raw_events[0]);
    };
    let mut g = c.benchmark_group("insert_one_per_commit");
    g.throughput(Throughput::Elements(1))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(50);
    g.bench_function("activity_store", |b| b.iter(&mut store_one));
    g.bench_function("raw_rusqlite", |b| b.iter(&mut raw_one));
    g.finish();
    // 250 commits per chunk: about one autocheckpoint cycle of each file.
    let chunk = |f: &mut dyn FnMut()| {
        (0..250).for_each(|_| f());
        250
    };
    interleave(|| chunk(&mut store_one), || chunk(&mut raw_one), INTERLEAVED).print(
        "insert_one_per_commit",
        "activity_store",
        "raw_rusqlite",
    );

    // 1000 events per transaction.
    let mut store_batch = || {
        clock.stamp(&mut store_events);
        store.record_batch(&store_events).unwrap().event_ids.len() as u64
    };
    let mut raw_batch_1000 = || {
        clock.stamp(&mut raw_events);
        raw_batch(&raw, &mut raw_stmt, &raw_events).len() as u64
    };
    let mut g = c.benchmark_group("insert_batch_1000");
    g.throughput(Throughput::Elements(1000))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(30);
    g.bench_function("activity_store", |b| b.iter(&mut store_batch));
    g.bench_function("raw_rusqlite", |b| b.iter(&mut raw_batch_1000));
    g.finish();
    interleave(&mut store_batch, &mut raw_batch_1000, INTERLEAVED).print(
        "insert_batch_1000",
        "activity_store",
        "raw_rusqlite",
    );

    // 1000 single pushes, committed together.
    let mut raw_buffer: Vec<NewEvent> = Vec::with_capacity(1000);
    // One buffer for the whole run, as a daemon keeps it (its Vec is reused, like the raw side's).
    let mut group = store.into_group_commit(GROUP);
    let mut store_group = || {
        clock.stamp(&mut store_events);
        let mut committed = 0;
        for e in &store_events {
            if let Some(c) = group.push(e.clone()).unwrap() {
                committed += c.event_ids.len() as u64;
            }
        }
        committed
    };
    let mut raw_group = || {
        clock.stamp(&mut raw_events);
        for e in &raw_events {
            raw_buffer.push(e.clone());
        }
        let n = raw_batch(&raw, &mut raw_stmt, &raw_buffer).len() as u64;
        raw_buffer.clear();
        n
    };
    let mut g = c.benchmark_group("group_commit_1000");
    g.throughput(Throughput::Elements(1000))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(30);
    g.bench_function("activity_store", |b| b.iter(&mut store_group));
    g.bench_function("raw_rusqlite", |b| b.iter(&mut raw_group));
    g.finish();
    interleave(&mut store_group, &mut raw_group, INTERLEAVED).print(
        "group_commit_1000",
        "activity_store",
        "raw_rusqlite",
    );
}

/// Events per session in the daemon-like workload (the reference daemon's).
const SESSION_EVENTS: usize = 100;

/// Switches the schema's triggers, which keep the running totals, on or off on the writer's own
/// connection (https://sqlite.org/c3ref/c_dbconfig_defensive.html#sqlitedbconfigenabletrigger), when they
/// are not so already. Off, the writer runs exactly the statements it ran before migration 4: today's
/// writer without the totals. Switching expires the prepared statements, and re-preparing them costs more
/// with the triggers (their programs are compiled into the statements), so the sides switch once per chunk
/// of thousands of events, where that is noise.
fn keep_totals(conn: &Connection, state: &Cell<bool>, on: bool) {
    if state.get() != on {
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, on)
            .unwrap();
        state.set(on);
    }
}

/// The cost of keeping the running totals, per event of a daemon's whole work: a session started, 100
/// events, the session ended, over and over, by the same writer on the same file, with the totals kept (the
/// schema's triggers on) and without (off, the writer before the totals). One event per commit, and group
/// commit of 1000 (the session ends inside the group, as `GroupCommit::end_session` does).
fn sessions_with_totals(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activity.db");
    let store = RefCell::new(ActivityWriter::open(&path).unwrap());
    let events = RefCell::new(sample_events(SESSION_EVENTS as i64));
    let clock = Clock::starting_at(1_700_000_000_000);
    let triggers_on = Cell::new(true);
    // Sessions of 100 events, one per commit; the totals kept or not.
    let sessions = |n: usize, totals: bool| -> u64 {
        let mut w = store.borrow_mut();
        keep_totals(w.owner().conn(), &triggers_on, totals);
        let mut events = events.borrow_mut();
        for _ in 0..n {
            let id = w.start_session(&sample_session(1, clock.now())).unwrap();
            events.iter_mut().for_each(|e| e.session_id = Some(id));
            clock.stamp(&mut events);
            for e in events.iter() {
                w.record_event(e).unwrap();
            }
            w.end_session(id, at(clock.now())).unwrap();
        }
        (n * SESSION_EVENTS) as u64
    };
    let mut g = c.benchmark_group("session_of_100_one_per_commit");
    g.throughput(Throughput::Elements(SESSION_EVENTS as u64))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(20);
    g.bench_function("with_totals", |b| b.iter(|| sessions(1, true)));
    g.bench_function("without_totals", |b| b.iter(|| sessions(1, false)));
    g.finish();
    interleave(|| sessions(30, true), || sessions(30, false), INTERLEAVED * 2).print(
        "session_of_100_one_per_commit (with totals vs without)",
        "with_totals",
        "without",
    );

    let group = RefCell::new(store.into_inner().into_group_commit(GROUP));
    // `n` groups of 10 sessions of 100 events (1000 events each).
    let groups = |n: usize, totals: bool| -> u64 {
        let mut g = group.borrow_mut();
        keep_totals(g.writer().owner().conn(), &triggers_on, totals);
        let mut events = events.borrow_mut();
        let mut committed = 0;
        for _ in 0..10 * n {
            let id = g.start_session(&sample_session(1, clock.now())).unwrap();
            events.iter_mut().for_each(|e| e.session_id = Some(id));
            clock.stamp(&mut events);
            for e in events.iter() {
                if let Some(c) = g.push(e.clone()).unwrap() {
                    committed += c.event_ids.len() as u64;
                }
            }
            if let Some(c) = g.end_session(id, at(clock.now())).unwrap() {
                committed += c.event_ids.len() as u64;
            }
        }
        committed
    };
    let mut g = c.benchmark_group("sessions_of_100_group_commit_1000");
    g.throughput(Throughput::Elements(1000))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(20);
    g.bench_function("with_totals", |b| b.iter(|| groups(1, true)));
    g.bench_function("without_totals", |b| b.iter(|| groups(1, false)));
    g.finish();
    interleave(|| groups(10, true), || groups(10, false), INTERLEAVED * 2).print(
        "sessions_of_100_group_commit_1000 (with totals vs without)",
        "with_totals",
        "without",
    );
}

/// A file with `PREFILL_SESSIONS` ended sessions of 20 events each, one session per minute.
fn prefilled(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name).join("activity.db");
    let mut w = ActivityWriter::open(&path).unwrap();
    for s in 0..PREFILL_SESSIONS {
        let start = 1_600_000_000_000 + s * 60_000;
        let id = w.start_session(&sample_session(s, start)).unwrap();
        let batch: Vec<NewEvent> = (0..20)
            .map(|i| NewEvent {
                at: at(start + i * 1000),
                ..sample_event(id, i)
            })
            .collect();
        w.record_batch(&batch).unwrap();
        w.end_session(id, at(start + 20_000 + (s % 40) * 1000)).unwrap();
    }
    path
}

/// The last `RANGE_SESSIONS` sessions of a `prefilled` file.
fn read_range() -> TimeRange {
    let first = 1_600_000_000_000 + (PREFILL_SESSIONS - RANGE_SESSIONS) * 60_000;
    TimeRange::between(at(first), at(first + RANGE_SESSIONS * 60_000))
}

/// Writes as fast as it can (a session, a batch of 100 events, the session's end) until stopped;
/// returns the events written.
fn full_speed_writer(path: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut w = ActivityWriter::open(&path).unwrap();
        let mut written = 0u64;
        let clock = Clock::starting_at(1_800_000_000_000);
        let mut batch: Vec<NewEvent> = (0..100).map(|i| sample_event(0, i)).collect();
        while !stop.load(Ordering::Relaxed) {
            let id = w.start_session(&sample_session(1, clock.now())).unwrap();
            batch.iter_mut().for_each(|e| e.session_id = Some(id));
            clock.stamp(&mut batch);
            written += w.record_batch(&batch).unwrap().event_ids.len() as u64;
            w.end_session(id, at(clock.now())).unwrap();
        }
        written
    })
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

type Query<'a> = Box<dyn FnMut() -> usize + 'a>;

fn reads_under_writer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = prefilled(dir.path(), "read");
    let range = read_range();
    let (from, to) = (
        range.from.unwrap().timestamp_millis(),
        range.to.unwrap().timestamp_millis(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writer = full_speed_writer(path.clone(), stop.clone());
    let reader = ActivityReader::open(&path);
    let raw = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    raw.busy_timeout(Duration::from_secs(5)).unwrap();

    let cases: Vec<(&str, Query, Query)> = vec![
        (
            "totals_by_project",
            Box::new(|| reader.totals_by_project(&range).unwrap().len()),
            Box::new(|| {
                let mut stmt = raw.prepare_cached(queries::TOTALS_BY_PROJECT).unwrap();
                let rows = stmt
                    .query_map((from, to), |r| {
                        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                    .unwrap();
                rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().len()
            }),
        ),
        (
            "sessions_in_range_100",
            Box::new(|| reader.sessions_in_range(&range, 100).unwrap().len()),
            Box::new(|| {
                let mut stmt = raw.prepare_cached(queries::SESSIONS_IN_RANGE).unwrap();
                let rows = stmt
                    .query_map((from, to, 100), |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                            r.get::<_, Option<i64>>(8)?,
                            r.get::<_, bool>(9)?,
                        ))
                    })
                    .unwrap();
                rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().len()
            }),
        ),
    ];
    for (name, mut store, mut raw_query) in cases {
        let mut g = c.benchmark_group(format!("read_under_full_speed_writer/{name}"));
        g.measurement_time(MEASURE).warm_up_time(WARM_UP).sample_size(30);
        g.bench_function("activity_store", |b| b.iter(&mut store));
        g.bench_function("raw_rusqlite", |b| b.iter(&mut raw_query));
        g.finish();

        // Call by call, alternating, for the percentiles.
        let (mut s, mut r) = (Vec::new(), Vec::new());
        let start = Instant::now();
        while start.elapsed() < INTERLEAVED {
            let t = Instant::now();
            std::hint::black_box(store());
            s.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(raw_query());
            r.push(t.elapsed());
        }
        let (s50, s99) = (percentile(&mut s, 0.5), percentile(&mut s, 0.99));
        let (r50, r99) = (percentile(&mut r, 0.5), percentile(&mut r, 0.99));
        println!(
            "ratio read {name} under a full-speed writer (interleaved, {} calls each): activity_store p50 {s50:?} \
             p99 {s99:?}, raw_rusqlite p50 {r50:?} p99 {r99:?}, p99 activity_store/raw = {:.2}",
            s.len(),
            s99.as_secs_f64() / r99.as_secs_f64()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    println!("(the writer thread wrote {written} events during the read benches)");
}

/// One reader polling like a server while `active`: a change check every `interval_ms` and, on a change
/// (the writer commits all the time, so nearly every poll), the totals of `read_range` and the latest
/// activity. While not active it only sleeps. Counts its polls and the CPU time they took.
#[derive(Default)]
struct Poller {
    active: AtomicBool,
    stop: AtomicBool,
    interval_ms: AtomicU64,
    polls: AtomicU64,
    cpu_ns: AtomicU64,
}

impl Poller {
    fn spawn(path: PathBuf) -> (Arc<Poller>, JoinHandle<()>) {
        let p = Arc::new(Poller::default());
        let state = p.clone();
        let handle = std::thread::spawn(move || {
            let reader = ActivityReader::open(&path);
            let mut token = reader.change_token().unwrap();
            let range = read_range();
            while !state.stop.load(Ordering::Relaxed) {
                if state.active.load(Ordering::Relaxed) {
                    let cpu = thread_cpu();
                    if let Some(next) = reader.changed_since(&token).unwrap() {
                        token = next;
                        std::hint::black_box(reader.totals_by_project(&range).unwrap());
                        std::hint::black_box(reader.latest().unwrap());
                    }
                    state.polls.fetch_add(1, Ordering::Relaxed);
                    let spent = (thread_cpu() - cpu).as_nanos() as u64;
                    state.cpu_ns.fetch_add(spent, Ordering::Relaxed);
                }
                let ms = state.interval_ms.load(Ordering::Relaxed).max(1);
                std::thread::sleep(Duration::from_millis(ms));
            }
        });
        (p, handle)
    }
}

/// The writer with one reader idle, then polling every millisecond (criterion); then alternating 250 ms
/// periods of each, for a reader polling every 1 ms and every 100 ms, with the writer's wall-clock rate,
/// its own CPU time per event, and the CPU share the reader took.
fn writer_with_polling_reader(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut events = sample_events(100);
    let mut g = c.benchmark_group("writer_with_polling_reader");
    g.measurement_time(MEASURE).warm_up_time(WARM_UP).sample_size(30);
    let mut report = Vec::new();
    for (name, per_commit) in [("batch_100", 100usize), ("one_per_commit", 1)] {
        let path = prefilled(dir.path(), name);
        let mut w = ActivityWriter::open(&path).unwrap();
        let clock = Clock::starting_at(1_700_000_000_000);
        let mut write = || {
            let batch = &mut events[..per_commit];
            clock.stamp(batch);
            if per_commit == 1 {
                w.record_event(&batch[0]).unwrap();
            } else {
                w.record_batch(batch).unwrap();
            }
        };
        let (poller, handle) = Poller::spawn(path.clone());
        poller.interval_ms.store(1, Ordering::Relaxed);
        g.throughput(Throughput::Elements(per_commit as u64));
        g.bench_function(format!("{name}/reader_idle"), |b| b.iter(&mut write));
        poller.active.store(true, Ordering::Relaxed);
        g.bench_function(format!("{name}/one_polling_reader"), |b| b.iter(&mut write));

        for interval_ms in [1u64, 100] {
            poller.interval_ms.store(interval_ms, Ordering::Relaxed);
            poller.polls.store(0, Ordering::Relaxed);
            poller.cpu_ns.store(0, Ordering::Relaxed);
            // [idle, polling]: (events, wall, writer CPU)
            let mut modes = [(0u64, Duration::ZERO, Duration::ZERO); 2];
            let start = Instant::now();
            let mut round = 0usize;
            while start.elapsed() < INTERLEAVED {
                let mode = round % 2;
                poller.active.store(mode == 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2)); // let the reader notice
                let (t, cpu) = (Instant::now(), thread_cpu());
                while t.elapsed() < Duration::from_millis(250) {
                    write();
                    modes[mode].0 += per_commit as u64;
                }
                modes[mode].1 += t.elapsed();
                modes[mode].2 += thread_cpu() - cpu;
                round += 1;
            }
            let rate = |m: (u64, Duration, Duration)| m.0 as f64 / m.1.as_secs_f64();
            let cpu = |m: (u64, Duration, Duration)| m.2.as_secs_f64() * 1e6 / m.0 as f64;
            report.push(format!(
                "ratio writer {name} with one reader polling every {interval_ms} ms (interleaved 250 ms periods; \
                 {} polls, reader CPU {:.0}% of a core): {:.0} events/s with the reader vs {:.0} alone = {:.3}; \
                 writer CPU {:.3} vs {:.3} µs/event = {:.3}",
                poller.polls.load(Ordering::Relaxed),
                poller.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9 / modes[1].1.as_secs_f64() * 100.0,
                rate(modes[1]),
                rate(modes[0]),
                rate(modes[1]) / rate(modes[0]),
                cpu(modes[1]),
                cpu(modes[0]),
                cpu(modes[1]) / cpu(modes[0]),
            ));
        }
        poller.stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
    }
    g.finish();
    for line in report {
        println!("{line}");
    }
}

/// Sessions in the history of `recovery_of_open_sessions`: one ended every 15 minutes over 520 days, across
/// 5 projects and none (`sample_session`).
const HISTORY_SESSIONS: i64 = 50_000;
/// Sessions left open among them, spread over the whole history.
const LEFT_OPEN: i64 = 2_000;

/// A file as a crash leaves it: `HISTORY_SESSIONS` ended sessions with their totals, and `LEFT_OPEN`
/// sessions never ended, each with one event.
fn crashed_file(dir: &Path) -> PathBuf {
    let path = dir.join("template").join("activity.db");
    drop(ActivityWriter::open(&path).unwrap());
    let mut c = raw_connection(&path);
    let tx = c.transaction().unwrap();
    {
        let mut session = tx.prepare(queries::INSERT_SESSION).unwrap();
        let mut end = tx.prepare(queries::END_SESSION).unwrap();
        let mut event = tx.prepare(queries::INSERT_EVENT).unwrap();
        let first = 1_650_000_000_000;
        for i in 0..HISTORY_SESSIONS {
            let start = first + i * 900_000;
            let s = sample_session(i % 11, start);
            let id = session
                .insert(("firefox", &s.title, &s.url, &s.domain, s.project_id, start, false))
                .unwrap();
            end.execute((id, start + 600_000, "ended")).unwrap();
        }
        for i in 0..LEFT_OPEN {
            let start = first + i * (HISTORY_SESSIONS / LEFT_OPEN) * 900_000 + 60_000;
            let s = sample_session(i % 11, start);
            let id = session
                .insert(("firefox", &s.title, &s.url, &s.domain, s.project_id, start, false))
                .unwrap();
            let e = sample_event(id, i);
            event
                .execute((
                    id,
                    &e.event_type,
                    &e.app,
                    &e.title,
                    &e.url,
                    start + 120_000,
                    e.idle_seconds,
                ))
                .unwrap();
        }
    }
    tx.commit().unwrap();
    path
}

/// The raw baseline: the open sessions closed at their last event, one `END_SESSION` each, the schema's
/// trigger adding each to its bucket and every later bucket of its project, in one transaction.
fn raw_recovery(path: &Path) -> u64 {
    let mut c = raw_connection(path);
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let open: Vec<(i64, i64, Option<i64>)> = tx
        .prepare(queries::OPEN_SESSIONS)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut end = tx.prepare(queries::END_SESSION).unwrap();
    for (id, start, last) in &open {
        end.execute((id, last.unwrap_or(*start).max(*start), "recovered"))
            .unwrap();
    }
    drop(end);
    tx.commit().unwrap();
    open.len() as u64
}

fn store_recovery(path: &Path) -> u64 {
    ActivityWriter::open(path).unwrap().recovery().sessions.len() as u64
}

/// A fresh copy of `template`, in place of the previous one (the copy is not timed: both sides start from
/// the same bytes).
fn copy_of(template: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("copy");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    let path = copy.join("activity.db");
    std::fs::copy(template, &path).unwrap();
    path
}

fn recovery_of_open_sessions(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let template = crashed_file(dir.path());
    let mut g = c.benchmark_group("recovery_of_open_sessions");
    g.throughput(Throughput::Elements(LEFT_OPEN as u64))
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(WARM_UP)
        .sample_size(10);
    for (name, recover) in [
        ("activity_store", store_recovery as fn(&Path) -> u64),
        ("raw_rusqlite", raw_recovery),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || copy_of(&template, dir.path()),
                |path| assert_eq!(recover(&path), LEFT_OPEN as u64),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    // Interleaved, each side on its own fresh copy per round, only the recovery timed.
    let mut wall = [Duration::ZERO; 2];
    for _ in 0..4 {
        let first = usize::from(rand::random::<bool>());
        for side in [first, 1 - first] {
            let path = copy_of(&template, dir.path());
            let t = Instant::now();
            [store_recovery, raw_recovery][side](&path);
            wall[side] += t.elapsed();
        }
    }
    println!(
        "ratio recovery_of_open_sessions (interleaved, 4 rounds): activity_store {:.1} ms, raw_rusqlite {:.1} ms \
         per recovery of {LEFT_OPEN} sessions, activity_store/raw = {:.4}",
        wall[0].as_secs_f64() * 250.0,
        wall[1].as_secs_f64() * 250.0,
        wall[0].as_secs_f64() / wall[1].as_secs_f64()
    );
}

criterion_group!(
    benches,
    inserts,
    sessions_with_totals,
    reads_under_writer,
    writer_with_polling_reader,
    recovery_of_open_sessions
);
criterion_main!(benches);
