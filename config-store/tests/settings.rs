//! Settings: typed round trips through JSON, legacy plain text, secret marks, and no value ever printed.

mod common;

use std::collections::HashMap;

use common::*;
use config_store::{ConfigReader, ConfigStore, Error, SettingInfo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sync {
    interval_minutes: u32,
    calendars: Vec<String>,
    proxy: Option<String>,
}

#[test]
fn values_round_trip_as_the_type_they_were_written_with() {
    let (_dir, path, mut store) = store();
    let sync = Sync {
        interval_minutes: 15,
        calendars: vec!["work".into(), "home \"quoted\" ✓".into()],
        proxy: None,
    };
    let json = serde_json::json!({"a": [1, 2, {"b": null}], "c": "d"});
    store.set_setting("theme", "dark").unwrap();
    store.set_setting("owned", &String::from("light")).unwrap();
    store.set_setting("retries", &3_i64).unwrap();
    store.set_setting("ratio", &0.25_f64).unwrap();
    store.set_setting("enabled", &true).unwrap();
    store.set_setting("sync", &sync).unwrap();
    store.set_setting("raw", &json).unwrap();
    store.set_setting("none", &Option::<String>::None).unwrap();

    let r = store.reader();
    assert_eq!(r.setting::<String>("theme").unwrap().as_deref(), Some("dark"));
    assert_eq!(r.setting::<String>("owned").unwrap().as_deref(), Some("light"));
    assert_eq!(r.setting::<i64>("retries").unwrap(), Some(3));
    assert_eq!(r.setting::<u8>("retries").unwrap(), Some(3));
    assert_eq!(r.setting::<f64>("ratio").unwrap(), Some(0.25));
    assert_eq!(r.setting::<bool>("enabled").unwrap(), Some(true));
    assert_eq!(r.setting::<Sync>("sync").unwrap(), Some(sync));
    assert_eq!(r.setting::<serde_json::Value>("raw").unwrap(), Some(json));
    assert_eq!(r.setting::<Option<String>>("none").unwrap(), Some(None));
    assert_eq!(r.setting::<String>("unset").unwrap(), None);

    assert_eq!(
        query_column::<String, Vec<_>>(
            &read_only(&path),
            "SELECT value FROM settings WHERE key IN ('theme', 'retries', 'enabled') ORDER BY key"
        ),
        ["true", "3", "\"dark\""],
        "stored as JSON text"
    );

    store.set_setting("theme", "light").unwrap();
    assert_eq!(
        store.reader().setting::<String>("theme").unwrap().as_deref(),
        Some("light")
    );
    assert!(store.delete_setting("theme").unwrap());
    assert!(!store.delete_setting("theme").unwrap());
    assert_eq!(store.reader().setting::<String>("theme").unwrap(), None);
}

#[test]
fn legacy_plain_text_values_are_readable() {
    let (_dir, path) = fresh();
    drop(ConfigStore::open(&path).unwrap());
    exec(
        &path,
        "INSERT INTO settings (key, value, updated_at_ms, secret) VALUES
            ('theme', 'dark', NULL, 0),
            ('port', '8080', NULL, 0),
            ('flag', 'true', NULL, 0),
            ('layout', '{\"columns\": 3}', NULL, 0),
            ('quoted', '\"already json\"', NULL, 0),
            ('nothing', NULL, NULL, 0),
            ('multiline', 'line one\nline \"two\"', NULL, 0);
         INSERT INTO settings (key, value) VALUES ('integer', 12), ('blob', x'68690a');",
    );
    let r = ConfigReader::open(&path);
    assert_eq!(r.setting::<String>("theme").unwrap().as_deref(), Some("dark"));
    assert_eq!(r.setting::<u16>("port").unwrap(), Some(8080));
    assert_eq!(
        r.setting::<String>("port").unwrap().as_deref(),
        Some("8080"),
        "text that looks like a number"
    );
    assert_eq!(r.setting::<bool>("flag").unwrap(), Some(true));
    assert_eq!(r.setting::<String>("flag").unwrap().as_deref(), Some("true"));
    assert_eq!(
        r.setting::<HashMap<String, u32>>("layout").unwrap(),
        Some(HashMap::from([("columns".to_string(), 3)]))
    );
    assert_eq!(r.setting::<String>("quoted").unwrap().as_deref(), Some("already json"));
    assert_eq!(
        r.setting::<String>("nothing").unwrap(),
        None,
        "SQL NULL reads as absent"
    );
    assert_eq!(
        r.setting::<String>("multiline").unwrap().as_deref(),
        Some("line one\nline \"two\"")
    );
    assert_eq!(r.setting::<i32>("integer").unwrap(), Some(12));
    assert_eq!(r.setting::<String>("blob").unwrap().as_deref(), Some("hi\n"));

    let keys = r.setting_keys().unwrap();
    assert_eq!(keys.len(), 9);
    assert!(keys.iter().all(|k| !k.secret && k.updated_at.is_none()));
    assert_eq!(keys[0].key, "blob", "sorted by key");
}

#[test]
fn secret_marks_are_set_kept_and_only_dropped_with_the_key() {
    let (_dir, _path, mut store) = store();
    store.set_setting("plain", "x").unwrap();
    store.set_secret_setting("api_token", "t1").unwrap();
    let info = |store: &ConfigStore, key: &str| store.reader().setting_info(key).unwrap().unwrap();
    assert!(!info(&store, "plain").secret);
    let first = info(&store, "api_token");
    assert!(first.secret);

    std::thread::sleep(std::time::Duration::from_millis(5));
    store.set_setting("api_token", "t2").unwrap();
    let second = info(&store, "api_token");
    assert!(second.secret, "a plain set keeps a secret secret");
    assert!(second.updated_at > first.updated_at, "{first:?} {second:?}");
    assert_eq!(
        store.reader().setting::<String>("api_token").unwrap().as_deref(),
        Some("t2")
    );

    store.set_secret_setting("plain", "y").unwrap();
    assert!(info(&store, "plain").secret, "a plain key can become secret");

    store.delete_setting("api_token").unwrap();
    store.set_setting("api_token", "t3").unwrap();
    assert!(!info(&store, "api_token").secret);

    let keys: Vec<(String, bool)> = store
        .reader()
        .setting_keys()
        .unwrap()
        .into_iter()
        .map(|i| (i.key, i.secret))
        .collect();
    assert_eq!(keys, [("api_token".to_string(), false), ("plain".to_string(), true)]);
    assert_eq!(store.reader().setting_info("missing").unwrap(), None);
}

#[test]
fn a_value_of_another_type_is_a_typed_error_naming_the_kinds() {
    let (_dir, path, mut store) = store();
    store.set_setting("theme", "dark").unwrap();
    let err = store.reader().setting::<u32>("theme").unwrap_err();
    assert!(
        matches!(&err, Error::SettingType { key, expected: "u32", found: "a JSON string", .. } if key == "theme"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: setting \"theme\" holds a JSON string, which does not decode as u32. What to do: read it as the type \
             it was written with (or as serde_json::Value to inspect it in code), or overwrite it; the stored value is \
             unchanged",
            path.display()
        )
    );
    assert_eq!(
        store.reader().setting::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );

    let err = store.set_setting("", "x").unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "setting key",
                ..
            }
        ),
        "{err:?}"
    );

    // serde_json cannot encode a map whose keys are not strings: nothing is written.
    let err = store.set_setting("map", &HashMap::from([((1, 2), "v")])).unwrap_err();
    assert!(matches!(err, Error::SettingEncode { .. }), "{err:?}");
    assert_eq!(store.reader().setting_info("map").unwrap(), None);
}

