//! The time-per-project report over 10^6 sessions and 10^3 projects, for all time, one week and a few
//! arbitrary ranges, three ways on the same two files:
//! - `app_join`: `splitstore::Reports` as it is: per-project totals from activity.db's running totals
//!   (`activity_totals`: two rows per project, plus the sessions of the partial 15-minute buckets at the
//!   range's edges), names from one query of config.db, joined in Rust;
//! - `previous_app_join`: the same join with the totals aggregated over the sessions
//!   (`queries::TOTALS_BY_PROJECT`), as `Reports` did before the running totals;
//! - `attach_join`: the single-database SQL JOIN over both files ATTACHed, on a raw rusqlite connection
//!   with the statement prepared once (and the same JOIN written group-first).
//!
//! Beside them, in the interleaved ratios only: activity.db's statement for the whole buckets of the range
//! alone on a raw connection (`queries::TOTALS_FROM_BUCKETS`), against the one the build before ran
//! (`totals_from_buckets_before`); the two are asserted equal first.
//!
//! Every side answers the same question (one row per distinct project_id, NULL and deleted included, with
//! the project's name): the bench asserts equal rows before timing. Goals: app join <= 10 ms for every
//! range, and <= 0.05x the JOIN over all sessions. `cargo bench --bench report`; the ratios are printed
//! as `ratio ...` lines after criterion's groups, from an interleaved run (the sides alternate, so all
//! see the same machine load).
//!
//! Then the calendar report (`Reports::calendar_beside_activity`: each calendar event beside the time
//! tracked while it ran, and the time on its own project) over the same sessions and ~2 100 calendar
//! events (eight a working day, one a week-long conference), for a day, a week, a month and the whole
//! year, three ways: `app` as it is; `previous_app`, its sum as it was before (every event against every
//! session read, titles and URLs included), over today's read of the sessions (before schema 5 the read
//! visited every session that ended after the range's start: run this bench on an earlier build for that);
//! `attach_join`, the SQL over both files ATTACHed, for the day only (a week takes minutes: for each event
//! it visits every session on one side of it).
//!
//! Then config.db's read of the calendar events of a range alone, over ten years of events (~21 000), for a
//! recent day, a day five years back, a recent week and month, and all: `app` as it is, `raw` the same
//! statement on a raw rusqlite connection, `previous` the statement of schema 2 (before config.db's
//! migration 3), which visits every event that started before the range's end.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use activity_store::{TimeRange, queries};
use chrono::{DateTime, TimeZone, Utc};
use config_store::calendar::queries::{EVENTS_OVERLAPPING, EVENTS_OVERLAPPING_SCHEMA_2};
use config_store::{ConfigReader, ConfigStore, NewCalendarEvent, NewProject, NewSubscription};
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
            // Inserted around the writer: the running totals it keeps are computed once, as a split does.
            activity_store::rebuild_totals(tx)?;
            Ok(())
        })
        .unwrap();
    add_calendar(&mut config, 365);
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

/// activity-store's statement for the whole buckets of a range as the build before this bench's side was
/// added ran it (`queries::TOTALS_FROM_BUCKETS` now): the same walk over the projects (the text now, up to
/// its select), then each bound's two columns read by a scalar subquery each in the select list, and the
/// filter on `sessions` running its two again.
fn totals_from_buckets_before() -> String {
    let now = queries::TOTALS_FROM_BUCKETS;
    let walk = &now[..now.find("\nSELECT ").expect("the statement ends in its select")];
    format!(
        "{walk},
ranged(has_project, project_id, seconds, sessions) AS (
    SELECT p.has_project, p.project_id,
        IFNULL((SELECT t.seconds FROM activity_totals t
                WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?2
                ORDER BY t.bucket_ms DESC LIMIT 1), 0)
        - CASE WHEN ?1 = -9223372036854775808 THEN 0 ELSE IFNULL((SELECT t.seconds FROM activity_totals t
                  WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?1
                  ORDER BY t.bucket_ms DESC LIMIT 1), 0) END,
        IFNULL((SELECT t.sessions FROM activity_totals t
                WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?2
                ORDER BY t.bucket_ms DESC LIMIT 1), 0)
        - CASE WHEN ?1 = -9223372036854775808 THEN 0 ELSE IFNULL((SELECT t.sessions FROM activity_totals t
                  WHERE t.has_project = p.has_project AND t.project_id = p.project_id AND t.bucket_ms < ?1
                  ORDER BY t.bucket_ms DESC LIMIT 1), 0) END
    FROM projects p
)
SELECT CASE WHEN has_project THEN project_id END, seconds, sessions FROM ranged WHERE sessions > 0"
    )
}

