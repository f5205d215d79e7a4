//! `mfa-agent adopt NAME`: move to mfa-agent without renaming a profile. The profile with
//! your long-term keys and MFA device keeps its name: its keys go into the vault, and it
//! gets its MFA session from the agent (`credential_process` on the profile itself, which
//! the agent reads as "this profile's keys and device"). Every role profile built on it
//! then works as before in the AWS CLI and SDKs, which assume the role themselves with that
//! session; an `mfa_serial` on such a role, which would make the SDK ask for a code, moves
//! to the adopted profile. `--undo` puts the keys and settings back.
//!
//! The client writes the user's files (it runs as the user, in the user's environment); the
//! agent only stores and hands out the keys. Order keeps everything recoverable: keys into
//! the vault first, then the record of what changes, then the config (its old text kept
//! as `config.bak`), then the credentials file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Agent, creds, input};
use crate::atomic;
use crate::aws::LongTermKeys;
use crate::aws::config_edit;
use crate::aws::shared_file::{self, Document, FileKind, Settings};
use crate::paths::Paths;
use crate::protocol::{CredsExport, CredsList, CredsRemove, ExportedKeys};
use crate::secret::SecretString;

#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// The profile with your long-term keys and MFA device (its name in ~/.aws/config).
    pub profile: String,
    /// Put back what `adopt` changed: the keys into the file they came from, the
    /// settings of the config as they were.
    #[arg(long)]
    pub undo: bool,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

/// Where the keys were before `adopt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KeysWereIn {
    CredentialsFile,
    ConfigFile,
    /// In the vault already (`creds add` or `creds import` earlier): they stay there.
    Vault,
}

/// What `adopt` changed, kept in the state directory for `--undo`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    config: PathBuf,
    credentials: PathBuf,
    keys_were_in: KeysWereIn,
    /// The device's serial was added to the profile (moved from its roles).
    serial_added: Option<String>,
    /// Role profiles whose `mfa_serial` was taken out.
    serials_removed: Vec<RemovedSerial>,
    /// The setting that followed the keys in their section, which they go back before.
    keys_before: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RemovedSerial {
    profile: String,
    serial: String,
    /// The setting that followed it, which it goes back before.
    before: Option<String>,
}

const KEY_NAMES: [&str; 2] = ["aws_access_key_id", "aws_secret_access_key"];

pub(super) fn run(args: &AdoptArgs, agent: &Agent, paths: &Paths) -> Result<ExitCode> {
    if args.undo {
        undo(&args.profile, args.yes, agent, paths)
    } else {
        adopt(&args.profile, args.yes, agent, paths)
    }
}

fn record_path(paths: &Paths, profile: &str) -> PathBuf {
    let name = percent_encoding::utf8_percent_encode(profile, percent_encoding::NON_ALPHANUMERIC);
    paths.state_dir.join("adopted").join(format!("{name}.json"))
}

fn read_or_empty(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// The command the adopted profile runs: this binary by its full path, so that programs
/// started without `~/.cargo/bin` in PATH (an IDE) find it too.
fn credential_process(profile: &str) -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "mfa-agent".into());
    let quoted = |s: &str| {
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
        {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    format!(
        "{} credential-process --profile {}",
        quoted(&exe),
        quoted(profile)
    )
}

/// A setting's value as the SDKs read it (its first line).
fn setting<'a>(settings: &Settings<'a>, section: &str, key: &str) -> Option<&'a str> {
    settings
        .get(section)?
        .get(key)
        .and_then(|v| v.first().copied())
        .filter(|v| !v.is_empty())
}

/// The profiles whose chain of `source_profile` reaches `profile`, nearest first.
fn roles_built_on(config: &Document, settings: &Settings, profile: &str) -> Vec<String> {
    let mut roles = Vec::new();
    for section in settings.keys() {
        let Some(name) = shared_file::profile_of(section, FileKind::Config) else {
            continue;
        };
        let mut current = name;
        for _ in 0..=crate::aws::MAX_CHAIN {
            if setting(settings, &config.section_name(current), "role_arn").is_none() {
                break;
            }
            match setting(settings, &config.section_name(current), "source_profile") {
                Some(source) if source == profile => {
                    roles.push(name.to_owned());
                    break;
                }
                Some(source) => current = source,
                None => break,
            }
        }
    }
    roles
}

/// The MFA device of `profile`: its own `mfa_serial`, else the one its roles name (which
/// then moves to it); and the roles whose `mfa_serial` for that device comes out.
struct Device {
    serial: String,
    added: Option<String>,
    removed_from: Vec<RemovedSerial>,
}

