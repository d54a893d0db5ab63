//! Structural checks: `quick_check`, `integrity_check`, `foreign_key_check`, and row counts.
//!
//! Both integrity checks hold one read transaction for their whole run (`quick_check` is O(N),
//! `integrity_check` O(N log N)), which pins the owner's WAL: on a live file check a snapshot instead
//! (`diagnostics`). Neither looks at foreign keys (<https://sqlite.org/pragma.html#pragma_integrity_check>).

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::{Connection, ErrorCode};
use serde::Serialize;

/// `PRAGMA quick_check`: the problems found, empty when the file is fine. O(N).
pub fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA quick_check")
}

/// `PRAGMA integrity_check`: the problems found, empty when the file is fine. O(N log N).
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA integrity_check")
}

/// The problems a check reports, one per line. SQLite returns them as one row of lines under a heading naming
/// the schema (`*** in database main ***`, dropped here), so a caller showing "the first three" would show all
/// of them, up to a hundred (https://sqlite.org/pragma.html#pragma_integrity_check). A page too damaged to
/// walk (a b-tree page whose header is garbage) stops the check with `SQLITE_CORRUPT` instead of a row:
/// that stop is what it found, so callers report it as damage of the file they checked, like any finding.
fn check_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let read = conn.prepare(sql).and_then(|mut stmt| {
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    let rows = match read {
        Ok(rows) => rows,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ) =>
        {
            return Ok(vec![format!("the check stopped: {e}")]);
        }
        Err(e) => return Err(e),
    };
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(Vec::new());
    }
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|row| row.lines())
        .filter(|line| !line.is_empty() && !line.starts_with("*** in database "))
        .map(str::to_string)
        .collect();
    // Never "fine" for a check that did not say `ok`.
    Ok(if problems.is_empty() { rows } else { problems })
}

/// One row of `PRAGMA foreign_key_check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FkViolation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

impl fmt::Display for FkViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rowid {
            Some(id) => write!(f, "{} row {} points at a missing {}", self.table, id, self.parent),
            None => write!(f, "a {} row points at a missing {}", self.table, self.parent),
        }
    }
}

/// `PRAGMA foreign_key_check` (integrity checks do not look at foreign keys).
pub fn foreign_key_violations(conn: &Connection) -> rusqlite::Result<Vec<FkViolation>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    stmt.query_map([], |r| {
        Ok(FkViolation {
            table: r.get(0)?,
            rowid: r.get(1)?,
            parent: r.get(2)?,
        })
    })?
    .collect()
}

/// Rows per table (bookkeeping tables included; SQLite's internal tables excluded).
pub fn row_counts(conn: &Connection) -> rusqlite::Result<BTreeMap<String, u64>> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts = BTreeMap::new();
    for t in tables {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        counts.insert(t, n as u64);
    }
    Ok(counts)
}
