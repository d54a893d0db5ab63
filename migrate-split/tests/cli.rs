//! The binary as an operator runs it: one JSON object on stdout with --json, the summary on stderr, exit
//! codes, and no settings value anywhere it prints or writes besides config.db itself.

mod common;

use std::ffi::OsStr;

use common::*;
use migrate_split::fixtures::LegacySpec;

fn args<'a>(legacy: &'a std::path::Path, data: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a OsStr> {
    let mut v: Vec<&OsStr> = vec![
        "--legacy".as_ref(),
        legacy.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    v.extend(extra.iter().map(|s| OsStr::new(*s)));
    v
}

fn one_json_object(stdout: &[u8]) -> serde_json::Value {
    let text = std::str::from_utf8(stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "exactly one line on stdout: {text}");
    let value: serde_json::Value = serde_json::from_str(text).expect("one JSON object");
    assert!(value.is_object());
    value
}

fn assert_no_secret(summary: &migrate_split::fixtures::FixtureSummary, what: &str, text: &str) {
    assert!(!summary.secret_values.is_empty());
    for secret in &summary.secret_values {
        assert!(!text.contains(secret.as_str()), "a settings value appears in {what}");
    }
    assert!(!summary.secret_urls.is_empty());
    for url in &summary.secret_urls {
        assert!(!text.contains(url.as_str()), "a calendar feed URL appears in {what}");
    }
}

#[test]
fn json_report_summary_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
    let data = dir.path().join("data");

    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = one_json_object(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("migrate-split: split: "), "{stderr}");
    assert!(stderr.contains("activity_events"), "{stderr}");
    assert!(!stderr.contains('\r'), "no progress bar when stderr is not a terminal");

    assert_eq!(report["outcome"], "split");
    assert_eq!(report["legacy"]["path"], legacy.display().to_string());
    assert_eq!(report["legacy"]["version"], 3);
    assert_eq!(report["legacy"]["sha256"], sha256(&legacy));
    let seconds = report["seconds"].as_f64().unwrap();
    // Where the time went: every phase in the order it ran, within the run's time.
    let phases: Vec<(&str, f64)> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["phase"].as_str().unwrap(), p["seconds"].as_f64().unwrap()))
        .collect();
    let names: Vec<&str> = phases.iter().map(|(name, _)| *name).collect();
    let at = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name}: {names:?}"))
    };
    assert_eq!(names[0], "checking the legacy file");
    assert!(at("creating the outputs") < at("copying projects"), "{names:?}");
    assert!(at("copying activity_events") < at("building indexes"), "{names:?}");
    assert!(at("building indexes") < at("computing the running totals"), "{names:?}");
    // The legacy file's sha256 and quick_check run beside the index builds, and end before verifying.
    assert!(
        at("computing the running totals") < at("finishing the legacy file's checks"),
        "{names:?}"
    );
    assert!(at("finishing the legacy file's checks") < at("verifying"), "{names:?}");
    assert!(at("verifying") < at("closing"), "{names:?}");
    assert_eq!(names.last(), Some(&"putting the outputs in place"));
    assert!(phases.iter().all(|(_, s)| *s >= 0.0));
    assert!(
        phases.iter().map(|(_, s)| s).sum::<f64>() <= seconds,
        "{phases:?} in {seconds} s"
    );
    let time_line = stderr
        .lines()
        .find(|l| l.starts_with("  time: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    // The same phases as the JSON: each that took 2% of the run or more by name, the others summed.
    let (long, short): (Vec<_>, Vec<_>) = phases.iter().partition(|(_, s)| *s >= seconds * 0.02);
    for (name, s) in &long {
        assert!(time_line.contains(&format!("{name} {s:.2} s")), "{name}: {time_line}");
    }
    if !short.is_empty() {
        assert!(
            time_line.ends_with(&format!(
                "{} shorter phase(s) {:.2} s",
                short.len(),
                short.iter().map(|(_, s)| s).sum::<f64>()
            )),
            "{time_line}"
        );
    }
    assert_eq!(report["unknown_tables"], serde_json::json!(["addon_focus_stats"]));
    let rejects = data.join("split-rejects.jsonl");
    assert_eq!(report["rejects_file"], rejects.display().to_string());
    let tables = report["tables"].as_object().unwrap();
    assert_eq!(tables.len(), summary.tables.len());
    for (name, expected) in summary.counts() {
        let t = &tables[&name];
        for (key, want) in [
            ("legacy", expected.legacy),
            ("copied", expected.copied),
            ("rejected", expected.rejected),
            ("dangling", expected.dangling),
        ] {
            assert_eq!(t[key], want, "{name}.{key}");
        }
    }
    assert_no_secret(&summary, "stdout", &String::from_utf8_lossy(&out.stdout));
    assert_no_secret(&summary, "stderr", &stderr);
    assert_no_secret(
        &summary,
        "the rejects file",
        &std::fs::read_to_string(&rejects).unwrap(),
    );

    // Again: already split, exit 0.
    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(0));
    let again = one_json_object(&out.stdout);
    assert_eq!(again["outcome"], "already_split");
    assert_eq!(again["tables"], report["tables"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already split (nothing changed)"));
}

#[test]
fn failures_are_one_json_object_too_and_never_show_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LegacySpec {
        unparseable_times: true,
        ..LegacySpec::small(3)
    };
    let (legacy, summary) = legacy_file(dir.path(), &spec);
    let data = dir.path().join("data");

    let out = run_bin(&args(&legacy, &data, &["--json", "--strict"]));
    assert_eq!(out.status.code(), Some(1));
    let v = one_json_object(&out.stdout);
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["error"]["kind"], "rejected_rows");
    assert_eq!(v["error"]["exit_code"], 1);
    assert!(v["report"]["tables"]["settings"]["rejected"].as_u64().unwrap() > 0);
    assert_no_secret(&summary, "stdout", &String::from_utf8_lossy(&out.stdout));
    assert_no_secret(&summary, "stderr", &String::from_utf8_lossy(&out.stderr));
    assert!(
        listing(&data).iter().all(|n| n.ends_with(".lock")),
        "{:?}",
        listing(&data)
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"definitely not sqlite").unwrap();
    let out = run_bin(&args(&garbage, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(1));
    let v = one_json_object(&out.stdout);
    assert_eq!(v["error"]["kind"], "unsupported_input");
    assert!(v["error"]["message"].as_str().unwrap().contains("garbage.db"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a legacy database this tool converts"),
        "{stderr}"
    );
    assert!(stderr.contains("What to do:"), "{stderr}");
}

/// An argument the command cannot parse is, with `--json`, one failure object on stdout like any other (pinned
/// text), and clap's message on stderr; `--version` names the schema version of each file this build writes.
#[test]
fn an_argument_error_is_a_json_failure_and_the_version_names_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_bin(&[OsStr::new("--json"), OsStr::new("--data-dir"), data.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let v = one_json_object(&out.stdout);
    assert_eq!(
        v,
        serde_json::json!({"outcome": "failed", "error": {
            "kind": "invalid_input", "path": null,
            "message": "the following required arguments were not provided: --legacy <FILE>",
            "remedy": "correct the arguments; the command's --help lists them",
            "retryable": false, "exit_code": 2,
        }})
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: migrate-split"));
    assert!(!data.exists());

    let out = run_bin(&[OsStr::new("--bogus")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no JSON without --json");

    // Stdout a pipe its reader closed (a consumer that exited): exit 2 all the same, no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = bin()
        .args(["--json", "--bogus"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = store_core::testing::wait_output_within(child, std::time::Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

    let out = run_bin(&[OsStr::new("--version")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "migrate-split {} (activity.db schema {}, config.db schema {})\n",
            env!("CARGO_PKG_VERSION"),
            activity_store::SCHEMA.end_version(),
            config_store::SCHEMA.end_version()
        )
    );
}

#[test]
fn dry_run_and_force_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(1));
    let data = dir.path().join("data");
    let out = run_bin(&args(&legacy, &data, &["--dry-run", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(one_json_object(&out.stdout)["outcome"], "dry_run");
    assert!(!data.exists());

    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("config.db"), b"someone else's file").unwrap();
    let out = run_bin(&args(&legacy, &data, &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.db cannot be read"));
    let out = run_bin(&args(&legacy, &data, &["--force"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let aside: Vec<String> = listing(&data)
        .into_iter()
        .filter(|n| n.starts_with("config.db.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(data.join(&aside[0])).unwrap(), b"someone else's file");
}

/// The split holds the legacy file's settings values (tokens) and, with encryption, the key: a crash, or a
/// signal that dumps, must not write them into a core dump. Started with the soft limit raised, it ends with
/// it at zero (read from `/proc/PID/limits` before it is reaped).
#[test]
fn the_split_cannot_write_its_memory_into_a_core_dump() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    let limit = std::time::Duration::from_secs(120);
    let (status, raised) = core_limit_at_exit(&mut std::process::Command::new("true"), limit);
    assert!(status.success());
    assert!(
        raised > 0,
        "this machine allows no core dump at all (hard limit 0): nothing here can tell"
    );
    let (status, core) = core_limit_at_exit(bin().args(args(&legacy, &data, &[])), limit);
    assert!(status.success(), "{status:?}");
    assert_eq!(
        core, 0,
        "the split could dump core (a program that leaves the limit alone: {raised})"
    );
    assert!(data.join("config.db").exists());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever the arguments (present or not, a legacy file or not, flags in any combination, values that
    /// are paths to nothing, to a directory, to /dev/null), the binary ends without a panic with exit code
    /// 0, 1 or 2.
    #[test]
    fn no_argument_makes_the_binary_panic_or_hang(
        legacy in proptest::prop_oneof![
            proptest::strategy::Just("legacy.db"),
            proptest::strategy::Just("missing.db"),
            proptest::strategy::Just("/dev/null"),
            proptest::strategy::Just("."),
            proptest::strategy::Just(""),
        ],
        flags in proptest::collection::vec(
            proptest::sample::select(vec!["--dry-run", "--json", "--strict", "--force", "--bogus", "--data-dir"]),
            0..4,
        ),
        with_data_dir in proptest::bool::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        legacy_file(dir.path(), &LegacySpec::small(1));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-split"));
        cmd.current_dir(dir.path()).args(["--legacy", legacy]);
        if with_data_dir {
            cmd.args(["--data-dir", "data"]);
        }
        cmd.args(&flags);
        let out = output_within(&mut cmd, std::time::Duration::from_secs(60));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        proptest::prop_assert!(!text.contains("panicked at"), "{flags:?}: {text}");
        proptest::prop_assert!(matches!(out.status.code(), Some(0..=2)), "{legacy} {flags:?}: {out:?}");
        if flags.contains(&"--json") {
            let outcome = &one_json_object(&out.stdout)["outcome"];
            proptest::prop_assert_eq!(outcome == "failed", out.status.code() != Some(0), "{:?}: {}", flags, text);
        }
    }
}

#[test]
fn a_data_directory_whose_path_is_not_utf8_gets_its_json_report() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    // "données" in Latin-1: serde refuses such a path, and the report panicked after the split was done.
    let data = dir.path().join(OsStr::from_bytes(b"donn\xe9es"));
    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = one_json_object(&out.stdout);
    assert_eq!(report["outcome"], "split");
    assert_eq!(report["data_dir"], data.to_string_lossy().as_ref());
    assert!(store_core::conversion::recorded(&data).is_some());
}

/// Paths given relative to the working directory come back absolute in the report and in errors: the program
/// reading `--json` runs elsewhere, and so may the shell that runs a remedy.
#[test]
fn relative_paths_come_back_absolute() {
    let dir = tempfile::tempdir().unwrap();
    legacy_file(dir.path(), &all_quirks(2));
    let run = || {
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(["--legacy", "legacy.db", "--data-dir", "data", "--json"]);
        output_within(&mut cmd, std::time::Duration::from_secs(120))
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = one_json_object(&out.stdout);
    let data = dir.path().join("data");
    let utf8 = |p: &std::path::Path| p.to_str().unwrap().to_string();
    assert_eq!(report["legacy"]["path"], utf8(&dir.path().join("legacy.db")));
    assert_eq!(report["data_dir"], utf8(&data));
    assert_eq!(
        report["rejects_file"],
        utf8(&data.join(migrate_split::REJECTS_FILE_NAME))
    );
}

/// activity.db removed after a split that finished (the data directory records it): splitting again would put
/// the legacy rows in its place and move config.db aside, with what the server wrote to it since. Refused, with
/// the way back from the backup first; `--force` still splits again, moving config.db aside. Both removed:
/// refused too (the backups hold what the owners wrote since the split).
#[test]
fn an_output_removed_after_a_finished_split_is_refused_not_split_again() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &LegacySpec::small(3));
    let data = dir.path().join("data");
    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let split_id = one_json_object(&out.stdout)["split_id"].as_str().unwrap().to_string();
    let config = std::fs::read(data.join("config.db")).unwrap();
    std::fs::remove_file(data.join("activity.db")).unwrap();

    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let error = &one_json_object(&out.stdout)["error"];
    let (d, activity) = (data.display(), data.join("activity.db"));
    assert_eq!(
        (&error["kind"], &error["path"]),
        (
            &serde_json::json!("removed"),
            &serde_json::json!(activity.to_str().unwrap())
        ),
    );
    assert_eq!(
        error["message"],
        format!(
            "{d}/activity.db is missing, though split {split_id} finished (the data directory records it): it was \
             removed since, and {d}/config.db may hold what its owner wrote after the split"
        )
    );
    assert_eq!(
        error["remedy"],
        format!(
            "put activity.db back from its newest backup: `splitstore repair --data-dir {d}` (`splitstore doctor` \
             lists the backups); to split the legacy file again instead, run `migrate-split --legacy {} --data-dir \
             {d} --force`: config.db is moved aside (renamed, never deleted) and what was written to it since the \
             split stays only there",
            legacy.display()
        )
    );
    assert_eq!(
        std::fs::read(data.join("config.db")).unwrap(),
        config,
        "config.db untouched"
    );
    assert!(!activity.exists());
    let nothing_aside = || {
        listing(&data)
            .iter()
            .all(|n| !n.contains(".replaced-") && !n.contains(".unfinished-"))
    };
    assert!(nothing_aside());

    // A file of no split in its place since (started empty by `repair --allow-empty` with no backup, put back
    // from another directory): not a split left half-way, whose files a run moves aside without --force.
    // Refused as other outputs.
    let elsewhere = dir.path().join("elsewhere");
    drop(activity_store::ActivityWriter::open_in(&elsewhere).unwrap());
    std::fs::copy(elsewhere.join("activity.db"), &activity).unwrap();
    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(one_json_object(&out.stdout)["error"]["kind"], "outputs_exist");
    assert_eq!(
        std::fs::read(data.join("config.db")).unwrap(),
        config,
        "config.db untouched"
    );
    assert!(nothing_aside());
    std::fs::remove_file(&activity).unwrap();

    let out = run_bin(&args(&legacy, &data, &["--json", "--force"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let aside: Vec<String> = listing(&data)
        .into_iter()
        .filter(|n| n.starts_with("config.db.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", listing(&data));
    assert_eq!(std::fs::read(data.join(&aside[0])).unwrap(), config);
    assert!(activity.exists());

    // Both removed: refused the same way, with nothing to move aside.
    let split_id = one_json_object(&out.stdout)["split_id"].as_str().unwrap().to_string();
    for name in ["activity.db", "config.db"] {
        std::fs::remove_file(data.join(name)).unwrap();
    }
    let out = run_bin(&args(&legacy, &data, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let error = &one_json_object(&out.stdout)["error"];
    assert_eq!(
        (&error["kind"], &error["message"], &error["remedy"]),
        (
            &serde_json::json!("removed"),
            &serde_json::json!(format!(
                "{d}/activity.db and {d}/config.db are missing, though split {split_id} finished (the data directory \
                 records it): they were removed since"
            )),
            &serde_json::json!(format!(
                "put activity.db and config.db back from their newest backups: `splitstore repair --data-dir {d}` \
                 (`splitstore doctor` lists the backups); to split the legacy file again instead, run `migrate-split \
                 --legacy {} --data-dir {d} --force`",
                legacy.display()
            )),
        )
    );
    assert!(!activity.exists() && !data.join("config.db").exists());
    let out = run_bin(&args(&legacy, &data, &["--force"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(activity.exists() && data.join("config.db").exists());
}

/// Ctrl-C on a split killed it: its temporary outputs and its record stayed for the next run (or an owner's
/// start) to say and remove. It now stops cleanly: the failure is said (`stopped`, exit 2, with --json the
/// failure object), nothing of the run is left in the data directory, and the split run again completes.
#[test]
fn ctrl_c_stops_a_split_leaving_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough to split (seconds) that the signal, sent once the run is under way, lands before it is
    // closing its outputs, on any machine.
    let spec = LegacySpec {
        sessions: 20_000,
        events_per_session: 10,
        ..LegacySpec::small(3)
    };
    let (legacy, _) = legacy_file(dir.path(), &spec);
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-split"))
        .args(args(&legacy, &data, &["--json"]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    store_core::testing::wait_until(std::time::Duration::from_secs(120), "the split never began", || {
        let began = store_core::conversion::in_progress(&data).is_some();
        assert!(
            began || child.try_wait().unwrap().is_none(),
            "the split ended before it was under way"
        );
        began
    });
    // SAFETY: kill(2) on the child this test spawned, not reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = store_core::testing::wait_output_within(child, std::time::Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let failure = one_json_object(&out.stdout);
    assert_eq!(failure["error"]["kind"], "stopped", "{failure}");
    let said = format!(
        "asked to stop while splitting {} into {}, it stopped before changing anything",
        legacy.display(),
        data.display()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&said), "{out:?}");
    let left = listing(&data);
    assert!(
        left.iter().all(|name| name.ends_with(".lock")),
        "nothing of the run is left: {left:?}"
    );
    assert!(store_core::conversion::in_progress(&data).is_none());

    let out = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_migrate-split")).args(args(&legacy, &data, &[])),
        std::time::Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:?}");
}
