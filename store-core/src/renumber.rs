//! Giving smaller ids to the rows of a table that has run out of them.
//!
//! An AUTOINCREMENT table whose counter has handed out 9223372036854775807, the largest id SQLite allows, takes
//! no more rows: SQLite never falls back to a smaller free id and answers an insert with SQLITE_FULL
//! (<https://sqlite.org/autoinc.html>). Ids counted one after another never come near: at a million rows a
//! second, [`FAR_IDS`] takes 146,000 years. Only a legacy file or a hand edit puts an id there, so every id at
//! or past it is moved down, with every column of the file that refers to it, to the ids after the largest
//! below it, in the same order; the counter then stands at the last of them.

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::check::quote;
use crate::error::Result;
use crate::open_database::OwnerConnection;
use crate::records;
use crate::schema::{IdReference, Schema};

/// The first id never handed out by counting (2^62): ids at or past it are moved down.
pub const FAR_IDS: i64 = 1 << 62;

/// What [`give_smaller_ids`] did to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renumbered {
    pub table: String,
    /// The ids moved: the table's rows at or past [`FAR_IDS`], and the ids only referred to there (a deleted
    /// row's, still named by another table's rows).
    pub moved: u64,
    /// The ids they were given, `first..=last` (in the order of the ids they had); the table's next row gets
    /// `last + 1`. With nothing moved (the row at the limit was deleted), `last` is where the counter now
    /// stands and `first` is `last + 1`.
    pub first: i64,
    pub last: i64,
    /// Each referring column (`table.column`) and how many of its values moved with the ids.
    pub references: Vec<(String, u64)>,
}

/// The columns of `schema`'s file that hold ids of its own `table` ([`Schema::id_references`]).
fn references_to<'a>(schema: &'a Schema, table: &'a str) -> impl Iterator<Item = &'a IdReference> + 'a {
    schema
        .id_references
        .iter()
        .filter(move |r| r.target_file == schema.file_name && r.target_table == table)
}

/// `FROM` the table of `r` `WHERE` its column holds an id (its condition, if any) compared by `compared`.
fn holding(r: &IdReference, compared: &str) -> String {
    format!(
        "FROM {} WHERE {} {compared} AND ({})",
        quote(r.table),
        quote(r.column),
        r.only_where.unwrap_or("1")
    )
}

/// Moves every id of `table` at or past [`FAR_IDS`], and every reference to it in this file, to the ids after
/// the largest id below it that the table or a reference holds, and lowers the counter to the last of them.
/// Run inside one write transaction: it changes ids a foreign key refers to, so the foreign keys are checked
/// at its commit (`defer_foreign_keys`, reset by the commit: <https://sqlite.org/pragma.html#pragma_defer_foreign_keys>).
/// The table's ids are set as `rowid`, which fires none of its `UPDATE OF` triggers (activity.db's running
/// totals watch `end_time_ms`).
fn renumber(conn: &Connection, schema: &Schema, table: &str) -> rusqlite::Result<Renumbered> {
    conn.pragma_update(None, "defer_foreign_keys", true)?;
    let quoted = quote(table);
    let mut below = vec![format!("SELECT max(rowid) AS id FROM {quoted} WHERE rowid < ?1")];
    let mut far = vec![format!("SELECT rowid AS old FROM {quoted} WHERE rowid >= ?1")];
    for r in references_to(schema, table) {
        below.push(format!("SELECT max({}) AS id {}", quote(r.column), holding(r, "< ?1")));
        far.push(format!("SELECT {} AS old {}", quote(r.column), holding(r, ">= ?1")));
    }
    let base: i64 = conn.query_row(
        &format!("SELECT IFNULL(max(id), 0) FROM ({})", below.join(" UNION ALL ")),
        [FAR_IDS],
        |r| r.get(0),
    )?;
    conn.execute_batch("CREATE TEMP TABLE renumbered (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")?;
    let moved = conn.execute(
        &format!(
            "INSERT INTO temp.renumbered (old, new)
             SELECT old, ?2 + row_number() OVER (ORDER BY old) FROM ({}) WHERE old IS NOT NULL",
            far.join(" UNION ")
        ),
        [FAR_IDS, base],
    )? as u64;
    let mut references = Vec::new();
    for r in references_to(schema, table) {
        let column = quote(r.column);
        let changed = conn.execute(
            &format!(
                "UPDATE {} SET {column} = (SELECT new FROM temp.renumbered WHERE old = {column}) WHERE {column} >= ?1 AND ({})",
                quote(r.table),
                r.only_where.unwrap_or("1")
            ),
            [FAR_IDS],
        )?;
        references.push((format!("{}.{}", r.table, r.column), changed as u64));
    }
    conn.execute(
        &format!("UPDATE {quoted} SET rowid = (SELECT new FROM temp.renumbered WHERE old = rowid) WHERE rowid >= ?1"),
        [FAR_IDS],
    )?;
    conn.execute_batch("DROP TABLE temp.renumbered")?;
    let last = base + moved as i64;
    conn.execute(
        "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1",
        rusqlite::params![table, last],
    )?;
    Ok(Renumbered {
        table: table.to_string(),
        moved,
        first: if moved == 0 { last + 1 } else { base + 1 },
        last,
        references,
    })
}

/// Gives the rows of `table`, out of ids ([`crate::restore::tables_out_of_ids`]), smaller ones, with every
/// reference to them in the owner's file, in one write transaction (nothing changes if it fails); then lowers
/// the record of the ids it handed out ([`records::counters_path`]), which would otherwise raise the counter
/// back to the limit at the next open or restore. A table another file refers to (by the application's
/// join) is the caller's to refuse: only this file's references move.
pub fn give_smaller_ids(owner: &mut OwnerConnection, table: &str) -> Result<Renumbered> {
    let (schema, path) = (owner.schema(), owner.path().to_path_buf());
    owner.write(|tx| {
        let renumbered = renumber(tx, schema, table)?;
        // Before the commit: a record left at the limit by a kill after it would raise the counter back
        // there at the next owner's open (the record only ever raises it), while a record lowered for a
        // commit that then fails is only lower than the file's counter, which protects the same ids.
        lower_recorded(&path, &renumbered);
        Ok(renumbered)
    })
}

/// Lowers `db`'s record of the ids `renumbered.table` handed out to where its counter now stands; best
/// effort, as every write of the record.
fn lower_recorded(db: &Path, renumbered: &Renumbered) {
    let mut recorded = records::counters_handed_out(db);
    if let Some(seq) = recorded.get_mut(&renumbered.table) {
        *seq = renumbered.last;
        records::note_counters(db, &recorded);
    }
}

/// `seq`, the counter of `table` in `conn`'s file, or, when it stands at or past [`FAR_IDS`] (a table out of
/// ids, or one whose ids were moved down since: see the module), the largest id below that the table holds:
/// what two copies of a file are compared by, so that a copy taken before the ids moved down is not read as
/// holding rows the later copies lack (billions of billions of them).
pub(crate) fn counted(conn: &Connection, table: &str, seq: i64) -> i64 {
    if seq < FAR_IDS {
        return seq;
    }
    conn.query_row(
        &format!("SELECT IFNULL(max(rowid), 0) FROM {} WHERE rowid < ?1", quote(table)),
        [FAR_IDS],
        |r| r.get(0),
    )
    .unwrap_or(seq)
}
