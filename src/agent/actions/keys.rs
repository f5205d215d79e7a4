//! Security keys: list, enrol, test and remove, carried out by the agent (the only process
//! that talks to a key). Touch and PIN prompts go to the client that asked.

use anyhow::{Context as _, bail};

use super::super::door::{AgentPrompter, Visit, Visitor};
use super::super::minter::Minter;
use crate::keys::seal::{self, DataKey};
use crate::keys::unlock::{self, Prompter as _};
use crate::keys::{self, KeyError, ctap1, fido};
use crate::protocol::{
    AskKind, Capability, KeyDevice, KeyGuarantee, KeyListing, PinState, Response,
};
use crate::secret::SecretString;
use crate::vault::{EnrolledKey, KeyKind, Vault, VaultError};

pub(super) async fn list(minter: &Minter, visitor: &Visitor) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, |vault, _| {
            let mut devices = keys::list()?;
            for device in devices.iter_mut().filter(|d| d.error.is_none()) {
                device.enrolled_as = unlock::enrolled_on(vault.enrolled_keys(), &device.path);
            }
            let enrolled = vault
                .enrolled_keys()
                .iter()
                .map(|k| k.name.clone())
                .collect();
            let guarantees = vault
                .enrolled_keys()
                .iter()
                .map(|k| {
                    let (protects, fix) = k.guarantee();
                    KeyGuarantee {
                        name: k.name.clone(),
                        uses_pin: k.uses_pin,
                        touch_gated: k.touch_gated,
                        protects: protects.into(),
                        fix: fix.map(Into::into),
                    }
                })
                .collect();
            Ok(Response::Keys(KeyListing {
                devices,
                enrolled,
                guarantees,
            }))
        })
        .await
}

/// The key's PIN, asked of the client when the key is to be used with one.
fn pin_if(
    wanted: bool,
    prompter: &AgentPrompter,
    name: &str,
) -> anyhow::Result<Option<SecretString>> {
    if !wanted {
        return Ok(None);
    }
    let pin = if let Some(path) = prompter.pin_file() {
        crate::input::secret_from_file(path)?
    } else {
        prompter
            .ask(AskKind::Pin, &format!("PIN of the security key {name}"))
            .context("the security key needs its PIN and there is no terminal to ask on; run the command in a terminal (or give the agent MFA_AGENT_PIN_FILE)")?
    };
    fido::check_pin(&pin)?;
    Ok(Some(pin))
}

pub(super) async fn enroll(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    with_pin: Option<bool>,
    device: Option<String>,
) -> anyhow::Result<Response> {
    crate::vault::validate_name(&name)?;
    // A change of the key set is approved by a key enrolled now, never by a data key an
    // earlier touch left open (`touch = "unlock"`): the vault is entered without it.
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, prompter| {
            enroll_in(vault, prompter, &name, with_pin, device.as_deref())
        })
        .await
}

