//! `mfa-agent code NAME`: the current (or next) code of a seed, from the agent, which marks
//! it as used so that no mint sends it to AWS again.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::Agent;
use crate::clock::unix_now;
use crate::protocol::Code;

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// The seed's name (see `mfa-agent seed list`), or the serial (ARN) of the MFA device
    /// it is linked to.
    pub name: String,
    /// Print the code of the next time window instead, e.g. for the second code AWS asks
    /// for when you enable or resync an MFA device.
    #[arg(long)]
    pub next: bool,
    /// Print JSON: name, code, valid_from and valid_until (Unix seconds), seconds_left,
    /// spent (the window asked for was used already, so this code is a later one's).
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &CodeArgs, agent: &Agent) -> Result<ExitCode> {
    let code = agent.call(Code {
        seed: args.name.clone(),
        next: args.next,
    })?;
    let now = unix_now();
    let starts_in = code.valid_from.saturating_sub(now);
    let seconds_left = code.valid_until.saturating_sub(now);
    if args.json {
        let out = serde_json::json!({
            "name": code.name,
            "code": code.digits,
            "valid_from": code.valid_from,
            "valid_until": code.valid_until,
            "seconds_left": seconds_left,
            "spent": code.spent,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", code.digits);
    if code.spent {
        eprintln!(
            "(the agent sent the {} code to AWS already, and AWS takes each code once: this is the next one)",
            if args.next { "next" } else { "current" }
        );
    }
    if starts_in > 0 {
        eprintln!("(valid in {starts_in} s, for {} s)", code.period);
    } else {
        eprintln!("(valid for {seconds_left} s)");
    }
    // The agent never sends a code it has shown: say what that costs the next mint.
    if code.for_aws {
        eprintln!(
            "(a new session for this MFA device now waits for the next window, up to {} s: AWS takes each code once)",
            code.valid_until.saturating_sub(now)
        );
    }
    Ok(ExitCode::SUCCESS)
}
