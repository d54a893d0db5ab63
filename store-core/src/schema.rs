//! What each database kind declares about itself: its file name, owner, `application_id` and the ordered
//! migrations that build its schema. This is the small "initializer" of Mozilla's sql-support, as data.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};
use sha2::{Digest, Sha256};

/// One database kind: everything store-core knows about it comes from this value. An application declares
/// one `static` per kind; store-core itself names no application, file or id.
#[derive(Debug)]
pub struct Schema {
    /// The file name in a data directory, also used in messages (`events.db`).
    pub file_name: &'static str,
    /// Who owns (writes) this file, for messages (`the recorder`).
    pub owner: &'static str,
    /// The application's command-line tools, named in remedies.
    pub tools: Tools,
    /// `PRAGMA application_id`, distinct per kind, so a file of one kind is never opened as another.
    pub application_id: i32,
    /// Migrations 1..=N, in order. The schema's version is the last one's.
    pub migrations: &'static [Migration],
    /// Set `auto_vacuum=INCREMENTAL` when the file is created (it cannot change later without VACUUM).
    pub incremental_vacuum: bool,
    /// Whether a damaged file with no good backup may be replaced by an empty one when the operator asks
    /// for it (recorded activity may; a user's configuration never does).
    pub may_start_empty: bool,
    /// The database this kind's data came from before it existed, if any (a combined file an earlier
    /// version of the application wrote), so that a file of that kind is named as such, and so that an
    /// owner never starts an empty file beside one that was not converted yet.
    pub predecessor: Option<Predecessor>,
    /// Every column of this kind's tables that holds ids of an AUTOINCREMENT table: another kind's (plain
    /// columns, joined in the application, not by foreign key) and its own (by foreign key or not). A restore
    /// of that other kind raises its AUTOINCREMENT counters past every id referenced here, so an id this file
    /// still points at is never handed out to a new row; a table of its own out of ids
    /// ([`crate::renumber`]) has its ids moved down with every reference to them.
    pub id_references: &'static [IdReference],
    /// Tables only the schema's own triggers write, from other tables' rows (running totals). A salvage
    /// copies none of their rows one by one (the triggers already derive them from the rows it copies): it
    /// takes such a table whole from the damaged file when it reads without damage (it may count rows no
    /// longer stored, such as pruned ones), and otherwise keeps what the triggers derived, and says so.
    /// A schema with derived tables has triggers only to derive them: when every one reads whole, a salvage
    /// copies the other tables with the triggers off, since the copies taken whole replace their work.
    pub derived_tables: &'static [&'static str],
    /// How the derived tables are checked against the rows they derive from, and recounted where they
    /// disagree (`None`: not checked). Triggers keep them only for the writes that go through them: a tool
    /// with none of this build's code (the `sqlite3` shell, a database browser) deletes or changes a row, and
    /// what was derived from it stays. Doctor says it (`totals_disagree`), `repair` recounts.
    pub derived_check: Option<DerivedCheck>,
    /// Tables whose rows never change once written (inserted, later perhaps deleted by retention, never
    /// updated). A salvage on top of a backup keeps the backup's copy of their rows and reads only the rows
    /// past its highest id: a row of the backup is verified, and no legitimate change can be newer, so damage
    /// that still parses can never replace it (and the bulk of the history is not read twice). Rows of other
    /// tables that the damaged file holds changed take its values (a session ended after the backup).
    pub append_only_tables: &'static [&'static str],
    /// The oldest version of this kind's file that this build's readers read, when older than its own
    /// (`None`: only its own, and newer ones it is told it still reads). A reader's queries then ask the
    /// file's version ([`ReadPool::read_versioned`](crate::ReadPool::read_versioned)) and answer from what
    /// that version holds: a process upgraded before the file's owner keeps reading instead of waiting,
    /// maybe for days, for the owner's own upgrade (docs/upgrade.md, "Daemon and server of different builds").
    pub readers_read_from: Option<u32>,
}

