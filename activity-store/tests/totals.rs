//! Reports read the running totals the writer keeps (`activity_totals`): they must say exactly what the
//! plain aggregation over the sessions says (a SQL GROUP BY over `activity_sessions`, the oracle), for
//! random sessions and random ranges (arbitrary milliseconds, quarter hours, local days and weeks of
//! half-hour and quarter-hour time zones, unbounded sides), with sessions open, ended, ended in a group,
//! recovered at open, after retention (against the oracle taken before pruning), after a repair gave
//! projects new ids (one joining another's) and after a restore from a backup. Every write that touches the totals is one transaction: an injected failure leaves nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use activity_store::{
    ActivityReader, ActivityWriter, GroupCommitPolicy, NewEvent, ProjectTotal, PrunedEdge, SCHEMA, TimeRange, queries,
    totals_disagreement,
};
use common::*;
use proptest::prelude::*;
use rusqlite::Connection;
use store_core::testing::{fingerprint_of, open_at_version, query_i64};

const MINUTE: i64 = 60_000;
const QUARTER: i64 = 15 * MINUTE;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Midnight UTC, 2024-03-30 (a Saturday).
const BASE: i64 = 1_711_756_800_000;
/// Projects the sessions belong to (`None`: no project).
const PROJECTS: [Option<i64>; 5] = [None, Some(1), Some(2), Some(3), Some(7)];

type Totals = BTreeMap<Option<i64>, (i64, i64)>;

/// The oracle: sessions that started in `[from, to)`, grouped by project, as stored now.
fn oracle(conn: &Connection, (from, to): (i64, i64)) -> Totals {
    conn.prepare(
        "SELECT project_id, SUM(IFNULL(duration_seconds, 0)), COUNT(*) FROM activity_sessions
         WHERE start_time_ms >= ?1 AND start_time_ms < ?2 GROUP BY project_id",
    )
    .unwrap()
    .query_map((from, to), |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn as_map(rows: Vec<ProjectTotal>) -> Totals {
    let n = rows.len();
    let map: Totals = rows
        .into_iter()
        .map(|t| (t.project_id, (t.seconds, t.sessions)))
        .collect();
    assert_eq!(map.len(), n, "one row per project");
    map
}

fn merge(parts: impl IntoIterator<Item = Totals>) -> Totals {
    let mut out = Totals::new();
    for part in parts {
        for (project, (seconds, sessions)) in part {
            let e = out.entry(project).or_default();
            e.0 += seconds;
            e.1 += sessions;
        }
    }
    out.retain(|_, (_, sessions)| *sessions > 0);
    out
}

/// A range as a UI would ask for it, or any range at all.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// Any milliseconds, as offsets from BASE.
    Millis(i64, i64),
    /// Quarter hours from BASE.
    Quarters(i64, i64),
    /// Local day `day` (from BASE's date) in a zone `offset` minutes east of UTC.
    LocalDay {
        offset: i64,
        day: i64,
    },
    /// The local week (7 days) starting on day `day`.
    LocalWeek {
        offset: i64,
        day: i64,
    },
    Since(i64),
    Until(i64),
    All,
}

impl Range {
    fn time_range(self) -> TimeRange {
        let t = |offset: i64| at(BASE + offset);
        match self {
            Range::Millis(a, b) => TimeRange::between(t(a), t(b)),
            Range::Quarters(a, b) => TimeRange::between(t(a * QUARTER), t(b * QUARTER)),
            Range::LocalDay { offset, day } => {
                let start = day * DAY - offset * MINUTE;
                TimeRange::between(t(start), t(start + DAY))
            }
            Range::LocalWeek { offset, day } => {
                let start = day * DAY - offset * MINUTE;
                TimeRange::between(t(start), t(start + 7 * DAY))
            }
            Range::Since(a) => TimeRange::since(t(a)),
            Range::Until(b) => TimeRange::until(t(b)),
            Range::All => TimeRange::all(),
        }
    }
}

fn range_strategy() -> impl Strategy<Value = Range> {
    let offset = prop::sample::select(vec![0i64, 330, 570, 345, -210, -600, 60]);
    prop_oneof![
        (-DAY..5 * DAY, -DAY..5 * DAY).prop_map(|(a, b)| Range::Millis(a, b)),
        (-DAY..5 * DAY, 0..2 * HOUR).prop_map(|(a, len)| Range::Millis(a, a + len)),
        (-96i64..480, -96i64..480).prop_map(|(a, b)| Range::Quarters(a, b)),
        (offset.clone(), -1i64..5).prop_map(|(offset, day)| Range::LocalDay { offset, day }),
        (offset, -1i64..2).prop_map(|(offset, day)| Range::LocalWeek { offset, day }),
        (-DAY..5 * DAY).prop_map(Range::Since),
        (-DAY..5 * DAY).prop_map(Range::Until),
        Just(Range::All),
    ]
}

/// How a session of the property test ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Still open when the writer stops: recovery closes it at its start (it has no events).
    Open,
    /// `end_session` after this many milliseconds (negative: a clock that stepped back).
    Writer(i64),
    /// Ended in a group commit.
    Group(i64),
    /// Left open with an event this long after its start: recovery closes it there.
    Crash(i64),
}

