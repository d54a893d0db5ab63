//! config.db, the server's database: projects with the domains and calendar keywords that attribute
//! activity to them, calendar subscriptions and their events, and settings.
//!
//! - [`ConfigStore`] is the server's handle: it owns the file (owner lock; a second owner is refused with
//!   `Locked`), writes it, each write one `BEGIN IMMEDIATE` transaction, and reads it through a
//!   [`ConfigReader`].
//! - [`ConfigReader`] is everyone else's (the daemon): read-only connections, no write method.
//! - Per domain, a module with the row types and rules ([`projects`], [`calendar`], [`settings`]); their SQL
//!   is in each module's `queries.rs`, the typed statements in its `repo.rs`.
//! - Times are `chrono::DateTime<Utc>` here and INTEGER epoch milliseconds (`*_ms`) in the file.
//! - Errors are [`Error`]: `store_core::Error` for the file itself, plus this domain's own cases. No error,
//!   `Debug` or serialisation of this crate contains a settings value.
//!
//! ```
//! use config_store::{ConfigStore, NewProject};
//!
//! let dir = tempfile::tempdir()?;
//! let mut store = ConfigStore::open_in(dir.path())?;
//! let project = store.create_project(&NewProject {
//!     domains: vec!["example.com".into()],
//!     ..NewProject::named("Website")
//! })?;
//! assert_eq!(store.reader().project_for_domain("www.example.com")?, Some(project.id));
//!
//! store.set_secret_setting("calendar.token", "s3cr3t")?;
//! assert_eq!(store.reader().setting::<String>("calendar.token")?.as_deref(), Some("s3cr3t"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calendar;
pub mod error;
pub mod projects;
mod reader;
pub mod schema;
mod serde_fields;
pub mod settings;
mod store;

pub use calendar::{CalendarEvent, CalendarUrl, NewCalendarEvent, NewSubscription, Subscription, SubscriptionUpdate};
pub use error::{Error, ErrorKind, Result};
pub use projects::{NewProject, Project, ProjectSummary, ProjectUpdate, normalize_domain};
pub use reader::ConfigReader;
pub use schema::SCHEMA;
pub use settings::SettingInfo;
pub use store::ConfigStore;
pub use store_core::{Banner, ChangeToken, LockHolder, OpenOptions, TimeRange};
