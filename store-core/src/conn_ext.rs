//! Small extensions to `rusqlite::Connection` that both stores use.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::FromSql;

use crate::error::{Error, Result, SqliteResultExt};

/// Reads pragmas by name.
pub trait ConnExt {
    /// The value of a pragma that returns one value (`user_version`, `journal_mode`, ...).
    fn pragma_value<T: FromSql>(&self, pragma: &str) -> rusqlite::Result<T>;
}

impl ConnExt for Connection {
    fn pragma_value<T: FromSql>(&self, pragma: &str) -> rusqlite::Result<T> {
        self.pragma_query_value(None, pragma, |r| r.get(0))
    }
}

/// Sets a pragma and reads it back: a setting SQLite silently ignored (WAL on a file system without shared
/// memory, `foreign_keys` inside a transaction) is an error, not an assumption.
pub fn set_and_verify(conn: &Connection, path: &Path, pragma: &'static str, value: &str, expected: &str) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA {pragma} = {value}")).at(path)?;
    verify(conn, path, pragma, value, expected)
}

/// Reads a pragma back and compares it (case-insensitively) with what was set.
pub fn verify(conn: &Connection, path: &Path, pragma: &'static str, wanted: &str, expected: &str) -> Result<()> {
    let got: rusqlite::types::Value = conn.pragma_value(pragma).at(path)?;
    let got = match got {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    };
    if got.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::PragmaRejected {
            path: path.to_path_buf(),
            pragma,
            wanted: wanted.to_string(),
            got,
        })
    }
}
