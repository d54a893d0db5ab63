//! SQL for calendar subscriptions and their events.

pub(crate) const INSERT_SUBSCRIPTION: &str =
    "INSERT INTO calendar_subscriptions (name, url, color, enabled) VALUES (?1, ?2, ?3, ?4)";

pub(crate) const SELECT_SUBSCRIPTION: &str =
    "SELECT id, name, url, color, last_synced_at_ms, enabled FROM calendar_subscriptions WHERE id = ?1";

pub(crate) const SELECT_SUBSCRIPTIONS: &str =
    "SELECT id, name, url, color, last_synced_at_ms, enabled FROM calendar_subscriptions ORDER BY id";

/// `?4` says whether to set the color at all, so that `NULL` in `?5` can clear it.
pub(crate) const UPDATE_SUBSCRIPTION: &str = "UPDATE calendar_subscriptions
    SET name = coalesce(?2, name),
        url = coalesce(?3, url),
        color = CASE WHEN ?4 THEN ?5 ELSE color END,
        enabled = coalesce(?6, enabled)
    WHERE id = ?1";

/// Its events go with it (ON DELETE CASCADE).
pub(crate) const DELETE_SUBSCRIPTION: &str = "DELETE FROM calendar_subscriptions WHERE id = ?1";

pub(crate) const SET_LAST_SYNCED: &str = "UPDATE calendar_subscriptions SET last_synced_at_ms = ?2 WHERE id = ?1";

pub(crate) const DELETE_EVENTS_OF: &str = "DELETE FROM calendar_events WHERE subscription_id = ?1";

pub(crate) const INSERT_EVENT: &str = "INSERT INTO calendar_events
    (subscription_id, uid, title, start_time_ms, end_time_ms, project_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Events that overlap `[?1, ?2)`: none if `?1 >= ?2`. An event spans `[start, end)`; one without an end,
/// or whose end is not after its start, is the instant `start` (as `[start, start + 1 ms)`).
pub(crate) const SELECT_EVENTS_BETWEEN: &str =
    "SELECT id, subscription_id, uid, title, start_time_ms, end_time_ms, project_id
    FROM calendar_events
    WHERE ?1 < ?2
      AND start_time_ms < ?2
      AND max(coalesce(end_time_ms, start_time_ms), start_time_ms + 1) > ?1
    ORDER BY start_time_ms, id";

/// As [`SELECT_EVENTS_BETWEEN`], for one project (index `calendar_events_project`).
pub(crate) const SELECT_PROJECT_EVENTS_BETWEEN: &str =
    "SELECT id, subscription_id, uid, title, start_time_ms, end_time_ms, project_id
    FROM calendar_events
    WHERE project_id = ?3
      AND ?1 < ?2
      AND start_time_ms < ?2
      AND max(coalesce(end_time_ms, start_time_ms), start_time_ms + 1) > ?1
    ORDER BY start_time_ms, id";