fn device_of(
    config_text: &str,
    config: &Document,
    settings: &Settings,
    profile: &str,
) -> Result<Device> {
    let section = config.section_name(profile);
    let roles = roles_built_on(config, settings, profile);
    let role_serials: Vec<(String, String)> = roles
        .iter()
        .filter_map(|role| {
            let serial = setting(settings, &config.section_name(role), "mfa_serial")?;
            Some((role.clone(), serial.to_owned()))
        })
        .collect();
    let (serial, added) = if let Some(serial) = setting(settings, &section, "mfa_serial") {
        (serial.to_owned(), None)
    } else {
        let distinct: BTreeSet<&str> = role_serials.iter().map(|(_, s)| s.as_str()).collect();
        match distinct.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => ((*one).to_owned(), Some((*one).to_owned())),
            [] => bail!(
                "profile {profile:?} names no MFA device, nor does any role built on it; add `mfa_serial = arn:aws:iam::ACCOUNT:mfa/NAME` to [{section}] and retry"
            ),
            several => bail!(
                "the roles built on {profile:?} name several MFA devices ({}); add the right `mfa_serial` to [{section}] and retry",
                several.join(", ")
            ),
        }
    };
    let removed_from = role_serials
        .into_iter()
        .filter(|(_, s)| *s == serial)
        .map(|(role, serial)| RemovedSerial {
            before: config_edit::setting_after(
                config_text,
                FileKind::Config,
                &role,
                &["mfa_serial"],
            ),
            profile: role,
            serial,
        })
        .collect();
    Ok(Device {
        serial,
        added,
        removed_from,
    })
}

/// Refuses a profile that is not a source profile of its own.
fn check_adoptable(settings: &Settings, section: &str, profile: &str) -> Result<()> {
    if let Some(command) = setting(settings, section, "credential_process") {
        if command.ends_with(&format!("credential-process --profile {profile}"))
            || command.ends_with(&format!("credential-process --profile '{profile}'"))
        {
            bail!(
                "profile {profile:?} is adopted already; `mfa-agent adopt {profile} --undo` puts it back"
            );
        }
        bail!(
            "profile {profile:?} gets its credentials from `credential_process = {command}` already; adopt the profile that holds your long-term keys"
        );
    }
    if setting(settings, section, "role_arn").is_some() {
        let source =
            setting(settings, section, "source_profile").unwrap_or("the profile with your keys");
        bail!(
            "profile {profile:?} is a role profile, which the AWS CLI and SDKs keep assuming themselves; adopt its source profile ({source}) instead"
        );
    }
    Ok(())
}

/// The keys of `profile` in a file's settings.
fn keys_in(settings: &Settings, section: &str) -> Option<LongTermKeys> {
    Some(LongTermKeys {
        access_key_id: setting(settings, section, "aws_access_key_id")?.to_owned(),
        secret_access_key: SecretString::new(
            setting(settings, section, "aws_secret_access_key")?.to_owned(),
        ),
    })
}

/// The keys: the credentials file's, else the config's, else the vault's already.
fn find_keys(
    creds: &Settings,
    config: &Settings,
    section: &str,
    profile: &str,
    agent: &Agent,
) -> Result<(Option<LongTermKeys>, KeysWereIn)> {
    let (keys, were_in) = if let Some(keys) = keys_in(creds, profile) {
        (Some(keys), KeysWereIn::CredentialsFile)
    } else if let Some(keys) = keys_in(config, section) {
        (Some(keys), KeysWereIn::ConfigFile)
    } else if vault_holds_keys(agent, profile)? {
        (None, KeysWereIn::Vault)
    } else {
        bail!(
            "it has no long-term keys there nor in the vault; add them with `mfa-agent creds add {profile}`, then adopt it"
        );
    };
    if let Some(keys) = &keys {
        keys.validate()?;
    }
    Ok((keys, were_in))
}

/// Everything an adoption changes, worked out (and checked) before anything changes.
struct Adoption {
    config_text: String,
    new_config: String,
    new_creds: Option<SecretString>,
    keys: Option<LongTermKeys>,
    record: Record,
    plan: Vec<String>,
}

/// The config after adoption: the profile runs mfa-agent, holds the device's serial, and
/// no keys; its roles' serials for the device are gone.
fn adopted_config(
    config_text: &str,
    profile: &str,
    device: &Device,
    keys_were_in: KeysWereIn,
) -> Result<String> {
    let mut new = config_edit::with_setting(
        config_text,
        profile,
        "credential_process",
        &credential_process(profile),
    )?;
    if let Some(serial) = &device.added {
        new = config_edit::with_setting(&new, profile, "mfa_serial", serial)?;
    }
    if keys_were_in == KeysWereIn::ConfigFile {
        new = without(&new, FileKind::Config, profile, &KEY_NAMES)?;
    }
    for removed in &device.removed_from {
        new = without(&new, FileKind::Config, &removed.profile, &["mfa_serial"])?;
    }
    Ok(new)
}

