//! Drill: for every migration step of both databases, a failure injected at that step, and a `kill -9`
//! during it; then a normal open. The file must converge to exactly the schema a fresh file gets, with every
//! row it had before.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use store_core::testing::{fingerprint_of, open_at_version, user_version_of};
use store_core::{Error, Migration, MigrationHook, OpenOptions, OwnerConnection, Schema};
use support::*;

fn schema_named(name: &str) -> &'static Schema {
    splitstore::DATABASES
        .into_iter()
        .find(|s| s.stem() == name)
        .expect("known database")
}

/// Rows that exist from version 1 on, so each drill can check nothing was lost.
fn seed(schema: &Schema, path: &Path) {
    let sql = match schema.stem() {
        "activity" => {
            "INSERT INTO activity_sessions (id, app, project_id, start_time_ms) VALUES (1, 'editor', 3, 1700000000000);
             INSERT INTO activity_events (id, session_id, event_type, timestamp_ms) VALUES (1, 1, 'focus', 1700000000000);"
        }
        _ => {
            "INSERT INTO projects (id, name) VALUES (1, 'p');
             INSERT INTO project_domains (project_id, domain) VALUES (1, 'example.com');
             INSERT INTO settings (key, value) VALUES ('theme', '\"dark\"');"
        }
    };
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

fn rows(path: &Path) -> i64 {
    let c = Connection::open(path).unwrap();
    // activity_totals holds no rows of its own: migration 4 derives it from the sessions.
    let tables: Vec<String> = query_column(
        &c,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name NOT IN ('schema_migrations', 'reader_compatibility', 'provenance', 'activity_totals')",
    );
    tables
        .iter()
        .map(|t| {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
                .unwrap()
        })
        .sum()
}

/// A database left by an older build at `version` (blank if 0), with rows if it has tables.
fn at_version(schema: &'static Schema, path: &Path, version: u32) -> i64 {
    if version == 0 {
        return 0;
    }
    drop(open_at_version(path, schema, version).unwrap());
    seed(schema, path);
    rows(path)
}

#[test]
fn child_entry() {
    let Some((role, path)) = child_role() else { return };
    // role: slow-<database>-<step>
    let mut parts = role.splitn(3, '-');
    assert_eq!(parts.next(), Some("slow"));
    let schema = schema_named(parts.next().unwrap());
    let step: u32 = parts.next().unwrap().parse().unwrap();
    let ready = marker(&path, "ready");
    let hook: MigrationHook = Arc::new(move |m: &Migration| {
        if m.version == step {
            std::fs::write(&ready, b"").map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_secs(120));
        }
        Ok(())
    });
    let _ = OwnerConnection::open_with(
        &path,
        schema,
        &OpenOptions {
            migration_hook: Some(hook),
            ..Default::default()
        },
    );
    panic!("the drill should have killed this child inside migration {step}");
}

#[test]
fn every_migration_step_of_both_databases_survives_a_failure_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut injection_points = 0;
    for schema in splitstore::DATABASES {
        let fresh = dir.path().join(format!("fresh/{}", schema.file_name));
        drop(OwnerConnection::open(&fresh, schema).unwrap());
        let expected = fingerprint_of(&fresh);
        for step in 1..=schema.end_version() {
            // A failure injected inside the step's transaction.
            let db = dir
                .path()
                .join(format!("fail-{}-{step}/{}", schema.stem(), schema.file_name));
            let before = at_version(schema, &db, step - 1);
            let hook: MigrationHook = Arc::new(move |m: &Migration| {
                if m.version == step {
                    Err("injected".into())
                } else {
                    Ok(())
                }
            });
            let err = OwnerConnection::open_with(
                &db,
                schema,
                &OpenOptions {
                    migration_hook: Some(hook),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert!(
                matches!(err, Error::MigrationFailed { version, .. } if version == step),
                "{err:?}"
            );
            assert_eq!(
                user_version_of(&db),
                step - 1,
                "{}: failed step {step} left nothing",
                schema.file_name
            );
            drop(OwnerConnection::open(&db, schema).unwrap());
            assert_eq!(
                fingerprint_of(&db),
                expected,
                "{} converged after a failure in step {step}",
                schema.file_name
            );
            assert_eq!(rows(&db), before, "no row lost");

            // A kill -9 while the step's transaction is open.
            let db = dir
                .path()
                .join(format!("kill-{}-{step}/{}", schema.stem(), schema.file_name));
            let before = at_version(schema, &db, step - 1);
            let mut child = spawn_child("child_entry", &format!("slow-{}-{step}", schema.stem()), &db);
            wait_for_file(&marker(&db, "ready"), Duration::from_secs(30));
            kill9(&mut child);
            assert_eq!(
                user_version_of(&db),
                step - 1,
                "{}: the killed step never committed",
                schema.file_name
            );
            let owner = OwnerConnection::open(&db, schema).unwrap();
            assert!(store_core::check::integrity_check(owner.conn()).unwrap().is_empty());
            drop(owner);
            assert_eq!(
                fingerprint_of(&db),
                expected,
                "{} converged after a kill in step {step}",
                schema.file_name
            );
            assert_eq!(rows(&db), before, "no row lost");
            injection_points += 1;
        }
    }
    // Both databases have at least two steps; the count is what the closing note reports.
    assert!(injection_points >= 4, "{injection_points}");
    eprintln!("drill_migrations: {injection_points} steps, each with an injected failure and a kill -9");
}

/// The pre-migration copies of the file at `db` in its default backup folder.
fn pre_migration_copies(db: &Path) -> Vec<std::path::PathBuf> {
    let folder = store_core::backup::pre_migration_dir(&store_core::backup::default_backup_dir(db));
    let mut copies: Vec<_> = std::fs::read_dir(&folder)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    copies.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "db"));
    copies.sort();
    copies
}

