//! Long-term AWS keys in the vault: list, add, remove and rotate, carried out by the agent.

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use crate::aws::LongTermKeys;
use crate::protocol::{CredsEntry, ExportedKeys, Response, StoreKind, mask};

pub(super) async fn list(minter: &Minter, visitor: &Visitor) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, |vault, _| {
            let entries = vault
                .credential_list()
                .map(|(profile, info)| CredsEntry {
                    profile: profile.to_owned(),
                    access_key: mask(&info.access_key_id),
                })
                .collect();
            Ok(Response::Creds { entries })
        })
        .await
}

pub(super) async fn add(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
    keys: LongTermKeys,
    replace: bool,
    store: Option<StoreKind>,
) -> anyhow::Result<Response> {
    keys.validate()?;
    minter
        .door
        .enter(visitor, Visit::Manage { new_in: store }, move |vault, _| {
            vault.add_credentials(&profile, &keys, replace)?;
            Ok(Response::Done {
                message: format!(
                    "stored keys {} for profile {profile:?} in the {}",
                    mask(&keys.access_key_id),
                    vault.store_description()?
                ),
            })
        })
        .await
}

/// The keys of `profile`, opened as any use of them is (a touch where they are sealed).
pub(super) async fn export(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            let keys = vault
                .credentials(&profile)?
                .ok_or(crate::vault::VaultError::UnknownCredentials { profile })?;
            Ok(Response::LongTermKeys(ExportedKeys {
                access_key_id: keys.access_key_id,
                secret_access_key: keys.secret_access_key,
            }))
        })
        .await
}

pub(super) async fn remove(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
    yes: bool,
) -> anyhow::Result<Response> {
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, prompter| {
            if vault.credential_list().all(|(p, _)| p != profile) {
                return Err(crate::vault::VaultError::UnknownCredentials { profile }.into());
            }
            if !yes {
                prompter.confirm(&format!(
                    "Delete the long-term keys of profile {profile:?} from the vault?"
                ))?;
            }
            vault.remove_credentials(&profile)?;
            Ok(Response::Done {
                message: format!("removed the keys of profile {profile:?}"),
            })
        })
        .await
}
