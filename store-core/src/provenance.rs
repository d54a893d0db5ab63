//! Where a database's content came from: a split of a legacy file, a restore from a backup, a fresh start
//! after repair. Kept in the file itself (`provenance`, created with `schema_migrations`), so a tool can tell
//! its own finished work from anything else.

use std::ops::RangeInclusive;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::key::Key;

/// The event an owner records when it repaired state a previous owner left behind by stopping uncleanly
/// (for example: closed what it had left open). Diagnostics report the last one.
pub const RECOVERY_EVENT: &str = "recovery";

/// The event `repair` records when it wrote back the header ids of a file rebuilt without them
/// ([`restore_header_ids`](crate::open_database::restore_header_ids)); `source_version` is the version.
pub const HEADER_IDS_EVENT: &str = "header-ids";

/// The event `repair` records when it recounted derived tables that disagreed with the rows they are derived
/// from ([`OwnerConnection::recount_derived`](crate::OwnerConnection::recount_derived)); `detail` is the
/// [`Disagreement`](crate::Disagreement) as JSON.
pub const DERIVED_RECOUNTED_EVENT: &str = "derived-recounted";

/// The event that gives a database file its lineage: a random id (32 hexadecimal digits, in `detail`) that
/// the file gets at its first open as an owner by a build that knows lineages, and that every copy of it
/// keeps: a backup is a page copy, a restore puts such a copy in place, a salvage carries the damaged
/// file's. Two data directories backing up into one folder are told apart by it: rotation removes only
/// backups of the file's own lineage, and a restore or repair from a folder takes the file's own backups
/// (`backup::backups_for`). The newest record counts. A data directory copied whole (`cp -r`) keeps its
/// lineage: its copy's backups and the original's are not told apart.
pub const LINEAGE_EVENT: &str = "lineage";

/// One provenance record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// What happened: `split`, `restore`, `backup`, `recovery`, `repair-empty`.
    pub event: String,
    /// When, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
    pub source_path: Option<String>,
    pub source_sha256: Option<String>,
    pub source_version: Option<i64>,
    /// Free text (a split's id, a note). Never a settings value.
    pub detail: Option<String>,
}

impl Provenance {
    /// A record of `event` now.
    pub fn now(event: &str) -> Provenance {
        Provenance {
            event: event.to_string(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            source_path: None,
            source_sha256: None,
            source_version: None,
            detail: None,
        }
    }

    /// A record of `event` now whose detail is `detail` as JSON (what a repair changed: tables and ids, never a
    /// value of a row).
    pub fn with_json_detail(event: &str, detail: &impl serde::Serialize) -> rusqlite::Result<Provenance> {
        let detail = serde_json::to_string(detail).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Provenance {
            detail: Some(detail),
            ..Provenance::now(event)
        })
    }

    /// A record of `event` now, from the file at `source`, named by its absolute path: a path as typed
    /// (relative to wherever the command ran) says nothing once read elsewhere, and two data directories
    /// typed alike from different places would read as one.
    pub fn from_file(event: &str, source: &Path) -> Provenance {
        Provenance {
            source_path: Some(crate::files::absolute(source).display().to_string()),
            ..Provenance::now(event)
        }
    }

