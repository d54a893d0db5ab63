//! A split with a key (`--features encryption`): encrypted outputs (and a dry run's scratch outputs), the
//! plaintext legacy file unchanged, a rejects file with no settings value and no calendar feed URL, the
//! upgrade step and the binary's `--key-file`.
#![cfg(feature = "encryption")]

mod common;

use std::ffi::OsStr;
use std::fs;

use common::*;
use migrate_split::{Options, Outcome, UpgradeOptions, prepare, split};
use store_core::{ErrorKind, Key, OpenOptions, OwnerConnection};

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_split_with_a_key_writes_encrypted_outputs_from_a_plaintext_legacy_file() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
    let legacy_sha = sha256(&legacy);
    let data = dir.path().join("data");
    let key = Key::generate().unwrap();
    let options = Options {
        key: Some(key.clone()),
        ..Options::default()
    };
    let dry = split(
        &legacy,
        &data,
        &Options {
            dry_run: true,
            ..options.clone()
        },
    )
    .unwrap();
    assert_eq!(dry.outcome, Outcome::DryRun);
    let report = split(&legacy, &data, &options).unwrap();
    assert_eq!(report.outcome, Outcome::Split);
    assert_eq!(report.tables, dry.tables);
    assert_eq!(
        sha256(&legacy),
        legacy_sha,
        "the legacy file is unchanged (and stays plaintext)"
    );

    let (activity, config, rejects) = migrate_split::output_paths(&data);
    for db in [&activity, &config] {
        let bytes = fs::read(db).unwrap();
        assert!(!bytes.starts_with(SQLITE_HEADER), "{} is plaintext", db.display());
        for secret in summary.secret_values.iter().chain(&summary.secret_urls) {
            assert!(
                !contains(&bytes, secret),
                "{} holds a secret in the clear",
                db.display()
            );
        }
    }
    // The rejects file is plaintext, and holds no secret.
    let text = fs::read_to_string(&rejects).unwrap();
    for secret in summary.secret_values.iter().chain(&summary.secret_urls) {
        assert!(!text.contains(secret.as_str()), "a secret in the rejects file");
    }
    assert!(
        text.contains("\"url\":\"https://calendar.example.com/<redacted>\""),
        "{text}"
    );

    // The owners open the outputs with the key, and a wrong key is named as such.
    let open = |k: Option<Key>| {
        let opts = OpenOptions {
            key: k,
            ..OpenOptions::default()
        };
        OwnerConnection::open_with(&config, &config_store::SCHEMA, &opts)
    };
    let err = open(Some(Key::generate().unwrap())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyRejected, "{err}");
    assert_eq!(open(None).unwrap_err().kind(), ErrorKind::KeyRequired);
    let owner = open(Some(key.clone())).unwrap();
    let projects: i64 = owner
        .read(|c| c.query_row("SELECT count(*) FROM projects", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(projects as u64, summary.tables["projects"].counts.copied);
    drop(owner);

    // activity.db, whose indexes are kept through the load when encrypted (its memory is measured, in
    // SECURITY.md): the schema is a fresh store's, and every index agrees with its table.
    let keyed = OpenOptions {
        key: Some(key.clone()),
        ..OpenOptions::default()
    };
    let schema_and_check = |path: &std::path::Path| {
        let owner = OwnerConnection::open_with(path, &activity_store::SCHEMA, &keyed).unwrap();
        owner
            .read(|c| {
                let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                Ok((store_core::testing::schema_fingerprint(c)?, check))
            })
            .unwrap()
    };
    let (split_schema, check) = schema_and_check(&activity);
    assert_eq!(check, "ok");
    let fresh = tempfile::tempdir().unwrap();
    let (fresh_schema, _) = schema_and_check(&fresh.path().join("activity.db"));
    assert!(split_schema.lines().filter(|l| l.starts_with("index ")).count() >= 5);
    assert_eq!(split_schema, fresh_schema);

    // The upgrade step finds the split done, with or without the key.
    let upgrade = UpgradeOptions {
        legacy: Some(legacy.clone()),
        key: Some(key),
        ..UpgradeOptions::default()
    };
    assert!(matches!(
        prepare(&data, &upgrade).unwrap(),
        migrate_split::Upgrade::AlreadyDone
    ));
}

#[test]
fn the_binary_takes_a_key_file_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, summary) = legacy_file(dir.path(), &all_quirks(3));
    let data = dir.path().join("data");
    let key_file = dir.path().join("k");
    Key::generate().unwrap().write_file(&key_file).unwrap();
    let args: Vec<&OsStr> = vec![
        "--legacy".as_ref(),
        legacy.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--json".as_ref(),
        "--key-file".as_ref(),
        key_file.as_os_str(),
    ];
    let out = run_bin(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in summary.secret_values.iter().chain(&summary.secret_urls) {
        assert!(!printed.contains(secret.as_str()), "a secret was printed");
    }
    assert!(!fs::read(data.join("activity.db")).unwrap().starts_with(SQLITE_HEADER));

    // A key file others may read is refused before anything is done.
    let other = dir.path().join("other");
    let loose = dir.path().join("loose");
    Key::generate().unwrap().write_file(&loose).unwrap();
    fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = run_bin(&[
        "--legacy".as_ref(),
        legacy.as_os_str(),
        "--data-dir".as_ref(),
        other.as_os_str(),
        "--key-file".as_ref(),
        loose.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    assert!(!other.exists(), "nothing was created");
}

/// An encrypted data directory whose activity.db was removed, split again without the key: the split record of
/// config.db could not be read, so the removal read as other outputs, and `--force` (their remedy) moved the
/// encrypted config.db aside and wrote the legacy rows in the clear. Refused now for want of the key, before
/// anything is looked at; with it, the removal is told.
#[test]
fn an_encrypted_data_directory_is_not_split_again_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, _) = legacy_file(dir.path(), &migrate_split::fixtures::LegacySpec::small(3));
    let data = dir.path().join("data");
    let key = Key::generate().unwrap();
    let with_key = Options {
        key: Some(key.clone()),
        ..Options::default()
    };
    split(&legacy, &data, &with_key).unwrap();
    let (activity, config, _) = migrate_split::output_paths(&data);
    // The server opens config.db with the key, which records it as encrypted.
    let options = OpenOptions {
        key: Some(key.clone()),
        ..OpenOptions::default()
    };
    drop(OwnerConnection::open_with(&config, &config_store::SCHEMA, &options).unwrap());
    fs::remove_file(&activity).unwrap();
    let before = fs::read(&config).unwrap();

    for force in [false, true] {
        let err = split(
            &legacy,
            &data,
            &Options {
                force,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert_eq!((err.kind(), err.exit_code()), (ErrorKind::KeyRequired, 1), "{err}");
        assert_eq!(fs::read(&config).unwrap(), before, "config.db untouched");
        assert!(!activity.exists());
    }
    let err = split(&legacy, &data, &with_key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Removed, "{err}");
}
