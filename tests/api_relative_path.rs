//! Owners and readers opened on a relative path, then the process changes its working directory (a daemon
//! that detaches does `chdir("/")`). A test binary of its own: the working directory is process-wide.

use std::path::{Path, PathBuf};

use splitstore::TimeRange;
use splitstore::activity_store::{ActivityReader, ActivityWriter, NewSession};
use splitstore::config_store::{ConfigStore, NewProject};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files_under(&path));
        }
        all.push(path);
    }
    all
}

/// Before, after the chdir the owner of config.db wrote its counters record into `.private/` of the new
/// working directory (outside the data directory, and not beside its file, so a config.db that went back
/// could hand out ids again), its own reader said config.db "does not exist: the server has not created it
/// yet", and a reader opened on a relative path read whatever file the new directory held.
#[test]
fn owners_and_readers_opened_on_a_relative_path_keep_their_files_after_chdir() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::env::set_current_dir(data.path()).unwrap();
    let mut config = ConfigStore::open(Path::new("config.db")).unwrap();
    let mut writer = ActivityWriter::open(Path::new("activity.db")).unwrap();
    let reader = ActivityReader::open(Path::new("activity.db"));
    config.create_project(&NewProject::named("before")).unwrap();

    // The process moves away (a daemon detaching).
    std::env::set_current_dir(elsewhere.path()).unwrap();

    let project = config.create_project(&NewProject::named("after")).unwrap();
    let start = chrono::Utc::now() - chrono::Duration::minutes(1);
    let s = writer
        .start_session(&NewSession {
            project_id: Some(project.id),
            ..NewSession::new("editor", start)
        })
        .unwrap();
    writer.end_session(s, start + chrono::Duration::seconds(30)).unwrap();

    assert_eq!(
        files_under(elsewhere.path()),
        Vec::<PathBuf>::new(),
        "written outside the data directory"
    );
    let read_back = config
        .reader()
        .project(project.id)
        .expect("the owner reads its own file");
    assert_eq!(read_back.map(|p| p.name).as_deref(), Some("after"));
    let totals = reader
        .totals_by_project(&TimeRange::all())
        .expect("the reader reads the file it was given");
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].seconds, 30);
    for path in [config.path(), writer.path(), reader.path()] {
        assert!(
            path.starts_with(data.path().canonicalize().unwrap()) || path.starts_with(data.path()),
            "{path:?}"
        );
    }
}
