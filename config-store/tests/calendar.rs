//! Calendar subscriptions and events: syncs replace events, range reads, cascades, redacted URLs.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use config_store::TimeRange;
use config_store::{
    CalendarEvent, ConfigStore, Error, NewCalendarEvent, NewSubscription, Subscription, SubscriptionUpdate,
};

const PRIVATE_URL: &str = "https://calendar.google.com/calendar/ical/me%40example.com/private-TOKEN42/basic.ics";

fn subscription(store: &mut ConfigStore, name: &str) -> Subscription {
    store
        .add_subscription(&NewSubscription {
            name: name.into(),
            url: PRIVATE_URL.into(),
            color: Some("green".into()),
            enabled: true,
        })
        .unwrap()
}

fn event(uid: &str, start: &str, end: Option<&str>, project_id: Option<i64>) -> NewCalendarEvent {
    NewCalendarEvent {
        uid: uid.into(),
        title: Some(format!("title of {uid}")),
        start_time: t(start),
        end_time: end.map(t),
        project_id,
    }
}

fn uids(events: &[CalendarEvent]) -> Vec<&str> {
    events.iter().map(|e| e.uid.as_str()).collect()
}

#[test]
fn subscriptions_round_trip_and_update() {
    let (_dir, _path, mut store) = store();
    let sub = subscription(&mut store, " Work ");
    assert_eq!(sub.name, "Work");
    assert_eq!(sub.url.as_str(), PRIVATE_URL, "the full URL is kept for fetching");
    assert_eq!(sub.last_synced_at, None);
    assert!(sub.enabled);
    assert_eq!(store.reader().subscriptions().unwrap(), vec![sub.clone()]);

    let updated = store
        .update_subscription(
            sub.id,
            &SubscriptionUpdate {
                enabled: Some(false),
                color: Some(None),
                ..SubscriptionUpdate::default()
            },
        )
        .unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.color, None);
    assert_eq!(updated.name, "Work");
    assert_eq!(store.reader().subscription(sub.id).unwrap(), Some(updated));

    let err = store
        .update_subscription(sub.id + 1, &SubscriptionUpdate::default())
        .unwrap_err();
    assert!(matches!(err, Error::SubscriptionNotFound { .. }), "{err:?}");
    let err = store
        .add_subscription(&NewSubscription {
            name: "x".into(),
            url: "  ".into(),
            color: None,
            enabled: true,
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "calendar URL",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn debug_of_subscriptions_never_shows_the_private_part_of_the_url() {
    let (_dir, _path, mut store) = store();
    let sub = subscription(&mut store, "Work");
    let new = NewSubscription {
        name: "n".into(),
        url: "webcal://user:TOKEN42@cal.example.com/x?token=TOKEN42".into(),
        color: None,
        enabled: true,
    };
    let update = SubscriptionUpdate {
        url: Some(PRIVATE_URL.into()),
        ..SubscriptionUpdate::default()
    };
    for shown in [
        format!("{sub:?}"),
        format!("{sub:#?}"),
        format!("{new:?}"),
        format!("{update:?}"),
        format!("{:?}", store.reader().subscriptions().unwrap()),
    ] {
        assert!(!shown.contains("TOKEN42"), "{shown}");
        assert!(!shown.contains("private-"), "{shown}");
    }
    assert!(format!("{sub:?}").contains("url: https://calendar.google.com/<redacted>"));
    assert_eq!(sub.url.redacted(), "https://calendar.google.com/<redacted>");
    // Serialisation is for the owner's UI and keeps the URL; `redacted()` is for everyone else.
    assert!(serde_json::to_string(&sub).unwrap().contains("TOKEN42"));
}

#[test]
fn a_sync_replaces_the_subscriptions_events_and_records_when() {
    let (_dir, path, mut store) = store();
    let work = subscription(&mut store, "Work");
    let home = subscription(&mut store, "Home");
    let first_sync = t("2024-03-01T08:00:00Z");
    let n = store
        .replace_calendar_events(
            work.id,
            &[
                event("a", "2024-03-01T09:00:00Z", Some("2024-03-01T10:00:00Z"), Some(3)),
                event("b", "2024-03-01T11:00:00Z", None, None),
            ],
            first_sync,
        )
        .unwrap();
    assert_eq!(n, 2);
    store
        .replace_calendar_events(home.id, &[event("h", "2024-03-01T12:00:00Z", None, None)], first_sync)
        .unwrap();

    let second_sync = t("2024-03-01T09:30:00Z");
    let recurring = [
        event("r", "2024-03-02T09:00:00Z", Some("2024-03-02T09:15:00Z"), Some(5)),
        event("r", "2024-03-03T09:00:00Z", Some("2024-03-03T09:15:00Z"), Some(5)),
    ];
    assert_eq!(
        store.replace_calendar_events(work.id, &recurring, second_sync).unwrap(),
        2
    );

    let all = store
        .reader()
        .calendar_events_between(&TimeRange::between(
            t("2024-01-01T00:00:00Z"),
            t("2025-01-01T00:00:00Z"),
        ))
        .unwrap();
    assert_eq!(
        uids(&all),
        ["h", "r", "r"],
        "the old work events are gone, home's untouched"
    );
    let r = &all[1];
    assert_eq!(r.subscription_id, work.id);
    assert_eq!(r.title.as_deref(), Some("title of r"));
    assert_eq!(r.start_time, t("2024-03-02T09:00:00Z"));
    assert_eq!(r.end_time, Some(t("2024-03-02T09:15:00Z")));
    assert_eq!(r.project_id, Some(5));
    assert_eq!(
        store.reader().subscription(work.id).unwrap().unwrap().last_synced_at,
        Some(second_sync)
    );
    assert_eq!(
        query_i64(
            &read_only(&path),
            &format!(
                "SELECT last_synced_at_ms FROM calendar_subscriptions WHERE id = {}",
                work.id
            )
        ),
        second_sync.timestamp_millis()
    );

    assert_eq!(store.replace_calendar_events(work.id, &[], second_sync).unwrap(), 0);
    assert_eq!(
        query_i64(
            &read_only(&path),
            &format!(
                "SELECT count(*) FROM calendar_events WHERE subscription_id = {}",
                work.id
            )
        ),
        0
    );
}

#[test]
fn a_sync_of_a_missing_subscription_is_a_typed_error_and_writes_nothing() {
    let (_dir, path, mut store) = store();
    let err = store
        .replace_calendar_events(9, &[event("x", "2024-03-01T09:00:00Z", None, None)], Utc::now())
        .unwrap_err();
    assert!(matches!(err, Error::SubscriptionNotFound { id: 9, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no calendar subscription 9. What to do: it was deleted or never existed: reload the list of \
             calendars and retry; nothing was written",
            path.display()
        )
    );
    assert_eq!(query_i64(&read_only(&path), "SELECT count(*) FROM calendar_events"), 0);
}

#[test]
fn range_reads_return_every_event_overlapping_the_range() {
    let (_dir, _path, mut store) = store();
    let sub = subscription(&mut store, "Work");
    store
        .replace_calendar_events(
            sub.id,
            &[
                event(
                    "ends-at-10",
                    "2024-05-01T09:00:00Z",
                    Some("2024-05-01T10:00:00Z"),
                    Some(1),
                ),
                event(
                    "starts-at-10",
                    "2024-05-01T10:00:00Z",
                    Some("2024-05-01T11:00:00Z"),
                    Some(2),
                ),
                event("instant-at-12", "2024-05-01T12:00:00Z", None, Some(1)),
                event("all-day", "2024-05-01T00:00:00Z", Some("2024-05-02T00:00:00Z"), None),
                event(
                    "ends-before-start",
                    "2024-05-01T10:30:00Z",
                    Some("2024-05-01T10:00:00Z"),
                    Some(1),
                ),
            ],
            Utc::now(),
        )
        .unwrap();
    let r = store.reader();
    let between = |from: &str, to: &str| -> Vec<String> {
        let events = r.calendar_events_between(&TimeRange::between(t(from), t(to))).unwrap();
        uids(&events).into_iter().map(String::from).collect()
    };
    assert_eq!(
        between("2024-05-01T10:00:00Z", "2024-05-01T12:00:00Z"),
        ["all-day", "starts-at-10", "ends-before-start"],
        "half-open: ending at 10 is out, an instant at 12 is out"
    );
    assert_eq!(
        between("2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"),
        ["all-day", "instant-at-12"]
    );
    assert_eq!(
        between("2024-05-01T09:30:00Z", "2024-05-01T09:31:00Z"),
        ["all-day", "ends-at-10"]
    );
    assert!(between("2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z").is_empty());
    assert!(
        between("2024-05-01T13:00:00Z", "2024-05-01T09:00:00Z").is_empty(),
        "an empty range has nothing"
    );

    let for_project = |id: i64, from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<String> {
        let events = r
            .calendar_events_for_project(id, &TimeRange::between(from, to))
            .unwrap();
        assert!(events.iter().all(|e| e.project_id == Some(id)));
        uids(&events).into_iter().map(String::from).collect()
    };
    let day = (t("2024-05-01T00:00:00Z"), t("2024-05-02T00:00:00Z"));
    assert_eq!(
        for_project(1, day.0, day.1),
        ["ends-at-10", "ends-before-start", "instant-at-12"]
    );
    assert_eq!(for_project(2, day.0, day.1), ["starts-at-10"]);
    assert_eq!(for_project(1, t("2024-05-01T11:00:00Z"), day.1), ["instant-at-12"]);
    assert!(for_project(3, day.0, day.1).is_empty());
}

#[test]
fn deleting_a_subscription_deletes_its_events_only() {
    let (_dir, path, mut store) = store();
    let work = subscription(&mut store, "Work");
    let home = subscription(&mut store, "Home");
    store
        .replace_calendar_events(work.id, &[event("w", "2024-03-01T09:00:00Z", None, None)], Utc::now())
        .unwrap();
    store
        .replace_calendar_events(home.id, &[event("h", "2024-03-01T09:00:00Z", None, None)], Utc::now())
        .unwrap();
    assert!(store.delete_subscription(work.id).unwrap());
    assert!(!store.delete_subscription(work.id).unwrap());
    assert_eq!(
        query_column::<String, Vec<_>>(&read_only(&path), "SELECT uid FROM calendar_events"),
        ["h"]
    );
    assert_eq!(
        store.reader().subscriptions().unwrap(),
        vec![store.reader().subscription(home.id).unwrap().unwrap()]
    );
}

/// Events around a day long, read over ranges that begin just before, at and just after their ends and a
/// day after their starts: a file of schema 2 (a server of an older build keeps it; this build's readers
/// read it without the index of long events) and the same file upgraded to 3 both answer what a check of
/// every event one by one answers, for all projects and for one.
#[test]
fn events_overlapping_find_those_longer_than_a_day_and_just_under_it() {
    const DAY: i64 = 86_400_000;
    let (_dir, path) = fresh();
    drop(store_core::testing::open_at_version(&path, &config_store::SCHEMA, 2).unwrap());
    let base = t("2024-05-01T00:00:00Z").timestamp_millis();
    // (start, end): no end, no length, ending before the start, and lengths on each side of a day.
    let lengths = [
        None,
        Some(0),
        Some(-5_000),
        Some(1),
        Some(DAY - 1),
        Some(DAY),
        Some(DAY + 1),
        Some(2 * DAY),
        Some(10 * DAY),
    ];
    let events: Vec<(i64, Option<i64>, i64)> = (0..54)
        .map(|i| {
            let start = base + i * 27_420_000 + (i % 5) * 1_000;
            (start, lengths[i as usize % lengths.len()].map(|l| start + l), 1 + i % 2)
        })
        .collect();
    let mut sql = String::from("INSERT INTO calendar_subscriptions (id, name, url) VALUES (1, 'work', 'https://x');\n");
    for (i, (start, end, project)) in events.iter().enumerate() {
        let end = end.map_or("NULL".to_string(), |e| e.to_string());
        sql += &format!(
            "INSERT INTO calendar_events (subscription_id, uid, start_time_ms, end_time_ms, project_id) \
             VALUES (1, 'e{i}', {start}, {end}, {project});\n"
        );
    }
    exec(&path, &sql);

    let expected = |from: i64, to: i64, project: Option<i64>| -> Vec<String> {
        let mut hits: Vec<(i64, usize)> = events
            .iter()
            .enumerate()
            .filter(|(_, (start, end, p))| {
                let end = end.unwrap_or(*start).max(start + 1);
                from < to && *start < to && end > from && project.is_none_or(|q| q == *p)
            })
            .map(|(i, (start, _, _))| (*start, i))
            .collect();
        hits.sort();
        hits.into_iter().map(|(_, i)| format!("e{i}")).collect()
    };
    let mut ranges = Vec::new();
    for (start, end, _) in &events {
        let end = end.unwrap_or(*start).max(start + 1);
        for from in [
            end - 1,
            end,
            end + 1,
            start + DAY - 1,
            start + DAY,
            start + DAY + 1,
            start - 1,
        ] {
            for width in [1, 3_600_000, 3 * DAY] {
                ranges.push((from, from + width));
            }
        }
    }
    ranges.push((base - DAY, base + 30 * DAY));
    // Empty and backwards: nothing, though a ten-day event spans them.
    ranges.push((base + 5 * DAY, base + 5 * DAY));
    ranges.push((base + 5 * DAY, base + 4 * DAY));

    let check = |reader: &config_store::ConfigReader, schema: u32| {
        let mut found = 0;
        for &(from, to) in &ranges {
            let range = TimeRange::between(
                DateTime::from_timestamp_millis(from).unwrap(),
                DateTime::from_timestamp_millis(to).unwrap(),
            );
            let all = reader.calendar_events_between(&range).unwrap();
            assert_eq!(uids(&all), expected(from, to, None), "schema {schema}, [{from}, {to})");
            let of_two = reader.calendar_events_for_project(2, &range).unwrap();
            assert_eq!(
                uids(&of_two),
                expected(from, to, Some(2)),
                "schema {schema}, project 2, [{from}, {to})"
            );
            found += all.len();
        }
        assert!(found > ranges.len(), "the ranges meet events: {found}");
    };
    check(&config_store::ConfigReader::open(&path), 2);
    let store = ConfigStore::open(&path).unwrap();
    assert_eq!(store.owner().open_report().upgrade.from_version, 2);
    assert_eq!(store_core::testing::user_version_of(&path), 3);
    check(store.reader(), 3);
}
