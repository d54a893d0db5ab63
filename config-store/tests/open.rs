//! Opening config.db: one owner, readers beside it, typed refusals, and upgrades that end where fresh
//! files start.

mod common;

use std::path::Path;

use common::*;
use config_store::{ConfigReader, ConfigStore, Error, ErrorKind, NewProject, SCHEMA};
use rusqlite::{Connection, OpenFlags};
use store_core::testing::{open_at_version, schema_fingerprint};

/// The kind of a store error (one about the file itself), failing the test for any other.
fn store_kind(err: &Error) -> ErrorKind {
    match err {
        Error::Store(e) => e.kind(),
        other => panic!("expected a store error, got {other:?}"),
    }
}

fn fingerprint(path: &Path) -> String {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    schema_fingerprint(&conn).unwrap()
}

#[test]
fn a_reader_sees_what_the_open_store_commits() {
    let (_dir, path, mut store) = store();
    let reader = ConfigReader::open(&path);
    let before = reader.change_token().unwrap();
    let p = store
        .create_project(&NewProject {
            domains: vec!["example.com".into()],
            keywords: vec!["standup".into()],
            ..NewProject::named("P")
        })
        .unwrap();
    store.set_setting("theme", "dark").unwrap();

    assert_ne!(
        reader.change_token().unwrap(),
        before,
        "the reader can tell something changed"
    );
    assert_eq!(reader.project_for_domain("www.example.com").unwrap(), Some(p.id));
    assert_eq!(reader.project(p.id).unwrap(), Some(p.clone()));
    assert_eq!(reader.projects().unwrap(), vec![p.clone()]);
    assert_eq!(reader.project_names().unwrap()[&p.id], "P");
    assert_eq!(reader.setting::<String>("theme").unwrap().as_deref(), Some("dark"));
    assert_eq!(reader.setting_keys().unwrap().len(), 1);
    assert!(reader.subscriptions().unwrap().is_empty());

    // From another thread too: readers are Send + Sync and clone cheaply.
    fn shareable<T: Send + Sync + Clone>(_: &T) {}
    shareable(&reader);
    let clone = reader.clone();
    let from_thread = std::thread::spawn(move || clone.project_for_domain("example.com").unwrap())
        .join()
        .unwrap();
    assert_eq!(from_thread, Some(p.id));

    store.delete_project(p.id).unwrap();
    assert_eq!(reader.project_for_domain("example.com").unwrap(), None);
}

#[test]
fn a_reader_of_a_missing_file_is_a_typed_error_and_creates_nothing() {
    let (dir, path) = fresh();
    let err = ConfigReader::open(&path).check().unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::Missing);
    assert_eq!(
        err.to_string(),
        format!(
            "{} does not exist: the server has not created it yet. What to do: start the server (`splitstore server \
             --data-dir {}`): it creates the file; or check that {} is the right data directory",
            path.display(),
            dir.path().display(),
            dir.path().display()
        )
    );
    let err = ConfigReader::open_in(dir.path()).check().unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::Missing);

    // A lazy reader starts before the server and works once the server has created the file.
    let lazy = ConfigReader::open(&path);
    assert_eq!(
        store_kind(&lazy.projects().unwrap_err()),
        store_core::ErrorKind::Missing
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "readers never create anything"
    );
    let mut store = ConfigStore::open_in(dir.path()).unwrap();
    assert_eq!(store.path(), path);
    let p = store.create_project(&NewProject::named("Later")).unwrap();
    assert_eq!(lazy.project_names().unwrap()[&p.id], "Later");
}

