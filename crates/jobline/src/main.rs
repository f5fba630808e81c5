//! The `jobline` executable. Everything it does lives in the library (`jobline::cli`), so the
//! tests drive the same code; `jobline --help` explains the commands.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    jobline::cli::run(jobline::cli::Cli::parse()).await
}
