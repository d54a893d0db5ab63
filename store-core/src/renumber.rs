//! Giving smaller ids to the rows of a table that has run out of them.
//!
//! An AUTOINCREMENT table whose counter has handed out 9223372036854775807, the largest id SQLite allows, takes
//! no more rows: SQLite never falls back to a smaller free id and answers an insert with SQLITE_FULL
//! (<https://sqlite.org/autoinc.html>). Ids counted one after another never come near: at a million rows a
//! second, [`FAR_IDS`] takes 146,000 years. Only a legacy file or a hand edit puts an id there, so every id at
//! or past it is moved down, with every column that refers to it ([`Schema::id_references`], this file's and
//! other files'), to the ids after the largest below it, in the same order; the counter then stands at the
//! last of them.
//!
//! The files that refer to the table change first, each in one transaction that records the ids it moved
//! (`provenance`, [`RENUMBERED_EVENT`]), the table's own file last. A repair killed between two of those
//! commits leaves the table out of ids (said by its owner and doctor, whose remedy is the repair again),
//! and the next one moves the ids still there to the new ids recorded: every file ends naming the same
//! rows. Nothing else a process does in between refers to the ids that moved: the table takes no row, and
//! the ids moved to are past every id anyone holds.
//!
//! A backup taken before still names the old ids. A restore puts it back moved to the new ones, as the data
//! directory's files record them ([`catch_up`]): one file restored alone then names the same rows as the file
//! it joins. A file put back without them (by hand, or by an earlier build) is told by doctor
//! ([`tables_named_by_old_ids`]), and repair moves them in place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::check::quote;
use crate::error::Result;
use crate::key::Key;
use crate::open_database::OwnerConnection;
use crate::provenance::Provenance;
use crate::records;
use crate::schema::{IdReference, Schema};

/// The first id never handed out by counting (2^62): ids at or past it are moved down.
pub const FAR_IDS: i64 = 1 << 62;

/// The `provenance` event of a file whose ids, or references to ids, were moved down; its detail is the
/// [`IdMoves`] as JSON.
pub const RENUMBERED_EVENT: &str = "renumbered";

/// The ids of one table moved down: `(old, new)` pairs, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMoves {
    /// Which repair moved them (random): recorded in the table's file once it finished there.
    pub run: String,
    /// The table's file and name.
    pub database: String,
    pub table: String,
    pub ids: Vec<(i64, i64)>,
    /// Where the table's counter stands once they moved: the last new id, or the largest below
    /// [`FAR_IDS`] when none moved (the row at the limit was deleted, and nothing names it).
    pub counter: i64,
}

/// What [`give_smaller_ids`] did to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renumbered {
    pub table: String,
    /// The ids moved: the table's rows at or past [`FAR_IDS`], and the ids only referred to there (a deleted
    /// row's, still named by another table's rows).
    pub moved: u64,
    /// The ids they were given, `first..=last` (in the order of the ids they had); the table's next row gets
    /// `last + 1`. With nothing moved, `last` is where the counter now stands and `first` is `last + 1`.
    pub first: i64,
    pub last: i64,
    /// Each referring column (`file's table.column`) and how many of its values moved with the ids.
    pub references: Vec<(String, u64)>,
}

/// The columns of `schema`'s file that hold ids of `table` in the file `file`.
fn references_to<'a>(schema: &'a Schema, file: &'a str, table: &'a str) -> impl Iterator<Item = &'a IdReference> + 'a {
    schema
        .id_references
        .iter()
        .filter(move |r| r.target_file == file && r.target_table == table)
}

/// `selected` (as `id`) of the rows of `from` (a table, with a condition) whose `column` compares by `compared`
/// to `?1`.
fn holding(selected: &str, column: &str, from: &str, only_where: Option<&str>, compared: &str) -> String {
    format!(
        "SELECT {selected} AS id FROM {from} WHERE {column} {compared} AND ({})",
        only_where.unwrap_or("1")
    )
}