#[derive(Debug, Clone, Copy)]
struct SessionSpec {
    project: Option<i64>,
    /// Offset from BASE.
    start: i64,
    end: End,
}

fn session_strategy() -> impl Strategy<Value = SessionSpec> {
    let start = prop_oneof![
        -DAY..4 * DAY,
        // On a bucket boundary, or a millisecond either side of one.
        (-96i64..384, -1i64..=1).prop_map(|(q, d)| q * QUARTER + d),
    ];
    let end = prop_oneof![
        Just(End::Open),
        (0..3 * HOUR).prop_map(End::Writer),
        (-5_000i64..0).prop_map(End::Writer),
        (0..3 * HOUR).prop_map(End::Group),
        (1..2 * HOUR).prop_map(End::Crash),
    ];
    (prop::sample::select(PROJECTS.to_vec()), start, end).prop_map(|(project, start, end)| SessionSpec {
        project,
        start,
        end,
    })
}

/// Every range's answer, and every project's, equals `expected` (given the bounds in milliseconds).
#[track_caller]
fn check(db: &Path, ranges: &[Range], expected: impl Fn(&TimeRange) -> Totals, when: &str) {
    assert_eq!(
        totals_disagreement(&read_only(db)).unwrap(),
        None,
        "{when}: doctor finds the totals agree with the sessions"
    );
    let reader = ActivityReader::open(db);
    for range in ranges {
        let r = range.time_range();
        let want = expected(&r);
        let got = as_map(reader.totals_by_project(&r).unwrap());
        assert_eq!(got, want, "{when}: totals_by_project over {range:?} ({r:?})");
        for project in PROJECTS.iter().flatten() {
            let one = reader.total_of_project(*project, &r).unwrap();
            let (seconds, sessions) = want.get(&Some(*project)).copied().unwrap_or((0, 0));
            assert_eq!(
                (one.seconds, one.sessions),
                (seconds, sessions),
                "{when}: total_of_project {project} over {range:?}"
            );
        }
    }
}

/// The boundaries of the whole quarter hours inside `[from, to)` (unbounded sides stay unbounded), or
/// `None` when no whole quarter hour is in it.
fn whole_quarters((from, to): (i64, i64)) -> Option<(i64, i64)> {
    let first = if from == i64::MIN {
        i64::MIN
    } else {
        from.div_euclid(QUARTER) * QUARTER + if from.rem_euclid(QUARTER) == 0 { 0 } else { QUARTER }
    };
    let last = if to == i64::MAX {
        i64::MAX
    } else {
        to.div_euclid(QUARTER) * QUARTER
    };
    (first <= last).then_some((first, last))
}

