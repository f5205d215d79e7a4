//! `mfa-agent code NAME`: the current (or next) code of a seed.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use crate::otp;
use crate::vault::Vault;

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// The seed's name (see `mfa-agent seed list`).
    pub name: String,
    /// Print the code of the next time window instead, e.g. for the second code AWS asks
    /// for when you enable or resync an MFA device.
    #[arg(long)]
    pub next: bool,
    /// Print JSON: name, code, valid_from and valid_until (Unix seconds), seconds_left.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CodeArgs, mut vault: Vault) -> Result<ExitCode> {
    let seed = vault.seed(&args.name)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let at = if args.next {
        now + seed.params.period
    } else {
        now
    };
    let code = otp::code_at(&seed.params, &seed.secret, at)?;
    let starts_in = code.valid_from.saturating_sub(now);
    let seconds_left = code.valid_until - now;
    if args.json {
        let out = serde_json::json!({
            "name": args.name,
            "code": code.digits,
            "valid_from": code.valid_from,
            "valid_until": code.valid_until,
            "seconds_left": seconds_left,
        });
        println!("{out}");
    } else {
        println!("{}", code.digits);
        if starts_in > 0 {
            eprintln!("(valid in {starts_in} s, for {} s)", seed.params.period);
        } else {
            eprintln!("(valid for {seconds_left} s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
