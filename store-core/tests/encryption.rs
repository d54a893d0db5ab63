//! Encryption at rest on real files: every connection keyed, nothing in the clear on disk, a wrong or missing
//! key told from damage. The tests that need SQLCipher run with `--features encryption`; the ones that check
//! a build without it refuses a key run without.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use store_core::{ErrorKind, Key, OpenOptions, OwnerConnection};

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

fn keyed(key: &Key) -> OpenOptions {
    OpenOptions {
        key: Some(key.clone()),
        ..OpenOptions::default()
    }
}

#[test]
fn key_files_must_be_private_and_their_content_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    let k = Key::generate().unwrap();
    k.write_file(&file).unwrap();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(Key::read_file(&file).unwrap().to_hex(), k.to_hex());

    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Key::read_file(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.contains("mode 0644") && text.contains("chmod 600"), "{text}");
    assert!(!text.contains(k.to_hex().as_str()), "{text}");

    let bad = dir.path().join("bad");
    fs::write(&bad, "not-a-key-but-a-secret-password\n").unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).unwrap();
    let err = Key::read_file(&bad).unwrap_err().to_string();
    assert!(err.contains("64 hexadecimal characters"), "{err}");
    assert!(!err.contains("secret-password"), "{err}");
    assert_eq!(format!("{:?}", keyed(&k)).matches("Key(<redacted>)").count(), 1);
}

#[cfg(not(feature = "encryption"))]
#[test]
fn a_build_without_encryption_refuses_a_key_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&key(1))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EncryptionUnavailable, "{err}");
    assert!(err.to_string().contains("`encryption` feature"), "{err}");
    assert_eq!(
        fs::metadata(&db).map(|m| m.len()).unwrap_or(0),
        0,
        "nothing written in the clear"
    );
    let reader = store_core::ReadPool::with_key(&db, &ITEMS, Some(key(1)));
    assert_eq!(reader.check().unwrap_err().kind(), ErrorKind::EncryptionUnavailable);
}

#[cfg(feature = "encryption")]
mod sqlcipher {
    use super::*;
    use std::path::Path;
    use store_core::backup::{self, BackupClass};
    use store_core::diagnostics::{CheckLevel, InspectOptions, inspect};
    use store_core::restore::verify_backup;
    use store_core::{Error, ReadPool};

    const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

    /// Every file under `dir`, recursively.
    fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    const SECRET: &str = "window title: quarterly-salary-review.xlsx";

    fn write_secret(owner: &mut OwnerConnection, n: usize) {
        owner
            .write(|tx| {
                for i in 0..n {
                    tx.execute("INSERT INTO items (name) VALUES (?1)", [format!("{SECRET} #{i}")])?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn nothing_reaches_the_disk_in_the_clear_and_every_connection_is_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let k = key(7);
        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap();
        write_secret(&mut owner, 200);
        // Readers (pooled, the change watcher, the check), a backup and a check on a snapshot, while the
        // owner still holds its WAL.
        let readers = ReadPool::with_key(&db, &ITEMS, Some(k.clone()));
        let n: i64 = readers
            .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 200);
        readers.change_token().unwrap();
        let backup = owner.backup_to(&dir.path().join("backups"), 5).unwrap();
        let health = inspect(
            &db,
            &ITEMS,
            &InspectOptions {
                check: CheckLevel::Full,
                key: Some(k.clone()),
                ..InspectOptions::default()
            },
        );
        assert!(health.is_healthy(), "{:?}", health.problems);
        assert!(health.check.as_ref().unwrap().on_snapshot);
        assert_eq!(health.newest_backup.as_ref().map(|b| &b.path), Some(&backup));
        // The lineage reads under the key, in the file and in its backup.
        assert!(health.lineage.is_some());
        assert_eq!(
            health.newest_backup.as_ref().and_then(|b| b.lineage.as_ref()),
            health.lineage.as_ref()
        );
        assert!(
            fs::metadata(db.with_file_name("activity.db-wal")).unwrap().len() > 0,
            "the WAL is in use"
        );

        for file in all_files(dir.path()) {
            let bytes = fs::read(&file).unwrap();
            assert!(
                !contains(&bytes, b"quarterly-salary-review"),
                "{} holds the secret",
                file.display()
            );
            if file == db || file == backup {
                assert!(
                    !bytes.starts_with(SQLITE_HEADER),
                    "{} is plaintext SQLite",
                    file.display()
                );
            }
        }
        assert_eq!(verify_backup(&backup, &ITEMS, Some(&k)).unwrap().version(), 3);
        drop(owner);
        let bytes = fs::read(&db).unwrap();
        assert!(!contains(&bytes, b"quarterly-salary-review") && !bytes.starts_with(SQLITE_HEADER));
    }

    #[test]
    fn a_wrong_or_missing_key_is_named_never_damage_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let right = key(1);
        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&right)).unwrap();
        write_secret(&mut owner, 3);
        let backup = owner.backup_to(&dir.path().join("backups"), 5).unwrap();
        drop(owner);
        let before = fs::read(&db).unwrap();