/// The whole buckets of `range` (its bounds rounded inward to quarter hours) through `sql` on a raw
/// connection: the statement alone, without the pool, the edges' sessions or the names. Sorted.
fn whole_buckets(conn: &Connection, sql: &str, range: &TimeRange) -> Vec<(Option<i64>, i64, i64)> {
    let (from, to) = range.bounds_ms();
    let width = queries::TOTALS_BUCKET_MS;
    let from = if from == i64::MIN {
        from
    } else {
        (from + width - 1).div_euclid(width) * width
    };
    let to = if to == i64::MAX {
        to
    } else {
        to.div_euclid(width) * width
    };
    let mut rows: Vec<(Option<i64>, i64, i64)> = conn
        .prepare_cached(sql)
        .unwrap()
        .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// `Reports::time_per_project` as it was before the running totals: the sessions aggregated per project
/// in SQL inside activity.db, names from one query of config.db, joined and sorted in Rust.
struct PreviousAppJoin {
    activity: Connection,
    config: ConfigReader,
}

impl PreviousAppJoin {
    fn open(dir: &Path) -> PreviousAppJoin {
        let activity = Connection::open_with_flags(dir.join("activity.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        PreviousAppJoin {
            activity,
            config: ConfigReader::open_in(dir),
        }
    }

    fn run(&self, range: &TimeRange) -> Vec<Row> {
        let (from, to) = range.bounds_ms();
        let tx = self.activity.unchecked_transaction().unwrap();
        let totals: Vec<(Option<i64>, i64, i64)> = tx
            .prepare_cached(queries::TOTALS_BY_PROJECT)
            .unwrap()
            .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tx.commit().unwrap();
        let names: HashMap<i64, String> = self
            .config
            .project_summaries()
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        let mut rows: Vec<Row> = totals
            .into_iter()
            .map(|(id, seconds, sessions)| (id, id.and_then(|id| names.get(&id).cloned()), seconds, sessions))
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        rows
    }
}

/// All time, a UTC week, a local week of a +05:30 zone, a month of a +09:30 zone, and arbitrary
/// millisecond ranges (their edges fall inside 15-minute buckets).
fn ranges() -> Vec<(&'static str, TimeRange)> {
    let day = |d: i64| base() + chrono::Duration::days(d);
    let ms = |d: i64, ms: i64| day(d) + chrono::Duration::milliseconds(ms);
    let ist = chrono::Duration::minutes(330);
    let acst = chrono::Duration::minutes(570);
    vec![
        ("all", TimeRange::all()),
        ("one_week", TimeRange::between(day(100), day(107))),
        ("local_week_+05:30", TimeRange::between(day(200) - ist, day(207) - ist)),
        ("local_month_+09:30", TimeRange::between(day(31) - acst, day(59) - acst)),
        (
            "arbitrary_half_year",
            TimeRange::between(ms(37, 12_345), ms(211, 987_654_321)),
        ),
        (
            "arbitrary_3_hours",
            TimeRange::between(ms(300, 7_777_777), ms(300, 18_555_555)),
        ),
        ("since_arbitrary", TimeRange::since(ms(250, 123_456))),
    ]
}

/// Runs the sides in turn, round after round, each round in a rotating order so that all see the same
/// machine load, for 8 s and at least `min_rounds` rounds; a side runs its count of times a round. Each
/// side's times, and the rounds run.
fn interleaved(sides: &mut [(usize, &mut dyn FnMut())], min_rounds: usize) -> (Vec<Vec<Duration>>, usize) {
    let mut times = vec![Vec::new(); sides.len()];
    let until = Instant::now() + Duration::from_secs(8);
    let mut round = 0;
    while Instant::now() < until || round < min_rounds {
        for k in 0..sides.len() {
            let side = (round + k) % sides.len();
            let (repeat, run) = &mut sides[side];
            for _ in 0..*repeat {
                let t = Instant::now();
                run();
                times[side].push(t.elapsed());
            }
        }
        round += 1;
    }
    (times, round)
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn report(c: &mut Criterion) {
    let dir = built();
    let reports = Reports::open(dir);
    let previous = PreviousAppJoin::open(dir);
    let attach = AttachJoin::open(dir);
    let before = totals_from_buckets_before();
    let mut lines = Vec::new();
    for (name, range) in ranges() {
        let mut a = app_join(&reports, &range);
        let mut p = previous.run(&range);
        let mut b = attach.run(&range);
        let mut c2 = attach.run_grouped_first(&range);
        for rows in [&mut a, &mut p, &mut b, &mut c2] {
            rows.sort();
        }
        assert_eq!(a, p, "the totals answer what the sessions answer ({name})");
        assert_eq!(a, b, "both sides answer the same question ({name})");
        assert_eq!(a, c2, "both sides answer the same question ({name})");
        assert!(!a.is_empty(), "{name} has sessions");
        // A connection each, so that neither statement finds the other's pages in its cache.
        let open = || Connection::open_with_flags(dir.join("activity.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let (raw, raw_before) = (open(), open());
        assert_eq!(
            whole_buckets(&raw, queries::TOTALS_FROM_BUCKETS, &range),
            whole_buckets(&raw_before, &before, &range),
            "the statement answers what the build before's answered ({name})"
        );

        let mut g = c.benchmark_group(format!("time_per_project_{name}"));
        g.measurement_time(Duration::from_secs(5)).sample_size(20);
        g.bench_function("app_join", |bench| bench.iter(|| app_join(&reports, &range)));
        g.bench_function("previous_app_join", |bench| bench.iter(|| previous.run(&range)));
        g.bench_function("attach_join", |bench| bench.iter(|| attach.run(&range)));
        g.finish();

        // Interleaved: the sides alternate (in a rotating order) so all see the same load; medians. The
        // app join, and activity.db's totals alone (what the app join reads from activity.db), run five
        // times a round for more samples.
        let (times, round) = interleaved(
            &mut [
                (5, &mut || drop(std::hint::black_box(app_join(&reports, &range)))),
                (5, &mut || {
                    drop(std::hint::black_box(
                        reports.activity().totals_by_project(&range).unwrap(),
                    ))
                }),
                (1, &mut || drop(std::hint::black_box(previous.run(&range)))),
                (1, &mut || drop(std::hint::black_box(attach.run(&range)))),
                (1, &mut || drop(std::hint::black_box(attach.run_grouped_first(&range)))),
                (5, &mut || {
                    drop(std::hint::black_box(whole_buckets(
                        &raw,
                        queries::TOTALS_FROM_BUCKETS,
                        &range,
                    )))
                }),
                (5, &mut || {
                    drop(std::hint::black_box(whole_buckets(&raw_before, &before, &range)))
                }),
            ],
            5,
        );
        let p99 = {
            let mut v = times[0].clone();
            v.sort();
            v[(v.len() - 1) * 99 / 100].as_secs_f64() * 1e3
        };
        let medians: Vec<f64> = times.into_iter().map(median_ms).collect();
        let [app, totals, prev, sql, grouped, whole, whole_before] = medians[..] else {
            unreachable!("seven sides")
        };
        lines.push(format!(
            "ratio time_per_project_{name} ({} rows, {round} rounds): app join {app:.2} ms (p99 {p99:.2} ms; goal \
             <= 10 ms; activity.db's totals alone {totals:.2} ms) / attach join {sql:.2} ms = {:.4} (goal <= 0.05); \
             / attach join grouped first {grouped:.2} ms = {:.4}; / previous app join over sessions {prev:.2} ms = \
             {:.4}; the whole buckets' statement alone on raw rusqlite {whole:.2} ms / the build before's \
             {whole_before:.2} ms = {:.3}",
            a.len(),
            app / sql,
            app / grouped,
            app / prev,
            whole / whole_before
        ));
    }
    for line in lines {
        println!("{line}");
    }
}

/// A subscription's `days` of events: eight a working day (09:00 to 16:00, 30 to 90 minutes, the last of
/// each day an instant reminder with no end), three in four on a project, and a week-long conference a year.
fn add_calendar(config: &mut ConfigStore, days: i64) {
    let sub = config
        .add_subscription(&NewSubscription::new("Work", "https://calendar.example.com/work.ics"))
        .unwrap();
    let minutes = chrono::Duration::minutes;
    let mut events = Vec::new();
    for d in (0..days).filter(|d| d % 7 < 5) {
        for k in 0..8i64 {
            let start = base() + chrono::Duration::days(d) + minutes(9 * 60 + k * 55 + (d * 7 + k * 13) % 30);
            events.push(NewCalendarEvent {
                title: Some(format!("Meeting {d}-{k}")),
                end_time: (k < 7).then(|| start + minutes(30 + (d + k * 11) % 61)),
                project_id: ((d + k) % 4 != 0).then_some((d * 8 + k) % (PROJECTS + 20) + 1),
                ..NewCalendarEvent::new(format!("uid-{d}-{k}"), start)
            });
        }
    }
    for year in (0..days).step_by(365).map(|d| d / 365) {
        let conference = base() + chrono::Duration::days(year * 365 + 150);
        events.push(NewCalendarEvent {
            title: Some("Conference".into()),
            end_time: Some(conference + chrono::Duration::days(7)),
            project_id: Some(42),
            ..NewCalendarEvent::new(format!("conference-{year}"), conference)
        });
    }
    config.replace_calendar_events(sub.id, &events, Utc::now()).unwrap();
}

type CalendarRow = (i64, Option<String>, i64, i64);

fn calendar_app(reports: &Reports, range: &TimeRange) -> Vec<CalendarRow> {
    reports
        .calendar_beside_activity(range)
        .unwrap()
        .into_iter()
        .map(|c| (c.event.id, c.project_name, c.tracked_ms, c.project_ms))
        .collect()
}

/// `Reports::calendar_beside_activity` as it was before: the sessions overlapping the events read whole,
/// and every event's overlap summed over every one of them. Names from one query of config.db, as now.
fn calendar_previous(reports: &Reports, range: &TimeRange) -> Vec<CalendarRow> {
    let events = reports.config().calendar_events_between(range).unwrap();
    let window = events.iter().filter_map(|e| {
        e.end_time
            .filter(|end| *end > e.start_time)
            .map(|end| (e.start_time, end))
    });
    let sessions = match window.reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) {
        Some((first, last)) => reports
            .activity()
            .sessions_overlapping(&TimeRange::between(first, last))
            .unwrap(),
        None => Vec::new(),
    };
    let names: HashMap<i64, String> = reports
        .config()
        .project_summaries()
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    events
        .into_iter()
        .map(|e| {
            let (mut tracked, mut own) = (0, 0);
            if let Some(end) = e.end_time {
                for s in &sessions {
                    let Some(s_end) = s.end else { continue };
                    let overlap = (end.min(s_end) - e.start_time.max(s.start)).num_milliseconds().max(0);
                    tracked += overlap;
                    if e.project_id.is_some() && s.project_id == e.project_id {
                        own += overlap;
                    }
                }
            }
            (e.id, e.project_id.and_then(|id| names.get(&id).cloned()), tracked, own)
        })
        .collect()
}

impl AttachJoin {
    /// The calendar report as one SQL statement (the oracle of `tests/joins.rs`): each event joined with every
    /// session sharing time with it.
    fn calendar(&self, range: &TimeRange) -> Vec<CalendarRow> {
        let (from, to) = range.bounds_ms();
        let mut stmt = self
            .conn
            .prepare_cached(include_str!("../tests/support/calendar_join.sql"))
            .unwrap();
        stmt.query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(5)?, r.get(6)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

fn calendar(c: &mut Criterion) {
    let dir = built();
    let reports = Reports::open(dir);
    let attach = AttachJoin::open(dir);
    let day = |d: i64| base() + chrono::Duration::days(d);
    let ranges = [
        ("one_day", TimeRange::between(day(120), day(121)), true),
        ("one_week", TimeRange::between(day(147), day(154)), false),
        ("one_month", TimeRange::between(day(31), day(59)), false),
        ("all", TimeRange::all(), false),
    ];
    let mut lines = Vec::new();
    for (name, range, with_sql) in ranges {
        let a = calendar_app(&reports, &range);
        assert_eq!(
            a,
            calendar_previous(&reports, &range),
            "the same answer as before ({name})"
        );
        if with_sql {
            assert_eq!(a, attach.calendar(&range), "the same answer as the SQL ({name})");
        }
        assert!(a.iter().any(|r| r.3 > 0), "{name} has time on the events' projects");

        let mut g = c.benchmark_group(format!("calendar_beside_activity_{name}"));
        g.measurement_time(Duration::from_secs(5)).sample_size(10);
        g.bench_function("app", |bench| bench.iter(|| calendar_app(&reports, &range)));
        g.bench_function("previous_app", |bench| {
            bench.iter(|| calendar_previous(&reports, &range))
        });
        if with_sql {
            g.bench_function("attach_join", |bench| bench.iter(|| attach.calendar(&range)));
        }
        g.finish();

        // Interleaved, as above: the sides alternate, medians.
        let mut sides: [(usize, &mut dyn FnMut()); 3] = [
            (1, &mut || drop(std::hint::black_box(calendar_app(&reports, &range)))),
            (1, &mut || {
                drop(std::hint::black_box(calendar_previous(&reports, &range)))
            }),
            (1, &mut || drop(std::hint::black_box(attach.calendar(&range)))),
        ];
        let (times, round) = interleaved(&mut sides[..if with_sql { 3 } else { 2 }], 3);
        let medians: Vec<f64> = times.into_iter().map(median_ms).collect();
        let (app, prev) = (medians[0], medians[1]);
        let sql = match medians.get(2) {
            Some(sql) => format!("; / attach join {sql:.2} ms = {:.4}", app / sql),
            None => String::new(),
        };
        lines.push(format!(
            "ratio calendar_beside_activity_{name} ({} events, {round} rounds): app {app:.2} ms / previous app \
             {prev:.2} ms = {:.4}{sql}",
            a.len(),
            app / prev
        ));
    }
    for line in lines {
        println!("{line}");
    }
}

/// config.db's read of the calendar events overlapping a range (`ConfigReader::calendar_events_between`,
/// what the calendar report reads first) over ten years of a calendar, three ways on the same file: `app`
/// as it is; `raw`, the same statement (`calendar::queries::EVENTS_OVERLAPPING`) on a raw rusqlite
/// connection, its rows sorted as the app sorts them; `previous`, the statement a file of schema 2 is read
/// by (`EVENTS_OVERLAPPING_SCHEMA_2`: every event that started before the range's end), on a raw connection.
fn calendar_events(c: &mut Criterion) {
    const DAYS: i64 = 3650;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigStore::open_in(dir.path()).unwrap();
    add_calendar(&mut config, DAYS);
    drop(config);
    let reader = ConfigReader::open_in(dir.path());
    let conn = Connection::open_with_flags(dir.path().join("config.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    // Every column read into owned values, as the app reads an event, then sorted as the app sorts them.
    type RawEvent = (i64, i64, i64, String, Option<String>, Option<i64>, Option<i64>);
    let raw = |sql: &str, range: &TimeRange| -> Vec<i64> {
        let (from, to) = range.bounds_ms();
        let mut stmt = conn.prepare_cached(sql).unwrap();
        let mut rows: Vec<RawEvent> = stmt
            .query_map(params![from, to], |r| {
                Ok((
                    r.get(4)?,
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort_by_key(|e| (e.0, e.1));
        rows.into_iter().map(|e| e.1).collect()
    };
    let app = |range: &TimeRange| -> Vec<i64> {
        let events = reader.calendar_events_between(range).unwrap();
        events.into_iter().map(|e| e.id).collect()
    };
    let day = |d: i64| base() + chrono::Duration::days(d);
    let last = DAYS - 3; // a Thursday
    let ranges = [
        ("recent_day", TimeRange::between(day(last), day(last + 1))),
        (
            "day_five_years_back",
            TimeRange::between(day(last - 5 * 364), day(last - 5 * 364 + 1)),
        ),
        ("recent_week", TimeRange::between(day(last - 6), day(last + 1))),
        ("recent_month", TimeRange::between(day(last - 27), day(last + 1))),
        ("all", TimeRange::all()),
    ];
    let total = app(&TimeRange::all()).len();
    let mut lines = Vec::new();
    for (name, range) in ranges {
        let found = app(&range);
        assert!(!found.is_empty(), "{name} has events");
        assert_eq!(found, raw(EVENTS_OVERLAPPING, &range), "{name}");
        assert_eq!(found, raw(EVENTS_OVERLAPPING_SCHEMA_2, &range), "{name}");

        let mut g = c.benchmark_group(format!("calendar_events_{name}"));
        g.measurement_time(Duration::from_secs(3)).sample_size(20);
        g.bench_function("app", |bench| bench.iter(|| app(&range)));
        g.bench_function("raw", |bench| bench.iter(|| raw(EVENTS_OVERLAPPING, &range)));
        g.bench_function("previous", |bench| {
            bench.iter(|| raw(EVENTS_OVERLAPPING_SCHEMA_2, &range))
        });
        g.finish();

        let repeat = if name == "all" { 1 } else { 20 };
        let mut sides: [(usize, &mut dyn FnMut()); 3] = [
            (repeat, &mut || drop(std::hint::black_box(app(&range)))),
            (repeat, &mut || {
                drop(std::hint::black_box(raw(EVENTS_OVERLAPPING, &range)))
            }),
            (repeat, &mut || {
                drop(std::hint::black_box(raw(EVENTS_OVERLAPPING_SCHEMA_2, &range)))
            }),
        ];
        let (times, round) = interleaved(&mut sides, 3);
        let m: Vec<f64> = times.into_iter().map(median_ms).collect();
        lines.push(format!(
            "ratio calendar_events_{name} ({} of {} events, {round} rounds): app {:.3} ms / raw {:.3} ms = {:.3}; \
             / previous {:.3} ms = {:.4}",
            found.len(),
            total,
            m[0],
            m[1],
            m[0] / m[1],
            m[2],
            m[0] / m[2]
        ));
    }
    for line in lines {
        println!("{line}");
    }
}

/// The two files every group reads, built once per run.
fn built() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        build(dir.path());
        eprintln!(
            "built {SESSIONS} sessions, {PROJECTS} projects and a year of calendar events in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        dir
    })
    .path()
}

criterion_group!(benches, report, calendar, calendar_events);

criterion_main!(benches);