/// Before, serde_json wrote a NaN or an infinity as `null` and `set_setting` succeeded: the setting then no
/// longer read back as the type it was written with (`wrong_type`), and the value held before was gone.
#[test]
fn a_nan_or_an_infinity_is_refused_as_unencodable_before_anything_is_written() {
    #[derive(Serialize)]
    struct Limits {
        ratio: f64,
        steps: Vec<f32>,
    }
    let (_dir, path, mut store) = store();
    store.set_setting("ratio", &0.5_f64).unwrap();
    let before = store.reader().setting_info("ratio").unwrap();
    let refused: Vec<(&str, Error)> = vec![
        ("ratio", store.set_setting("ratio", &f64::NAN).unwrap_err()),
        ("ratio", store.set_secret_setting("ratio", &f64::INFINITY).unwrap_err()),
        ("new", store.set_setting("new", &f32::NEG_INFINITY).unwrap_err()),
        ("new", store.set_setting("new", &Some(f64::NAN)).unwrap_err()),
        ("new", store.set_setting("new", &[1.0, f64::NAN]).unwrap_err()),
        (
            "new",
            store
                .set_setting("new", &HashMap::from([("a", f64::INFINITY)]))
                .unwrap_err(),
        ),
        (
            "new",
            store
                .set_setting(
                    "new",
                    &Limits {
                        ratio: 1.0,
                        steps: vec![0.5, f32::NAN],
                    },
                )
                .unwrap_err(),
        ),
    ];
    for (key, err) in &refused {
        assert!(
            matches!(err, Error::SettingEncode { key: k, .. } if k == key),
            "{err:?}"
        );
        assert_eq!(err.kind(), config_store::ErrorKind::Unencodable);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: the value for setting {key:?}", path.display())),
            "{text}"
        );
        assert!(
            text.contains("JSON has no NaN or infinity); nothing was written"),
            "{text}"
        );
    }
    // Nothing was written: the old value and its mark are as they were, no new key exists.
    assert_eq!(store.reader().setting::<f64>("ratio").unwrap(), Some(0.5));
    assert_eq!(store.reader().setting_info("ratio").unwrap(), before);
    assert_eq!(store.reader().setting_info("new").unwrap(), None);
    // Finite extremes are still stored and read back.
    store.set_setting("max", &f64::MAX).unwrap();
    store.set_setting("tiny", &[f32::MIN_POSITIVE, -0.0]).unwrap();
    assert_eq!(store.reader().setting::<f64>("max").unwrap(), Some(f64::MAX));
    assert_eq!(
        store.reader().setting::<[f32; 2]>("tiny").unwrap(),
        Some([f32::MIN_POSITIVE, -0.0])
    );
}

