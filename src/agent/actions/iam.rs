//! `mfa-agent aws ...`: virtual MFA devices in IAM, whose seeds go straight from AWS into
//! the vault, never shown and never written in clear.
//!
//! Enrolment is CreateVirtualMFADevice (allowed without MFA by the usual self-service
//! policies), the seed into the vault linked to the new serial, then EnableMFADevice with
//! two consecutive codes. A failure after the create undoes what was done, in AWS and in
//! the vault, or says exactly what is left and how to remove it.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use super::super::replay::Use;
use crate::aws::http::TransportError;
use crate::aws::iam::{self, Iam};
use crate::aws::profile::Profiles;
use crate::aws::{LongTermKeys, sts};
use crate::clock::unix_now;
use crate::otp::{self, Seed};
use crate::protocol::{AwsEnroll, MfaDevice, MfaDeviceListing, MfaEnrolment, Response};
use crate::vault;

/// Below this much time left in a code's window, the pair of codes waits for the next
/// window: AWS must still find both current (or one step back) when it reads them.
const MIN_WINDOW_LEFT: u64 = 5;

pub(super) async fn enroll(
    minter: &Minter,
    visitor: &Visitor,
    request: AwsEnroll,
) -> anyhow::Result<Response> {
    let AwsEnroll {
        profile,
        device_name,
        user,
        seed,
    } = request;
    let seed_name = seed.unwrap_or_else(|| profile.clone());
    vault::validate_name(&seed_name)?;
    let profiles = visitor.progress.context().profiles().await?;
    let region = visitor
        .progress
        .context()
        .region(profiles.get(&profile, "region"));
    let for_profile = Visit::UseFor(&profile);
    let keys = long_term_keys(
        minter,
        (visitor, for_profile),
        &profiles,
        &profile,
        Some(&seed_name),
    )
    .await?;
    let creds = sts::long_term_credentials(&keys);
    let user = match user {
        Some(user) => user,
        None => user_of_keys(visitor, &profile, creds.clone(), region).await?,
    };
    let device_name = device_name.unwrap_or_else(|| format!("{user}-mfa-agent"));
    let iam = iam_client(visitor)?;
    let device = iam
        .create_virtual_mfa_device(creds.clone(), region, &device_name)
        .await
        .map_err(|e| anyhow!("{e}; nothing was changed in AWS or in the vault"))?;
    let serial = device.serial.clone();
    // From here on a failure undoes the create.
    let undo = Undo {
        iam,
        creds: creds.clone(),
        region,
        serial: &serial,
    };
    let seed = otp::decode_base32(device.seed.expose())
        .map_err(anyhow::Error::from)
        .and_then(|secret| Ok(Seed::from_secret(secret)?));
    let seed = match seed {
        Ok(seed) => seed,
        Err(e) => {
            return Err(undo
                .device(&format!("IAM sent a seed that does not decode ({e})"))
                .await);
        }
    };
    let (stored, serial_for_vault) = (seed_name.clone(), serial.clone());
    let copy = Seed::from_secret(seed.secret.clone())?;
    let added = minter
        .door
        .enter(visitor, Visit::UseFor(&profile), move |vault, _| {
            Ok(vault.add(&stored, &copy, Some(serial_for_vault))?)
        })
        .await;
    if let Err(e) = added {
        return Err(undo.device(&crate::report::sentence(e.as_ref())).await);
    }
    let enabled = match consecutive_codes(minter, visitor, &seed, &serial).await {
        Ok((first, second)) => iam
            .enable(creds.clone(), region, &user, &serial, (&first, &second))
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = enabled {
        let vault_note = forget_seed(minter, visitor, &seed_name).await;
        return Err(undo
            .device(&format!(
                "{}{vault_note}",
                crate::report::sentence(e.as_ref())
            ))
            .await);
    }
    Ok(Response::MfaEnrolled(MfaEnrolment {
        message: format!(
            "enrolled the virtual MFA device {serial} for IAM user {user}: its seed is in the vault as {seed_name:?} (never shown), and AWS accepted two consecutive codes from it"
        ),
        serial,
    }))
}

/// Removes a device IAM created for an enrolment that went no further.
struct Undo<'a> {
    iam: &'a Iam,
    creds: aws_sdk_sts::config::Credentials,
    region: Option<&'a str>,
    serial: &'a str,
}

impl Undo<'_> {
    /// The error to report for `why`, after deleting the device (or saying how to).
    async fn device(&self, why: &str) -> anyhow::Error {
        match self
            .iam
            .delete(self.creds.clone(), self.region, self.serial)
            .await
        {
            Ok(()) => anyhow!(
                "enrolment failed: {why}; the new MFA device was deleted again, so nothing is left in AWS"
            ),
            Err(e) => anyhow!(
                "enrolment failed: {why}; the new MFA device {serial} is left in AWS, not enabled, because deleting it failed too ({e}): remove it with `aws iam delete-virtual-mfa-device --serial-number {serial}`",
                serial = self.serial
            ),
        }
    }
}