fn run_case(specs: &[SessionSpec], ranges: &[Range], prune_at: i64, budget: u32) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let ids: Vec<i64> = specs
        .iter()
        .map(|s| w.start_session(&session(s.project, BASE + s.start)).unwrap())
        .collect();
    for (s, id) in specs.iter().zip(&ids) {
        if let End::Crash(after) = s.end {
            w.record_event(&event(Some(*id), "input", BASE + s.start + after))
                .unwrap();
        }
    }
    let now = |r: &TimeRange| oracle(&read_only(&db), r.bounds_ms());
    check(&db, ranges, now, "sessions open");

    for (s, id) in specs.iter().zip(&ids) {
        if let End::Writer(after) = s.end {
            assert!(w.end_session(*id, at(BASE + s.start + after)).unwrap());
        }
    }
    let mut group = w.into_group_commit(GroupCommitPolicy {
        max_events: 1000,
        max_delay: std::time::Duration::from_secs(3600),
    });
    for (s, id) in specs.iter().zip(&ids) {
        if let End::Group(after) = s.end {
            group
                .push(NewEvent::new(Some(*id), "input", at(BASE + s.start)))
                .unwrap();
            group.end_session(*id, at(BASE + s.start + after)).unwrap();
        }
    }
    group.flush().unwrap();
    drop(group);
    check(&db, ranges, now, "sessions ended by the writer and by a group");

    // The writer is gone with sessions open: the next one recovers them.
    let mut w = ActivityWriter::open(&db).unwrap();
    let left_open = specs
        .iter()
        .filter(|s| matches!(s.end, End::Open | End::Crash(_)))
        .count();
    assert_eq!(w.recovery().sessions.len(), left_open);
    check(&db, ranges, now, "after recovery");

    // Backup now; then prune, and compare with the oracle of the sessions as they were.
    let backup = w.owner().backup_to(&dir.path().join("backups"), 5).unwrap();
    // The oracle over the sessions as they were: a read transaction held open keeps its snapshot.
    let before = read_only(&db);
    before.execute_batch("BEGIN").unwrap();
    oracle(&before, (i64::MIN, i64::MAX));
    let pre = |bounds: (i64, i64)| oracle(&before, bounds);
    let cut = at(BASE + prune_at);
    let mut steps = 0;
    loop {
        let step = w.prune_step(cut, budget).unwrap();
        assert!(step.events_deleted + step.sessions_deleted <= u64::from(budget));
        steps += 1;
        if step.done {
            break;
        }
        assert!(steps < 10_000, "prune_step never said done");
    }
    let after = read_only(&db);
    check(
        &db,
        ranges,
        |r| {
            let (from, to) = r.bounds_ms();
            if from >= to {
                return Totals::new();
            }
            match whole_quarters((from, to)) {
                // Whole quarter hours keep their totals; edges count the sessions still stored.
                Some((first, last)) => merge([
                    pre((first, last)),
                    oracle(&after, (from, first)),
                    oracle(&after, (last, to)),
                ]),
                None => oracle(&after, (from, to)),
            }
        },
        "after pruning",
    );
    // A range whose answer is no longer the one before pruning is told: `pruned_at_edges` names a bucket at
    // an unaligned bound of it, with fewer sessions stored than the totals count there.
    for range in ranges {
        let r = range.time_range();
        let (from, to) = r.bounds_ms();
        let reader = ActivityReader::open(&db);
        let edges = reader.pruned_at_edges(&r).unwrap();
        if from < to && as_map(reader.totals_by_project(&r).unwrap()) != pre((from, to)) {
            assert!(!edges.is_empty(), "{range:?}: an answer changed by pruning is told");
        }
        for edge in &edges {
            let (b_from, b_to) = edge.bucket.bounds_ms();
            assert_eq!(b_to - b_from, QUARTER, "{edge:?}");
            let holds = |t: i64| t > b_from && t < b_to;
            assert!(holds(from) || holds(to), "{range:?}: {edge:?} is at an unaligned bound");
            assert!(edge.stored < edge.counted, "{edge:?}");
        }
    }
    // Quarter-hour ranges (every local day and week) keep their pre-pruning answer exactly.
    for range in ranges {
        let r = range.time_range();
        let (from, to) = r.bounds_ms();
        let aligned = |t: i64| t == i64::MIN || t == i64::MAX || t.rem_euclid(QUARTER) == 0;
        if aligned(from) && aligned(to) {
            let got = as_map(ActivityReader::open(&db).totals_by_project(&r).unwrap());
            let want = if from < to { pre((from, to)) } else { Totals::new() };
            assert_eq!(got, want, "after pruning, {range:?} as before pruning");
        }
    }
    before.execute_batch("COMMIT").unwrap();
    drop((before, after, w));

    // A repair gives projects new ids (7 joins 2, which has time of its own; 3 moves to 9, free): every range
    // reads under the new ids what it read under the old ones, the pruned sessions' time included.
    let moves = [(7, 2), (3, 9)];
    let renamed = |totals: Totals| {
        merge(totals.into_iter().map(|(project, total)| {
            let project = project.map(|p| moves.iter().find(|(old, _)| *old == p).map_or(p, |(_, new)| *new));
            Totals::from([(project, total)])
        }))
    };
    let reports = |db: &Path| -> Vec<Totals> {
        let reader = ActivityReader::open(db);
        ranges
            .iter()
            .map(|r| renamed(as_map(reader.totals_by_project(&r.time_range()).unwrap())))
            .collect()
    };
    let before_the_move = reports(&db);
    let mut conn = Connection::open(&db).unwrap();
    let tx = conn.transaction().unwrap();
    let run = store_core::renumber::IdMoves {
        run: "test".into(),
        database: "config.db".into(),
        table: "projects".into(),
        ids: moves.to_vec(),
        counter: 9,
    };
    store_core::renumber::catch_up(&tx, &SCHEMA, &[run]).unwrap();
    tx.commit().unwrap();
    drop(conn);
    assert_eq!(
        reports(&db),
        before_the_move,
        "after a repair moved projects 7 to 2 and 3 to 9: {ranges:?}"
    );
    assert_eq!(totals_disagreement(&read_only(&db)).unwrap(), None, "after the move");

    // Restore the backup: its totals match its own sessions.
    let lock = store_core::OwnerLock::acquire(&db).unwrap();
    let verified = store_core::restore::verify_backup(&backup, &SCHEMA, None).unwrap();
    let (_, lock) = store_core::restore::restore_from(lock, &SCHEMA, &verified, "replaced", None).unwrap();
    drop(lock);
    check(&db, ranges, now, "after a restore from the backup");
}