fn plan_adoption(profile: &str, agent: &Agent) -> Result<Adoption> {
    let config_path = config_edit::config_path()?;
    let creds_path = creds::credentials_file()?;
    let config_text = read_or_empty(&config_path)?;
    let creds_text = SecretString::new(read_or_empty(&creds_path)?);
    let config = Document::parse(&config_text, FileKind::Config)
        .with_context(|| format!("cannot edit {}; nothing was changed", config_path.display()))?;
    let settings = config.settings();
    let section = config.section_name(profile);
    check_adoptable(&settings, &section, profile)?;
    let device = device_of(&config_text, &config, &settings, profile)?;

    let creds = Document::parse(creds_text.expose(), FileKind::Credentials)
        .with_context(|| format!("cannot edit {}; nothing was changed", creds_path.display()))?;
    let (keys, keys_were_in) = find_keys(&creds.settings(), &settings, &section, profile, agent)
        .with_context(|| {
            format!(
                "profile {profile:?} cannot be adopted (its keys are looked for in {} and {})",
                creds_path.display(),
                config_path.display()
            )
        })?;

    let new_config = adopted_config(&config_text, profile, &device, keys_were_in)?;
    let mut plan = vec![format!(
        "[{section}] in {} gets its MFA session from mfa-agent (credential_process)",
        config_path.display()
    )];
    if let Some(serial) = &device.added {
        plan.push(format!("mfa_serial = {serial} moves to it from its roles"));
    }
    if !device.removed_from.is_empty() {
        let names: Vec<&str> = device
            .removed_from
            .iter()
            .map(|r| r.profile.as_str())
            .collect();
        plan.push(format!(
            "{} lose mfa_serial = {} (the session they start from has MFA already)",
            names.join(", "),
            device.serial
        ));
    }
    let keys_before = match keys_were_in {
        KeysWereIn::CredentialsFile => config_edit::setting_after(
            creds_text.expose(),
            FileKind::Credentials,
            profile,
            &KEY_NAMES,
        ),
        KeysWereIn::ConfigFile => {
            config_edit::setting_after(&config_text, FileKind::Config, profile, &KEY_NAMES)
        }
        KeysWereIn::Vault => None,
    };
    let new_creds = match keys_were_in {
        KeysWereIn::CredentialsFile => {
            plan.push(format!(
                "its keys move from {} into the vault",
                creds_path.display()
            ));
            Some(SecretString::new(without(
                creds_text.expose(),
                FileKind::Credentials,
                profile,
                &[
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "aws_session_token",
                ],
            )?))
        }
        KeysWereIn::ConfigFile => {
            plan.push(format!(
                "its keys move from {} into the vault",
                config_path.display()
            ));
            None
        }
        KeysWereIn::Vault => None,
    };
    Ok(Adoption {
        config_text,
        new_config,
        new_creds,
        keys,
        record: Record {
            config: config_path,
            credentials: creds_path,
            keys_were_in,
            serial_added: device.added,
            serials_removed: device.removed_from,
            keys_before,
        },
        plan,
    })
}

