//! Projects, domains and keywords: round trips, foreign keys, duplicates, and which project owns a host.

mod common;

use chrono::Utc;
use common::*;
use config_store::TimeRange;
use config_store::{ConfigStore, Error, NewCalendarEvent, NewProject, NewSubscription, ProjectUpdate, SCHEMA};
use store_core::{ErrorKind, OwnerConnection};

/// `err` is `InvalidInput` about `field` (`"project name"`, `"domain"`...).
#[track_caller]
fn assert_invalid_input(err: &Error, field: &str) {
    assert!(
        matches!(err, Error::InvalidInput { field: f, .. } if *f == field),
        "{err:?}"
    );
}

fn project(name: &str, domains: &[&str], keywords: &[&str]) -> NewProject {
    NewProject {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        ..NewProject::named(name)
    }
}

#[test]
fn a_created_project_reads_back_with_its_domains_and_keywords() {
    let (_dir, path, mut store) = store();
    let before = Utc::now();
    let created = store
        .create_project(&NewProject {
            name: "  Website  ".into(),
            color: Some("#ff0000".into()),
            archived: false,
            domains: vec![
                "Example.COM".into(),
                "*.docs.example.org".into(),
                "shop.example.net.".into(),
            ],
            keywords: vec![" Standup ".into(), "Retro".into()],
        })
        .unwrap();
    let after = Utc::now();

    assert_eq!(created.name, "Website", "names are trimmed");
    assert_eq!(created.color.as_deref(), Some("#ff0000"));
    assert!(!created.archived);
    assert_eq!(
        created.domains,
        ["example.com", "docs.example.org", "shop.example.net"],
        "normalized, in the order given"
    );
    assert_eq!(created.keywords, ["Standup", "Retro"], "trimmed, case kept");
    let at = created.created_at.expect("created_at is set");
    assert!(at >= before - chrono::Duration::milliseconds(1) && at <= after, "{at}");

    let reader = store.reader();
    assert_eq!(reader.project(created.id).unwrap().as_ref(), Some(&created));
    assert_eq!(reader.projects().unwrap(), vec![created.clone()]);
    assert_eq!(reader.project(created.id + 1).unwrap(), None);
    assert_eq!(
        query_i64(&read_only(&path), "SELECT created_at_ms FROM projects"),
        at.timestamp_millis(),
        "stored as epoch ms"
    );
}

#[test]
fn projects_lists_every_project_with_only_its_own_children() {
    let (_dir, _path, mut store) = store();
    let a = store.create_project(&project("A", &["a.com"], &["alpha"])).unwrap();
    let b = store.create_project(&project("B", &[], &[])).unwrap();
    let c = store
        .create_project(&NewProject {
            archived: true,
            ..project("C", &["c.com", "c.org"], &["gamma"])
        })
        .unwrap();
    store.add_domain(a.id, "a.org").unwrap();
    let all = store.reader().projects().unwrap();
    assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), [a.id, b.id, c.id]);
    assert_eq!(all[0].domains, ["a.com", "a.org"]);
    assert!(all[1].domains.is_empty() && all[1].keywords.is_empty());
    assert_eq!(all[2].domains, ["c.com", "c.org"]);
    assert!(all[2].archived);

    let names = store.reader().project_names().unwrap();
    assert_eq!(names.len(), 3, "archived projects are named too");
    assert_eq!(names[&c.id], "C");
    let summaries = store.reader().project_summaries().unwrap();
    assert_eq!(summaries, all.iter().map(|p| p.summary()).collect::<Vec<_>>());
    assert!(summaries[2].archived);
}

