//! `mfa-agent creds ...`: long-term AWS keys kept in the vault instead of the plaintext
//! `~/.aws/credentials`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::{Agent, input};
use crate::atomic;
use crate::aws::LongTermKeys;
use crate::aws::shared_file::{self, FileKind};
use crate::protocol::{CredsAdd, CredsList, CredsRemove, CredsRotate};
use crate::secret::SecretString;

#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Store a profile's long-term keys. Asks on the terminal, or reads
    /// "ACCESS_KEY_ID SECRET_ACCESS_KEY" (or the IAM console's CSV) from stdin with --stdin.
    Add {
        /// The AWS profile the keys are for (its name in ~/.aws/config).
        profile: String,
        /// Read the keys from stdin instead of asking.
        #[arg(long)]
        stdin: bool,
        /// Replace keys already stored for the profile (key rotation).
        #[arg(long)]
        replace: bool,
    },
    /// Move a profile's keys out of the plaintext ~/.aws/credentials into the vault (a
    /// symlinked file is rewritten where it points; no plaintext copy is kept).
    Import {
        /// The profile whose keys move, as named in ~/.aws/credentials.
        profile: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List the profiles whose keys are in the vault (access key ids masked).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a profile's keys from the vault.
    Remove {
        /// The profile whose keys are deleted.
        profile: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Rotate a profile's access key: create a new one (with the profile's MFA session),
    /// store it in the vault, prove it works, then delete the old one in AWS.
    Rotate {
        /// The profile whose IAM user gets the new key.
        profile: String,
    },
}

pub(super) fn run(cmd: CredsCommand, agent: &Agent) -> Result<ExitCode> {
    match cmd {
        CredsCommand::Add {
            profile,
            stdin,
            replace,
        } => {
            let keys = if stdin {
                LongTermKeys::parse(crate::input::secret_from_stdin()?.expose())?
            } else {
                prompt_keys()?
            };
            agent.change(add_request(profile, keys, replace, agent))
        }
        CredsCommand::Import { profile, yes } => import(&profile, yes, agent),
        CredsCommand::List { json } => list(agent, json),
        CredsCommand::Remove { profile, yes } => agent.change(CredsRemove { profile, yes }),
        CredsCommand::Rotate { profile } => agent.change(CredsRotate { profile }),
    }
}

pub(super) fn add_request(
    profile: String,
    keys: LongTermKeys,
    replace: bool,
    agent: &Agent,
) -> CredsAdd {
    CredsAdd {
        profile,
        access_key_id: keys.access_key_id,
        secret_access_key: keys.secret_access_key,
        replace,
        store: agent.store,
    }
}

