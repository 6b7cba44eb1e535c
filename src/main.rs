//! The `kiln` binary: parses the command line and dispatches to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    kiln::cli::usage::quiet_panics();
    let cli = match kiln::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return kiln::cli::usage::report(&err),
    };
    match kiln::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
