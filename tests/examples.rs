//! The two example programs (`examples/daemon.rs`, `examples/server.rs`), written as an application would
//! write them, run together on one data directory: their totals agree.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{output_within, texts, utf8, wait_output_within};

/// An example's binary: `cargo test` builds the examples beside the test binaries (`target/<profile>/examples`).
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path: PathBuf = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is built by a plain `cargo test` (run `cargo build --examples` before running this test alone)",
        path.display()
    );
    Command::new(path)
}

/// `sessions=N seconds=S` from the last line starting with `prefix`.
fn totals(stdout: &str, prefix: &str) -> (i64, i64) {
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {stdout:?}"));
    let field = |key: &str| -> i64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    (field("sessions="), field("seconds="))
}

#[test]
fn the_daemon_and_server_examples_run_together_and_their_totals_agree() {
    let dir = tempfile::tempdir().unwrap();
    let data = utf8(dir.path()).to_string();
    // The server runs until its stdin closes, which happens after the daemon exited: its last report reads
    // everything the daemon committed, however slow the machine.
    let mut server = example("server")
        .args(["--data-dir", &data, "--seconds", "120", "--stop-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server_stdin = server.stdin.take();
    let daemon = output_within(
        example("daemon").args(["--data-dir", &data, "--seconds", "3", "--session-secs", "1.2"]),
        Duration::from_secs(60),
    );
    drop(server_stdin);
    let server = wait_output_within(server, Duration::from_secs(60));
    let (d_out, d_err) = texts(&daemon);
    let (s_out, s_err) = texts(&server);
    assert!(daemon.status.success(), "daemon: {d_out}\n{d_err}");
    assert!(server.status.success(), "server: {s_out}\n{s_err}");
    assert!(
        d_err.contains("operations pending"),
        "the daemon pruned while recording: {d_err}"
    );
    let recorded = totals(&d_out, "daemon:");
    assert!(
        recorded.0 >= 2 && recorded.1 >= 2,
        "the daemon recorded sessions: {recorded:?}"
    );
    assert_eq!(
        totals(&s_out, "server:"),
        recorded,
        "daemon:\n{d_out}\nserver:\n{s_out}"
    );
    assert!(
        s_err.contains("this week:"),
        "the server reported this week as it changed: {s_err}"
    );
}
