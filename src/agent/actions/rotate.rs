//! `mfa-agent creds rotate PROFILE`: a new access key for the profile's IAM user, in the
//! order that never leaves the vault without a working key:
//!
//! 1. CreateAccessKey (with the profile's MFA session: MFA-only policies require one);
//! 2. the new key into the vault, replacing the old;
//! 3. proof that it works (GetCallerIdentity), retried while IAM propagates it;
//! 4. only then DeleteAccessKey of the old one.
//!
//! A failure at 2 or 3 puts the old key back and deletes the new one; at 4 the vault holds
//! the new, proven key, and the error names the old one left in AWS.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use crate::aws::iam;
use crate::aws::{LongTermKeys, sts};
use crate::protocol::{Response, mask};

const RETRY_EVERY: Duration = Duration::from_secs(2);

pub(super) async fn rotate(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    let profiles = visitor.progress.context().profiles().await?;
    let plan = profiles.plan(&profile)?;
    let source = plan.source_profile.clone();
    let region = visitor.progress.context().region(plan.region.as_deref());
    let old = vault_keys(minter, visitor, &source).await?;
    let iam = visitor.progress.context().iam()?;
    let arn = visitor
        .progress
        .context()
        .sts()?
        .caller_arn(sts::long_term_credentials(&old), region)
        .await
        .context("the vault's keys do not work; nothing was changed")?;
    let user = iam::user_of_arn(&arn)
        .with_context(|| format!("the keys of profile {source:?} belong to {arn}, not to an IAM user; nothing was changed"))?
        .to_owned();
    // MFA-only policies allow managing one's own keys from an MFA session only.
    let session = super::credentials::session(minter, &source, false, &visitor.progress)
        .await
        .context(
            "rotating keys needs an MFA session, and getting one failed; nothing was changed",
        )?;
    let signed = sts::signing_credentials(&session);
    let existing = iam.access_keys(signed.clone(), region, &user).await?;
    if existing.len() >= 2 {
        bail!(
            "IAM user {user} has two access keys already ({}), the most AWS allows; delete the one that is not {} first (`aws iam delete-access-key --user-name {user} --access-key-id ID`); nothing was changed",
            existing.join(", "),
            old.access_key_id
        );
    }
    let new = iam
        .create_access_key(signed.clone(), region, &user)
        .await
        .map_err(|e| anyhow!("{e}; nothing was changed"))?;
    let (new_id, old_id) = (new.access_key_id.clone(), old.access_key_id.clone());
    // Steps 2 and 3; a failure undoes them and 1: the old key back, the new one deleted.
    let failed = match store(minter, visitor, &source, new.clone()).await {
        Err(e) => Some(crate::report::sentence(e.as_ref())),
        Ok(()) => prove(visitor, &new, region, minter.config().env.propagation_wait)
            .await
            .err()
            .map(|e| e.to_string()),
    };
    if let Some(why) = failed {
        let restored = store(minter, visitor, &source, old.clone()).await;
        let deleted = iam
            .delete_access_key(signed.clone(), region, &user, &new_id)
            .await;
        let vault = match restored {
            Ok(()) => format!("the vault holds the old key {} again", mask(&old_id)),
            Err(e) => format!(
                "putting the old key back in the vault failed too ({}): add it again with `mfa-agent creds add {source} --replace`",
                crate::report::sentence(e.as_ref())
            ),
        };
        let aws = match deleted {
            Ok(()) => format!("the new key {new_id} was deleted in AWS"),
            Err(e) => format!(
                "the new key {new_id} is left in AWS ({e}): delete it with `aws iam delete-access-key --user-name {user} --access-key-id {new_id}`"
            ),
        };
        bail!("key rotation failed: {why}; {vault}; {aws}");
    }
    if let Err(e) = iam.delete_access_key(signed, region, &user, &old_id).await {
        bail!(
            "the vault holds the new key {} (it works), but deleting the old key {old_id} failed ({e}): delete it with `aws iam delete-access-key --user-name {user} --access-key-id {old_id}`",
            mask(&new_id)
        );
    }
    Ok(Response::Done {
        message: format!(
            "rotated the access key of IAM user {user} (profile {source:?}): the vault holds the new key {}, which works; the old key {} is deleted in AWS",
            mask(&new_id),
            mask(&old_id)
        ),
    })
}

/// The profile's long-term keys, which must be in the vault: rotation replaces them there.
async fn vault_keys(
    minter: &Minter,
    visitor: &Visitor,
    profile: &str,
) -> anyhow::Result<LongTermKeys> {
    let wanted = profile.to_owned();
    let keys = minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            Ok(vault.credentials(&wanted)?)
        })
        .await?;
    keys.with_context(|| {
        format!(
            "the vault holds no keys for profile {profile:?}: rotation replaces them there; move them in first with `mfa-agent creds import {profile}` (or `creds add`)"
        )
    })
}

async fn store(
    minter: &Minter,
    visitor: &Visitor,
    profile: &str,
    keys: LongTermKeys,
) -> anyhow::Result<()> {
    let profile = profile.to_owned();
    minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            Ok(vault.add_credentials(&profile, &keys, true)?)
        })
        .await
}

/// Waits until the new key works (GetCallerIdentity), for up to `wait`: IAM is eventually
/// consistent, and a new key usually works within seconds.
async fn prove(
    visitor: &Visitor,
    keys: &LongTermKeys,
    region: Option<&str>,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match visitor
            .progress
            .context()
            .sts()?
            .caller_arn(sts::long_term_credentials(keys), region)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() + RETRY_EVERY > deadline => {
                bail!("the new key did not work within {} s ({e})", wait.as_secs())
            }
            Err(_) => {
                if !told {
                    let _ = visitor.progress.send(super::super::Prompt::Tell(
                        "waiting for IAM to make the new key valid (it takes a few seconds)".into(),
                    ));
                    told = true;
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}