    /// Inserts the record (inside the caller's transaction).
    pub fn insert(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO provenance (event, at_ms, source_path, source_sha256, source_version, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.event,
                self.at_ms,
                self.source_path,
                self.source_sha256,
                self.source_version,
                self.detail
            ],
        )?;
        Ok(())
    }

    /// Whether the file has the `provenance` table (every file a migration has run on does).
    pub fn table_exists(conn: &Connection) -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'provenance')",
            [],
            |r| r.get(0),
        )
    }

    /// The file's lineage: the detail of its newest `lineage` record (see [`LINEAGE_EVENT`]), if any.
    pub fn lineage(conn: &Connection) -> rusqlite::Result<Option<String>> {
        if !Self::table_exists(conn)? {
            return Ok(None);
        }
        conn.query_row(
            "SELECT detail FROM provenance WHERE event = ?1 ORDER BY id DESC LIMIT 1",
            [LINEAGE_EVENT],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map(Option::flatten)
    }

    /// Gives the file a lineage of its own when it has none: 16 random bytes from SQLite's generator, which
    /// the operating system seeds (<https://sqlite.org/lang_corefunc.html#randomblob>). One statement, so
    /// atomic. A file without the `provenance` table (no migration has run) is left alone.
    pub fn ensure_lineage(conn: &Connection) -> rusqlite::Result<()> {
        if Self::table_exists(conn)? && Self::lineage(conn)?.is_none() {
            conn.execute(
                "INSERT INTO provenance (event, at_ms, detail) VALUES (?1, ?2, lower(hex(randomblob(16))))",
                params![LINEAGE_EVENT, chrono::Utc::now().timestamp_millis()],
            )?;
        }
        Ok(())
    }

    /// A record that makes `lineage` the file's (inside the caller's transaction): a file rebuilt from
    /// another (a salvage) keeps the lineage of the one it stands for.
    pub fn carried_lineage(lineage: &str) -> Provenance {
        Provenance {
            detail: Some(lineage.to_string()),
            ..Provenance::now(LINEAGE_EVENT)
        }
    }

    /// A record of `event` now saying that the rows of the ids `unreadable` (a salvage's ranges it could not
    /// read) are lost with the damaged file: read back by [`missing_ids`]. `None` when there are none.
    pub fn lost_to_damage(event: &str, unreadable: &[IdRange]) -> Option<Provenance> {
        (!unreadable.is_empty()).then(|| {
            Provenance::now(event).with_missing(MissingIdsDetail {
                lost_to_damage: unreadable.to_vec(),
                ..MissingIdsDetail::default()
            })
        })
    }

    /// This record, saying in its detail that the ids `left_out` (handed out by the file a restore replaced
    /// after its backup was taken, and still held by it) and `lost_to_damage` (as
    /// [`lost_to_damage`](Self::lost_to_damage)) are not in the file: read back by [`missing_ids`]. A
    /// restore's record also carries what the file it replaced recorded of ids it lacked
    /// ([`missing_ranges_past`]). Nothing when there are none.
    pub fn with_missing_ids(self, left_out: &[IdRange], lost_to_damage: &[IdRange]) -> Provenance {
        self.with_missing(MissingIdsDetail {
            left_out: left_out.to_vec(),
            lost_to_damage: lost_to_damage.to_vec(),
        })
    }

    fn with_missing(mut self, missing: MissingIdsDetail) -> Provenance {
        if !missing.left_out.is_empty() || !missing.lost_to_damage.is_empty() {
            self.detail = serde_json::to_string(&missing).ok();
        }
        self
    }

    /// All records, oldest first. A file without the table (never migrated) has none.
    pub fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Provenance>> {
        if !Self::table_exists(conn)? {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT event, at_ms, source_path, source_sha256, source_version, detail FROM provenance ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            Ok(Provenance {
                event: r.get(0)?,
                at_ms: r.get(1)?,
                source_path: r.get(2)?,
                source_sha256: r.get(3)?,
                source_version: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect()
    }
}

/// Ids of one table, `first..=last`: handed out by a file after a backup of it was taken (by its
/// AUTOINCREMENT counter: an id handed out and its row deleted since is among them, until a restore keeps
/// only those the file still held), or rowids a salvage could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IdRange {
    pub table: String,
    pub first: i64,
    pub last: i64,
}

/// The detail of a record saying which ids the file does not have, and why.
#[derive(Default, Serialize, serde::Deserialize)]
struct MissingIdsDetail {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    left_out: Vec<IdRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lost_to_damage: Vec<IdRange>,
}

/// Ids of one table a file may lack for a reason other than a deletion, from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissingIds {
    /// Left out by restores: the files they replaced had handed them out after the backups were taken, and
    /// still held them. An id here that the file lacks went with a replaced file (kept aside as `<db>.replaced-<time>` until
    /// `cleanup`).
    pub left_out: Vec<RangeInclusive<i64>>,
    /// In ranges salvages could not read from a damaged file, past the counters of the backup they stood on
    /// (if any): an id here that the file lacks was lost with the damage, or deleted before it.
    pub lost_to_damage: Vec<RangeInclusive<i64>>,
    /// Given smaller ids by repairs, `(old, new)` ([`crate::renumber`]'s records): a row of another file
    /// naming an old one was put back from before the repair without its moves (copied by hand, or restored
    /// by an earlier build), and names the row now at the new id (`splitstore repair` moves it there).
    pub moved: Vec<(i64, i64)>,
}

impl MissingIds {
    /// Why the file lacks `id`, if its records say: a repair moved it, a restore left it out, or damage lost
    /// it (`None`: as far as the file knows, deleted).
    pub fn why(&self, id: i64) -> Option<MissingBecause> {
        let among = |ranges: &[RangeInclusive<i64>]| ranges.iter().any(|r| r.contains(&id));
        if let Some(&(_, now)) = self.moved.iter().find(|(old, _)| *old == id) {
            Some(MissingBecause::MovedByRepair { now })
        } else if among(&self.left_out) {
            Some(MissingBecause::LeftOutByRestore)
        } else if among(&self.lost_to_damage) {
            Some(MissingBecause::LostToDamage)
        } else {
            None
        }
    }
}

/// See [`MissingIds::why`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingBecause {
    LeftOutByRestore,
    LostToDamage,
    /// A repair gave the row the id `now` (the table had run out of ids).
    MovedByRepair {
        now: i64,
    },
}

