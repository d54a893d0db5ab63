//! The daemon and server started by a service manager that waits for them to say they are ready (systemd's
//! `Type=notify`): this test is that manager, a datagram socket named by `NOTIFY_SOCKET`. A first start after
//! an upgrade copies and migrates the owner's file, or splits a legacy file, and may wait for a backup
//! folder: a manager that heard nothing ended it at its start timeout, and each next start began the same
//! work over (a start loop). Now a start says what it does and asks for more time every second until its
//! file is open, and then says `READY=1`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use support::*;

/// What the process asks each time: 30 s more.
const ASKS_FOR: &str = "EXTEND_TIMEOUT_USEC=30000000";

/// What a process tells its manager's watchdog (systemd's `WatchdogSec=`).
const WATCHDOG: &str = "WATCHDOG=1";

impl ServiceManager {
    /// `splitstore <args>` started under a watchdog of 0.2 s: returned once it has said it is ready, and then,
    /// once, that it still works (never before it is ready). `--seconds` bounds a run the test fails to stop.
    fn start_watched(&mut self, args: &[&str]) -> Child {
        let args = [args, &["--seconds", "120"]].concat();
        let child = self.start_with(&[("WATCHDOG_USEC", "200000")], &args);
        self.until(|l| l == "READY=1");
        assert_eq!(ServiceManager::watchdog_told(&self.heard), 0, "not before it is ready");
        self.until(|l| l == WATCHDOG);
        child
    }

    /// How many of the notifications heard so far, and of `rest`, say `WATCHDOG=1`.
    fn watchdog_told(notifications: &[Vec<String>]) -> usize {
        notifications.iter().filter(|n| n.iter().any(|l| l == WATCHDOG)).count()
    }
}

/// A daemon's first start after an upgrade, waiting for the backup folder its pre-migration copy goes into
/// (a backup holds it), then migrating its file. Before, it said nothing to its manager, which ended it at its
/// start timeout. It now says each phase as it begins, asks for 30 s more every second while it waits and
/// works (the wait is asked for again and again, with how long it has waited, and once it is over the copy
/// is said again), and says `READY=1`, with what it does, only once its file is open and migrated; nothing
/// after that.
#[test]
fn a_starting_daemon_asks_its_service_manager_for_time_while_it_waits_and_migrates_and_says_ready_once_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (db, older) = activity_db_one_version_back(&data);
    let backups = data.join("backups");
    store_core::files::create_private_dir_all(&backups).unwrap();
    let held = store_core::FolderLock::exclusive(&backups).unwrap();

    let mut manager = ServiceManager::in_dir(dir.path());
    let daemon = manager.start(&["daemon", "--data-dir", utf8(&data), "--events", "1"]);
    let waiting = format!(
        "waiting for the backup folder {}, held by pid {}",
        backups.display(),
        std::process::id()
    );
    manager.until(|l| l.strip_prefix("STATUS=").is_some_and(|s| s.starts_with(&waiting)));
    // Asked for again while it waits, with how long it has waited: the manager's status shows the wait.
    let again = manager.until(|l| {
        l.strip_prefix("STATUS=")
            .is_some_and(|s| s.starts_with(&waiting) && s.ends_with(" s)"))
    });
    assert!(again.iter().any(|l| l == ASKS_FOR), "{again:?}");

    drop(held);
    let ready = manager.until(|l| l == "READY=1");
    assert_eq!(
        ready,
        ["READY=1".to_string(), format!("STATUS=recording into {}", db.display())]
    );
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(manager.rest().is_empty(), "nothing once ready");

    let (before_ready, _) = manager.heard.split_at(manager.heard.len() - 1);
    for heard in before_ready {
        assert!(
            heard.iter().any(|l| l == ASKS_FOR),
            "every notification of the start asks for time: {heard:?}"
        );
    }
    // Each status once, in order (asked again each second it lasts, with how long it has lasted): the wait
    // between the copy's start and the copy itself, and the copy said again once the wait is over.
    let end = activity_store::SCHEMA.end_version();
    let upgrading = format!("upgrading {} from schema {older} to {end}: ", db.display());
    let mut said: Vec<String> = manager
        .statuses()
        .into_iter()
        .map(|s| match s.rsplit_once(" (") {
            Some((s, t)) if t.strip_suffix(" s)").is_some_and(|n| n.parse::<u64>().is_ok()) => s,
            _ => s,
        })
        .map(|s| match s.strip_prefix(&upgrading) {
            Some(phase) => format!("upgrading: {phase}"),
            None if s.starts_with(&waiting) => "waiting".to_string(),
            None => s.to_string(),
        })
        .collect();
    said.dedup();
    assert_eq!(
        said,
        [
            "starting".to_string(),
            "upgrading: starting".to_string(),
            "upgrading: checking the file (quick_check)".to_string(),
            "upgrading: copying the file".to_string(),
            "waiting".to_string(),
            "upgrading: copying the file".to_string(),
            format!("upgrading: migrating to schema {end} (an index of the sessions longer than a day)"),
            format!("recording into {}", db.display()),
        ]
    );
}

