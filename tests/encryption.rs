//! Encryption at rest through the real `splitstore` binary (`--features encryption`): the daemon and the
//! server race on an encrypted data directory and lose nothing; no file of the data directory (databases,
//! WAL, backups, pre-migration backups, files moved aside) starts with SQLite's header or holds a window
//! title, a token or a calendar feed URL written through the API; doctor, report, backup and restore work
//! with the key; with a wrong key every command fails saying the key was rejected and repair moves nothing;
//! a key rotation is all or nothing and leaves the old backups under the old key. Without the feature, every
//! command refuses a key file.

mod support;

use std::fs;
use std::path::Path;

use support::*;

/// Writes a fresh random key to `path` (0600) and returns its path as text.
fn key_file(path: &Path) -> String {
    store_core::Key::generate().unwrap().write_file(path).unwrap();
    utf8(path).to_string()
}

#[cfg(not(feature = "encryption"))]
#[test]
fn without_the_feature_every_command_refuses_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let k = key_file(&dir.path().join("k"));
    let d = utf8(&data);
    for args in [
        vec!["daemon", "--data-dir", d, "--events", "10"],
        vec!["server", "--data-dir", d, "--seconds", "0.1"],
        vec!["report", "--data-dir", d],
        vec!["doctor", "--data-dir", d],
        vec!["backup", "--data-dir", d],
        vec!["restore", "--data-dir", d, "--from", d],
        vec!["repair", "--data-dir", d],
        vec!["rekey", "--data-dir", d, "--new-key-file", &k],
    ] {
        let mut args = args.clone();
        if args[0] != "rekey" {
            args.extend(["--key-file", &k]);
        }
        let out = run_splitstore(&args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout} {stderr}");
        assert!(stderr.contains("`encryption` feature"), "{args:?}: {stderr}");
    }
    assert!(!data.join("activity.db").exists() && !data.join("config.db").exists());
}

#[cfg(feature = "encryption")]
mod encrypted {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use activity_store::{ActivityWriter, NewSession, WriterOptions};
    use config_store::{ConfigStore, NewSubscription};
    use store_core::{Key, OpenOptions};

    const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";
    /// Written through the API; no byte of the data directory may hold them.
    const TITLE: &str = "Divorce lawyer consultation - Confidential";
    const URL: &str = "https://bank.example.com/statement/acct-99817";
    const TOKEN: &str = "tok-5c9e21f7-never-on-disk-in-the-clear";
    const FEED_TOKEN: &str = "private-a83f9c11d2e4";

    fn feed_url() -> String {
        format!("https://calendar.example.com/ical/me%40example.com/{FEED_TOKEN}/basic.ics")
    }

