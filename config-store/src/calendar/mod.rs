//! Calendar subscriptions (ICS feeds) and the events their last sync brought in.
//!
//! A sync replaces all of a subscription's events in one transaction
//! ([`ConfigStore::replace_calendar_events`](crate::ConfigStore::replace_calendar_events)): a sync that fails
//! half-way leaves the previous events and `last_synced_at` as they were. Event ids are therefore not stable
//! across syncs; `uid` is the feed's own identity (recurring instances share it, so it is not unique).
//!
//! `calendar_events.project_id` is a plain column (see `schema.rs`): deleting a project leaves its events,
//! and a report shows them under the id it no longer finds.
//!
//! # Subscription URLs
//! Feed URLs often carry a private token (`…/private-<token>/basic.ics`, `?token=…`). [`CalendarUrl`]'s
//! `Debug` shows only the scheme and host (`https://calendar.example.com/<redacted>`), so a subscription can
//! be logged; it has no `Display`. It does serialise in full: the server hands it to its owner's UI to edit.
//! Anything that serialises subscriptions for someone else (a report, a diagnostic) must use
//! [`CalendarUrl::redacted`].

pub mod queries;
pub(crate) mod repo;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, store};

/// A calendar feed URL, which may embed a private token: `Debug` redacts all but scheme and host.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CalendarUrl(String);

impl CalendarUrl {
    pub fn new(url: impl Into<String>) -> CalendarUrl {
        CalendarUrl(url.into())
    }

    /// The full URL, token included: for fetching the feed, never for printing.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Scheme and host only: `webcal://p01-calendars.icloud.com/<redacted>`. User info, path, query and
    /// fragment are dropped; a string that does not look like `scheme://host...` becomes `<redacted url>`.
    pub fn redacted(&self) -> String {
        let url = self.0.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return "<redacted url>".into();
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return "<redacted url>".into();
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (host, had_user) = match authority.rsplit_once('@') {
            Some((_, host)) => (host, true),
            None => (authority, false),
        };
        let tail = if had_user || end < rest.len() {
            "/<redacted>"
        } else {
            ""
        };
        format!("{scheme}://{host}{tail}")
    }
}

impl fmt::Debug for CalendarUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<&str> for CalendarUrl {
    fn from(url: &str) -> CalendarUrl {
        CalendarUrl::new(url)
    }
}

impl From<String> for CalendarUrl {
    fn from(url: String) -> CalendarUrl {
        CalendarUrl(url)
    }
}

/// A subscription to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubscription {
    /// Trimmed; must not be empty.
    pub name: String,
    /// Must not be empty.
    pub url: CalendarUrl,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl NewSubscription {
    /// An enabled subscription named `name` to the feed at `url`, with no color.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> NewSubscription {
        NewSubscription {
            name: name.into(),
            url: CalendarUrl::new(url),
            color: None,
            enabled: true,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: i64,
    pub name: String,
    pub url: CalendarUrl,
    pub color: Option<String>,
    /// When its events were last replaced by a sync; `None` before the first.
    pub last_synced_at: Option<DateTime<Utc>>,
    pub enabled: bool,
}

/// Changes to a subscription: each `None` field is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<CalendarUrl>,
    /// `Some(None)` clears the color (JSON: `"color": null`; an absent field leaves it).
    #[serde(default, deserialize_with = "crate::serde_fields::present")]
    pub color: Option<Option<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An event as a sync brings it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCalendarEvent {
    /// The feed's UID (shared by the instances of a recurring event).
    pub uid: String,
    pub title: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// The project the sync attributed it to (by keyword), if any. Not a foreign key.
    pub project_id: Option<i64>,
}

impl NewCalendarEvent {
    /// An instant event `uid` at `start`, untitled and on no project: set the other fields with struct update
    /// syntax.
    pub fn new(uid: impl Into<String>, start: DateTime<Utc>) -> NewCalendarEvent {
        NewCalendarEvent {
            uid: uid.into(),
            title: None,
            start_time: start,
            end_time: None,
            project_id: None,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarEvent {
    pub id: i64,
    pub subscription_id: i64,
    pub uid: String,
    pub title: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// May name a project that was deleted since.
    pub project_id: Option<i64>,
}

fn checked_name(path: &Path, input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "calendar name",
            problem: "is empty".into(),
        });
    }
    Ok(name.to_string())
}

fn checked_url<'a>(path: &Path, url: &'a CalendarUrl) -> Result<&'a str> {
    let url = url.as_str().trim();
    if url.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "calendar URL",
            problem: "is empty".into(),
        });
    }
    Ok(url)
}

