//! Checks of the AWS profiles that get their credentials from mfa-agent: each must resolve
//! to a plan the agent can mint (AWS's limits, no loops), with a seed for its MFA device and
//! long-term keys for its source profile.

use std::collections::BTreeSet;

use super::Finding;
use crate::aws::profile::{CHAINED_ROLE_MAX_DURATION, ProfilePlan, Profiles, agent_profile};
use crate::config::Config;
use crate::vault::{self, Index};

/// The findings, and the region of the first profile (where the clock check asks STS).
pub(super) async fn check(
    config: &Config,
    vault: Option<&Index>,
) -> (Vec<Finding>, Option<String>) {
    let profiles = match Profiles::load().await {
        Ok(profiles) => profiles,
        Err(e) => {
            let fix = "fix ~/.aws/config (or the file AWS_CONFIG_FILE names)";
            return (
                vec![Finding::fail(
                    "aws config",
                    crate::report::what_happened(&e),
                    fix,
                )],
                None,
            );
        }
    };
    // (the profile with the credential_process line, the profile it names)
    let referrers: Vec<(&str, &str)> = profiles
        .names()
        .filter_map(|name| {
            let command = profiles.get(name, "credential_process")?;
            Some((name, agent_profile(command)?))
        })
        .collect();
    let targets: BTreeSet<&str> = referrers.iter().map(|(_, target)| *target).collect();
    if targets.is_empty() {
        let finding = Finding::warn(
            "profiles",
            "no profile in ~/.aws/config gets its credentials from mfa-agent",
            "add `credential_process = mfa-agent credential-process --profile NAME` to a profile (README, Quickstart step 4)",
        );
        return (vec![finding], None);
    }
    let mut region = None;
    let mut findings: Vec<Finding> = targets
        .into_iter()
        .map(|target| match profiles.plan(target) {
            Ok(plan) => {
                region = region.take().or_else(|| plan.region.clone());
                check_plan(&plan, &profiles, config, vault)
            }
            Err(e) => {
                let named_by: Vec<&str> = referrers
                    .iter()
                    .filter(|(_, t)| *t == target)
                    .map(|(referrer, _)| *referrer)
                    .collect();
                Finding::fail(
                    format!("profile {target}"),
                    format!(
                        "{e} (named by the credential_process of {})",
                        named_by.join(", ")
                    ),
                    "edit ~/.aws/config as the message says",
                )
            }
        })
        .collect();
    // The AWS CLI takes the region from the profile it is given, not the one minted for.
    for (referrer, _) in &referrers {
        if profiles.get(referrer, "region").is_none() {
            findings.push(Finding::warn(
                format!("profile {referrer}"),
                "has a credential_process but no region: `aws --profile ...` will say \"You must specify a region\"",
                format!("add `region = ...` to [profile {referrer}] in ~/.aws/config (or set AWS_REGION)"),
            ));
        }
    }
    (findings, region)
}

fn check_plan(
    plan: &ProfilePlan,
    profiles: &Profiles,
    config: &Config,
    vault: Option<&Index>,
) -> Finding {
    let check = format!("profile {}", plan.profile);
    let serial = plan.mfa_serial.as_str();
    let seeds: Vec<&str> = vault.map_or_else(Vec::new, |v| match config.serials.get(serial) {
        Some(name) => v
            .seed_list()
            .filter(|(n, _)| n == name)
            .map(|(n, _)| n)
            .collect(),
        None => vault::seed_for_serial(v.seed_list(), serial),
    });
    // A seed linked to a serial one character away: most likely a typo in mfa_serial,
    // which would have the user type codes the vault could give.
    let near = if seeds.is_empty() {
        vault.and_then(|v| {
            let serials: Vec<&str> = v
                .seed_list()
                .filter_map(|(_, info)| info.serial.as_deref())
                .collect();
            crate::suggest::closest(serial, serials.iter().copied())
                .filter(|other| strsim::levenshtein(serial, other) <= 2)
        })
    } else {
        None
    };
    if let Some(other) = near {
        return Finding::warn(
            check,
            format!(
                "its mfa_serial {serial} has no seed, but the vault holds one for {other}, which differs by a character or two"
            ),
            format!(
                "if that is a typo, correct mfa_serial in [profile {}] of ~/.aws/config (`mfa-agent seed list` shows the serials)",
                plan.profile
            ),
        );
    }
    let codes = match seeds.as_slice() {
        _ if config.typed_codes(serial, !seeds.is_empty()) => {
            "codes typed by you (a token or phone app; the vault holds no seed for it)".to_owned()
        }
        [one] => format!("seed {one}"),
        [] => {
            return Finding::fail(
                check,
                format!("no seed for its MFA device {serial}, and [code_source] says it has one"),
                format!(
                    "`mfa-agent seed add NAME --qr qr.png --serial {serial}` (or name an existing seed in config.toml: [serials] \"{serial}\" = \"NAME\")"
                ),
            );
        }
        many => {
            return Finding::fail(
                check,
                format!("several seeds for {serial}: {}", many.join(", ")),
                format!("pick one in config.toml: [serials] \"{serial}\" = \"NAME\""),
            );
        }
    };
    let source = plan.source_profile.as_str();
    let in_vault = vault.is_some_and(|v| v.credential_list().any(|(name, _)| name == source));
    let keys = if in_vault {
        "the vault"
    } else if profiles.static_keys(source).is_some() {
        "the AWS credentials files"
    } else {
        return Finding::fail(
            check,
            format!("no long-term keys for its source profile {source:?}"),
            format!(
                "`mfa-agent creds add {source}` (or `mfa-agent creds import {source}` from ~/.aws/credentials)"
            ),
        );
    };
    let mut detail = format!("MFA device {serial} -> {codes}; keys of {source} from {keys}");
    if let Some(role) = &plan.role {
        let hops: Vec<&str> = plan.via.iter().map(|hop| hop.role.arn.as_str()).collect();
        detail = format!("{detail}; assumes {}", role.arn);
        if !hops.is_empty() {
            detail = format!("{detail} (via {})", hops.join(", then "));
        }
        let direct = config.profile(&plan.profile).assume_role_with_mfa;
        if let Some(asked) = role
            .duration
            .filter(|d| *d > CHAINED_ROLE_MAX_DURATION && !direct)
        {
            return Finding::warn(
                check,
                format!(
                    "{detail}; duration_seconds = {asked}, but AWS caps a role assumed from an MFA session at {CHAINED_ROLE_MAX_DURATION} s"
                ),
                format!(
                    "accept 1 h sessions, or set [profiles.{}] assume_role_with_mfa = true in config.toml (one MFA code per role)",
                    plan.profile
                ),
            );
        }
    }
    Finding::ok(check, detail)
}

#[cfg(test)]
mod tests {
    use crate::aws::profile::agent_profile;

    #[test]
    fn finds_the_profile_of_a_credential_process_command() {
        let cases = [
            ("mfa-agent credential-process --profile work", Some("work")),
            (
                "/usr/bin/mfa-agent -v credential-process --profile=prod --refresh",
                Some("prod"),
            ),
            ("mfa-agent credential-process", None),
            ("aws-vault export --format=json work", None),
            ("mfa-agent code --profile work", None),
        ];
        for (command, expected) in cases {
            assert_eq!(agent_profile(command), expected, "{command}");
        }
    }
}
