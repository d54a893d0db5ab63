//! What the `migrate-split` and `splitstore` commands share before either runs: the version they say, the
//! `--json` failure of a command line they cannot parse, and SIGTERM/SIGINT as a request to stop cleanly.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Parses the command line as `A`. `--version` says the schema version of each file the build writes, which
/// tells two builds side by side apart where the package version does not (a file of a higher version than
/// a build's is refused by it). Help and version are printed as clap prints them. An argument error is
/// printed on stderr as clap prints it and, when the command line holds `--json`, also on stdout as the
/// failure object every `--json` failure is (`{"outcome": "failed", "error": {"kind": "invalid_input",
/// "path": null, "message", "remedy", "retryable": false, "exit_code": 2}}`): a program that reads stdout
/// reads a mistyped flag as it reads any other failure, not as an empty line.
pub fn parse_args<A: clap::Parser>() -> Result<A, ExitCode> {
    let command = A::command().version(version());
    command
        .try_get_matches()
        .and_then(|matches| A::from_arg_matches(&matches))
        .map_err(|err| {
            let _ = err.print();
            let code = u8::try_from(err.exit_code()).unwrap_or(2);
            if code != 0 && std::env::args_os().any(|arg| arg == "--json") {
                let failure = serde_json::json!({
                    "outcome": "failed",
                    "error": {
                        "kind": store_core::ErrorKind::InvalidInput,
                        "path": null,
                        "message": first_paragraph(&err.to_string()),
                        "remedy": "correct the arguments; the command's --help lists them",
                        "retryable": false,
                        "exit_code": code,
                    },
                });
                // Not `println!`, which panics when stdout is a closed pipe: the failure is on stderr already.
                let _ = writeln!(std::io::stdout().lock(), "{failure}");
            }
            ExitCode::from(code)
        })
}

/// `0.1.0 (activity.db schema 5, config.db schema 7)`.
fn version() -> String {
    let schemas = [&activity_store::SCHEMA, &config_store::SCHEMA];
    let schemas: Vec<String> = schemas
        .iter()
        .map(|schema| format!("{} schema {}", schema.file_name, schema.end_version()))
        .collect();
    format!("{} ({})", env!("CARGO_PKG_VERSION"), schemas.join(", "))
}

/// clap's message without its `error: ` label, usage and tip: its first paragraph, on one line.
fn first_paragraph(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let line = paragraph.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// Set by SIGTERM/SIGINT once [`install_stop_handlers`] ran: long-running commands poll it (`splitstore
/// daemon` between commits), and hand it to what may wait or split ([`Options::stop`](crate::Options::stop),
/// `store_core::Waits::stop`) so that those give up too, leaving nothing half done.
static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// The flag SIGTERM/SIGINT set once [`install_stop_handlers`] ran.
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(Arc::default).clone()
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic load (the flag exists: installed after it) and store: async-signal-safe.
    if let Some(stop) = STOP.get() {
        stop.store(true, Ordering::SeqCst);
    }
}

/// Makes SIGTERM and SIGINT request a clean stop ([`stop_requested`], [`stop_flag`]) instead of killing the
/// process.
pub fn install_stop_handlers() -> std::io::Result<()> {
    stop_flag();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic; SA_RESTART keeps
        // SQLite's and stdout's system calls from failing with EINTR.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGTERM or SIGINT arrived since [`install_stop_handlers`].
pub fn stop_requested() -> bool {
    STOP.get().is_some_and(|stop| stop.load(Ordering::Relaxed))
}
