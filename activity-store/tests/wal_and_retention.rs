//! The writer owns the WAL (bounded under polling readers, escalation past a pinning reader) and
//! retention (prune boundaries, chunked transactions, pages returned by the incremental vacuum).

mod common;

use std::time::{Duration, Instant};

use activity_store::{
    ActivityReader, ActivityWriter, CheckpointMode, GroupCommitPolicy, TimeRange, WalPolicy, WriterOptions,
};
use common::*;

/// The WAL file stays this small under a reader that polls without holding a transaction: the
/// autocheckpoint (1000 pages, ~4 MiB) restarts it, so it never needs journal_size_limit (16 MiB).
const POLLED_WAL_BOUND: u64 = 8 * 1024 * 1024;

#[test]
fn the_wal_stays_bounded_under_a_polling_reader() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let s = w.start_session(&session(Some(1), 0)).unwrap();

    // The reader polls between the writer's commits, as a server's timer does, on connections of its own.
    // Not on a thread polling without pause: the WAL is reset only at a write that finds no read
    // transaction open, so how far a WAL grows past the autocheckpoint size next to a concurrent reader
    // depends on how long the scheduler stretches that reader's transactions (up to 21.9 MB was seen on a
    // loaded 2-core machine), which no bound can hold. Here the WAL is reset at the first write after each
    // autocheckpoint, whatever the timing (it reaches 4181832 bytes every run), while a reader that leaves a
    // snapshot open after a call returns (the defect this test is for) still pins it (about 110 MiB).
    let r = ActivityReader::open(&db);
    let mut token = r.change_token().unwrap();
    let mut polls = 0;
    let mut max_wal = 0;
    let mut g = w.into_group_commit(GroupCommitPolicy {
        max_events: 100,
        max_delay: Duration::from_secs(3600),
    });
    for i in 0..200_000 {
        if g.push(event(Some(s), "focus", i)).unwrap().is_some() {
            max_wal = max_wal.max(g.writer().wal_bytes());
            token = r.changed_since(&token).unwrap().expect("the reader sees every commit");
            r.totals_by_project(&TimeRange::all()).unwrap();
            r.latest().unwrap();
            r.events_of_session(s, 50).unwrap();
            polls += 1;
        }
    }
    let w = g.into_writer().unwrap();

    assert_eq!(polls, 2_000, "the reader polled after every commit");
    assert_eq!(count_rows(&db, "activity_events"), 200_000);
    assert!(
        max_wal <= POLLED_WAL_BOUND,
        "WAL reached {max_wal} bytes under a polling reader (bound {POLLED_WAL_BOUND})"
    );
    assert_eq!(w.wal_status().escalations, 0, "no escalation was needed");
}

/// A reader in a transaction that has read the events, so it holds that snapshot until it ends; and how many
/// it saw.
fn pinning_reader(db: &std::path::Path) -> (rusqlite::Connection, i64) {
    let reader = read_only(db);
    reader.execute_batch("BEGIN").unwrap();
    let seen = reader
        .query_row("SELECT COUNT(*) FROM activity_events", [], |r| r.get(0))
        .unwrap();
    (reader, seen)
}

fn small_wal_policy() -> WriterOptions {
    WriterOptions {
        wal: WalPolicy {
            check_every_commits: 1,
            soft_limit_bytes: 64 * 1024,
            hard_limit_bytes: 256 * 1024,
            escalation_busy_timeout: Duration::from_millis(100),
            ..WalPolicy::default()
        },
        ..WriterOptions::default()
    }
}

#[test]
fn a_reader_pinning_a_snapshot_is_reported_and_does_not_stall_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open_with(&db, &small_wal_policy()).unwrap();
    w.record_event(&event(None, "focus", 0)).unwrap();

    // A careless reader: a transaction left open pins the snapshot it read.
    let (pinning, seen) = pinning_reader(&db);
    assert_eq!(seen, 1);

    let batch: Vec<_> = (0..500).map(|i| event(None, "focus", i)).collect();
    let start = Instant::now();
    for _ in 0..20 {
        w.record_batch(&batch).unwrap();
    }
    let wrote_in = start.elapsed();
    let status = w.wal_status().clone();
    assert!(status.wal_bytes > 256 * 1024, "{status:?}");
    assert!(status.pinned_by_reader, "{status:?}");
    assert_eq!(
        status.escalations, 1,
        "automatic escalations are spaced out: {status:?}"
    );
    assert!(
        wrote_in < Duration::from_secs(3),
        "20 batches took {wrote_in:?} behind a pinned reader"
    );

    let start = Instant::now();
    let status = w.maintain_wal().unwrap().clone();
    let stalled = start.elapsed();
    assert!(status.pinned_by_reader, "{status:?}");
    assert_eq!(status.escalations, 2);
    let last = status.last_checkpoint.unwrap();
    assert_eq!(last.mode, CheckpointMode::Truncate);
    assert!(last.busy, "{last:?}");
    // The normal busy timeout is 5 s: returning well before it shows the short one was used.
    assert!(
        stalled < Duration::from_secs(2),
        "escalation stalled the writer {stalled:?}"
    );
    let busy_ms: i64 = w
        .owner()
        .conn()
        .pragma_query_value(None, "busy_timeout", |r| r.get(0))
        .unwrap();
    assert_eq!(busy_ms, 5000, "the normal busy timeout is back");

    // Once the reader lets go, the next escalation truncates the WAL.
    pinning.execute_batch("COMMIT").unwrap();
    let status = w.maintain_wal().unwrap().clone();
    assert!(!status.pinned_by_reader, "{status:?}");
    assert!(!status.last_checkpoint.unwrap().busy);
    assert_eq!(status.wal_bytes, 0, "TRUNCATE left an empty WAL");
    assert_eq!(w.wal_bytes(), 0);
}