/// See [`Schema::derived_check`].
#[derive(Debug, Clone, Copy)]
pub struct DerivedCheck {
    /// Where the derived tables disagree with the rows the file holds, as far as that can be told (a table
    /// that keeps what its rows no longer hold, such as the totals of pruned sessions, is compared only where
    /// nothing was pruned). Reads only; `None` where they agree or cannot be compared.
    pub find: fn(&rusqlite::Connection) -> rusqlite::Result<Option<Disagreement>>,
    /// Recounts them where `find` finds them disagreeing, inside the caller's write transaction, and returns
    /// what it found (`None`: nothing was changed).
    pub recount: fn(&rusqlite::Connection) -> rusqlite::Result<Option<Disagreement>>,
}

/// What [`DerivedCheck::find`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Disagreement {
    /// The first moment compared, in Unix epoch milliseconds (UTC): before it the derived tables may keep
    /// what retention pruned, and are left as they are.
    pub since_ms: i64,
    /// What disagrees, in counts (never a value of a row).
    pub detail: String,
}

/// A column holding ids of another kind's table (see [`Schema::id_references`]).
#[derive(Debug, Clone, Copy)]
pub struct IdReference {
    pub table: &'static str,
    pub column: &'static str,
    /// The rows of `table` whose `column` holds such an id, as an SQL condition (`None`: every row). The
    /// highest id another kind refers to is read at every start of a server and at every restore: with the
    /// condition, from an index whose leading columns it fixes, not by reading the whole table.
    pub only_where: Option<&'static str>,
    /// The kind (its file name) and table whose ids the column holds.
    pub target_file: &'static str,
    pub target_table: &'static str,
    /// How the column's ids are moved when a repair gives the target table's rows new ids
    /// ([`crate::renumber`]), as SQL reading the moves from `temp.renumbered (old, new)`, when its rows are not
    /// independent of each other (a running total: a row per bucket holding the sum up to it). `None`: each
    /// row's id is set to the new one.
    pub moved_by: Option<&'static str>,
}

impl IdReference {
    /// `column` of every row of `table` holds an id of `target_table` in the file `target_file` (or none).
    pub const fn every_row(
        table: &'static str,
        column: &'static str,
        target_file: &'static str,
        target_table: &'static str,
    ) -> IdReference {
        IdReference {
            table,
            column,
            only_where: None,
            target_file,
            target_table,
            moved_by: None,
        }
    }
}

/// The command-line tools of the application that owns a [`Schema`], as remedies name them. Each command
/// takes `--data-dir DIR`: `{program} {owner_subcommand} --data-dir DIR` runs the owner; `{program} doctor`,
/// `backup`, `restore --from FILE` and `repair` operate on a data directory.
#[derive(Debug, Clone, Copy)]
pub struct Tools {
    /// The program (`myapp`).
    pub program: &'static str,
    /// Its subcommand that runs this kind's owner (`recorder`).
    pub owner_subcommand: &'static str,
}

/// A database kind's predecessor: a file an earlier version of the application used, converted once by a
/// tool into the current kinds.
#[derive(Debug, Clone, Copy)]
pub struct Predecessor {
    /// Its conventional file name in the data directory (`old.db`).
    pub file_name: &'static str,
    /// The `user_version`s it was written with, `first..=last`: a SQLite file with tables, no
    /// `application_id` and one of these versions is taken for one.
    pub versions: (u32, u32),
    /// The tool that converts it, as a remedy would name it (`myapp-convert`); it takes `--legacy FILE
    /// --data-dir DIR`.
    pub converter: &'static str,
    /// The prefix of the converter's temporary files in the data directory (a killed run's are leftovers).
    pub converter_temp_prefix: &'static str,
    /// The file the converter writes the rows it could not keep to, in the data directory.
    pub converter_rejects: &'static str,
}

