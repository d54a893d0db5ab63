//! The application-level joins equal the same questions asked as one SQL JOIN over both files ATTACHed
//! (the oracle), on generated data with every awkward case: sessions with no project, with a deleted
//! project, with an id that never existed, open sessions, archived projects, calendar events with no end or
//! an end before their start.

mod support;

use std::path::Path;

use activity_store::{ActivityWriter, NewSession, TimeRange, WriterOptions};
use chrono::{DateTime, Duration, TimeZone, Utc};
use config_store::{ConfigStore, NewCalendarEvent, NewProject, NewSubscription};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OpenFlags, params};
use splitstore::{ProjectStatus, Reports};
use support::run_splitstore;

const NEVER_EXISTED: i64 = 99_999;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

struct Generated {
    active: i64,
    archived: i64,
    deleted: i64,
}

fn generate(dir: &Path, seed: u64) -> Generated {
    generate_at(dir, seed, activity_store::SCHEMA.end_version())
}

/// [`generate`], activity.db at schema `activity_version` (as a daemon of that build keeps it).
fn generate_at(dir: &Path, seed: u64, activity_version: u32) -> Generated {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut config = ConfigStore::open_in(dir).unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let p = config
            .create_project(&NewProject {
                name: format!("Project {i} — 'quoted' ✓"),
                archived: i % 7 == 3,
                domains: vec![format!("p{i}.example.com")],
                keywords: vec![format!("kw{i}")],
                ..NewProject::default()
            })
            .unwrap();
        ids.push((p.id, p.archived));
    }
    let deleted: Vec<i64> = ids.iter().step_by(5).map(|(id, _)| *id).collect();
    for id in &deleted {
        assert!(config.delete_project(*id).unwrap());
    }
    let live: Vec<(i64, bool)> = ids.iter().copied().filter(|(id, _)| !deleted.contains(id)).collect();
    let pick = |rng: &mut StdRng| -> Option<i64> {
        match rng.random_range(0..10) {
            0 => None,
            1 => Some(deleted[rng.random_range(0..deleted.len())]),
            2 => Some(NEVER_EXISTED),
            _ => Some(live[rng.random_range(0..live.len())].0),
        }
    };
    let at = |rng: &mut StdRng, days: i64| base() + Duration::minutes(rng.random_range(0..days * 24 * 60));

    for s in 0..3 {
        let sub = config
            .add_subscription(&NewSubscription {
                name: format!("Calendar {s}"),
                url: format!("https://calendar.example.com/private-{s}/basic.ics").into(),
                color: None,
                enabled: true,
            })
            .unwrap();
        let events: Vec<NewCalendarEvent> = (0..60)
            .map(|e| {
                let start = at(&mut rng, 30);
                let end = match rng.random_range(0..20) {
                    0 => None,
                    1 => Some(start - Duration::minutes(30)),
                    _ => Some(start + Duration::minutes(rng.random_range(15..180))),
                };
                NewCalendarEvent {
                    uid: format!("uid-{s}-{e}"),
                    title: Some(format!("Meeting {e}")),
                    start_time: start,
                    end_time: end,
                    project_id: pick(&mut rng),
                }
            })
            .collect();
        config.replace_calendar_events(sub.id, &events, Utc::now()).unwrap();
    }

    let options = WriterOptions {
        open: store_core::OpenOptions {
            target_version: Some(activity_version),
            ..store_core::OpenOptions::default()
        },
        ..WriterOptions::default()
    };
    let mut writer = ActivityWriter::open_with(&activity_store::SCHEMA.path_in(dir), &options).unwrap();
    for i in 0..3000 {
        let start = at(&mut rng, 30);
        let id = writer
            .start_session(&NewSession {
                app: ["editor", "browser", "terminal"][i % 3].into(),
                title: Some(format!("session {i}")),
                url: None,
                domain: None,
                project_id: pick(&mut rng),
                start,
                is_idle: i % 11 == 0,
            })
            .unwrap();
        if rng.random_range(0..10) > 0 {
            writer
                .end_session(id, start + Duration::seconds(rng.random_range(1..4 * 3600)))
                .unwrap();
        }
    }
    let archived = live.iter().find(|(_, a)| *a).unwrap().0;
    let active = live.iter().find(|(_, a)| !*a).unwrap().0;
    Generated {
        active,
        archived,
        deleted: deleted[1],
    }
}

