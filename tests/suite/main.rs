//! The host test suite, one binary: linking the library (AWS SDK, D-Bus, HID) once instead
//! of once per capability. Each module tests one capability; `tests/common` is the shared
//! harness. The micro-VM tests (tests/hardware_vm.rs) are a binary of their own, which runs
//! itself inside the VM.
//!
//! `cargo test --test suite MODULE::` runs one capability (e.g. `agent::`).

#[path = "../common/mod.rs"]
mod common;

mod adopt;
mod agent;
mod agent_in_process;
mod aws_clients;
mod bad_input;
mod binaries;
mod codes;
mod completion;
mod confirm;
mod contexts;
mod crash;
mod desktop;
mod doctor;
mod file_store;
mod hardening;
mod harness;
mod iam_enrolment;
mod key_rotation;
mod login;
mod mfa_process;
mod package;
mod readme;
mod real_key;
mod secret_hygiene;
mod seeds;
mod shared_files;
mod storage_faults;
mod strict_fake;
mod systemd_units;
mod typed_codes;
mod wire;
