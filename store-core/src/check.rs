//! Structural checks: `quick_check`, `integrity_check`, `foreign_key_check`, and row counts.
//!
//! Both integrity checks hold one read transaction for their whole run (`quick_check` is O(N),
//! `integrity_check` O(N log N)), which pins the owner's WAL: on a live file check a snapshot instead
//! (`diagnostics`). Neither looks at foreign keys (<https://sqlite.org/pragma.html#pragma_integrity_check>).
//! Nor, in a table that is not STRICT, at the type of a value: a store's file they pass is then checked for
//! values of another type than their column declares ([`type_check`], one more O(N) read; the `_with_types`
//! checks), which every read of the row would fail on.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::{Connection, ErrorCode, OptionalExtension};
use serde::Serialize;

/// `PRAGMA quick_check`: the problems found, empty when the file is fine. O(N).
pub fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA quick_check")
}

/// `PRAGMA integrity_check`: the problems found, empty when the file is fine. O(N log N).
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    check_rows(conn, "PRAGMA integrity_check")
}

/// [`quick_check`] and [`type_check`]: how a file of a store is checked, whose every value the application
/// reads (not a predecessor's, whose odd values a converter rejects row by row). O(N). The type check runs
/// on `other`, a second connection to the same file, on a thread beside the structural check: both read
/// every page, and one after the other they took a core each in turn (1 GB: 1.2 s, then 2.8 s). The
/// structural check's problems come first: the type check's result counts only when it finds none. Each
/// reads the file as its own read transaction finds it: of a file written meanwhile (a check in place that
/// an owner's start overtakes), what each finds is true of its moment.
pub fn quick_check_with_types_beside(conn: &Connection, other: Connection) -> rusqlite::Result<Vec<String>> {
    structure_with_types_beside(conn, other, quick_check)
}

/// [`integrity_check`] and [`type_check`], as [`quick_check_with_types_beside`]. O(N log N) (1 GB: 5.9 s,
/// then 2.8 s, one after the other).
pub fn integrity_check_with_types_beside(conn: &Connection, other: Connection) -> rusqlite::Result<Vec<String>> {
    structure_with_types_beside(conn, other, integrity_check)
}

fn structure_with_types_beside(
    conn: &Connection,
    other: Connection,
    structure: fn(&Connection) -> rusqlite::Result<Vec<String>>,
) -> rusqlite::Result<Vec<String>> {
    std::thread::scope(|scope| {
        let types = scope.spawn(move || type_check(&other));
        let problems = structure(conn);
        let types = types.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match problems? {
            problems if problems.is_empty() => types,
            problems => Ok(problems),
        }
    })
}

/// What a column's declared type lets a value of it be: one the application reads back as that type. These
/// tables are not STRICT, so SQLite stores whatever it is given where its affinity cannot convert it
/// (https://sqlite.org/datatype3.html#type_affinity), and whatever type a damaged record's header says: text
/// that is no number in an INTEGER column, a BLOB in a TEXT one. The application never writes such a value
/// (the split refuses one from a legacy file, for the same reason), and its reads fail on it ("Invalid column
/// type Text"), every report over the row with them. In a file it is damage that still parses (a bit flipped
/// in a record's header), which `quick_check` and `integrity_check` do not see ([`type_check`] does); in a
/// salvage, also a page of another b-tree read as this table's (the row is refused, as one the schema
/// refuses is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared {
    /// INTEGER affinity (a declared type containing `INT`).
    Integer,
    /// TEXT affinity (`CHAR`, `CLOB` or `TEXT`, and no `INT`).
    Text,
    /// INTEGER affinity in a column named `*_ms`: a time, in Unix epoch milliseconds ([`crate::time`]), which
    /// the application reads only inside the range of times it maps ([`crate::time::ms_range`]).
    Time,
    /// Any other: REAL, NUMERIC and BLOB affinity keep what they are given, and are not checked.
    Any,
}

