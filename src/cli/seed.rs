//! `mfa-agent seed ...`: adding, listing, removing and exporting seeds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::input;
use crate::otp::{self, Seed, qr, uri};
use crate::vault::{SeedInfo, Vault};

#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Store a TOTP seed. The secret comes from stdin, a file, a QR image or a hidden
    /// prompt, never from the command line (where `ps` and shell history would keep it).
    Add(AddArgs),
    /// List the stored seeds (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a seed and its secret.
    Remove {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Show a seed's secret, to enrol it in a phone app as a backup. Anyone who sees the
    /// output can generate your codes.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A name for the seed, used by `code NAME` and the agent's settings.
    pub name: String,
    /// Read an otpauth://totp/ URI from stdin (give `-`).
    #[arg(long, value_name = "-", group = "source")]
    pub uri: Option<String>,
    /// Read an otpauth://totp/ URI from a file.
    #[arg(long, value_name = "FILE", group = "source")]
    pub uri_file: Option<PathBuf>,
    /// Read a base32 secret from stdin (give `-`). Spaces, dashes, case and `=` are ignored.
    #[arg(long, value_name = "-", group = "source")]
    pub secret: Option<String>,
    /// Read the otpauth URI from a QR code image (PNG or JPEG), such as a screenshot of the
    /// code AWS shows when you create a virtual MFA device.
    #[arg(long, value_name = "IMAGE", group = "source")]
    pub qr: Option<PathBuf>,
    /// The ARN of the AWS MFA device this seed belongs to, e.g.
    /// arn:aws:iam::123456789012:mfa/alice. The agent uses it to find the seed for a profile.
    #[arg(long, value_name = "ARN")]
    pub serial: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["uri", "qr"])))]
pub struct ExportArgs {
    pub name: String,
    /// Print the otpauth:// URI on stdout.
    #[arg(long)]
    pub uri: bool,
    /// Write the URI as a QR code PNG (mode 0600) to FILE.
    #[arg(long, value_name = "FILE")]
    pub qr: Option<PathBuf>,
}

pub fn run(cmd: SeedCommand, mut vault: Vault) -> Result<ExitCode> {
    match cmd {
        SeedCommand::Add(args) => add(&args, &mut vault),
        SeedCommand::List { json } => list(&vault, json),
        SeedCommand::Remove { name, yes } => remove(&name, yes, &mut vault),
        SeedCommand::Export(args) => export(&args, &mut vault),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn add(args: &AddArgs, vault: &mut Vault) -> Result<()> {
    // Check the name before asking for a secret the user would then have to type again.
    crate::vault::validate_name(&args.name)?;
    if vault.info(&args.name).is_ok() {
        return Err(crate::vault::VaultError::DuplicateSeed {
            name: args.name.clone(),
        }
        .into());
    }
    let seed = read_seed(args)?;
    vault.add(&args.name, &seed, args.serial.clone())?;
    let store = vault.store_description()?;
    eprintln!("added seed {:?} to the {store}", args.name);
    Ok(())
}

fn read_seed(args: &AddArgs) -> Result<Seed> {
    let from_stdin = |flag: &str, value: &str| -> Result<()> {
        if value == "-" {
            Ok(())
        } else {
            bail!(
                "--{flag} takes `-` (read from stdin), not the secret itself: secrets on the command line end up in `ps` and shell history; try `mfa-agent seed add NAME --{flag} -` and paste it"
            )
        }
    };
    if let Some(value) = &args.uri {
        from_stdin("uri", value)?;
        return Ok(uri::parse(input::secret_from_stdin()?.expose())?);
    }
    if let Some(path) = &args.uri_file {
        return Ok(uri::parse(input::secret_from_file(path)?.expose())?);
    }
    if let Some(path) = &args.qr {
        let text = qr::decode_file(path)?;
        return uri::parse(text.expose())
            .with_context(|| format!("the QR code in {} holds no TOTP seed", path.display()));
    }
    let secret = if let Some(value) = &args.secret {
        from_stdin("secret", value)?;
        input::secret_from_stdin()?
    } else if input::has_tty() {
        input::prompt_hidden("Base32 secret (input hidden): ")?
    } else {
        bail!(
            "no secret given and no terminal to ask on: pipe it with --secret - or --uri -, or use --uri-file or --qr"
        );
    };
    Ok(Seed::from_secret(otp::decode_base32(secret.expose())?)?)
}

#[derive(Serialize)]
struct ListedSeed<'a> {
    name: &'a str,
    #[serde(flatten)]
    info: &'a SeedInfo,
}

fn list(vault: &Vault, json: bool) -> Result<()> {
    if json {
        let seeds: Vec<_> = vault
            .seeds()
            .map(|(name, info)| ListedSeed { name, info })
            .collect();
        let out = serde_json::json!({ "store": vault.store_kind(), "seeds": seeds });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let rows: Vec<[String; 6]> = vault
        .seeds()
        .map(|(name, info)| {
            [
                name.to_owned(),
                info.issuer.clone().unwrap_or_else(|| "-".into()),
                info.account.clone().unwrap_or_else(|| "-".into()),
                format!(
                    "{} {}d/{}s",
                    info.params.algorithm, info.params.digits, info.params.period
                ),
                info.serial.clone().unwrap_or_else(|| "-".into()),
                String::new(),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!(
            "no seeds yet; add one with `mfa-agent seed add NAME --qr IMAGE` (or --uri - / --secret -)"
        );
        return Ok(());
    }
    let header = ["NAME", "ISSUER", "ACCOUNT", "CODES", "SERIAL", ""].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = (0..5)
            .map(|i| format!("{:<w$}", row[i], w = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    eprintln!("(secrets are in the {})", vault.store_kind());
    Ok(())
}

fn remove(name: &str, yes: bool, vault: &mut Vault) -> Result<()> {
    vault.info(name)?;
    if !yes {
        let question = format!(
            "Remove seed {name:?}? Its codes cannot be generated afterwards unless you have a backup."
        );
        match input::confirm(&question)? {
            Some(true) => {}
            Some(false) => bail!("kept seed {name:?}"),
            None => bail!(
                "refusing to remove seed {name:?} without confirmation: there is no terminal to ask on; pass --yes"
            ),
        }
    }
    vault.remove(name)?;
    eprintln!("removed seed {name:?}");
    Ok(())
}

fn export(args: &ExportArgs, vault: &mut Vault) -> Result<()> {
    let seed = vault.seed(&args.name)?;
    let text = uri::format(&seed, &args.name);
    eprintln!(
        "warning: this is the secret of seed {:?}: anyone who sees it can generate its codes. Keep it like a password and delete copies you do not need.",
        args.name
    );
    if let Some(path) = &args.qr {
        let png = qr::encode_png(&text)?;
        crate::atomic::write_private(path, png.expose())
            .with_context(|| format!("failed to write {}", path.display()))?;
        eprintln!("wrote the QR code to {} (mode 0600)", path.display());
    } else {
        println!("{}", text.expose());
    }
    Ok(())
}