/// The secrecy test: a known secret never appears in any Debug, Display or serialisation this crate offers
/// for settings, including errors about the secret value itself.
#[test]
fn a_secret_value_never_appears_in_debug_display_errors_or_serialisation() {
    const SECRET: &str = "sk-live-Zq8xSECRET7731";
    let (_dir, path, mut store) = store();
    store.set_secret_setting("api_token", SECRET).unwrap();
    store
        .set_secret_setting("credentials", &serde_json::json!({"user": "me", "password": SECRET}))
        .unwrap();
    // A legacy plain-text secret, and one a plain `set` wrote (secrecy must not depend on the mark).
    store.set_setting("unmarked", SECRET).unwrap();
    drop(store);
    exec(
        &path,
        &format!("INSERT INTO settings (key, value, secret) VALUES ('legacy_token', '{SECRET}', 1)"),
    );
    let store = ConfigStore::open(&path).unwrap();
    let reader = store.reader();

    let mut shown: Vec<String> = Vec::new();
    // Handles.
    shown.push(format!("{store:?}"));
    shown.push(format!("{reader:?}"));
    // What lists settings.
    let keys: Vec<SettingInfo> = reader.setting_keys().unwrap();
    assert_eq!(keys.len(), 4);
    shown.push(format!("{keys:?}"));
    shown.push(format!("{keys:#?}"));
    shown.push(serde_json::to_string(&keys).unwrap());
    for key in ["api_token", "credentials", "unmarked", "legacy_token"] {
        let info = reader.setting_info(key).unwrap().unwrap();
        shown.push(format!("{info:?}"));
        shown.push(serde_json::to_string(&info).unwrap());
    }
    // Errors about the secret values: wrong types at every level, where serde would quote the value.
    let errors: Vec<Error> = vec![
        reader.setting::<u64>("api_token").unwrap_err(),
        reader.setting::<bool>("legacy_token").unwrap_err(),
        reader.setting::<Vec<u8>>("unmarked").unwrap_err(),
        reader.setting::<HashMap<String, u8>>("credentials").unwrap_err(),
        reader.setting::<String>("credentials").unwrap_err(),
    ];
    for err in &errors {
        shown.push(format!("{err:?}"));
        shown.push(format!("{err:#?}"));
        shown.push(err.to_string());
        shown.push(err.what());
        shown.push(err.remedy());
        shown.push(serde_json::to_string(err).unwrap());
        shown.push(format!("{:?}", err.kind()));
        shown.push(format!("{:?}", std::error::Error::source(err)));
    }
    // The reason this test exists: serde's own message for the same mistake does quote the value.
    let serde_message = serde_json::from_str::<u64>(&serde_json::to_string(SECRET).unwrap())
        .unwrap_err()
        .to_string();
    assert!(serde_message.contains(SECRET), "{serde_message}");

    for text in &shown {
        assert!(!text.contains(SECRET), "a secret leaked: {text}");
        assert!(!text.contains("Zq8x"), "part of a secret leaked: {text}");
    }
    assert_eq!(
        reader.setting::<String>("api_token").unwrap().as_deref(),
        Some(SECRET),
        "the value itself is readable through the typed API"
    );
}
