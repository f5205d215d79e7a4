//! mfa-agent makes a hardware security key the MFA factor for the AWS command line. This
//! crate is the agent, the one owner of secrets and security keys; the client side (the
//! protocol, the socket client, the `mfa-agent` command line, and the files both sides
//! read) is the `mfa-agent-client` crate, re-exported here under the same names.
//!
//! The parts:
//! - [`otp`]: TOTP seeds, `otpauth://` URIs, and code generation.
//! - [`vault`]: the seed index and the secret stores (OS keyring or encrypted file), also
//!   holding long-term AWS keys.
//! - [`aws`]: AWS profiles (`~/.aws/config`) and STS and IAM calls.
//! - [`agent`]: the daemon: socket server, session cache, minting, replay guard.
//! - [`doctor`]: checks of the whole set-up, each with its fix.
//! - [`keys`]: FIDO security keys over USB HID, sealing with them, and opening the vault's
//!   data key with an enrolled key (`keys::unlock`).
//! - [`desktop`]: notifications, and the tray icon (Linux, feature `tray`).
//! - [`report`]: how an error reads, with `advice`: what to do about the agent's errors.
//!
//! Three binaries: `mfa-agent` (the client every user command and every
//! `credential_process` call runs, built from `mfa-agent-client` alone: it links no AWS
//! SDK, HID or D-Bus code), `mfa-agent-daemon` (the agent; also `doctor`), and
//! `mfa-agent-tray`.

// What another crate (the binaries, the tests) may use is `pub`; the rest is `pub(crate)`
// or tighter, so that a module's surface says who uses it.
#![warn(unreachable_pub)]

mod advice;
pub mod agent;
pub mod aws;
pub mod desktop;
pub mod doctor;
pub mod keys;
pub mod otp;
pub mod report;
mod suggest;
pub mod vault;

// The client side, under the names the agent's modules and the tests have always used.
pub(crate) use mfa_agent_client::{atomic, client, input};
pub use mfa_agent_client::{clock, config, logging, paths, protocol, random, secret, sys};
