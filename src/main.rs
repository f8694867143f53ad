//! The `lienthong` command line. Each command group lives in its own module under `src/cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