/// Drops the seed an enrolment stored; says what is left if that fails.
async fn forget_seed(minter: &Minter, visitor: &Visitor, name: &str) -> String {
    let name = name.to_owned();
    let shown = name.clone();
    let removed = minter
        .door
        .enter(visitor, Visit::MANAGE, move |vault, _| {
            Ok(vault.remove(&name)?)
        })
        .await;
    match removed {
        Ok(()) => String::new(),
        Err(e) => format!(
            "; its seed is left in the vault as {shown:?} ({}): remove it with `mfa-agent seed remove {shown}`",
            crate::report::sentence(e.as_ref())
        ),
    }
}

pub(super) async fn resync(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    let profiles = visitor.progress.context().profiles().await?;
    let plan = profiles.plan(&profile)?;
    let region = visitor.progress.context().region(plan.region.as_deref());
    let for_profile = Visit::UseFor(&profile);
    let keys = long_term_keys(
        minter,
        (visitor, for_profile),
        &profiles,
        &plan.source_profile,
        None,
    )
    .await?;
    let creds = sts::long_term_credentials(&keys);
    let user = user_of_keys(visitor, &plan.source_profile, creds.clone(), region).await?;
    let seed = seed_of(minter, (visitor, for_profile), &plan.mfa_serial).await?;
    let (first, second) = consecutive_codes(minter, visitor, &seed, &plan.mfa_serial).await?;
    iam_client(visitor)?
        .resync(creds, region, &user, &plan.mfa_serial, (&first, &second))
        .await?;
    Ok(Response::Done {
        message: format!(
            "resynchronised {} with two consecutive codes from the vault's seed",
            plan.mfa_serial
        ),
    })
}

pub(super) async fn unenroll(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
    user: Option<String>,
    yes: bool,
) -> anyhow::Result<Response> {
    let profiles = visitor.progress.context().profiles().await?;
    let plan = profiles.plan(&profile)?;
    let region = visitor.progress.context().region(plan.region.as_deref());
    let serial = plan.mfa_serial.clone();
    if !yes {
        let question = format!(
            "Deactivate and delete the MFA device {serial} in AWS, and remove its seed from the vault? Profiles that use it will need another MFA device."
        );
        minter
            .door
            .enter(visitor, Visit::MANAGE, move |_, prompter| {
                prompter.confirm(&question)
            })
            .await?;
    }
    // Policies allow deactivating an MFA device only from an MFA session: the agent's.
    let session = super::credentials::session(minter, &plan.source_profile, false, &visitor.progress)
        .await
        .context("deactivating an MFA device needs an MFA session, and getting one failed; nothing was changed")?;
    let signed = sts::signing_credentials(&session);
    let user = match user {
        Some(user) => user,
        None => user_of_keys(visitor, &plan.source_profile, signed.clone(), region).await?,
    };
    let iam = iam_client(visitor)?;
    iam.deactivate(signed.clone(), region, &user, &serial)
        .await
        .map_err(|e| anyhow!("{e}; nothing was changed"))?;
    if let Err(e) = iam.delete(signed, region, &serial).await {
        bail!(
            "deactivated {serial}, but deleting it failed ({e}): remove it with `aws iam delete-virtual-mfa-device --serial-number {serial}`; its seed is still in the vault"
        );
    }
    let seeds = minter
        .door
        .enter(visitor, Visit::MANAGE, {
            let serial = serial.clone();
            move |vault, _| {
                let linked: Vec<String> = vault::seed_for_serial(vault.seeds(), &serial)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                for name in &linked {
                    vault.remove(name)?;
                }
                Ok(linked)
            }
        })
        .await
        .with_context(|| format!("deactivated and deleted {serial} in AWS, but removing its seed from the vault failed; remove it with `mfa-agent seed remove NAME`"))?;
    Ok(Response::Done {
        message: format!(
            "deactivated and deleted the MFA device {serial} in AWS; removed {} from the vault; take `mfa_serial` out of the profiles that named it",
            if seeds.is_empty() {
                "no seed (none was linked to it)".to_owned()
            } else {
                format!("its seed {}", seeds.join(", "))
            }
        ),
    })
}

pub(super) async fn devices(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    let profiles = visitor.progress.context().profiles().await?;
    let region = visitor
        .progress
        .context()
        .region(profiles.get(&profile, "region"));
    let keys = long_term_keys(
        minter,
        (visitor, Visit::UseFor(&profile)),
        &profiles,
        &profile,
        None,
    )
    .await?;
    let creds = sts::long_term_credentials(&keys);
    let user = user_of_keys(visitor, &profile, creds.clone(), region).await?;
    let listed = iam_client(visitor)?.devices(creds, region, &user).await?;
    let held = minter
        .door
        .enter(visitor, Visit::MANAGE, |vault, _| {
            Ok(vault
                .seeds()
                .filter_map(|(name, info)| Some((info.serial.clone()?, name.to_owned())))
                .collect::<Vec<_>>())
        })
        .await?;
    let devices = listed
        .into_iter()
        .map(|(serial, enabled)| MfaDevice {
            seed: held
                .iter()
                .find(|(s, _)| *s == serial)
                .map(|(_, n)| n.clone()),
            serial,
            enabled,
        })
        .collect();
    Ok(Response::MfaDevices(MfaDeviceListing { user, devices }))
}