        let wrong = key(2);
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&wrong)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRejected, "{err}");
        assert!(matches!(err, Error::KeyRejected { .. }));
        let text = err.to_string();
        assert!(
            text.contains("the key was rejected") && text.contains("--key-file"),
            "{text}"
        );
        assert!(!err.is_retryable());
        assert_eq!(fs::read(&db).unwrap(), before, "a refused open changes nothing");

        let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRequired, "{err}");
        assert!(
            err.to_string().contains("encrypted and was opened without its key"),
            "{err}"
        );

        for (k, kind) in [
            (Some(wrong.clone()), ErrorKind::KeyRejected),
            (None, ErrorKind::KeyRequired),
        ] {
            let readers = ReadPool::with_key(&db, &ITEMS, k.clone());
            assert_eq!(readers.check().unwrap_err().kind(), kind);
            assert_eq!(readers.change_token().unwrap_err().kind(), kind);
            let opts = InspectOptions {
                key: k.clone(),
                ..InspectOptions::default()
            };
            let health = inspect(&db, &ITEMS, &opts);
            let codes: Vec<ErrorKind> = health.problems.iter().map(|p| p.code).collect();
            assert!(codes.contains(&kind), "{codes:?}");
            assert!(!codes.contains(&ErrorKind::Corrupt) && !codes.contains(&ErrorKind::NotADatabase));
        }
        assert_eq!(
            verify_backup(&backup, &ITEMS, Some(&wrong)).unwrap_err().kind(),
            ErrorKind::KeyRejected
        );
        let listing = backup::list_backups(&dir.path().join("backups"), &ITEMS, BackupClass::Manual, Some(&wrong));
        assert!(listing.backups.is_empty());
        assert!(
            listing.ignored[0].reason.contains("key_rejected"),
            "{:?}",
            listing.ignored
        );
        assert_eq!(fs::read(&db).unwrap(), before);

        // The right key still opens it.
        let owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&right)).unwrap();
        let n: i64 = owner
            .read(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_new_file_beside_an_encrypted_one_is_not_created_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(7);
        drop(OwnerConnection::open_with(&dir.path().join("activity.db"), &ITEMS, &keyed(&k)).unwrap());
        let config = dir.path().join("config.db");
        let quoted = store_core::files::shell_quoted(dir.path());
        // The other owner started without the key: refused, nothing created, and the command it names
        // carries the key.
        let err = OwnerConnection::open(&config, &OTHER).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRequired, "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{} does not exist and was to be created without a key, in the clear, while {} beside it is \
                 encrypted. What to do: start its owner with the data directory's key (`splitstore server \
                 --data-dir {quoted} --key-file FILE`); nothing was created",
                config.display(),
                dir.path().join("activity.db").display()
            )
        );
        assert!(!config.exists(), "nothing created");
        // The failure is recorded for a UI, as every failed open is.
        let record = store_core::records::last_failure(&config).expect("failure record");
        assert_eq!(record.banner.kind, ErrorKind::KeyRequired);
        // An empty file left by a cut-short create is not a way around it either.
        fs::File::create(&config).unwrap();
        let err = OwnerConnection::open(&config, &OTHER).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRequired, "{err}");
        assert_eq!(fs::metadata(&config).unwrap().len(), 0);
        fs::remove_file(&config).unwrap();
        // With the key it is created, encrypted.
        drop(OwnerConnection::open_with(&config, &OTHER, &keyed(&k)).unwrap());
        let head = fs::read(&config).unwrap();
        assert!(!head.starts_with(SQLITE_HEADER), "config.db is encrypted");
        // A plaintext data directory is unaffected: the check only looks at recorded encryption.
        let plain = tempfile::tempdir().unwrap();
        drop(OwnerConnection::open(&plain.path().join("activity.db"), &ITEMS).unwrap());
        drop(OwnerConnection::open(&plain.path().join("config.db"), &OTHER).unwrap());
    }

    #[test]
    fn a_plaintext_database_opened_with_a_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        drop(OwnerConnection::open(&db, &ITEMS).unwrap());
        assert!(fs::read(&db).unwrap().starts_with(SQLITE_HEADER));
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&key(3))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotEncrypted, "{err}");
        assert!(err.to_string().contains("rekey"), "{err}");
        let readers = ReadPool::with_key(&db, &ITEMS, Some(key(3)));
        assert_eq!(readers.check().unwrap_err().kind(), ErrorKind::NotEncrypted);
    }

    /// SQLCipher fails every read of a connection after one page fails its check ("out of memory"): a
    /// reader's pool closes that connection, and the owner's direct statements and writes after a failed
    /// write run on a new connection with the same settings.
    #[test]
    fn after_damage_under_a_key_readers_and_the_owner_go_on_on_new_connections() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let k = key(9);
        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap();
        write_secret(&mut owner, 3000);
        drop(owner);
        let mut bytes = fs::read(&db).unwrap();
        let middle = (bytes.len() / 4096 / 2) * 4096;
        for b in &mut bytes[middle + 100..middle + 140] {
            *b ^= 0xff;
        }
        fs::write(&db, &bytes).unwrap();

        // A reader meets it too, and its pool goes on reading what is not damaged.
        let pool = ReadPool::with_key_and_size(&db, &ITEMS, Some(k.clone()), 1);
        let read_all =
            |c: &rusqlite::Connection| c.query_row("SELECT sum(length(name)) FROM items", [], |r| r.get::<_, i64>(0));
        assert_eq!(pool.read(read_all).unwrap_err().kind(), ErrorKind::Corrupt);
        let first = |c: &rusqlite::Connection| {
            c.query_row("SELECT name FROM items WHERE id = 1", [], |r| r.get::<_, String>(0))
        };
        assert_eq!(pool.read(first).unwrap(), format!("{SECRET} #0"));

        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap();
        owner.configure("cache_size", "-4096").unwrap();
        let scan = |tx: &rusqlite::Transaction<'_>| {
            tx.query_row("SELECT sum(length(name)) FROM items", [], |r| r.get::<_, i64>(0))
        };
        assert_eq!(owner.write(scan).unwrap_err().kind(), ErrorKind::Corrupt);
        // Direct statements right after, then writes: all on the new connection.
        owner
            .conn()
            .execute("INSERT INTO items (name) VALUES ('after the damage')", [])
            .unwrap();
        write_secret(&mut owner, 10);
        let cache: i64 = owner.conn().query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
        assert_eq!(cache, -4096, "the store's settings are made again");
        let posture: (String, i64, i64) = owner
            .conn()
            .query_row(
                "SELECT (SELECT journal_mode FROM pragma_journal_mode), (SELECT synchronous FROM pragma_synchronous), \
                 (SELECT foreign_keys FROM pragma_foreign_keys)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(posture, ("wal".to_string(), 1, 1));
        drop(owner);
        let conn = store_core::read_pool::open_read_only(&db, &ITEMS, Some(&k)).unwrap();
        let after: i64 = conn
            .query_row("SELECT count(*) FROM items WHERE id > 3000", [], |r| r.get(0))
            .unwrap();
        assert_eq!(after, 11, "every row written after the damage is in the file");
    }

    #[test]
    fn a_file_put_in_place_under_another_key_is_never_taken_for_damage_before_its_first_open() {
        use store_core::OwnerLock;
        use store_core::restore::{Placement, RestoreHook, restore_all};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let (a, b) = (key(0xa), key(0xb));
        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&a)).unwrap();
        write_secret(&mut owner, 5);
        let backup = owner.backup_to(&dir.path().join("backups"), 5).unwrap();
        drop(owner);
        // The data directory moves on to key B (as after a rotation); the backup stays under key A.
        store_core::files::move_aside(&db, "old").unwrap();
        let anew = OpenOptions {
            start_empty: true,
            ..keyed(&b)
        };
        drop(OwnerConnection::open_with(&db, &ITEMS, &anew).unwrap());

        // A restore of the key-A backup killed right after its commit, before the first open under key A.
        let hook: RestoreHook = std::sync::Arc::new(|step: &str| {
            if step == "committed" {
                Err("killed".into())
            } else {
                Ok(())
            }
        });
        let placement = Placement {
            schema: &ITEMS,
            lock: OwnerLock::acquire(&db).unwrap(),
            backup: verify_backup(&backup, &ITEMS, Some(&a)).unwrap(),
            id_floors: Vec::new(),
            moves_recorded: Vec::new(),
        };
        restore_all(vec![placement], "replaced", Some(&hook), Some(&a)).unwrap_err();
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&b)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRejected, "never damage: {err}");
        let err = OwnerConnection::open(&db, &ITEMS).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRequired, "{err}");
        drop(OwnerConnection::open_with(&db, &ITEMS, &keyed(&a)).unwrap());
        // Its key is recorded again: a failure under it would be damage, under another a wrong key.
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&b)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRejected, "{err}");
    }

    #[test]
    fn damage_under_the_right_key_is_still_damage() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("activity.db");
        let k = key(9);
        let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap();
        write_secret(&mut owner, 50);
        drop(owner);
        // Page 1 overwritten: SQLCipher cannot tell this from a wrong key, the recorded key check can.
        let mut bytes = fs::read(&db).unwrap();
        for b in &mut bytes[100..400] {
            *b ^= 0x5a;
        }
        fs::write(&db, &bytes).unwrap();
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
        let err = OwnerConnection::open_with(&db, &ITEMS, &keyed(&key(8))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyRejected, "{err}");
    }
}

