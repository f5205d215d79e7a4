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
    let mut found = stat_of(pid);
    for _ in 0..MAX_HOPS {
        let Some((name, parent)) = &found else { break };
        if !PASSERS_ON.contains(&name.as_str()) || *parent <= 1 {
            break;
        }
        at = *parent;
        found = stat_of(at);
    }
    let program = found.map(|(name, _)| {
        if INTERPRETERS.iter().any(|i| name.starts_with(i)) {
            script_of(at).unwrap_or(name)
        } else {
            name
        }
    });
    Peer {
        pid: at,
        program: program.map_or_else(|| "unknown".into(), |name| printable(&name)),
    }
}

/// Whether process `pid` is `ancestor` or one of its descendants (a few generations: an
/// SDK under `exec --server` is its child, or a shell's child).
#[must_use]
pub fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut at = pid;
    for _ in 0..=MAX_HOPS * 2 {
        if at == ancestor {
            return true;
        }
        match stat_of(at) {
            Some((_, parent)) if parent > 1 => at = parent,
            _ => return false,
        }
    }
    false
}

/// A name as it may be shown: any process can name itself (`/proc/self/comm`, a script's
/// file name), so control characters are escaped (`\n`, `\x1b`): a newline cannot forge a
/// line of `mfa-agent log` or the daemon's log, nor an escape sequence reach a terminal.
#[must_use]
pub fn printable(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_owned();
    }
    name.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() && u32::from(c) < 0x100 => format!("\\x{:02x}", u32::from(c)),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Interpreters run explicitly (`python3 tool.py`) name their script instead. A script
/// started by its `#!` line already has its own name as the process's (`aws` of the
/// Debian AWS CLI, which is Python).
const INTERPRETERS: &[&str] = &["python", "node", "ruby", "perl"];

/// The process's name (the kernel's `comm`: the executable's or `#!` script's file name, at
/// most 15 bytes) and its parent's pid, from one read of `/proc/PID/stat`: this runs for
/// every connection, so one file per hop.
fn stat_of(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (NAME) STATE PPID ...": the name may itself hold spaces and parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close)?.to_owned();
    let parent = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((name, parent))
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

    /// A program that names itself with a newline and a terminal escape sequence is shown
    /// with both escaped.
    #[test]
    fn a_name_with_control_characters_is_shown_escaped() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "printf 'a\\nb\\033[2J' > /proc/self/comm; sleep 10; true",
            ])
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Until the shell has renamed itself (before its exec, the child still bears this
        // test binary's name; then "sh").
        let comm = format!("/proc/{pid}/comm");
        while !std::fs::read_to_string(&comm).is_ok_and(|c| c.starts_with("a\nb"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let seen = identify(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.program, "a\\nb\\x1b[2J");
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("tab\there\u{7f}\u{85}"), "tab\\there\\x7f\\x85");
    }
}
