//! `mfa-agent completions SHELL` and `mfa-agent man`: shell completions and the man page,
//! generated from the clap definitions so they never drift from `--help`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Cli;

pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    // Into a buffer first: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mfa-agent", &mut script);
    // The names of profiles and seeds where a command takes one (see names.rs).
    match shell {
        clap_complete::Shell::Bash => {
            script = bash_fixed(&script);
            script.extend_from_slice(super::names::bash_addition().as_bytes());
        }
        clap_complete::Shell::Fish => {
            script.extend_from_slice(super::names::fish_addition().as_bytes());
        }
        clap_complete::Shell::Zsh => {
            script = super::names::zsh_fixed(&String::from_utf8_lossy(&script)).into_bytes();
        }
        _ => {}
    }
    std::io::stdout().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// clap_complete's bash script names a subcommand's state from the binary's name with `-`
/// turned into `__` (`mfa__agent__subcmd__seed`) where it sets it, but with `-` turned into
/// `__subcmd__` (`mfa__subcmd__agent__subcmd__seed`) where it reads it, so only the first
/// word completed. One spelling for both.
fn bash_fixed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("mfa__subcmd__agent", "mfa__agent")
        .into_bytes()
}

/// The main page on stdout, or every page (one per subcommand too) as files in `dir`.
pub(super) fn man(dir: Option<&Path>) -> Result<ExitCode> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        clap_mangen::generate_to(Cli::command(), dir)
            .with_context(|| format!("failed to write the man pages to {}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    std::io::stdout().write_all(&page)?;
    Ok(ExitCode::SUCCESS)
}