/// activity.db with config.db attached as `cfg`, both read-only.
fn oracle(dir: &Path) -> Connection {
    let c = Connection::open_with_flags(dir.join("activity.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.execute("ATTACH DATABASE ?1 AS cfg", [dir.join("config.db").to_str().unwrap()])
        .unwrap();
    c
}

fn bounds(range: &TimeRange) -> (i64, i64) {
    (
        range.from.map_or(i64::MIN, |t| t.timestamp_millis()),
        range.to.map_or(i64::MAX, |t| t.timestamp_millis()),
    )
}

fn status(project_id: Option<i64>, found: bool, archived: bool) -> ProjectStatus {
    match (project_id, found, archived) {
        (None, _, _) => ProjectStatus::Unassigned,
        (Some(_), false, _) => ProjectStatus::Deleted,
        (Some(_), true, true) => ProjectStatus::Archived,
        (Some(_), true, false) => ProjectStatus::Active,
    }
}

fn ranges() -> Vec<TimeRange> {
    vec![
        TimeRange::all(),
        TimeRange::between(base() + Duration::days(5), base() + Duration::days(20)),
        TimeRange::since(base() + Duration::days(25)),
        TimeRange::until(base() + Duration::days(3)),
        TimeRange::between(base() + Duration::days(400), base() + Duration::days(401)),
    ]
}

type TimeRow = (Option<i64>, Option<String>, ProjectStatus, i64, i64);

/// The oldest activity.db this build's readers read (a file the daemon of an older build keeps, read by a
/// server upgraded first: schema 3, before the running totals), then this build's own.
fn activity_versions() -> [u32; 2] {
    let schema = &activity_store::SCHEMA;
    [schema.oldest_readable_version(), schema.end_version()]
}

#[test]
fn time_per_project_equals_the_attach_join_including_null_and_dangling_ids() {
    for version in activity_versions() {
        let dir = tempfile::tempdir().unwrap();
        generate_at(dir.path(), 1, version);
        assert_time_per_project_equals_the_attach_join(dir.path());
    }
}

fn assert_time_per_project_equals_the_attach_join(dir: &Path) {
    let reports = Reports::open(dir);
    let db = oracle(dir);
    let mut seen_statuses = std::collections::HashSet::new();
    for range in ranges() {
        let app = reports.time_per_project(&range).unwrap();
        assert!(app.windows(2).all(|w| w[0].seconds >= w[1].seconds), "largest first");
        let mut app: Vec<TimeRow> = app
            .into_iter()
            .map(|r| (r.project_id, r.name, r.status, r.seconds, r.sessions))
            .collect();
        app.sort_by_key(|r| r.0);
        let (from, to) = bounds(&range);
        let mut stmt = db
            .prepare(
                "SELECT s.project_id, p.name, p.id IS NOT NULL, coalesce(p.archived, 0),
                        sum(coalesce(s.duration_seconds, 0)), count(*)
                 FROM activity_sessions s LEFT JOIN cfg.projects p ON p.id = s.project_id
                 WHERE s.start_time_ms >= ?1 AND s.start_time_ms < ?2
                 GROUP BY s.project_id ORDER BY s.project_id",
            )
            .unwrap();
        let expected: Vec<TimeRow> = stmt
            .query_map(params![from, to], |r| {
                let id: Option<i64> = r.get(0)?;
                Ok((
                    id,
                    r.get(1)?,
                    status(id, r.get(2)?, r.get::<_, i64>(3)? != 0),
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(app, expected, "range {range:?}");
        seen_statuses.extend(app.iter().map(|r| r.2));
    }
    assert_eq!(
        seen_statuses.len(),
        4,
        "the data covers unassigned, active, archived and deleted: {seen_statuses:?}"
    );
}

#[test]
fn project_activity_equals_the_attach_join_for_active_archived_deleted_and_unknown_projects() {
    for version in activity_versions() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate_at(dir.path(), 2, version);
        assert_project_activity_equals_the_attach_join(dir.path(), &g);
    }
}

fn assert_project_activity_equals_the_attach_join(dir: &Path, g: &Generated) {
    let reports = Reports::open(dir);
    let db = oracle(dir);
    for project_id in [g.active, g.archived, g.deleted, NEVER_EXISTED] {
        for range in ranges() {
            let app = reports.project_activity(project_id, &range, 100_000).unwrap();
            let (from, to) = bounds(&range);
            let ids: Vec<i64> = db
                .prepare(
                    "SELECT id FROM activity_sessions WHERE project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3
                     ORDER BY start_time_ms, id",
                )
                .unwrap()
                .query_map(params![project_id, from, to], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let seconds: i64 = db
                .query_row(
                    "SELECT coalesce(sum(coalesce(duration_seconds, 0)), 0) FROM activity_sessions
                     WHERE project_id = ?1 AND start_time_ms >= ?2 AND start_time_ms < ?3",
                    params![project_id, from, to],
                    |r| r.get(0),
                )
                .unwrap();
            let (name, archived): (Option<String>, Option<bool>) = db
                .query_row(
                    "SELECT name, archived FROM cfg.projects WHERE id = ?1",
                    [project_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or((None, None));
            let status = match archived {
                None => ProjectStatus::Deleted,
                Some(true) => ProjectStatus::Archived,
                Some(false) => ProjectStatus::Active,
            };
            assert_eq!(
                app.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
                ids,
                "{project_id} {range:?}"
            );
            assert_eq!(app.seconds, seconds, "{project_id} {range:?}");
            assert_eq!(
                (app.project.map(|p| p.name), app.status),
                (name, status),
                "{project_id}"
            );
        }
    }
}

type CalendarRow = (i64, Option<String>, ProjectStatus, i64, i64);

fn calendar_app(reports: &Reports, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<CalendarRow> {
    reports
        .calendar_beside_activity(&TimeRange::between(from, to))
        .unwrap()
        .into_iter()
        .map(|c| (c.event.id, c.project_name, c.project_status, c.tracked_ms, c.project_ms))
        .collect()
}

/// The calendar report as one SQL JOIN: each event with every ended session sharing time with it.
fn calendar_oracle(db: &Connection, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<CalendarRow> {
    let mut stmt = db.prepare_cached(include_str!("support/calendar_join.sql")).unwrap();
    stmt.query_map(params![from.timestamp_millis(), to.timestamp_millis()], |r| {
        let id: Option<i64> = r.get(2)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            status(id, r.get(3)?, r.get::<_, i64>(4)? != 0),
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// On this build's activity.db and on the oldest a reader reads (a daemon of an older build keeps it, without
/// the index of long sessions its read of the sessions uses).
#[test]
fn calendar_beside_activity_equals_the_attach_join() {
    for version in activity_versions() {
        let dir = tempfile::tempdir().unwrap();
        generate_at(dir.path(), 3, version);
        let reports = Reports::open(dir.path());
        let db = oracle(dir.path());
        let windows = [
            (base(), base() + Duration::days(31)),
            (base() + Duration::days(10), base() + Duration::days(12)),
            (base() + Duration::days(100), base() + Duration::days(101)),
        ];
        let mut nonzero = 0;
        for (from, to) in windows {
            let app = calendar_app(&reports, from, to);
            assert_eq!(
                app,
                calendar_oracle(&db, from, to),
                "schema {version}, window {from} .. {to}"
            );
            nonzero += app.iter().filter(|r| r.3 > 0).count();
        }
        assert!(nonzero > 10, "the data has overlaps to compare ({nonzero})");
    }
}

/// The calendar report sums each event's overlap from the sessions' sorted starts and ends, not session by
/// session: its answer still equals the JOIN's where the edges meet. Sessions and events on a grid of
/// minutes (so their bounds often fall on each other's), sessions overlapping each other, ending at their
/// start or before it (a clock set back while one ran), open ones; events of no length, with no end, or
/// ending before their start; a session or event spanning the whole stretch; random windows.
#[test]
fn calendar_beside_activity_equals_the_attach_join_where_edges_meet() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let minute = |m: i64| base() + Duration::minutes(m);
    let mut config = ConfigStore::open_in(dir.path()).unwrap();
    let projects: Vec<i64> = (0..4)
        .map(|i| config.create_project(&NewProject::named(format!("P{i}"))).unwrap().id)
        .collect();
    let pick = |rng: &mut StdRng| match rng.random_range(0..6) {
        0 => None,
        1 => Some(NEVER_EXISTED),
        _ => Some(projects[rng.random_range(0..projects.len())]),
    };
    let sub = config
        .add_subscription(&NewSubscription::new("Edges", "https://calendar.example.com/edges.ics"))
        .unwrap();
    let mut events: Vec<NewCalendarEvent> = (0..300)
        .map(|e| {
            let start = rng.random_range(0..600);
            let end = match rng.random_range(0..10) {
                0 => None,
                1 => Some(minute(start)),
                2 => Some(minute(start - rng.random_range(1..30))),
                _ => Some(minute(start + rng.random_range(1..90))),
            };
            NewCalendarEvent {
                end_time: end,
                project_id: pick(&mut rng),
                ..NewCalendarEvent::new(format!("uid-{e}"), minute(start))
            }
        })
        .collect();
    events.push(NewCalendarEvent {
        end_time: Some(minute(700)),
        project_id: Some(projects[0]),
        ..NewCalendarEvent::new("all of it", minute(-100))
    });
    config.replace_calendar_events(sub.id, &events, Utc::now()).unwrap();

    let mut writer = ActivityWriter::open_in(dir.path()).unwrap();
    let mut session = |start: i64, end: Option<i64>, project_id: Option<i64>| {
        let id = writer
            .start_session(&NewSession {
                project_id,
                ..NewSession::new("editor", minute(start))
            })
            .unwrap();
        if let Some(end) = end {
            writer.end_session(id, minute(end)).unwrap();
        }
    };
    for _ in 0..800 {
        let start = rng.random_range(0..600);
        let end = match rng.random_range(0..12) {
            0 => None,
            1 => Some(start),
            2 => Some(start - rng.random_range(1..30)),
            _ => Some(start + rng.random_range(1..60)),
        };
        session(start, end, pick(&mut rng));
    }
    session(-50, Some(650), Some(projects[0]));
    drop(writer);

    let reports = Reports::open(dir.path());
    let db = oracle(dir.path());
    let mut windows = vec![
        (minute(-1000), minute(2000)),
        (minute(0), minute(1)),
        (minute(300), minute(300)),
    ];
    for _ in 0..60 {
        let from = rng.random_range(-10..610);
        windows.push((minute(from), minute(from + rng.random_range(1..120))));
    }
    let (mut events_seen, mut own_time) = (0, 0);
    for (from, to) in windows {
        let app = calendar_app(&reports, from, to);
        assert_eq!(app, calendar_oracle(&db, from, to), "window {from} .. {to}");
        events_seen += app.len();
        own_time += app.iter().filter(|r| r.4 > 0).count();
    }
    assert!(
        events_seen > 1000 && own_time > 300,
        "the windows hold events and overlaps ({events_seen}, {own_time})"
    );
}

#[test]
fn the_report_command_prints_the_same_rows_with_exactly_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 4);
    let range = TimeRange::between(base() + Duration::days(2), base() + Duration::days(9));
    let expected = Reports::open(dir.path()).time_per_project(&range).unwrap();
    let out = run_splitstore([
        "report",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--json",
        "--from",
        "2026-03-03",
        "--to",
        &(base() + Duration::days(9)).to_rfc3339(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        let keys: Vec<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "project_id", "seconds", "sessions", "status"]);
        assert_eq!(row["project_id"].as_i64(), want.project_id);
        assert_eq!(row["status"], serde_json::to_value(want.status).unwrap());
        assert_eq!(row["name"].as_str(), want.name.as_deref());
        assert_eq!(row["seconds"].as_i64(), Some(want.seconds));
        assert_eq!(row["sessions"].as_i64(), Some(want.sessions));
    }
    assert!(
        rows.iter().any(|r| r["project_id"].is_null()),
        "the unassigned sessions are a row"
    );
    assert!(
        rows.iter().any(|r| !r["project_id"].is_null() && r["name"].is_null()),
        "deleted projects are rows"
    );

    let missing = run_splitstore(["report", "--data-dir", dir.path().join("nowhere").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("nowhere does not exist. What to do: pass the --data-dir that holds activity.db and config.db"),
        "{stderr}"
    );

    // Two times swapped: said, not an empty table that reads as "no activity".
    let swapped = run_splitstore([
        "report",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--from",
        "2026-02-01",
        "--to",
        "2026-01-01T10:30:00Z",
    ]);
    assert_eq!(swapped.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&swapped.stderr).trim_end(),
        "splitstore report: --from 2026-02-01T00:00:00Z is not before --to 2026-01-01T10:30:00Z: no session can \
         start in that range. What to do: give the earlier time as --from"
    );
    assert!(swapped.stdout.is_empty());

    // Epoch seconds (`date +%s`) and a compact date read as milliseconds of January 1970: every session
    // would count, said as a report "since" the time asked. Refused, with the form meant.
    for (from, said) in [
        (
            "1772496000",
            "1772496000 read as epoch milliseconds is 1970-01-21T12:21:36.000Z, most likely not the time meant: \
             for epoch seconds write 1772496000000, for a date write it as 2026-01-01, for all of history leave \
             the bound out",
        ),
        (
            "20260101",
            "20260101 read as epoch milliseconds is 1970-01-01T05:37:40.101Z",
        ),
    ] {
        let out = run_splitstore(["report", "--data-dir", dir.path().to_str().unwrap(), "--from", from]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(said), "{out:?}");
    }
}

/// A name holding a newline (legacy names hold "text of every kind", which the split copies as written; a new
/// name may not) is one row of the text table: it used to put its hours on a line of their own, which read as
/// another project's.
#[test]
fn a_project_name_with_a_newline_is_one_row_of_the_text_report() {
    let dir = tempfile::tempdir().unwrap();
    let project = ConfigStore::open_in(dir.path())
        .unwrap()
        .create_project(&NewProject::named("Acme"))
        .unwrap();
    // As a split writes a legacy name.
    Connection::open(dir.path().join("config.db"))
        .unwrap()
        .execute(
            "UPDATE projects SET name = 'Acme' || char(10) || 'Billable client' WHERE id = ?1",
            [project.id],
        )
        .unwrap();
    let mut writer = ActivityWriter::open_in(dir.path()).unwrap();
    let start = base();
    let s = writer
        .start_session(&NewSession {
            project_id: Some(project.id),
            ..NewSession::new("editor", start)
        })
        .unwrap();
    writer.end_session(s, start + Duration::hours(1)).unwrap();
    drop(writer);
    let out = run_splitstore(["report", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "a heading and one row: {table}");
    assert!(
        lines[1].contains("Acme\\nBillable client") && lines[1].ends_with(" 1       1.00"),
        "{table}"
    );
}

#[test]
fn reports_over_an_older_daemons_file_are_the_same_after_the_daemon_upgrades_it() {
    // A server upgraded before its daemon reads activity.db at the older daemon's schema until the daemon of
    // this build starts: its reports neither wait for that start nor change at it.
    let dir = tempfile::tempdir().unwrap();
    let [older, current] = activity_versions();
    assert!(older < current, "this build reads an older daemon's file");
    let g = generate_at(dir.path(), 6, older);
    let report_command = || {
        let out = run_splitstore(["report", "--data-dir", dir.path().to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let reports_now = || {
        let reports = Reports::open(dir.path());
        let times: Vec<_> = ranges()
            .iter()
            .map(|range| reports.time_per_project(range).unwrap())
            .collect();
        let activity: Vec<_> = ranges()
            .iter()
            .map(|range| {
                let a = reports.project_activity(g.active, range, 100_000).unwrap();
                (a.seconds, a.sessions.len())
            })
            .collect();
        (times, activity)
    };
    let version = || -> u32 {
        oracle(dir.path())
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };

    let before = (reports_now(), report_command());
    assert_eq!(version(), older);
    assert!(
        before.0.0[0].iter().map(|r| r.sessions).sum::<i64>() > 2000,
        "the older file's sessions are reported: {:?}",
        before.0.0[0]
    );
    drop(ActivityWriter::open_in(dir.path()).unwrap());
    assert_eq!(version(), current, "the daemon of this build upgraded the file");
    assert_eq!((reports_now(), report_command()), before);
}

/// Before, `sessions_overlapping` of an empty range (bounds swapped, or equal) returned every session spanning
/// it, where `sessions_in_range`, `totals_by_project` and `calendar_events_between` return nothing.
#[test]
fn an_empty_range_overlaps_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ActivityWriter::open_in(dir.path()).unwrap();
    let t = Utc::now();
    let s = w
        .start_session(&NewSession::new("a", t - chrono::Duration::hours(2)))
        .unwrap();
    w.end_session(s, t).unwrap();
    let r = activity_store::ActivityReader::open_in(dir.path());
    let mid = t - chrono::Duration::hours(1);
    assert_eq!(
        r.sessions_overlapping(&TimeRange::between(mid, mid + chrono::Duration::minutes(1)))
            .unwrap()
            .len(),
        1
    );
    for empty in [
        TimeRange::between(mid, mid),
        TimeRange::between(mid + chrono::Duration::minutes(1), mid),
    ] {
        assert!(empty.is_empty());
        assert_eq!(r.sessions_in_range(&empty, 100).unwrap().len(), 0);
        assert_eq!(r.sessions_overlapping(&empty).unwrap().len(), 0, "{empty:?}");
    }
}
