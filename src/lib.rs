//! mfa-agent makes a hardware security key the MFA factor for the AWS command line.
//!
//! The parts:
//! - [`otp`]: TOTP seeds, `otpauth://` URIs, QR codes, and code generation.
//! - [`vault`]: the seed index and the secret stores (OS keyring or encrypted file).
//! - [`secret`]: zeroizing, mlocked, never-printed containers for secrets.
//! - [`paths`]: XDG locations; [`atomic`]: crash-safe private file writes.
//! - [`sys`]: the only module that calls the OS directly (process hardening, mlock, flock).
//! - [`cli`]: the `mfa-agent` command line.

pub mod atomic;
pub mod cli;
pub mod otp;
pub mod paths;
pub mod secret;
pub mod sys;
pub mod vault;