/// A place of a table's ids: column (`rowid`: the table's own), its table, which of its rows hold such an id
/// (an SQL condition, `None`: every row) and how its ids are moved ([`IdReference::moved_by`]).
type Place<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// The places in `conn`'s file (of `schema`) holding ids of `table` (of the file `file`): the table's own
/// `rowid` when it is this file's, then each referring column. Those the file does not have are left out: a
/// backup of an older schema version, put back by a restore, may lack a table or column this build declares
/// (activity.db's running totals came with version 4).
fn places<'a>(
    conn: &Connection,
    schema: &'a Schema,
    file: &'a str,
    table: &'a str,
) -> rusqlite::Result<Vec<Place<'a>>> {
    let own = (schema.file_name == file).then_some(("rowid", table, None, None));
    let mut held = Vec::new();
    for (column, from, only_where, moved_by) in own
        .into_iter()
        .chain(references_to(schema, file, table).map(|r| (r.column, r.table, r.only_where, r.moved_by)))
    {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)
                AND (?2 = 'rowid' OR EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2))",
            [from, column],
            |r| r.get(0),
        )?;
        if exists {
            held.push((column, from, only_where, moved_by));
        }
    }
    Ok(held)
}

/// The largest id below [`FAR_IDS`] and every id at or past it, among the places of `conn`'s file
/// ([`places`]).
fn ids_held(conn: &Connection, schema: &Schema, file: &str, table: &str) -> rusqlite::Result<(i64, Vec<i64>)> {
    let (mut below, mut far) = (Vec::new(), Vec::new());
    for (column, from, only_where, _) in places(conn, schema, file, table)? {
        let (column, from) = (quote(column), quote(from));
        below.push(holding(&format!("max({column})"), &column, &from, only_where, "< ?1"));
        far.push(holding(&column, &column, &from, only_where, ">= ?1"));
    }
    if below.is_empty() {
        return Ok((0, Vec::new()));
    }
    let below: i64 = conn.query_row(
        &format!("SELECT IFNULL(max(id), 0) FROM ({})", below.join(" UNION ALL ")),
        [FAR_IDS],
        |r| r.get(0),
    )?;
    let far = conn
        .prepare(&format!("SELECT id FROM ({}) ORDER BY id", far.join(" UNION ")))?
        .query_map([FAR_IDS], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok((below, far))
}

/// Floors for the counters of `file`'s tables ([`crate::restore::raise_counters`]) with what `moves` (the
/// data directory's records) moved taken into account: a floor at or past [`FAR_IDS`] of a table a repair gave
/// smaller ids comes from a file of before that repair (its counter, its rows, or another file's references
/// still naming the old ids) and stands for ids the repair moved, so it becomes where the repair left the
/// table's counter ([`IdMoves::counter`]). Raised to the old id, the counter would leave the table out of ids
/// again, and its owner's next insert would fail, until the next repair.
pub fn floors_after_moves(file: &str, floors: Vec<(String, i64)>, moves: &[IdMoves]) -> Vec<(String, i64)> {
    floors
        .into_iter()
        .map(|(table, floor)| {
            let left_at = moves
                .iter()
                .filter(|m| m.database == file && m.table == table)
                .map(|m| m.counter)
                .max();
            match left_at {
                Some(counter) if floor >= FAR_IDS => (table, counter),
                _ => (table, floor),
            }
        })
        .collect()
}

/// Every move of ids recorded in `conn`'s file, oldest first: what a restore of another file from a backup
/// taken before them brings that file up to ([`catch_up`]).
pub fn recorded_runs(conn: &Connection) -> rusqlite::Result<Vec<IdMoves>> {
    Ok(Provenance::read_all(conn)?
        .into_iter()
        .filter(|p| p.event == RENUMBERED_EVENT)
        .filter_map(|p| serde_json::from_str::<IdMoves>(p.detail.as_deref()?).ok())
        .collect())
}

/// The ids of `file`'s `table` recorded as moved in `conn`'s file, `(old, new)`, oldest first: a file of
/// `table` put back from before the repair that moved them still has the old ones.
pub fn ids_moved(conn: &Connection, file: &str, table: &str) -> rusqlite::Result<Vec<(i64, i64)>> {
    Ok(recorded(conn, file, table)?.into_iter().flat_map(|m| m.ids).collect())
}

/// The ids recorded as moved for `table` of `file` in `conn`'s file, oldest first.
fn recorded(conn: &Connection, file: &str, table: &str) -> rusqlite::Result<Vec<IdMoves>> {
    Ok(recorded_runs(conn)?
        .into_iter()
        .filter(|m| m.database == file && m.table == table)
        .collect())
}

/// Where the ids of `owner`'s `table` at or past [`FAR_IDS`] go, from what `owner`'s file and `others` hold:
/// the new ids a repair stopped before the table's file changed recorded in the others (a run the table's
/// file does not record; the run goes on under its name), and for the rest the ids after the largest below
/// [`FAR_IDS`] that any of the files holds.
fn plan(owner: &OwnerConnection, table: &str, others: &[&mut OwnerConnection]) -> Result<IdMoves> {
    let file = owner.schema().file_name;
    let finished: Vec<String> = owner
        .read(|c| recorded(c, file, table))?
        .into_iter()
        .map(|m| m.run)
        .collect();
    let mut below = 0;
    let mut far = BTreeSet::new();
    let mut earlier: BTreeMap<i64, i64> = BTreeMap::new();
    let mut run = None;
    for conn in std::iter::once(owner).chain(others.iter().map(|o| &**o)) {
        let (b, f) = conn.read(|c| ids_held(c, conn.schema(), file, table))?;
        below = below.max(b);
        far.extend(f);
        for unfinished in conn
            .read(|c| recorded(c, file, table))?
            .into_iter()
            .filter(|m| !finished.contains(&m.run))
        {
            earlier.extend(unfinished.ids);
            run = Some(unfinished.run);
        }
    }
    let run = match run {
        Some(run) => run,
        None => owner.read(|c| c.query_row("SELECT lower(hex(randomblob(8)))", [], |r| r.get(0)))?,
    };
    let mut next = below.max(earlier.values().copied().max().unwrap_or(0));
    let ids: Vec<(i64, i64)> = far
        .into_iter()
        .map(|old| match earlier.get(&old) {
            Some(&new) => (old, new),
            None => {
                next += 1;
                (old, next)
            }
        })
        .collect();
    Ok(IdMoves {
        run,
        database: file.to_string(),
        table: table.to_string(),
        counter: ids.iter().map(|(_, new)| *new).max().unwrap_or(0).max(below),
        ids,
    })
}

/// Moves the ids of `moves` in `conn`'s file: each referring column, then the table and its counter when
/// they are this file's; records it in `provenance` when `record`. Inside the caller's write transaction: it
/// changes ids a foreign key refers to, so the foreign keys are checked at its commit (`defer_foreign_keys`,
/// reset by the commit: <https://sqlite.org/pragma.html#pragma_defer_foreign_keys>). The table's ids are set
/// as `rowid`, which fires none of its `UPDATE OF` triggers (activity.db's running totals watch
/// `end_time_ms`). Moving again what moved already changes nothing: the new ids are all below the old. The
/// counter is lowered only from the far ids, and never below a row the table still holds (a copy put back
/// from a backup may hold a far row the move does not name). Returns the table's own rows moved and each
/// referring column's values moved (`file's table.column`).
fn apply(conn: &Connection, schema: &Schema, moves: &IdMoves, record: bool) -> rusqlite::Result<Moved> {
    conn.pragma_update(None, "defer_foreign_keys", true)?;
    conn.execute_batch("CREATE TEMP TABLE renumbered (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")?;
    let mut insert = conn.prepare("INSERT INTO temp.renumbered (old, new) VALUES (?1, ?2)")?;
    for (old, new) in &moves.ids {
        insert.execute([old, new])?;
    }
    // Finalized before the table it writes is dropped below.
    drop(insert);
    let mut moved = Moved::default();
    for (name, table, only_where, moved_by) in places(conn, schema, &moves.database, &moves.table)? {
        let (column, from) = (quote(name), quote(table));
        let old_ids = format!(
            "{column} IN (SELECT old FROM temp.renumbered) AND ({})",
            only_where.unwrap_or("1")
        );
        let n = match moved_by {
            Some(sql) => {
                let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {from} WHERE {old_ids}"), [], |r| r.get(0))?;
                conn.execute_batch(sql)?;
                n as u64
            }
            None => conn.execute(
                &format!("UPDATE {from} SET {column} = (SELECT new FROM temp.renumbered WHERE old = {column}) WHERE {old_ids}"),
                [],
            )? as u64,
        };
        if name == "rowid" {
            moved.rows = n;
        } else {
            moved
                .references
                .push((format!("{}'s {table}.{name}", schema.file_name), n));
        }
    }
    conn.execute_batch("DROP TABLE temp.renumbered")?;
    if schema.file_name == moves.database {
        conn.execute(
            &format!(
                "UPDATE sqlite_sequence SET seq = max(?2, (SELECT IFNULL(max(rowid), 0) FROM {}))
                 WHERE name = ?1 AND seq >= ?3",
                quote(&moves.table)
            ),
            rusqlite::params![moves.table, moves.counter, FAR_IDS],
        )?;
    }
    if record {
        Provenance::with_json_detail(RENUMBERED_EVENT, moves)?.insert(conn)?;
    }
    Ok(moved)
}

/// What [`apply`] moved in one file.
#[derive(Debug, Default)]
struct Moved {
    rows: u64,
    references: Vec<(String, u64)>,
}

/// What [`catch_up`] moved in a file put back from a backup, for one move of ids the data directory records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaughtUp {
    /// The table whose ids moved (`file's table`).
    pub table: String,
    /// Its rows given their new ids (when the file put back is the table's own), and each referring column
    /// (`file's table.column`) with how many of its values were.
    pub rows: u64,
    pub references: Vec<(String, u64)>,
}

