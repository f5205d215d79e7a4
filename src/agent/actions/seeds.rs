//! Seeds: list, add, remove and export, carried out by the agent (the only reader of the
//! vault). The client reads the seed from where the user gave it and sends it here.

use anyhow::bail;

use super::super::door::Visitor;
use super::super::minter::Minter;
use crate::otp::{self, Seed, uri};
use crate::protocol::{ListedSeed, Response, SeedMaterial};
use crate::vault::StoreKind;

pub async fn list(minter: &Minter, visitor: &Visitor) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, false, None, |vault, _| {
            let seeds = vault
                .seeds()
                .map(|(name, info)| ListedSeed {
                    name: name.to_owned(),
                    info: info.clone(),
                })
                .collect();
            Ok(Response::Seeds {
                store: vault.store_kind(),
                seeds,
            })
        })
        .await
}

/// A seed to add, as the user gave it.
pub struct NewSeed {
    pub name: String,
    pub material: SeedMaterial,
    pub serial: Option<String>,
    /// Replaces the seed linked to `serial` (a re-created MFA device).
    pub replace: bool,
}

pub async fn add(
    minter: &Minter,
    visitor: &Visitor,
    new: NewSeed,
    store: Option<StoreKind>,
) -> anyhow::Result<Response> {
    let NewSeed {
        name,
        material,
        serial,
        replace,
    } = new;
    crate::vault::validate_name(&name)?;
    if replace && serial.is_none() {
        bail!(
            "--replace replaces the seed of an MFA device: give the device with --serial ARN; nothing was added"
        );
    }
    let seed = parse(material)?;
    minter
        .door
        .enter(visitor, false, store, move |vault, _| {
            // The new seed is stored before the old one goes: a failure in between leaves
            // both, never neither.
            let old = match &serial {
                Some(serial) if replace => crate::vault::seed_for_serial(vault.seeds(), serial)
                    .first()
                    .map(|s| (*s).to_owned()),
                _ => None,
            };
            if let (Some(old), Some(serial)) = (&old, &serial) {
                vault.add(&name, &seed, None)?;
                vault.link(&name, serial)?;
                vault.remove(old).map_err(|e| {
                    anyhow::anyhow!("added seed {name:?} for {serial}, but the old seed {old:?} is still stored ({e}); remove it with `mfa-agent seed remove {old}`")
                })?;
            } else {
                vault.add(&name, &seed, serial.clone())?;
            }
            let store = vault.store_description()?;
            let replaced = old.map(|old| format!(", replacing seed {old:?}")).unwrap_or_default();
            Ok(Response::Done {
                message: format!("added seed {name:?} to the {store}{replaced}"),
            })
        })
        .await
}

/// `seed recover`: works on the index files themselves (the vault cannot open on a
/// damaged index), under the vault's lock.
pub async fn recover(minter: &Minter) -> anyhow::Result<Response> {
    let data_dir = minter.door.data_dir().to_path_buf();
    let message =
        tokio::task::spawn_blocking(move || crate::vault::recover_index(&data_dir)).await??;
    Ok(Response::Done { message })
}

pub async fn link(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    serial: String,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, false, None, move |vault, _| {
            vault.link(&name, &serial)?;
            Ok(Response::Done {
                message: format!("the MFA device {serial} now takes its codes from seed {name:?}"),
            })
        })
        .await
}

/// The seed in what the user gave, with a hint when it went to the wrong flag.
fn parse(material: SeedMaterial) -> anyhow::Result<Seed> {
    match material {
        SeedMaterial::Uri { text } => {
            let text = text.expose().trim();
            if !text.contains("://") && otp::decode_base32(text).is_ok() {
                bail!("that is a base32 secret, not an otpauth:// URI: did you mean --secret -?");
            }
            Ok(uri::parse(text)?)
        }
        SeedMaterial::Base32 { text } => {
            let text = text.expose().trim();
            if text.starts_with("otpauth") {
                bail!("that is an otpauth:// URI, not a base32 secret: did you mean --uri -?");
            }
            Ok(Seed::from_secret(otp::decode_base32(text)?)?)
        }
    }
}

pub async fn remove(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    yes: bool,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, false, None, move |vault, prompter| {
            vault.info(&name)?;
            if !yes {
                prompter.confirm(&format!(
                    "Remove seed {name:?}? Its codes cannot be generated afterwards unless you have a backup."
                ))?;
            }
            vault.remove(&name)?;
            Ok(Response::Done {
                message: format!("removed seed {name:?}"),
            })
        })
        .await
}

pub async fn export(minter: &Minter, visitor: &Visitor, name: String) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, false, None, move |vault, _| {
            let seed = vault.seed(&name)?;
            Ok(Response::SeedUri {
                uri: uri::format(&seed, &name),
            })
        })
        .await
}
