//! Shared by store-core's integration tests: a small schema with a rebuild step, and child processes.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use store_core::schema::{ACTIVITY_APPLICATION_ID, CONFIG_APPLICATION_ID};
use store_core::{Migration, Schema, Step};

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "items and tags",
        step: Step::Sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE tags (id INTEGER PRIMARY KEY,
                                item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
                                tag TEXT NOT NULL);
             CREATE INDEX tags_item ON tags(item_id);",
        ),
    },
    Migration {
        version: 2,
        name: "item color",
        step: Step::Sql("ALTER TABLE items ADD COLUMN color TEXT;"),
    },
    Migration {
        version: 3,
        name: "color not null (rebuild)",
        step: Step::Rebuild(
            "CREATE TABLE new_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, color TEXT NOT NULL DEFAULT 'none');
             INSERT INTO new_items (id, name, color) SELECT id, name, coalesce(color, 'none') FROM items;
             DROP TABLE items;
             ALTER TABLE new_items RENAME TO items;",
        ),
    },
];

/// Stands in for activity.db in engine tests (same application_id, so identity checks are the real ones).
pub static ITEMS: Schema = Schema {
    file_name: "activity.db",
    owner: "the daemon",
    owner_command: "splitstore daemon",
    application_id: ACTIVITY_APPLICATION_ID,
    migrations: MIGRATIONS,
    incremental_vacuum: true,
};

/// A second kind, with config.db's application_id.
pub static OTHER: Schema = Schema {
    file_name: "config.db",
    owner: "the server",
    owner_command: "splitstore server",
    application_id: CONFIG_APPLICATION_ID,
    migrations: MIGRATIONS.split_at(1).0,
    incremental_vacuum: false,
};

/// Environment variable that turns a run of this test binary into a child process with a role.
pub const CHILD_ROLE: &str = "STORE_CORE_TEST_CHILD";

/// Re-runs this test binary as a child that executes only `test_name`, with `role` in the environment.
pub fn spawn_child(test_name: &str, role: &str) -> Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process")
}

/// Waits until `path` exists (a child signals readiness by creating it).
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "child did not create {} within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn kill9(child: &mut Child) {
    // SAFETY: plain kill(2) on a pid we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}
