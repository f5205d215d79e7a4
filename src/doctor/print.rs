//! `mfa-agent doctor [--json]`: the checks, printed with their fixes.

use std::process::ExitCode;

use anyhow::Result;

use super::Status;
use crate::paths::Paths;

pub fn run(paths: &Paths, json: bool) -> Result<ExitCode> {
    let report = super::diagnose(paths);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for finding in &report.findings {
            let mark = match finding.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{mark} {}: {}", finding.check, finding.detail);
            if let Some(fix) = &finding.fix {
                println!("     fix: {fix}");
            }
        }
    }
    // Warnings still exit 0: everything works, if not as well as it could.
    Ok(if report.overall() == Status::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
