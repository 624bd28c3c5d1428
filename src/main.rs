//! `phygital` command-line entry point: parse, run, report one error line and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;
use phygital::Error;
use phygital::cli::{Cli, init_logging, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // 2 like clap's own usage errors, so schedulers can tell a wrong call from a failed run.
            match e {
                Error::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
