//! `mfa-agent key ...`: the security keys mfa-agent can see, enrol and use.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::input;
use crate::keys::fido::{self, Credential};
use crate::keys::seal::DataKey;
use crate::keys::{self, KeyDevice, KeyError};
use crate::secret::{SecretBytes, SecretString};
use crate::vault::{EnrolledKey, Vault};

/// How long `enroll` and `test` wait for a key to be plugged in (`MFA_AGENT_KEY_WAIT`
/// seconds overrides it).
fn insert_deadline() -> Duration {
    let seconds = std::env::var("MFA_AGENT_KEY_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the FIDO security keys plugged in: vendor, product, path, FIDO versions,
    /// extensions, PIN state, what mfa-agent can do with each, and whether it is enrolled.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Enrol the plugged-in security key (two touches). The first key creates the vault's
    /// data key; a further (backup) key needs an enrolled key plugged in too, to unlock it.
    Enroll {
        /// A name for the key, e.g. "blue-yubikey" or "backup".
        #[arg(long, default_value = "key")]
        name: String,
        /// Require the key's PIN as well as a touch whenever it unlocks the vault.
        #[arg(long)]
        pin: bool,
        /// The hidraw path of the key, when several are plugged in.
        #[arg(long, value_name = "PATH")]
        device: Option<String>,
    },
    /// Check an enrolled key end to end: touch, signature against the enrolled public key,
    /// and unwrapping the vault's data key.
    Test { name: String },
    /// Forget an enrolled key.
    Remove {
        name: String,
        #[arg(long, short)]
        yes: bool,
    },
}

pub fn run(cmd: &KeyCommand, mut vault: Vault) -> Result<ExitCode> {
    match cmd {
        KeyCommand::List { json } => list(*json, &vault),
        KeyCommand::Enroll { name, pin, device } => {
            enroll(name, *pin, device.as_deref(), &mut vault)
        }
        KeyCommand::Test { name } => test(name, &vault),
        KeyCommand::Remove { name, yes } => remove(name, *yes, &mut vault),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn list(json: bool, vault: &Vault) -> Result<()> {
    let devices = keys::list()?;
    let enrolled: Vec<String> = vault
        .enrolled_keys()
        .iter()
        .map(|k| k.name.clone())
        .collect();
    if json {
        let out = serde_json::json!({ "devices": devices, "enrolled": enrolled });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if devices.is_empty() {
        eprintln!(
            "no security key found: plug one in (and on Linux, install the udev rule from the README)"
        );
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
        let protocols = if protocols.is_empty() {
            String::new()
        } else {
            format!(" (protocols {})", protocols.join(", "))
        };
        println!("  PIN:        {pin}{protocols}");
        if let Some(e) = &d.error {
            println!("  problem:    {e}");
        }
    }
    if enrolled.is_empty() {
        println!("enrolled: none yet (`mfa-agent key enroll`)");
    } else {
        println!("enrolled: {}", enrolled.join(", "));
    }
    Ok(())
}

/// The FIDO2 keys plugged in, waiting a bounded time for one to appear.
fn wait_for_keys() -> Result<Vec<KeyDevice>> {
    let wait = insert_deadline();
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let found: Vec<KeyDevice> = keys::list()?
            .into_iter()
            .filter(|d| d.capability == "seal and approve")
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!(
                "no FIDO2 security key found within {} s; plug one in (on Linux, check `mfa-agent key list` and the udev rule in the README)",
                wait.as_secs()
            );
        }
        if !told {
            input::tell_user(&format!(
                "insert your security key (waiting up to {} s)",
                wait.as_secs()
            ));
            told = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn pin_if(wanted: bool) -> Result<Option<SecretString>> {
    if !wanted {
        return Ok(None);
    }
    let pin = input::security_key_pin("Security key PIN: ")?;
    fido::check_pin(&pin)?;
    Ok(Some(pin))
}

fn credential_of(key: &EnrolledKey) -> Credential {
    Credential {
        credential_id: key.credential_id.clone(),
        public_key: key.public_key.clone(),
        pin_protocol: key.pin_protocol,
        uses_pin: key.uses_pin,
    }
}

fn salt_of(key: &EnrolledKey) -> Result<[u8; 32]> {
    key.salt
        .as_slice()
        .try_into()
        .context("the enrolled key's salt is damaged; remove and enrol the key again")
}

/// Unlocks the data key with whichever enrolled key is plugged in (one touch).
fn unlock(
    vault: &Vault,
    devices: &[KeyDevice],
    skip_path: Option<&str>,
) -> Result<(DataKey, String)> {
    for key in vault.enrolled_keys() {
        let pin = pin_if(key.uses_pin)?;
        for device in devices
            .iter()
            .filter(|d| Some(d.path.as_str()) != skip_path)
        {
            input::tell_user(&format!(
                "touch your security key ({}) to unlock the vault",
                key.name
            ));
            match fido::hmac_secret(
                &device.path,
                &credential_of(key),
                salt_of(key)?,
                pin.clone(),
            ) {
                Ok(output) => {
                    return Ok((
                        DataKey::unwrap(&key.wrapped_data_key, &output, &key.credential_id)?,
                        key.name.clone(),
                    ));
                }
                Err(KeyError::NotEnrolled) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    bail!(
        "none of the plugged-in keys is enrolled with this vault; plug in an enrolled key (`mfa-agent key list` names them)"
    )
}

fn enroll(name: &str, with_pin: bool, device: Option<&str>, vault: &mut Vault) -> Result<()> {
    crate::vault::validate_name(name)?;
    if vault.enrolled_keys().iter().any(|k| k.name == name) {
        return Err(crate::vault::VaultError::DuplicateKey { name: name.into() }.into());
    }
    let devices = wait_for_keys()?;
    let target = match device {
        Some(path) => devices
            .iter()
            .find(|d| d.path == path)
            .with_context(|| format!("no FIDO2 key at {path}"))?,
        None if devices.len() == 1 => &devices[0],
        None => bail!(
            "several keys are plugged in ({}); name the one to enrol with --device",
            devices
                .iter()
                .map(|d| d.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // A backup key joins the data key the vault already has, so an enrolled key must unlock.
    let data_key = if vault.enrolled_keys().is_empty() {
        DataKey::generate()
    } else {
        unlock(vault, &devices, Some(&target.path))?.0
    };
    let pin = pin_if(with_pin)?;
    input::tell_user(&format!(
        "touch your security key to enrol it as {name:?} (1 of 2)"
    ));
    let credential = fido::enroll(&target.path, pin.clone())?;
    let mut salt = [0u8; 32];
    rand::fill(&mut salt[..]);
    input::tell_user("touch it again to confirm (2 of 2)");
    let output: SecretBytes = fido::hmac_secret(&target.path, &credential, salt, pin)?;
    let added = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    vault.add_key(EnrolledKey {
        name: name.to_owned(),
        wrapped_data_key: data_key.wrap(&output, &credential.credential_id),
        credential_id: credential.credential_id,
        public_key: credential.public_key,
        rp_id: fido::RP_ID.to_owned(),
        salt: salt.to_vec(),
        uses_pin: credential.uses_pin,
        pin_protocol: credential.pin_protocol,
        added,
    })?;
    eprintln!(
        "enrolled security key {name:?} ({}, PIN {})",
        target.product,
        if with_pin { "required" } else { "not required" }
    );
    Ok(())
}

fn test(name: &str, vault: &Vault) -> Result<()> {
    let key = vault
        .enrolled_keys()
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| crate::vault::VaultError::UnknownKey { name: name.into() })?;
    let devices = wait_for_keys()?;
    let pin = pin_if(key.uses_pin)?;
    for device in &devices {
        input::tell_user(&format!("touch your security key ({name}) to test it"));
        match fido::hmac_secret(
            &device.path,
            &credential_of(key),
            salt_of(key)?,
            pin.clone(),
        ) {
            Ok(output) => {
                DataKey::unwrap(&key.wrapped_data_key, &output, &key.credential_id)?;
                println!(
                    "security key {name:?} works: touch, signature and vault unlock verified ({})",
                    device.path
                );
                return Ok(());
            }
            Err(KeyError::NotEnrolled) => {}
            Err(e) => return Err(e.into()),
        }
    }
    bail!("the enrolled key {name:?} is not among the plugged-in keys; plug it in and retry")
}

fn remove(name: &str, yes: bool, vault: &mut Vault) -> Result<()> {
    if !vault.enrolled_keys().iter().any(|k| k.name == name) {
        return Err(crate::vault::VaultError::UnknownKey { name: name.into() }.into());
    }
    if !yes && input::confirm(&format!("Forget the security key {name:?}?"))? != Some(true) {
        bail!("kept the key {name:?} (pass --yes where there is no terminal)");
    }
    vault.remove_key(name)?;
    eprintln!("removed security key {name:?}");
    Ok(())
}