fn list(agent: &Agent, json: bool) -> Result<ExitCode> {
    let entries = agent.call(CredsList)?;
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| serde_json::json!({"profile": e.profile, "access_key": e.access_key}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if entries.is_empty() {
        eprintln!("no keys in the vault; add some with `mfa-agent creds add PROFILE`");
    } else {
        for entry in entries {
            println!("{}  {}", entry.profile, entry.access_key);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt_keys() -> Result<LongTermKeys> {
    if !input::has_tty() {
        bail!("no terminal to ask on: pipe the keys with --stdin");
    }
    let akid = input::prompt_hidden("Access key ID: ")?;
    let secret = input::prompt_hidden("Secret access key (input hidden): ")?;
    let keys = LongTermKeys {
        access_key_id: akid.expose().trim().to_owned(),
        secret_access_key: SecretString::new(secret.expose().trim().to_owned()),
    };
    keys.validate()?;
    Ok(keys)
}

pub(super) fn credentials_file() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".aws/credentials"))
}

const KEY_NAMES: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

fn import(profile: &str, yes: bool, agent: &Agent) -> Result<ExitCode> {
    let path = credentials_file()?;
    let text = SecretString::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?,
    );
    let (kept, found) = split_profile_keys(text.expose(), profile)
        .with_context(|| format!("cannot take the keys out of {}", path.display()))?;
    let get = |name: &str| {
        found
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose().to_owned())
    };
    let (Some(akid), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key"))
    else {
        bail!(
            "{} has no aws_access_key_id and aws_secret_access_key under [{profile}]",
            path.display()
        );
    };
    let keys = LongTermKeys {
        access_key_id: akid,
        secret_access_key: SecretString::new(secret),
    };
    keys.validate()?;
    if !yes
        && input::confirm(&format!(
            "Move the keys of [{profile}] from {} into the vault?",
            path.display()
        ))? != Some(true)
    {
        bail!("nothing was changed (pass --yes where there is no terminal)");
    }
    // Order matters for "loses nothing": the agent stores the keys first; only once it says
    // they are in the vault is the plaintext file rewritten. No plaintext backup is kept:
    // it would be the very file this command exists to get rid of.
    let stored = agent.call(add_request(profile.to_owned(), keys, true, agent))?;
    atomic::replace_user_file(&path, kept.as_bytes())
        .with_context(|| format!("the keys are in the vault, but rewriting {} failed: remove the [{profile}] keys from it by hand", path.display()))?;
    eprintln!(
        "moved the keys of [{profile}] into the vault ({stored}); {} no longer holds them, and no plaintext copy was kept",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Splits the credentials file into its text without `profile`'s key lines, and those keys'
/// values; everything else is kept byte for byte (see [`shared_file::remove_settings`]).
fn split_profile_keys(text: &str, profile: &str) -> Result<(String, Vec<(String, SecretString)>)> {
    let (kept, removed) =
        shared_file::remove_settings(text, FileKind::Credentials, profile, &KEY_NAMES)
            .map_err(|e| anyhow::anyhow!("{e}; fix the file, then retry: nothing was changed"))?;
    let found = removed
        .into_iter()
        .map(|(key, value)| (key.to_owned(), SecretString::new(value.to_owned())))
        .collect();
    Ok((kept, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_removes_only_the_profiles_keys() {
        let text = "# my keys\n[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d\n\n[work]\naws_access_key_id=AKIAWORK00000000\naws_secret_access_key = s3cr3t\nregion = eu-west-1\n";
        let (kept, found) = split_profile_keys(text, "work").unwrap();
        assert_eq!(
            kept,
            "# my keys\n[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d\n\n[work]\nregion = eu-west-1\n"
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1.expose(), "AKIAWORK00000000");
        assert_eq!(found[1].1.expose(), "s3cr3t");
    }

    /// The file that lost `work`'s keys: a comment after its header hid the header, so the
    /// keys seemed to be `default`'s.
    #[test]
    fn a_commented_header_keeps_its_profiles_keys() {
        let text = "[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d # old\n[work] # my work account\naws_access_key_id = AKIAWORK00000000\naws_secret_access_key = w\n";
        let (kept, found) = split_profile_keys(text, "default").unwrap();
        assert_eq!(
            kept,
            "[default]\n[work] # my work account\naws_access_key_id = AKIAWORK00000000\naws_secret_access_key = w\n"
        );
        let values: Vec<&str> = found.iter().map(|(_, v)| v.expose()).collect();
        assert_eq!(
            values,
            ["AKIADEFAULT00000", "d"],
            "the inline comment is no part of the key"
        );
    }

    #[test]
    fn a_file_an_edit_could_misread_is_left_alone() {
        for text in [
            "[default]\naws_access_key_id = A\n[default]\naws_secret_access_key = s\n",
            "[default]\naws_access_key_id = A\nnot a setting\n",
            "[default]\naws_secret_access_key = s\n  more\n",
            "aws_access_key_id = A\n[default]\n",
        ] {
            let err = split_profile_keys(text, "default").unwrap_err();
            assert!(
                format!("{err:#}").contains("nothing was changed"),
                "{text:?}: {err:#}"
            );
        }
    }
}
