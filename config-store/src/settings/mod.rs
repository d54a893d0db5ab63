//! Settings: typed values stored as JSON text, some of them credentials.
//!
//! # Secrecy
//! No value is ever printed, whatever the key: no type here holds a value where `Debug`, `Display`,
//! `Serialize` or an error could reach it. [`SettingInfo`] (what [`keys`](crate::ConfigReader::setting_keys)
//! lists) has the key, the secret mark and the time, never the value; [`Error::SettingType`] names the JSON
//! kind that is stored (`a JSON string`), never the value, and serde_json's own message, which quotes the
//! value, is dropped. `secret` marks credentials so that a UI masks them and an export leaves them out; a
//! plain `set` on a secret key keeps the mark (secrecy is only ever lowered by deleting the key).
//!
//! # Encoding
//! Values are written as JSON (`serde_json`). A value JSON cannot hold is refused with
//! [`Error::SettingEncode`] before anything is written: a map whose keys are not strings, or a NaN or an
//! infinity anywhere in it (serde_json would write those as `null`, which no longer reads back as the type
//! written). Reading decodes the stored text as JSON into the requested
//! type. Legacy files hold plain text that is not JSON (`dark`): such a value reads as a JSON string, so
//! `setting::<String>("theme")` returns `dark`; legacy text that happens to parse as a JSON number or
//! boolean (`42`, `true`) also reads as a `String` when one is asked for. A key whose value is SQL `NULL`
//! reads as absent (`None`).

mod finite;
pub(crate) mod queries;
pub(crate) mod repo;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result, store};

/// What is known about a setting without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingInfo {
    pub key: String,
    /// The value is a credential (set with `set_secret_setting`).
    pub secret: bool,
    /// `None` for legacy settings written before the time was recorded.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A settings value as read from the file, before decoding. Private to the crate; its `Debug` is redacted
/// so that even a stray `{:?}` in this crate cannot print it.
pub(crate) enum StoredValue {
    Null,
    Text(String),
    /// A BLOB that is not UTF-8 text (only a foreign writer could have stored one).
    NotText,
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredValue(<redacted>)")
    }
}

impl StoredValue {
    pub(crate) fn from_column(value: rusqlite::types::Value) -> StoredValue {
        use rusqlite::types::Value;
        match value {
            Value::Null => StoredValue::Null,
            Value::Text(t) => StoredValue::Text(t),
            // TEXT affinity turns numbers into text on insert; these arms are for values written otherwise.
            Value::Integer(i) => StoredValue::Text(i.to_string()),
            Value::Real(r) => StoredValue::Text(r.to_string()),
            Value::Blob(b) => String::from_utf8(b).map_or(StoredValue::NotText, StoredValue::Text),
        }
    }
}

fn checked_key(path: &Path, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "setting key",
            problem: "is empty".into(),
        });
    }
    Ok(())
}

/// Encodes `value` as JSON and stores it under `key` (inside the caller's transaction).
pub(crate) fn set<T: Serialize + ?Sized>(
    conn: &Connection,
    path: &Path,
    key: &str,
    value: &T,
    secret: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    checked_key(path, key)?;
    let unencodable = || Error::SettingEncode {
        path: path.to_path_buf(),
        key: key.to_string(),
        type_name: std::any::type_name::<T>(),
    };
    // serde_json would write a NaN or an infinity as `null`, which no longer reads back as the type written.
    if finite::holds_non_finite(value) {
        return Err(unencodable());
    }
    // serde_json's message could quote part of the value: keep only the type.
    let json = serde_json::to_string(value).map_err(|_| unencodable())?;
    repo::upsert(conn, key, &json, store_core::time::to_ms(now), secret).map_err(|e| store(path, e))
}

/// Decodes a stored value as `T` (see the module docs for legacy plain text and NULL).
pub(crate) fn decode<T: DeserializeOwned>(path: &Path, key: &str, stored: StoredValue) -> Result<Option<T>> {
    let type_error = |found: &'static str| Error::SettingType {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected: std::any::type_name::<T>(),
        found,
    };
    let text = match stored {
        StoredValue::Null => return Ok(None),
        StoredValue::NotText => return Err(type_error("binary data that is not UTF-8 text")),
        StoredValue::Text(text) => text,
    };
    // Every serde error below is dropped unread: its message would quote the value.
    match serde_json::from_str::<Json>(&text) {
        Ok(json) => {
            if let Ok(value) = T::deserialize(&json) {
                return Ok(Some(value));
            }
            let found = json_kind(&json);
            if matches!(json, Json::Number(_) | Json::Bool(_)) {
                // Legacy plain text such as `42` or `true` parses as JSON but may be meant as a string.
                if let Ok(value) = T::deserialize(Json::String(text)) {
                    return Ok(Some(value));
                }
            }
            Err(type_error(found))
        }
        Err(_) => T::deserialize(Json::String(text))
            .map(Some)
            .map_err(|_| type_error("plain text (not JSON)")),
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "JSON null",
        Json::Bool(_) => "a JSON boolean",
        Json::Number(_) => "a JSON number",
        Json::String(_) => "a JSON string",
        Json::Array(_) => "a JSON array",
        Json::Object(_) => "a JSON object",
    }
}
