//! `kill -9` of the real binary at random moments, then a clean rerun; and the one window that no rename
//! can close (between placing activity.db and config.db), simulated.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use migrate_split::fixtures::{LegacySpec, StopPoint};
use migrate_split::{Options, Outcome, split};
use store_core::Provenance;

fn split_ids(data: &Path) -> Vec<Option<String>> {
    ["activity.db", "config.db"]
        .iter()
        .map(|f| {
            let p = data.join(f);
            if !p.exists() {
                return None;
            }
            let conn = open_output(&p);
            Provenance::read_all(&conn)
                .unwrap()
                .into_iter()
                .rfind(|r| r.event == "split")
                .and_then(|r| r.detail)
        })
        .collect()
}

#[test]
fn kill_9_at_random_moments_then_a_clean_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(
        dir.path(),
        &LegacySpec {
            unparseable_times: true,
            ..LegacySpec::medium(3)
        },
    );
    let legacy_sha = sha256(&legacy);

    // How long an uninterrupted run takes here, to spread the kills over it.
    let probe = dir.path().join("probe");
    let started = Instant::now();
    let out = run_bin(&[
        "--legacy".as_ref(),
        legacy.as_os_str(),
        "--data-dir".as_ref(),
        probe.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full_run = started.elapsed();

    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill moments seeded with {seed}; a full run takes {full_run:?}");
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..6u32 {
        let data = dir.path().join(format!("data{round}"));
        let fraction = (next() % 1000) as f64 / 1000.0;
        let delay = full_run.mul_f64(0.05 + 0.9 * fraction);
        let mut child = bin()
            .args([
                "--legacy".as_ref(),
                legacy.as_os_str(),
                "--data-dir".as_ref(),
                data.as_os_str(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        kill9(&mut child);

        // Whatever the moment, two outputs in place are the same finished split, never half of one.
        let ids = split_ids(&data);
        if let [Some(a), Some(c)] = &ids[..] {
            assert_eq!(a, c, "round {round}: two outputs of different splits");
        }

        let out = run_bin(&[
            "--legacy".as_ref(),
            legacy.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--json".as_ref(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round} (killed after {delay:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let outcome = report["outcome"].as_str().unwrap();
        assert!(outcome == "split" || outcome == "already_split", "{outcome}");
        for (table, expected) in summary.counts() {
            assert_eq!(
                report["tables"][&table]["copied"], expected.copied,
                "round {round} {table}"
            );
            assert_eq!(
                report["tables"][&table]["rejected"], expected.rejected,
                "round {round} {table}"
            );
        }
        let names = listing(&data);
        assert!(
            names.iter().all(|n| !n.starts_with(".split-tmp-")),
            "round {round}: temporary files left: {names:?}"
        );
        let [Some(a), Some(c)] = &split_ids(&data)[..] else {
            panic!("round {round}: outputs missing after the rerun")
        };
        assert_eq!(a, c);
        for f in ["activity.db", "config.db"] {
            let conn = open_output(&data.join(f));
            assert!(
                store_core::check::quick_check(&conn).unwrap().is_empty(),
                "round {round} {f}"
            );
        }
        if round == 5 {
            assert_rows_match(&legacy, &data, 3);
        }
    }
    assert_eq!(sha256(&legacy), legacy_sha);
}

#[test]
fn a_kill_between_the_two_renames_is_treated_as_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
    let data = dir.path().join("data");
    let first = split(&legacy, &data, &Options::default()).unwrap();
    // As if the run had died after renaming activity.db and before renaming config.db (and so before it
    // recorded the split as finished).
    std::fs::rename(data.join("config.db"), dir.path().join("config.db.never-placed")).unwrap();
    std::fs::remove_file(store_core::conversion::record_path(&data)).unwrap();

    let report = split(&legacy, &data, &Options::default()).expect("the rerun splits again");
    assert_eq!(report.outcome, Outcome::Split, "not taken as done");
    assert_ne!(report.split_id, first.split_id);
    assert_eq!(report.tables, summary.counts());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("did not finish") && w.contains("config.db is missing")),
        "{:?}",
        report.warnings
    );
    let aside: Vec<_> = report
        .moved_aside
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("activity.db.unfinished-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", report.moved_aside);
    assert!(aside[0].exists(), "moved aside, never deleted");
    assert_rows_match(&legacy, &data, 3);
    let again = split(&legacy, &data, &Options::default()).unwrap();
    assert_eq!(again.outcome, Outcome::AlreadySplit);
}

#[test]
fn outputs_of_two_different_splits_are_treated_as_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &LegacySpec::small(2));
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    split(&legacy, &a, &Options::default()).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    split(&legacy, &b, &Options::default()).unwrap();
    std::fs::create_dir(&c).unwrap();
    std::fs::copy(a.join("activity.db"), c.join("activity.db")).unwrap();
    std::fs::copy(b.join("config.db"), c.join("config.db")).unwrap();
    let report = split(&legacy, &c, &Options::default()).unwrap();
    assert_eq!(report.outcome, Outcome::Split);
    assert_eq!(report.tables, summary.counts());
    assert_eq!(report.moved_aside.len(), 2, "{:?}", report.moved_aside);
}

#[test]
fn a_rejects_file_left_without_outputs_is_moved_aside() {
    // A run killed after placing the rejects file and before placing the outputs.
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("split-rejects.jsonl"), b"{\"table\":\"projects\"}\n").unwrap();
    let report = split(&legacy, &data, &Options::default()).unwrap();
    assert_eq!(report.outcome, Outcome::Split);
    let stale: Vec<_> = report
        .moved_aside
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("split-rejects.jsonl.stale-")
        })
        .collect();
    assert_eq!(stale.len(), 1, "{:?}", report.moved_aside);
    assert_eq!(std::fs::read(stale[0]).unwrap(), b"{\"table\":\"projects\"}\n");
    assert_ne!(
        std::fs::read(data.join("split-rejects.jsonl")).unwrap(),
        b"{\"table\":\"projects\"}\n"
    );
}

