//! `store_core::salvage` on a schema of its own: a damaged file at an older schema version than the build,
//! on top of a backup, with a text-keyed table, a foreign key, a column the damaged file lacks; refusals; an
//! explicit UNIQUE index kept through the copy while plain ones are built again after it.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use store_core::backup::{BackupClass, backup_connection};
use store_core::restore::verify_backup;
use store_core::salvage::{salvage, temp_path};
use store_core::testing::{file_mode, open_at_version, query_i64};
use store_core::{Compat, ErrorKind, Migration, OwnerConnection, Schema, Step, Tools};

static NOTES: Schema = Schema {
    file_name: "notes.db",
    owner: "the notes service",
    tools: Tools {
        program: "notes",
        owner_subcommand: "serve",
    },
    application_id: 0x4E4F_5445,
    migrations: &[
        Migration {
            version: 1,
            name: "notes, tags, prefs",
            step: Step::Sql(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
                 CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                    note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
                                    tag TEXT NOT NULL);
                 CREATE TABLE prefs (key TEXT PRIMARY KEY NOT NULL, value TEXT);",
            ),
            compat: Compat::Breaking,
        },
        Migration {
            version: 2,
            name: "pinned notes",
            step: Step::Sql(
                "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
                 CREATE INDEX notes_body ON notes (body);",
            ),
            compat: Compat::Additive,
        },
    ],
    incremental_vacuum: false,
    may_start_empty: true,
    predecessor: None,
    id_references: &[],
    derived_tables: &[],
    derived_check: None,
    append_only_tables: &[],
    readers_read_from: None,
};