/// A bound inside a quarter hour whose sessions retention pruned in part counts only the sessions still
/// stored there: `pruned_at_edges` says so, with the counts, and says nothing for bounds on quarter hours.
#[test]
fn a_bound_inside_a_partly_pruned_quarter_hour_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    // Three sessions in the quarter hour [BASE, BASE + 15 min): the first two end long before the third.
    for (start, end) in [(MINUTE, 2 * MINUTE), (3 * MINUTE, 4 * MINUTE), (10 * MINUTE, 2 * DAY)] {
        let id = w.start_session(&session(Some(1), BASE + start)).unwrap();
        assert!(w.end_session(id, at(BASE + end)).unwrap());
    }
    // Retention prunes the sessions that ended before BASE + 1 day: the first two.
    w.prune_before(at(BASE + DAY)).unwrap();
    let reader = ActivityReader::open(&db);

    let inside = TimeRange::between(at(BASE + 2 * MINUTE), at(BASE + HOUR));
    assert_eq!(
        reader.totals_by_project(&inside).unwrap(),
        vec![ProjectTotal {
            project_id: Some(1),
            seconds: (2 * DAY - 10 * MINUTE) / 1000,
            sessions: 1,
        }],
        "the pruned session at +3 min is not counted"
    );
    assert_eq!(
        reader.pruned_at_edges(&inside).unwrap(),
        vec![PrunedEdge {
            bucket: TimeRange::between(at(BASE), at(BASE + QUARTER)),
            counted: 3,
            stored: 1,
        }]
    );
    for whole in [
        TimeRange::between(at(BASE), at(BASE + HOUR)),
        TimeRange::all(),
        TimeRange::between(at(BASE + QUARTER + MINUTE), at(BASE + HOUR + MINUTE)),
    ] {
        assert_eq!(reader.pruned_at_edges(&whole).unwrap(), vec![], "{whole:?}");
    }
}

