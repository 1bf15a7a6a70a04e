//! The `geokv` binary: every subcommand lives in `cli` (clap tree, dispatch,
//! error reporting); this file only hands over to it.
//!
//! Must not: hold any logic of its own.
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
