//! The time-per-project report over 10^6 sessions and 10^3 projects: the application join of two files
//! (`splitstore::Reports`: totals aggregated in SQL inside activity.db, names from one query of config.db,
//! joined in Rust) against the single-database SQL JOIN over both files ATTACHed, on a raw rusqlite
//! connection with the statement prepared once. Goal: app join <= 1.2x the JOIN.
//!
//! Both sides answer the same question (one row per distinct project_id, NULL and deleted included, with
//! the project's name), for all sessions and for one week. `cargo bench --bench report`; the ratio is
//! printed as `ratio ...` lines after criterion's groups, from an interleaved run (the sides alternate,
//! so both see the same machine load).

use std::path::Path;
use std::time::{Duration, Instant};

use activity_store::TimeRange;
use chrono::{DateTime, TimeZone, Utc};
use config_store::{ConfigStore, NewProject};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, OpenFlags, params};
use splitstore::Reports;
use store_core::OwnerConnection;

const SESSIONS: i64 = 1_000_000;
const PROJECTS: i64 = 1_000;
const DAY_MS: i64 = 86_400_000;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// config.db with 10^3 projects (every 10th deleted afterwards), activity.db with 10^6 sessions over a
/// year: 90% on a project (some deleted, some never existing), 10% on none.
fn build(dir: &Path) {
    let mut config = ConfigStore::open_in(dir).unwrap();
    for i in 0..PROJECTS {
        let p = config
            .create_project(&NewProject::named(format!("Project {i}")))
            .unwrap();
        if i % 10 == 0 {
            config.delete_project(p.id).unwrap();
        }
    }
    let mut owner = OwnerConnection::open(&activity_store::SCHEMA.path_in(dir), &activity_store::SCHEMA).unwrap();
    let start = base().timestamp_millis();
    owner
        .write(|tx| {
            let mut insert = tx.prepare(
                "INSERT INTO activity_sessions (app, project_id, start_time_ms, end_time_ms, duration_seconds)
                 VALUES ('editor', ?1, ?2, ?3, ?4)",
            )?;
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for i in 0..SESSIONS {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let project = match x % 10 {
                    0 => None,
                    _ => Some((x >> 8) as i64 % (PROJECTS + 20) + 1),
                };
                let t = start + i * (365 * DAY_MS / SESSIONS);
                let secs = (x >> 20) as i64 % 3600;
                insert.execute(params![project, t, t + secs * 1000, secs])?;
            }
            Ok(())
        })
        .unwrap();
}

type Row = (Option<i64>, Option<String>, i64, i64);

struct AttachJoin {
    conn: Connection,
}

impl AttachJoin {
    fn open(dir: &Path) -> AttachJoin {
        let conn = Connection::open_with_flags(dir.join("activity.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.execute("ATTACH DATABASE ?1 AS cfg", [dir.join("config.db").to_str().unwrap()])
            .unwrap();
        AttachJoin { conn }
    }

    /// The JOIN as one would first write it: join every session, then group.
    fn run(&self, range: &TimeRange) -> Vec<Row> {
        self.query(
            range,
            "SELECT s.project_id, p.name, sum(coalesce(s.duration_seconds, 0)), count(*)
             FROM activity_sessions s LEFT JOIN cfg.projects p ON p.id = s.project_id
             WHERE s.start_time_ms >= ?1 AND s.start_time_ms < ?2
             GROUP BY s.project_id",
        )
    }

    /// The JOIN written the way the application join works: group first, then join the groups.
    fn run_grouped_first(&self, range: &TimeRange) -> Vec<Row> {
        self.query(
            range,
            "SELECT t.project_id, p.name, t.seconds, t.sessions
             FROM (SELECT project_id, sum(coalesce(duration_seconds, 0)) AS seconds, count(*) AS sessions
                   FROM activity_sessions WHERE start_time_ms >= ?1 AND start_time_ms < ?2
                   GROUP BY project_id) t
             LEFT JOIN cfg.projects p ON p.id = t.project_id",
        )
    }

    fn query(&self, range: &TimeRange, sql: &str) -> Vec<Row> {
        let from = range.from.map_or(i64::MIN, |t| t.timestamp_millis());
        let to = range.to.map_or(i64::MAX, |t| t.timestamp_millis());
        let mut stmt = self.conn.prepare_cached(sql).unwrap();
        stmt.query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

fn app_join(reports: &Reports, range: &TimeRange) -> Vec<Row> {
    reports
        .time_per_project(range)
        .unwrap()
        .into_iter()
        .map(|r| (r.project_id, r.name, r.seconds, r.sessions))
        .collect()
}

fn ranges() -> [(&'static str, TimeRange); 2] {
    let week = TimeRange::between(
        base() + chrono::Duration::days(100),
        base() + chrono::Duration::days(107),
    );
    [("all", TimeRange::all()), ("one_week", week)]
}

fn report(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    build(dir.path());
    eprintln!(
        "built {SESSIONS} sessions and {PROJECTS} projects in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let reports = Reports::open(dir.path());
    let attach = AttachJoin::open(dir.path());
    for (name, range) in ranges() {
        let mut a = app_join(&reports, &range);
        let mut b = attach.run(&range);
        let mut c2 = attach.run_grouped_first(&range);
        a.sort();
        b.sort();
        c2.sort();
        assert_eq!(a, b, "both sides answer the same question ({name})");
        assert_eq!(a, c2, "both sides answer the same question ({name})");

        let mut g = c.benchmark_group(format!("time_per_project_{name}"));
        g.measurement_time(Duration::from_secs(8)).sample_size(20);
        g.bench_function("app_join", |bench| bench.iter(|| app_join(&reports, &range)));
        g.bench_function("attach_join", |bench| bench.iter(|| attach.run(&range)));
        g.bench_function("attach_join_grouped_first", |bench| {
            bench.iter(|| attach.run_grouped_first(&range))
        });
        g.finish();

        // Interleaved: alternate the sides so both see the same load; report the ratios of medians.
        let mut times: [Vec<Duration>; 3] = Default::default();
        let until = Instant::now() + Duration::from_secs(10);
        let mut round = 0usize;
        while Instant::now() < until || times[0].len() < 5 {
            for k in 0..3 {
                let side = (round + k) % 3;
                let t = Instant::now();
                match side {
                    0 => drop(std::hint::black_box(app_join(&reports, &range))),
                    1 => drop(std::hint::black_box(attach.run(&range))),
                    _ => drop(std::hint::black_box(attach.run_grouped_first(&range))),
                }
                times[side].push(t.elapsed());
            }
            round += 1;
        }
        let [app, sql, grouped] = times.map(|mut v| {
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1e3
        });
        println!(
            "ratio time_per_project_{name}: app join {app:.2} ms / attach join {sql:.2} ms = {:.3} (goal <= 1.2); \
             / attach join grouped first {grouped:.2} ms = {:.3} ({round} rounds)",
            app / sql,
            app / grouped
        );
    }
}

criterion_group!(benches, report);
criterion_main!(benches);
