//! `mfa-agent key ...`: the security keys mfa-agent can see, enrol and use.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Agent;
use crate::protocol::{KeyDevice, KeyEnroll, KeyList, KeyListing, KeyRemove, KeyTest, PinState};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the FIDO security keys plugged in: vendor, product, path, FIDO versions,
    /// extensions, PIN state, what mfa-agent can do with each, and whether it is enrolled.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enrol the plugged-in security key (two touches). The first key creates the vault's
    /// data key; a further (backup) key needs an enrolled key plugged in too, to unlock it.
    Enroll {
        /// A name for the key, e.g. "blue-yubikey" or "backup".
        #[arg(long, default_value = "key")]
        name: String,
        /// Require the key's PIN as well as a touch whenever it unlocks the vault (the
        /// default when the key has a PIN): the PIN protects the seal even on keys that
        /// answer without a touch.
        #[arg(long, conflicts_with = "no_pin")]
        pin: bool,
        /// A touch alone opens the vault, even if the key has a PIN.
        #[arg(long)]
        no_pin: bool,
        /// The hidraw path of the key, when several are plugged in.
        #[arg(long, value_name = "PATH")]
        device: Option<String>,
    },
    /// Check an enrolled key end to end: touch, signature against the enrolled public key,
    /// and unwrapping the vault's data key.
    Test {
        /// The enrolled key's name.
        name: String,
    },
    /// Forget an enrolled key.
    Remove {
        /// The enrolled key's name (`mfa-agent key list` shows them).
        name: String,
        /// Do not ask first (the removal still takes a touch of an enrolled key).
        #[arg(long, short)]
        yes: bool,
    },
}

pub(super) fn run(cmd: &KeyCommand, agent: &Agent) -> Result<ExitCode> {
    match cmd {
        KeyCommand::List { json } => list(*json, agent),
        KeyCommand::Enroll {
            name,
            pin,
            no_pin,
            device,
        } => agent.change(KeyEnroll {
            name: name.clone(),
            pin: (*pin || *no_pin).then_some(*pin),
            device: device.clone(),
        }),
        KeyCommand::Test { name } => {
            // What was verified goes to stdout: it is the command's result.
            println!("{}", agent.call(KeyTest { name: name.clone() })?);
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Remove { name, yes } => agent.change(KeyRemove {
            name: name.clone(),
            yes: *yes,
        }),
    }
}

fn list(json: bool, agent: &Agent) -> Result<ExitCode> {
    let KeyListing {
        devices,
        enrolled,
        guarantees,
    } = agent.call(KeyList)?;
    if json {
        let out = serde_json::json!({ "devices": devices, "enrolled": enrolled, "guarantees": guarantees });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if devices.is_empty() {
        eprintln!(
            "no security key found: plug one in (and on Linux, install the udev rule from the README)"
        );
    }
    for d in &devices {
        print_device(d);
    }
    if enrolled.is_empty() {
        println!("enrolled: none yet (`mfa-agent key enroll`)");
    } else {
        println!("enrolled: {}", enrolled.join(", "));
    }
    for g in &guarantees {
        println!("  {}: {}", g.name, g.protects);
        if let Some(fix) = &g.fix {
            println!("    fix: {fix}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_device(d: &KeyDevice) {
    println!(
        "{} {:04x}:{:04x} {}",
        d.path, d.vendor_id, d.product_id, d.product
    );
    println!("  can:        {}", d.capability);
    if let Some(name) = &d.enrolled_as {
        println!("  enrolled:   as {name:?}");
    }
    if !d.versions.is_empty() {
        println!("  versions:   {}", d.versions.join(", "));
    }
    if !d.extensions.is_empty() {
        println!("  extensions: {}", d.extensions.join(", "));
    }
    let pin = match d.pin {
        PinState::Set => "set",
        PinState::NotSet => "not set",
        PinState::Unsupported => "not supported",
    };
    let protocols: Vec<String> = d.pin_protocols.iter().map(ToString::to_string).collect();
    let protocols = if protocols.is_empty() {
        String::new()
    } else {
        format!(" (protocols {})", protocols.join(", "))
    };
    let retries = match d.pin_retries {
        Some(1) => ", 1 try left: a wrong PIN now blocks it".to_owned(),
        Some(n) => format!(", {n} tries left"),
        None => String::new(),
    };
    println!("  PIN:        {pin}{protocols}{retries}");
    if let Some(e) = &d.error {
        println!("  problem:    {e}");
    }
}
