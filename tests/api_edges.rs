//! Odd but legal uses of the public API, each once a panic or a wrong answer.

use std::time::Duration;

use chrono::Utc;
use splitstore::activity_store::{ActivityReader, ActivityWriter, NewSession, WriterOptions};
use splitstore::config_store::{ConfigStore, NewProject, OpenOptions};
use splitstore::{CheckLevel, TimeRange};

fn problems(d: &std::path::Path) -> Vec<String> {
    splitstore::health::check(d, CheckLevel::None)
        .problems()
        .map(|(_, p)| format!("{}: {} / {}", p.code, p.message, p.remedy))
        .collect()
}

/// Before, a busy timeout past `i32::MAX` ms (24.8 days; an app meaning "wait as long as it takes") made
/// rusqlite panic "too big" inside `ConfigStore::open_with` / `ActivityWriter::open_with`.
#[test]
fn a_busy_timeout_past_what_sqlite_takes_waits_its_longest_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let open = OpenOptions {
        busy_timeout: Duration::MAX,
        ..Default::default()
    };
    let mut store = ConfigStore::open_with(&dir.path().join("config.db"), &open).unwrap();
    store.create_project(&NewProject::named("p")).unwrap();
    let options = WriterOptions {
        open,
        ..Default::default()
    };
    let mut writer = ActivityWriter::open_with(&dir.path().join("activity.db"), &options).unwrap();
    writer.start_session(&NewSession::new("a", Utc::now())).unwrap();
    writer
        .checkpoint(splitstore::activity_store::CheckpointMode::Truncate)
        .unwrap();
    writer.prune_before(Utc::now()).unwrap();
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
    let r = ActivityReader::open_in(dir.path());
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

/// Before, after the owner stopped cleanly (SQLite's close checkpointed the `-wal` into the file and deleted
/// it), the health banner, doctor and the next open all said `wal_gone` ("whatever it held since the last
/// checkpoint is not in the file"), though nothing was lost.
#[test]
fn a_clean_stop_after_the_shm_was_removed_is_not_taken_for_a_lost_wal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut w = ActivityWriter::open_in(d).unwrap();
    for _ in 0..10 {
        let s = w.start_session(&NewSession::new("a", Utc::now())).unwrap();
        w.end_session(s, Utc::now()).unwrap();
    }
    std::fs::remove_file(d.join("activity.db-shm")).unwrap();
    std::thread::sleep(store_core::open_database::CONFIRM_INTERVAL * 5);
    let e = w.start_session(&NewSession::new("a", Utc::now())).unwrap_err();
    assert_eq!(e.kind(), splitstore::ErrorKind::SharedMemoryReplaced, "{e}");
    drop(w);

    let after_stop = problems(d);
    assert!(
        after_stop.iter().all(|p| !p.starts_with("wal_gone")),
        "wal_gone said when nothing was lost: {after_stop:?}"
    );
    let n = ActivityReader::open_in(d).totals_by_project(&TimeRange::all()).unwrap();
    assert_eq!(n[0].sessions, 10, "nothing committed was lost");
    let w = ActivityWriter::open_in(d).unwrap();
    assert!(!w.owner().open_report().wal_gone, "{:?}", w.owner().open_report());
}
