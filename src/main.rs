use std::process::ExitCode;

fn main() -> ExitCode {
    prunelab::cli::main()
}