impl Declared {
    /// What column `name`, declared `decl_type`, holds: its affinity, by SQLite's rules in their order
    /// (https://sqlite.org/datatype3.html#determination_of_column_affinity), where it is one checked, and a
    /// time for an integer named `*_ms`.
    pub(crate) fn of(name: &str, decl_type: &str) -> Declared {
        let t = decl_type.to_ascii_uppercase();
        if t.contains("INT") && name.ends_with("_ms") {
            Declared::Time
        } else if t.contains("INT") {
            Declared::Integer
        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|s| t.contains(s)) {
            Declared::Text
        } else {
            Declared::Any
        }
    }

    /// What `typeof()` says of a stored value the application reads as this type, and what a finding calls
    /// it (`None`: not checked). Affinity stores a number given to a TEXT column as text, and an integral REAL
    /// or numeric text given to an INTEGER one as an integer: nothing else is ever stored by a write.
    fn stored(self) -> Option<(&'static str, &'static str)> {
        match self {
            Declared::Integer => Some(("integer", "an integer")),
            Declared::Time => Some(("integer", "a time")),
            Declared::Text => Some(("text", "text")),
            Declared::Any => None,
        }
    }

    /// The SQL that says of a value of column `name` what [`stored`](Self::stored) names: its `typeof()`, or
    /// for a time out of the range the application maps, `integer out of range`.
    fn found_sql(self, name: &str) -> String {
        let q = quote(name);
        match self {
            Declared::Time => {
                let (min, max) = crate::time::ms_range().into_inner();
                format!(
                    "CASE WHEN typeof({q}) = 'integer' AND {q} NOT BETWEEN {min} AND {max} \
                     THEN 'integer out of range' ELSE typeof({q}) END"
                )
            }
            _ => format!("typeof({q})"),
        }
    }
}

/// A column of a table, as `pragma_table_info` gives it.
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) decl_type: String,
    /// Position in the primary key (0: not part of it).
    pub(crate) pk: i64,
    /// Declared NOT NULL.
    pub(crate) not_null: bool,
}

pub(crate) fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    conn.prepare("SELECT name, type, pk, \"notnull\" FROM pragma_table_info(?1)")?
        .query_map([table], |r| {
            Ok(Column {
                name: r.get(0)?,
                decl_type: r.get(1)?,
                pk: r.get(2)?,
                not_null: r.get(3)?,
            })
        })?
        .collect()
}

/// An SQL identifier, quoted.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Values of another type than their column declares (by its affinity: an integer where it contains `INT`,
/// text where `CHAR`, `CLOB` or `TEXT`; in a column named `*_ms`, a time in the range the application maps,
/// [`crate::time::ms_range`]; NULL only where the column may hold it): the first such row of each table, as
/// `<table> row <rowid>: <column> is not an integer (text)` (a WITHOUT ROWID table's row by its key). One
/// read of each table (O(N)): what the integrity checks add once they pass (the `_with_types` checks), for a
/// doctor, a repair, a backup or a restore, never at an owner's open.
pub fn type_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in user_tables(conn)? {
        let columns = table_columns(conn, &table)?;
        let checked: Vec<(&Column, &str, &str, String)> = columns
            .iter()
            .filter_map(|c| {
                let declared = Declared::of(&c.name, &c.decl_type);
                let (stored, noun) = declared.stored()?;
                Some((c, stored, noun, declared.found_sql(&c.name)))
            })
            .collect();
        if checked.is_empty() {
            continue;
        }
        let has_rowid = conn
            .prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote(&table)))
            .is_ok();
        let key = if has_rowid {
            "'row ' || rowid".to_string()
        } else {
            let mut pk: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
            pk.sort_by_key(|c| c.pk);
            let parts: Vec<String> = pk.iter().map(|c| format!("quote({})", quote(&c.name))).collect();
            format!("'row (' || {} || ')'", parts.join(" || ', ' || "))
        };
        let allowed = |c: &Column, stored: &str| {
            if c.not_null {
                format!("'{stored}'")
            } else {
                format!("'{stored}', 'null'")
            }
        };
        let types: Vec<&str> = checked.iter().map(|(.., found)| found.as_str()).collect();
        let misfit: Vec<String> = checked
            .iter()
            .map(|(c, stored, _, found)| format!("({found}) NOT IN ({})", allowed(c, stored)))
            .collect();
        let sql = format!(
            "SELECT {key}, {} FROM {} WHERE {} LIMIT 1",
            types.join(", "),
            quote(&table),
            misfit.join(" OR ")
        );
        let row = conn
            .query_row(&sql, [], |r| {
                let key: String = r.get(0)?;
                let types = (1..=checked.len())
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok((key, types))
            })
            .optional();
        let (key, types) = match row {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(e) => return stopped(e),
        };
        let first = checked
            .iter()
            .zip(&types)
            .find(|((c, stored, ..), typ)| typ != stored && (c.not_null || *typ != "null"));
        if let Some(((c, _, noun, _), typ)) = first {
            found.push(format!("{table} {key}: {} is not {noun} ({typ})", c.name));
        }
    }
    Ok(found)
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
        Err(e) => return stopped(e),
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