fn enroll_in(
    vault: &mut Vault,
    prompter: &AgentPrompter,
    name: &str,
    with_pin: Option<bool>,
    device: Option<&str>,
) -> anyhow::Result<Response> {
    if vault.enrolled_keys().iter().any(|k| k.name == name) {
        return Err(VaultError::DuplicateKey { name: name.into() }.into());
    }
    let devices = unlock::wait_for_any_key(prompter)?;
    let target = device_to_enrol(&devices, device)?;
    let approve_only = target.capability == Capability::ApproveOnly;
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
        return enroll_u2f(name, target, vault, prompter);
    }
    // A backup key joins the data key the vault already has: an enrolled key unlocks it,
    // which is also the approval of the change.
    let first = vault.enrolled_keys().is_empty();
    let data_key = if first {
        DataKey::generate()
    } else {
        unlock::unlock(
            vault.enrolled_keys(),
            prompter,
            "add a backup key",
            Some(&target.path),
        )?
    };
    // The PIN protects even where a key answers without a touch: on by default when the
    // key has one.
    let with_pin = with_pin.unwrap_or(target.pin == PinState::Set);
    let pin = pin_if(with_pin, prompter, name)?;
    prompter.touch(&format!(
        "touch your security key to enrol it as {name:?} (1 of 2)"
    ));
    let cancelled = || prompter.cancelled();
    let credential = fido::enroll(&target.path, pin.clone())?;
    let mut salt = [0u8; 32];
    crate::random::fill(&mut salt[..]);
    prompter.touch("touch it again to confirm (2 of 2)");
    let output = fido::hmac_secret(&target.path, &credential, salt, pin, &cancelled)?;
    // Does the key give hmac-secret without a touch? Asked once, silently, with a
    // throwaway salt: CTAP2 allows either answer, and it decides what a touch-only seal is
    // worth (see SECURITY.md).
    let touch_gated = fido::gates_hmac_secret_on_touch(&target.path, &credential.credential_id)
        .map_err(|e| {
            tracing::warn!("could not ask the key whether it gates hmac-secret on a touch: {e}");
        })
        .ok();
    // Wrapped to the key's public half, which the index keeps: removing another key later
    // re-keys the vault without a touch of this one.
    let recipient = seal::recipient_of(&output);
    let wrapped_data_key = data_key.wrap_to(&recipient, &credential.credential_id)?;
    vault.add_key(
        EnrolledKey {
            name: name.to_owned(),
            kind: KeyKind::Seal,
            wrapped_data_key,
            recipient: Some(recipient),
            credential_id: credential.credential_id,
            public_key: credential.public_key,
            rp_id: keys::RP_ID.to_owned(),
            salt: salt.to_vec(),
            uses_pin: credential.uses_pin,
            pin_protocol: credential.pin_protocol,
            added: crate::clock::unix_now(),
            touch_gated,
            cred_protect: credential.cred_protect,
        },
        Some(&data_key),
    )?;
    // Seal what is stored in the clear (all seeds, on the first enrolment).
    vault.set_data_key(data_key)?;
    let sealed = vault.reseal_all(true)?;
    let warning = if !with_pin && touch_gated == Some(false) {
        "\nwarning: this key gives its sealing secret without a touch to any program of yours that asks while it is plugged in: the seal protects the vault at rest (a stolen disk or keyring), not against malware running as you; enrol it with --pin (set a PIN first) for that"
    } else {
        ""
    };
    Ok(Response::Done {
        message: format!(
            "enrolled security key {name:?} ({}, PIN {}){}{warning}",
            target.product,
            if with_pin { "required" } else { "not required" },
            if first {
                format!(
                    "; sealed {sealed} secret(s) (seeds and long-term keys): from now on they open only with a touch"
                )
            } else {
                String::new()
            }
        ),
    })
}

/// The plugged-in key `--device` names, or the only one.
fn device_to_enrol<'a>(
    devices: &'a [KeyDevice],
    device: Option<&str>,
) -> anyhow::Result<&'a KeyDevice> {
    Ok(match device {
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
    })
}

/// A U2F-only key: registered (one touch); from then on each seed read needs its touch.
fn enroll_u2f(
    name: &str,
    target: &KeyDevice,
    vault: &mut Vault,
    prompter: &AgentPrompter,
) -> anyhow::Result<Response> {
    // A backup U2F key is approved by one enrolled already.
    if !vault.enrolled_keys().is_empty() {
        unlock::approve(vault.enrolled_keys(), prompter, "add a backup key")?;
    }
    prompter.touch(&format!(
        "touch your security key to enrol it as {name:?} (U2F: it approves, it cannot seal)"
    ));
    let registration = ctap1::register(&target.path, fido::TOUCH_DEADLINE)?;
    vault.add_key(
        EnrolledKey {
            name: name.to_owned(),
            kind: KeyKind::Approve,
            credential_id: registration.key_handle,
            public_key: registration.public_key,
            rp_id: keys::RP_ID.to_owned(),
            salt: Vec::new(),
            uses_pin: false,
            pin_protocol: 0,
            wrapped_data_key: Vec::new(),
            recipient: None,
            added: crate::clock::unix_now(),
            touch_gated: None,
            cred_protect: None,
        },
        None,
    )?;
    Ok(Response::Done {
        message: format!(
            "enrolled security key {name:?} ({}, U2F): every code and every mint now needs its touch; the seeds are not sealed (a U2F key cannot seal)",
            target.product
        ),
    })
}

pub(super) async fn test(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, prompter| {
            test_in(vault, prompter, &name)
        })
        .await
}

