//! Logging: `tracing` events and spans to stderr, as text or JSON lines.
//!
//! Logs never go to stdout, which carries the commands' own output (the bootstrap credentials,
//! `clients create --json`), so that output can be piped and parsed. Installed once, by the CLI;
//! tests install their own (silent unless `TEST_LOG=1`).

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: our info, and only warnings from sqlx's query logging.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber. A second call (or one after another subscriber was set)
/// changes nothing and is not an error.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    // A subscriber set earlier (by a test harness, say) stays; that is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
