//! Odd but legal uses of the public API, each once a panic or a wrong answer.

use std::time::Duration;

use chrono::Utc;
use splitstore::activity_store::{ActivityWriter, NewSession, WriterOptions};
use splitstore::config_store::{ConfigStore, NewProject, OpenOptions};

/// Before, a busy timeout past `i32::MAX` ms (24.8 days; an app meaning "wait as long as it takes") made
/// rusqlite panic "too big" inside `ConfigStore::open_with` / `ActivityWriter::open_with`.
#[test]
fn a_busy_timeout_past_what_sqlite_takes_waits_its_longest_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let open = OpenOptions {
        busy_timeout: Duration::MAX,
        ..Default::default()
    };
    let mut store = ConfigStore::open_with(&dir.path().join("config.db"), &open).unwrap();
    store.create_project(&NewProject::named("p")).unwrap();
    let options = WriterOptions {
        open,
        ..Default::default()
    };
    let mut writer = ActivityWriter::open_with(&dir.path().join("activity.db"), &options).unwrap();
    writer.start_session(&NewSession::new("a", Utc::now())).unwrap();
    writer
        .checkpoint(splitstore::activity_store::CheckpointMode::Truncate)
        .unwrap();
    writer.prune_before(Utc::now()).unwrap();
}
