//! Shared by activity-store's integration tests: row builders and raw views of the file.
#![allow(dead_code)]

use std::path::Path;

use activity_store::{NewEvent, NewSession};
use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// A time `ms` milliseconds after the epoch.
pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time in range")
}

pub fn session(project_id: Option<i64>, start_ms: i64) -> NewSession {
    NewSession {
        app: "code".into(),
        title: Some("main.rs - splitstore".into()),
        url: None,
        domain: None,
        project_id,
        start: at(start_ms),
        is_idle: false,
    }
}

pub fn event(session_id: Option<i64>, event_type: &str, at_ms: i64) -> NewEvent {
    NewEvent {
        session_id,
        event_type: event_type.into(),
        app: Some("code".into()),
        title: Some("main.rs - splitstore".into()),
        url: Some("https://example.com/a".into()),
        at: at(at_ms),
        idle_seconds: None,
    }
}

/// A plain read-write connection that bypasses the owner lock: for installing fault-injection triggers.
pub fn raw_writer(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open read-write");
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c
}

/// Installs a trigger that fails any insert of an event of type `poison`.
pub fn install_poison_trigger(path: &Path) {
    raw_writer(path)
        .execute_batch(
            "CREATE TRIGGER poison_events BEFORE INSERT ON activity_events
             WHEN NEW.event_type = 'poison'
             BEGIN SELECT RAISE(ABORT, 'injected failure: poison event'); END;",
        )
        .expect("install trigger");
}

/// Opens `db` as its owner, which migrates it: asserts it came from schema `from` to this build's, with a
/// pre-migration backup taken.
#[track_caller]
pub fn open_upgraded_from(db: &Path, from: u32) -> activity_store::ActivityWriter {
    let w = activity_store::ActivityWriter::open(db).unwrap();
    let report = w.owner().open_report().upgrade.clone();
    assert_eq!(
        (report.from_version, report.to_version),
        (from, activity_store::SCHEMA.end_version())
    );
    assert!(
        report.backup.is_some_and(|b| b.exists()),
        "a pre-migration backup was taken"
    );
    w
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::{count_rows, read_only};