/// The server's first start on a legacy directory splits the legacy file: it says so to its manager, asking
/// for time, and says `READY=1` once config.db is open.
#[test]
fn a_starting_server_says_its_split_to_its_service_manager_and_ready_once_config_db_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_core::files::create_private_dir_all(&data).unwrap();
    migrate_split::fixtures::build(&migrate_split::fixtures::LegacySpec::small(3), &data.join("legacy.db")).unwrap();

    let mut manager = ServiceManager::in_dir(dir.path());
    let server = manager.start(&["server", "--data-dir", utf8(&data), "--seconds", "0"]);
    let ready = manager.until(|l| l == "READY=1");
    let config = data.join("config.db");
    assert_eq!(
        ready,
        ["READY=1".to_string(), format!("STATUS=serving {}", config.display())]
    );
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let splitting = "upgrading: splitting the legacy database (";
    let said = manager.statuses();
    assert!(said.iter().any(|s| s.starts_with(splitting)), "{said:?}");
    let split = manager
        .heard
        .iter()
        .find(|h| h.iter().any(|l| l.starts_with(&format!("STATUS={splitting}"))))
        .unwrap();
    assert!(split.iter().any(|l| l == ASKS_FOR), "{split:?}");
}

/// A `NOTIFY_SOCKET` nobody listens on (a variable inherited from a service that started the process, its
/// socket gone): the start goes on and records, saying once that it could not tell the manager.
#[test]
fn a_start_whose_service_manager_cannot_be_told_says_so_once_and_records_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gone = dir.path().join("no-manager-listens-here");
    records_saying_once_it_could_not_tell(&data, gone.as_os_str());
}

/// `splitstore daemon --events 3` with `NOTIFY_SOCKET=address` where nothing can be told: it records all
/// three, saying once (not at each ask) that it could not tell its manager.
fn records_saying_once_it_could_not_tell(data: &Path, address: &std::ffi::OsStr) {
    let out = output_within(
        splitstore()
            .env("NOTIFY_SOCKET", address)
            .args(["daemon", "--data-dir", utf8(data), "--events", "3"]),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary_field(&stdout, "daemon: ", "events"), 3, "{stdout}");
    let warning = format!(
        "splitstore daemon: warning: could not tell the service manager at NOTIFY_SOCKET={} (",
        address.to_string_lossy()
    );
    let said: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&warning)).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].ends_with(
            "): one that waits for it (systemd's `Type=notify`) ends this start at its start timeout, one that keeps \
             a watchdog ends the process at the watchdog's"
        ),
        "{stderr}"
    );
}

/// A manager that does not read what it is sent (its socket's queue full: 10 datagrams on Linux). The start
/// must not wait on it: it records, saying once that it could not tell the manager. (Sent waiting, the start's
/// first notification hung it for good, with its split or migration behind it.)
#[test]
fn a_start_whose_service_manager_does_not_read_is_not_held_up_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manager = ServiceManager::in_dir(dir.path());
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while filler.send_to(b"STATUS=filler\n", &manager.address).is_ok() {
        queued += 1;
        assert!(queued < 100_000, "the socket's queue never filled");
    }
    records_saying_once_it_could_not_tell(&data, &manager.address);
}

/// `NOTIFY_SOCKET` naming an abstract socket (`@name`, Linux): told there as at a path.
#[cfg(target_os = "linux")]
#[test]
fn a_service_manager_on_an_abstract_socket_is_told_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = format!("splitstore-test-{}-{}", std::process::id(), data.display());
    let mut manager = ServiceManager::abstract_named(&name);
    let daemon = manager.start(&["daemon", "--data-dir", utf8(&data), "--events", "1"]);
    let ready = manager.until(|l| l == "READY=1");
    let db = activity_store::SCHEMA.path_in(&data);
    assert_eq!(
        ready,
        ["READY=1".to_string(), format!("STATUS=recording into {}", db.display())]
    );
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(manager.heard[0], [ASKS_FOR, "STATUS=starting"]);
}

