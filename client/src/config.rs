//! The agent's own settings, `XDG_CONFIG_HOME/mfa-agent/config.toml`. AWS settings stay in
//! `~/.aws/config`; this file holds only what AWS has no place for. Top-level keys come
//! before the first `[table]` (TOML puts any key after a table header inside that table).
//!
//! ```toml
//! refresh_margin_seconds = 900          # mint again when less than this is left
//! session_duration_seconds = 43200      # GetSessionToken duration (AWS: 900..=129600)
//! sts_timeout_seconds = 20              # give up on a silent STS after this long
//! autostart = true                      # clients start the daemon when none runs
//! prompt_timeout_seconds = 120          # how long a typed MFA code is waited for
//!
//! touch = "every-mint"                  # or "unlock": one touch opens the seeds for a while
//! unlock_ttl_seconds = 28800            # ... at most this long
//! unlock_idle_seconds = 3600            # ... and locks again when unused this long
//!
//! pinentry = "pinentry-gnome3"          # asks for a PIN or code when the client has no terminal
//! signin_endpoint = "https://signin.aws.amazon.com/federation"   # `login`: the federation endpoint
//! console_url = "https://console.aws.amazon.com/"                # `login`: where it lands
//!
//! [serials]                             # which seed serves an MFA device
//! "arn:aws:iam::123456789012:mfa/alice" = "work"
//!
//! [code_source]                         # "prompt": the user types the device's codes
//! "arn:aws:iam::123456789012:mfa/alice-fob" = "prompt"
//!
//! [notifications]                       # desktop notifications, each on by default
//! enabled = true                        # false turns them all off
//! touch = true                          # "touch your security key" when a touch takes > 1 s, and waits for the next code
//! issued = true                         # "credentials issued for PROFILE"
//! expiring = true                       # a session needs renewing soon, with a touch
//! errors = true                         # a mint failed
//!
//! [profiles.prod-admin]
//! assume_role_with_mfa = true           # AssumeRole with the code itself (longer sessions)
//! touch = "every-mint"                  # per-profile touch policy
//! confirm = "each-program"              # a program other than the session's first asks once
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

mod environment;
pub use environment::Environment;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("failed to read {path}: {cause}")]
    Read { path: PathBuf, cause: io::Error },
    #[error(
        "{} line {line}: {detail}; fix the file (every setting: the README's \"config.toml\" section) or move it away to use the defaults",
        path.display()
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub refresh_margin_seconds: u64,
    pub session_duration_seconds: Option<u32>,
    pub sts_timeout_seconds: u64,
    pub autostart: bool,
    /// The default touch policy for profiles that do not set one.
    pub touch: TouchPolicy,
    /// How long one touch keeps the seeds unlocked under `touch = "unlock"`.
    pub unlock_ttl_seconds: u64,
    /// Locks again after this long without a mint.
    pub unlock_idle_seconds: u64,
    pub serials: BTreeMap<String, String>,
    /// Where an MFA device's codes come from, by serial; unset: its seed if the vault holds
    /// one, else the user.
    pub code_source: BTreeMap<String, CodeSource>,
    /// How long the agent waits for the user to type an MFA code.
    pub prompt_timeout_seconds: u64,
    pub profiles: BTreeMap<String, ProfileSettings>,
    pub notifications: Notifications,
    /// The pinentry program for a security key's PIN when the client has no terminal
    /// (default: `pinentry` from PATH).
    pub pinentry: Option<String>,
    /// The console federation endpoint for `login` (default: the profile's partition's).
    pub signin_endpoint: Option<String>,
    /// Where `login` lands in the console (default: the partition's console home).
    pub console_url: Option<String>,
    /// The `MFA_AGENT_*` variables (not settable in the file), read by [`Config::load`].
    #[serde(skip)]
    pub env: Environment,
}

