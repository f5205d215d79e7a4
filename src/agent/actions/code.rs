//! `code`: a seed's code, handed out through the replay guard, so a mint in the same window
//! never sends it to AWS a second time.

use anyhow::Context as _;

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use super::super::replay::Use;
use crate::clock::unix_now;
use crate::otp;
use crate::protocol::{CodeReply, Response};

pub(super) async fn code(
    minter: &Minter,
    visitor: &Visitor,
    name: String,
    next: bool,
) -> anyhow::Result<Response> {
    let wanted = name.clone();
    let (name, seed, linked) = minter
        .door
        .enter(visitor, Visit::ShowCode, move |vault, _| {
            let name = seed_named(vault, wanted)?;
            let serial = vault.info(&name)?.serial.clone();
            Ok((name.clone(), vault.seed(&name)?, serial))
        })
        .await?;
    let serials = replay_keys(minter, &name, linked);
    let for_aws = serials.iter().any(|key| key.starts_with("arn:"));
    let now = unix_now();
    let from = seed.params.step(now) + u64::from(next);
    // The asked window or the one after: AWS takes a code from the next window too (it
    // allows a step of clock skew), and the client says when it starts.
    let step = minter
        .codes
        .claim_step(serials, from, from + 1, Use::Show)
        .await
        .context("failed to save the replay guard")?;
    let Some(step) = step else {
        let wait = (from + 1) * seed.params.period - now;
        anyhow::bail!(
            "the agent sent the codes of seed {name:?} for this window and the next to AWS already (AWS accepts each code once); wait {wait} s for a fresh one"
        );
    };
    let code = otp::code_at(&seed.params, &seed.secret, step * seed.params.period)?;
    Ok(Response::Code(CodeReply {
        name,
        digits: code.digits,
        valid_from: code.valid_from,
        valid_until: code.valid_until,
        period: seed.params.period,
        spent: step > from,
        for_aws,
    }))
}

/// The seed `wanted` names: a seed's name, or an MFA device's serial (ARN) linked to one.
fn seed_named(vault: &crate::vault::Vault, wanted: String) -> anyhow::Result<String> {
    if vault.info(&wanted).is_ok() || !wanted.starts_with("arn:") {
        return Ok(wanted);
    }
    match crate::vault::seed_for_serial(vault.seeds(), &wanted).as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => anyhow::bail!(
            "the vault holds no seed for the MFA device {wanted}: its codes come from your token or phone app, and mfa-agent asks you for one when a session needs it"
        ),
        several => anyhow::bail!(
            "several seeds are linked to {wanted} ({}); name one",
            several.join(", ")
        ),
    }
}

/// The MFA devices a seed's codes go to, as the replay guard knows them: the serial linked
/// at `seed add`, and any that config.toml's `[serials]` maps to the seed. A seed linked to
/// none still gets a guard of its own.
fn replay_keys(minter: &Minter, name: &str, linked: Option<String>) -> Vec<String> {
    let mut serials: Vec<String> = linked.into_iter().collect();
    for (serial, seed) in &minter.config().serials {
        if seed == name && !serials.contains(serial) {
            serials.push(serial.clone());
        }
    }
    if serials.is_empty() {
        serials.push(format!("seed {name}"));
    }
    serials
}