impl Schema {
    /// `{program} {subcommand} --data-dir {dir} {extra}`, the directory quoted for a shell when it needs it,
    /// and `--key-file FILE` at the end when this kind's file in `data_dir` was last opened encrypted (or,
    /// not created yet, has an encrypted database beside it: [`crate::records::encrypted_sibling`]) and
    /// `extra` names no key: copied without the key, the command would only fail with `key_required`.
    pub fn command(&self, subcommand: &str, data_dir: &Path, extra: &str) -> String {
        let mut command = format!(
            "{} {subcommand} --data-dir {}",
            self.tools.program,
            crate::files::shell_quoted(data_dir)
        );
        if !extra.is_empty() {
            command.push(' ');
            command.push_str(extra);
        }
        let db = self.path_in(data_dir);
        let encrypted = match crate::records::encryption(&db) {
            Some(record) => record.encrypted,
            None => crate::records::encrypted_sibling(&db).is_some(),
        };
        // A word of its own: `--backup-key-file` names the key of a backup, not the directory's.
        if encrypted && !extra.split_whitespace().any(|arg| arg == "--key-file") {
            command.push_str(" --key-file FILE");
        }
        command
    }

    /// The command that runs this kind's owner on `data_dir`.
    pub fn owner_command(&self, data_dir: &Path) -> String {
        self.command(self.tools.owner_subcommand, data_dir, "")
    }

    /// The schema version this build writes and reads.
    pub fn end_version(&self) -> u32 {
        self.migrations.len() as u32
    }

    /// The oldest file version readers of this build read: [`readers_read_from`](Self::readers_read_from),
    /// or this build's own version.
    pub fn oldest_readable_version(&self) -> u32 {
        self.readers_read_from
            .map_or(self.end_version(), |v| v.min(self.end_version()))
    }

    /// The path of this database in `data_dir`.
    pub fn path_in(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.file_name)
    }

    /// The file name without `.db`, used to name backups: `events`.
    pub fn stem(&self) -> &'static str {
        self.file_name.strip_suffix(".db").unwrap_or(self.file_name)
    }

    /// Checks the list at start-up: versions contiguous from 1, no duplicates, names present.
    pub fn validate(&self) -> Result<(), String> {
        if self.migrations.is_empty() {
            return Err("there are no migrations".into());
        }
        for (i, m) in self.migrations.iter().enumerate() {
            let expected = i as u32 + 1;
            if m.version != expected {
                return Err(format!(
                    "migration #{} has version {} where {expected} was expected (versions must run 1, 2, 3, ... \
                     without gaps or duplicates)",
                    i + 1,
                    m.version
                ));
            }
            if m.name.trim().is_empty() {
                return Err(format!("migration {} has no name", m.version));
            }
        }
        Ok(())
    }
}

/// One versioned step of a schema.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub step: Step,
    /// Whether readers built for the previous version still read a file at this one.
    pub compat: Compat,
}

/// What a migration means for readers of the previous version (a daemon and a server are upgraded apart,
/// so for a while an older reader meets a newer file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// Adds only what an older reader does not look for (a table, a nullable or defaulted column, an
    /// index): readers select the columns they know by name, so they read the file as before.
    Additive,
    /// Anything else (a rebuild, a renamed or dropped column, changed meaning): older readers refuse the
    /// file with `SchemaNewer`.
    Breaking,
}

