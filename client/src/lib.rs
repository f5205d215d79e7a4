//! The client side of mfa-agent: everything the `mfa-agent` command runs, and what it shares
//! with the agent. Nothing here calls AWS, a security key or D-Bus: those are the agent's
//! (the `mfa-agent` crate, which builds on this one), and this crate's manifest has no way
//! to reach them.
//!
//! The parts:
//! - [`protocol`]: the messages between the agent and its clients; [`client`]: the
//!   blocking client every command uses.
//! - [`cli`]: the `mfa-agent` command line.
//! - [`config`]: the agent's own settings (`config.toml`), which clients read too
//!   (`autostart`).
//! - [`aws`]: the AWS shared config and credentials files, as text, and the shape of
//!   long-term keys.
//! - [`qr`]: reading and drawing QR codes; [`audit_log`]: the audit log's lines;
//!   [`vault_rules`]: what a client checks before it asks the agent to change the vault.
//! - [`secret`]: zeroizing, mlocked, never-printed containers for secrets.
//! - [`paths`]: XDG locations; [`clock`]: Unix time; [`atomic`]: crash-safe private file
//!   writes; [`random`]: bytes from the OS.
//! - [`sys`]: the only module that calls the OS directly (process hardening, mlock, file
//!   locks, inherited sockets).
//! - [`input`]: secrets the user hands over in files or on stdin; [`report`]: how an
//!   error reads; [`logging`]: stderr logs.

// What another crate (the agent, the binaries, the tests) may use is `pub`; the rest is
// `pub(crate)` or tighter, so that a module's surface says who uses it.
#![warn(unreachable_pub)]

pub mod atomic;
pub mod audit_log;
pub mod aws;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod input;
pub mod logging;
pub mod paths;
pub mod protocol;
pub mod qr;
pub mod random;
pub mod report;
pub mod secret;
pub mod sys;
pub mod vault_rules;
