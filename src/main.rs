use std::process::ExitCode;

fn main() -> ExitCode {
    end_quietly_on_broken_pipes();
    prunelab::cli::main()
}

/// Restores SIGPIPE's default action, which Rust's runtime sets to "ignore": then writing to a
/// closed pipe (`prunelab inspect m.pt | head -1`) ends the process quietly, as for any Unix
/// tool (the shell reports 141), instead of a write error that `println!` turns into a panic.
fn end_quietly_on_broken_pipes() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
