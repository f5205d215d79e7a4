//! Who is asking: the program behind a connection, from the peer's pid (`SO_PEERCRED`) and
//! `/proc`. A `credential_process` call comes from mfa-agent's own client, started by the
//! program that wants credentials (the AWS CLI, Terraform, a Python SDK): that program is
//! the one named, found by walking up past the client and any shell between them.

use std::fmt;
use std::os::unix::ffi::OsStrExt as _;

/// A program asking the agent for something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    /// The executable's file name ("terraform", "aws", "python3"), or "unknown".
    pub program: String,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.program, self.pid)
    }
}

/// Programs that only pass a request on: the asker is their parent.
const PASSERS_ON: &[&str] = &["mfa-agent", "sh", "bash", "dash", "zsh", "env", "script"];

/// How far up the process tree to look for the program behind the client.
const MAX_HOPS: usize = 4;

/// The program behind the connection of process `pid`.
#[must_use]
pub fn identify(pid: u32) -> Peer {
    let mut at = pid;
    let mut program = program_of(pid);
    for _ in 0..MAX_HOPS {
        let Some(name) = program.as_deref() else {
            break;
        };
        if !PASSERS_ON.contains(&name) {
            break;
        }
        let Some(parent) = parent_of(at).filter(|&p| p > 1) else {
            break;
        };
        at = parent;
        program = program_of(parent);
    }
    Peer {
        pid: at,
        program: program.unwrap_or_else(|| "unknown".into()),
    }
}

/// Interpreters whose script is the program people know (`aws` of the AWS CLI, which is
/// Python in Debian).
const INTERPRETERS: &[&str] = &["python", "node", "ruby", "perl"];

/// The executable's file name, or for an interpreter its script's; `comm` when the
/// executable cannot be read (another user's process, or one that exited).
fn program_of(pid: u32) -> Option<String> {
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && let Some(name) = exe.file_name()
    {
        let name = name
            .to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_owned();
        if INTERPRETERS.iter().any(|i| name.starts_with(i))
            && let Some(script) = script_of(pid)
        {
            return Some(script);
        }
        return Some(name);
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim().to_owned()).filter(|c| !c.is_empty())
}

/// The file name of the script an interpreter runs: its first argument, unless that is an
/// option (`python3 -c ...` runs no script file).
fn script_of(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|&b| b == 0).nth(1)?;
    if first.is_empty() || first.starts_with(b"-") {
        return None;
    }
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(first));
    Some(path.file_name()?.to_string_lossy().into_owned())
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_its_program() {
        let me = identify(std::process::id());
        assert_eq!(me.pid, std::process::id());
        assert!(me.program.starts_with("mfa_agent"), "{me}");
        assert_eq!(identify(u32::MAX).program, "unknown");
    }
}
