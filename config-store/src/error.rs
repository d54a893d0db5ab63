//! The one error type of this crate: everything `store_core` reports, plus what only config.db's domain
//! knows (a project that does not exist, a duplicate domain, a setting that does not decode as asked).
//!
//! It has the surface every error of these crates has (`store_core::impl_error_surface!`): every variant
//! names the file, `Display` is `"<what happened>. What to do: <remedy>"`, `kind()` is the shared
//! [`ErrorKind`] vocabulary, `is_not_ready()`, `is_retryable()` and `locked_by()` answer the questions a
//! program asks, and the error serialises (serde) as the same banner as `store_core::Error`.
//!
//! No variant carries a settings value, and none carries serde_json's message about one: serde puts the
//! offending value into its messages (`invalid type: string "sk-…", expected u32`), so a settings error
//! says only which key, which Rust type was asked for and what JSON kind is stored.

use std::path::{Path, PathBuf};

pub use store_core::ErrorKind;
use store_core::LockHolder;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing config.db.
#[non_exhaustive]
pub enum Error {
    /// Opening, reading or writing the file failed (lock, schema, disk, constraint...): see
    /// [`store_core::Error`].
    Store(store_core::Error),
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
    /// A value could not be encoded as JSON to be stored (a map with keys that are not strings, a NaN or an
    /// infinity). Carries the type, never the value.
    SettingEncode {
        path: PathBuf,
        key: String,
        type_name: &'static str,
    },
}

impl From<store_core::Error> for Error {
    fn from(e: store_core::Error) -> Error {
        Error::Store(e)
    }
}

impl Error {
    /// What kind of error this is, in the vocabulary every error of these crates shares.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => e.kind(),
            Error::ProjectNotFound { .. } | Error::SubscriptionNotFound { .. } => ErrorKind::NotFound,
            Error::DuplicateDomain { .. } | Error::DuplicateKeyword { .. } => ErrorKind::Duplicate,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::SettingType { .. } => ErrorKind::WrongType,
            Error::SettingEncode { .. } => ErrorKind::Unencodable,
        }
    }

    /// Who holds config.db's owner lock, when the error is that it is held.
    pub fn locked_by(&self) -> Option<&LockHolder> {
        match self {
            Error::Store(e) => e.locked_by(),
            _ => None,
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
            Error::SettingEncode { .. } => "store a value whose Serialize produces JSON (maps need string keys, \
                 numbers must be finite: JSON has no NaN or infinity); nothing was written"
                .into(),
        }
    }
}

store_core::impl_error_surface!(Error);

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

/// Maps a SQLite error on `path` (config.db) to the typed store error.
pub(crate) fn store(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store(store_core::Error::from_sqlite(path, e).with_schema(&crate::SCHEMA))
}
