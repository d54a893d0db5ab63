//! The indexes and triggers of a file's schema that a tool dropped or changed, and their return by a repair.
//!
//! An owner checks the tables it writes, not every object of its schema, and a file missing an index or a
//! trigger opens and works: without an index the reads that use it scan its table (reports slow down as
//! history grows), and without a trigger what it keeps is no longer kept (activity.db's running totals stop
//! counting the sessions that end). The `sqlite3` shell or a database browser drops them as easily as a row
//! (`DROP INDEX`, a table edited and rebuilt without them). Doctor compares the file's with those of a fresh
//! file at its version, built in memory by this build's migrations (`schema_objects_missing`); `repair`
//! creates them again with the schema's own SQL. Objects a user added are not this build's concern.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;
use crate::schema::{Schema, collapse};

/// The provenance event of a repair's return of dropped or changed indexes and triggers; its detail is the
/// list of [`SchemaObject`]s as JSON.
pub const SCHEMA_OBJECTS_RESTORED_EVENT: &str = "schema-objects-restored";

/// An index or trigger of the schema that the file lacks, or holds under its name with other SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObject {
    /// `index` or `trigger`.
    pub kind: String,
    pub name: String,
    /// The file holds an object of that name with other SQL (whitespace aside); otherwise it has none.
    pub changed: bool,
}

impl std::fmt::Display for SchemaObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.changed { "changed" } else { "dropped" };
        write!(f, "{} {} ({how})", self.kind, self.name)
    }
}

/// The schema's indexes and triggers at `version` that the file of `conn` lacks or holds changed, with the
/// schema's SQL for each, in the fresh file's order. Empty for a file at version 0.
fn differing(
    conn: &Connection,
    schema: &'static Schema,
    version: u32,
) -> rusqlite::Result<Vec<(SchemaObject, String)>> {
    if version == 0 {
        return Ok(Vec::new());
    }
    // A fresh file that cannot be built is a bug of the build's migrations, refused at every open already.
    let Some(fresh) = crate::migrate::fresh_file(schema, version) else {
        return Ok(Vec::new());
    };
    const OBJECTS: &str = "SELECT type, name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid";
    let wanted: Vec<(String, String, String)> = fresh
        .prepare(OBJECTS)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut held = conn.prepare("SELECT sql FROM sqlite_schema WHERE type = ?1 AND name = ?2")?;
    let mut out = Vec::new();
    for (kind, name, sql) in wanted {
        let found: Option<Option<String>> =
            rusqlite::OptionalExtension::optional(held.query_row((&kind, &name), |r| r.get(0)))?;
        let changed = match found {
            None => false,
            Some(found) if found.as_deref().map(collapse) == Some(collapse(&sql)) => continue,
            Some(_) => true,
        };
        out.push((SchemaObject { kind, name, changed }, sql));
    }
    Ok(out)
}

/// The indexes and triggers of `schema` at `version` that the file of `conn` lacks or holds changed.
pub fn missing(conn: &Connection, schema: &'static Schema, version: u32) -> rusqlite::Result<Vec<SchemaObject>> {
    Ok(differing(conn, schema, version)?.into_iter().map(|(o, _)| o).collect())
}

/// Creates them again with the schema's SQL (a changed one dropped first), inside the caller's write
/// transaction, and records them in `provenance` ([`SCHEMA_OBJECTS_RESTORED_EVENT`]). Empty, and nothing
/// written, when none differ.
pub fn restore(conn: &Connection, schema: &'static Schema, version: u32) -> rusqlite::Result<Vec<SchemaObject>> {
    let differing = differing(conn, schema, version)?;
    for (object, sql) in &differing {
        if object.changed {
            let kind = if object.kind == "index" { "INDEX" } else { "TRIGGER" };
            conn.execute_batch(&format!("DROP {kind} {}", crate::check::quote(&object.name)))?;
        }
        conn.execute_batch(sql)?;
    }
    let restored: Vec<SchemaObject> = differing.into_iter().map(|(o, _)| o).collect();
    if !restored.is_empty() {
        let mut record = Provenance::with_json_detail(SCHEMA_OBJECTS_RESTORED_EVENT, &restored)?;
        record.source_version = Some(i64::from(version));
        record.insert(conn)?;
    }
    Ok(restored)
}