/// The child process of the test below: a split stopped for good at the point its role names
/// (`migrate_split::fixtures::split_stopping_at`).
#[test]
fn child_entry() {
    let Some((role, dir)) = store_core::testing::child_role() else {
        return;
    };
    let point = StopPoint::named(&role).unwrap_or_else(|| panic!("unknown role {role}"));
    migrate_split::fixtures::split_stopping_at(point, &dir);
}

/// A split of a legacy file outside the data directory, `kill -9`ed before it put anything in place or
/// between placing activity.db and config.db: the server's store, opened as the server opens it, refused
/// (it created an empty config.db beside the split activity.db, and the split then refused that directory),
/// and the remedy it gives, run verbatim, finishes that same split with every legacy row in place.
#[test]
fn a_split_killed_while_placing_its_outputs_is_finished_by_the_remedy_owners_give() {
    for point in [StopPoint::BetweenPlacements, StopPoint::BeforePlacing] {
        let role = point.name();
        let dir = tempfile::tempdir().unwrap();
        let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
        let data = dir.path().join("data");
        let mut child = store_core::testing::spawn_child("child_entry", role, dir.path());
        store_core::testing::wait_for_file(&dir.path().join("stopped"), Duration::from_secs(120));
        kill9(&mut child);
        let placed = point == StopPoint::BetweenPlacements;
        assert_eq!(data.join("activity.db").exists(), placed, "{role}");
        assert!(!data.join("config.db").exists(), "{role}");
        let killed_id = split_ids(&data)[0].clone();

        // The owners' stores refuse to start empty beside the half-placed split, naming the split.
        let err = config_store::ConfigStore::open_in(&data).unwrap_err();
        assert_eq!(err.kind(), store_core::ErrorKind::NotConvertedYet, "{role}: {err}");
        assert!(
            !data.join("config.db").exists(),
            "{role}: an empty config.db was created"
        );
        if !placed {
            let err = activity_store::ActivityWriter::open_in(&data).unwrap_err();
            assert_eq!(err.kind(), store_core::ErrorKind::NotConvertedYet, "{role}: {err}");
            assert!(
                !data.join("activity.db").exists(),
                "{role}: an empty activity.db was created"
            );
        }
        let remedy = store_core::Describe::remedy(&err);
        let command = remedy
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("no command in {remedy}"));
        assert!(
            command.starts_with("migrate-split --legacy ") && command.contains(&legacy.display().to_string()),
            "{role}: {remedy}"
        );

        // The remedy, run verbatim (with this build's migrate-split first on PATH).
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_migrate-split")).parent().unwrap();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let out = store_core::testing::output_within(
            std::process::Command::new("sh").args(["-c", command]).env("PATH", path),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "{role}: {out:?}");
        assert_rows_match(&legacy, &data, 3);
        let [Some(a), Some(c)] = &split_ids(&data)[..] else {
            panic!("{role}: outputs missing after the remedy")
        };
        assert_eq!(a, c, "{role}");
        if placed {
            assert_eq!(
                Some(a),
                killed_id.as_ref(),
                "{role}: the killed split is finished, not redone"
            );
        }
        let names = listing(&data);
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with(".split-tmp-") && !n.contains(".unfinished-")),
            "{role}: {names:?}"
        );
        assert!(store_core::conversion::recorded(&data).is_some(), "{role}");
        assert!(store_core::conversion::in_progress(&data).is_none(), "{role}");
        let again = split(&legacy, &data, &Options::default()).unwrap();
        assert_eq!(again.outcome, Outcome::AlreadySplit, "{role}");
        assert_eq!(again.tables, summary.counts(), "{role}");
    }
}