fn test_in(vault: &Vault, prompter: &AgentPrompter, name: &str) -> anyhow::Result<Response> {
    let key = vault
        .enrolled_keys()
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| VaultError::UnknownKey { name: name.into() })?;
    if key.kind == KeyKind::Approve {
        unlock::approve(std::slice::from_ref(key), prompter, "test it")?;
        return Ok(Response::Done {
            message: format!("security key {name:?} works: touch and U2F signature verified"),
        });
    }
    let pin = pin_if(key.uses_pin, prompter, name)?;
    let devices = unlock::wait_for_keys(prompter)?;
    let cancelled = || prompter.cancelled();
    for device in &devices {
        prompter.touch(&format!("touch your security key ({name}) to test it"));
        match fido::hmac_secret(
            &device.path,
            &unlock::credential_of(key),
            unlock::salt_of(key)?,
            pin.clone(),
            &cancelled,
        ) {
            Ok(output) => {
                key.unwrap_data_key(&output)?;
                return Ok(Response::Done {
                    message: format!(
                        "security key {name:?} works: touch, signature and vault unlock verified ({})",
                        device.path
                    ),
                });
            }
            Err(KeyError::NotEnrolled) => {}
            Err(e) => return Err(e.into()),
        }
    }
    bail!("the enrolled key {name:?} is not among the plugged-in keys; plug it in and retry")
}

pub(super) async fn remove(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    yes: bool,
) -> anyhow::Result<Response> {
    // Approved by a fresh touch of a key enrolled now (the one removed, or another), never
    // by a data key an earlier touch left open: `--yes` skips the question, not the touch.
    let response = minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, prompter| {
            remove_in(vault, prompter, &name, yes)
        })
        .await;
    // A data key kept open is out of date once the vault is re-keyed or unsealed (or never
    // to be used again, if it failed half-way): the next use takes a touch.
    minter.door.forget_data_key();
    response
}

fn remove_in(
    vault: &mut Vault,
    prompter: &AgentPrompter,
    name: &str,
    yes: bool,
) -> anyhow::Result<Response> {
    if !vault.enrolled_keys().iter().any(|k| k.name == name) {
        return Err(VaultError::UnknownKey { name: name.into() }.into());
    }
    let sealing = |k: &&EnrolledKey| k.kind == KeyKind::Seal;
    let is_sealing = vault
        .enrolled_keys()
        .iter()
        .filter(sealing)
        .any(|k| k.name == name);
    let last = is_sealing && vault.enrolled_keys().iter().filter(sealing).count() == 1;
    if !yes {
        prompter.confirm(&if last {
            format!(
                "Forget the security key {name:?}? It is the last one: the seeds and long-term keys will be stored unsealed (a touch unseals them now)."
            )
        } else {
            format!("Forget the security key {name:?}?")
        })?;
    }
    if last {
        // Unseal first: while the key is still enrolled, an interruption leaves a vault that
        // opens as before.
        let unsealed = vault.reseal_all(false)?;
        vault.remove_key(name)?;
        return Ok(Response::Done {
            message: format!("unsealed {unsealed} secret(s); removed security key {name:?}"),
        });
    }
    if !is_sealing {
        // An approve-only (U2F) key guards codes and exports by policy alone: without its
        // approval, removing it would lift the guard for whoever asked.
        let approvers: Vec<EnrolledKey> = vault
            .enrolled_keys()
            .iter()
            .filter(|k| k.kind == KeyKind::Approve)
            .cloned()
            .collect();
        unlock::approve(&approvers, prompter, &format!("remove the key {name}"))?;
        vault.remove_key(name)?;
        return Ok(Response::Done {
            message: format!("removed security key {name:?}"),
        });
    }
    // A copy of the index (a backup, a synced dotfile) still holds the data key wrapped for
    // the removed key: re-key, so that it opens nothing current.
    let remaining: Vec<EnrolledKey> = vault
        .enrolled_keys()
        .iter()
        .filter(|k| k.name != name)
        .cloned()
        .collect();
    let plan = unlock::plan_rekey(
        &remaining,
        None,
        prompter,
        &format!("re-key the vault without {name}"),
    )?;
    let resealed = vault.rekey(plan.old, &plan.new, plan.keys)?;
    Ok(Response::Done {
        message: format!(
            "removed security key {name:?}; re-keyed the vault ({resealed} secret(s) sealed again under a new data key): the removed key opens nothing current, even with an old copy of the index"
        ),
    })
}
