//! Shared by config-store's integration tests: real files in temp dirs, plain connections for what the
//! API deliberately cannot do (install a failing trigger, write a legacy row, count raw rows).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use config_store::ConfigStore;
use rusqlite::Connection;

/// A temp dir and the path of config.db in it (not created yet).
pub fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = config_store::SCHEMA.path_in(dir.path());
    (dir, path)
}

/// A temp dir with a new, empty config.db owned by the returned store.
pub fn store() -> (tempfile::TempDir, PathBuf, ConfigStore) {
    let (dir, path) = fresh();
    let store = ConfigStore::open(&path).expect("open config.db");
    (dir, path, store)
}

/// Runs SQL through a plain writable connection (the store must be closed, or the SQL a test-only trigger).
pub fn exec(path: &Path, sql: &str) {
    let conn = Connection::open(path).expect("plain connection");
    conn.execute_batch(sql).expect("plain SQL");
}

/// An RFC 3339 time.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::{count_rows, query_column, query_i64, read_only};