fn adopt(profile: &str, yes: bool, agent: &Agent, paths: &Paths) -> Result<ExitCode> {
    let Adoption {
        config_text,
        new_config,
        new_creds,
        keys,
        record,
        plan,
    } = plan_adoption(profile, agent)?;
    if !yes && input::confirm(&format!("Adopt {profile:?}: {}?", plan.join("; ")))? != Some(true) {
        bail!("nothing was changed (pass --yes where there is no terminal)");
    }
    if let Some(keys) = keys {
        agent.call(creds::add_request(profile.to_owned(), keys, true, agent))?;
    }
    let record_at = record_path(paths, profile);
    atomic::write_private(&record_at, &serde_json::to_vec_pretty(&record)?).with_context(|| {
        format!(
            "failed to write {}; the keys are in the vault, nothing else was changed",
            record_at.display()
        )
    })?;
    write_config(&record.config, &config_text, &new_config)?;
    if let Some(new_creds) = new_creds {
        atomic::replace_user_file(&record.credentials, new_creds.expose().as_bytes())
            .with_context(|| {
                format!(
                    "the keys are in the vault and the config is adopted, but rewriting {} failed: remove the [{profile}] keys from it by hand",
                    record.credentials.display()
                )
            })?;
    }
    eprintln!(
        "adopted {profile:?}: {}. `aws --profile {profile}` and the roles built on it now get their MFA session from mfa-agent; `mfa-agent adopt {profile} --undo` puts everything back",
        plan.join("; ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `text` without `keys` in `profile`'s section (see [`shared_file::remove_settings`]).
fn without(text: &str, kind: FileKind, profile: &str, keys: &[&'static str]) -> Result<String> {
    let (new, _) = shared_file::remove_settings(text, kind, profile, keys)
        .map_err(|e| anyhow::anyhow!("{e}; fix the file, then retry: nothing was changed"))?;
    Ok(new)
}

/// Replaces the config, keeping its old text beside it (`config.bak`, 0600).
fn write_config(path: &Path, old: &str, new: &str) -> Result<()> {
    let mut backup = path.as_os_str().to_owned();
    backup.push(".bak");
    if !old.is_empty() {
        atomic::replace_private(Path::new(&backup), old.as_bytes())
            .with_context(|| format!("failed to keep a copy of {}", path.display()))?;
    }
    write_user_file(path, old, new)
}

fn vault_holds_keys(agent: &Agent, profile: &str) -> Result<bool> {
    let entries = agent.call(CredsList)?;
    Ok(entries.iter().any(|e| e.profile == profile))
}

fn undo(profile: &str, yes: bool, agent: &Agent, paths: &Paths) -> Result<ExitCode> {
    let record_at = record_path(paths, profile);
    let record: Record = match std::fs::read(&record_at) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged; nothing was changed", record_at.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "profile {profile:?} was not adopted by mfa-agent on this machine (there is no {}); nothing was changed",
            record_at.display()
        ),
        Err(e) => return Err(e).context(format!("failed to read {}", record_at.display())),
    };
    let config_text = read_or_empty(&record.config)?;
    let mut new_config = restored_config(&config_text, profile, &record)?;
    if !yes
        && input::confirm(&format!(
            "Undo the adoption of {profile:?}: its keys back into {}, and its settings in {} as they were?",
            match record.keys_were_in {
                KeysWereIn::ConfigFile => record.config.display(),
                _ => record.credentials.display(),
            },
            record.config.display()
        ))? != Some(true)
    {
        bail!("nothing was changed (pass --yes where there is no terminal)");
    }

    // The keys first back where they were, then the config, and only then out of the vault.
    let keys = if record.keys_were_in == KeysWereIn::Vault {
        None
    } else {
        let ExportedKeys {
            access_key_id,
            secret_access_key,
        } = agent.call(CredsExport {
            profile: profile.to_owned(),
        })?;
        Some(LongTermKeys {
            access_key_id,
            secret_access_key,
        })
    };
    if let Some(keys) = &keys {
        let before = record.keys_before.as_deref();
        let with_keys = |text: &str, kind: FileKind| -> Result<String> {
            let text = config_edit::with_setting_before(
                text,
                kind,
                profile,
                "aws_access_key_id",
                &keys.access_key_id,
                before,
            )?;
            Ok(config_edit::with_setting_before(
                &text,
                kind,
                profile,
                "aws_secret_access_key",
                keys.secret_access_key.expose(),
                before,
            )?)
        };
        if record.keys_were_in == KeysWereIn::ConfigFile {
            new_config = with_keys(&new_config, FileKind::Config)?;
        } else {
            let creds_text = SecretString::new(read_or_empty(&record.credentials)?);
            let new_creds =
                SecretString::new(with_keys(creds_text.expose(), FileKind::Credentials)?);
            write_user_file(&record.credentials, creds_text.expose(), new_creds.expose())?;
        }
    }
    write_config(&record.config, &config_text, &new_config)?;
    if keys.is_some() {
        agent.call(CredsRemove {
            profile: profile.to_owned(),
            yes: true,
        })?;
    }
    std::fs::remove_file(&record_at).with_context(|| {
        format!(
            "everything is back, but {} could not be removed",
            record_at.display()
        )
    })?;
    eprintln!("{profile:?} is as it was before `mfa-agent adopt`: its keys are in plaintext again");
    Ok(ExitCode::SUCCESS)
}

/// The config as it was before adoption, but for the keys (which come back separately).
fn restored_config(config_text: &str, profile: &str, record: &Record) -> Result<String> {
    let mut new = without(
        config_text,
        FileKind::Config,
        profile,
        &["credential_process"],
    )?;
    if record.serial_added.is_some() {
        new = without(&new, FileKind::Config, profile, &["mfa_serial"])?;
    }
    for removed in &record.serials_removed {
        new = config_edit::with_setting_before(
            &new,
            FileKind::Config,
            &removed.profile,
            "mfa_serial",
            &removed.serial,
            removed.before.as_deref(),
        )?;
    }
    Ok(new)
}

/// Replaces (or creates) a file of the user's with mode 0600.
fn write_user_file(path: &Path, old: &str, new: &str) -> Result<()> {
    let written = if old.is_empty() && !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        atomic::create_user_file(path, new.as_bytes())
    } else {
        atomic::replace_user_file(path, new.as_bytes())
    };
    written.with_context(|| format!("failed to write {}", path.display()))
}
