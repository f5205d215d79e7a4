//! `mfa-agent creds ...`: long-term AWS keys kept in the vault instead of the plaintext
//! `~/.aws/credentials`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::input;
use crate::atomic;
use crate::aws::LongTermKeys;
use crate::protocol::mask;
use crate::secret::SecretString;
use crate::vault::Vault;

#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Store a profile's long-term keys. Asks on the terminal, or reads
    /// "ACCESS_KEY_ID SECRET_ACCESS_KEY" (or the IAM console's CSV) from stdin with --stdin.
    Add {
        profile: String,
        /// Read the keys from stdin instead of asking.
        #[arg(long)]
        stdin: bool,
        /// Replace keys already stored for the profile (key rotation).
        #[arg(long)]
        replace: bool,
    },
    /// Move a profile's keys out of the plaintext ~/.aws/credentials into the vault (the
    /// file is backed up first).
    Import {
        profile: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List the profiles whose keys are in the vault (access key ids masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a profile's keys from the vault.
    Remove {
        profile: String,
        #[arg(long, short)]
        yes: bool,
    },
}

pub fn run(cmd: CredsCommand, mut vault: Vault) -> Result<ExitCode> {
    match cmd {
        CredsCommand::Add {
            profile,
            stdin,
            replace,
        } => {
            let keys = if stdin {
                parse_keys(input::secret_from_stdin()?.expose())?
            } else {
                prompt_keys()?
            };
            vault.add_credentials(&profile, &keys, replace)?;
            eprintln!(
                "stored keys {} for profile {profile:?} in the {}",
                mask(&keys.access_key_id),
                vault.store_description()?
            );
        }
        CredsCommand::Import { profile, yes } => import(&profile, yes, &mut vault)?,
        CredsCommand::List { json } => {
            let rows: Vec<_> = vault
                .credential_list()
                .map(|(p, info)| (p.to_owned(), mask(&info.access_key_id)))
                .collect();
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(p, k)| serde_json::json!({"profile": p, "access_key": k}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if rows.is_empty() {
                eprintln!("no keys in the vault; add some with `mfa-agent creds add PROFILE`");
            } else {
                for (profile, key) in rows {
                    println!("{profile}  {key}");
                }
            }
        }
        CredsCommand::Remove { profile, yes } => {
            if !yes
                && input::confirm(&format!(
                    "Delete the long-term keys of profile {profile:?} from the vault?"
                ))? != Some(true)
            {
                bail!("kept the keys of {profile:?} (pass --yes where there is no terminal)");
            }
            vault.remove_credentials(&profile)?;
            eprintln!("removed the keys of profile {profile:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Accepts "AKID SECRET" on one or two lines, or the IAM console's CSV download.
fn parse_keys(text: &str) -> Result<LongTermKeys> {
    let fields: Vec<&str> = text
        .lines()
        .filter(|l| !l.to_ascii_lowercase().contains("access key id"))
        .flat_map(|l| l.split([',', ' ', '\t']))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let [akid, secret] = fields.as_slice() else {
        bail!(
            "expected an access key id and a secret access key on stdin (separated by a space, newline or comma)"
        );
    };
    validate(akid, secret)?;
    Ok(LongTermKeys {
        access_key_id: (*akid).to_owned(),
        secret_access_key: SecretString::new((*secret).to_owned()),
    })
}

fn validate(akid: &str, secret: &str) -> Result<()> {
    if !(16..=128).contains(&akid.len()) || !akid.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!(
            "{:?} does not look like an access key id (AKIA... in the IAM console)",
            mask(akid)
        );
    }
    if akid.starts_with("ASIA") {
        bail!(
            "that is a temporary (ASIA...) key; store the long-term AKIA... key of your IAM user"
        );
    }
    if secret.len() < 16 {
        bail!("the secret access key is too short; copy all 40 characters");
    }
    Ok(())
}

fn prompt_keys() -> Result<LongTermKeys> {
    if !input::has_tty() {
        bail!("no terminal to ask on: pipe the keys with --stdin");
    }
    let akid = input::prompt_hidden("Access key ID: ")?;
    let secret = input::prompt_hidden("Secret access key (input hidden): ")?;
    validate(akid.expose().trim(), secret.expose().trim())?;
    Ok(LongTermKeys {
        access_key_id: akid.expose().trim().to_owned(),
        secret_access_key: SecretString::new(secret.expose().trim().to_owned()),
    })
}

fn credentials_file() -> Result<PathBuf> {
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

fn import(profile: &str, yes: bool, vault: &mut Vault) -> Result<()> {
    let path = credentials_file()?;
    let text = SecretString::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?,
    );
    let (kept, found) = split_profile_keys(text.expose(), profile);
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
    validate(&akid, &secret)?;
    if !yes
        && input::confirm(&format!(
            "Move the keys of [{profile}] from {} into the vault? A backup is kept.",
            path.display()
        ))? != Some(true)
    {
        bail!("nothing was changed (pass --yes where there is no terminal)");
    }
    let keys = LongTermKeys {
        access_key_id: akid,
        secret_access_key: SecretString::new(secret),
    };
    // Order matters for "loses nothing": vault first, then a backup, then the rewrite.
    vault.add_credentials(profile, &keys, true)?;
    let backup = path.with_extension(format!("bak-{}", std::process::id()));
    atomic::write_private(&backup, text.expose().as_bytes())
        .with_context(|| format!("failed to write the backup {}", backup.display()))?;
    atomic::write_private(&path, kept.as_bytes())
        .with_context(|| format!("failed to rewrite {}", path.display()))?;
    eprintln!(
        "moved the keys of [{profile}] into the {}; {} no longer holds them (backup: {} - delete it once things work)",
        vault.store_description()?,
        path.display(),
        backup.display()
    );
    Ok(())
}

/// Splits an INI credentials file into the text without `profile`'s key lines, and those
/// key lines' values. Comments, other sections and other settings are kept as they were.
fn split_profile_keys(text: &str, profile: &str) -> (String, Vec<(String, SecretString)>) {
    let mut kept = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut in_profile = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            in_profile = trimmed[1..trimmed.len() - 1].trim() == profile;
        } else if in_profile && let Some((key, value)) = trimmed.split_once('=') {
            let key = key.trim().to_ascii_lowercase();
            if KEY_NAMES.contains(&key.as_str()) {
                found.push((key, SecretString::new(value.trim().to_owned())));
                continue;
            }
        }
        kept.push_str(line);
    }
    (kept, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_removes_only_the_profiles_keys() {
        let text = "# my keys\n[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d\n\n[work]\naws_access_key_id=AKIAWORK00000000\naws_secret_access_key = s3cr3t\nregion = eu-west-1\n";
        let (kept, found) = split_profile_keys(text, "work");
        assert_eq!(
            kept,
            "# my keys\n[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d\n\n[work]\nregion = eu-west-1\n"
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1.expose(), "AKIAWORK00000000");
        assert_eq!(found[1].1.expose(), "s3cr3t");
    }

    #[test]
    fn keys_parse_from_pairs_and_iam_csv() {
        let pair =
            parse_keys("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n").unwrap();
        assert_eq!(pair.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        let csv = parse_keys("Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n").unwrap();
        assert_eq!(
            csv.secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        assert!(parse_keys("only-one").is_err());
        assert!(
            parse_keys("ASIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_err()
        );
    }
}