fn ro(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Adds notes (and a tag for each) up to `to`, and prefs `p.0..p.1`.
fn add(conn: &Connection, notes: (i64, i64), prefs: (i64, i64)) {
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in notes.0..notes.1 {
        conn.execute(
            "INSERT INTO notes (id, body) VALUES (?1, ?2)",
            rusqlite::params![i + 1, format!("{i:06} {}", "n".repeat(300))],
        )
        .unwrap();
        conn.execute("INSERT INTO tags (note_id, tag) VALUES (?1, 't')", [i + 1])
            .unwrap();
    }
    for i in prefs.0..prefs.1 {
        conn.execute(
            "INSERT INTO prefs (key, value) VALUES (?1, 'first')",
            [format!("pref.{i:04}")],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

/// Which leaf of a table's b-tree, in page order.
enum Leaf {
    First,
    Second,
    Middle,
}

/// The page number of that leaf of `table`, from SQLite's own `dbstat` on the healthy file.
fn leaf_page(db: &Path, table: &str, leaf: Leaf) -> i64 {
    let offset = match leaf {
        Leaf::First => "0",
        Leaf::Second => "1",
        Leaf::Middle => "(SELECT count(*) / 2 FROM dbstat WHERE name = ?1 AND pagetype = 'leaf')",
    };
    ro(db)
        .query_row(
            &format!(
                "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY pageno
                 LIMIT 1 OFFSET {offset}"
            ),
            [table],
            |r| r.get(0),
        )
        .unwrap()
}

/// The tags of notes.db: (id, note_id, tag), in id order.
fn tags_of(db: &Path) -> Vec<(i64, i64, String)> {
    let conn = ro(db);
    let mut stmt = conn.prepare("SELECT id, note_id, tag FROM tags ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn damage_leaf(db: &Path, table: &str, leaf: Leaf) {
    let page = leaf_page(db, table, leaf);
    let mut bytes = fs::read(db).unwrap();
    let at = (page as usize - 1) * 4096;
    bytes[at..at + 4096].fill(0x5A);
    fs::write(db, &bytes).unwrap();
}

/// notes.db at version 1 in `dir` with 1000 notes (a tag each) and `prefs` prefs, backed up: the file, its
/// owner (still open) and the backup.
fn backed_up_at_v1(dir: &Path, prefs: i64) -> (PathBuf, OwnerConnection, PathBuf) {
    let db = NOTES.path_in(dir);
    let owner = open_at_version(&db, &NOTES, 1).unwrap();
    add(owner.conn(), (0, 1000), (0, prefs));
    let backup = backup_connection(owner.conn(), &db, &NOTES, &dir.join("b"), BackupClass::Manual, 5, None).unwrap();
    (db, owner, backup)
}

#[test]
fn an_older_damaged_file_on_top_of_a_backup_keeps_the_backup_and_adds_newer_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (db, owner, backup) = backed_up_at_v1(dir.path(), 100);
    add(owner.conn(), (1000, 3000), (100, 200));
    owner.conn().execute("UPDATE prefs SET value = 'changed'", []).unwrap();
    // Older rows changed and deleted after the backup.
    owner
        .conn()
        .execute("UPDATE notes SET body = 'edited after the backup' WHERE id = 5", [])
        .unwrap();
    owner.conn().execute("DELETE FROM notes WHERE id = 7", []).unwrap();
    drop(owner);
    damage_leaf(&db, "notes", Leaf::Middle);
    let damaged = fs::read(&db).unwrap();

    let base = verify_backup(&backup, &NOTES, None).unwrap();
    let out = temp_path(&db);
    let report = salvage(&db, &NOTES, Some(&base), &out).unwrap();
    assert_eq!(fs::read(&db).unwrap(), damaged, "the damaged file is only read");
    assert_eq!(
        (report.from_version, report.base_version, report.version),
        (Some(1), Some(1), 2)
    );

    let c = ro(&out);
    assert!(store_core::check::integrity_check(&c).unwrap().is_empty());
    for (table, t) in &report.tables {
        assert_eq!(
            query_i64(&c, &format!("SELECT count(*) FROM {table}")) as u64,
            t.from_backup + t.salvaged,
            "{table}"
        );
    }
    assert!(!report.tables.contains_key("provenance") && !report.tables.contains_key("schema_migrations"));

    let notes = &report.tables["notes"];
    assert_eq!(notes.from_backup, 1000);
    // The damaged file is the newer: its change to an old row wins; a row it deleted stays, and is counted.
    assert_eq!((notes.updated, notes.already_in_backup), (1, 998), "{notes:?}");
    assert_eq!(
        c.query_row("SELECT body FROM notes WHERE id = 5", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "edited after the backup"
    );
    assert_eq!(query_i64(&c, "SELECT count(*) FROM notes WHERE id = 7"), 1);
    for table in ["notes", "tags"] {
        let deleted = format!(
            "{table}: 1 row(s) of the backup are not in the damaged file where it reads (deleted after the backup"
        );
        assert!(
            report.notes.iter().any(|n| n.starts_with(&deleted)),
            "{:?}",
            report.notes
        );
    }
    assert_eq!(
        query_i64(&c, "SELECT count(*) FROM notes WHERE id > 1000") as u64,
        notes.salvaged
    );
    // v1 had no index on notes: the loss is the ids of the unreadable range (dense ids: exact).
    assert_eq!(notes.known_lost_basis.as_deref(), Some("id ranges"), "{notes:?}");
    assert_eq!(notes.salvaged + notes.known_lost, 2000, "{notes:?}");
    assert!(notes.known_lost > 0 && notes.known_lost < 100, "{notes:?}");
    assert_eq!(
        query_i64(&c, "SELECT count(*) FROM notes WHERE pinned <> 0"),
        0,
        "the new column took its default"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("no column pinned")),
        "{:?}",
        report.notes
    );

    // The tags of lost notes point nowhere: refused by the foreign key, not copied.
    let tags = &report.tables["tags"];
    assert_eq!(tags.from_backup, 1000);
    assert_eq!(tags.rejected, notes.known_lost, "{tags:?}");
    assert_eq!(tags.salvaged + tags.rejected, 2000);
    assert!(store_core::check::foreign_key_violations(&c).unwrap().is_empty());

    // Text keys: a value changed after the backup is the damaged file's; keys the backup lacks come from it.
    let prefs = &report.tables["prefs"];
    assert_eq!(
        (
            prefs.from_backup,
            prefs.updated,
            prefs.already_in_backup,
            prefs.salvaged
        ),
        (100, 100, 0, 100),
        "{prefs:?}"
    );
    assert_eq!(query_i64(&c, "SELECT count(*) FROM prefs WHERE value = 'changed'"), 200);

    // No id handed out again: the counters are at least where the damaged file's were.
    assert!(query_i64(&c, "SELECT seq FROM sqlite_sequence WHERE name = 'notes'") >= 3000);
    assert!(query_i64(&c, "SELECT seq FROM sqlite_sequence WHERE name = 'tags'") >= 3000);

    // A finished output: one private file, no lock or WAL beside it.
    assert_eq!(file_mode(&out), 0o600);
    for suffix in ["-wal", "-shm", ".lock"] {
        assert!(!store_core::files::with_suffix(&out, suffix).exists(), "{suffix}");
    }
    assert_eq!(
        c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "delete"
    );
}

#[test]
fn rows_of_the_backup_where_the_damaged_file_is_unreadable_are_kept_as_the_backup_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let (db, owner, backup) = backed_up_at_v1(dir.path(), 0);
    // Every note edited after the backup (same length: the rows stay on their pages).
    owner
        .conn()
        .execute("UPDATE notes SET body = replace(body, 'n', 'e')", [])
        .unwrap();
    owner.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(owner);
    damage_leaf(&db, "notes", Leaf::Middle);

    let base = verify_backup(&backup, &NOTES, None).unwrap();
    let out = temp_path(&db);
    let report = salvage(&db, &NOTES, Some(&base), &out).unwrap();
    let notes = &report.tables["notes"];
    let c = ro(&out);
    let kept_as_backed_up = query_i64(&c, "SELECT count(*) FROM notes WHERE body LIKE '%nnn%'") as u64;
    assert!(kept_as_backed_up > 0, "{notes:?}");
    assert_eq!(notes.unreadable_ranges.len(), 1, "{notes:?}");
    let (a, z) = notes.unreadable_ranges[0];
    assert_eq!(
        query_i64(
            &c,
            &format!("SELECT count(*) FROM notes WHERE body LIKE '%nnn%' AND id BETWEEN {a} AND {z}")
        ) as u64,
        kept_as_backed_up,
        "the backup's version is kept exactly where the damaged file is unreadable"
    );
    assert_eq!(
        (notes.from_backup, notes.updated, notes.salvaged, notes.known_lost),
        (1000, 1000 - kept_as_backed_up, 0, 0),
        "no row is lost: the backup holds every one the damaged file cannot give"
    );
    let kept = format!(
        "notes: {kept_as_backed_up} row(s) of the backup lie where the damaged file could not be read: kept as the \
         backup has them (a change made to them after the backup is lost)"
    );
    assert!(report.notes.contains(&kept), "{:?}", report.notes);
}

#[test]
fn salvage_refuses_another_kind_an_empty_file_and_a_file_with_nothing_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.db");

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("PRAGMA application_id = 7; CREATE TABLE x (a)")
        .unwrap();
    let err = salvage(&other, &NOTES, None, &out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDatabase, "{err}");
    assert!(!out.exists());

    // An empty file beside a WAL: SQLite would delete the WAL on opening it, so it is not opened.
    let empty = dir.path().join("empty.db");
    fs::write(&empty, b"").unwrap();
    let wal = store_core::files::with_suffix(&empty, "-wal");
    fs::write(&wal, vec![1u8; 4096]).unwrap();
    let err = salvage(&empty, &NOTES, None, &out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(fs::read(&wal).unwrap(), vec![1u8; 4096], "the WAL is kept");
    assert!(!out.exists());

    // A garbage header and no backup: nothing to salvage, said as damage.
    let garbage = dir.path().join("garbage.db");
    fs::write(&garbage, vec![0xEE; 8192]).unwrap();
    let err = salvage(&garbage, &NOTES, None, &out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("nothing of it can be salvaged"), "{err}");
    assert!(!out.exists());
}

/// A table whose first rows cannot be read, with no backup and no index to count them: the known lost are
/// the ids from 1 (where SQLite starts handing them out) to the first row read, not from the smallest
/// rowid there could be (that counted 9.2e18 lost rows).
#[test]
fn rows_lost_before_the_first_readable_one_are_counted_from_id_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = NOTES.path_in(dir.path());
    let owner = open_at_version(&db, &NOTES, 1).unwrap();
    add(owner.conn(), (0, 1000), (0, 3));
    drop(owner);
    // The tags the first leaf holds: its cells, counted by dbstat.
    let first_leaf_ids = query_i64(
        &ro(&db),
        &format!(
            "SELECT ncell FROM dbstat WHERE name = 'tags' AND pageno = {}",
            leaf_page(&db, "tags", Leaf::First)
        ),
    ) as u64;
    damage_leaf(&db, "tags", Leaf::First);

    let out = temp_path(&db);
    let report = salvage(&db, &NOTES, None, &out).unwrap();
    let tags = &report.tables["tags"];
    assert_eq!(tags.known_lost_basis.as_deref(), Some("id ranges"), "{tags:?}");
    assert_eq!(tags.known_lost, first_leaf_ids, "{tags:?}");
    assert_eq!(tags.salvaged + tags.known_lost, 1000, "{tags:?}");
    assert_eq!(
        query_i64(&ro(&out), "SELECT min(id) FROM tags"),
        first_leaf_ids as i64 + 1
    );
}

/// An empty table whose only page is damaged, with its index readable: the index shows there were no rows,
/// so nothing is said to be lost or uncountable.
#[test]
fn an_unreadable_table_whose_readable_index_is_empty_lost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = NOTES.path_in(dir.path());
    let owner = OwnerConnection::open(&db, &NOTES).unwrap();
    add(owner.conn(), (0, 0), (0, 3));
    drop(owner);
    damage_leaf(&db, "notes", Leaf::First);

    let out = temp_path(&db);
    let report = salvage(&db, &NOTES, None, &out).unwrap();
    let notes = &report.tables["notes"];
    assert_eq!((notes.salvaged, notes.known_lost), (0, 0), "{notes:?}");
    assert!(notes.unreadable_ranges.is_empty(), "{notes:?}");
    assert!(
        !report.notes.iter().any(|n| n.starts_with("notes: ")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.tables["prefs"].salvaged, 3);
}

/// Damaged cell pointers in a leaf (bytes inside its pointer array): SQLite's seek then skips some of that
/// leaf's cells without an error, so the ids between where a read resumed and the first row it found used
/// to be taken as never there, and `known_lost` (basis `id ranges`, said to be an upper bound) came out
/// below the rows really lost. Every row read is as written, and read + lost is every row.
#[test]
fn rows_a_damaged_cell_pointer_hides_are_counted_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = NOTES.path_in(dir.path());
    let owner = open_at_version(&db, &NOTES, 1).unwrap();
    add(owner.conn(), (0, 1000), (0, 3));
    drop(owner);
    let written = tags_of(&db);
    let page = leaf_page(&db, "tags", Leaf::Second);
    let mut bytes = fs::read(&db).unwrap();
    let at = (page as usize - 1) * 4096;
    for b in &mut bytes[at + 100..at + 140] {
        *b ^= 0xff;
    }
    fs::write(&db, &bytes).unwrap();

    let out = temp_path(&db);
    let report = salvage(&db, &NOTES, None, &out).unwrap();
    let tags = &report.tables["tags"];
    assert_eq!(tags.known_lost_basis.as_deref(), Some("id ranges"), "{tags:?}");
    assert!(tags.known_lost > 0, "{tags:?}");
    assert_eq!(tags.salvaged + tags.known_lost, 1000, "{tags:?}");
    assert!(
        tags_of(&out).iter().all(|row| written.contains(row)),
        "every row read is as written"
    );
}

/// A schema with an explicit UNIQUE index beside a plain one.
static HANDLES: Schema = Schema {
    file_name: "handles.db",
    migrations: &[Migration {
        version: 1,
        name: "handles",
        step: Step::Sql(
            "CREATE TABLE handles (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created INTEGER);
             CREATE UNIQUE INDEX handles_name ON handles (name);
             CREATE INDEX handles_created ON handles (created);",
        ),
        compat: Compat::Breaking,
    }],
    ..NOTES
};

/// A plain index is set aside for the copy and built again after it; an explicit UNIQUE index is not: it
/// refuses, row by row, a row that would break it (set aside, it would let the row in and then fail the
/// whole salvage when built again).
#[test]
fn an_explicit_unique_index_refuses_a_duplicate_row_and_the_output_has_every_index_as_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = HANDLES.path_in(dir.path());
    let owner = OwnerConnection::open(&db, &HANDLES).unwrap();
    let c = owner.conn();
    c.execute_batch(
        "INSERT INTO handles (id, name, created) VALUES (1, 'ada', 10), (2, 'bob', 20);
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    let backup = backup_connection(c, &db, &HANDLES, &dir.path().join("b"), BackupClass::Manual, 5, None).unwrap();
    // After the backup, 'ada' is removed and taken again under a new id: over the backup (which keeps a row
    // the damaged file no longer holds), the newer row breaks the UNIQUE index.
    c.execute_batch(
        "DELETE FROM handles WHERE id = 1; INSERT INTO handles (id, name, created) VALUES (3, 'ada', 30);
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    drop(owner);

    let base = verify_backup(&backup, &HANDLES, None).unwrap();
    let out = temp_path(&db);
    let report = salvage(&db, &HANDLES, Some(&base), &out).unwrap();
    let handles = &report.tables["handles"];
    assert_eq!(
        (handles.from_backup, handles.salvaged, handles.rejected),
        (2, 0, 1),
        "{handles:?}"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("handles: 1 row(s) read from the damaged file were refused by the schema")),
        "{:?}",
        report.notes
    );
    // Said where the rows lost are said too, not only in a note.
    assert_eq!(
        report.lost_said(),
        "0 known lost, and 1 read but refused by the schema (not kept)"
    );

    let fresh = dir.path().join("fresh").join("handles.db");
    fs::create_dir(fresh.parent().unwrap()).unwrap();
    drop(OwnerConnection::open(&fresh, &HANDLES).unwrap());
    assert_eq!(
        store_core::testing::fingerprint_of(&out),
        store_core::testing::fingerprint_of(&fresh)
    );
    let created: Vec<i64> = store_core::testing::query_column(
        &ro(&out),
        "SELECT created FROM handles INDEXED BY handles_created WHERE created > 0",
    );
    assert_eq!(created, [10, 20]);
}