/// Whether `conn`'s file (of `schema`) still holds, in any of its places, one of the ids `moves` moved away.
fn holds_old_ids(conn: &Connection, schema: &Schema, moves: &IdMoves) -> rusqlite::Result<bool> {
    let (_, far) = ids_held(conn, schema, &moves.database, &moves.table)?;
    let old: BTreeSet<i64> = moves.ids.iter().map(|(old, _)| *old).collect();
    Ok(far.iter().any(|id| old.contains(id)))
}

/// The moves of ids recorded by the files beside `path` that `schema`'s rows refer to, of the tables referred
/// to (each such file records the moves of its own tables: [`give_smaller_ids`]). A file that does not open
/// under `key` gives none.
pub fn moves_recorded_beside(path: &Path, schema: &Schema, key: Option<&Key>) -> Vec<IdMoves> {
    let files: BTreeSet<&str> = schema
        .id_references
        .iter()
        .filter(|r| r.target_file != schema.file_name)
        .map(|r| r.target_file)
        .collect();
    files
        .into_iter()
        .filter_map(|file| crate::read_pool::open_if_readable(&crate::files::parent_dir(path).join(file), key))
        .flat_map(|conn| recorded_runs(&conn).unwrap_or_default())
        .filter(|m| references_to(schema, &m.database, &m.table).next().is_some())
        .collect()
}