#[test]
fn a_reader_refuses_a_file_at_another_schema_version() {
    let (_dir, path) = fresh();
    drop(open_at_version(&path, &SCHEMA, 1).unwrap());
    let err = ConfigReader::open(&path).check().unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::SchemaBehind);
    assert_eq!(
        err.to_string(),
        format!(
            "{} is at schema 1, this build reads 2 to 3: the server has not upgraded it yet. What to do: start the server \
             from this build (`splitstore server --data-dir {}`) so it upgrades the file, then retry",
            path.display(),
            path.parent().unwrap().display()
        )
    );
    let lazy = ConfigReader::open(&path);
    assert_eq!(
        store_kind(&lazy.project_for_domain("x.com").unwrap_err()),
        store_core::ErrorKind::SchemaBehind
    );

    // The owner upgrades it; the same reader then reads.
    let store = ConfigStore::open(&path).unwrap();
    assert_eq!(store.owner().open_report().upgrade.from_version, 1);
    assert_eq!(lazy.project_for_domain("x.com").unwrap(), None);

    drop(store);
    // A newer build's additive migration: still read. A breaking one: refused.
    exec(&path, "PRAGMA user_version = 4");
    ConfigReader::open(&path).check().unwrap();
    exec(&path, "UPDATE reader_compatibility SET min_reader_version = 4");
    let err = ConfigReader::open(&path).check().unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::SchemaNewer);
}

#[test]
fn a_reader_refuses_a_database_of_another_kind() {
    let (dir, _path) = fresh();
    let activity = dir.path().join("activity.db");
    let conn = Connection::open(&activity).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA application_id = {}; CREATE TABLE t (x); PRAGMA user_version = 2;",
        0x5350_4C41 // activity.db's
    ))
    .unwrap();
    drop(conn);
    let err = ConfigReader::open(&activity).check().unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::WrongDatabase);
    let err = ConfigStore::open(&activity).unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::WrongDatabase);
}

#[test]
fn a_second_store_on_the_same_file_is_refused_naming_this_process() {
    let (_dir, path, mut store) = store();
    let err = ConfigStore::open(&path).unwrap_err();
    assert_eq!(store_kind(&err), store_core::ErrorKind::Locked);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{} is already owned by pid {} (this process)",
            path.display(),
            std::process::id()
        )),
        "{message}"
    );
    // The first store is unaffected, and once it is dropped the file can be owned again.
    store.set_setting("still", &1).unwrap();
    drop(store);
    let again = ConfigStore::open(&path).unwrap();
    assert_eq!(again.reader().setting::<i32>("still").unwrap(), Some(1));
}

#[test]
fn an_upgraded_file_has_the_schema_of_a_fresh_one() {
    let (_dir, fresh_path, store) = store();
    drop(store);
    let (_old_dir, old_path) = fresh();
    drop(open_at_version(&old_path, &SCHEMA, 1).unwrap());
    let v1 = fingerprint(&old_path);
    let upgraded = ConfigStore::open(&old_path).unwrap();
    assert_eq!(upgraded.owner().schema_version().unwrap(), SCHEMA.end_version());
    drop(upgraded);
    let fresh = fingerprint(&fresh_path);
    assert_ne!(v1, fresh, "version 1 lacks the indexes of version 2");
    assert_eq!(fingerprint(&old_path), fresh);
}

#[test]
fn the_files_foreign_keys_and_unique_rules_are_the_documented_ones() {
    let (_dir, path, store) = store();
    drop(store);
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let fks = |table: &str| -> Vec<(String, String)> {
        conn.prepare("SELECT \"table\", on_delete FROM pragma_foreign_key_list(?1)")
            .unwrap()
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let cascade = |parent: &str| vec![(parent.to_string(), "CASCADE".to_string())];
    assert_eq!(fks("project_domains"), cascade("projects"));
    assert_eq!(fks("project_calendar_keywords"), cascade("projects"));
    assert_eq!(
        fks("calendar_events"),
        cascade("calendar_subscriptions"),
        "no foreign key to projects"
    );
    let unique_on = |table: &str| -> Vec<String> {
        conn.prepare(
            "SELECT group_concat(c.name, ',') FROM pragma_index_list(?1) i, pragma_index_info(i.name) c
             WHERE i.\"unique\" = 1 AND i.origin = 'u' GROUP BY i.name",
        )
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    assert_eq!(unique_on("project_domains"), ["project_id,domain"]);
    assert_eq!(unique_on("project_calendar_keywords"), ["project_id,keyword"]);
}
