//! [`ConfigStore`]: the server's handle on config.db, the only one that writes it.
//!
//! It holds the owner lock (`store_core::OwnerConnection`: a second owner, in this process or another, is
//! refused with `Locked`) and writes through that one connection, each write one `BEGIN IMMEDIATE`
//! transaction: a write that fails at any step leaves nothing of itself behind. It reads through a
//! [`ConfigReader`] on the same file, so reads never wait for the owner connection and can run on other
//! threads ([`ConfigStore::reader`] clones cheaply).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;
use store_core::{OpenOptions, OwnerConnection, Provenance};

use crate::SCHEMA;
use crate::calendar::{self, NewCalendarEvent, NewSubscription, Subscription, SubscriptionUpdate};
use crate::error::{Result, store};
use crate::projects::{self, NewProject, Project, ProjectUpdate};
use crate::reader::ConfigReader;
use crate::settings;

/// The owner of config.db: every write, and reads through [`reader`](Self::reader).
///
/// ```
/// use config_store::{ConfigStore, NewProject};
///
/// let dir = tempfile::tempdir()?;
/// let mut store = ConfigStore::open_in(dir.path())?; // takes config.db.lock, creates, migrates
/// let acme = store.create_project(&NewProject {
///     domains: vec!["acme.com".into()],
///     ..NewProject::named("Acme")
/// })?;
/// assert_eq!(store.reader().project_for_domain("docs.acme.com")?, Some(acme.id));
///
/// // A duplicate is refused before anything is written, with a kind a program can branch on.
/// let err = store.add_domain(acme.id, "ACME.com").unwrap_err();
/// assert_eq!(err.kind(), config_store::ErrorKind::Duplicate);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ConfigStore {
    owner: OwnerConnection,
    reader: ConfigReader,
    path: PathBuf,
}

impl ConfigStore {
    /// Opens (creating and migrating as needed) config.db at `path` as its owner.
    pub fn open(path: &Path) -> Result<ConfigStore> {
        ConfigStore::open_with(path, &OpenOptions::default())
    }

    /// [`open`](Self::open) on `<data_dir>/config.db`.
    pub fn open_in(data_dir: &Path) -> Result<ConfigStore> {
        ConfigStore::open(&SCHEMA.path_in(data_dir))
    }

