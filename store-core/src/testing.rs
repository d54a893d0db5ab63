//! Helpers both stores' tests use: build a database at any schema version, and compare schemas.

use std::path::Path;

use rusqlite::Connection;

use crate::error::Result;
use crate::open_database::{OpenOptions, OwnerConnection};
use crate::schema::Schema;

/// Opens `path` as the owner and migrates it only up to `version` (a database "as an older build left it").
pub fn open_at_version(path: &Path, schema: &'static Schema, version: u32) -> Result<OwnerConnection> {
    OwnerConnection::open_with(
        path,
        schema,
        &OpenOptions {
            target_version: Some(version),
            ..OpenOptions::default()
        },
    )
}

pub use crate::schema::schema_fingerprint;

/// Environment variable that turns a run of a test binary into a child process with a role (see
/// [`spawn_child`]). Tests that need a real second process (a second owner, a `kill -9` in the middle of
/// a write or a migration) re-run their own test binary this way.
pub const CHILD_ROLE: &str = "SPLITSTORE_TEST_CHILD";

/// The role and the path this process was started with by [`spawn_child`], if it is such a child.
pub fn child_role() -> Option<(String, std::path::PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let (what, path) = role.split_once(':')?;
    Some((what.to_string(), std::path::PathBuf::from(path)))
}

/// Re-runs the current test binary as a child process that runs only the test `test_name` (which checks
/// [`child_role`] and acts out `role` on `path`). Its stdout is discarded.
pub fn spawn_child(test_name: &str, role: &str, path: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, format!("{role}:{}", path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn a child test process")
}

/// Waits until `path` exists (a child signals readiness by creating a file), failing the test after `limit`.
pub fn wait_for_file(path: &Path, limit: std::time::Duration) {
    wait_until(limit, &format!("{} did not appear", path.display()), || {
        std::fs::symlink_metadata(path).is_ok()
    });
}

/// Polls `done` every 5 ms until it holds, failing the test with `failure` after `limit`.
#[track_caller]
pub fn wait_until(limit: std::time::Duration, failure: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{failure} within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `kill -9` a child, then reap it.
pub fn kill9(child: &mut std::process::Child) {
    // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

/// A child process of a test, killed ([`kill9`]) when dropped unless it already exited: a test that fails
/// before ending it leaves nothing behind (a stopped child would stay stopped, holding its locks).
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill9(&mut self.0);
        }
    }
}

/// Waits for `child` to exit; if it runs longer than `limit`, kills it (`kill -9`) and fails the test (a hang
/// is a failure, not a stuck CI job).
#[track_caller]
pub fn wait_within(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if start.elapsed() > limit {
            kill9(child);
            panic!("child process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `cmd` to completion with stdout and stderr captured; kills it and fails the test if it runs longer
/// than `limit`.
#[track_caller]
pub fn output_within(cmd: &mut std::process::Command, limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait_output_within(child, limit)
}

/// Collects the output of a child (what it prints on the pipes still left to it; a pipe the caller took
/// reads as empty), waiting as [`wait_within`] does.
#[track_caller]
pub fn wait_output_within(mut child: std::process::Child, limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = wait_within(&mut child, limit);
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The permission bits of a file (`0o600`).
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A plain read-only connection to `db`: what an independent checker opens (it never creates the file).
pub fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()))
}

/// The one integer `sql` returns on `conn`.
#[track_caller]
pub fn query_i64(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The values of the one column `sql` returns on `conn`, collected (`Vec<String>`, `BTreeSet<i64>`...).
#[track_caller]
pub fn query_column<T: rusqlite::types::FromSql, C: FromIterator<T>>(conn: &Connection, sql: &str) -> C {
    conn.prepare(sql)
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The detail lines of `EXPLAIN QUERY PLAN` for `sql` on `conn`, its parameters bound to NULL (without
/// `ANALYZE` statistics the plan does not depend on the values).
#[track_caller]
pub fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .and_then(|mut stmt| {
            let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
            stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))?
                .collect()
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Makes the next provenance record written through `conn` fail with "injected": the last statement of a
/// mend recorded in one transaction (a recount, a removal of orphans, indexes created again), so a test shows
/// that a failure there leaves everything as it was.
pub fn fail_provenance_records(conn: &Connection) {
    conn.execute_batch(
        "CREATE TEMP TRIGGER injected BEFORE INSERT ON provenance BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .unwrap();
}

/// The rows of `table` (or of `table WHERE ...`) in the file at `db`, read through its own connection.
#[track_caller]
pub fn count_rows(db: &Path, table: &str) -> i64 {
    query_i64(&read_only(db), &format!("SELECT count(*) FROM {table}"))
}

/// `PRAGMA user_version` of the file at `path`, read through a connection of its own.
pub fn user_version_of(path: &Path) -> u32 {
    Connection::open(path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("user_version")
}

/// [`schema_fingerprint`] of the file at `path`, read through a connection of its own.
pub fn fingerprint_of(path: &Path) -> String {
    Connection::open(path)
        .and_then(|c| schema_fingerprint(&c))
        .expect("schema fingerprint")
}

/// A listed manual backup as [`crate::backup::list_backups`] gives it, without a file behind it: `name` is
/// its file name (`events-20260921T141420.000Z-v3.db`), `lineage` its lineage, taken from `/<lineage>/<db>`.
pub fn listed_backup(name: &str, lineage: Option<&str>) -> crate::backup::BackupFile {
    let name = crate::backup::BackupName::parse(name).unwrap_or_else(|| panic!("{name} is not a backup's name"));
    crate::backup::BackupFile {
        path: std::path::PathBuf::from(name.file_name()),
        class: crate::backup::BackupClass::Manual,
        taken_at: name.taken_at,
        version: name.version,
        size_bytes: 0,
        lineage: lineage.map(String::from),
        taken_from: lineage.map(|l| format!("/{l}/{}.db", name.stem)),
        name,
    }
}

/// Runs `cmd` with the soft core size limit raised to its hard limit (a shell's `ulimit -c unlimited`), and
/// returns how it exited and the soft core size limit it had when it exited (read from `/proc/PID/limits`
/// while it is a zombie, before it is reaped: a short-lived command is seen at its end, whatever it set and
/// when). Its output goes nowhere, so that it never waits on a full pipe.
pub fn core_limit_at_exit(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> (std::process::ExitStatus, u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only getrlimit and setrlimit run, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_CORE, &mut core) == 0 {
                core.rlim_cur = core.rlim_max;
                libc::setrlimit(libc::RLIMIT_CORE, &core);
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until(limit, "the command ends", || {
        crate::process::state_of(pid).is_some_and(|s| s == "Z")
    });
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .and_then(|l| l.split_whitespace().next())
        .map(|v| if v == "unlimited" { u64::MAX } else { v.parse().unwrap() })
        .unwrap();
    (child.wait().unwrap(), soft)
}