/// The ids of `table` that restores of this file left out, salvages of it could not read and repairs moved,
/// from their records, oldest first. A file without the `provenance` table has none.
pub fn missing_ids(conn: &Connection, table: &str) -> rusqlite::Result<MissingIds> {
    let of_table = |ranges: Vec<IdRange>| {
        ranges
            .into_iter()
            .filter(|ids| ids.table == table)
            .map(|ids| ids.first..=ids.last)
            .collect::<Vec<_>>()
    };
    let recorded = missing_records(conn)?;
    Ok(MissingIds {
        left_out: of_table(recorded.left_out),
        lost_to_damage: of_table(recorded.lost_to_damage),
        moved: crate::renumber::recorded_runs(conn)?
            .into_iter()
            .filter(|m| m.table == table)
            .flat_map(|m| m.ids)
            .collect(),
    })
}

/// Every table's ids that restores of this file left out and salvages of it could not read, from their
/// records, oldest first.
fn missing_records(conn: &Connection) -> rusqlite::Result<MissingIdsDetail> {
    let mut missing = MissingIdsDetail::default();
    if !Provenance::table_exists(conn)? {
        return Ok(missing);
    }
    let mut stmt = conn.prepare(
        "SELECT detail FROM provenance WHERE detail LIKE '{\"left_out\":%' OR detail LIKE '{\"lost_to_damage\":%'
         ORDER BY id",
    )?;
    let details = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for detail in details {
        // A detail that does not parse is not a record of this kind: nothing to say about ids.
        let Ok(parsed) = serde_json::from_str::<MissingIdsDetail>(&detail?) else {
            continue;
        };
        missing.left_out.extend(parsed.left_out);
        missing.lost_to_damage.extend(parsed.lost_to_damage);
    }
    Ok(missing)
}

/// What the file at `path` (read-only, with `key`) records of ids it lacks (left out by its restores, lost
/// to damage its salvages met), as (left out, lost to damage), kept only past `floors` (per table, the
/// counters of the backup about to replace it: an id up to them is the backup's to hold, or deleted before
/// it was taken, and its own records speak for it). A restore carries them into the file it puts in place:
/// that file lacks those ids too, and without them a project a first restore left out would read as deleted
/// after a second restore from an older backup. Nothing when the file cannot be read.
pub fn missing_ranges_past(path: &Path, key: Option<&Key>, floors: &[(String, i64)]) -> (Vec<IdRange>, Vec<IdRange>) {
    let Some(recorded) = crate::read_pool::open_if_readable(path, key).and_then(|c| missing_records(&c).ok()) else {
        return (Vec::new(), Vec::new());
    };
    let past = |ranges: Vec<IdRange>| -> Vec<IdRange> {
        ranges
            .into_iter()
            .filter_map(|mut ids| {
                let floor = floors
                    .iter()
                    .find(|(table, _)| *table == ids.table)
                    .map_or(0, |(_, seq)| *seq);
                ids.first = ids.first.max(floor.saturating_add(1));
                (ids.first <= ids.last).then_some(ids)
            })
            .collect()
    };
    (past(recorded.left_out), past(recorded.lost_to_damage))
}

/// The lineage of the database file at `path` (read-only, with `key`), or `None` when it has none or cannot
/// be read (missing, not a regular file, damaged where the record is, under another key): callers then
/// cannot tell whose backups are whose, and say so where it matters.
pub fn lineage_of(path: &Path, key: Option<&Key>) -> Option<String> {
    let conn = crate::read_pool::open_if_readable(path, key)?;
    Provenance::lineage(&conn).ok().flatten()
}
