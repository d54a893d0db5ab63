//! The daemon and server started by a service manager that waits for them to say they are ready (systemd's
//! `Type=notify`): this test is that manager, a datagram socket named by `NOTIFY_SOCKET`. A first start after
//! an upgrade copies and migrates the owner's file, or splits a legacy file, and may wait for a backup
//! folder: a manager that heard nothing ended it at its start timeout, and each next start began the same
//! work over (a start loop). Now a start says what it does and asks for more time every second until its
//! file is open, and then says `READY=1`.

mod support;

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::*;

/// What the process asks each time: 30 s more.
const ASKS_FOR: &str = "EXTEND_TIMEOUT_USEC=30000000";

/// The manager's end of `NOTIFY_SOCKET`.
struct ServiceManager {
    socket: UnixDatagram,
    /// What `NOTIFY_SOCKET` says: the socket's path, or `@` and its abstract name.
    address: OsString,
    /// Every notification so far, each as its lines (`READY=1`, `STATUS=...`).
    heard: Vec<Vec<String>>,
}

impl ServiceManager {
    fn in_dir(dir: &Path) -> ServiceManager {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        ServiceManager {
            socket,
            address: path.into_os_string(),
            heard: Vec::new(),
        }
    }

    /// A manager listening on an abstract socket (Linux's; one in a container may name one).
    #[cfg(target_os = "linux")]
    fn abstract_named(name: &str) -> ServiceManager {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        ServiceManager {
            socket,
            address: format!("@{name}").into(),
            heard: Vec::new(),
        }
    }

    /// `splitstore <args>` started as this manager starts a service.
    fn start(&self, args: &[&str]) -> Child {
        splitstore()
            .env("NOTIFY_SOCKET", &self.address)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for the next notification (60 s at most: a start that says nothing that long fails the test).
    fn next(&mut self) -> &[String] {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("the starting process says something within 60 s");
        let text = String::from_utf8(buf[..n].to_vec()).unwrap();
        self.heard.push(text.lines().map(str::to_string).collect());
        self.heard.last().unwrap()
    }

    /// Waits until a notification holds `line` (or one starting with it, for a `prefix`), and returns it.
    fn until(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        loop {
            let heard = self.next().to_vec();
            if heard.iter().any(|l| wanted(l)) {
                return heard;
            }
        }
    }

    /// The statuses heard so far, in order.
    fn statuses(&self) -> Vec<&str> {
        self.heard
            .iter()
            .flatten()
            .filter_map(|l| l.strip_prefix("STATUS="))
            .collect()
    }

    /// Everything sent after the process ended (nothing waits: it has ended).
    fn rest(&mut self) -> Vec<Vec<String>> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut rest = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            rest.push(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string).collect());
        }
        rest
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
            format!("upgrading: migrating to schema {end} (running totals per project in 15-minute buckets)"),
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
        said[0].ends_with("): one that waits for it (systemd's `Type=notify`) ends this start at its start timeout"),
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
