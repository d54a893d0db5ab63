//! A split of each legacy version, checked the way a user would: every row accounted for and equal,
//! the legacy file untouched, the outputs private, WAL, sound, with a fresh store's schema, and a second
//! run that changes nothing.

mod common;

use std::path::Path;

use common::*;
use migrate_split::{Options, Outcome, REDACTED, split};
use rusqlite::OptionalExtension;
use store_core::testing::schema_fingerprint;
use store_core::{OwnerConnection, Provenance, Schema};

fn fresh_fingerprint(schema: &'static Schema) -> String {
    let dir = tempfile::tempdir().unwrap();
    let owner = OwnerConnection::open(&schema.path_in(dir.path()), schema).unwrap();
    schema_fingerprint(owner.conn()).unwrap()
}

/// activity.db's running totals are what the writer would have kept for the copied sessions: reports
/// from them equal the aggregation over the sessions, for all time and for each day.
fn assert_totals_match_sessions(db: &Path) {
    let conn = open_output(db);
    let oracle = |from: i64, to: i64| -> Vec<(Option<i64>, i64, i64)> {
        conn.prepare(
            "SELECT project_id, SUM(IFNULL(duration_seconds, 0)), COUNT(*) FROM activity_sessions
             WHERE start_time_ms >= ?1 AND start_time_ms < ?2 GROUP BY project_id ORDER BY project_id",
        )
        .unwrap()
        .query_map((from, to), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    let (first, last): (i64, i64) = conn
        .query_row(
            "SELECT MIN(start_time_ms), MAX(start_time_ms) FROM activity_sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let reader = activity_store::ActivityReader::open(db);
    let day = 86_400_000;
    let mut ranges = vec![(i64::MIN, i64::MAX)];
    ranges.extend((first.div_euclid(day)..=last.div_euclid(day)).map(|d| (d * day, (d + 1) * day)));
    for (from, to) in ranges {
        let range = activity_store::TimeRange {
            from: (from != i64::MIN).then(|| chrono::DateTime::from_timestamp_millis(from).unwrap()),
            to: (to != i64::MAX).then(|| chrono::DateTime::from_timestamp_millis(to).unwrap()),
        };
        let got: Vec<_> = reader
            .totals_by_project(&range)
            .unwrap()
            .into_iter()
            .map(|t| (t.project_id, t.seconds, t.sessions))
            .collect();
        assert_eq!(got, oracle(from, to), "totals over {from}..{to}");
    }
}

fn check_version(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(version));
    let legacy_sha = sha256(&legacy);
    let data = dir.path().join("data");

    let report = split(&legacy, &data, &Options::default()).expect("split succeeds");
    assert_eq!(report.outcome, Outcome::Split);
    assert_eq!(report.legacy.version, version);
    assert_eq!(report.legacy.sha256, legacy_sha);
    assert_eq!(report.tables, summary.counts(), "counts reconcile with the fixture");
    for (name, c) in &report.tables {
        assert_eq!(c.legacy, c.copied + c.rejected, "{name}");
    }
    assert_eq!(report.unknown_tables, summary.unknown_tables);
    assert!(
        report.warnings.iter().any(|w| w.contains("addon_focus_stats")),
        "{:?}",
        report.warnings
    );
    assert!(summary.rejected() > 0, "the fixture has rejects to check");
    let rejects_path = data.join("split-rejects.jsonl");
    assert_eq!(report.rejects_file.as_deref(), Some(rejects_path.as_path()));

    // Nothing but the outputs, the rejects file, the owner locks and the private folder (holding the record
    // of this split) is left.
    assert_eq!(
        listing(&data),
        [
            ".private",
            "activity.db",
            "activity.db.lock",
            "config.db",
            "config.db.lock",
            "split-rejects.jsonl"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        listing(&data.join(".private")),
        [
            "activity.db.key-check.json",
            "config.db.key-check.json",
            "converted.json"
        ]
        .map(String::from)
        .into(),
        "the split is recorded, so no owner starts an empty file beside the legacy one (and whether its outputs \
         are encrypted)"
    );
    assert_eq!(sha256(&legacy), legacy_sha, "the legacy file is unchanged");
    for f in [
        "activity.db",
        "config.db",
        "split-rejects.jsonl",
        "activity.db.lock",
        "config.db.lock",
        ".private/converted.json",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data), 0o700);
    for f in ["activity.db", "config.db"] {
        let header = std::fs::read(data.join(f)).unwrap();
        assert_eq!((header[18], header[19]), (2, 2), "{f} is in WAL mode");
    }

    // A second run finds the recorded split and changes nothing.
    let before = snapshot(&data);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = split(&legacy, &data, &Options::default()).expect("second run succeeds");
    assert_eq!(again.outcome, Outcome::AlreadySplit);
    assert_eq!(again.split_id, report.split_id);
    assert_eq!(again.tables, report.tables);
    assert_eq!(snapshot(&data), before, "bytes and mtimes unchanged");

    // Every row, every column.
    let rejected = assert_rows_match(&legacy, &data, version);
    assert_eq!(rejected.len() as u64, summary.rejected());

    // The rejects file: valid JSON lines, settings values redacted, no secret anywhere.
    let text = std::fs::read_to_string(&rejects_path).unwrap();
    for ((table, _), line) in rejects(&rejects_path) {
        if table == "settings" {
            assert_eq!(line["row"]["value"], REDACTED, "{line}");
        }
    }
    for secret in &summary.secret_values {
        assert!(
            !text.contains(secret.as_str()),
            "a settings value leaked into the rejects file"
        );
    }
    // Calendar feed URLs carry private tokens: a rejected subscription is named by its id, name and feed
    // host, never by its URL.
    assert_eq!(
        summary.secret_urls.is_empty(),
        version < 2,
        "calendars came with version 2"
    );
    for url in &summary.secret_urls {
        assert!(
            !text.contains(url.as_str()),
            "a calendar feed URL leaked into the rejects file"
        );
    }
    assert!(
        !text.contains("private-"),
        "a feed's private token leaked into the rejects file"
    );
    let rejected_feeds: Vec<serde_json::Value> = rejects(&rejects_path)
        .into_iter()
        .filter(|((table, _), _)| table == "calendar_subscriptions")
        .map(|(_, line)| line)
        .collect();
    if version >= 2 && summary.tables["calendar_subscriptions"].counts.rejected > 0 {
        assert!(!rejected_feeds.is_empty());
        for line in &rejected_feeds {
            assert_eq!(line["row"]["url"], "https://calendar.example.com/<redacted>", "{line}");
            assert!(
                line["id"].as_i64().is_some() && line["row"]["name"].is_string(),
                "{line}"
            );
        }
    }
    if version >= 3 {
        assert!(text.contains("\"reason\":\"unparseable time in updated_at"), "{text}");
    }
    assert!(text.contains("duplicate of id "), "{text}");
    assert!(text.contains("orphan: project_id "), "{text}");

    for (file, schema) in [
        ("activity.db", &activity_store::SCHEMA),
        ("config.db", &config_store::SCHEMA),
    ] {
        let conn = open_output(&data.join(file));
        assert!(store_core::check::integrity_check(&conn).unwrap().is_empty(), "{file}");
        assert!(
            store_core::check::foreign_key_violations(&conn).unwrap().is_empty(),
            "{file}"
        );
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(
            schema_fingerprint(&conn).unwrap(),
            fresh_fingerprint(schema),
            "{file} has a fresh store's schema"
        );
        let splits: Vec<Provenance> = Provenance::read_all(&conn)
            .unwrap()
            .into_iter()
            .filter(|p| p.event == "split")
            .collect();
        assert_eq!(splits.len(), 1, "{file}");
        assert_eq!(splits[0].source_sha256.as_deref(), Some(legacy_sha.as_str()));
        assert_eq!(splits[0].source_version, Some(i64::from(version)));
        let detail = splits[0].detail.as_deref().unwrap();
        assert!(detail.contains(report.split_id.as_deref().unwrap()), "{detail}");
        for secret in &summary.secret_values {
            assert!(!detail.contains(secret.as_str()));
        }
    }

    // AUTOINCREMENT counters cover every id the legacy file ever used or referenced, so no new row can
    // take the id of a deleted project or session that something still names.
    let config = open_output(&data.join("config.db"));
    let activity = open_output(&data.join("activity.db"));
    let seq = |conn: &rusqlite::Connection, table: &str| -> i64 {
        conn.query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table], |r| r.get(0))
            .optional()
            .unwrap()
            .unwrap_or(0)
    };
    let legacy_conn = open_legacy(&legacy);
    let max = |sql: &str| -> i64 { legacy_conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let referenced_project = max("SELECT max(project_id) FROM activity_sessions");
    assert!(seq(&config, "projects") >= referenced_project);
    assert!(seq(&config, "projects") >= max("SELECT max(seq) FROM sqlite_sequence WHERE name = 'projects'"));
    assert!(seq(&activity, "activity_sessions") >= max("SELECT max(session_id) FROM activity_events"));
    assert!(
        seq(&activity, "activity_events") >= max("SELECT max(id) FROM activity_events"),
        "the counter is at least the largest id"
    );

    // Settings flagged as credentials.
    let secret_keys: Vec<String> = config
        .prepare("SELECT key FROM settings WHERE secret = 1 ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut expected_keys = summary.secret_keys.clone();
    expected_keys.sort();
    assert_eq!(secret_keys, expected_keys);
    assert!(!secret_keys.iter().any(|k| k == "hotkey"));
    // Older rows written before a version's columns existed read their defaults.
    if version == 3 {
        let old_rows: i64 = activity
            .query_row(
                "SELECT count(*) FROM activity_events WHERE idle_seconds IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(old_rows > 0);
    }
    assert_unknown_table_left_alone(&legacy, &summary.unknown_tables);

    // Last: a reader leaves -wal/-shm beside the file.
    assert_totals_match_sessions(&data.join("activity.db"));
}

fn assert_unknown_table_left_alone(legacy: &Path, unknown: &[String]) {
    let conn = open_legacy(legacy);
    for t in unknown {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap();
        assert!(n > 0, "{t} is still in the legacy file");
    }
}

#[test]
fn version_1_splits_with_every_row_accounted_for() {
    check_version(1);
}

#[test]
fn version_2_splits_with_every_row_accounted_for() {
    check_version(2);
}

#[test]
fn version_3_splits_with_every_row_accounted_for() {
    check_version(3);
}

#[test]
fn dangling_references_to_ids_too_large_to_track_in_memory_are_still_counted() {
    // Duplicates and orphans are part of every fixture; here a session with a huge id (past what the split
    // tracks in memory) and events naming it and a missing one check the SQL fallback for dangling counts.
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &migrate_split::fixtures::LegacySpec::small(3));
    {
        let conn = rusqlite::Connection::open(&legacy).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO activity_sessions (id, app, start_time) VALUES (4611686018427387904, 'Huge', '1704103200000');
             INSERT INTO activity_events (session_id, event_type, timestamp)
                 VALUES (4611686018427387904, 'focus', '1704103200000'),
                        (4611686018427387000, 'focus', '1704103200000');",
        )
        .unwrap();
    }
    let data = dir.path().join("data");
    let report = split(&legacy, &data, &Options::default()).unwrap();
    let mut expected = summary.counts();
    let sessions = expected.get_mut("activity_sessions").unwrap();
    sessions.legacy += 1;
    sessions.copied += 1;
    let events = expected.get_mut("activity_events").unwrap();
    events.legacy += 2;
    events.copied += 2;
    events.dangling += 1;
    assert_eq!(report.tables, expected);
    assert_rows_match(&legacy, &data, 3);
    // Rows were rejected (duplicates, orphans), so the file exists; its lines are all of those kinds.
    let rejects_path = data.join("split-rejects.jsonl");
    for line in rejects(&rejects_path).values() {
        let reason = line["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("duplicate of id ")
                || reason.starts_with("orphan: ")
                || reason.starts_with("key is NULL"),
            "{reason}"
        );
    }
}
