//! The cost of encryption at rest (`--features encryption`): the same writer, the same events, into a
//! plaintext activity.db and an encrypted one (SQLCipher, raw 256-bit key), in one run of one binary.
//!
//! Criterion groups (mean time and throughput of each side):
//! - `encryption_one_per_commit`: one event per commit;
//! - `encryption_group_commit_1000`: 1000 single pushes into a group-commit buffer, committed together.
//!
//! As in `benches/activity.rs`, each group comes with an *interleaved* run printed as a `ratio ...` line
//! (the two sides alternate in short chunks, in random order each round, so both see the same machine and
//! write as many events); the README's numbers are read off those lines. The two sides write two files (one
//! cannot be both), each checkpointing on its own; every comparison starts on new files.
//!
//! `cargo bench --features encryption --bench encryption`

use std::path::Path;
use std::time::Duration;

mod common;

use activity_store::{ActivityWriter, GroupCommitPolicy, NewEvent, WriterOptions};
use common::{Clock, interleave, sample_events};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store_core::{Key, OpenOptions};

const MEASURE: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(2);
/// How long each interleaved comparison runs.
const INTERLEAVED: Duration = Duration::from_secs(8);
const GROUP: GroupCommitPolicy = GroupCommitPolicy {
    max_events: 1000,
    max_delay: Duration::from_secs(3600),
};

fn writer(dir: &Path, key: Option<Key>) -> ActivityWriter {
    let options = WriterOptions {
        open: OpenOptions {
            key,
            ..OpenOptions::default()
        },
        ..WriterOptions::default()
    };
    ActivityWriter::open_with(&dir.join("activity.db"), &options).unwrap()
}

/// Pushes every event into the group; returns the events committed meanwhile.
fn push_all(group: &mut activity_store::GroupCommit, clock: &Clock, events: &mut [NewEvent]) -> u64 {
    clock.stamp(events);
    let mut committed = 0;
    for e in events.iter() {
        if let Some(c) = group.push(e.clone()).unwrap() {
            committed += c.event_ids.len() as u64;
        }
    }
    committed
}

/// A plaintext and an encrypted writer on two new files in `dir`, and their event buffers and clocks.
struct Sides {
    plain: ActivityWriter,
    enc: ActivityWriter,
    plain_events: Vec<NewEvent>,
    enc_events: Vec<NewEvent>,
    plain_clock: Clock,
    enc_clock: Clock,
}

fn sides(dir: &Path, name: &str) -> Sides {
    Sides {
        plain: writer(&dir.join(name).join("plain"), None),
        enc: writer(&dir.join(name).join("encrypted"), Some(Key::generate().unwrap())),
        plain_events: sample_events(1000),
        enc_events: sample_events(1000),
        plain_clock: Clock::starting_at(1_700_000_000_000),
        enc_clock: Clock::starting_at(1_700_000_000_000),
    }
}

/// One event per commit into `w`.
fn one(w: &mut ActivityWriter, clock: &Clock, events: &mut [NewEvent]) {
    clock.stamp(&mut events[..1]);
    w.record_event(&events[0]).unwrap();
}

// Each comparison starts on two new files: the side that commits faster would otherwise work on a larger
// file (deeper indexes) in the next one. The interleaved run, which writes as many events to each side,
// comes first; criterion's (which runs each side for a fixed time) after it, on two more new files.
fn encryption(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();

    // 250 commits per chunk: about one autocheckpoint cycle of each file.
    let mut s = sides(dir.path(), "one-interleaved");
    interleave(
        || {
            (0..250).for_each(|_| one(&mut s.enc, &s.enc_clock, &mut s.enc_events));
            250
        },
        || {
            (0..250).for_each(|_| one(&mut s.plain, &s.plain_clock, &mut s.plain_events));
            250
        },
        INTERLEAVED,
    )
    .print("encryption_one_per_commit", "encrypted", "plaintext");
    let mut s = sides(dir.path(), "one-criterion");
    let mut g = c.benchmark_group("encryption_one_per_commit");
    g.throughput(Throughput::Elements(1))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(50);
    g.bench_function("plaintext", |b| {
        b.iter(|| one(&mut s.plain, &s.plain_clock, &mut s.plain_events))
    });
    g.bench_function("encrypted", |b| {
        b.iter(|| one(&mut s.enc, &s.enc_clock, &mut s.enc_events))
    });
    g.finish();

    let s = sides(dir.path(), "group-interleaved");
    let (mut plain, mut enc) = (s.plain.into_group_commit(GROUP), s.enc.into_group_commit(GROUP));
    let (mut plain_events, mut enc_events) = (s.plain_events, s.enc_events);
    interleave(
        || push_all(&mut enc, &s.enc_clock, &mut enc_events),
        || push_all(&mut plain, &s.plain_clock, &mut plain_events),
        INTERLEAVED,
    )
    .print("encryption_group_commit_1000", "encrypted", "plaintext");
    let s = sides(dir.path(), "group-criterion");
    let (mut plain, mut enc) = (s.plain.into_group_commit(GROUP), s.enc.into_group_commit(GROUP));
    let (mut plain_events, mut enc_events) = (s.plain_events, s.enc_events);
    let mut g = c.benchmark_group("encryption_group_commit_1000");
    g.throughput(Throughput::Elements(1000))
        .measurement_time(MEASURE)
        .warm_up_time(WARM_UP)
        .sample_size(30);
    g.bench_function("plaintext", |b| {
        b.iter(|| push_all(&mut plain, &s.plain_clock, &mut plain_events))
    });
    g.bench_function("encrypted", |b| {
        b.iter(|| push_all(&mut enc, &s.enc_clock, &mut enc_events))
    });
    g.finish();
}

criterion_group!(benches, encryption);
criterion_main!(benches);