/// A session deleted, and one moved to another project, by a tool that runs none of the writer's code (the
/// `sqlite3` shell): the totals go on counting them as they were, and so do reports. The check finds them from
/// the first quarter hour after which nothing was pruned; the recount writes the totals from there as the
/// sessions held say, keeping what retention pruned before, in one transaction that an injected failure at
/// its last statement (the provenance record) leaves as it was.
#[test]
fn a_session_deleted_or_moved_by_a_tool_is_found_and_recounted_keeping_what_retention_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let mut record = |project: i64, start: i64| {
        let id = w.start_session(&session(Some(project), BASE + start)).unwrap();
        assert!(w.end_session(id, at(BASE + start + 30 * MINUTE)).unwrap());
        id
    };
    // Day 0, pruned below: two half hours of project 1, one of project 2. Then two days, one half hour an
    // hour, projects 1 and 2 in turn.
    for (project, start) in [(1, HOUR), (1, 2 * HOUR), (2, 3 * HOUR)] {
        record(project, start);
    }
    let ids: Vec<i64> = (0..48).map(|h| record(1 + h % 2, DAY + h * HOUR)).collect();
    w.prune_before(at(BASE + DAY)).unwrap();
    drop(w);
    let all_time = || as_map(ActivityReader::open(&db).totals_by_project(&TimeRange::all()).unwrap());
    let day_0 = || {
        as_map(
            ActivityReader::open(&db)
                .totals_by_project(&TimeRange::between(at(BASE), at(BASE + DAY)))
                .unwrap(),
        )
    };
    let before = all_time();
    assert_eq!(
        before,
        Totals::from([(Some(1), (26 * 1800, 26)), (Some(2), (25 * 1800, 25))])
    );
    assert_eq!(
        totals_disagreement(&read_only(&db)).unwrap(),
        None,
        "retention is no disagreement"
    );

    Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "DELETE FROM activity_sessions WHERE id = {};
             UPDATE activity_sessions SET project_id = 2 WHERE id = {};",
            ids[10], ids[20]
        ))
        .unwrap();
    assert_eq!(all_time(), before, "reports go on counting them as they were");
    let found = totals_disagreement(&read_only(&db)).unwrap().expect("found");
    assert_eq!(
        found,
        store_core::Disagreement {
            since_ms: BASE + DAY + 45 * MINUTE,
            detail: "its running totals count 2 ended session(s) (3600 s) in 3 quarter hour(s) of a project from \
                     2024-03-31T00:45:00Z on, where it holds 1 (1800 s)"
                .into(),
        }
    );

    let totals_rows = || -> Vec<(i64, i64, i64, i64, i64)> {
        read_only(&db)
            .prepare("SELECT * FROM activity_totals ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let rows_before = totals_rows();
    let mut owner = store_core::OwnerConnection::open(&db, &SCHEMA).unwrap();
    store_core::testing::fail_provenance_records(owner.conn());
    let err = owner.recount_derived().unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(
        totals_rows(),
        rows_before,
        "the failed recount left the totals as they were"
    );
    owner.conn().execute_batch("DROP TRIGGER temp.injected").unwrap();
    assert_eq!(owner.recount_derived().unwrap(), Some(found.clone()));
    assert_eq!(owner.recount_derived().unwrap(), None, "nothing left to recount");
    let recorded: Vec<Option<String>> = store_core::Provenance::read_all(owner.conn())
        .unwrap()
        .into_iter()
        .filter(|p| p.event == store_core::provenance::DERIVED_RECOUNTED_EVENT)
        .map(|p| p.detail)
        .collect();
    assert_eq!(recorded, [Some(serde_json::to_string(&found).unwrap())]);
    drop(owner);

    assert_eq!(totals_disagreement(&read_only(&db)).unwrap(), None);
    assert_eq!(
        all_time(),
        Totals::from([(Some(1), (24 * 1800, 24)), (Some(2), (26 * 1800, 26))]),
        "one session of project 1 deleted, one moved to 2"
    );
    assert_eq!(
        day_0(),
        Totals::from([(Some(1), (2 * 1800, 2)), (Some(2), (1800, 1))]),
        "the pruned day keeps its time"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Reports from the totals equal the aggregation over the sessions, whatever the sessions and ranges.
    #[test]
    fn reports_from_the_totals_equal_the_aggregation_over_sessions(
        specs in prop::collection::vec(session_strategy(), 0..40),
        ranges in prop::collection::vec(range_strategy(), 1..12),
        prune_at in -DAY..5 * DAY,
        budget in 1u32..20,
    ) {
        run_case(&specs, &ranges, prune_at, budget);
    }
}

#[test]
fn open_sessions_count_as_sessions_from_their_start_and_their_seconds_join_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let reader = ActivityReader::open(&db);
    let today = TimeRange::between(at(BASE), at(BASE + DAY));
    let s = w.start_session(&session(Some(4), BASE + 10 * HOUR)).unwrap();
    let totals = reader.totals_by_project(&today).unwrap();
    assert_eq!(
        (totals[0].project_id, totals[0].seconds, totals[0].sessions),
        (Some(4), 0, 1)
    );
    w.end_session(s, at(BASE + 10 * HOUR + 90_500)).unwrap();
    let totals = reader.totals_by_project(&today).unwrap();
    assert_eq!(
        (totals[0].seconds, totals[0].sessions),
        (91, 1),
        "90.5 s to the nearest second, counted once"
    );
    assert!(
        !w.end_session(s, at(BASE + 11 * HOUR)).unwrap(),
        "a second end changes nothing"
    );
    assert_eq!(reader.totals_by_project(&today).unwrap()[0].seconds, 91);
}

#[test]
fn a_day_of_short_sessions_reads_as_the_time_they_took() {
    // Window switches every 1.999 s for an hour: 1,801 sessions, 3,600.199 s. Each session's seconds cut
    // (not rounded) read as half an hour (1,801 s).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    for i in 0..1_801 {
        let s = w.start_session(&session(Some(1), BASE + i * 1_999)).unwrap();
        w.end_session(s, at(BASE + (i + 1) * 1_999)).unwrap();
    }
    let reader = ActivityReader::open(&db);
    let totals = reader
        .totals_by_project(&TimeRange::between(at(BASE), at(BASE + DAY)))
        .unwrap();
    assert_eq!(
        (totals[0].seconds, totals[0].sessions),
        (3_602, 1_801),
        "each 1.999 s session counts 2 s"
    );
}

#[test]
fn a_session_ending_long_after_later_sessions_started_raises_every_later_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let long = w.start_session(&session(Some(1), BASE)).unwrap();
    for q in 1..8 {
        let s = w.start_session(&session(Some(1), BASE + q * QUARTER)).unwrap();
        w.end_session(s, at(BASE + q * QUARTER + 60_000)).unwrap();
    }
    w.end_session(long, at(BASE + 3 * HOUR)).unwrap();
    let reader = ActivityReader::open(&db);
    let c = read_only(&db);
    for q in 0..8 {
        for end in q + 1..10 {
            let r = TimeRange::between(at(BASE + q * QUARTER), at(BASE + end * QUARTER));
            assert_eq!(
                as_map(reader.totals_by_project(&r).unwrap()),
                oracle(&c, r.bounds_ms()),
                "{q}..{end}"
            );
        }
    }
    let rows: i64 = c
        .query_row("SELECT count(*) FROM activity_totals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 8, "one row per project and bucket with sessions");
}

/// Installs a trigger on `activity_totals` that raises on `what` (`INSERT` or `UPDATE`).
fn fail_totals(db: &Path, what: &str) {
    raw_writer(db)
        .execute_batch(&format!(
            "CREATE TRIGGER fail_totals BEFORE {what} ON activity_totals
             BEGIN SELECT RAISE(ABORT, 'injected failure: totals'); END;"
        ))
        .unwrap();
}

fn unfail_totals(db: &Path) {
    raw_writer(db).execute_batch("DROP TRIGGER fail_totals").unwrap();
}