/// A daemon whose manager keeps a watchdog on it (systemd's `WatchdogSec=`, here 0.2 s): without a word to it,
/// the manager ended a daemon that worked, and one whose write never returned (a disk that stopped answering)
/// went on holding its place, recording nothing, until the user found a hole in their history. It now says
/// `WATCHDOG=1`, from the loop that records, once it is ready (not before) and at least every half the
/// watchdog's timeout; while a write of its is held up it says nothing (a thread of its own would go on
/// saying it through a hang), and says it again once the write goes through.
#[test]
fn a_recording_daemon_tells_its_watchdog_from_its_recording_and_not_while_a_write_is_held_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut manager = ServiceManager::in_dir(dir.path());
    let daemon = manager.start_watched(&["daemon", "--data-dir", utf8(&data), "--rate", "200"]);

    // A write of another connection held open: the daemon's next commit waits (the busy timeout, 5 s).
    let db = activity_store::SCHEMA.path_in(&data);
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The daemon meets the held lock at its next commit (one every 5 ms); what it said before that is let by.
    std::thread::sleep(Duration::from_millis(500));
    manager.rest();
    std::thread::sleep(Duration::from_millis(1500));
    let while_held = manager.rest();
    // At most the one said at the turn that met the lock, had the daemon not run at all in the first 0.5 s; a
    // thread of its own would have said it about fifteen times.
    assert!(
        ServiceManager::watchdog_told(&while_held) <= 1,
        "said while its write was held up: {while_held:?}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    manager.until(|l| l == WATCHDOG);
    stopped_cleanly(daemon);
}

/// The server tells its watchdog too, from the loop that serves, once ready.
#[test]
fn a_serving_server_tells_its_watchdog_once_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut manager = ServiceManager::in_dir(dir.path());
    let server = manager.start_watched(&["server", "--data-dir", utf8(&data)]);
    manager.until(|l| l == WATCHDOG);
    stopped_cleanly(server);
}

/// Stops `child` with SIGTERM, as a service manager stops a service, and checks it stopped cleanly.
fn stopped_cleanly(child: Child) {
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A watchdog kept on another process (`WATCHDOG_PID` names it: the variables inherited from a service that
/// started this one) is not told; a `WATCHDOG_USEC` that is no number of microseconds is said once, and not
/// told either. Both record all the same.
#[test]
fn a_watchdog_of_another_process_or_of_no_timeout_is_not_told() {
    let parent = std::process::id().to_string();
    for (env, warning) in [
        ([("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", parent.as_str())], None),
        (
            [("WATCHDOG_USEC", "soon"), ("WATCHDOG_PID", "")],
            Some(
                "splitstore daemon: warning: WATCHDOG_USEC=soon is not a number of microseconds: the service manager's \
                 watchdog is not told, and ends this process at its timeout",
            ),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut manager = ServiceManager::in_dir(dir.path());
        let env: Vec<(&str, &str)> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        // 0.5 s of recording: five times the watchdog's timeout.
        let daemon = manager.start_with(
            &env,
            &["daemon", "--data-dir", utf8(&data), "--rate", "100", "--events", "50"],
        );
        manager.until(|l| l == "READY=1");
        let out = daemon.wait_with_output().unwrap();
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(summary_field(&stdout, "daemon: ", "events"), 50, "{stdout}");
        let rest = manager.rest();
        assert_eq!(
            ServiceManager::watchdog_told(&manager.heard) + ServiceManager::watchdog_told(&rest),
            0,
            "{env:?}"
        );
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WATCHDOG_USEC")).collect();
        assert_eq!(warnings, warning.into_iter().collect::<Vec<_>>(), "{env:?}");
    }
}

/// A server whose reports wait for its daemon's upgrade of activity.db says so in its status, beside what it
/// does, and says only what it does again once the daemon has upgraded the file and a report is answered:
/// the status an operator reads in `systemctl status` is the state now, not the first trouble of the run.
#[test]
fn a_servers_status_says_its_reports_wait_until_the_daemon_upgrades_activity_db() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let activity = data.join("activity.db");
    std::fs::create_dir(&data).unwrap();
    // A daemon two builds behind keeps activity.db at schema 2; this server reads from 3 on.
    drop(store_core::testing::open_at_version(&activity, &activity_store::SCHEMA, 2).unwrap());
    let mut manager = ServiceManager::in_dir(dir.path());
    let server = manager.start(&["server", "--data-dir", utf8(&data), "--seconds", "120"]);
    let serving = format!("STATUS=serving {}", data.join("config.db").display());
    let waiting = format!("{serving}; reports wait: {} is at schema 2", activity.display());
    manager.until(|l| l.starts_with(&waiting));

    let daemon = output_within(
        splitstore().args(["daemon", "--data-dir", utf8(&data), "--events", "1"]),
        Duration::from_secs(120),
    );
    assert!(daemon.status.success(), "{daemon:?}");
    manager.until(|l| l == serving);
    stopped_cleanly(server);
    let troubles: Vec<&str> = manager.statuses().into_iter().filter(|s| s.contains("; ")).collect();
    assert_eq!(troubles.len(), 1, "told once, not at each report: {troubles:?}");
}