    /// Every file under `dir`, recursively, but a backup folder's lock file (a pid and a time, no data).
    fn all_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
            if e.file_type().unwrap().is_dir() {
                out.extend(all_files(&e.path()));
            } else if e.file_name() != store_core::FolderLock::FILE_NAME {
                out.push(e.path());
            }
        }
        out.sort();
        out
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Every file of the data directory that holds data (not the private folder's records, the lock files
    /// that name their last holder, nor the `-shm` and empty `-wal` a reader's connection leaves), with its
    /// size and a digest of its bytes.
    fn snapshot(data: &Path) -> BTreeMap<PathBuf, (usize, String)> {
        use sha2::Digest;
        all_files(data)
            .into_iter()
            .filter(|p| !p.starts_with(data.join(".private")))
            .filter(|p| !p.to_string_lossy().ends_with("-shm") && !p.to_string_lossy().ends_with(".lock"))
            .filter(|p| !(p.to_string_lossy().ends_with("-wal") && fs::metadata(p).unwrap().len() == 0))
            .map(|p| {
                let bytes = fs::read(&p).unwrap();
                let digest = format!("{:x}", sha2::Sha256::digest(&bytes));
                (p, (bytes.len(), digest))
            })
            .collect()
    }

    fn key_of(file: &str) -> Key {
        Key::read_file(Path::new(file)).unwrap()
    }

    /// Seeds `data` through the library, with the key: activity.db at the schema before this build's (so the
    /// daemon's open migrates it and takes a pre-migration backup) holding a session with a private title
    /// and URL; config.db holding an API token and a private calendar feed.
    fn seed(data: &Path, key: &Key) {
        let open = OpenOptions {
            key: Some(key.clone()),
            target_version: Some(activity_store::SCHEMA.end_version() - 1),
            ..OpenOptions::default()
        };
        let options = WriterOptions {
            open,
            ..WriterOptions::default()
        };
        let mut writer = ActivityWriter::open_with(&activity_store::SCHEMA.path_in(data), &options).unwrap();
        let start = chrono::Utc::now() - chrono::Duration::hours(2);
        let id = writer
            .start_session(&NewSession {
                title: Some(TITLE.into()),
                url: Some(URL.into()),
                ..NewSession::new("browser", start)
            })
            .unwrap();
        // Left open: this schema version cannot end it; the daemon's open recovers it.
        let _ = id;
        drop(writer);
        let open = OpenOptions {
            key: Some(key.clone()),
            ..OpenOptions::default()
        };
        let mut config = ConfigStore::open_with(&config_store::SCHEMA.path_in(data), &open).unwrap();
        config.set_secret_setting("sync.api_token", TOKEN).unwrap();
        config
            .add_subscription(&NewSubscription::new("Private", feed_url()))
            .unwrap();
    }

    /// The kind of database a backup's name says it is a copy of.
    fn schema_of(backup: &Path) -> &'static store_core::Schema {
        match backup.file_name().unwrap().to_string_lossy().starts_with("activity-") {
            true => &activity_store::SCHEMA,
            false => &config_store::SCHEMA,
        }
    }

    /// `splitstore <args> --key-file <key>`.
    fn with_key(args: &[&str], key: &str) -> std::process::Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--key-file", key]);
        run_splitstore(&all)
    }

    /// [`seed_data_dir`] under the key in `key_file`: `daemon --events N`, then the server for a moment.
    fn seed_with_key(data: &Path, events: u64, key_file: &str) {
        let (d, events) = (utf8(data), events.to_string());
        let daemon = with_key(&["daemon", "--events", &events, "--data-dir", d], key_file);
        assert!(daemon.status.success(), "{:?}", texts(&daemon));
        let server = with_key(&["server", "--seconds", "0.2", "--data-dir", d], key_file);
        assert!(server.status.success(), "{:?}", texts(&server));
    }

    /// `rekey` waited without a word for a backup folder another process held (a backup or a restore running
    /// there): it says for whom it waits, as backup, restore and repair do, and re-keys once it is let go.
    #[test]
    fn a_rekey_waiting_for_its_backup_folder_says_for_whom() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let old = key_file(&dir.path().join("old.key"));
        let new = key_file(&dir.path().join("new.key"));
        seed_with_key(&data, 100, &old);
        let d = utf8(&data);
        let backup = with_key(&["backup", "--data-dir", d], &old);
        assert!(backup.status.success(), "{backup:?}");
        let backups = data.join("backups");
        let held = store_core::FolderLock::shared(&backups).unwrap();

        let mut rekey = spawn_splitstore(["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new]);
        let (lines, reader) = lines_of(rekey.stderr.take().unwrap());
        let waiting = format!(
            "splitstore rekey: waiting for the backup folder {}, held by pid {}",
            backups.display(),
            std::process::id()
        );
        let said = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("rekey says why it waits within 60 s");
        assert!(said.starts_with(&waiting), "{said:?} is not {waiting:?}");
        drop(held);
        let out = store_core::testing::wait_output_within(rekey, Duration::from_secs(60));
        reader.join().unwrap();
        assert!(
            out.status.success(),
            "{out:?} {:?}",
            lines.try_iter().collect::<Vec<_>>()
        );
        let doctor = with_key(&["doctor", "--data-dir", d], &new);
        assert!(doctor.status.success(), "under the new key: {doctor:?}");
    }

    /// A plaintext directory's backup copied into an encrypted directory's folder, which holds no backup of its
    /// own yet: doctor with the key called the directory healthy (exit 0), listing it only as not used. It is
    /// a problem, whose fix takes a backup under the key before the `rm`.
    #[test]
    fn a_backup_in_the_clear_beside_encrypted_files_is_a_problem_until_it_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        seed_data_dir(&plain, 100);
        let taken = run_splitstore(["backup", "--data-dir", utf8(&plain)]);
        assert!(taken.status.success(), "{taken:?}");
        let clear = backup_paths(&taken)
            .into_iter()
            .find(|b| b.file_name().unwrap().to_string_lossy().starts_with("activity-"))
            .unwrap();
        let data = dir.path().join("data");
        let k = key_file(&dir.path().join("data.key"));
        seed_with_key(&data, 100, &k);
        let d = utf8(&data);
        let backups = data.join("backups");
        store_core::files::create_private_dir_all(&backups).unwrap();
        let copied = backups.join(clear.file_name().unwrap());
        fs::copy(&clear, &copied).unwrap();

        let doctor = with_key(&["doctor", "--data-dir", d, "--json"], &k);
        assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
        let json: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
        let copied = copied.display();
        assert_eq!(
            doctor_problems(&json, "activity.db"),
            [(
                "backup_in_the_clear".to_string(),
                format!(
                    "{copied} is a backup in the clear beside {d}/activity.db, which is encrypted: anyone who can \
                     read the folder reads the data it holds"
                ),
                format!(
                    "take a backup under the key (`splitstore backup --data-dir {d} --key-file FILE`), then \
                     delete it (`rm {copied}`)"
                ),
            )]
        );
        assert!(doctor_problems(&json, "config.db").is_empty(), "{json}");
        // A key given by mistake for the plaintext directory: its files are the problem, not its backups.
        let mistaken = with_key(&["doctor", "--data-dir", utf8(&plain), "--json"], &k);
        let json: serde_json::Value = serde_json::from_slice(&mistaken.stdout).unwrap();
        let kinds: Vec<String> = doctor_problems(&json, "activity.db").into_iter().map(|p| p.0).collect();
        assert_eq!(kinds, ["not_encrypted"], "{json}");
        fs::remove_file(backups.join(clear.file_name().unwrap())).unwrap();
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        assert!(doctor.status.success(), "once deleted: {doctor:?}");
    }

    /// `rekey` of `data` from the key in `old` to the one in `new`, which succeeds: what it printed.
    fn rotated(data: &Path, old: &str, new: &str) -> std::process::Output {
        let out = run_splitstore([
            "rekey",
            "--data-dir",
            utf8(data),
            "--key-file",
            old,
            "--new-key-file",
            new,
        ]);
        assert!(out.status.success(), "{out:?}");
        out
    }

    /// What a failed `rekey` said on stderr after the steps it started (`rekey: ...` lines, each file as it
    /// is checked).
    fn failure(out: &std::process::Output) -> String {
        let (_, err) = texts(out);
        let at = err.find("splitstore rekey: ").unwrap_or_else(|| panic!("{err}"));
        assert!(err[..at].lines().all(|l| l.starts_with("rekey: checking ")), "{err}");
        err[at..].to_string()
    }

    /// `rekey` from `old` to `new` on `data`, whose files are under `new` and which no rotation from `old` put
    /// there: refused as such, nothing changed.
    fn refused_as_already_under_the_new_key(data: &Path, old: &str, new: &str) {
        let d = utf8(data);
        let before = snapshot(data);
        let out = run_splitstore(["rekey", "--data-dir", d, "--key-file", old, "--new-key-file", new]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            failure(&out).starts_with(&format!(
                "splitstore rekey: {d}/activity.db is already under the new key given"
            )),
            "{out:?}"
        );
        assert_eq!(snapshot(data), before, "nothing moved or changed");
    }

    fn field(line: &str, key: &str) -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
    }

    fn count(data: &Path, key: &Key, schema: &'static store_core::Schema, table: &str) -> u64 {
        let conn = store_core::read_pool::open_read_only(&schema.path_in(data), schema, Some(key)).unwrap();
        store_core::check::row_counts(&conn).unwrap()[table]
    }

    /// A project out of ids in an encrypted data directory, named by a session of activity.db: repair, given
    /// the key, opens both files under it and gives the project a smaller id, the session's reference with it.
    #[test]
    fn repair_gives_a_table_out_of_ids_smaller_ids_in_an_encrypted_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = key_file(&dir.path().join("key"));
        seed_with_key(&data, 20, &key);
        let opts = OpenOptions {
            key: Some(key_of(&key)),
            ..OpenOptions::default()
        };
        let max = i64::MAX;
        let mut config =
            store_core::OwnerConnection::open_with(&config_store::SCHEMA.path_in(&data), &config_store::SCHEMA, &opts)
                .unwrap();
        config
            .write(|tx| tx.execute(&format!("INSERT INTO projects (id, name) VALUES ({max}, 'far')"), []))
            .unwrap();
        drop(config);
        let activity = activity_store::SCHEMA.path_in(&data);
        let mut owner = store_core::OwnerConnection::open_with(&activity, &activity_store::SCHEMA, &opts).unwrap();
        let session = "SELECT MIN(id) FROM activity_sessions";
        owner
            .write(|tx| {
                tx.execute(
                    &format!("UPDATE activity_sessions SET project_id = {max} WHERE id = ({session})"),
                    [],
                )
            })
            .unwrap();
        drop(owner);
        let backup = with_key(&["backup", "--data-dir", utf8(&data)], &key);
        assert!(backup.status.success(), "{:?}", texts(&backup));

        let repair = with_key(&["repair", "--data-dir", utf8(&data)], &key);
        assert!(repair.status.success(), "{:?}", texts(&repair));
        let said = texts(&repair).0;
        assert!(
            said.contains("config.db: projects had handed out id 9223372036854775807")
                && said.contains("1 in activity.db's activity_sessions.project_id"),
            "{said}"
        );
        let read = |schema: &'static store_core::Schema, sql: &str| -> i64 {
            let conn =
                store_core::read_pool::open_read_only(&schema.path_in(&data), schema, Some(&key_of(&key))).unwrap();
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        let project = read(&config_store::SCHEMA, "SELECT id FROM projects WHERE name = 'far'");
        assert!(project < store_core::renumber::FAR_IDS, "{project}");
        let named = format!("SELECT project_id FROM activity_sessions WHERE id = ({session})");
        assert_eq!(read(&activity_store::SCHEMA, &named), project);

        // activity.db's backup of before, restored under the key, names the project's new id.
        let activity_backup = backup_paths(&backup).swap_remove(0);
        let restore = with_key(
            &["restore", "--data-dir", utf8(&data), "--from", utf8(&activity_backup)],
            &key,
        );
        assert!(
            texts(&restore)
                .0
                .contains("config.db's projects got smaller ids from a repair"),
            "{:?}",
            texts(&restore)
        );
        assert_eq!(read(&activity_store::SCHEMA, &named), project);
    }

    #[test]
    fn an_encrypted_data_directory_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let k = key_file(&dir.path().join("key"));
        let key = key_of(&k);
        seed(&data, &key);
        let d = utf8(&data);
        let mut outputs = Vec::new();

        // The race, as in the demo: both owners at once, a backup in the middle.
        let daemon = splitstore()
            .args([
                "daemon",
                "--data-dir",
                d,
                "--seconds",
                "2",
                "--batch",
                "200",
                "--key-file",
                &k,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let server = splitstore()
            .args(["server", "--data-dir", d, "--seconds", "2", "--key-file", &k])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once both own their files, and the daemon's open has migrated activity.db: it takes its lock before
        // migrating, so a backup taken while the daemon's pre-migration backup and migration ran (a busy
        // machine) held the file as it was, and the restore of it below brought back a file to migrate. A
        // reader opens activity.db only once it is at this build's version.
        let activity = activity_store::SCHEMA.path_in(&data);
        wait_until(Duration::from_secs(60), "activity.db was never migrated", || {
            store_core::read_pool::open_read_only(&activity, &activity_store::SCHEMA, Some(&key)).is_ok()
        });
        wait_until(Duration::from_secs(60), "config.db was never owned", || {
            matches!(
                store_core::OwnerLock::probe(&data.join("config.db")),
                Ok(store_core::LockState::Held { .. })
            )
        });
        // In the middle of both owners' writes.
        std::thread::sleep(Duration::from_millis(500));
        let backup = with_key(&["backup", "--data-dir", d], &k);
        assert!(backup.status.success(), "{backup:?}");
        outputs.push(backup);
        let daemon = wait_output_within(daemon, Duration::from_secs(60));
        let server = wait_output_within(server, Duration::from_secs(60));
        assert!(daemon.status.success(), "{daemon:?}");
        assert!(server.status.success(), "{server:?}");
        let (daemon_out, _) = texts(&daemon);
        let (server_out, _) = texts(&server);
        let d_line = daemon_out
            .lines()
            .rfind(|l| l.starts_with("daemon:"))
            .unwrap()
            .to_string();
        let s_line = server_out
            .lines()
            .rfind(|l| l.starts_with("server:"))
            .unwrap()
            .to_string();
        outputs.extend([daemon, server]);

        // Nothing lost: every event the daemon committed, the seeded session and every project alive.
        assert_eq!(
            count(&data, &key, &activity_store::SCHEMA, "activity_events"),
            field(&d_line, "events")
        );
        assert_eq!(
            count(&data, &key, &activity_store::SCHEMA, "activity_sessions"),
            field(&d_line, "sessions") + 1
        );
        assert_eq!(
            count(&data, &key, &config_store::SCHEMA, "projects"),
            field(&s_line, "projects_created") - field(&s_line, "projects_deleted")
        );
        let pre = all_files(&data.join("backups/pre-migration"));
        assert_eq!(
            pre.len(),
            1,
            "the daemon's migration took a pre-migration backup: {pre:?}"
        );

        // Doctor and report work with the key.
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
        let report = with_key(&["report", "--data-dir", d, "--json"], &k);
        assert!(report.status.success(), "{report:?}");
        let (report_out, _) = texts(&report);
        let rows: serde_json::Value = serde_json::from_str(report_out.trim()).unwrap();
        assert!(!rows.as_array().unwrap().is_empty());
        outputs.extend([doctor, report]);

        // A restore leaves the files it replaced beside the new ones (moved aside, encrypted).
        let restore = with_key(&["restore", "--data-dir", d, "--from", &format!("{d}/backups")], &k);
        assert!(restore.status.success(), "{restore:?}");
        outputs.push(restore);
        let files = all_files(&data);
        assert!(
            files.iter().any(|f| f.to_string_lossy().contains(".replaced-")),
            "{files:?}"
        );

        // No file of the data directory holds a title, a URL, a token or a feed in the clear, and no
        // database, backup or moved-aside copy is a plaintext SQLite file.
        for file in &files {
            let bytes = fs::read(file).unwrap();
            for secret in [TITLE, URL, TOKEN, FEED_TOKEN] {
                assert!(
                    !contains(&bytes, secret),
                    "{} holds {secret:?} in the clear",
                    file.display()
                );
            }
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let database = !name.ends_with("-wal")
                && !name.ends_with("-shm")
                && !name.ends_with(".lock")
                && !file.starts_with(data.join(".private"));
            if database {
                assert!(
                    !bytes.starts_with(SQLITE_HEADER),
                    "{} is a plaintext database",
                    file.display()
                );
            }
        }
        let dbs: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "db") || f.to_string_lossy().contains(".replaced-"))
            .collect();
        assert!(
            dbs.len() >= 7,
            "databases, backups, pre-migration backup, moved-aside copies: {dbs:?}"
        );

        // A wrong key: every command fails saying so, and nothing moves or changes.
        let wrong = key_file(&dir.path().join("wrong"));
        let before = snapshot(&data);
        for args in [
            vec!["daemon", "--data-dir", d, "--events", "10"],
            vec!["server", "--data-dir", d, "--seconds", "0.1"],
            vec!["report", "--data-dir", d],
            vec!["doctor", "--data-dir", d],
            vec!["backup", "--data-dir", d],
            vec!["restore", "--data-dir", d, "--from", &format!("{d}/backups")],
            vec!["repair", "--data-dir", d],
            vec!["repair", "--data-dir", d, "--salvage"],
            vec!["repair", "--data-dir", d, "--allow-empty"],
        ] {
            let out = with_key(&args, &wrong);
            let (stdout, stderr) = texts(&out);
            assert_ne!(out.status.code(), Some(0), "{args:?}: {stdout} {stderr}");
            assert!(
                stdout.contains("the key was rejected") || stderr.contains("the key was rejected"),
                "{args:?}: {stdout} {stderr}"
            );
            assert!(
                !stdout.contains("damaged") && !stderr.contains("damaged"),
                "{args:?}: {stdout} {stderr}"
            );
            outputs.push(out);
        }
        // The files are under the key given as new: with no rotation from the other behind them, refused (the two
        // keys may be the wrong way round), not said done.
        let rekey = run_splitstore(["rekey", "--data-dir", d, "--key-file", &wrong, "--new-key-file", &k]);
        assert_eq!(rekey.status.code(), Some(2));
        assert!(
            failure(&rekey).starts_with(&format!(
                "splitstore rekey: {d}/activity.db is already under the new key given, and the old key given opens \
                 neither it, nor a backup of it to re-key, nor the file the last key rotation moved aside: nothing is \
                 left to do, and nothing shows that an earlier run of this rotation did it. What to do: if a \
                 rotation to the key of --new-key-file ran before"
            )),
            "{rekey:?}"
        );
        assert!(
            texts(&rekey)
                .1
                .contains("if you meant to rotate away from that key, give it as --key-file")
        );
        assert_eq!(snapshot(&data), before, "nothing moved or changed");

        // No key at all: doctor says the files need their key (and never that they are damaged).
        let doctor = run_splitstore(["doctor", "--data-dir", d, "--json"]);
        assert_eq!(doctor.status.code(), Some(1));
        let (doctor_out, _) = texts(&doctor);
        assert!(doctor_out.contains("\"key_required\""), "{doctor_out}");
        assert!(!doctor_out.contains("\"corrupt\"") && !doctor_out.contains("\"not_a_database\""));
        outputs.push(doctor);
        // Nor does a restore send the operator to salvage or an empty file: the backups need the key too.
        let newest = all_files(&data.join("backups"))
            .into_iter()
            .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("activity-"))
            .max()
            .unwrap();
        let before = snapshot(&data);
        for from in [format!("{d}/backups"), utf8(&newest).to_string()] {
            let restore = run_splitstore(["restore", "--data-dir", d, "--from", &from]);
            assert_ne!(restore.status.code(), Some(0));
            let (_, stderr) = texts(&restore);
            assert!(
                stderr.contains("is encrypted and was opened without its key") && stderr.contains("--key-file"),
                "{from}: {stderr}"
            );
            assert!(
                !stderr.contains("passes verification") && !stderr.contains("not a SQLite database"),
                "{from}: {stderr}"
            );
            outputs.push(restore);
        }
        assert_eq!(snapshot(&data), before, "nothing moved or changed");

        // No output of any command held a secret.
        for out in &outputs {
            let (stdout, stderr) = texts(out);
            for secret in [TOKEN, FEED_TOKEN, key.to_hex().as_str()] {
                assert!(
                    !stdout.contains(secret) && !stderr.contains(secret),
                    "{stdout} {stderr}"
                );
            }
        }

        // Key rotation: both files under the new key, the old files kept aside, and the files' backups (the
        // pre-migration one included) re-keyed with them, each keeping its time.
        let events_before = count(&data, &key, &activity_store::SCHEMA, "activity_events");
        let backups = all_files(&data.join("backups"));
        let times: Vec<_> = backups
            .iter()
            .map(|b| fs::metadata(b).unwrap().modified().unwrap())
            .collect();
        let new = key_file(&dir.path().join("new"));
        let rotation = rotated(&data, &k, &new);
        let (rotated_out, _) = texts(&rotation);
        let line = rotated_out
            .lines()
            .find_map(|l| l.split_once(" backup(s) of the files, now under the new key too: "))
            .unwrap_or_else(|| panic!("{rotated_out}"));
        let mut rekeyed: Vec<PathBuf> = line.1.split(", ").map(PathBuf::from).collect();
        rekeyed.sort();
        assert_eq!(rekeyed, backups, "{rotated_out}");
        assert!(!rotated_out.contains("stay under the key"), "{rotated_out}");
        let new_key = key_of(&new);
        for (backup, time) in backups.iter().zip(&times) {
            let opened =
                store_core::read_pool::open_read_only(backup, schema_of(backup), Some(&new_key)).and_then(|conn| {
                    store_core::check::integrity_check(&conn).map_err(|e| store_core::Error::from_sqlite(backup, e))
                });
            assert_eq!(opened.unwrap(), Vec::<String>::new(), "{}", backup.display());
            assert_eq!(
                fs::metadata(backup).unwrap().modified().unwrap(),
                *time,
                "{}",
                backup.display()
            );
        }
        let doctor = with_key(&["doctor", "--data-dir", d], &new);
        let (doctor_out, _) = texts(&doctor);
        assert_eq!(doctor.status.code(), Some(0), "{doctor_out}");
        assert!(doctor_out.contains("before a key rotation"), "{doctor_out}");
        assert!(!doctor_out.contains("not used as a backup"), "{doctor_out}");
        let old = with_key(&["report", "--data-dir", d], &k);
        assert!(texts(&old).1.contains("the key was rejected"), "{old:?}");
        assert_eq!(
            count(&data, &key_of(&new), &activity_store::SCHEMA, "activity_events"),
            events_before
        );

        // Two rotations (to the new key, then to a third): the files the first moved aside open with the first
        // key, but the last rotation was from the new one, so "from the first key to the third" is not said
        // done (were the keys given the wrong way round, the files would be taken to be under the first).
        let third = key_file(&dir.path().join("third"));
        rotated(&data, &new, &third);
        refused_as_already_under_the_new_key(&data, &k, &third);
        let cleanup = run_splitstore(["cleanup", "--data-dir", d, "--older-than", "0"]);
        assert!(cleanup.status.success(), "{cleanup:?}");
        assert!(!all_files(&data).iter().any(|f| f.to_string_lossy().contains("rekeyed")));
    }

    #[test]
    fn a_server_started_without_the_key_does_not_create_config_db_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        let daemon = with_key(&["daemon", "--data-dir", d, "--seconds", "0.2"], &k);
        assert!(daemon.status.success(), "{daemon:?}");
        let config = data.join("config.db");
        assert!(!config.exists());

        // doctor names the missing file's fix with the key: copied as it is, it creates config.db encrypted.
        let fix = format!(
            "splitstore server --data-dir {} --key-file FILE",
            store_core::files::shell_quoted(&data)
        );
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        let (doctor_out, _) = texts(&doctor);
        assert!(doctor_out.contains(&fix), "{doctor_out}");

        let server = run_splitstore(["server", "--data-dir", d, "--seconds", "0.2"]);
        let (_, err) = texts(&server);
        assert_eq!(server.status.code(), Some(2), "{err}");
        assert!(
            err.contains("does not exist and was to be created without a key, in the clear, while")
                && err.contains(&fix),
            "{err}"
        );
        assert!(!config.exists(), "nothing created in the clear");

        let server = with_key(&["server", "--data-dir", d, "--seconds", "0.2"], &k);
        assert!(server.status.success(), "{server:?}");
        assert!(
            !fs::read(&config).unwrap().starts_with(b"SQLite format 3\0"),
            "encrypted"
        );
    }

    /// SQLCipher fails every read of a connection after one damaged page (its HMAC check), so retention
    /// meeting a damaged page used to stop recording too: "out of memory", and the pending group lost.
    /// The owner's next write starts on a new connection; recording goes on, as in a plaintext file.
    #[test]
    fn retention_meeting_a_damaged_page_of_an_encrypted_file_pauses_and_recording_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        let old = with_key(&[&OLD_HISTORY[..], &["--data-dir", d]].concat(), &k);
        assert!(old.status.success(), "{old:?}");
        // Old history fills the file: its middle page holds old events, which retention reads first.
        let db = data.join("activity.db");
        let mut bytes = fs::read(&db).unwrap();
        let middle = (bytes.len() / 4096 / 2) * 4096;
        for b in &mut bytes[middle + 100..middle + 140] {
            *b ^= 0xff;
        }
        fs::write(&db, &bytes).unwrap();

        let run = with_key(
            &[
                &["daemon", "--events", "3000", "--rate", "3000"][..],
                &PRUNING_WEEK_OLD,
                &["--data-dir", d],
            ]
            .concat(),
            &k,
        );
        let (out, err) = texts(&run);
        assert!(run.status.success(), "{err}");
        assert!(
            err.contains(&format!(
                "splitstore daemon: retention paused: {} is damaged",
                db.display()
            )),
            "{err}"
        );
        assert!(!err.contains("out of memory"), "{err}");
        let line = out.lines().find(|l| l.starts_with("daemon: ")).unwrap();
        assert_eq!(field(line, "events"), 3000, "{line}");
        assert!(line.ends_with(" retention=paused"), "{line}");
        assert!(store_core::records::damage_seen(&db).is_some());
    }

    /// Every command a message puts between backquotes, split into its arguments, the program left out.
    fn commands(text: &str) -> Vec<Vec<String>> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(|c| c.split_whitespace().skip(1).map(String::from).collect())
            .collect()
    }

    /// How the data directory's key changed after its backup was taken.
    #[derive(Clone, Copy, PartialEq)]
    enum KeyChange {
        /// From `old` to `new` (`rekey --key-file old --new-key-file new`).
        Rotated,
        /// From none to `new` (`rekey --new-key-file new`).
        Encrypted,
        /// From `old` to none (`rekey --key-file old --decrypt`).
        Decrypted,
    }

    /// History and a backup (copied off the machine), then the key changes (the backup re-keyed with the
    /// files) and the user puts their copy back in its place, then more history: a restore from the folder
    /// names the backup the directory's key (or none) does not open rather than restore config.db alone;
    /// then activity.db damaged: repair names that backup, changes nothing, and never offers to start the
    /// file empty; the rekey its remedy names, run as written, brings that backup under the directory's key
    /// and the repair then takes it; its one-command way (for another directory's backup) does too, on a
    /// copy; its other way, `--salvage`, keeps the rows still readable; `--allow-empty`, asked for, starts
    /// empty.
    fn a_repair_names_a_backup_under_another_key_and_its_remedy_restores_it(change: KeyChange) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let old = key_file(&dir.path().join("old"));
        let new = key_file(&dir.path().join("new"));
        let (before_key, after_key) = match change {
            KeyChange::Rotated => (Some(&old), Some(&new)),
            KeyChange::Encrypted => (None, Some(&new)),
            KeyChange::Decrypted => (Some(&old), None),
        };
        // `splitstore ARGS`, with the data directory's key as it is now.
        let run = |args: &[&str]| match after_key {
            Some(k) => with_key(args, k),
            None => run_splitstore(args),
        };
        let events = |data: &Path| {
            let db = activity_store::SCHEMA.path_in(data);
            let key = after_key.map(|k| key_of(k));
            let conn = store_core::read_pool::open_read_only(&db, &activity_store::SCHEMA, key.as_ref()).unwrap();
            store_core::check::row_counts(&conn).unwrap()["activity_events"]
        };
        let newest_activity_backup = |took: &std::process::Output| {
            let (took, _) = texts(took);
            took.lines()
                .filter_map(|l| l.strip_prefix("backup: "))
                .find(|p| p.contains("/activity-"))
                .unwrap_or_else(|| panic!("{took}"))
                .to_string()
        };
        let mut rekey = vec!["rekey", "--data-dir", d];
        let backup = match before_key {
            None => {
                seed_data_dir(&data, 2000);
                newest_activity_backup(&run_splitstore(["backup", "--data-dir", d]))
            }
            Some(k) => {
                seed_with_key(&data, 2000, k);
                rekey.extend(["--key-file", k]);
                newest_activity_backup(&with_key(&["backup", "--data-dir", d], k))
            }
        };
        match after_key {
            Some(k) => rekey.extend(["--new-key-file", k]),
            None => rekey.push("--decrypt"),
        }
        let offsite = dir.path().join("offsite.db");
        fs::copy(&backup, &offsite).unwrap();
        let rekeyed = run_splitstore(&rekey);
        assert!(rekeyed.status.success(), "{rekey:?}");
        assert!(
            texts(&rekeyed).0.contains("backup(s) of the files, now "),
            "{:?}",
            texts(&rekeyed)
        );
        assert!(texts(&rekeyed).0.contains(&backup), "{:?}", texts(&rekeyed));
        // The rotation re-keyed the backup; the user puts back their own copy of it, taken off the machine
        // before the rotation.
        fs::copy(&offsite, &backup).unwrap();
        assert!(run(&["daemon", "--events", "500", "--data-dir", d]).status.success());
        let (why, cannot) = match change {
            KeyChange::Rotated => (
                "it was taken under another key (before a key rotation, say)",
                "cannot be read with the key given",
            ),
            KeyChange::Encrypted => (
                "it is in the clear (taken before the data directory was encrypted), and the key given is for an \
                 encrypted file",
                "cannot be read with the key given",
            ),
            KeyChange::Decrypted => (
                "it reads as no database, so it is encrypted (taken before the data directory was decrypted, say), \
                 or not a database at all",
                "cannot be read without a key",
            ),
        };

        // A restore from the folder where only config.db has a backup under the key as it is now: refused,
        // naming activity.db's, rather than config.db restored alone.
        let took_new = run(&["backup", "--data-dir", d]);
        assert!(took_new.status.success(), "{took_new:?}");
        fs::remove_file(newest_activity_backup(&took_new)).unwrap();
        let before = snapshot(&data);
        let restore = run(&["restore", "--data-dir", d, "--from", &format!("{d}/backups")]);
        let (_, err) = texts(&restore);
        assert_eq!(restore.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore restore: the backup {backup} of {d}/activity.db {cannot}: {why}. What to do: "
            )),
            "{err}"
        );
        assert_eq!(snapshot(&data), before, "a refused restore changes nothing");
        // The copy in the clear, by a name of its own: its kind is read without the key, and it is named as a
        // backup in the clear (it was refused as a database opened with a key, its remedy to rekey `.`).
        if matches!(change, KeyChange::Encrypted) {
            let restore = run(&["restore", "--data-dir", d, "--from", utf8(&offsite)]);
            let (_, err) = texts(&restore);
            assert_eq!(restore.status.code(), Some(2), "{err}");
            assert!(
                err.starts_with(&format!(
                    "splitstore restore: the backup {} of {d}/activity.db {cannot}: {why}. What to do: ",
                    offsite.display()
                )),
                "{err}"
            );
            assert!(err.contains(" --backup-in-clear --key-file FILE`"), "{err}");
            assert_eq!(snapshot(&data), before, "a refused restore changes nothing");
        }

        let db = data.join("activity.db");
        let mut bytes = fs::read(&db).unwrap();
        let middle = (bytes.len() / 4096 / 2) * 4096;
        for b in &mut bytes[middle + 100..middle + 140] {
            *b ^= 0xff;
        }
        fs::write(&db, &bytes).unwrap();
        let before = snapshot(&data);
        // A rekey now refuses the damaged file, naming it as the file (not as a backup), and says to repair.
        let rekey = run(&["rekey", "--data-dir", d, "--new-key-file", &old]);
        let err = failure(&rekey);
        assert_eq!(rekey.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!("splitstore rekey: {d}/activity.db is damaged: ")),
            "{err}"
        );
        assert!(!err.contains("backup found"), "{err}");
        assert!(err.contains("then run `splitstore repair --data-dir "), "{err}");
        let repair = run(&["repair", "--data-dir", d]);
        let (_, err) = texts(&repair);
        assert_eq!(repair.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore repair: the backup {backup} of {d}/activity.db {cannot}: {why}. What to do: bring it \
                 under the data directory's key with the key it was taken with, `splitstore rekey --data-dir {d} "
            )),
            "{err}"
        );
        assert!(!err.contains("--allow-empty"), "{err}");
        assert_eq!(snapshot(&data), before, "a refused repair changes nothing");

        // On copies: the other way the remedy names, a salvage without that backup (which it says it left),
        // and starting empty, never offered but done when asked for (the backup's key may be lost).
        let (copy, emptied, fallback) = (
            copy_data_dir(&data, dir.path().join("copy")),
            copy_data_dir(&data, dir.path().join("emptied")),
            copy_data_dir(&data, dir.path().join("fallback")),
        );
        let mut remedy = commands(err.split_once("What to do: ").unwrap().1);
        let salvage = remedy.pop().unwrap();
        let mut expected = vec!["repair", "--data-dir", d, "--salvage"];
        expected.extend(after_key.map(|_| ["--key-file", "FILE"]).iter().flatten());
        assert_eq!(salvage, expected);
        let salvaged = run(&["repair", "--data-dir", utf8(&copy), "--salvage"]);
        let (out, err) = texts(&salvaged);
        assert!(salvaged.status.success(), "{err}");
        let copied_backup = backup.replace(d, utf8(&copy));
        assert!(
            out.contains(&format!("  note: not used: the backup {copied_backup} of ")),
            "{out}"
        );
        let salvaged_events = events(&copy);
        assert!(
            (2000..2500).contains(&salvaged_events),
            "{salvaged_events} events: the unread page's lost"
        );
        let started = run(&["repair", "--data-dir", utf8(&emptied), "--allow-empty"]);
        assert!(
            texts(&started).0.starts_with("activity.db: started empty"),
            "{:?}",
            texts(&started)
        );

        // The remedy's first command, placeholders filled, brings the backup under the directory's key (the
        // files left as they are); the repair run again then takes it.
        let fill = |arg: &str| match arg {
            "BACKUP_KEY" => old.clone(),
            "FILE" => new.clone(),
            arg => arg.to_string(),
        };
        assert_eq!(remedy.len(), 2, "{remedy:?}");
        let rekey: Vec<String> = remedy.remove(0).iter().map(|a| fill(a)).collect();
        assert_eq!(rekey[..3], ["rekey", "--data-dir", d], "{rekey:?}");
        let rekeyed = run_splitstore(&rekey);
        let (out, err) = texts(&rekeyed);
        assert!(rekeyed.status.success(), "{rekey:?}: {err}");
        assert!(
            out.contains(&format!("{d}/activity.db: ")) && out.contains(" (by an earlier rotation): left as it is"),
            "{out}"
        );
        assert!(out.contains(&backup), "{out}");
        // The backup verifies now: older than the damaged file, so the repair asks which way (it never leaves
        // out the 500 newer events unasked).
        let repaired = run(&["repair", "--data-dir", d]);
        let (_, err) = texts(&repaired);
        assert_eq!(repaired.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("is damaged, and its newest good backup ({backup}) is older")),
            "{err}"
        );
        let repaired = run(&["repair", "--data-dir", d, "--accept-older-backup"]);
        assert!(repaired.status.success(), "{:?}", texts(&repaired));
        assert_eq!(events(&data), 2000);
        let doctor = run(&["doctor", "--data-dir", d]);
        assert_eq!(doctor.status.code(), Some(0), "{:?}", texts(&doctor));

        // Its other way, for another data directory's backup, on a copy: one restore, with the key the backup
        // was taken under, which puts it under the directory's key (here in its place: it is in the directory's
        // own folder) and restores it.
        let fallback_dir = utf8(&fallback);
        let args: Vec<String> = remedy[0].iter().map(|a| fill(a).replace(d, fallback_dir)).collect();
        assert_eq!(args[..2], ["restore", "--data-dir"], "{args:?}");
        let out = run_splitstore(&args);
        assert!(out.status.success(), "{args:?}: {:?}", texts(&out));
        assert_eq!(events(&fallback), 2000);
        let copied = backup.replace(d, fallback_dir);
        let opened = run(&["doctor", "--data-dir", fallback_dir]);
        assert_eq!(opened.status.code(), Some(0), "{:?}", texts(&opened));
        assert!(
            texts(&out).0.starts_with(&format!("copied {copied} ")),
            "{:?}",
            texts(&out)
        );
    }

    /// Another data directory's backup, under its own key, is restored in one command: `restore --from FILE
    /// --backup-key-file KEY` puts a copy under this directory's key in its backup folder (named as a backup,
    /// the original left as it is) and restores that. Without the backup's key it is refused, naming that
    /// command; with a wrong one, refused with nothing written; a folder is refused for one backup file.
    #[test]
    fn another_directorys_backup_under_its_own_key_is_restored_in_one_command() {
        let dir = tempfile::tempdir().unwrap();
        let (theirs, ours) = (dir.path().join("theirs"), dir.path().join("ours"));
        let (their_key, our_key) = (
            key_file(&dir.path().join("their.key")),
            key_file(&dir.path().join("our.key")),
        );
        seed_with_key(&theirs, 2000, &their_key);
        seed_with_key(&ours, 300, &our_key);
        let took = with_key(&["backup", "--data-dir", utf8(&theirs)], &their_key);
        assert!(took.status.success(), "{took:?}");
        let backup = texts(&took)
            .0
            .lines()
            .filter_map(|l| l.strip_prefix("backup: "))
            .find(|p| p.contains("/activity-"))
            .unwrap()
            .to_string();
        let their_bytes = fs::read(&backup).unwrap();
        let o = utf8(&ours);
        // `splitstore restore` into ours (with our key) of the backup `from`, taken under `backup_key`.
        let restore_with = |from: &str, backup_key: &str| {
            run_splitstore([
                "restore",
                "--data-dir",
                o,
                "--from",
                from,
                "--backup-key-file",
                backup_key,
                "--key-file",
                &our_key,
            ])
        };
        let events = || {
            let conn = store_core::read_pool::open_read_only(
                &activity_store::SCHEMA.path_in(&ours),
                &activity_store::SCHEMA,
                Some(&key_of(&our_key)),
            )
            .unwrap();
            store_core::check::row_counts(&conn).unwrap()["activity_events"]
        };
        assert_eq!(events(), 300);

        // Without its key: refused, the remedy naming the one command (after a rekey, for a backup of ours).
        let before = snapshot(&ours);
        let out = with_key(&["restore", "--data-dir", o, "--from", &backup], &our_key);
        let (_, err) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "restore it with the key it was taken with, which first puts a copy of it in the data directory's \
                 backup folder, as the directory's files are (under its key, or in the clear): `splitstore restore \
                 --data-dir {o} --from {backup} --backup-key-file BACKUP_KEY --key-file FILE`; nothing was changed"
            )),
            "{err}"
        );
        // With a wrong key for the backup (ours): refused, naming the backup and the option, nothing written.
        let out = restore_with(&backup, &our_key);
        let (_, err) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore restore: {backup} cannot be read with the key of --backup-key-file {our_key}: the key was \
                 rejected: {backup} cannot be read with the key given"
            )),
            "{err}"
        );
        // A folder is no backup file.
        let folder = format!("{}/backups", utf8(&theirs));
        let out = restore_with(&folder, &their_key);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            texts(&out).1.starts_with(&format!(
                "splitstore restore: {folder} is a folder: --backup-key-file and --backup-in-clear take one backup \
                 file as --from. What to do: give the file of the backup to restore"
            )),
            "{out:?}"
        );
        assert_eq!(snapshot(&ours), before, "nothing was written");

        // With its key: copied under ours into our backup folder, by its name, and restored from there.
        let out = restore_with(&backup, &their_key);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        let name = Path::new(&backup).file_name().unwrap().to_string_lossy().into_owned();
        let copy = format!("{o}/backups/{name}");
        assert!(
            stdout.starts_with(&format!("copied {backup} under the data directory's key as {copy}\nrestored {o}/activity.db from {copy} (schema ")),
            "{stdout}"
        );
        assert_eq!(events(), 2000);
        assert_eq!(
            fs::read(&backup).unwrap(),
            their_bytes,
            "their backup is left as it was"
        );
        let copied =
            store_core::restore::verify_backup(Path::new(&copy), &activity_store::SCHEMA, Some(&key_of(&our_key)));
        assert!(copied.is_ok(), "{copied:?}");
        let doctor = with_key(&["doctor", "--data-dir", o], &our_key);
        assert_eq!(doctor.status.code(), Some(0), "{:?}", texts(&doctor));

        // A copy by a name of its own (taken off the machine) is named as a backup in our folder.
        let offsite = dir.path().join("offsite.db");
        fs::copy(&backup, &offsite).unwrap();
        let out = restore_with(utf8(&offsite), &their_key);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        let named = stdout
            .lines()
            .next()
            .and_then(|l| {
                l.strip_prefix(&format!(
                    "copied {} under the data directory's key as {o}/backups/",
                    offsite.display()
                ))
            })
            .unwrap_or_else(|| panic!("{stdout}"));
        let parsed = store_core::backup::BackupName::parse(named);
        assert!(
            parsed.is_some_and(|n| n.stem == "activity") && named != name,
            "{stdout}"
        );
        assert_eq!(events(), 2000);
    }

    #[test]
    fn a_repair_after_a_key_rotation_names_the_old_keys_backup_and_its_remedy_restores_it() {
        a_repair_names_a_backup_under_another_key_and_its_remedy_restores_it(KeyChange::Rotated);
    }

    #[test]
    fn a_repair_after_encryption_names_the_plaintext_backup_and_its_remedy_restores_it() {
        a_repair_names_a_backup_under_another_key_and_its_remedy_restores_it(KeyChange::Encrypted);
    }

    #[test]
    fn a_repair_after_decryption_names_the_encrypted_backup_and_its_remedy_restores_it() {
        a_repair_names_a_backup_under_another_key_and_its_remedy_restores_it(KeyChange::Decrypted);
    }

    /// Read without a key, a file named like a backup that is no database is taken for an encrypted backup
    /// (which a repair names rather than say there is no backup) only when it has an encrypted database's
    /// shape: whole pages, no SQLite header. A text file, an empty file, a copy cut short are no backup.
    #[test]
    fn without_a_key_only_a_file_shaped_like_an_encrypted_database_is_taken_for_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        seed_data_dir(&data, 300);
        let backups = data.join("backups");
        fs::create_dir(&backups).unwrap();
        let named = |day: u32| backups.join(format!("activity-202601{day:02}T000000.000Z-v4.db"));
        let pattern = |len: usize| (0..len).map(|i| (i * 7919 % 251) as u8 ^ 0x5a).collect::<Vec<u8>>();
        fs::write(named(1), "<html><body>404 Not Found</body></html>\n").unwrap();
        fs::write(named(2), "").unwrap();
        fs::write(named(3), pattern(3 * 4096 + 100)).unwrap();
        let db = data.join("activity.db");
        let mut bytes = fs::read(&db).unwrap();
        let middle = (bytes.len() / 4096 / 2) * 4096;
        bytes[middle..middle + 8].fill(0xff);
        fs::write(&db, &bytes).unwrap();

        let repair = run_splitstore(["repair", "--data-dir", d]);
        let (_, err) = texts(&repair);
        assert_eq!(repair.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore repair: no backup of {d}/activity.db in {d}/backups passes verification"
            )),
            "{err}"
        );

        // Whole pages without SQLite's header: perhaps a backup encrypted before a decryption.
        fs::write(named(4), pattern(2 * 4096)).unwrap();
        let repair = run_splitstore(["repair", "--data-dir", d]);
        let (_, err) = texts(&repair);
        assert_eq!(repair.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore repair: the backup {} of {d}/activity.db cannot be read without a key: ",
                named(4).display()
            )),
            "{err}"
        );
    }

    /// Backups kept in another folder (`backup --to`) are re-keyed when the rotation is told of the folder
    /// (as the remedy of a restore from there says), each once however often a folder is named; a folder
    /// that cannot be read stops it before anything changes.
    #[test]
    fn a_rotation_rekeys_the_backups_in_the_folders_it_is_told_of() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let (old, new) = (key_file(&dir.path().join("old")), key_file(&dir.path().join("new")));
        seed_with_key(&data, 200, &old);
        let drive = dir.path().join("drive");
        let drive_s = utf8(&drive);
        assert!(
            with_key(&["backup", "--data-dir", d, "--to", drive_s], &old)
                .status
                .success()
        );
        assert!(with_key(&["backup", "--data-dir", d], &old).status.success());
        let mut backups = all_files(&drive);
        backups.extend(all_files(&data.join("backups")));
        assert_eq!(backups.len(), 4, "{backups:?}");

        let before = snapshot(&data);
        let missing = dir.path().join("not-mounted");
        let refused = run_splitstore([
            "rekey",
            "--data-dir",
            d,
            "--key-file",
            &old,
            "--new-key-file",
            &new,
            "--backups",
            utf8(&missing),
        ]);
        let (_, err) = texts(&refused);
        assert_eq!(refused.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "splitstore rekey: could not read the backup folder {}: ",
                missing.display()
            )),
            "{err}"
        );
        assert_eq!(snapshot(&data), before, "nothing changed");

        // The default folder named again is read once; the drive, not named, is left.
        let rotated = run_splitstore([
            "rekey",
            "--data-dir",
            d,
            "--key-file",
            &old,
            "--new-key-file",
            &new,
            "--backups",
            &format!("{d}/backups"),
        ]);
        let (out, err) = texts(&rotated);
        assert!(rotated.status.success(), "{err}");
        let rekeyed_in = |out: &str| {
            let mut rekeyed: Vec<PathBuf> = out
                .lines()
                .find_map(|l| l.strip_prefix("2 backup(s) of the files, now under the new key too: "))
                .unwrap_or_else(|| panic!("{out}"))
                .split(", ")
                .map(PathBuf::from)
                .collect();
            rekeyed.sort();
            rekeyed
        };
        assert_eq!(rekeyed_in(&out), all_files(&data.join("backups")));
        assert!(!out.contains("not re-keyed") && !out.contains("stay under"), "{out}");

        // A restore from the drive names its backup, and the remedy's rotation, told of the drive, re-keys it.
        let on_drive = all_files(&drive)
            .into_iter()
            .find(|b| schema_of(b).file_name == "activity.db")
            .unwrap();
        let from_drive = ["restore", "--data-dir", d, "--from", utf8(&on_drive)];
        let restore = with_key(&from_drive, &new);
        let (_, err) = texts(&restore);
        assert_eq!(restore.status.code(), Some(2), "{err}");
        let rekey: Vec<String> = commands(err.split_once("What to do: ").unwrap().1)
            .remove(0)
            .iter()
            .map(|a| match a.as_str() {
                "BACKUP_KEY" => old.clone(),
                "FILE" => new.clone(),
                a => a.to_string(),
            })
            .collect();
        assert_eq!(rekey[rekey.len() - 2..], ["--backups", drive_s], "{err}");
        let rekeyed = run_splitstore(&rekey);
        let (out, err) = texts(&rekeyed);
        assert!(rekeyed.status.success(), "{err}");
        assert_eq!(rekeyed_in(&out), all_files(&drive));
        let restore = with_key(&from_drive, &new);
        assert!(restore.status.success(), "{:?}", texts(&restore));
        for backup in &backups {
            assert!(
                store_core::restore::verify_backup(backup, schema_of(backup), Some(&key_of(&new))).is_ok(),
                "{}",
                backup.display()
            );
        }
    }

    /// A rotation killed while it re-keys the backups leaves each backup whole, under one key or the other,
    /// and the files under the new key; the same command, run again, finishes it: the files left as they
    /// are, the backups still under the old key re-keyed, the killed copy's partial file removed.
    #[test]
    fn a_rotation_killed_while_it_rekeys_the_backups_is_finished_by_the_same_command() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let (old, new) = (key_file(&dir.path().join("old")), key_file(&dir.path().join("new")));
        seed_with_key(&data, 20000, &old);
        let took = with_key(&["backup", "--data-dir", d], &old);
        let (took, _) = texts(&took);
        let taken = PathBuf::from(took.lines().find_map(|l| l.strip_prefix("backup: ")).unwrap());
        // Twelve backups of the file (copies of one, named as taken on earlier days): a window long enough
        // to kill the rotation in.
        let name = taken.file_name().unwrap().to_string_lossy().into_owned();
        let version = name.rsplit_once("-v").unwrap().1;
        for day in 1..=12 {
            let copy = taken.with_file_name(format!("activity-202601{day:02}T000000.000Z-v{version}"));
            fs::copy(&taken, copy).unwrap();
        }
        let backups = all_files(&data.join("backups"));
        let before: Vec<Vec<u8>> = backups.iter().map(|b| fs::read(b).unwrap()).collect();
        let partial = |data: &Path| {
            all_files(&data.join("backups"))
                .into_iter()
                .find(|f| f.to_string_lossy().ends_with(".partial"))
        };

        let rekey = ["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new];
        let mut child = spawn_splitstore(rekey);
        // Killed once a backup was replaced and the next one's copy is being made.
        let inode = |b: &PathBuf| std::os::unix::fs::MetadataExt::ino(&fs::metadata(b).unwrap());
        let inodes: Vec<u64> = backups.iter().map(inode).collect();
        let mut finished = None;
        wait_until(Duration::from_secs(120), "no backup was re-keyed", || {
            finished = child.try_wait().unwrap();
            let replaced = backups.iter().zip(&inodes).any(|(b, ino)| inode(b) != *ino);
            finished.is_some() || (replaced && partial(&data).is_some())
        });
        assert_eq!(finished, None, "the rotation ended before it could be killed");
        kill9(&mut child);

        let opens_with = |backup: &Path, key: &str| {
            store_core::restore::verify_backup(backup, schema_of(backup), Some(&key_of(key))).is_ok()
        };
        let mut still_old = Vec::new();
        let mut replaced = 0;
        for (backup, bytes) in backups.iter().zip(&before) {
            if fs::read(backup).unwrap() == *bytes {
                still_old.push(backup.display().to_string());
            } else {
                assert!(
                    opens_with(backup, &new),
                    "{} is whole under the new key",
                    backup.display()
                );
                replaced += 1;
            }
        }
        assert!(
            replaced > 0 && !still_old.is_empty(),
            "{replaced} re-keyed, {still_old:?} not"
        );
        let doctor = with_key(&["doctor", "--data-dir", d], &new);
        let (doctor_out, _) = texts(&doctor);
        assert_eq!(
            doctor.status.code(),
            Some(0),
            "the files are under the new key: {doctor_out}"
        );
        if let Some(partial) = partial(&data) {
            let listed = doctor_out
                .lines()
                .find(|l| l.contains(&partial.display().to_string()))
                .unwrap_or_else(|| panic!("{doctor_out}"));
            assert!(
                listed.ends_with("the partial file of a backup that did not finish"),
                "{listed}"
            );
        }

        let again = run_splitstore(rekey);
        let (out, err) = texts(&again);
        assert!(again.status.success(), "{err}");
        for db in ["activity.db", "config.db"] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{d}/{db}: ")))
                .unwrap_or_else(|| panic!("{out}"));
            assert!(
                line.ends_with(" rows, already under the new key (by an earlier rotation): left as it is"),
                "{line}"
            );
        }
        let rekeyed = out
            .lines()
            .find_map(|l| l.split_once(" backup(s) of the files, now under the new key too: "))
            .map(|(_, list)| list.split(", ").map(String::from).collect::<Vec<_>>())
            .unwrap_or_default();
        still_old.sort();
        let mut rekeyed_sorted = rekeyed.clone();
        rekeyed_sorted.sort();
        assert_eq!(rekeyed_sorted, still_old, "{out}");
        // Each file said on stderr as it is started (with its size), the backups numbered: the files first
        // (checked, found under the new key), then each backup still under the old one, as it is re-keyed.
        let mut expected = vec![
            format!("rekey: checking {d}/activity.db ("),
            format!("rekey: checking {d}/config.db ("),
        ];
        for (n, backup) in rekeyed.iter().enumerate() {
            expected.push(format!(
                "rekey: backup {} of {}: checking {backup} (",
                n + 1,
                rekeyed.len()
            ));
        }
        let said: Vec<&str> = err.lines().collect();
        assert_eq!(said.len(), expected.len(), "{err}");
        for (line, start) in said.iter().zip(&expected) {
            assert!(
                line.starts_with(start.as_str()) && line.ends_with("), then copying it under the new key"),
                "{line}"
            );
        }
        assert_eq!(partial(&data), None, "the killed copy's partial file is removed");
        for backup in &backups {
            assert!(opens_with(backup, &new), "{}", backup.display());
        }

        // Killed after its last step, or run once more: nothing is left under the old key, and the files it moved
        // aside open with it, so the rotation is said done (it used to say the old key was rejected, with a
        // remedy to restore a backup).
        let mut expected: String = out
            .lines()
            .filter(|l| l.ends_with(" (by an earlier rotation): left as it is"))
            .map(|l| format!("{l}\n"))
            .collect();
        expected.push_str("nothing was left under the old key: the rotation is done\n");
        let before = snapshot(&data);
        let done = run_splitstore(rekey);
        let (out, err) = texts(&done);
        assert!(done.status.success(), "{err}");
        assert_eq!(out, expected);
        assert_eq!(snapshot(&data), before, "nothing changed");
        // With another old key, nothing shows that a rotation from it put the files under this one: refused.
        refused_as_already_under_the_new_key(&data, &key_file(&dir.path().join("other")), &new);
    }

    #[test]
    fn a_plaintext_data_directory_is_encrypted_by_rekey() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        seed_data_dir(&data, 500);
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        let with = with_key(&["doctor", "--data-dir", d], &k);
        assert!(texts(&with).0.contains("[not_encrypted]"), "{with:?}");
        let rekey = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
        assert!(rekey.status.success(), "{rekey:?}");
        for db in ["activity.db", "config.db"] {
            assert!(!fs::read(data.join(db)).unwrap().starts_with(SQLITE_HEADER), "{db}");
        }
        let key = key_of(&k);
        assert_eq!(count(&data, &key, &activity_store::SCHEMA, "activity_events"), 500);
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
        // And back, for a user who turns encryption off.
        let back = run_splitstore(["rekey", "--data-dir", d, "--key-file", &k, "--decrypt"]);
        assert!(back.status.success(), "{back:?}");
        assert!(fs::read(data.join("activity.db")).unwrap().starts_with(SQLITE_HEADER));
        let doctor = run_splitstore(["doctor", "--data-dir", d]);
        assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
    }

    /// A data directory below a linked folder is encrypted by rekey, recorded and backed up under the key and
    /// decrypted again: the key's opens, and the export's attach of the file being re-keyed, go through the
    /// folder's resolved path, as every other open does (`hostile.rs` walks the plaintext commands there).
    #[test]
    fn a_data_directory_below_a_linked_folder_is_encrypted_recorded_and_decrypted() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("disk")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("disk"), dir.path().join("share")).unwrap();
        let data = dir.path().join("share/data");
        seed_data_dir(&data, 200);
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        let rekey = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
        assert!(rekey.status.success(), "{rekey:?}");
        let more = with_key(&["daemon", "--events", "100", "--data-dir", d], &k);
        assert!(more.status.success(), "{more:?}");
        assert_eq!(
            count(&data, &key_of(&k), &activity_store::SCHEMA, "activity_events"),
            300
        );
        let backup = with_key(&["backup", "--data-dir", d], &k);
        assert!(backup.status.success(), "{backup:?}");
        let back = run_splitstore(["rekey", "--data-dir", d, "--key-file", &k, "--decrypt"]);
        assert!(back.status.success(), "{back:?}");
        assert_eq!(count_rows(&data.join("activity.db"), "activity_events"), 300);
    }

    /// An encrypted data directory restored or repaired without its key, from backups taken while it was in
    /// the clear: refused as `key_required`, nothing moved. Before, both files were put back in the clear
    /// (exit 0), the 500 events recorded under the key were dropped without a word, and the daemon started
    /// with the key then refused them.
    #[test]
    fn a_restore_or_repair_without_the_key_never_puts_an_encrypted_directory_back_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        seed_data_dir(&data, 300);
        let d = utf8(&data);
        let ext = dir.path().join("ext");
        let out = run_splitstore(["backup", "--data-dir", d, "--to", utf8(&ext)]);
        assert!(out.status.success(), "{out:?}");
        let k = key_file(&dir.path().join("key"));
        let rekey = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
        assert!(rekey.status.success(), "{rekey:?}");
        seed_with_key(&data, 500, &k);
        let before = snapshot(&data);

        for args in [
            vec!["restore", "--data-dir", d, "--from", utf8(&ext)],
            vec!["repair", "--data-dir", d, "--from", utf8(&ext), "--allow-empty"],
        ] {
            let out = run_splitstore(&args);
            let (_, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{d}/activity.db is encrypted")) && stderr.contains("--key-file"),
                "{args:?}: {stderr}"
            );
            assert_eq!(snapshot(&data), before, "{args:?}: nothing moved");
        }
        assert_eq!(
            count(&data, &key_of(&k), &activity_store::SCHEMA, "activity_events"),
            800
        );
    }

    /// A restore with a key other than the directory's, from backups taken under that key before a rotation
    /// (what `key_rejected`'s remedy offers a user who has only the old key): it restores, and says that the
    /// files it replaced could not be read with that key, so what they held past the backup was not counted.
    /// Before, nothing was said of the 500 events left out.
    #[test]
    fn a_restore_under_another_key_says_it_could_not_count_what_the_files_it_replaced_held() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let old = key_file(&dir.path().join("old"));
        seed_with_key(&data, 300, &old);
        let ext = dir.path().join("ext");
        let out = with_key(&["backup", "--data-dir", d, "--to", utf8(&ext)], &old);
        assert!(out.status.success(), "{out:?}");
        let new = key_file(&dir.path().join("new"));
        rotated(&data, &old, &new);
        seed_with_key(&data, 500, &new);

        let out = with_key(&["restore", "--data-dir", d, "--from", utf8(&ext)], &old);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        let activity = stdout
            .lines()
            .find(|l| l.starts_with(&format!("restored {d}/activity.db")))
            .unwrap();
        assert!(
            activity.ends_with(
                "; the file it replaced could not be read with the key given (it is under another key, or no \
                 database at all), so what it held past the backup is not counted: read it with its own key \
                 before removing it"
            ),
            "{stdout}"
        );
        assert_eq!(
            count(&data, &key_of(&old), &activity_store::SCHEMA, "activity_events"),
            300
        );
    }

    /// A restore from a folder holding a newer backup under the key before a rotation (a copy put back) and
    /// an older one under the directory's key: refused, naming the newer one, with the ways to use it or the
    /// older one. Before, the older was restored (exit 0) and the newer passed over without a word.
    #[test]
    fn a_restore_names_a_newer_backup_under_another_key_rather_than_restore_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let old = key_file(&dir.path().join("old"));
        seed_with_key(&data, 100, &old);
        let taken = |to: &Path| {
            let out = with_key(&["backup", "--data-dir", d, "--to", utf8(to)], &old);
            assert!(out.status.success(), "{out:?}");
            out
        };
        let backups = data.join("backups");
        let older = backup_paths(&taken(&backups))[0].clone();
        seed_with_key(&data, 400, &old);
        let ext = dir.path().join("ext");
        let newer = backup_paths(&taken(&ext))[0].clone();
        let new = key_file(&dir.path().join("new"));
        rotated(&data, &old, &new);
        let newer_here = backups.join(newer.file_name().unwrap());
        fs::copy(&newer, &newer_here).unwrap();
        let before = snapshot(&data);

        let out = with_key(&["restore", "--data-dir", d, "--from", utf8(&backups)], &new);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "splitstore restore: the backup {} of {d}/activity.db cannot be read with the key given: it was \
                 taken under another key (before a key rotation, say), and it is newer than {}, the backup the key \
                 opens. What to do: ",
                newer_here.display(),
                older.display()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "; or restore the older backup, without what the newer one holds past it, with `splitstore restore \
                 --data-dir {d} --from {} --key-file FILE`",
                older.display()
            )),
            "{stderr}"
        );
        assert_eq!(snapshot(&data), before, "nothing moved");
    }

    /// A rotation to the key the files are under is refused (it said every file was "now under the new key"
    /// while the old key, perhaps leaked, still opened everything), as is the same key written again with a
    /// newline; a key file that holds no key says so in words.
    #[test]
    fn a_rotation_to_the_same_key_is_refused_and_a_key_file_without_a_key_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        seed_with_key(&data, 100, &k);
        let again = dir.path().join("again");
        fs::write(&again, format!("{}\n", fs::read_to_string(&k).unwrap().trim())).unwrap();
        fs::set_permissions(&again, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let before = snapshot(&data);
        let out = run_splitstore([
            "rekey",
            "--data-dir",
            d,
            "--key-file",
            &k,
            "--new-key-file",
            utf8(&again),
        ]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert_eq!(
            texts(&out).1,
            format!(
                "splitstore rekey: {} holds the same key as --key-file: a rotation to it would change nothing. What \
                 to do: give the file of a new key as --new-key-file (64 hexadecimal characters from a random \
                 source, chmod 600); nothing was changed\n",
                again.display()
            )
        );
        assert_eq!(snapshot(&data), before);

        let empty = dir.path().join("empty");
        fs::write(&empty, "").unwrap();
        fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let out = with_key(&["report", "--data-dir", d], utf8(&empty));
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            texts(&out).1.starts_with(&format!(
                "splitstore report: the key file {} does not hold a key: a key is 64 hexadecimal characters",
                empty.display()
            )),
            "{out:?}"
        );
    }

    /// A config.db in the clear beside an encrypted activity.db (a copy put there): the remedy says to
    /// encrypt it with the other file's key, by a command that runs as written. Before, it offered to open it
    /// without a key (the server then wrote it in the clear and failed on activity.db) or a rekey given the key
    /// as the old one too, which refused.
    #[test]
    fn a_file_in_the_clear_beside_an_encrypted_one_is_told_to_be_encrypted_by_a_command_that_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (data, plain) = (dir.path().join("data"), dir.path().join("plain"));
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        let daemon = with_key(&["daemon", "--events", "100", "--data-dir", d], &k);
        assert!(daemon.status.success(), "{daemon:?}");
        seed_data_dir(&plain, 10);
        fs::copy(plain.join("config.db"), data.join("config.db")).unwrap();

        let out = with_key(&["server", "--seconds", "0.2", "--data-dir", d], &k);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let remedy = format!(
            "What to do: {d}/activity.db beside it is encrypted, and a data directory is encrypted as a whole: \
             encrypt this one with that key: stop every owner of a database in {d} (the command takes all their \
             locks) and run `splitstore rekey --data-dir {d} --new-key-file FILE` (FILE: that key's file; the \
             encrypted file is left as it is)\n"
        );
        assert!(stderr.ends_with(&remedy), "{stderr}");
        let rekey = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
        assert!(rekey.status.success(), "{rekey:?}");
        let server = with_key(&["server", "--seconds", "0.2", "--data-dir", d], &k);
        assert!(server.status.success(), "{server:?}");
        assert!(!fs::read(data.join("config.db")).unwrap().starts_with(SQLITE_HEADER));
    }

    /// A backup restored with the wrong `--backup-key-file`, or as in the clear when it is encrypted: said of
    /// that option. Before, the remedy asked for `--key-file` and a repair of the backup's folder.
    #[test]
    fn a_wrong_backup_key_is_said_of_the_option_that_gave_it() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        let (k1, k2) = (key_file(&dir.path().join("k1")), key_file(&dir.path().join("k2")));
        seed_with_key(&src, 50, &k1);
        seed_with_key(&dst, 10, &k2);
        let bk = dir.path().join("bk");
        let out = with_key(&["backup", "--data-dir", utf8(&src), "--to", utf8(&bk)], &k1);
        let backup = backup_paths(&out)
            .into_iter()
            .find(|p| utf8(p).contains("/activity-"))
            .unwrap();
        let before = snapshot(&dst);
        for (option, given) in [
            (
                vec!["--backup-key-file", k2.as_str()],
                format!("with the key of --backup-key-file {k2}"),
            ),
            (
                vec!["--backup-in-clear"],
                "in the clear (--backup-in-clear)".to_string(),
            ),
        ] {
            let mut args = vec!["restore", "--data-dir", utf8(&dst), "--from", utf8(&backup)];
            args.extend(option);
            let out = with_key(&args, &k2);
            let (_, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "splitstore restore: {} cannot be read {given}: ",
                    backup.display()
                )) && stderr.ends_with(
                    "What to do: give the key it was taken with as --backup-key-file (or --backup-in-clear for \
                         a backup in the clear); nothing was changed\n"
                ),
                "{stderr}"
            );
            assert_eq!(snapshot(&dst), before);
        }
    }

    /// A directory copied without its private folder (no record of its files' key), whose activity.db has a
    /// damaged first page: the key opens config.db beside it, so that is damage, which repair mends from the
    /// backup. Before, it was `key_rejected` (doctor and repair), and repair moved nothing. Another key is
    /// still `key_rejected`.
    #[test]
    fn without_the_records_a_damaged_first_page_is_damage_when_the_key_opens_the_other_database() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        let k = key_file(&dir.path().join("key"));
        seed_with_key(&data, 100, &k);
        assert!(with_key(&["backup", "--data-dir", d], &k).status.success());
        fs::remove_dir_all(data.join(".private")).unwrap();
        let db = data.join("activity.db");
        let mut bytes = fs::read(&db).unwrap();
        bytes[..200].fill(0x41);
        fs::write(&db, &bytes).unwrap();

        let other = key_file(&dir.path().join("other"));
        let doctor = with_key(&["doctor", "--data-dir", d], &other);
        assert!(texts(&doctor).0.contains("activity.db [key_rejected]"), "{doctor:?}");
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        assert!(texts(&doctor).0.contains("activity.db [not_a_database]"), "{doctor:?}");
        let repair = with_key(&["repair", "--data-dir", d], &k);
        let (stdout, stderr) = texts(&repair);
        assert!(repair.status.success(), "{stderr}");
        assert!(stdout.starts_with("activity.db: restored from "), "{stdout}");
        assert_eq!(
            count(&data, &key_of(&k), &activity_store::SCHEMA, "activity_events"),
            100
        );
    }

    /// A rotation meets what every open refuses: the `-wal` a crash left beside a file put back by hand, or
    /// beside none. It used to call the sound file put back "not a SQLite database" (with a remedy that
    /// restores a backup), or rotate config.db alone when activity.db was removed.
    #[test]
    fn a_rotation_refuses_the_wal_a_crash_left_beside_a_file_put_back_or_removed() {
        use store_core::files::{FileStamp, with_suffix};
        for removed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            seed_data_dir(&data, 300);
            let d = utf8(&data);
            let k = key_file(&dir.path().join("key"));
            let db = data.join("activity.db");
            let wal = with_suffix(&db, "-wal");
            let copy = dir.path().join("copy.db");
            fs::copy(&db, &copy).unwrap();
            let mut daemon = spawn_splitstore(["daemon", "--data-dir", d, "--batch", "100"]);
            wait_until(
                Duration::from_secs(60),
                "no commit in the -wal, or no record of it",
                || {
                    FileStamp::at(&wal).is_ok_and(|stamp| {
                        fs::metadata(&wal).unwrap().len() > 32
                            && store_core::records::wal_pair_path(&db, &stamp).exists()
                    })
                },
            );
            kill9(&mut daemon);
            if removed {
                fs::remove_file(&db).unwrap();
            } else {
                fs::rename(&copy, &db).unwrap();
            }
            let before = snapshot(&data);
            let out = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
            assert_eq!(out.status.code(), Some(2), "{out:?}");
            let said = match removed {
                true => format!("splitstore rekey: {d}/activity.db is gone, but {d}/activity.db-wal ("),
                false => format!("splitstore rekey: {d}/activity.db-wal ("),
            };
            assert!(failure(&out).starts_with(&said), "{out:?}");
            assert!(failure(&out).contains("run `splitstore repair --data-dir"), "{out:?}");
            assert_eq!(snapshot(&data), before, "nothing moved or changed");
            assert!(fs::read(data.join("config.db")).unwrap().starts_with(SQLITE_HEADER));

            // Its remedy (a file removed on purpose, with no backup: started empty as asked), then the rotation.
            let repair = match removed {
                true => run_splitstore(["repair", "--data-dir", d, "--allow-empty"]),
                false => run_splitstore(["repair", "--data-dir", d]),
            };
            assert!(repair.status.success(), "{repair:?}");
            let rekey = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
            assert!(rekey.status.success(), "{rekey:?}");
            assert!(!fs::read(data.join("config.db")).unwrap().starts_with(SQLITE_HEADER));
            let daemon = with_key(&["daemon", "--events", "10", "--data-dir", d], &k);
            assert!(daemon.status.success(), "{daemon:?}");
            let doctor = with_key(&["doctor", "--data-dir", d], &k);
            assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
        }
    }

    #[test]
    fn the_demo_runs_encrypted_with_a_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("demo");
        let out = output_within(
            splitstore().args(["demo", "--seconds", "1.5", "--data-dir", utf8(&data)]),
            Duration::from_secs(120),
        );
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stdout} {stderr}");
        assert!(stdout.contains("encrypted at rest"), "{stdout}");
        assert!(stdout.contains("lost=0"), "{stdout}");
        for db in ["activity.db", "config.db"] {
            assert!(!fs::read(data.join(db)).unwrap().starts_with(SQLITE_HEADER), "{db}");
        }
        for backup in all_files(&data.join("backups")) {
            assert!(
                !fs::read(&backup).unwrap().starts_with(SQLITE_HEADER),
                "{}",
                backup.display()
            );
        }
        let doctor = with_key(&["doctor", "--data-dir", utf8(&data)], utf8(&data.join("demo.key")));
        assert_eq!(doctor.status.code(), Some(0), "{doctor:?}");
    }

    /// Encrypting a plaintext directory encrypts its files' backups with it, one by one; a backup that
    /// cannot be re-keyed (damaged) and another directory's backup in the folder stay in the clear, named
    /// with the copies a restore moved aside.
    #[test]
    fn encrypting_a_plaintext_data_directory_encrypts_its_backups_and_names_what_it_leaves_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = utf8(&data);
        // activity.db at the schema before this build's: the daemon's open migrates it and takes a
        // pre-migration backup, which the encryption exports at that version.
        let earlier = WriterOptions {
            open: OpenOptions {
                target_version: Some(activity_store::SCHEMA.end_version() - 1),
                ..OpenOptions::default()
            },
            ..WriterOptions::default()
        };
        drop(ActivityWriter::open_with(&activity_store::SCHEMA.path_in(&data), &earlier).unwrap());
        seed_data_dir(&data, 100);
        assert!(run_splitstore(["backup", "--data-dir", d]).status.success());
        assert!(run_splitstore(["backup", "--data-dir", d]).status.success());
        let mut backups: Vec<String> = all_files(&data.join("backups"))
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(backups.len(), 5, "two of each file, one pre-migration: {backups:?}");
        // The files a restore moves aside are copies of the data too.
        assert!(
            run_splitstore(["restore", "--data-dir", d, "--from", &format!("{d}/backups")])
                .status
                .success()
        );
        let mut replaced: Vec<String> = all_files(&data)
            .iter()
            .map(|p| p.display().to_string())
            .filter(|p| p.contains(".replaced-"))
            .collect();
        replaced.sort();
        assert!(replaced.len() >= 2, "{replaced:?}");

        // Another data directory's backup, taken into this folder, and one of this directory's, damaged.
        let other = dir.path().join("other");
        seed_data_dir(&other, 10);
        let took = run_splitstore(["backup", "--data-dir", utf8(&other), "--to", &format!("{d}/backups")]);
        let (took, _) = texts(&took);
        let others_backups: Vec<String> = took
            .lines()
            .filter_map(|l| l.strip_prefix("backup: "))
            .map(String::from)
            .collect();
        assert_eq!(others_backups.len(), 2, "{took}");
        let damaged = backups.iter().find(|b| b.contains("/activity-")).unwrap().clone();
        let mut bytes = fs::read(&damaged).unwrap();
        // The header of a b-tree page in the middle: its type no longer reads.
        let middle = (bytes.len() / 4096 / 2) * 4096;
        for b in &mut bytes[middle..middle + 8] {
            *b ^= 0xff;
        }
        fs::write(&damaged, &bytes).unwrap();

        let k = key_file(&dir.path().join("key"));
        let out = run_splitstore(["rekey", "--data-dir", d, "--new-key-file", &k]);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.contains(" (in the clear: anyone who reads the disk reads them): once the new files work"),
            "{stdout}"
        );
        let sorted = |list: &str| {
            let mut named: Vec<String> = list.split(", ").map(String::from).collect();
            named.sort();
            named
        };
        let encrypted = stdout
            .lines()
            .find_map(|l| l.strip_prefix("4 backup(s) of the files, now under the new key too: "))
            .unwrap_or_else(|| panic!("{stdout}"));
        backups.retain(|b| *b != damaged);
        backups.sort();
        assert_eq!(sorted(encrypted), backups);
        let key = key_of(&k);
        for backup in &backups {
            assert!(!fs::read(backup).unwrap().starts_with(SQLITE_HEADER), "{backup}");
            let path = Path::new(backup);
            let verified = store_core::restore::verify_backup(path, schema_of(path), Some(&key)).unwrap();
            if backup.contains("/pre-migration/") {
                assert_eq!(verified.version(), activity_store::SCHEMA.end_version() - 1, "{backup}");
            }
        }
        assert!(
            stdout.contains(&format!(
                "\nnot re-keyed, left in the clear: {damaged} is damaged: integrity_check found: the check stopped: \
                 database disk image is malformed\n"
            )),
            "{stdout}"
        );
        assert!(!stdout.contains("What to do"), "{stdout}");
        assert!(
            !all_files(&data.join("backups"))
                .iter()
                .any(|f| f.to_string_lossy().ends_with(".partial")),
            "the failed copy is removed"
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with("3 existing backup(s) are in the clear and hold the data unencrypted ("))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            line.ends_with(&format!(
                "): take new backups now (`splitstore backup --data-dir {d} --key-file NEW`), then delete them"
            )),
            "{line}"
        );
        let named = |line: &str| sorted(line.split_once(" (").unwrap().1.split_once("): ").unwrap().0);
        let mut in_the_clear = others_backups;
        in_the_clear.push(damaged.clone());
        in_the_clear.sort();
        assert_eq!(named(line), in_the_clear);
        for backup in &in_the_clear {
            assert!(fs::read(backup).unwrap().starts_with(SQLITE_HEADER), "{backup}");
        }
        let others = stdout
            .lines()
            .find(|l| l.contains(" other file(s) outside the databases hold data in the clear too ("))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(named(others), replaced, "{others}");
        assert!(
            others.ends_with(&format!(
                "`splitstore cleanup --data-dir {d} --older-than 0` removes them"
            )),
            "{others}"
        );

        // doctor says the same of each left in the clear, for as long as they are there: a problem (exit 1), no
        // longer only listed as not used under "healthy" (exit 0), with the way to end it.
        let doctor = with_key(&["doctor", "--data-dir", d], &k);
        let (doctor_out, _) = texts(&doctor);
        assert_eq!(doctor.status.code(), Some(1), "{doctor_out}");
        for backup in &in_the_clear {
            for said in [
                format!("[backup_in_the_clear]: {backup} is a backup in the clear beside {d}/"),
                ", which is encrypted: anyone who can read the folder reads the data it holds".to_string(),
                format!("fix: delete it (`rm {backup}`): {d}/backups/"),
            ] {
                assert!(doctor_out.contains(&said), "{said:?} not in {doctor_out}");
            }
        }
        for backup in &backups {
            assert!(
                !doctor_out.contains(&format!("{backup} is in the clear")),
                "{doctor_out}"
            );
        }
        for backup in &in_the_clear {
            assert!(
                doctor_out.contains(&format!(
                    "{backup} is in the clear (not_encrypted): it holds the data unencrypted beside a database \
                     encrypted with the key given; once a backup under the key exists, delete it"
                )),
                "{doctor_out}"
            );
        }
    }

    /// A data directory in `dir` encrypted under a key, its files seeded and backed up, with a second key to
    /// rotate to: the data directory, the two key files, and the backup's output.
    fn encrypted_with_a_backup(dir: &Path) -> (PathBuf, String, String, std::process::Output) {
        let data = dir.join("data");
        let (old, new) = (key_file(&dir.join("old.key")), key_file(&dir.join("new.key")));
        seed_with_key(&data, 10, &old);
        let backup = with_key(&["backup", "--data-dir", utf8(&data)], &old);
        assert!(backup.status.success(), "{backup:?}");
        (data, old, new, backup)
    }

    /// A backup its user marked immutable to keep it (`chattr +i`) cannot be re-keyed: the rotation said
    /// "this user may not rename .../.activity-...partial", a file the user never saw (and, removed, cannot
    /// see). It names the backup now, and the rest rotates; the backup stays under the old key, said so.
    #[test]
    fn a_rotation_names_the_backup_an_attribute_keeps_under_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let (data, old, new, backup) = encrypted_with_a_backup(dir.path());
        let d = utf8(&data);
        let pinned = backup_paths(&backup)[0].clone();
        if !set_attribute(&pinned, FS_IMMUTABLE_FL, true) {
            eprintln!("immutable cannot be set here: nothing to check");
            return;
        }
        let _cleared = Cleared(&pinned, FS_IMMUTABLE_FL);
        let out = run_splitstore(["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new]);
        assert!(out.status.success(), "{out:?}");
        let stdout = texts(&out).0;
        assert!(
            stdout.contains(&format!(
                "\nnot re-keyed, left under the old key: this user may not replace {}\n",
                pinned.display()
            )),
            "{stdout}"
        );
        assert!(!stdout.contains(".partial"), "{stdout}");
        let still_old = store_core::restore::verify_backup(&pinned, schema_of(&pinned), Some(&key_of(&old)));
        assert!(still_old.is_ok(), "{still_old:?}");
    }

    /// A backup folder made append-only (`chattr +a`) let a rotation re-key both databases, then each backup
    /// into a copy it could neither rename over the backup nor remove: every backup left under the old key,
    /// a copy beside each. The rotation is refused now before any copy is made, and nothing changes key.
    #[test]
    fn a_rotation_with_an_append_only_backup_folder_is_refused_before_any_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (data, old, new, _) = encrypted_with_a_backup(dir.path());
        let d = utf8(&data);
        let backups = data.join("backups");
        if !set_attribute(&backups, FS_APPEND_FL, true) {
            eprintln!("append-only cannot be set here: nothing to check");
            return;
        }
        let cleared = Cleared(&backups, FS_APPEND_FL);
        let before = (listing(&data), listing(&backups));
        let out = run_splitstore(["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let b = backups.display();
        assert_eq!(
            texts(&out).1.trim_end(),
            format!(
                "splitstore rekey: this user may not rename or remove files in {b}. What to do: {b} is append-only \
                 (see `lsattr -d {b}`), which refuses every writer, root included: `sudo chattr -a {b}`, where it \
                 was not made so on purpose"
            )
        );
        assert_eq!((listing(&data), listing(&backups)), before, "no copy made");
        let daemon = with_key(&["daemon", "--data-dir", d, "--events", "5"], &old);
        assert!(daemon.status.success(), "still under the old key: {daemon:?}");
        drop(cleared);
        let out = run_splitstore(["rekey", "--data-dir", d, "--key-file", &old, "--new-key-file", &new]);
        assert!(out.status.success(), "cleared: {out:?}");
    }
}
