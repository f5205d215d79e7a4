//! Seeds: list, add, remove and export, carried out by the agent (the only reader of the
//! vault). The client reads the seed from where the user gave it and sends it here.

use anyhow::bail;

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use crate::otp::{self, Seed, migration, uri};
use crate::protocol::{Response, SeedAdd, SeedListing, SeedMaterial, StoreKind};

pub(super) async fn list(minter: &Minter, visitor: &Visitor) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, |vault, _| {
            let seeds = vault
                .seeds()
                .map(|(name, info)| info.listed_as(name))
                .collect();
            Ok(Response::Seeds(SeedListing {
                store: vault.store_kind(),
                seeds,
            }))
        })
        .await
}

pub(super) async fn add(
    minter: &Minter,
    visitor: &Visitor,
    request: SeedAdd,
) -> anyhow::Result<Response> {
    let SeedAdd {
        name,
        material,
        serial,
        store,
        replace,
    } = request;
    crate::vault::validate_name(&name)?;
    if replace && serial.is_none() {
        bail!(
            "--replace replaces the seed of an MFA device: give the device with --serial ARN; nothing was added"
        );
    }
    let seed = parse(material)?;
    minter
        .door
        .enter(visitor, Visit::Manage { new_in: store }, move |vault, _| {
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
                    let e = crate::report::what_happened(&e);
                    anyhow::anyhow!("added seed {name:?} for {serial}, but the old seed {old:?} is still stored ({e}); remove it with `mfa-agent seed remove {old}`")
                })?;
            } else {
                vault.add(&name, &seed, serial.clone())?;
            }
            let store = vault.store_description()?;
            let replaced = old.map(|old| format!(", replacing seed {old:?}")).unwrap_or_default();
            Ok(Response::Done {
                message: format!(
                    "added seed {name:?} to the {store}{replaced}{}",
                    short_note(&seed)
                ),
            })
        })
        .await
}

/// `seed import`: every seed in `text` (an otpauth:// URI per line, or Google
/// Authenticator export links), each named after its account. Everything is decoded before
/// anything is stored: a line that fails stores nothing. A name already in the vault is
/// reported and never overwritten.
pub(super) async fn import(
    minter: &Minter,
    visitor: &Visitor,
    text: &crate::secret::SecretString,
    store: Option<StoreKind>,
) -> anyhow::Result<Response> {
    let mut seeds = Vec::new();
    let mut report = Vec::new();
    for (number, line) in text.expose().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = if migration::is_migration(line) {
            migration::parse(line).map_err(anyhow::Error::from)
        } else {
            uri::parse(line)
                .map(|seed| migration::Export {
                    seeds: vec![seed],
                    skipped: Vec::new(),
                })
                .map_err(anyhow::Error::from)
        };
        match parsed {
            Ok(found) => {
                seeds.extend(found.seeds);
                report.extend(found.skipped.iter().map(|e| format!("skipped {e}")));
            }
            Err(e) => bail!("line {}: {e}; nothing was imported", number + 1),
        }
    }
    if seeds.is_empty() {
        bail!("no otpauth:// URI or otpauth-migration:// link found; nothing was imported");
    }
    minter
        .door
        .enter(visitor, Visit::Manage { new_in: store }, move |vault, _| {
            for (i, seed) in seeds.iter().enumerate() {
                let name = import_name(seed, i);
                let label = format!(
                    "{name} (issuer {}, account {})",
                    seed.issuer.as_deref().unwrap_or("none"),
                    seed.account.as_deref().unwrap_or("none")
                );
                if vault.info(&name).is_ok() {
                    report.push(format!(
                        "skipped {label}: a seed of that name exists (never overwritten)"
                    ));
                    continue;
                }
                vault.add(&name, seed, None)?;
                report.push(format!("added {label}{}", short_note(seed)));
            }
            let store = vault.store_description()?;
            Ok(Response::Done {
                message: format!("{} into the {store}", report.join("; ")),
            })
        })
        .await
}

/// A word about a secret shorter than RFC 4226's 128 bits (80-bit secrets are common on
/// older sites, and authenticator apps take them): its codes work, but it is weaker.
fn short_note(seed: &Seed) -> String {
    if seed.secret.len() < crate::otp::MIN_SECRET_BYTES {
        format!(
            " (note: its secret is only {} bits, under the 128 RFC 4226 asks for; its codes work, but if the site offers a new secret, take it)",
            seed.secret.len() * 8
        )
    } else {
        String::new()
    }
}

/// A seed name from an imported account ("alice@123456789012" -> itself, spaces and other
/// characters a name cannot hold -> "-"), else from its issuer, else "imported-N".
fn import_name(seed: &Seed, index: usize) -> String {
    let source = seed
        .account
        .as_deref()
        .or(seed.issuer.as_deref())
        .unwrap_or("");
    let name: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(64)
        .collect();
    if crate::vault::validate_name(&name).is_ok() {
        name
    } else {
        format!("imported-{}", index + 1)
    }
}

/// `seed recover`: works on the index files themselves (the vault cannot open on a
/// damaged index), under the vault's lock.
pub(super) async fn recover(minter: &Minter) -> anyhow::Result<Response> {
    let data_dir = minter.door.data_dir().to_path_buf();
    let message =
        tokio::task::spawn_blocking(move || crate::vault::recover_index(&data_dir)).await??;
    Ok(Response::Done { message })
}

/// `seed rename`: the secret is stored under the new name before the old one goes (a
/// sealed seed is sealed to its name, so it is opened and sealed again: one touch).
pub(super) async fn rename(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    new_name: String,
) -> anyhow::Result<Response> {
    crate::vault::validate_name(&new_name)?;
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            let serial = vault.info(&name)?.serial.clone();
            let seed = vault.seed(&name)?;
            vault.add(&new_name, &seed, None)?;
            if let Some(serial) = &serial {
                vault.link(&new_name, serial)?;
            }
            vault.remove(&name).map_err(|e| {
                let e = crate::report::what_happened(&e);
                anyhow::anyhow!("seed {new_name:?} was stored, but the old name {name:?} is still there ({e}); remove it with `mfa-agent seed remove {name}`")
            })?;
            Ok(Response::Done {
                message: format!("renamed seed {name:?} to {new_name:?}"),
            })
        })
        .await
}

pub(super) async fn link(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    serial: String,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
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
            if migration::is_migration(text) {
                let mut export = migration::parse(text)?;
                let accounts = export.seeds.len() + export.skipped.len();
                if accounts > 1 {
                    bail!(
                        "that Google Authenticator export holds {accounts} accounts; nothing was added: import them all with `mfa-agent seed import -`"
                    );
                }
                return Ok(export.seeds.remove(0));
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

pub(super) async fn remove(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    yes: bool,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, prompter| {
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

pub(super) async fn export(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            let seed = vault.seed(&name)?;
            Ok(Response::SeedUri {
                uri: uri::format(&seed, &name),
            })
        })
        .await
}