#[test]
fn an_update_changes_only_what_it_names_and_keeps_kept_domain_rows() {
    let (_dir, path, mut store) = store();
    let p = store
        .create_project(&NewProject {
            color: Some("blue".into()),
            ..project("Old", &["keep.com", "drop.com"], &["k1", "k2"])
        })
        .unwrap();
    let kept_row = query_i64(
        &read_only(&path),
        "SELECT id FROM project_domains WHERE domain = 'keep.com'",
    );

    let renamed = store
        .update_project(
            p.id,
            &ProjectUpdate {
                name: Some("New".into()),
                ..ProjectUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(renamed.name, "New");
    assert_eq!(
        renamed.color.as_deref(),
        Some("blue"),
        "an absent field is left as it is"
    );
    assert_eq!(renamed.domains, p.domains);

    let updated = store
        .update_project(
            p.id,
            &ProjectUpdate {
                color: Some(None),
                archived: Some(true),
                domains: Some(vec!["KEEP.com".into(), "new.com".into()]),
                keywords: Some(vec!["k2".into(), "k3".into()]),
                ..ProjectUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(updated.color, None, "Some(None) clears the color");
    assert!(updated.archived);
    assert_eq!(updated.domains, ["keep.com", "new.com"]);
    assert_eq!(updated.keywords, ["k2", "k3"]);
    assert_eq!(updated.created_at, p.created_at);
    assert_eq!(
        query_i64(
            &read_only(&path),
            "SELECT id FROM project_domains WHERE domain = 'keep.com'"
        ),
        kept_row,
        "a domain kept in the list keeps its row"
    );
    assert_eq!(store.reader().project(p.id).unwrap(), Some(updated));
}

#[test]
fn project_update_json_distinguishes_absent_from_null() {
    let absent: ProjectUpdate = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
    assert_eq!(absent.color, None);
    let null: ProjectUpdate = serde_json::from_str(r#"{"color": null}"#).unwrap();
    assert_eq!(null.color, Some(None));
    let set: ProjectUpdate = serde_json::from_str(r##"{"color": "#fff", "domains": []}"##).unwrap();
    assert_eq!(set.color, Some(Some("#fff".into())));
    assert_eq!(set.domains, Some(vec![]));
}

#[test]
fn updating_a_missing_project_is_project_not_found() {
    let (_dir, path, mut store) = store();
    let err = store
        .update_project(
            41,
            &ProjectUpdate {
                name: Some("x".into()),
                ..ProjectUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::ProjectNotFound { id: 41, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no project 41. What to do: it was deleted or never existed: reload the list of projects and \
             retry; nothing was written",
            path.display()
        )
    );
}

#[test]
fn deleting_a_project_takes_its_domains_and_keywords_and_leaves_calendar_events() {
    let (_dir, path, mut store) = store();
    let doomed = store
        .create_project(&project("Doomed", &["doomed.com"], &["doom"]))
        .unwrap();
    let other = store
        .create_project(&project("Other", &["other.com"], &["other"]))
        .unwrap();
    let sub = store
        .add_subscription(&NewSubscription {
            name: "Work".into(),
            url: "https://cal.example.com/work.ics".into(),
            color: None,
            enabled: true,
        })
        .unwrap();
    let event = NewCalendarEvent {
        uid: "ev-1".into(),
        title: Some("Doom meeting".into()),
        start_time: t("2024-01-01T10:00:00Z"),
        end_time: Some(t("2024-01-01T11:00:00Z")),
        project_id: Some(doomed.id),
    };
    store.replace_calendar_events(sub.id, &[event], Utc::now()).unwrap();

    assert!(store.delete_project(doomed.id).unwrap());
    assert!(
        !store.delete_project(doomed.id).unwrap(),
        "a second delete finds nothing"
    );

    assert_eq!(store.reader().project(doomed.id).unwrap(), None);
    assert_eq!(
        query_i64(
            &read_only(&path),
            &format!("SELECT count(*) FROM project_domains WHERE project_id = {}", doomed.id)
        ),
        0
    );
    assert_eq!(
        query_i64(
            &read_only(&path),
            &format!(
                "SELECT count(*) FROM project_calendar_keywords WHERE project_id = {}",
                doomed.id
            )
        ),
        0
    );
    let events = store
        .reader()
        .calendar_events_between(&TimeRange::between(
            t("2024-01-01T00:00:00Z"),
            t("2024-01-02T00:00:00Z"),
        ))
        .unwrap();
    assert_eq!(events.len(), 1, "the event stays");
    assert_eq!(events[0].project_id, Some(doomed.id), "with the deleted project's id");
    assert_eq!(
        store.reader().project(other.id).unwrap().unwrap().domains,
        ["other.com"]
    );
    assert!(!store.reader().project_names().unwrap().contains_key(&doomed.id));
}

#[test]
fn a_domain_for_a_missing_project_is_a_typed_error_and_nothing_is_written() {
    let (_dir, path, mut store) = store();
    let err = store.add_domain(7, "example.com").unwrap_err();
    assert!(matches!(err, Error::ProjectNotFound { id: 7, .. }), "{err:?}");
    assert_eq!(err.kind(), config_store::ErrorKind::NotFound);
    assert_eq!(err.path(), path);
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no project 7. What to do: it was deleted or never existed: reload the list of projects and \
             retry; nothing was written",
            path.display()
        )
    );
    let err = store.add_keyword(7, "standup").unwrap_err();
    assert!(matches!(err, Error::ProjectNotFound { id: 7, .. }), "{err:?}");
    assert_eq!(query_i64(&read_only(&path), "SELECT count(*) FROM project_domains"), 0);
    assert_eq!(
        query_i64(&read_only(&path), "SELECT count(*) FROM project_calendar_keywords"),
        0
    );
}

#[test]
fn the_schema_itself_refuses_an_orphan_domain_with_a_constraint_error() {
    // The API maps the broken foreign key to ProjectNotFound; underneath, the file enforces it whoever writes.
    let (_dir, path) = fresh();
    drop(ConfigStore::open(&path).unwrap());
    let mut owner = OwnerConnection::open(&path, &SCHEMA).unwrap();
    let err = owner
        .write(|tx| {
            tx.execute(
                "INSERT INTO project_domains (project_id, domain) VALUES (7, 'x.com')",
                [],
            )
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the write breaks a rule of the schema (FOREIGN KEY constraint failed). What to do: change the value \
             so it no longer conflicts; nothing was written",
            path.display()
        )
    );
}

#[test]
fn a_duplicate_domain_or_keyword_is_a_typed_error() {
    let (_dir, path, mut store) = store();
    let p = store
        .create_project(&project("P", &["example.com"], &["Standup"]))
        .unwrap();

    let err = store.add_domain(p.id, " EXAMPLE.com. ").unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateDomain { project_id: Some(id), domain, .. } if *id == p.id && domain == "example.com"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: project {} would list the domain \"example.com\" twice. What to do: each is listed once per project \
             (comparison ignores case for domains): drop the duplicate and retry; nothing was written",
            path.display(),
            p.id
        )
    );
    let err = store.add_keyword(p.id, "Standup ").unwrap_err();
    assert!(matches!(err, Error::DuplicateKeyword { .. }), "{err:?}");
    assert_eq!(
        store.add_keyword(p.id, "standup").unwrap(),
        "standup",
        "keywords keep case"
    );

    let err = store
        .create_project(&project("Q", &["q.com", "Q.com"], &[]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateDomain { project_id: None, domain, .. } if domain == "q.com"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the new project would list the domain \"q.com\" twice"),
        "{err}"
    );
    let err = store
        .update_project(
            p.id,
            &ProjectUpdate {
                keywords: Some(vec!["a".into(), " a".into()]),
                ..ProjectUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKeyword { .. }), "{err:?}");
    assert_eq!(store.reader().projects().unwrap().len(), 1, "nothing of Q was written");
    assert_eq!(
        store.reader().project(p.id).unwrap().unwrap().keywords,
        ["Standup", "standup"]
    );
}

#[test]
fn what_is_not_a_host_name_or_is_empty_is_refused() {
    let (_dir, path, mut store) = store();
    let err = store
        .create_project(&project("P", &["https://example.com/x"], &[]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the domain \"https://example.com/x\" is not a host name: write it like example.com (no scheme, path, \
             spaces or '@'); it also matches every subdomain. What to do: correct the domain and retry; nothing was \
             written",
            path.display()
        )
    );
    let err = store.create_project(&NewProject::named("  ")).unwrap_err();
    assert_invalid_input(&err, "project name");
    let p = store.create_project(&NewProject::named("P")).unwrap();
    let err = store.add_keyword(p.id, " ").unwrap_err();
    assert_invalid_input(&err, "calendar keyword");
    assert_eq!(store.reader().projects().unwrap().len(), 1);
}

/// Before, a domain holding NUL or another control character, an empty label (`a..b`) or megabytes was stored
/// (and `project_for_domain("\0")` then found its project), and a project could be named `"\0"`.
#[test]
fn control_characters_empty_labels_and_names_longer_than_dns_allows_are_refused() {
    let (_dir, path, mut store) = store();
    let p = store.create_project(&NewProject::named("P")).unwrap();
    let huge = "x".repeat(2_000_000);
    let dotted = format!("{}.com", "a.".repeat(300));
    let label = format!("{}.com", "l".repeat(64));
    let refused: [(&str, String); 7] = [
        (
            "\0",
            "\"\\0\" is not a host name: it holds the control character U+0000; write it like example.com, with \
             no control characters"
                .into(),
        ),
        (
            "a\0b.com",
            "\"a\\0b.com\" is not a host name: it holds the control character U+0000; write it like example.com, \
             with no control characters"
                .into(),
        ),
        (
            "a\u{1b}.com",
            "\"a\\u{1b}.com\" is not a host name: it holds the control character U+001B; write it like \
             example.com, with no control characters"
                .into(),
        ),
        (
            "a..b",
            "\"a..b\" is not a host name: it has an empty label (two dots in a row); write it like example.com, \
             each dot-separated label 1 to 63 characters"
                .into(),
        ),
        (
            &huge,
            format!(
                "{:?}... (2000000 characters) is not a host name: it has 2000000 characters, and a host name has \
                 at most 253 (each dot-separated label 1 to 63)",
                "x".repeat(80)
            ),
        ),
        (
            &dotted,
            format!(
                "{:?}... (604 characters) is not a host name: it has 604 characters, and a host name has at most 253 \
                 (each dot-separated label 1 to 63)",
                "a.".repeat(40)
            ),
        ),
        (
            &label,
            format!(
                "{label:?} is not a host name: it has a label of 64 characters, and each dot-separated label has 1 \
                 to 63 (253 in all)"
            ),
        ),
    ];
    for (domain, problem) in &refused {
        let expected = format!(
            "{}: the domain {problem}. What to do: correct the domain and retry; nothing was written",
            path.display()
        );
        let errors = [
            store.add_domain(p.id, domain).unwrap_err(),
            store
                .create_project(&project("Q", &["ok.com", domain], &[]))
                .unwrap_err(),
            store
                .update_project(
                    p.id,
                    &ProjectUpdate {
                        domains: Some(vec![domain.to_string()]),
                        ..Default::default()
                    },
                )
                .unwrap_err(),
        ];
        for err in errors {
            assert_invalid_input(&err, "domain");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(err.to_string(), expected);
        }
    }
    // DNS's limits themselves are allowed.
    let longest = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
    assert_eq!(store.add_domain(p.id, &longest).unwrap(), longest);

    for name in ["\0", "a\0b", "tab\tinside", "line\nbreak", "del\u{7f}"] {
        let err = store.create_project(&NewProject::named(name)).unwrap_err();
        assert_invalid_input(&err, "project name");
        assert!(
            err.to_string()
                .contains(": the project name holds the control character U+00",),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(
                "a project name is one line of text, with no control characters (NUL, tab, newline...). \
                            What to do: correct the project name and retry; nothing was written"
            ),
            "{err}"
        );
        let err = store
            .update_project(
                p.id,
                &ProjectUpdate {
                    name: Some(name.into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_invalid_input(&err, "project name");
    }
    assert_invalid_input(
        &store.create_project(&NewProject::named(" \t\n ")).unwrap_err(),
        "project name",
    );
    // Surrounding whitespace is still trimmed away, and any other text is a name.
    assert_eq!(
        store.create_project(&NewProject::named("\tName\n")).unwrap().name,
        "Name"
    );
    assert_eq!(
        store.create_project(&NewProject::named("例え 🚀")).unwrap().name,
        "例え 🚀"
    );

    // Nothing refused was written; the project keeps its name and the one domain added.
    let projects = store.reader().projects().unwrap();
    assert_eq!(projects.len(), 3, "{projects:?}");
    assert_eq!(projects[0].name, "P");
    assert_eq!(projects[0].domains, [longest.as_str()]);
    // A host that is no host name belongs to no project (and costs no lookup of every parent).
    let reader = store.reader();
    for host in ["\0", "a\0b.com", huge.as_str(), dotted.as_str()] {
        assert_eq!(
            reader.project_for_domain(host).unwrap(),
            None,
            "{:?}",
            &host[..host.len().min(12)]
        );
    }
}

#[test]
fn domains_and_keywords_are_removed_by_any_spelling_of_them() {
    let (_dir, path, mut store) = store();
    let p = store
        .create_project(&project("P", &["a.com", "b.com"], &["standup"]))
        .unwrap();
    assert!(store.remove_domain(p.id, "A.COM.").unwrap());
    assert!(!store.remove_domain(p.id, "a.com").unwrap(), "already gone");
    assert!(store.remove_keyword(p.id, " standup ").unwrap());
    assert_eq!(store.reader().project(p.id).unwrap().unwrap().domains, ["b.com"]);

    // A legacy row that was never normalized is removed as the UI shows it.
    drop(store);
    exec(
        &path,
        &format!(
            "INSERT INTO project_domains (project_id, domain) VALUES ({0}, 'Legacy.COM ');
             INSERT INTO project_calendar_keywords (project_id, keyword) VALUES ({0}, ' legacy ');",
            p.id
        ),
    );
    let mut store = ConfigStore::open(&path).unwrap();
    assert_eq!(
        store.reader().project_for_domain("www.legacy.com ").unwrap(),
        None,
        "a legacy value with a trailing space is not a host name and matches nothing"
    );
    assert!(store.remove_domain(p.id, "Legacy.COM ").unwrap());
    assert!(store.remove_keyword(p.id, " legacy ").unwrap());
    let p = store.reader().project(p.id).unwrap().unwrap();
    assert_eq!(p.domains, ["b.com"]);
    assert!(p.keywords.is_empty());
}

#[test]
fn legacy_domains_kept_as_written_are_found_whatever_their_case_through_the_index() {
    let (_dir, path, store) = store();
    drop(store);
    exec(
        &path,
        "INSERT INTO projects (id, name) VALUES (7, 'Legacy');
         INSERT INTO project_domains (project_id, domain) VALUES (7, 'GitHub.com');",
    );
    let store = ConfigStore::open(&path).unwrap();
    assert_eq!(store.reader().project_for_domain("github.com").unwrap(), Some(7));
    assert_eq!(store.reader().project_for_domain("GIST.GITHUB.COM").unwrap(), Some(7));
    let plan: String = store
        .owner()
        .read(|c| {
            c.query_row(
                "EXPLAIN QUERY PLAN SELECT d.project_id FROM project_domains d JOIN projects p ON p.id = d.project_id
                 WHERE d.domain = 'x' COLLATE NOCASE AND p.archived = 0 ORDER BY d.project_id LIMIT 1",
                [],
                |r| r.get::<_, String>(3),
            )
        })
        .unwrap();
    assert!(plan.contains("USING INDEX project_domains_domain"), "{plan}");
}

#[test]
fn the_same_domain_on_two_projects_is_allowed_and_the_lowest_active_id_owns_it() {
    let (_dir, _path, mut store) = store();
    let first = store.create_project(&NewProject::named("First")).unwrap();
    let second = store.create_project(&NewProject::named("Second")).unwrap();
    // The higher id lists it first: the row order must not decide.
    store.add_domain(second.id, "shared.com").unwrap();
    store.add_domain(first.id, "shared.com").unwrap();
    let reader = store.reader().clone();
    for _ in 0..3 {
        assert_eq!(reader.project_for_domain("shared.com").unwrap(), Some(first.id));
    }

    store
        .update_project(
            first.id,
            &ProjectUpdate {
                archived: Some(true),
                ..ProjectUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        reader.project_for_domain("shared.com").unwrap(),
        Some(second.id),
        "archived projects never match"
    );
    store
        .update_project(
            second.id,
            &ProjectUpdate {
                archived: Some(true),
                ..ProjectUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(reader.project_for_domain("shared.com").unwrap(), None);
}

#[test]
fn a_domain_owns_its_subdomains_and_the_most_specific_listing_wins() {
    let (_dir, _path, mut store) = store();
    let site = store.create_project(&project("Site", &["example.com"], &[])).unwrap();
    let docs = store
        .create_project(&project("Docs", &["docs.example.com"], &[]))
        .unwrap();
    let old = store
        .create_project(&NewProject {
            archived: true,
            ..project("Old", &["old.example.com"], &[])
        })
        .unwrap();
    let r = store.reader();
    let cases = [
        ("example.com", Some(site.id)),
        ("www.example.com", Some(site.id)),
        ("WWW.Example.Com.", Some(site.id)),
        ("a.b.example.com", Some(site.id)),
        ("docs.example.com", Some(docs.id)),
        ("v2.docs.example.com", Some(docs.id)),
        // An archived listing does not shadow the active parent.
        ("old.example.com", Some(site.id)),
        ("notexample.com", None),
        ("example.com.evil.net", None),
        ("com", None),
        ("", None),
        ("  ", None),
    ];
    for (host, owner) in cases {
        assert_eq!(r.project_for_domain(host).unwrap(), owner, "{host:?}");
    }
    assert!(old.archived);
}
