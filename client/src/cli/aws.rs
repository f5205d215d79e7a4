//! `mfa-agent aws ...`: virtual MFA devices in IAM, set up and taken down from the command
//! line. The agent makes the IAM calls (it holds the keys, and takes the seed straight into
//! the vault); this client edits `~/.aws/config` when asked to.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::{Agent, input};
use crate::aws::config_edit;
use crate::protocol::{
    AwsDevices, AwsEnroll, AwsResync, AwsUnenroll, MfaDeviceListing, MfaEnrolment,
};

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create a virtual MFA device for the IAM user of PROFILE's long-term keys, put its
    /// seed in the vault (never shown), and enable it with two consecutive codes.
    Enroll {
        /// The profile of the IAM user that gets the device (its keys call IAM).
        #[arg(long)]
        profile: String,
        /// The device's name in IAM (default: USER-mfa-agent).
        #[arg(long)]
        device_name: Option<String>,
        /// The IAM user (default: the one the keys belong to).
        #[arg(long)]
        user: Option<String>,
        /// The seed's name in the vault (default: the profile's name).
        #[arg(long)]
        seed: Option<String>,
        /// Set `mfa_serial` in the profile in ~/.aws/config without asking.
        #[arg(long)]
        write_config: bool,
    },
    /// Resynchronise the profile's MFA device with two consecutive codes from its seed.
    Resync {
        /// The profile whose mfa_serial names the device.
        #[arg(long)]
        profile: String,
    },
    /// Deactivate and delete the profile's virtual MFA device (with an MFA session, as
    /// policies demand), then remove its seed from the vault.
    Unenroll {
        /// The profile whose mfa_serial names the device.
        #[arg(long)]
        profile: String,
        /// The IAM user (default: the one the profile's MFA session belongs to).
        #[arg(long)]
        user: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Remove `mfa_serial` from the profile in ~/.aws/config without asking.
        #[arg(long)]
        write_config: bool,
    },
    /// List the MFA devices of the profile's IAM user, and which of them the vault holds.
    Devices {
        /// The profile of the IAM user whose devices are listed.
        #[arg(long)]
        profile: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(cmd: AwsCommand, agent: &Agent) -> Result<ExitCode> {
    match cmd {
        AwsCommand::Enroll {
            profile,
            device_name,
            user,
            seed,
            write_config,
        } => {
            let MfaEnrolment { serial, message } = agent.call(AwsEnroll {
                profile: profile.clone(),
                device_name,
                user,
                seed,
            })?;
            eprintln!("{message}");
            println!("{serial}");
            set_mfa_serial(&profile, &serial, write_config)?;
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Resync { profile } => agent.change(AwsResync { profile }),
        AwsCommand::Unenroll {
            profile,
            user,
            yes,
            write_config,
        } => {
            let code = agent.change(AwsUnenroll {
                profile: profile.clone(),
                user,
                yes,
            })?;
            remove_mfa_serial(&profile, write_config || yes)?;
            Ok(code)
        }
        AwsCommand::Devices { profile, json } => {
            let MfaDeviceListing { user, devices } = agent.call(AwsDevices { profile })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else if devices.is_empty() {
                eprintln!("IAM user {user} has no MFA device");
            } else {
                for device in devices {
                    println!(
                        "{}  enabled {}  {}",
                        device.serial,
                        crate::sys::local_date_time(device.enabled),
                        device.seed.map_or_else(
                            || "not in the vault (a phone, a token, or another machine)".to_owned(),
                            |seed| format!("in the vault as {seed}")
                        )
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Takes the `mfa_serial` of a device that is gone out of the profile (what `aws enroll`
/// put there), with `--write-config` or `--yes`, or after a yes at the terminal; otherwise
/// says what to remove. Nothing is said when the profile has none of its own.
fn remove_mfa_serial(profile: &str, without_asking: bool) -> Result<()> {
    let path = config_edit::config_path()?;
    let has_one = std::fs::read_to_string(&path).is_ok_and(|text| {
        crate::aws::shared_file::Document::parse(&text, crate::aws::shared_file::FileKind::Config)
            .ok()
            .and_then(|doc| {
                let section = doc.section_of(profile)?;
                doc.setting(section, "mfa_serial").map(|_| ())
            })
            .is_some()
    });
    if !has_one {
        return Ok(());
    }
    let asked = || {
        input::confirm(&format!(
            "Remove mfa_serial from [profile {profile}] of {}? Its device is gone.",
            path.display()
        ))
    };
    if !without_asking && asked()? != Some(true) {
        eprintln!(
            "remove `mfa_serial` from [profile {profile}] in {} (its device is gone), or run with --write-config",
            path.display()
        );
        return Ok(());
    }
    config_edit::remove(&path, profile, "mfa_serial").with_context(|| {
        format!(
            "the device is gone, but editing {} failed: remove `mfa_serial` from [profile {profile}] by hand",
            path.display()
        )
    })?;
    eprintln!(
        "removed mfa_serial from [profile {profile}] of {} (the file as it was: {}.bak)",
        path.display(),
        path.display()
    );
    Ok(())
}

/// Puts `mfa_serial` in the profile, with `--write-config` or after a yes at the terminal;
/// otherwise says what to add.
fn set_mfa_serial(profile: &str, serial: &str, write_config: bool) -> Result<()> {
    let path = config_edit::config_path()?;
    let asked = || {
        input::confirm(&format!(
            "Set mfa_serial = {serial} in [profile {profile}] of {}?",
            path.display()
        ))
    };
    if !write_config && asked()? != Some(true) {
        eprintln!(
            "to use it, add `mfa_serial = {serial}` to [profile {profile}] in {} (or enrol with --write-config)",
            path.display()
        );
        return Ok(());
    }
    let backup = config_edit::set(&path, profile, "mfa_serial", serial).with_context(|| {
        format!(
            "the device is enrolled, but editing {} failed: add `mfa_serial = {serial}` to [profile {profile}] by hand",
            path.display()
        )
    })?;
    eprintln!(
        "set mfa_serial in [profile {profile}] of {}{}",
        path.display(),
        backup.map_or_else(String::new, |b| format!(
            " (the file as it was: {})",
            b.display()
        ))
    );
    Ok(())
}