/// What a migration does.
pub enum Step {
    /// Plain SQL, run inside the migration's `BEGIN IMMEDIATE` transaction.
    Sql(&'static str),
    /// A table rebuild (<https://sqlite.org/lang_altertable.html#otheralter>, the 12 steps): the engine turns
    /// foreign keys off *before* the transaction (inside one it is a silent no-op) and checks it took, so
    /// `DROP TABLE` does not cascade-delete children; runs `foreign_key_check` before COMMIT; turns them on after.
    Rebuild(&'static str),
    /// A step in Rust. `fingerprint` stands in for the code in the checksum: change it whenever `run` changes
    /// meaning (which, after a release, must never happen).
    Rust {
        run: fn(&Transaction<'_>) -> rusqlite::Result<()>,
        fingerprint: &'static str,
    },
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Sql(sql) => f.debug_tuple("Sql").field(sql).finish(),
            Step::Rebuild(sql) => f.debug_tuple("Rebuild").field(sql).finish(),
            Step::Rust { fingerprint, .. } => f.debug_struct("Rust").field("fingerprint", fingerprint).finish(),
        }
    }
}

impl Migration {
    /// sha256 over the step's kind and text: what `schema_migrations.checksum` records.
    pub fn checksum(&self) -> String {
        let (tag, text) = match &self.step {
            Step::Sql(sql) => ("sql", *sql),
            Step::Rebuild(sql) => ("rebuild", *sql),
            Step::Rust { fingerprint, .. } => ("rust", *fingerprint),
        };
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        h.update([0u8]);
        h.update(text.as_bytes());
        hex(&h.finalize())
    }

    /// The SQL of the step, if it is SQL.
    pub fn sql(&self) -> Option<&'static str> {
        match self.step {
            Step::Sql(s) | Step::Rebuild(s) => Some(s),
            Step::Rust { .. } => None,
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A normalised description of a database's schema: every table's columns, keys, foreign keys and indexes,
/// read through pragmas (so formatting of the stored SQL does not matter), plus views and triggers with
/// whitespace collapsed, plus the header fields that belong to the schema. Two files with equal fingerprints
/// have the same schema.
pub fn schema_fingerprint(conn: &Connection) -> rusqlite::Result<String> {
    let mut out = Vec::new();
    for pragma in ["application_id", "user_version", "auto_vacuum"] {
        let v: i64 = conn.pragma_query_value(None, pragma, |r| r.get(0))?;
        out.push(format!("pragma {pragma}={v}"));
    }
    out.push(objects_fingerprint(conn)?);
    Ok(out.join("\n"))
}

/// [`schema_fingerprint`] without the header fields: the tables, indexes, views and triggers alone. A file
/// rebuilt from `sqlite3 .dump` (which carries no header field) has the same as the file it was dumped from.
pub fn objects_fingerprint(conn: &Connection) -> rusqlite::Result<String> {
    let mut out = Vec::new();
    let objects: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (kind, name, sql) in objects {
        match kind.as_str() {
            "table" => {
                out.push(format!("table {name}"));
                rows(
                    conn,
                    "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1)",
                    &name,
                    6,
                    "  column",
                    &mut out,
                )?;
                rows(
                    conn,
                    "SELECT \"table\", \"from\", \"to\", on_update, on_delete, \"match\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
                    &name,
                    6,
                    "  fk",
                    &mut out,
                )?;
                rows(
                    conn,
                    "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
                    &name,
                    4,
                    "  index",
                    &mut out,
                )?;
            }
            "index" => {
                out.push(format!("index {name}"));
                rows(
                    conn,
                    "SELECT seqno, name, \"desc\", coll, key FROM pragma_index_xinfo(?1) ORDER BY seqno",
                    &name,
                    5,
                    "  key",
                    &mut out,
                )?;
                if let Some(sql) = sql {
                    out.push(format!("  sql {}", collapse(&sql)));
                }
            }
            _ => out.push(format!("{kind} {name} {}", collapse(sql.as_deref().unwrap_or("")))),
        }
    }
    Ok(out.join("\n"))
}

fn rows(conn: &Connection, sql: &str, arg: &str, n: usize, tag: &str, out: &mut Vec<String>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut q = stmt.query([arg])?;
    while let Some(r) = q.next()? {
        let cells: Vec<String> = (0..n)
            .map(|i| r.get::<_, rusqlite::types::Value>(i).map(plain))
            .collect::<rusqlite::Result<_>>()?;
        out.push(format!("{tag} {}", cells.join("|")));
    }
    Ok(())
}

fn plain(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t,
        Value::Blob(b) => format!("x'{}'", hex(&b)),
    }
}

pub(crate) fn collapse(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
