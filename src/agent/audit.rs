//! The audit log: every request for credentials, one JSON line each, in
//! `XDG_STATE_HOME/mfa-agent/audit.log`: when, which profile, which program (and pid), and
//! whether it was served from the cache, issued, or failed. Never a secret. Rotated by
//! size, one old file kept. A log that cannot be written costs a warning, never a mint.
//!
//! Entries are gathered in memory and written at most [`FLUSH_EVERY`] later (or once
//! [`FLUSH_AT`] bytes wait): a write per cache hit would cost a third of the agent's
//! throughput. At worst a crash loses the last second of entries.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

pub use mfa_agent_client::audit_log::Entry;

use serde::Serialize;

use super::peer::Peer;

/// Past this size the log is moved to `audit.log.1` and started again.
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;
/// How often waiting entries are written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Entries waiting past this many bytes are written at once.
const FLUSH_AT: usize = 64 * 1024;

pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// Entries not written yet.
    pending: Mutex<Vec<u8>>,
    warned: AtomicBool,
}

impl Audit {
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            warned: AtomicBool::new(false),
        }
    }

    /// Appends one entry: `operation` (the gate's name for it) done to `profile` (or the
    /// seed or key it names) for `peer`, and how it went.
    pub fn record(&self, operation: &str, profile: &str, peer: &Peer, outcome: &str) {
        /// An [`Entry`] by reference: no allocation on the cache-hit path.
        #[derive(Serialize)]
        struct Borrowed<'a> {
            time: i64,
            operation: &'a str,
            profile: &'a str,
            program: &'a str,
            pid: u32,
            outcome: &'a str,
        }
        let entry = Borrowed {
            time: crate::clock::unix_now_i64(),
            operation,
            profile,
            program: &peer.program,
            pid: peer.pid,
            outcome,
        };
        let full = {
            let mut pending = self.pending.lock().expect("audit lock poisoned");
            serde_json::to_writer(&mut *pending, &entry).expect("an entry serialises");
            pending.push(b'\n');
            pending.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Writes the waiting entries every [`FLUSH_EVERY`], for good.
    pub async fn keep_flushing(&self) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tick.tick().await;
            self.flush();
        }
    }

    /// Writes the entries waiting, if any (the agent calls it every [`FLUSH_EVERY`] and
    /// when it stops).
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.pending.lock().expect("audit lock poisoned"));
        if lines.is_empty() {
            return;
        }
        if let Err(e) = self.append(&lines)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "cannot write the audit log {}: {e}; requests go on unlogged",
                self.path.display()
            );
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut file = self.file.lock().expect("audit lock poisoned");
        if file.is_none() {
            if let Some(dir) = self.path.parent() {
                crate::atomic::ensure_private_dir(dir)?;
            }
            *file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)?,
            );
        }
        let open = file.as_mut().expect("opened above");
        open.write_all(line)?;
        if open.metadata()?.len() > MAX_LOG_BYTES {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, old)?;
            *file = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_the_log_is_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::new(path.clone());
        let peer = Peer {
            pid: 4242,
            program: "terraform".into(),
        };
        audit.record("credentials", "prod", &peer, "hit");
        assert!(!path.exists(), "gathered, not written at once");
        audit.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let entry: Entry = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            (
                entry.profile.as_str(),
                entry.program.as_str(),
                entry.pid,
                entry.outcome.as_str()
            ),
            ("prod", "terraform", 4242, "hit")
        );
        for _ in 0..20_000 {
            audit.record("credentials", "prod", &peer, "hit");
        }
        audit.flush();
        assert!(
            dir.path().join("audit.log.1").exists(),
            "rotated past 1 MiB"
        );
        assert!(std::fs::metadata(&path).map_or(0, |m| m.len()) <= MAX_LOG_BYTES);
    }
}