/// A writer whose checkpoints above 64 KiB are PASSIVE only, tried once an hour while paused, and paused as
/// soon as two in a row copy no further.
fn held_still_policy() -> WriterOptions {
    let mut options = small_wal_policy();
    options.wal.hard_limit_bytes = u64::MAX;
    options.wal.escalation_interval = Duration::from_secs(3600);
    options.wal.held_still_after = Duration::ZERO;
    options
}

/// SQLite's autocheckpoint setting on the writer's connection (0: paused).
fn autocheckpoint(w: &ActivityWriter) -> i64 {
    w.owner()
        .conn()
        .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
        .unwrap()
}

/// A reader that opened before the writer's commits (a database browser left open) pins the WAL. A
/// checkpoint tried past it copies nothing but still sorts the index of every frame not copied yet, and
/// SQLite's autocheckpoint tried one at every commit once the WAL passed 1000 pages: with such a reader the
/// daemon fell from 8,600 to about 200 commits/s within a minute, the WAL growing. While a reader holds the
/// WAL still, the writer turns autocheckpointing off and tries its own checkpoint at most once per
/// escalation interval; the first one that copies further turns it back on.
#[test]
fn a_pinning_reader_turns_autocheckpointing_off_until_a_checkpoint_gets_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open_with(&db, &held_still_policy()).unwrap();
    assert_eq!(autocheckpoint(&w), 1000);
    let (pinning, seen) = pinning_reader(&db);
    assert_eq!(seen, 0);

    let batch: Vec<_> = (0..500).map(|i| event(None, "focus", i)).collect();
    for _ in 0..5 {
        w.record_batch(&batch).unwrap();
    }
    let status = w.wal_status().clone();
    assert!(status.pinned_by_reader && status.autocheckpoint_paused, "{status:?}");
    assert_eq!(autocheckpoint(&w), 0);
    for _ in 0..20 {
        w.record_batch(&batch).unwrap();
    }
    assert_eq!(
        w.wal_status().checkpoints,
        status.checkpoints,
        "no checkpoint is tried past the reader within the interval: {:?}",
        w.wal_status()
    );

    pinning.execute_batch("COMMIT").unwrap();
    let status = w.maintain_wal().unwrap().clone();
    assert!(!status.pinned_by_reader && !status.autocheckpoint_paused, "{status:?}");
    assert_eq!(autocheckpoint(&w), 1000);
    assert_eq!(count_rows(&db, "activity_events"), 12_500);
}

/// Readers that come and go (a server's reports) each pin the WAL for a moment: every checkpoint finds one in
/// the way, yet copies further than the last. Autocheckpointing was paused at the first such checkpoint, and
/// the WAL grew to a gigabyte between two tries; it stays on.
#[test]
fn readers_that_come_and_go_leave_autocheckpointing_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open_with(&db, &held_still_policy()).unwrap();
    let batch: Vec<_> = (0..500).map(|i| event(None, "focus", i)).collect();
    w.record_batch(&batch).unwrap();
    let mut pinned = 0;
    for _ in 0..10 {
        let (reader, _) = pinning_reader(&db);
        w.record_batch(&batch).unwrap();
        pinned += usize::from(w.wal_status().pinned_by_reader);
        reader.execute_batch("COMMIT").unwrap();
    }
    assert!(pinned >= 5, "the readers were in the way: {pinned} of 10");
    assert!(!w.wal_status().autocheckpoint_paused, "{:?}", w.wal_status());
    assert_eq!(autocheckpoint(&w), 1000);
}

#[test]
fn between_soft_and_hard_limits_the_writer_runs_passive_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut options = small_wal_policy();
    options.wal.hard_limit_bytes = u64::MAX;
    options.wal.autocheckpoint_pages = 100_000; // keep SQLite's own checkpoints out of the way
    let mut w = ActivityWriter::open_with(&db, &options).unwrap();
    let batch: Vec<_> = (0..500).map(|i| event(None, "focus", i)).collect();
    for _ in 0..5 {
        w.record_batch(&batch).unwrap();
    }
    let status = w.wal_status();
    assert!(status.checkpoints >= 1, "{status:?}");
    let last = status.last_checkpoint.unwrap();
    assert_eq!(last.mode, CheckpointMode::Passive);
    assert_eq!(
        last.checkpointed_frames, last.wal_frames,
        "nothing pinned: everything copied"
    );
    assert!(!status.pinned_by_reader);
    assert_eq!(status.escalations, 0);
}

