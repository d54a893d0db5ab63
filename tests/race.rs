//! The bug this project ends, as a test: the daemon and the server race at full speed as two real
//! processes on one data directory (each the only writer of its file, each reading the other's), round after
//! round. Afterwards every event the daemon acknowledged and every project the server kept is in its file,
//! and every project it deleted is gone. In the legacy design the later writer erased the other's changes.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;

use migrate_split::fixtures::{LegacySpec, build};
use migrate_split::{Options, split};
use std::time::Duration;

use support::{query_column, read_only, splitstore, wait_within};

/// Starts a subcommand with its stdout read line by line on a thread.
fn start(args: &[&str]) -> (Child, JoinHandle<Vec<String>>) {
    let mut child = splitstore()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).collect());
    (child, reader)
}

#[test]
fn daemon_and_server_racing_lose_nothing_round_after_round() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let legacy = dir.path().join("legacy.db");
    build(&LegacySpec::small(3), &legacy).unwrap();
    split(&legacy, &data, &Options::default()).unwrap();
    let data_arg = data.to_str().unwrap();
    let config_path = data.join("config.db");
    let activity_path = data.join("activity.db");
    let users_projects = query_column::<i64, HashSet<_>>(&read_only(&config_path), "SELECT id FROM projects");
    let mut acked: HashSet<i64> = HashSet::new();
    let mut kept: HashSet<i64> = HashSet::new();
    let mut deleted: HashSet<i64> = HashSet::new();

    for round in 0..3 {
        // Alternate commit modes: one commit per event, then group commits.
        let mut daemon_args = vec!["daemon", "--data-dir", data_arg, "--seconds", "1.5", "--print-acks"];
        if round % 2 == 1 {
            daemon_args.extend(["--batch", "200"]);
        }
        let (mut daemon, daemon_out) = start(&daemon_args);
        let (mut server, server_out) =
            start(&["server", "--data-dir", data_arg, "--seconds", "1.5", "--print-changes"]);
        // --seconds 1.5 each: a minute is a hang, not a slow machine.
        assert!(
            wait_within(&mut daemon, Duration::from_secs(60)).success(),
            "daemon round {round}"
        );
        assert!(
            wait_within(&mut server, Duration::from_secs(60)).success(),
            "server round {round}"
        );

        let daemon_lines = daemon_out.join().unwrap();
        let round_acks: Vec<i64> = daemon_lines
            .iter()
            .filter_map(|l| l.strip_prefix("ack "))
            .map(|id| id.parse().unwrap())
            .collect();
        assert!(
            round_acks.len() > 1000,
            "round {round}: the daemon wrote at speed ({})",
            round_acks.len()
        );
        let summary = daemon_lines.last().unwrap();
        assert!(
            summary.starts_with(&format!("daemon: events={} ", round_acks.len())),
            "{summary}"
        );
        acked.extend(round_acks);

        let server_lines = server_out.join().unwrap();
        let mut created = 0;
        for line in &server_lines {
            if let Some(id) = line.strip_prefix("created ") {
                kept.insert(id.parse().unwrap());
                created += 1;
            } else if let Some(id) = line.strip_prefix("deleted ") {
                let id: i64 = id.parse().unwrap();
                assert!(kept.remove(&id), "the server deletes only what it created");
                deleted.insert(id);
            }
        }
        assert!(created > 20, "round {round}: the server wrote at speed ({created})");
        let summary = server_lines.last().unwrap();
        assert!(
            summary.starts_with(&format!("server: projects_created={created} ")),
            "{summary}"
        );
        let reports: u64 = summary.rsplit("reports=").next().unwrap().parse().unwrap();
        assert!(
            reports > 0,
            "the server read activity.db while the daemon wrote it: {summary}"
        );

        // After every round: everything acknowledged is in its file.
        let events = query_column::<i64, HashSet<_>>(&read_only(&activity_path), "SELECT id FROM activity_events");
        let missing: Vec<_> = acked.difference(&events).take(5).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged events missing from activity.db: {missing:?}"
        );
        let projects = query_column::<i64, HashSet<_>>(&read_only(&config_path), "SELECT id FROM projects");
        let lost: Vec<_> = kept
            .union(&users_projects)
            .filter(|id| !projects.contains(id))
            .take(5)
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: projects missing from config.db: {lost:?}"
        );
        assert!(
            deleted.is_disjoint(&projects),
            "round {round}: a deleted project came back"
        );
        assert_eq!(
            projects.len(),
            users_projects.len() + kept.len(),
            "round {round}: nothing else appeared"
        );
    }
    for path in [&activity_path, &config_path] {
        let problems = store_core::check::integrity_check(&read_only(path)).unwrap();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
    }
}