/// A start killed during its migration at every attempt (a supervisor's start timeout, a user quitting an app
/// that looked hung during a long migration) kept one more pre-migration copy of the whole file per attempt,
/// never rotated, until the disk was full. A start's copy now replaces those of earlier starts of the same
/// file at the same version that no migration step committed after: three killed starts leave one copy, and
/// so does the start that migrates, the way back holding every row the file had. A copy a step committed
/// after is never replaced: the file put back from it (a restore) and migrated again keeps both.
#[test]
fn starts_killed_during_their_migration_leave_one_copy_of_the_file_not_one_each() {
    let schema = schema_named("activity");
    let step = schema.end_version();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join(schema.file_name);
    store_core::files::create_private_dir_all(db.parent().unwrap()).unwrap();
    at_version(schema, &db, step - 1);
    let sessions = |db: &Path| -> i64 {
        let c = read_only(db);
        c.query_row("SELECT count(*) FROM activity_sessions", [], |r| r.get(0))
            .unwrap()
    };
    let killed_start = |db: &Path| {
        let mut child = spawn_child("child_entry", &format!("slow-activity-{step}"), db);
        wait_for_file(&marker(db, "ready"), Duration::from_secs(30));
        kill9(&mut child);
        std::fs::remove_file(marker(db, "ready")).unwrap();
    };
    // The file put in its place by a rename, as a restore puts a copy (no -wal: a killed step left nothing).
    let put_back_from = |db: &Path, copy: &Path| {
        for sidecar in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(store_core::files::with_suffix(db, sidecar));
        }
        let put_back = store_core::files::with_suffix(db, ".put-back");
        std::fs::copy(copy, &put_back).unwrap();
        std::fs::rename(&put_back, db).unwrap();
    };
    for attempt in 1..=3 {
        killed_start(&db);
        let copies = pre_migration_copies(&db);
        assert_eq!(copies.len(), 1, "after killed start {attempt}: {copies:?}");
    }
    // Doctor says why the file is still to migrate: the startup loop of a migration stopped at every start.
    let health = store_core::diagnostics::inspect(&db, schema, &Default::default());
    let pending = health
        .problems
        .iter()
        .find(|p| p.code == store_core::ErrorKind::MigrationsPending)
        .unwrap_or_else(|| panic!("{:?}", health.problems));
    let said = format!(
        "{} is at schema {}, this build writes {step}: 1 migration(s) pending; the last 3 start(s) that migrated it \
         were stopped during the migration (killed), the last at ",
        db.display(),
        step - 1
    );
    assert!(pending.message.starts_with(&said), "{}", pending.message);
    assert!(
        pending
            .message
            .ends_with(": each copies the whole file first and migrates from the beginning again"),
        "{}",
        pending.message
    );
    assert!(
        pending.remedy.ends_with(
            ", and let it run until the migration ends: it takes longer than whatever stopped those starts allowed \
             (a supervisor's start timeout: raise it, as systemd's `TimeoutStartSec`, or let the start ask for \
             the time it needs, as systemd's `Type=notify` does; or the app quit while it looked hung)"
        ),
        "{}",
        pending.remedy
    );
    // The daemon's start that migrates it says how long that took, what a supervisor's timeout must allow.
    let out = run_splitstore(["daemon", "--data-dir", utf8(db.parent().unwrap()), "--events", "1"]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    // Said before it migrates, too: what a start killed meanwhile leaves in the supervisor's log.
    let before = format!(
        "splitstore daemon: upgrading {} from schema {} to {step} (the last 3 start(s) were stopped during this \
         migration before it ended): a copy of the file first, then the migration; stopping it meanwhile starts it \
         over at the next start\n",
        db.display(),
        step - 1
    );
    let said = "; the last 3 start(s) that migrated it were stopped during the migration (killed) before it ended, \
                and this one's took ";
    assert!(stderr.contains(said), "{stderr}");
    assert!(
        stderr.find(&before).is_some_and(|at| at < stderr.find(said).unwrap()),
        "{stderr}"
    );
    assert!(
        stderr.contains(" s: whatever stopped them (a supervisor's start timeout) must allow that long"),
        "{stderr}"
    );
    let copies = pre_migration_copies(&db);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let way_back = &copies[0];
    assert_eq!(user_version_of(way_back), step - 1);
    assert_eq!(sessions(way_back), 1, "the copy holds the file's session");
    assert!(
        !store_core::records::migrating_path(&db).exists(),
        "nothing left to replace"
    );

    // Put back from the way back and migrated again.
    put_back_from(&db, way_back);
    drop(OwnerConnection::open(&db, schema).unwrap());
    let copies = pre_migration_copies(&db);
    assert_eq!(
        copies.len(),
        2,
        "the way back from the first upgrade is kept: {copies:?}"
    );

    // Nor is a killed start's copy replaced by a copy of another file put in its place since.
    let db = dir.path().join("other").join(schema.file_name);
    store_core::files::create_private_dir_all(db.parent().unwrap()).unwrap();
    at_version(schema, &db, step - 1);
    killed_start(&db);
    let killed = pre_migration_copies(&db);
    put_back_from(&db, &killed[0]);
    killed_start(&db);
    let copies = pre_migration_copies(&db);
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.contains(&killed[0]), "{copies:?}");
}