#[cfg(feature = "encryption")]
#[test]
fn a_damaged_page_under_the_right_key_is_reported_as_damage() {
    use store_core::diagnostics::{InspectOptions, inspect};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("activity.db");
    let k = key(4);
    let mut owner = OwnerConnection::open_with(&db, &ITEMS, &keyed(&k)).unwrap();
    owner
        .write(|tx| {
            for i in 0..3000 {
                tx.execute(
                    "INSERT INTO items (name) VALUES (?1)",
                    [format!("item number {i} with some text")],
                )?;
            }
            Ok(())
        })
        .unwrap();
    drop(owner);
    let mut bytes = fs::read(&db).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 10);
    // A page in the middle of the items table.
    let at = (pages / 2) * 4096 + 200;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0xff;
    }
    fs::write(&db, &bytes).unwrap();
    let opts = InspectOptions {
        key: Some(k.clone()),
        ..InspectOptions::default()
    };
    let health = inspect(&db, &ITEMS, &opts);
    let codes: Vec<ErrorKind> = health.problems.iter().map(|p| p.code).collect();
    assert!(codes.contains(&ErrorKind::Corrupt), "{:?}", health.problems);
    // The damaged page, named by SQLCipher's page check: not the pages quick_check could no longer read
    // once SQLCipher stopped reading.
    let damage = &health.problems[codes.iter().position(|c| *c == ErrorKind::Corrupt).unwrap()];
    // A backup of it says so too (the copy stops at the damaged page with a bare "SQL logic error").
    let conn = store_core::read_pool::open_read_only(&db, &ITEMS, Some(&k)).unwrap();
    let err = store_core::backup::backup_connection(
        &conn,
        &db,
        &ITEMS,
        &dir.path().join("backups"),
        store_core::backup::BackupClass::Manual,
        3,
        Some(&k),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("HMAC verification failed for page"), "{err}");
    // The command to run says the key is needed: copied without it, it would fail with key_required.
    let repair = format!(
        "`splitstore repair --data-dir {} --key-file FILE`",
        store_core::files::shell_quoted(dir.path())
    );
    assert!(err.remedy().contains(&repair), "{}", err.remedy());
    assert!(damage.remedy.contains(&repair), "{}", damage.remedy);
    assert!(
        damage
            .message
            .contains("SQLCipher's page check (cipher_integrity_check) found 1 page(s) that fail: "),
        "{damage:?}"
    );
    assert!(!damage.message.contains("unable to get the page"), "{damage:?}");
}