#[test]
fn a_failure_writing_the_totals_leaves_neither_the_session_nor_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let still_open = || count_rows(&db, "activity_sessions WHERE end_time_ms IS NULL");

    // The project's first ended session creates its bucket: that insert fails.
    let s = w.start_session(&session(Some(1), BASE)).unwrap();
    w.record_event(&event(Some(s), "input", BASE + 60_000)).unwrap();
    fail_totals(&db, "INSERT");
    let err = w.end_session(s, at(BASE + HOUR)).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(still_open(), 1, "the session is still open");
    assert_eq!(count_rows(&db, "activity_totals"), 0);
    // A session inserted already ended (a copy, a tool) is refused as a whole too.
    let err = raw_writer(&db)
        .execute_batch(&format!(
            "INSERT INTO activity_sessions (app, project_id, start_time_ms, end_time_ms, duration_seconds)
             VALUES ('copy', 5, {BASE}, {BASE} + 1000, 1)"
        ))
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(count_rows(&db, "activity_sessions"), 1);
    unfail_totals(&db);

    // Once the bucket exists, ending a session updates it: that update fails.
    let other = w.start_session(&session(Some(1), BASE + 1000)).unwrap();
    w.end_session(other, at(BASE + 2000)).unwrap();
    fail_totals(&db, "UPDATE");
    let err = w.end_session(s, at(BASE + HOUR)).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(still_open(), 1);

    // In a group: the whole group stays pending, nothing of it written.
    let mut group = w.into_group_commit(GroupCommitPolicy {
        max_events: 1000,
        max_delay: std::time::Duration::from_secs(3600),
    });
    group.push(event(Some(s), "input", BASE + 61_000)).unwrap();
    group.end_session(s, at(BASE + HOUR)).unwrap();
    assert!(group.flush().is_err());
    assert_eq!(group.pending_len(), 2);
    assert_eq!(count_rows(&db, "activity_events"), 1, "only the event recorded before");
    assert_eq!(still_open(), 1);

    // Recovery at open (it would close the session at its event, 60 s): nothing closed, nothing recorded.
    group.discard_pending();
    drop(group);
    assert!(ActivityWriter::open(&db).is_err());
    assert_eq!(still_open(), 1);
    assert_eq!(count_rows(&db, "provenance WHERE event = 'recovery'"), 0);

    unfail_totals(&db);
    let w = ActivityWriter::open(&db).unwrap();
    assert_eq!(w.recovery().sessions.len(), 1);
    let reader = ActivityReader::open(&db);
    assert_eq!(
        as_map(reader.totals_by_project(&TimeRange::all()).unwrap()),
        oracle(&read_only(&db), (i64::MIN, i64::MAX))
    );
}

#[test]
fn prune_steps_respect_their_budget_delete_events_first_never_open_sessions_and_keep_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let open = w.start_session(&session(Some(9), BASE)).unwrap();
    // Events of the open session, all older than the cut: the last one stays (below).
    let open_events: Vec<_> = (0..5)
        .map(|k| event(Some(open), "focus", BASE + k * 3_600_000))
        .collect();
    w.record_batch(&open_events).unwrap();
    for i in 0..30 {
        let s = w.start_session(&session(Some(i % 3), BASE + i * MINUTE)).unwrap();
        let batch: Vec<_> = (0..20)
            .map(|k| event(Some(s), "input", BASE + i * MINUTE + k))
            .collect();
        w.record_batch(&batch).unwrap();
        w.end_session(s, at(BASE + i * MINUTE + 30_000)).unwrap();
    }
    let day = TimeRange::between(at(BASE), at(BASE + DAY));
    let reader = ActivityReader::open(&db);
    let before = reader.totals_by_project(&day).unwrap();
    let cut = at(BASE + DAY);

    let mut phases = Vec::new();
    let mut pages = 0;
    let mut vacuum_steps = 0;
    loop {
        let step = w.prune_step(cut, 100).unwrap();
        assert!(step.events_deleted + step.sessions_deleted <= 100, "{step:?}");
        if step.sessions_deleted > 0 {
            assert_eq!(count_rows(&db, "activity_events"), 1, "events go first: {step:?}");
        }
        phases.push((step.events_deleted, step.sessions_deleted));
        pages += step.pages_returned;
        if step.events_deleted + step.sessions_deleted == 0 {
            vacuum_steps += 1;
            // Each returns its whole budget but the last (it returned one page per step).
            assert!(step.done || step.pages_returned == 100, "{step:?}");
        }
        if step.done {
            break;
        }
    }
    assert_eq!(
        phases[..6],
        [(100, 0), (100, 0), (100, 0), (100, 0), (100, 0), (100, 0)]
    );
    assert_eq!(phases[6], (4, 30), "then the ended sessions, in the same budget");
    assert!(pages > 0, "the last steps returned the freed pages");
    assert!(
        vacuum_steps <= pages / 100 + 1,
        "{vacuum_steps} steps for {pages} pages"
    );
    assert_eq!(count_rows(&db, "activity_sessions"), 1, "the open session stays");
    assert_eq!(
        query_i64(&read_only(&db), "SELECT max(timestamp_ms) FROM activity_events"),
        BASE + 4 * 3_600_000,
        "and its last event, which a recovery ends it at"
    );
    assert_eq!(
        read_only(&db)
            .query_row("SELECT id FROM activity_sessions", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        open
    );
    assert_eq!(
        reader.totals_by_project(&day).unwrap(),
        before,
        "the totals outlive the sessions"
    );
    assert!(w.prune_step(cut, 100).unwrap().done, "nothing left");
    assert!(
        store_core::check::integrity_check(&read_only(&db)).unwrap().is_empty(),
        "integrity_check after pruning"
    );
    // The writer stops without ending the session (a crash): the next open ends it at its last event, with
    // its time (it was ended at its start, 0 s, when retention had deleted every event of it).
    drop(w);
    let w = ActivityWriter::open(&db).unwrap();
    let recovered = &w.recovery().sessions;
    assert_eq!(recovered.len(), 1);
    assert_eq!((recovered[0].id, recovered[0].end), (open, at(BASE + 4 * 3_600_000)));
    assert_eq!(
        reader.total_of_project(9, &day).unwrap().seconds,
        4 * 3600,
        "project 9's time, from the session retention kept open"
    );
}

