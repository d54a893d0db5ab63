//! One module per subcommand. Each has `Args` (clap) and `run(Args) -> ExitCode`.

pub mod backup;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod repair;
pub mod report;
pub mod restore;
pub mod server;

use std::process::ExitCode;

/// Prints an error the way every subcommand does (what happened, then what to do) and returns exit code 2
/// ("could not run").
pub fn fail(context: &str, err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("splitstore {context}: {err}");
    ExitCode::from(2)
}

/// Set by SIGTERM/SIGINT once [`install_stop_handlers`] ran; long-running subcommands poll it.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: the one kind of work that is async-signal-safe here.
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT request a clean stop ([`stop_requested`]) instead of killing the process.
pub fn install_stop_handlers() -> std::io::Result<()> {
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
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}
