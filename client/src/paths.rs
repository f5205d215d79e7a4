//! Where mfa-agent keeps its files, following the XDG base directory spec.

use std::env;
use std::path::PathBuf;

use thiserror::Error;

const APP: &str = "mfa-agent";

#[derive(Debug, Error)]
#[error("cannot tell where to keep mfa-agent's files: neither {var} nor HOME is set; set HOME")]
pub struct NoHomeError {
    var: &'static str,
}

/// The directories mfa-agent uses, each already including the `mfa-agent` component.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$XDG_CONFIG_HOME/mfa-agent`: settings written by the user.
    pub config_dir: PathBuf,
    /// `$XDG_DATA_HOME/mfa-agent`: the seed index and the encrypted seed file.
    pub data_dir: PathBuf,
    /// `$XDG_STATE_HOME/mfa-agent`: state the agent keeps across restarts.
    pub state_dir: PathBuf,
    /// `$XDG_RUNTIME_DIR/mfa-agent` (or a private directory under /tmp): the agent's socket.
    pub runtime_dir: PathBuf,
    /// Where the agent listens: `$MFA_AGENT_SOCKET`, else `runtime_dir/agent.sock`.
    pub socket: PathBuf,
    /// Whether `socket` is in the fallback under /tmp (neither `MFA_AGENT_SOCKET` nor
    /// `XDG_RUNTIME_DIR` set): its directory must then be made private by the agent.
    pub socket_in_tmp: bool,
}

impl Paths {
    /// Reads the locations from the process environment.
    pub fn from_env() -> Result<Self, NoHomeError> {
        Self::from_lookup(|name| {
            env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Builds the locations from any variable lookup, so the rules can be tested without
    /// touching the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<PathBuf>) -> Result<Self, NoHomeError> {
        // XDG says relative paths are invalid and must be ignored.
        let absolute = |name: &str| var(name).filter(|p| p.is_absolute());
        let home = || absolute("HOME");
        let base = |xdg: &'static str, fallback: &str| -> Result<PathBuf, NoHomeError> {
            absolute(xdg)
                .or_else(|| home().map(|h| h.join(fallback)))
                .ok_or(NoHomeError { var: xdg })
        };
        let xdg_runtime = absolute("XDG_RUNTIME_DIR");
        let runtime_in_tmp = xdg_runtime.is_none();
        let runtime_dir = xdg_runtime
            .unwrap_or_else(|| env::temp_dir().join(format!("{APP}-{}", crate::sys::current_uid())))
            .join(APP);
        let chosen_socket = var("MFA_AGENT_SOCKET");
        Ok(Self {
            config_dir: base("XDG_CONFIG_HOME", ".config")?.join(APP),
            data_dir: base("XDG_DATA_HOME", ".local/share")?.join(APP),
            state_dir: base("XDG_STATE_HOME", ".local/state")?.join(APP),
            socket_in_tmp: runtime_in_tmp && chosen_socket.is_none(),
            socket: chosen_socket.unwrap_or_else(|| runtime_dir.join("agent.sock")),
            runtime_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn paths(vars: &[(&str, &str)]) -> Result<Paths, NoHomeError> {
        let map: HashMap<String, PathBuf> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), PathBuf::from(v)))
            .collect();
        Paths::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn xdg_variables_win_over_home() {
        let p = paths(&[
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_DATA_HOME", "/d"),
            ("XDG_STATE_HOME", "/s"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ])
        .unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/c/mfa-agent"));
        assert_eq!(p.data_dir, PathBuf::from("/d/mfa-agent"));
        assert_eq!(p.state_dir, PathBuf::from("/s/mfa-agent"));
        assert_eq!(p.runtime_dir, PathBuf::from("/run/user/1/mfa-agent"));
        assert_eq!(p.socket, PathBuf::from("/run/user/1/mfa-agent/agent.sock"));
        assert!(!p.socket_in_tmp);
    }

    #[test]
    fn the_socket_is_mfa_agent_socket_else_in_the_runtime_dir_else_in_tmp() {
        let chosen = paths(&[("HOME", "/home/u"), ("MFA_AGENT_SOCKET", "/x/a.sock")]).unwrap();
        assert_eq!(chosen.socket, PathBuf::from("/x/a.sock"));
        assert!(!chosen.socket_in_tmp);
        let fallback = paths(&[("HOME", "/home/u"), ("XDG_RUNTIME_DIR", "relative")]).unwrap();
        assert!(fallback.socket_in_tmp);
        assert!(fallback.socket.starts_with(env::temp_dir()), "{fallback:?}");
        assert!(
            fallback.socket.ends_with("mfa-agent/agent.sock"),
            "{fallback:?}"
        );
    }

    #[test]
    fn home_fallbacks_and_relative_paths_ignored() {
        let p = paths(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "relative")]).unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/home/u/.config/mfa-agent"));
        assert_eq!(p.data_dir, PathBuf::from("/home/u/.local/share/mfa-agent"));
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.local/state/mfa-agent"));
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let err = paths(&[]).unwrap_err();
        assert!(err.to_string().contains("set HOME"), "{err}");
    }
}