fn not_found(path: &Path, id: i64) -> Error {
    Error::SubscriptionNotFound {
        path: path.to_path_buf(),
        id,
    }
}

pub(crate) fn add(conn: &Connection, path: &Path, new: &NewSubscription) -> Result<Subscription> {
    let name = checked_name(path, &new.name)?;
    let url = checked_url(path, &new.url)?;
    let id =
        repo::insert_subscription(conn, &name, url, new.color.as_deref(), new.enabled).map_err(|e| store(path, e))?;
    read_back(conn, path, id)
}

pub(crate) fn update(conn: &Connection, path: &Path, id: i64, update: &SubscriptionUpdate) -> Result<Subscription> {
    let name = update.name.as_deref().map(|n| checked_name(path, n)).transpose()?;
    let url = update.url.as_ref().map(|u| checked_url(path, u)).transpose()?;
    let color = update.color.as_ref().map(|c| c.as_deref());
    let exists =
        repo::update_subscription(conn, id, name.as_deref(), url, color, update.enabled).map_err(|e| store(path, e))?;
    if !exists {
        return Err(not_found(path, id));
    }
    read_back(conn, path, id)
}

/// Inside the caller's transaction: stamp the sync (which also proves the subscription exists), drop the
/// old events, insert the new ones. Returns how many were inserted.
pub(crate) fn replace_events(
    conn: &Connection,
    path: &Path,
    subscription_id: i64,
    events: &[NewCalendarEvent],
    synced_at: DateTime<Utc>,
) -> Result<usize> {
    if !repo::set_last_synced(conn, subscription_id, synced_at).map_err(|e| store(path, e))? {
        return Err(not_found(path, subscription_id));
    }
    repo::delete_events_of(conn, subscription_id).map_err(|e| store(path, e))?;
    for event in events {
        repo::insert_event(conn, subscription_id, event).map_err(|e| store(path, e))?;
    }
    Ok(events.len())
}

fn read_back(conn: &Connection, path: &Path, id: i64) -> Result<Subscription> {
    repo::subscription(conn, id)
        .map_err(|e| store(path, e))?
        .ok_or_else(|| not_found(path, id))
}

#[cfg(test)]
mod tests {
    use super::CalendarUrl;
    use super::queries;

    /// The plan's detail lines for `sql` on a fresh config.db.
    fn plan(sql: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::ConfigStore::open_in(dir.path()).unwrap();
        store
            .owner()
            .read(|c| Ok(store_core::testing::query_plan(c, sql)))
            .unwrap()
    }

    /// A range's events are searched from a day before it (start index, both bounds) and among the long
    /// ones, never by a scan from the first event.
    #[test]
    fn events_overlapping_search_the_start_index_and_the_long_events() {
        for (sql, first) in [
            (
                queries::EVENTS_OVERLAPPING,
                "SEARCH calendar_events USING INDEX calendar_events_start (start_time_ms>? AND start_time_ms<?)",
            ),
            (
                queries::PROJECT_EVENTS_OVERLAPPING,
                "SEARCH calendar_events USING INDEX calendar_events_project (project_id=? AND start_time_ms>? AND start_time_ms<?)",
            ),
        ] {
            let lines = plan(sql);
            for want in [
                first,
                "SEARCH calendar_events USING INDEX calendar_events_long (end_time_ms>?)",
            ] {
                assert!(
                    lines.iter().any(|l| l == want),
                    "plan of\n{sql}\nis\n{}\nwhich lacks `{want}`",
                    lines.join("\n")
                );
            }
            assert!(!lines.iter().any(|l| l.starts_with("SCAN")), "{}", lines.join("\n"));
        }
    }

    #[test]
    fn debug_keeps_scheme_and_host_only() {
        let cases = [
            (
                "https://calendar.google.com/calendar/ical/me%40x.com/private-abc123/basic.ics",
                "https://calendar.google.com/<redacted>",
            ),
            (
                "webcal://p01-calendars.icloud.com/published/2/TOKEN",
                "webcal://p01-calendars.icloud.com/<redacted>",
            ),
            (
                "https://cal.example.com?token=abc123",
                "https://cal.example.com/<redacted>",
            ),
            (
                "https://user:abc123@cal.example.com",
                "https://cal.example.com/<redacted>",
            ),
            ("https://cal.example.com", "https://cal.example.com"),
            ("not a url abc123", "<redacted url>"),
            ("://abc123", "<redacted url>"),
        ];
        for (url, shown) in cases {
            let url = CalendarUrl::new(url);
            assert_eq!(format!("{url:?}"), shown);
            assert!(!format!("{url:?}").contains("abc123"));
        }
    }
}
