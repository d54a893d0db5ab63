//! The one error type of this crate: everything `store_core` reports, plus what only config.db's domain
//! knows (a project that does not exist, a duplicate domain, a setting that does not decode as asked).
//!
//! Like `store_core::Error`, every variant names the file, `Display` is `"<what happened>. What to do:
//! <remedy>"`, and the error serialises (serde) as a banner `{kind, path, message, remedy}` for a UI.
//!
//! No variant carries a settings value, and none carries serde_json's message about one: serde puts the
//! offending value into its messages (`invalid type: string "sk-…", expected u32`), so a settings error
//! says only which key, which Rust type was asked for and what JSON kind is stored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::ser::SerializeStruct;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing config.db.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, reading or writing the file failed (lock, schema, disk, constraint...): see
    /// [`store_core::Error`].
    #[error(transparent)]
    Store(#[from] store_core::Error),
    /// The write names a project that config.db does not have.
    ProjectNotFound { path: PathBuf, id: i64 },
    /// The write names a calendar subscription that config.db does not have.
    SubscriptionNotFound { path: PathBuf, id: i64 },
    /// The project already lists this domain (`UNIQUE (project_id, domain)`), or the input lists it twice.
    DuplicateDomain {
        path: PathBuf,
        /// `None` for a project being created.
        project_id: Option<i64>,
        domain: String,
    },
    /// The project already lists this calendar keyword (`UNIQUE (project_id, keyword)`), or the input lists
    /// it twice.
    DuplicateKeyword {
        path: PathBuf,
        /// `None` for a project being created.
        project_id: Option<i64>,
        keyword: String,
    },
    /// An input field is unusable (an empty keyword, a URL where a domain belongs...). Never used for
    /// settings values.
    InvalidInput {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    /// A stored setting does not decode into the requested type. Carries the JSON kind found, never the value.
    SettingType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A value could not be encoded as JSON to be stored. Carries the type, never the value.
    SettingEncode {
        path: PathBuf,
        key: String,
        type_name: &'static str,
    },
}

/// The kind of an [`Error`], for programs that branch on it and for the UI banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A `store_core` error of this kind.
    Store(store_core::ErrorKind),
    ProjectNotFound,
    SubscriptionNotFound,
    DuplicateDomain,
    DuplicateKeyword,
    InvalidInput,
    SettingType,
    SettingEncode,
}

impl Serialize for ErrorKind {
    /// A store kind serialises as `store_core` serialises it (`"Locked"`), the others by name, so a UI sees
    /// one flat set of kinds.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let name = match self {
            ErrorKind::Store(kind) => return kind.serialize(serializer),
            ErrorKind::ProjectNotFound => "ProjectNotFound",
            ErrorKind::SubscriptionNotFound => "SubscriptionNotFound",
            ErrorKind::DuplicateDomain => "DuplicateDomain",
            ErrorKind::DuplicateKeyword => "DuplicateKeyword",
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::SettingType => "SettingType",
            ErrorKind::SettingEncode => "SettingEncode",
        };
        serializer.serialize_str(name)
    }
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => ErrorKind::Store(e.kind()),
            Error::ProjectNotFound { .. } => ErrorKind::ProjectNotFound,
            Error::SubscriptionNotFound { .. } => ErrorKind::SubscriptionNotFound,
            Error::DuplicateDomain { .. } => ErrorKind::DuplicateDomain,
            Error::DuplicateKeyword { .. } => ErrorKind::DuplicateKeyword,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::SettingType { .. } => ErrorKind::SettingType,
            Error::SettingEncode { .. } => ErrorKind::SettingEncode,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Store(e) => e.path(),
            Error::ProjectNotFound { path, .. }
            | Error::SubscriptionNotFound { path, .. }
            | Error::DuplicateDomain { path, .. }
            | Error::DuplicateKeyword { path, .. }
            | Error::InvalidInput { path, .. }
            | Error::SettingType { path, .. }
            | Error::SettingEncode { path, .. } => path,
        }
    }

    /// What happened, in one sentence that names the file.
    pub fn what(&self) -> String {
        let p = self.path().display();
        match self {
            Error::Store(e) => e.what(),
            Error::ProjectNotFound { id, .. } => format!("{p} has no project {id}"),
            Error::SubscriptionNotFound { id, .. } => format!("{p} has no calendar subscription {id}"),
            Error::DuplicateDomain { project_id, domain, .. } => {
                format!(
                    "{p}: {} would list the domain {domain:?} twice",
                    project_label(*project_id)
                )
            }
            Error::DuplicateKeyword {
                project_id, keyword, ..
            } => {
                format!(
                    "{p}: {} would list the calendar keyword {keyword:?} twice",
                    project_label(*project_id)
                )
            }
            Error::InvalidInput { field, problem, .. } => format!("{p}: the {field} {problem}"),
            Error::SettingType {
                key, expected, found, ..
            } => format!("{p}: setting {key:?} holds {found}, which does not decode as {expected}"),
            Error::SettingEncode { key, type_name, .. } => {
                format!("{p}: the value for setting {key:?} (a {type_name}) cannot be encoded as JSON")
            }
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> String {
        match self {
            Error::Store(e) => e.remedy(),
            Error::ProjectNotFound { .. } => {
                "it was deleted or never existed: reload the list of projects and retry; nothing was written".into()
            }
            Error::SubscriptionNotFound { .. } => {
                "it was deleted or never existed: reload the list of calendars and retry; nothing was written".into()
            }
            Error::DuplicateDomain { .. } | Error::DuplicateKeyword { .. } => {
                "each is listed once per project (comparison ignores case for domains): drop the duplicate and \
                 retry; nothing was written"
                    .into()
            }
            Error::InvalidInput { field, .. } => format!("correct the {field} and retry; nothing was written"),
            Error::SettingType { .. } => "read it as the type it was written with (or as serde_json::Value to \
                 inspect it in code), or overwrite it; the stored value is unchanged"
                .into(),
            Error::SettingEncode { .. } => "store a value whose Serialize produces JSON (maps need string keys); \
                 nothing was written"
                .into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => fmt::Display::fmt(e, f),
            _ => write!(f, "{}. What to do: {}", self.what(), self.remedy()),
        }
    }
}

impl Serialize for Error {
    /// The banner a UI shows: `{kind, path, message, remedy}`, the same shape as `store_core::Banner`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Banner", 4)?;
        s.serialize_field("kind", &self.kind())?;
        s.serialize_field("path", self.path())?;
        s.serialize_field("message", &self.what())?;
        s.serialize_field("remedy", &self.remedy())?;
        s.end()
    }
}

fn project_label(id: Option<i64>) -> String {
    match id {
        Some(id) => format!("project {id}"),
        None => "the new project".into(),
    }
}

/// Which schema rule a failed statement broke, read from SQLite's extended result code
/// (https://sqlite.org/rescode.html#constraint_foreignkey, #constraint_unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broken {
    ForeignKey,
    Unique,
}

pub(crate) fn broken_rule(e: &rusqlite::Error) -> Option<Broken> {
    match e.sqlite_error()?.extended_code {
        rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Broken::ForeignKey),
        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Some(Broken::Unique),
        _ => None,
    }
}

/// Maps a SQLite error on `path` to the typed store error.
pub(crate) fn store(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store(store_core::Error::from_sqlite(path, e))
}
