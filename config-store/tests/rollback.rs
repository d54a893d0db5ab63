//! Every multi-statement write is one transaction: a real failure injected mid-way (a trigger that
//! aborts, installed through a plain connection while the store is closed) leaves nothing of the write and
//! the previous state intact.

mod common;

use std::path::Path;

use chrono::Utc;
use common::*;
use config_store::{ConfigStore, Error, NewCalendarEvent, NewProject, NewSubscription, Project, ProjectUpdate};
use store_core::ErrorKind;

/// Everything in the tables a test touches, as text, to compare before and after.
fn snapshot(path: &Path) -> Vec<String> {
    query_column(
        &read_only(path),
        "SELECT 'p|' || id || '|' || name || '|' || coalesce(color, '') || '|' || archived FROM projects
         UNION ALL SELECT 'd|' || id || '|' || project_id || '|' || domain FROM project_domains
         UNION ALL SELECT 'k|' || id || '|' || project_id || '|' || keyword FROM project_calendar_keywords
         UNION ALL SELECT 's|' || id || '|' || coalesce(last_synced_at_ms, '') FROM calendar_subscriptions
         UNION ALL SELECT 'e|' || id || '|' || subscription_id || '|' || uid FROM calendar_events
         ORDER BY 1",
    )
}

/// A store with one project (2 domains, 2 keywords), one subscription with 2 events; closed again.
fn seeded() -> (tempfile::TempDir, std::path::PathBuf, Project) {
    let (dir, path, mut store) = store();
    let project = store
        .create_project(&NewProject {
            domains: vec!["a.com".into(), "b.com".into()],
            keywords: vec!["alpha".into(), "beta".into()],
            ..NewProject::named("Seed")
        })
        .unwrap();
    let sub = store
        .add_subscription(&NewSubscription {
            name: "Work".into(),
            url: "https://cal.example.com/w.ics".into(),
            color: None,
            enabled: true,
        })
        .unwrap();
    store
        .replace_calendar_events(sub.id, &[event("old-1"), event("old-2")], t("2024-01-01T00:00:00Z"))
        .unwrap();
    (dir, path, project)
}

fn event(uid: &str) -> NewCalendarEvent {
    NewCalendarEvent {
        uid: uid.into(),
        title: None,
        start_time: t("2024-01-01T10:00:00Z"),
        end_time: None,
        project_id: Some(1),
    }
}

fn assert_injected(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::Constraint, "{err:?}");
    assert!(err.to_string().contains("injected"), "{err}");
}

#[test]
fn create_project_failing_at_its_last_keyword_writes_nothing() {
    let (_dir, path, _) = seeded();
    exec(
        &path,
        "CREATE TRIGGER fail_kw BEFORE INSERT ON project_calendar_keywords WHEN NEW.keyword = 'boom'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let err = store
        .create_project(&NewProject {
            domains: vec!["new.com".into(), "new.org".into()],
            keywords: vec!["fine".into(), "boom".into()],
            ..NewProject::named("Doomed")
        })
        .unwrap_err();
    assert_injected(&err);
    assert_eq!(
        snapshot(&path),
        before,
        "no project, domain or keyword of the failed create"
    );
    assert_eq!(store.reader().project_for_domain("new.com").unwrap(), None);

    // The same store keeps working: the transaction was rolled back, not left open.
    let ok = store.create_project(&NewProject::named("Fine")).unwrap();
    assert_eq!(store.reader().project(ok.id).unwrap().unwrap().name, "Fine");
}

#[test]
fn update_project_failing_while_replacing_domains_writes_nothing() {
    let (_dir, path, project) = seeded();
    exec(
        &path,
        "CREATE TRIGGER fail_domain BEFORE INSERT ON project_domains WHEN NEW.domain = 'boom.com'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let err = store
        .update_project(
            project.id,
            &ProjectUpdate {
                name: Some("Renamed".into()),
                archived: Some(true),
                // a.com is removed, c.com added, then boom.com fails.
                domains: Some(vec!["b.com".into(), "c.com".into(), "boom.com".into()]),
                keywords: Some(vec!["gamma".into()]),
                ..ProjectUpdate::default()
            },
        )
        .unwrap_err();
    assert_injected(&err);
    assert_eq!(snapshot(&path), before, "name, archived flag and lists as they were");
    assert_eq!(store.reader().project(project.id).unwrap(), Some(project));
}

#[test]
fn delete_project_failing_in_its_cascade_deletes_nothing() {
    let (_dir, path, project) = seeded();
    exec(
        &path,
        "CREATE TRIGGER fail_kw_delete BEFORE DELETE ON project_calendar_keywords WHEN OLD.keyword = 'beta'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let err = store.delete_project(project.id).unwrap_err();
    assert_injected(&err);
    assert_eq!(snapshot(&path), before, "project, domains and keywords all still there");
    assert_eq!(store.reader().project_for_domain("a.com").unwrap(), Some(project.id));
}

#[test]
fn a_sync_failing_half_way_keeps_the_old_events_and_sync_time() {
    let (_dir, path, _) = seeded();
    exec(
        &path,
        "CREATE TRIGGER fail_event BEFORE INSERT ON calendar_events WHEN NEW.uid = 'boom'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let sub = store.reader().subscriptions().unwrap().remove(0);
    let err = store
        .replace_calendar_events(sub.id, &[event("new-1"), event("new-2"), event("boom")], Utc::now())
        .unwrap_err();
    assert_injected(&err);
    assert_eq!(snapshot(&path), before, "old events kept, last_synced_at unchanged");
    assert_eq!(
        store.reader().subscription(sub.id).unwrap().unwrap().last_synced_at,
        Some(t("2024-01-01T00:00:00Z"))
    );
}

#[test]
fn delete_subscription_failing_in_its_cascade_deletes_nothing() {
    let (_dir, path, _) = seeded();
    exec(
        &path,
        "CREATE TRIGGER fail_event_delete BEFORE DELETE ON calendar_events WHEN OLD.uid = 'old-2'
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let sub = store.reader().subscriptions().unwrap().remove(0);
    let err = store.delete_subscription(sub.id).unwrap_err();
    assert_injected(&err);
    assert_eq!(snapshot(&path), before);
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let (_dir, path, project) = seeded();
    let before = snapshot(&path);
    let mut store = ConfigStore::open(&path).unwrap();
    let err = store
        .create_project(&NewProject {
            domains: vec!["ok.com".into(), "https://not-a-host/".into()],
            ..NewProject::named("Bad")
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "domain", .. }), "{err:?}");
    let err = store
        .update_project(
            project.id,
            &ProjectUpdate {
                name: Some("Renamed".into()),
                domains: Some(vec!["x.com".into(), "X.COM".into()]),
                ..ProjectUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateDomain { .. }), "{err:?}");
    drop(store);
    assert_eq!(snapshot(&path), before);
}