    /// [`open`](Self::open) with options (busy timeout, backup directory...).
    ///
    /// activity.db's sessions name projects by id, so an id is never handed out twice: the highest each
    /// counter handed out is kept beside the file, and a config.db that went back (a copy put back by hand,
    /// its last commits lost in a power loss, a file created anew) has its counters raised past them first
    /// (`owner().open_report().counters_raised`: [`OwnerConnection::keep_counters`]).
    pub fn open_with(path: &Path, options: &OpenOptions) -> Result<ConfigStore> {
        let mut owner = OwnerConnection::open_with(path, &SCHEMA, options)?;
        owner.keep_counters()?;
        // The owner's path, made absolute at its open: the process may change its working directory.
        let path = owner.path().to_path_buf();
        let reader = ConfigReader::open_with_key(&path, options.key.clone());
        Ok(ConfigStore { owner, reader, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The owner connection: open report, schema version, lock, backups (`backup_to`).
    pub fn owner(&self) -> &OwnerConnection {
        &self.owner
    }

    /// Reads (projects, domain lookups, calendar events, settings). Clone it to read from other threads.
    pub fn reader(&self) -> &ConfigReader {
        &self.reader
    }

    /// Raises the counters that hand out ids to at least `floors` (the highest ids activity.db refers to):
    /// returns those they were behind ([`OwnerConnection::raise_counters`]).
    pub fn raise_counters(&mut self, floors: &[(String, i64)]) -> Result<Vec<(String, i64)>> {
        Ok(self.owner.raise_counters(floors)?)
    }

    /// Confirms now, without writing, that the files are this owner's still (call it from an idle loop:
    /// [`OwnerConnection::confirm_files`]).
    pub fn confirm_files(&mut self) -> Result<()> {
        Ok(self.owner.confirm_files()?)
    }

    /// Records where this file's content came from (a split, a restore).
    pub fn record_provenance(&mut self, record: &Provenance) -> Result<()> {
        Ok(self.owner.record_provenance(record)?)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; an error from `f` rolls all of it back.
    fn write<T>(&mut self, f: impl FnOnce(&Connection, &Path) -> Result<T>) -> Result<T> {
        let path = &self.path;
        self.owner.try_write(|tx| f(tx, path))
    }

    /// Creates a project with its domains and keywords, `created_at` now, in one transaction. Refuses an
    /// empty name, a domain that is not a host name (`InvalidInput`) and duplicates (`DuplicateDomain`,
    /// `DuplicateKeyword`) before writing anything.
    pub fn create_project(&mut self, new: &NewProject) -> Result<Project> {
        self.write(|tx, path| projects::create(tx, path, new, Utc::now()))
    }

    /// Changes the fields the update names, replacing the domain and keyword lists if given, in one
    /// transaction. `ProjectNotFound` if there is no such project.
    pub fn update_project(&mut self, id: i64, update: &ProjectUpdate) -> Result<Project> {
        self.write(|tx, path| projects::update(tx, path, id, update))
    }

    /// Deletes a project with its domains and keywords (one transaction). Calendar events and activity
    /// keep its id. Returns whether it existed.
    pub fn delete_project(&mut self, id: i64) -> Result<bool> {
        self.write(|tx, path| projects::repo::delete_project(tx, id).map_err(|e| store(path, e)))
    }

    /// Adds a domain to a project; returns it as stored (normalized: [`projects::normalize_domain`]).
    /// `ProjectNotFound`, `DuplicateDomain` or `InvalidInput` otherwise.
    pub fn add_domain(&mut self, project_id: i64, domain: &str) -> Result<String> {
        self.write(|tx, path| projects::add_domain(tx, path, project_id, domain))
    }

    /// Removes a domain, given as stored or in any spelling that normalizes to it. Returns whether one was
    /// removed.
    pub fn remove_domain(&mut self, project_id: i64, domain: &str) -> Result<bool> {
        self.write(|tx, path| projects::remove_domain(tx, path, project_id, domain))
    }

    /// Adds a calendar keyword to a project; returns it as stored (trimmed). `ProjectNotFound`,
    /// `DuplicateKeyword` or `InvalidInput` otherwise.
    pub fn add_keyword(&mut self, project_id: i64, keyword: &str) -> Result<String> {
        self.write(|tx, path| projects::add_keyword(tx, path, project_id, keyword))
    }

    /// Removes a calendar keyword, given as stored or with surrounding whitespace. Returns whether one was
    /// removed.
    pub fn remove_keyword(&mut self, project_id: i64, keyword: &str) -> Result<bool> {
        self.write(|tx, path| projects::remove_keyword(tx, path, project_id, keyword))
    }

    /// Adds a calendar subscription (never synced yet).
    pub fn add_subscription(&mut self, new: &NewSubscription) -> Result<Subscription> {
        self.write(|tx, path| calendar::add(tx, path, new))
    }

    /// Changes the fields the update names. `SubscriptionNotFound` if there is no such subscription.
    pub fn update_subscription(&mut self, id: i64, update: &SubscriptionUpdate) -> Result<Subscription> {
        self.write(|tx, path| calendar::update(tx, path, id, update))
    }

    /// Deletes a subscription and its events (one transaction). Returns whether it existed.
    pub fn delete_subscription(&mut self, id: i64) -> Result<bool> {
        self.write(|tx, path| calendar::repo::delete_subscription(tx, id).map_err(|e| store(path, e)))
    }

    /// A sync: replaces all of the subscription's events with `events` and sets its `last_synced_at`, in
    /// one transaction, so a sync that fails half-way leaves the previous events and time intact. Returns
    /// how many events were stored. `SubscriptionNotFound` if there is no such subscription.
    pub fn replace_calendar_events(
        &mut self,
        subscription_id: i64,
        events: &[NewCalendarEvent],
        synced_at: DateTime<Utc>,
    ) -> Result<usize> {
        self.write(|tx, path| calendar::replace_events(tx, path, subscription_id, events, synced_at))
    }

    /// Stores `value` as JSON under `key`. A key already marked secret stays secret. A value JSON cannot
    /// hold (a NaN or an infinity anywhere in it, a map whose keys are not strings) is refused with
    /// `SettingEncode` (kind `unencodable`, naming the key, never the value); nothing is written.
    pub fn set_setting<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.write(|tx, path| settings::set(tx, path, key, value, false, Utc::now()))
    }

    /// Stores `value` as JSON under `key` and marks it secret (a credential).
    pub fn set_secret_setting<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.write(|tx, path| settings::set(tx, path, key, value, true, Utc::now()))
    }

    /// Deletes a setting (and its secret mark). Returns whether it existed.
    pub fn delete_setting(&mut self, key: &str) -> Result<bool> {
        self.write(|tx, path| settings::repo::delete(tx, key).map_err(|e| store(path, e)))
    }
}
