//! `mfa-agent seed ...`: adding, listing, removing and exporting seeds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{Agent, input};
use crate::protocol::{
    ListedSeed, SeedAdd, SeedExport, SeedImport, SeedLink, SeedList, SeedListing, SeedMaterial,
    SeedRecover, SeedRemove, SeedRename, StoreKind,
};
use crate::qr;
use crate::secret::SecretString;

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
    /// Link an MFA device to a seed (unlinking it from any other): which seed's codes a
    /// profile with that mfa_serial gets.
    Link {
        /// The seed's name (`mfa-agent seed list` shows them).
        name: String,
        /// The MFA device's ARN, e.g. arn:aws:iam::123456789012:mfa/alice.
        #[arg(long, value_name = "ARN")]
        serial: String,
    },
    /// Store many seeds at once: otpauth:// URIs (one per line) or Google Authenticator
    /// exports (otpauth-migration:// links, or their QR codes), from FILE or stdin (`-`).
    /// Each seed is named after its account; existing names are never overwritten.
    Import {
        /// A file of URIs or export links, or `-` for stdin.
        #[arg(value_name = "FILE|-", required_unless_present = "qr")]
        from: Option<PathBuf>,
        /// A QR code image (PNG or JPEG) of an export, e.g. a screenshot of Google
        /// Authenticator's "Transfer accounts" code.
        #[arg(long, value_name = "IMAGE", conflicts_with = "from")]
        qr: Option<PathBuf>,
    },
    /// Give a seed a new name (its secret and MFA device link unchanged).
    Rename {
        /// The seed's name now.
        name: String,
        /// The name it gets.
        new_name: String,
    },
    /// Restore a damaged seed index (seeds.json) from the copy kept before its last change.
    Recover,
    /// Delete a seed and its secret.
    Remove {
        /// The seed's name.
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
    /// Replace the seed linked to --serial (after re-creating the MFA device in AWS): it
    /// is removed once the new one is stored.
    #[arg(long, requires = "serial")]
    pub replace: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["uri", "qr"])))]
pub struct ExportArgs {
    /// The seed's name.
    pub name: String,
    /// Print the otpauth:// URI on stdout.
    #[arg(long)]
    pub uri: bool,
    /// Write the URI as a QR code PNG (mode 0600) to FILE.
    #[arg(long, value_name = "FILE")]
    pub qr: Option<PathBuf>,
}

pub(super) fn run(cmd: SeedCommand, agent: &Agent) -> Result<ExitCode> {
    match cmd {
        SeedCommand::Add(args) => add(&args, agent),
        SeedCommand::List { json } => list(agent, json),
        SeedCommand::Recover => agent.change(SeedRecover),
        SeedCommand::Rename { name, new_name } => agent.change(SeedRename { name, new_name }),
        SeedCommand::Import { from, qr } => {
            let text = match (&from, &qr) {
                (_, Some(image)) => qr::decode_file(image)?,
                (Some(path), None) if path.as_os_str() == "-" => crate::input::secret_from_stdin()?,
                (Some(path), None) => crate::input::secret_from_file(path)?,
                (None, None) => unreachable!("clap requires one"),
            };
            agent.change(SeedImport {
                text,
                store: agent.store,
            })
        }
        SeedCommand::Link { name, serial } => agent.change(SeedLink { name, serial }),
        SeedCommand::Remove { name, yes } => agent.change(SeedRemove { name, yes }),
        SeedCommand::Export(args) => export(&args, agent),
    }
}

fn add(args: &AddArgs, agent: &Agent) -> Result<ExitCode> {
    // Check the name before asking for a secret the user would then have to type again.
    crate::vault_rules::validate_name(&args.name)?;
    let material = read_material(args)?;
    agent.change(SeedAdd {
        name: args.name.clone(),
        material,
        serial: args.serial.clone(),
        store: agent.store,
        replace: args.replace,
    })
}

/// The seed as the user gives it; the agent parses and checks it.
fn read_material(args: &AddArgs) -> Result<SeedMaterial> {
    let from_stdin = |flag: &str, value: &str| -> Result<SecretString> {
        if value != "-" {
            bail!(
                "--{flag} takes `-` (read from stdin), not the secret itself: secrets on the command line end up in `ps` and shell history; try `mfa-agent seed add NAME --{flag} -` and paste it"
            )
        }
        Ok(crate::input::secret_from_stdin()?)
    };
    if let Some(value) = &args.uri {
        return Ok(SeedMaterial::Uri {
            text: from_stdin("uri", value)?,
        });
    }
    if let Some(path) = &args.uri_file {
        return Ok(SeedMaterial::Uri {
            text: crate::input::secret_from_file(path)?,
        });
    }
    if let Some(path) = &args.qr {
        let text = qr::decode_file(path)?;
        if !text.expose().starts_with("otpauth://") && !qr::is_migration(text.expose()) {
            bail!(
                "the QR code in {} holds no TOTP seed (not an otpauth URI); use the QR code AWS shows for a virtual MFA device",
                path.display()
            );
        }
        return Ok(SeedMaterial::Uri { text });
    }
    let secret = if let Some(value) = &args.secret {
        from_stdin("secret", value)?
    } else if input::has_tty() {
        input::prompt_hidden("Base32 secret (input hidden): ")?
    } else {
        bail!(
            "no secret given and no terminal to ask on: pipe it with --secret - or --uri -, or use --uri-file or --qr"
        );
    };
    Ok(SeedMaterial::Base32 { text: secret })
}

fn list(agent: &Agent, json: bool) -> Result<ExitCode> {
    let SeedListing { store, seeds } = agent.call(SeedList)?;
    if json {
        let out = serde_json::json!({ "store": store, "seeds": seeds });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_table(store, &seeds);
    Ok(ExitCode::SUCCESS)
}

fn print_table(store: StoreKind, seeds: &[ListedSeed]) {
    let rows: Vec<[String; 5]> = seeds
        .iter()
        .map(|seed| {
            [
                seed.name.clone(),
                seed.issuer.clone().unwrap_or_else(|| "-".into()),
                seed.account.clone().unwrap_or_else(|| "-".into()),
                format!("{} {}d/{}s", seed.algorithm, seed.digits, seed.period),
                seed.serial.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!(
            "no seeds yet; add one with `mfa-agent seed add NAME --qr IMAGE` (or --uri - / --secret -)"
        );
        return;
    }
    let header = ["NAME", "ISSUER", "ACCOUNT", "CODES", "SERIAL"].map(String::from);
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
    eprintln!("(secrets are in the {store})");
}

fn export(args: &ExportArgs, agent: &Agent) -> Result<ExitCode> {
    let text = agent.call(SeedExport {
        name: args.name.clone(),
    })?;
    eprintln!(
        "warning: this is the secret of seed {:?}: anyone who sees it can generate its codes. Keep it like a password and delete copies you do not need.",
        args.name
    );
    if let Some(path) = &args.qr {
        let png = qr::encode_png(&text)?;
        crate::atomic::create_user_file(path, png.expose()).with_context(|| {
            format!(
                "failed to create {} (an existing file is never overwritten)",
                path.display()
            )
        })?;
        eprintln!("wrote the QR code to {} (mode 0600)", path.display());
    } else {
        println!("{}", text.expose());
    }
    Ok(ExitCode::SUCCESS)
}
