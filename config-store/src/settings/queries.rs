//! SQL for settings.

/// Insert or overwrite. `secret` only ever goes up here: a plain `set` on a secret key keeps it secret.
pub(crate) const UPSERT_SETTING: &str = "INSERT INTO settings (key, value, updated_at_ms, secret)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (key) DO UPDATE SET
        value = excluded.value,
        updated_at_ms = excluded.updated_at_ms,
        secret = max(secret <> 0, excluded.secret)";

pub(crate) const SELECT_VALUE: &str = "SELECT value FROM settings WHERE key = ?1";

pub(crate) const DELETE_SETTING: &str = "DELETE FROM settings WHERE key = ?1";

pub(crate) const SELECT_INFOS: &str = "SELECT key, secret, updated_at_ms FROM settings ORDER BY key";

pub(crate) const SELECT_INFO: &str = "SELECT key, secret, updated_at_ms FROM settings WHERE key = ?1";