/// activity.db as a build of schema 3 knew it.
static SCHEMA_V3: store_core::Schema = store_core::Schema {
    file_name: SCHEMA.file_name,
    owner: SCHEMA.owner,
    tools: SCHEMA.tools,
    application_id: SCHEMA.application_id,
    migrations: SCHEMA.migrations.split_at(3).0,
    incremental_vacuum: SCHEMA.incremental_vacuum,
    may_start_empty: SCHEMA.may_start_empty,
    predecessor: None,
    id_references: SCHEMA.id_references,
    derived_tables: SCHEMA.derived_tables,
    derived_check: None,
    append_only_tables: SCHEMA.append_only_tables,
    readers_read_from: None,
};

#[test]
fn a_file_at_schema_3_migrates_to_4_with_totals_from_its_sessions_and_a_reader_built_for_3_still_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    {
        let w = open_at_version(&db, &SCHEMA, 3).unwrap();
        w.conn()
            .execute_batch(&format!(
                "INSERT INTO activity_sessions (app, project_id, start_time_ms, end_time_ms, duration_seconds, end_reason)
                 VALUES ('code', 1, {b}, {b} + 61000, 61, 'ended'),
                        ('code', 1, {b} + 1000000, {b} + 1060000, 60, 'ended'),
                        ('web', NULL, {b} + 2000000, NULL, NULL, NULL),
                        ('web', NULL, -1, 59000, 59, 'ended'),
                        ('old', 2, -900001, NULL, 7, NULL),
                        ('code', 3, {b} + 5000, {b} + 10000, NULL, 'ended');
                 INSERT INTO activity_events (session_id, event_type, timestamp_ms) VALUES (3, 'focus', {b} + 2030000);",
                b = BASE
            ))
            .unwrap();
    }
    let w = open_upgraded_from(&db, 3);
    assert_eq!(
        w.recovery().sessions.len(),
        2,
        "recovered after the migration, totals included"
    );
    drop(w);
    let c = read_only(&db);
    let reader = ActivityReader::open(&db);
    for (from, to) in [
        (i64::MIN, i64::MAX),
        (BASE, BASE + DAY),
        (BASE + 1, BASE + 1_000_001),
        (-QUARTER * 2, 0),
        (i64::MIN, BASE + QUARTER),
    ] {
        let r = TimeRange {
            from: (from != i64::MIN).then(|| at(from)),
            to: (to != i64::MAX).then(|| at(to)),
        };
        assert_eq!(
            as_map(reader.totals_by_project(&r).unwrap()),
            oracle(&c, (from, to)),
            "{from}..{to}"
        );
    }
    let rows: i64 = c
        .query_row("SELECT count(*) FROM activity_totals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 6, "one row per project and bucket");

    // Fresh = upgraded.
    let fresh = dir.path().join("fresh/activity.db");
    drop(ActivityWriter::open(&fresh).unwrap());
    assert_eq!(fingerprint_of(&db), fingerprint_of(&fresh));

    // A reader of the previous build reads the migrated file: migration 4 is additive.
    let pool = store_core::ReadPool::new(&db, &SCHEMA_V3);
    let n: i64 = pool
        .read(|c| c.query_row("SELECT count(*) FROM activity_sessions", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 6);
}

#[test]
fn rebuilding_the_totals_gives_what_the_writer_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    for i in 0..200i64 {
        let start = BASE + (i * 7_919 * 1000) % (3 * DAY) - DAY;
        let s = w.start_session(&session(PROJECTS[(i % 5) as usize], start)).unwrap();
        if i % 7 != 0 {
            w.end_session(s, at(start + (i % 13) * 60_000)).unwrap();
        }
    }
    // A project whose id is 0 beside no project (both key 0, told apart by has_project), before the epoch
    // too, on bucket boundaries and just before them, started out of order.
    for (i, start) in [
        QUARTER,
        -QUARTER,
        -1,
        0,
        QUARTER - 1,
        -3 * DAY,
        5 * QUARTER,
        -QUARTER - 1,
    ]
    .into_iter()
    .enumerate()
    {
        for project in [None, Some(0)] {
            let s = w.start_session(&session(project, start)).unwrap();
            w.end_session(s, at(start + (i as i64 + 1) * 61_000)).unwrap();
        }
    }
    drop(w);
    let kept = |c: &Connection| -> Vec<(i64, i64, i64, i64, i64)> {
        c.prepare("SELECT * FROM activity_totals ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let by_writer = kept(&read_only(&db));
    let c = raw_writer(&db);
    // Sorted in SQL where temporary storage is on disk; summed from an index where it is in memory.
    for temp_store in ["FILE", "MEMORY", "DEFAULT"] {
        c.execute_batch(&format!(
            "PRAGMA temp_store = {temp_store}; DELETE FROM activity_totals"
        ))
        .unwrap();
        activity_store::rebuild_totals(&c).unwrap();
        assert_eq!(kept(&c), by_writer, "temp_store = {temp_store}");
    }
    let plan = store_core::testing::query_plan(&c, queries::ENDED_SESSIONS_BY_PROJECT);
    assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    // The migration's frozen backfill computes the same totals.
    let migration = SCHEMA.migrations[3].sql().unwrap();
    let backfill =
        &migration[migration.find("INSERT INTO activity_totals").unwrap()..migration.find("CREATE TRIGGER").unwrap()];
    c.execute_batch(&format!("DELETE FROM activity_totals; {backfill}"))
        .unwrap();
    assert_eq!(kept(&c), by_writer, "migration 4's backfill and rebuild_totals differ");
    assert_eq!(
        migration.matches(&queries::TOTALS_BUCKET_MS.to_string()).count(),
        21,
        "the backfill and the triggers use the same bucket width"
    );
}

/// A salvage that takes the derived tables whole from the damaged file copies every other row with the
/// schema's triggers off (`Schema::derived_tables`): right only while no trigger writes anything else.
#[test]
fn the_schemas_triggers_write_only_its_derived_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(ActivityWriter::open(&db).unwrap());
    let triggers: Vec<(String, String)> = read_only(&db)
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let names: Vec<&str> = triggers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["activity_totals_on_end", "activity_totals_on_insert_ended"]);
    for (name, sql) in &triggers {
        // The statements between BEGIN and END: the tables each UPDATE, INSERT ... INTO and DELETE FROM names.
        let body = &sql[sql.find("BEGIN").unwrap()..];
        let words: Vec<String> = body
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let written: Vec<&str> = words
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w.as_str() {
                "update" | "into" => words.get(i + 1),
                "delete" => words.get(i + 2),
                _ => None,
            })
            .map(String::as_str)
            .collect();
        assert_eq!(written, ["activity_totals"; 3], "{name} writes: {written:?}");
        assert!(written.iter().all(|t| SCHEMA.derived_tables.contains(t)), "{name}");
    }
}

