//! Shared by the root package's integration tests: child processes, kills, waiting, file modes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `splitstore` binary built for these tests.
pub fn splitstore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_splitstore"))
}

/// Environment variable that turns a run of a test binary into a child process with a role.
pub const CHILD_ROLE: &str = "SPLITSTORE_TEST_CHILD";

/// The role this process was started with, if it is a child.
pub fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let (what, path) = role.split_once(':')?;
    Some((what.to_string(), PathBuf::from(path)))
}

/// Re-runs this test binary as a child that executes only `test_name`, with `role:path` in the environment.
pub fn spawn_child(test_name: &str, role: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, format!("{role}:{}", path.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process")
}

/// Waits until `path` exists (a child signals readiness by creating it).
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "no {} within {limit:?}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `kill -9`, then reap.
pub fn kill9(child: &mut Child) {
    // SAFETY: kill(2) on a pid this process spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A marker file beside `path`: `activity.db` -> `activity.db.<tag>`.
pub fn marker(path: &Path, tag: &str) -> PathBuf {
    store_core::files::with_suffix(path, &format!(".{tag}"))
}
