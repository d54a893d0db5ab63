//! Rows naming a parent row the file no longer holds, and their removal by a repair.
//!
//! SQLite enforces foreign keys only on a connection that turned them on, and they are off by default
//! (<https://sqlite.org/foreignkeys.html>, section 2): the `sqlite3` shell and most database tools delete a
//! parent row without its children. Every open of this family turns them on, so only such a tool leaves these
//! rows; `foreign_key_check` names them (doctor's `foreign_key_violations`). Removing them is what the parent's
//! delete does with foreign keys on when each key is `ON DELETE CASCADE` from a table no key points at, as every
//! key of the schemas that use this is (each schema's tests hold it to that).

use crate::check;
use crate::provenance::Provenance;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// The provenance event of a repair's removal of orphan rows; its detail is the [`OrphansRemoved`] list as
/// JSON (tables and ids, never a value).
pub const ORPHANS_REMOVED_EVENT: &str = "orphans-removed";

/// The rows of `table` a repair removed because the `parent` row each named was gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphansRemoved {
    pub table: String,
    pub parent: String,
    /// Their rowids, ascending.
    pub ids: Vec<i64>,
}

/// Deletes every row `foreign_key_check` names, on `conn` (inside the caller's transaction), and records
/// what it deleted in `provenance` ([`ORPHANS_REMOVED_EVENT`]). Empty, and nothing written, when there were
/// none.
pub fn remove(conn: &Connection) -> rusqlite::Result<Vec<OrphansRemoved>> {
    let mut removed: Vec<OrphansRemoved> = Vec::new();
    // A row of a table without rowids has none to name (no table with a foreign key here is one):
    // `foreign_key_check` still names it after this, and doctor with it.
    for v in check::foreign_key_violations(conn)? {
        let Some(id) = v.rowid else { continue };
        // A row naming two missing parents is named twice: counted once, under the first.
        if conn.execute(
            &format!("DELETE FROM {} WHERE rowid = ?1", check::quote(&v.table)),
            [id],
        )? == 0
        {
            continue;
        }
        match removed.iter_mut().find(|r| r.table == v.table && r.parent == v.parent) {
            Some(r) => r.ids.push(id),
            None => removed.push(OrphansRemoved {
                table: v.table,
                parent: v.parent,
                ids: vec![id],
            }),
        }
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    for r in &mut removed {
        r.ids.sort_unstable();
    }
    Provenance::with_json_detail(ORPHANS_REMOVED_EVENT, &removed)?.insert(conn)?;
    Ok(removed)
}
