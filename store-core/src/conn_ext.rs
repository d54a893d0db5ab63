//! Small extensions to `rusqlite::Connection` that both stores use.

use std::path::Path;

use rusqlite::types::{FromSql, Type, ValueRef};
use rusqlite::{Connection, Row};

use crate::error::{Error, Result, SqliteResultExt, UnreadableValue};

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

/// Reads one row of `table` with `f`. A value of it that `f` cannot read as the type it asks for (text where
/// an integer belongs, as damage that still parses leaves it) fails the read with an error naming `table`, the
/// column and the row's `id` (when the row's first column is one), which [`Error::from_sqlite`] makes
/// `corrupt`: the file and where in it, rather than a bare column index.
pub fn in_table<T>(
    table: &'static str,
    row: &Row<'_>,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    f(row).map_err(|e| {
        let (idx, ty) = match &e {
            rusqlite::Error::InvalidColumnType(idx, _, ty) | rusqlite::Error::FromSqlConversionFailure(idx, ty, _) => {
                (*idx, *ty)
            }
            rusqlite::Error::IntegralValueOutOfRange(idx, _) => (*idx, Type::Integer),
            _ => return e,
        };
        let stmt: &rusqlite::Statement<'_> = row.as_ref();
        let row_id = match (stmt.column_name(0), row.get_ref(0)) {
            (Ok("id"), Ok(ValueRef::Integer(id))) => Some(id),
            _ => None,
        };
        let named = UnreadableValue {
            table,
            column: stmt
                .column_name(idx)
                .map_or_else(|_| format!("column {idx}"), str::to_string),
            row_id,
            cause: e.to_string(),
        };
        rusqlite::Error::FromSqlConversionFailure(idx, ty, Box::new(named))
    })
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

/// Readies a temporary output for a bulk load: a file that is nobody's database until it has been verified,
/// closed, fsynced and renamed into place (a split's outputs, a salvage's). A crash mid-load leaves a damaged
/// temporary file that nothing opens as a database (the next run removes it), so the load needs neither a
/// journal that survives a crash nor an fsync at each commit:
/// - `journal_mode` as given (verified): `off` writes each page once; `delete` keeps the rollback of a
///   statement or savepoint working and journals only pages the file had when a transaction began (an
///   appended page is not journaled), where WAL would write every page twice (WAL, then checkpoint);
/// - `synchronous=OFF`: no fsync at any commit (the caller fsyncs the closed file before its rename);
/// - temporary storage where the load's sorts belong (the index builds'). SQLite's sorter spills to temporary
///   files only when temporary storage is on disk; in memory it never spills and holds the whole sort
///   (vdbesort.c, `sqlite3TempInMemory`; <https://sqlite.org/tempfiles.html>). SQLCipher would not encrypt a
///   temporary file, so an `encrypted` output's sorts stay in memory (its loader must not sort what grows
///   with history); a plaintext output's spill to files, as in a build without SQLCipher, whose default this
///   is (SQLCipher builds default to memory, `SQLITE_TEMP_STORE=2`).
///
/// Only on that connection, until it is closed: no user's database is ever open in this posture
/// (docs/sqlite-hazards.md, "Durability").
pub fn ready_for_bulk_load(conn: &Connection, path: &Path, journal_mode: &str, encrypted: bool) -> Result<()> {
    set_and_verify(conn, path, "journal_mode", journal_mode, journal_mode)?;
    set_and_verify(conn, path, "synchronous", "OFF", "0")?;
    let (temp_store, read_back) = if encrypted { ("MEMORY", "2") } else { ("FILE", "1") };
    set_and_verify(conn, path, "temp_store", temp_store, read_back)
}