/// IAM as the caller reaches it.
fn iam_client(visitor: &Visitor) -> Result<&Iam, TransportError> {
    visitor.progress.context().iam()
}

/// The long-term keys of `profile`: the vault's, else the AWS files'. With `new_seed`, also
/// checks that no seed of that name exists yet, before anything changes in AWS.
async fn long_term_keys(
    minter: &Minter,
    (visitor, visit): (&Visitor, Visit<'_>),
    profiles: &Profiles,
    profile: &str,
    new_seed: Option<&str>,
) -> anyhow::Result<LongTermKeys> {
    let (wanted, seed) = (profile.to_owned(), new_seed.map(str::to_owned));
    let from_vault = minter
        .door
        .enter(visitor, visit, move |vault, _| {
            if let Some(seed) = &seed
                && vault.info(seed).is_ok()
            {
                bail!(
                    "the vault has a seed named {seed:?} already; name the new one with --seed (nothing was changed)"
                );
            }
            Ok(vault.credentials(&wanted)?)
        })
        .await?;
    from_vault
        .or_else(|| profiles.static_keys(profile))
        .with_context(|| {
            format!(
                "profile {profile:?} has no long-term keys (neither in the vault nor in ~/.aws/credentials): enrolment calls IAM with an IAM user's keys (`mfa-agent creds add {profile}`)"
            )
        })
}

/// The IAM user whose keys (or MFA session) `creds` are.
async fn user_of_keys(
    visitor: &Visitor,
    profile: &str,
    creds: aws_sdk_sts::config::Credentials,
    region: Option<&str>,
) -> anyhow::Result<String> {
    let arn = visitor
        .progress
        .context()
        .sts()?
        .caller_arn(creds, region)
        .await?;
    iam::user_of_arn(&arn).map(str::to_owned).with_context(|| {
        format!(
            "the keys of profile {profile:?} belong to {arn}, not to an IAM user: MFA devices are an IAM user's (pass --user to name one)"
        )
    })
}

/// The seed the vault holds for `serial`.
async fn seed_of(
    minter: &Minter,
    (visitor, visit): (&Visitor, Visit<'_>),
    serial: &str,
) -> anyhow::Result<Seed> {
    let serial = serial.to_owned();
    minter
        .door
        .enter(visitor, visit, move |vault, _| {
            let linked = vault::seed_for_serial(vault.seeds(), &serial);
            let [name] = linked.as_slice() else {
                bail!(
                    "the vault holds no single seed for {serial} (found {}); only a device whose seed the vault holds can be resynchronised from it",
                    linked.len()
                );
            };
            let name = (*name).to_owned();
            Ok(vault.seed(&name)?)
        })
        .await
}

/// Two consecutive codes of `seed`, the second of the current window, each claimed in the
/// replay guard so that no mint sends either again. Close to a window's end, or when the
/// current code was spent already, it waits (saying so) for a fresh pair.
async fn consecutive_codes(
    minter: &Minter,
    visitor: &Visitor,
    seed: &Seed,
    serial: &str,
) -> anyhow::Result<(String, String)> {
    let period = seed.params.period;
    let left = period - unix_now() % period;
    if left < MIN_WINDOW_LEFT {
        tell(
            visitor,
            &format!("waiting {left} s for the next code window: AWS checks two consecutive codes"),
        );
        tokio::time::sleep(Duration::from_secs(left)).await;
    }
    // Each step is claimed only once its window has begun (see `ReplayGuard::next_free`).
    let serials = vec![serial.to_owned()];
    let mut from = seed.params.step(unix_now()).saturating_sub(1);
    let (first, second) = loop {
        let first = minter.codes.replay_free(&serials, from);
        let second = minter.codes.replay_free(&serials, first + 1);
        if second != first + 1 {
            // A code shown for a later window (`code --next`) sits in between.
            from = second;
            continue;
        }
        let starts = second * period;
        let now = unix_now();
        if starts > now {
            tell(
                visitor,
                &format!(
                    "waiting {} s for a fresh pair of codes (the current one was used)",
                    starts - now
                ),
            );
            tokio::time::sleep(Duration::from_secs(starts - now)).await;
        }
        let claim = |step: u64| {
            minter
                .codes
                .claim_step(serials.clone(), step, step, Use::Send)
        };
        let got = (
            claim(first)
                .await
                .context("failed to save the replay guard")?,
            claim(second)
                .await
                .context("failed to save the replay guard")?,
        );
        if got == (Some(first), Some(second)) {
            break (first, second);
        }
        from = second + 1;
    };
    let code =
        |step: u64| otp::code_at(&seed.params, &seed.secret, step * period).map(|c| c.digits);
    Ok((code(first)?, code(second)?))
}

fn tell(visitor: &Visitor, message: &str) {
    let _ = visitor
        .progress
        .send(super::super::Prompt::Tell(message.to_owned()));
}