/// The tables of other files (`file's table`) whose ids `conn`'s file (of `schema`) still names by the old
/// ids that `moves` ([`moves_recorded_beside`]) moved: a file put back from before those moves without them
/// ([`catch_up`] brings it up to them). Said by doctor as [`crate::Error::OldIds`].
pub fn tables_named_by_old_ids(conn: &Connection, schema: &Schema, moves: &[IdMoves]) -> rusqlite::Result<Vec<String>> {
    let mut named = BTreeSet::new();
    for m in moves {
        if holds_old_ids(conn, schema, m)? {
            named.insert(format!("{}'s {}", m.database, m.table));
        }
    }
    Ok(named.into_iter().collect())
}

impl CaughtUp {
    /// What moved, as said in parentheses: "1 of its rows, config.db's project_domains.project_id: 1".
    pub fn places(&self) -> String {
        let rows = (self.rows > 0).then(|| format!("{} of its rows", self.rows));
        let places: Vec<String> = rows
            .into_iter()
            .chain(self.references.iter().map(|(column, n)| format!("{column}: {n}")))
            .collect();
        places.join(", ")
    }
}

impl std::fmt::Display for CaughtUp {
    /// Said of a file put back from a backup (or built on one): "config.db's projects got smaller ids from a
    /// repair after this backup was taken, and the backup named them by the old ones: moved to the new (1 of
    /// its rows, config.db's project_domains.project_id: 1)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} got smaller ids from a repair after this backup was taken, and the backup named them by the old \
             ones: moved to the new ({})",
            self.table,
            self.places()
        )
    }
}