/// A check that `e` stopped: damage is what it found (`the check stopped: ...`); any other error is returned.
fn stopped(e: rusqlite::Error) -> rusqlite::Result<Vec<String>> {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Ok(vec![format!("the check stopped: {e}")]),
        _ => Err(e),
    }
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
            Some(id) => write!(
                f,
                "{} row {} names a row of {} the file does not hold",
                self.table, id, self.parent
            ),
            None => write!(
                f,
                "a {} row names a row of {} the file does not hold",
                self.table, self.parent
            ),
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
    let mut counts = BTreeMap::new();
    for t in user_tables(conn)? {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(&t)), [], |r| r.get(0))?;
        counts.insert(t, n as u64);
    }
    Ok(counts)
}

/// The tables of the file, by name (bookkeeping tables included; SQLite's internal tables excluded).
fn user_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values stored against their column's type, as a header bit-flip leaves them (written here through
    /// SQLite, which keeps them in a table that is not STRICT): the integrity checks pass them, the type
    /// check names the first row of each table, by rowid or by its key, NULL only where the column may not
    /// hold it, and a time (`*_ms`) out of the range the application maps, as its sign bit flipped makes it.
    #[test]
    fn the_type_check_names_the_first_value_its_column_never_holds_in_each_table() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, m INTEGER, s TEXT, r REAL);
             CREATE TABLE w (k INTEGER NOT NULL, j TEXT NOT NULL, v INTEGER, PRIMARY KEY (k, j)) WITHOUT ROWID;
             CREATE TABLE e (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);
             INSERT INTO t VALUES (1, 1, NULL, NULL, 'any'), (2, 2, 3, 'text', 1.5);
             INSERT INTO w VALUES (1, 'a', NULL), (2, 'b', 7);
             INSERT INTO e (at_ms) VALUES (0), (-1700000000000), (1700000000000);",
        )
        .unwrap();
        assert_eq!(type_check(&conn).unwrap(), Vec::<String>::new());
        conn.execute_batch(
            "INSERT INTO t VALUES (7, 1, 2.5, 'x', NULL), (9, 'nine', 1, X'00', NULL);
             UPDATE w SET v = 'seven' WHERE k = 2;
             UPDATE e SET at_ms = at_ms - 9223372036854775807 - 1 WHERE id = 3;",
        )
        .unwrap();
        assert_eq!(integrity_check(&conn).unwrap(), Vec::<String>::new());
        assert_eq!(
            type_check(&conn).unwrap(),
            [
                "e row 3: at_ms is not a time (integer out of range)",
                "t row 7: m is not an integer (real)",
                "w row (2, 'b'): v is not an integer (text)"
            ]
        );
        conn.execute("DELETE FROM t WHERE id = 7", []).unwrap();
        assert_eq!(type_check(&conn).unwrap()[1], "t row 9: n is not an integer (text)");
    }
}