#[test]
fn prune_keeps_open_sessions_and_respects_exact_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let t = 1_000_000;
    let old_ended = w.start_session(&session(Some(1), 10_000)).unwrap();
    w.end_session(old_ended, at(t - 1)).unwrap();
    let ended_at_t = w.start_session(&session(Some(1), 20_000)).unwrap();
    w.end_session(ended_at_t, at(t)).unwrap();
    let old_open = w.start_session(&session(Some(2), 30_000)).unwrap();
    let spans_t = w.start_session(&session(None, t - 5_000)).unwrap();
    w.end_session(spans_t, at(t + 5_000)).unwrap();
    let after = w.start_session(&session(None, t + 1)).unwrap();
    w.end_session(after, at(t + 2)).unwrap();
    for ms in [0, t - 1, t, t + 1] {
        w.record_event(&event(Some(old_open), "focus", ms)).unwrap();
    }

    let report = w.prune_before(at(t)).unwrap();
    assert_eq!((report.events_deleted, report.sessions_deleted), (2, 1), "{report:?}");

    let c = read_only(&db);
    let ids = |sql: &str| -> Vec<i64> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        ids("SELECT id FROM activity_sessions ORDER BY id"),
        vec![ended_at_t, old_open, spans_t, after],
        "only the session that ended before t is gone; the open one stays however old"
    );
    assert_eq!(
        ids("SELECT timestamp_ms FROM activity_events ORDER BY id"),
        vec![t, t + 1],
        "events stamped before t are gone, the one at t stays"
    );
    let again = w.prune_before(at(t)).unwrap();
    assert_eq!((again.events_deleted, again.sessions_deleted), (0, 0));
}

#[test]
fn prune_works_in_bounded_transactions_and_returns_pages_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let options = WriterOptions {
        prune_chunk_rows: 1_000,
        ..WriterOptions::default()
    };
    let mut w = ActivityWriter::open_with(&db, &options).unwrap();
    let s = w.start_session(&session(Some(1), 0)).unwrap();
    for chunk in 0..10 {
        let batch: Vec<_> = (0..1_000).map(|i| event(Some(s), "focus", chunk * 1_000 + i)).collect();
        w.record_batch(&batch).unwrap();
    }
    w.checkpoint(CheckpointMode::Truncate).unwrap();
    let pages = |c: &rusqlite::Connection| -> (i64, i64) {
        (
            c.pragma_query_value(None, "page_count", |r| r.get(0)).unwrap(),
            c.pragma_query_value(None, "freelist_count", |r| r.get(0)).unwrap(),
        )
    };
    let (pages_before, free_before) = pages(&read_only(&db));
    assert_eq!(free_before, 0);
    let file_before = std::fs::metadata(&db).unwrap().len();

    let report = w.prune_before(at(9_500)).unwrap();
    assert_eq!(report.events_deleted, 9_500);
    // 10 chunks of 1000 events (the last one short), 1 of sessions, then vacuum steps.
    assert!(report.transactions >= 11, "{report:?}");
    assert_eq!(report.pages_before, pages_before);
    assert!(report.pages_after < pages_before / 2, "{report:?}");
    assert_eq!(report.freelist_after, 0);
    assert!(!report.checkpoint.unwrap().busy);

    let (pages_after, free_after) = pages(&read_only(&db));
    assert_eq!(pages_after, report.pages_after);
    assert_eq!(free_after, 0, "the incremental vacuum returned every free page");
    let file_after = std::fs::metadata(&db).unwrap().len();
    assert!(
        file_after < file_before / 2,
        "the file shrank: {file_before} -> {file_after} bytes"
    );
    assert_eq!(count_rows(&db, "activity_events"), 500);
    assert!(
        store_core::check::integrity_check(&read_only(&db)).unwrap().is_empty(),
        "integrity_check after prune"
    );
}

#[test]
fn the_page_freed_by_a_delete_comes_back_only_through_incremental_vacuum() {
    // auto_vacuum=INCREMENTAL (not FULL, not NONE): a delete leaves pages on the free list, and the
    // incremental vacuum in prune_before is what returns them.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let mut w = ActivityWriter::open(&db).unwrap();
    let batch: Vec<_> = (0..5_000).map(|i| event(None, "focus", i)).collect();
    w.record_batch(&batch).unwrap();
    drop(w);
    raw_writer(&db).execute_batch("DELETE FROM activity_events").unwrap();
    let free: i64 = read_only(&db)
        .pragma_query_value(None, "freelist_count", |r| r.get(0))
        .unwrap();
    assert!(free > 10, "a delete leaves free pages ({free})");
    let mut w = ActivityWriter::open(&db).unwrap();
    let report = w.prune_before(at(0)).unwrap();
    assert_eq!(report.events_deleted, 0);
    assert_eq!(report.freelist_after, 0);
    assert!(report.pages_before - report.pages_after >= free, "{report:?}");
}