/// Brings a file put back from a backup (`conn`, of `schema`, inside the restore's write transaction) up to
/// the ids moved since the backup was taken, as the data directory's files record them (`runs`, their
/// [`recorded_runs`]): without it, a backup of activity.db taken before config.db's projects were given
/// smaller ids names each of them by its old id, and its sessions show under a project that does not
/// exist. A move the file does not record is applied and recorded (a repair stopped before this file takes
/// the same ids when it runs again); one it records is applied again only to the old ids it still holds (a
/// salvage's rows taken from an older backup). Each move is applied once whichever file records it.
pub fn catch_up(conn: &Connection, schema: &Schema, runs: &[IdMoves]) -> rusqlite::Result<Vec<CaughtUp>> {
    let known = recorded_runs(conn)?;
    let mut done = BTreeSet::new();
    let mut caught = Vec::new();
    for moves in runs {
        if !done.insert((&moves.run, &moves.database, &moves.table))
            || places(conn, schema, &moves.database, &moves.table)?.is_empty()
        {
            continue;
        }
        let recorded = known
            .iter()
            .any(|m| m.run == moves.run && m.database == moves.database && m.table == moves.table);
        if recorded && !holds_old_ids(conn, schema, moves)? {
            continue;
        }
        let moved = apply(conn, schema, moves, !recorded)?;
        if moved.rows > 0 || moved.references.iter().any(|(_, n)| *n > 0) {
            caught.push(CaughtUp {
                table: format!("{}'s {}", moves.database, moves.table),
                rows: moved.rows,
                references: moved.references.into_iter().filter(|(_, n)| *n > 0).collect(),
            });
        }
    }
    Ok(caught)
}

/// Gives the rows of `table` of `owner`'s file, out of ids ([`crate::restore::tables_out_of_ids`]), smaller
/// ones, with every reference to them in that file and in `others` (the owners of every other file whose
/// schema refers to the table: their locks prove nobody else writes them), each file in one write
/// transaction, the table's own last (see the module); then lowers the record of the ids the table handed
/// out ([`records::counters_path`]), which would otherwise raise the counter back to the limit at the next
/// open or restore.
pub fn give_smaller_ids(
    owner: &mut OwnerConnection,
    table: &str,
    others: &mut [&mut OwnerConnection],
) -> Result<Renumbered> {
    let moves = plan(owner, table, others)?;
    let mut references = Vec::new();
    for other in others.iter_mut() {
        let schema = other.schema();
        references.extend(other.write(|tx| apply(tx, schema, &moves, true))?.references);
    }
    let (schema, path) = (owner.schema(), owner.path().to_path_buf());
    let own = owner.write(|tx| {
        let changed = apply(tx, schema, &moves, true)?.references;
        // Before the commit: a record left at the limit by a kill after it would raise the counter back
        // there at the next owner's open (the record only ever raises it), while a record lowered for a
        // commit that then fails is only lower than the file's counter, which protects the same ids.
        lower_recorded(&path, &moves);
        Ok(changed)
    })?;
    references.splice(0..0, own);
    let last = moves.counter;
    let moved = moves.ids.len() as u64;
    Ok(Renumbered {
        table: table.to_string(),
        moved,
        first: moves.ids.first().map_or(last + 1, |(_, new)| *new),
        last,
        references,
    })
}

/// Lowers `db`'s record of the ids `moves.table` handed out to where its counter now stands; best effort, as
/// every write of the record.
fn lower_recorded(db: &Path, moves: &IdMoves) {
    let mut recorded = records::counters_handed_out(db);
    if let Some(seq) = recorded.get_mut(&moves.table) {
        *seq = moves.counter;
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
