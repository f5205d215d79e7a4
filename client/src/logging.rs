//! Logging to stderr for every binary: `-v` raises our own level, `MFA_AGENT_LOG` takes a
//! full filter. The SDK's request dumps (canonical requests, signed headers) carry session
//! tokens: their targets are capped below trace whatever the filter says.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Targets that print secrets at trace level (the session token in a canonical request or
/// in the request "transmitted"), capped at debug.
const SECRET_TRACERS: [&str; 3] = ["aws_sigv4", "aws_smithy_runtime", "aws_smithy_runtime_api"];

pub fn init(verbose: u8) {
    // `Targets` rather than `EnvFilter`: it needs no regex engine, which keeps start-up
    // (paid on every credential_process call) short.
    let level = ["warn", "info", "debug", "trace"][usize::from(verbose.min(3))];
    let default = format!("warn,mfa_agent={level}");
    let mut filter = std::env::var("MFA_AGENT_LOG")
        .ok()
        .and_then(|spec| {
            spec.parse::<Targets>()
                .map_err(|e| eprintln!("warning: ignoring MFA_AGENT_LOG ({e}); use e.g. `debug` or `warn,mfa_agent=trace`"))
                .ok()
        })
        .unwrap_or_else(|| default.parse().expect("the default filter parses"));
    for target in SECRET_TRACERS {
        let capped = filter
            .iter()
            .find(|(t, _)| target.starts_with(*t))
            .map_or_else(
                || filter.default_level().unwrap_or(LevelFilter::OFF),
                |(_, l)| l,
            )
            .min(LevelFilter::DEBUG);
        filter = filter.with_target(target, capped);
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .init();
}
