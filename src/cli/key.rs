//! `mfa-agent key ...`: the security keys mfa-agent can see and use.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::keys;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the FIDO security keys plugged in: vendor, product, path, FIDO versions,
    /// extensions, PIN state, and what mfa-agent can do with each.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::List { json } => list(*json),
    }
}

fn list(json: bool) -> Result<ExitCode> {
    let devices = keys::list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(ExitCode::SUCCESS);
    }
    if devices.is_empty() {
        eprintln!(
            "no security key found: plug one in (and on Linux, install the udev rule from the README)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for d in &devices {
        println!(
            "{} {:04x}:{:04x} {}",
            d.path, d.vendor_id, d.product_id, d.product
        );
        println!("  can:        {}", d.capability);
        if !d.versions.is_empty() {
            println!("  versions:   {}", d.versions.join(", "));
        }
        if !d.extensions.is_empty() {
            println!("  extensions: {}", d.extensions.join(", "));
        }
        let pin = match d.pin {
            keys::PinState::Set => "set",
            keys::PinState::NotSet => "not set",
            keys::PinState::Unsupported => "not supported",
        };
        let protocols: Vec<String> = d.pin_protocols.iter().map(ToString::to_string).collect();
        println!(
            "  PIN:        {pin}{}",
            if protocols.is_empty() {
                String::new()
            } else {
                format!(" (protocols {})", protocols.join(", "))
            }
        );
        println!("  enrolled:   no");
        if let Some(e) = &d.error {
            println!("  problem:    {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
