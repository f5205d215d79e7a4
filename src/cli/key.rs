//! `mfa-agent key ...`: the security keys mfa-agent can see, enrol and use.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::input::{self, TerminalPrompter};
use crate::keys::seal::DataKey;
use crate::keys::{self, KeyError};
use crate::keys::{ctap1, fido};
use crate::secret::SecretString;
use crate::unlock;
use crate::vault::{EnrolledKey, KeyKind, Vault};

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
    let mut devices = keys::list()?;
    for device in devices.iter_mut().filter(|d| d.error.is_none()) {
        device.enrolled_as = crate::unlock::enrolled_on(vault.enrolled_keys(), &device.path);
    }
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

fn pin_if(wanted: bool) -> Result<Option<SecretString>> {
    if !wanted {
        return Ok(None);
    }
    let pin = input::security_key_pin("Security key PIN: ")?;
    fido::check_pin(&pin)?;
    Ok(Some(pin))
}

fn enroll(name: &str, with_pin: bool, device: Option<&str>, vault: &mut Vault) -> Result<()> {
    crate::vault::validate_name(name)?;
    if vault.enrolled_keys().iter().any(|k| k.name == name) {
        return Err(crate::vault::VaultError::DuplicateKey { name: name.into() }.into());
    }
    let devices = unlock::wait_for_any_key(&TerminalPrompter)?;
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
    let approve_only = target.capability == "approve only";
    let has = |kind: KeyKind| vault.enrolled_keys().iter().any(|k| k.kind == kind);
    if approve_only && has(KeyKind::Seal) {
        bail!(
            "this vault is sealed by FIDO2 keys, which a U2F-only key cannot open; enrol another FIDO2 key as the backup"
        );
    }
    if !approve_only && has(KeyKind::Approve) {
        bail!(
            "this vault is guarded by U2F keys; remove them first (`mfa-agent key remove NAME`) to seal it with this FIDO2 key"
        );
    }
    if approve_only {
        return enroll_u2f(name, target, vault);
    }
    // A backup key joins the data key the vault already has, so an enrolled key must unlock.
    let first = vault.enrolled_keys().is_empty();
    let data_key = if first {
        DataKey::generate()
    } else {
        unlock::unlock(
            vault.enrolled_keys(),
            &TerminalPrompter,
            "add a backup key",
            Some(&target.path),
        )?
    };
    let pin = pin_if(with_pin)?;
    input::tell_user(&format!(
        "touch your security key to enrol it as {name:?} (1 of 2)"
    ));
    let credential = fido::enroll(&target.path, pin.clone())?;
    let mut salt = [0u8; 32];
    rand::fill(&mut salt[..]);
    input::tell_user("touch it again to confirm (2 of 2)");
    // The command runs in the user's terminal: Ctrl-C ends it, nothing to cancel for.
    let output = fido::hmac_secret(&target.path, &credential, salt, pin, &|| false)?;
    let added = crate::clock::unix_now();
    let wrapped_data_key = data_key.wrap(&output, &credential.credential_id);
    vault.add_key(EnrolledKey {
        name: name.to_owned(),
        kind: KeyKind::Seal,
        wrapped_data_key,
        credential_id: credential.credential_id,
        public_key: credential.public_key,
        rp_id: fido::RP_ID.to_owned(),
        salt: salt.to_vec(),
        uses_pin: credential.uses_pin,
        pin_protocol: credential.pin_protocol,
        added,
    })?;
    // Seal what is stored in the clear (all seeds, on the first enrolment).
    vault.set_data_key(data_key);
    let sealed = vault.reseal_all(true)?;
    eprintln!(
        "enrolled security key {name:?} ({}, PIN {}){}",
        target.product,
        if with_pin { "required" } else { "not required" },
        if first {
            format!("; sealed {sealed} seed(s): from now on they open only with a touch")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// A U2F-only key: registered (one touch); from then on each seed read needs its touch.
fn enroll_u2f(name: &str, target: &keys::KeyDevice, vault: &mut Vault) -> Result<()> {
    input::tell_user(&format!(
        "touch your security key to enrol it as {name:?} (U2F: it approves, it cannot seal)"
    ));
    let registration = ctap1::register(&target.path, fido::TOUCH_DEADLINE)?;
    vault.add_key(EnrolledKey {
        name: name.to_owned(),
        kind: KeyKind::Approve,
        credential_id: registration.key_handle,
        public_key: registration.public_key,
        rp_id: fido::RP_ID.to_owned(),
        salt: Vec::new(),
        uses_pin: false,
        pin_protocol: 0,
        wrapped_data_key: Vec::new(),
        added: crate::clock::unix_now(),
    })?;
    eprintln!(
        "enrolled security key {name:?} ({}, U2F): every code and every mint now needs its touch; the seeds are not sealed (a U2F key cannot seal)",
        target.product
    );
    Ok(())
}

fn test(name: &str, vault: &Vault) -> Result<()> {
    let key = vault
        .enrolled_keys()
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| crate::vault::VaultError::UnknownKey { name: name.into() })?;
    if key.kind == KeyKind::Approve {
        unlock::approve(std::slice::from_ref(key), &TerminalPrompter, "test it")?;
        println!("security key {name:?} works: touch and U2F signature verified");
        return Ok(());
    }
    let pin = pin_if(key.uses_pin)?;
    let devices = unlock::wait_for_keys(&TerminalPrompter)?;
    for device in &devices {
        input::tell_user(&format!("touch your security key ({name}) to test it"));
        match fido::hmac_secret(
            &device.path,
            &unlock::credential_of(key),
            unlock::salt_of(key)?,
            pin.clone(),
            &|| false,
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
    let sealing = |k: &&EnrolledKey| k.kind == KeyKind::Seal;
    let is_sealing = vault
        .enrolled_keys()
        .iter()
        .filter(sealing)
        .any(|k| k.name == name);
    let last = is_sealing && vault.enrolled_keys().iter().filter(sealing).count() == 1;
    let question = if last {
        format!(
            "Forget the security key {name:?}? It is the last one: the seeds will be stored unsealed (a touch unseals them now)."
        )
    } else {
        format!("Forget the security key {name:?}?")
    };
    if !yes && input::confirm(&question)? != Some(true) {
        bail!("kept the key {name:?} (pass --yes where there is no terminal)");
    }
    if last {
        // Unseal first: while the key is still enrolled, an interruption leaves a vault that
        // opens as before.
        let unsealed = vault.reseal_all(false)?;
        eprintln!("unsealed {unsealed} seed(s)");
    }
    vault.remove_key(name)?;
    eprintln!("removed security key {name:?}");
    Ok(())
}
