//! `mfa-agent`: the command line, a lean client of the agent (no AWS SDK, HID or D-Bus in
//! this binary: a `credential_process` cache hit is a process start and one socket round
//! trip).

use std::process::ExitCode;

use mfa_agent_client::cli::run;

fn main() -> ExitCode {
    // Before anything holds a secret: no core dumps, no ptrace by other same-user processes.
    mfa_agent_client::sys::harden_process();
    mfa_agent_client::report::exit_quietly_when_stdout_closes();
    // The hot path first: a credential_process cache hit skips building the command line.
    let result = if let Some(fast) = mfa_agent_client::cli::credential_process_fast_path() {
        mfa_agent_client::logging::init(0);
        fast.run()
    } else {
        let cli = mfa_agent_client::cli::parse();
        mfa_agent_client::logging::init(cli.verbose);
        run(cli)
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!(
                "error: {}",
                mfa_agent_client::report::sentence(err.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}