/// Which desktop notifications the agent shows.
#[derive(Debug, Clone, Deserialize)]
// One switch per kind of notification, as users write them in config.toml.
#[allow(clippy::struct_excessive_bools)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    pub enabled: bool,
    pub touch: bool,
    pub issued: bool,
    pub expiring: bool,
    pub errors: bool,
    /// A touch notification appears only if the touch has not come after this long: a quick
    /// touch needs no reminder.
    pub touch_delay_ms: u64,
    /// How long before a session needs renewing (with a touch) to say so.
    pub expiring_notice_seconds: u64,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            enabled: true,
            touch: true,
            issued: true,
            expiring: true,
            errors: true,
            touch_delay_ms: 1000,
            expiring_notice_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSettings {
    /// Call AssumeRole with the MFA code and long-term keys, instead of chaining from an MFA
    /// session: one code per role, but sessions up to the role's maximum instead of 1 h.
    pub assume_role_with_mfa: bool,
    /// When sealed seeds need a security-key touch; the top-level `touch` when unset.
    pub touch: Option<TouchPolicy>,
    /// Who may use a session once minted.
    pub confirm: Confirm,
}

/// Which programs a profile's cached session is handed to without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirm {
    /// Any program of the user's.
    #[default]
    Never,
    /// The program that started the session; any other asks once (a touch, or a yes).
    EachProgram,
}

/// Where the codes of an MFA device come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeSource {
    /// Computed from the device's seed in the vault.
    Seed,
    /// Typed by the user, from a hardware TOTP token or a phone app (the vault holds no seed).
    Prompt,
}

impl CodeSource {
    /// Whether the user types the codes, given the device's setting (if any) and whether
    /// a seed is linked to it.
    #[must_use]
    pub fn typed(setting: Option<Self>, seeded: bool) -> bool {
        match setting {
            Some(Self::Prompt) => true,
            Some(Self::Seed) => false,
            None => !seeded,
        }
    }
}

/// When a mint needs a touch of the security key that seals the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TouchPolicy {
    /// Every STS mint asks for a touch.
    #[default]
    EveryMint,
    /// One touch unlocks the seeds for `unlock_ttl_seconds` (and locks again after
    /// `unlock_idle_seconds` unused, or on `mfa-agent lock`).
    Unlock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // botocore starts refreshing 15 minutes before expiry; handing out credentials
            // with less left would make every CLI call come back for more.
            refresh_margin_seconds: 15 * 60,
            session_duration_seconds: None,
            sts_timeout_seconds: 20,
            autostart: true,
            touch: TouchPolicy::EveryMint,
            unlock_ttl_seconds: 8 * 3600,
            unlock_idle_seconds: 3600,
            serials: BTreeMap::new(),
            code_source: BTreeMap::new(),
            prompt_timeout_seconds: 120,
            profiles: BTreeMap::new(),
            notifications: Notifications::default(),
            pinentry: None,
            signin_endpoint: None,
            console_url: None,
            env: Environment::default(),
        }
    }
}