/// A legacy file may leave a session with a project id that is text or a duration that is not whole (the
/// split copies them as they were): the totals are then what SQLite's own arithmetic makes of them, as the
/// triggers do, whatever the connection's temporary storage (without a sort, such a session sends the
/// computation back to SQL).
#[test]
fn totals_of_a_text_project_id_or_a_fractional_duration_are_sqlites_sums_whatever_the_temporary_storage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    drop(ActivityWriter::open(&db).unwrap());
    let c = raw_writer(&db);
    c.execute_batch(
        "INSERT INTO activity_sessions (app, project_id, start_time_ms, end_time_ms, duration_seconds) VALUES
             ('a', 1, 0, 60000, 60), ('a', 'abc', 1000, 61000, 60), ('a', 'abc', 2000000, 2060000, 60),
             ('a', 2, 2000, 3000, 1.5), ('a', 2, 1000000, 1001000, 1), ('a', NULL, 5000, 6000, 1);",
    )
    .unwrap();
    let totals = |c: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
        c.prepare("SELECT * FROM activity_totals ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| (0..5).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let by_triggers = totals(&c);
    assert_eq!(by_triggers.len(), 6, "{by_triggers:?}");
    for temp_store in ["FILE", "MEMORY"] {
        c.execute_batch(&format!(
            "PRAGMA temp_store = {temp_store}; DELETE FROM activity_totals"
        ))
        .unwrap();
        activity_store::rebuild_totals(&c).unwrap();
        assert_eq!(totals(&c), by_triggers, "temp_store = {temp_store}");
    }
}
