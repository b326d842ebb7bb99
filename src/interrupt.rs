//! Ctrl-C (SIGINT) and SIGTERM during `prunelab run`: the first signal lets the runs in flight
//! finish and be recorded, starts no more, and the command then says what was recorded and how to
//! resume (exit 130 or 143); a second signal ends the process at once (what a sweep loses then is
//! only the runs in flight, as after `kill -9`).
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) }
    }
}

/// Installs the handlers for SIGINT and SIGTERM.
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// `SIGINT`, `SIGTERM`, …
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
