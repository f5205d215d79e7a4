//! mfa-agent makes a hardware security key the MFA factor for the AWS command line.
//!
//! The parts:
//! - [`otp`]: TOTP seeds, `otpauth://` URIs, QR codes, and code generation.
//! - [`vault`]: the seed index and the secret stores (OS keyring or encrypted file), also
//!   holding long-term AWS keys.
//! - [`aws`]: AWS profiles (`~/.aws/config`) and STS calls.
//! - [`agent`]: the daemon: socket server, session cache, minting, replay guard.
//! - [`protocol`]: the messages between the daemon and its clients; `client`: the
//!   blocking client every command uses.
//! - [`config`]: the agent's own settings (`config.toml`); [`doctor`]: checks of the whole
//!   set-up, each with its fix.
//! - [`keys`]: FIDO security keys over USB HID, sealing with them, and opening the vault's
//!   data key with an enrolled key (`keys::unlock`).
//! - [`desktop`]: notifications, and the tray icon (Linux, feature `tray`).
//! - [`secret`]: zeroizing, mlocked, never-printed containers for secrets.
//! - [`paths`]: XDG locations; [`clock`]: Unix time; `atomic`: crash-safe private file writes.
//! - [`random`]: bytes from the OS random number generator.
//! - [`sys`]: the only module that calls the OS directly (process hardening, mlock, file locks,
//!   inherited sockets).
//! - `input`: secrets the user hands over in files or on stdin.
//! - [`cli`]: the `mfa-agent` command line, a lean client of the agent.
//!
//! Three binaries share this library: `mfa-agent` (the client every user command and every
//! `credential_process` call runs; it links no AWS SDK, HID or D-Bus code),
//! `mfa-agent-daemon` (the agent, the one owner of secrets and security keys; also
//! `doctor`), and `mfa-agent-tray`.

// What another crate (the binaries, the tests) may use is `pub`; the rest is `pub(crate)`
// or tighter, so that a module's surface says who uses it.
#![warn(unreachable_pub)]

mod advice;
pub mod agent;
mod atomic;
pub mod aws;
pub mod cli;
mod client;
pub mod clock;
pub mod config;
pub mod desktop;
pub mod doctor;
mod input;
pub mod keys;
pub mod logging;
pub mod otp;
pub mod paths;
pub mod protocol;
pub mod random;
pub mod report;
pub mod secret;
mod suggest;
pub mod sys;
pub mod vault;