impl Config {
    /// Reads `dir/config.toml` (a missing file means the defaults) and this process's
    /// `MFA_AGENT_*` variables.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join("config.toml");
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::default(),
            Err(cause) => return Err(ConfigError::Read { path, cause }),
        };
        config.env = Environment::read();
        Ok(config)
    }

    /// The defaults with this process's `MFA_AGENT_*` variables: for a caller that goes on
    /// without a config.toml it could not read.
    #[must_use]
    pub fn defaults_here() -> Self {
        Self {
            env: Environment::read(),
            ..Self::default()
        }
    }

    /// The settings in `text`, the contents of `path`.
    pub fn parse(text: &str, path: PathBuf) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |span| 1 + text[..span.start].matches('\n').count());
            // The key on that line, which toml's message for a bad value leaves out.
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(key, _)| key.trim().trim_matches('"'))
                .filter(|key| !key.is_empty() && !e.message().contains(key));
            let detail = match key {
                Some(key) => format!("{key}: {}", e.message()),
                None => e.message().to_owned(),
            };
            ConfigError::Invalid { path, line, detail }
        })
    }

    /// Whether clients may start the daemon: `autostart` here, unless MFA_AGENT_NO_AUTOSTART
    /// is set.
    #[must_use]
    pub fn autostart_enabled(&self) -> bool {
        self.autostart && !self.env.no_autostart
    }

    /// Whether `profile` asks before a new program uses its session (checked on every
    /// cache hit, so without copying the profile's settings).
    #[must_use]
    pub fn confirms_each_program(&self, profile: &str) -> bool {
        self.profiles
            .get(profile)
            .is_some_and(|p| p.confirm == Confirm::EachProgram)
    }

    #[must_use]
    pub fn profile(&self, name: &str) -> ProfileSettings {
        self.profiles.get(name).cloned().unwrap_or_default()
    }

    /// Whether the user types the codes of the MFA device `serial` (configured so, or no seed
    /// is linked to it: `seeded` says whether one is).
    #[must_use]
    pub fn typed_codes(&self, serial: &str, seeded: bool) -> bool {
        CodeSource::typed(self.code_source.get(serial).copied(), seeded)
    }

    /// The touch policy for `profile`.
    #[must_use]
    pub fn touch(&self, profile: &str) -> TouchPolicy {
        self.profiles
            .get(profile)
            .and_then(|p| p.touch)
            .unwrap_or(self.touch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's config.toml section, taken literally: it must be a valid file that
    /// says what it means (a top-level key after a table header would land in the table).
    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("### config.toml").expect("the section")..];
        let start = section.find("```toml\n").expect("its example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config = Config::parse(example, "README.md".into()).unwrap();
        let serials = config.serials.keys().chain(config.code_source.keys());
        assert!(serials.into_iter().all(|s| s.starts_with("arn:aws:iam::")));
        assert_eq!(config.touch, TouchPolicy::EveryMint);
        assert_eq!(config.prompt_timeout_seconds, 120);
        assert!(config.profile("prod-admin").assume_role_with_mfa);
        // Every setting the agent has is shown (add a new one here and there).
        let keys: Vec<&str> = example
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
            .collect();
        let documented = |k: &str| keys.contains(&k) || example.contains(&format!("[{k}]"));
        let fields = [
            "refresh_margin_seconds",
            "session_duration_seconds",
            "sts_timeout_seconds",
            "autostart",
            "prompt_timeout_seconds",
            "touch",
            "unlock_ttl_seconds",
            "unlock_idle_seconds",
            "pinentry",
            "serials",
            "code_source",
            "notifications",
            "enabled",
            "issued",
            "expiring",
            "errors",
            "touch_delay_ms",
            "expiring_notice_seconds",
            "assume_role_with_mfa",
        ];
        for field in fields {
            assert!(documented(field), "README's config.toml lacks {field}");
        }
    }

    #[test]
    fn missing_file_gives_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert_eq!(config.refresh_margin_seconds, 900);
        assert!(config.autostart);

        std::fs::write(
            dir.path().join("config.toml"),
            "autostart = false\n[serials]\n\"arn:aws:iam::123456789012:mfa/a\" = \"work\"\n[profiles.p]\nassume_role_with_mfa = true\n",
        )
        .unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert!(!config.autostart);
        assert_eq!(config.serials["arn:aws:iam::123456789012:mfa/a"], "work");
        assert!(config.profile("p").assume_role_with_mfa);
        assert!(!config.profile("other").assume_role_with_mfa);

        std::fs::write(
            dir.path().join("config.toml"),
            "touch = \"unlock\"\n[profiles.p]\ntouch = \"every-mint\"\n",
        )
        .unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert_eq!(config.touch("p"), TouchPolicy::EveryMint);
        assert_eq!(config.touch("other"), TouchPolicy::Unlock);

        std::fs::write(
            dir.path().join("config.toml"),
            "autostart = true\n\nrefresh_margin = 3\n",
        )
        .unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.toml line 3: unknown field `refresh_margin`"),
            "{err}"
        );

        std::fs::write(
            dir.path().join("config.toml"),
            "[code_source]\n\"arn:aws:iam::123456789012:mfa/fob\" = \"prompt\"\n\"arn:aws:iam::123456789012:mfa/app\" = \"seed\"\n",
        )
        .unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert!(config.typed_codes("arn:aws:iam::123456789012:mfa/fob", true));
        assert!(!config.typed_codes("arn:aws:iam::123456789012:mfa/app", false));
        assert!(config.typed_codes("arn:aws:iam::123456789012:mfa/new", false));
        assert!(!config.typed_codes("arn:aws:iam::123456789012:mfa/new", true));

        // A bad value: the line and the key, which toml's own message leaves out.
        std::fs::write(dir.path().join("config.toml"), "touch = \"sometimes\"\n").unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.toml line 1: touch: unknown variant"),
            "{err}"
        );
    }
}
