//! Resolves an AWS profile into a plan for minting its credentials, using aws-config's own
//! parser so `~/.aws/config` means exactly what it means to the AWS CLI.
//!
//! Supported shapes (as aws-vault): a source profile with long-term keys and `mfa_serial`,
//! and a role profile (`role_arn` + `source_profile`) whose MFA serial is its own or its
//! source's.

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_types::os_shim_internal::{Env, Fs};
use thiserror::Error;

use super::LongTermKeys;
use crate::secret::SecretString;

/// GetSessionToken's limits for IAM users (AWS docs).
pub const SESSION_DURATION_RANGE: std::ops::RangeInclusive<u32> = 900..=129_600;
/// AssumeRole's minimum, and the cap AWS puts on a role assumed with session credentials.
pub const ROLE_MIN_DURATION: u32 = 900;
pub const CHAINED_ROLE_MAX_DURATION: u32 = 3600;
/// The longest a role may allow (its MaxSessionDuration); AWS enforces the role's own value.
pub const ROLE_MAX_DURATION: u32 = 43_200;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProfileError {
    #[error(
        "failed to read the AWS config files: {0}; fix the file (or AWS_CONFIG_FILE) and retry"
    )]
    Load(String),
    #[error(
        "no profile {profile:?} in the AWS config (~/.aws/config or AWS_CONFIG_FILE){}; add a [profile {profile}] section (see the README) or check the name", crate::suggest::did_you_mean(.suggestion.as_ref())
    )]
    Unknown {
        profile: String,
        /// The closest name there is, when one is close.
        suggestion: Option<String>,
    },
    #[error(
        "profile {profile:?} has no mfa_serial; add `mfa_serial = arn:aws:iam::ACCOUNT:mfa/NAME` to [profile {profile}] in ~/.aws/config"
    )]
    NoMfaSerial { profile: String },
    #[error(
        "profile {profile:?} has role_arn but no source_profile; add `source_profile = NAME` naming the profile with your long-term keys (credential_source is not supported)"
    )]
    NoSourceProfile { profile: String },
    #[error(
        "profile {profile:?} leads back to itself through source_profile (a source_profile loop); point the chain at the profile with your long-term keys"
    )]
    SourceLoop { profile: String },
    #[error(
        "profile {profile:?} is more than {MAX_CHAIN} roles away from a profile with long-term keys; shorten the chain of source_profile"
    )]
    ChainTooLong { profile: String },
    #[error(
        "profile {profile:?} gets its credentials from `credential_process = {command}`, which is not mfa-agent's; name the profile that has your MFA device (mfa_serial) instead"
    )]
    OtherProcess { profile: String, command: String },
    #[error(
        "profile {profile:?} runs `mfa-agent credential-process --profile {target}`, and {target:?} runs mfa-agent too (a loop); point one of them at the profile that has your MFA device (mfa_serial)"
    )]
    ProcessLoop { profile: String, target: String },
    #[error(
        "profile {profile:?} is an IAM Identity Center (SSO) profile; mfa-agent mints with long-term IAM user keys and an MFA device, and SSO sessions need no MFA code: use `aws sso login` for it"
    )]
    Sso { profile: String },
    #[error("profile {profile:?}: duration_seconds = {value:?} is not valid here; {hint}")]
    BadDuration {
        profile: String,
        value: String,
        hint: String,
    },
}

impl ProfileError {
    /// The profile the message names (as `profile "NAME"`), if it names one.
    #[must_use]
    pub fn names_profile(&self) -> Option<&str> {
        match self {
            Self::Load(_) => None,
            Self::Unknown { profile, .. }
            | Self::NoMfaSerial { profile }
            | Self::NoSourceProfile { profile }
            | Self::SourceLoop { profile }
            | Self::ChainTooLong { profile }
            | Self::OtherProcess { profile, .. }
            | Self::ProcessLoop { profile, .. }
            | Self::Sso { profile }
            | Self::BadDuration { profile, .. } => Some(profile),
        }
    }
}

/// Everything needed to mint credentials for one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePlan {
    pub profile: String,
    /// The profile holding the long-term keys, and owning the MFA session.
    pub source_profile: String,
    pub mfa_serial: String,
    /// `mfa_process`: a command that prints the device's current code (`ykman oath
    /// accounts code --single NAME`, a password manager's OTP), run once per code needed.
    pub mfa_process: Option<String>,
    pub region: Option<String>,
    /// GetSessionToken duration from the source profile's duration_seconds, if set.
    pub session_duration: Option<u32>,
    /// The role this profile assumes, if it is a role profile.
    pub role: Option<RoleSpec>,
    /// The roles assumed before it, from the source profile up, when its source_profile is
    /// itself a role profile (a chain): each is cached as its own profile's session.
    pub via: Vec<Hop>,
}

/// A role on the way to a chained profile's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub profile: String,
    pub region: Option<String>,
    pub role: RoleSpec,
}

pub use mfa_agent_client::aws::MAX_CHAIN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration: Option<u32>,
}

/// The parsed AWS config and credentials files.
pub struct Profiles {
    set: ProfileSet,
}

impl Profiles {
    /// Reads `~/.aws/config` and `~/.aws/credentials`, honouring `AWS_CONFIG_FILE` and
    /// `AWS_SHARED_CREDENTIALS_FILE`.
    pub async fn load() -> Result<Self, ProfileError> {
        Self::load_in(&Env::real()).await
    }

    /// [`Profiles::load`] with the variables of `env` (a caller's, see
    /// [`super::context::AwsContext`]).
    pub async fn load_in(env: &Env) -> Result<Self, ProfileError> {
        let set = aws_config::profile::load(&Fs::real(), env, &ProfileFiles::default(), None)
            .await
            .map_err(|e| ProfileError::Load(crate::report::sentence(&e)))?;
        Ok(Self { set })
    }

    /// Parses config file text, for tests.
    pub async fn from_config_text(text: &str) -> Result<Self, ProfileError> {
        let fs = Fs::from_slice(&[("/config", text)]);
        let env = Env::from_slice(&[
            ("AWS_CONFIG_FILE", "/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/none"),
        ]);
        let set = aws_config::profile::load(&fs, &env, &ProfileFiles::default(), None)
            .await
            .map_err(|e| ProfileError::Load(crate::report::sentence(&e)))?;
        Ok(Self { set })
    }

    /// Names of all profiles.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.set.profiles()
    }

    /// One setting of a profile, trimmed; `None` when absent or empty.
    #[must_use]
    pub fn get(&self, profile: &str, key: &str) -> Option<&str> {
        self.set
            .get_profile(profile)?
            .get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Static keys for `profile` from the config or credentials file, if any.
    #[must_use]
    pub fn static_keys(&self, profile: &str) -> Option<LongTermKeys> {
        Some(LongTermKeys {
            access_key_id: self.get(profile, "aws_access_key_id")?.to_owned(),
            secret_access_key: SecretString::new(
                self.get(profile, "aws_secret_access_key")?.to_owned(),
            ),
        })
    }

    /// The error for a profile that is not there, naming the closest one that is.
    fn unknown(&self, profile: &str) -> ProfileError {
        ProfileError::Unknown {
            profile: profile.into(),
            suggestion: crate::suggest::closest(profile, self.names()),
        }
    }

    /// Works out how to mint credentials for `profile`.
    /// How to mint for `profile`. A profile whose `credential_process` runs mfa-agent
    /// (the README's `[profile prod]`) stands for the profile it names, so `exec prod`
    /// works as `aws --profile prod` does.
    pub fn plan(&self, profile: &str) -> Result<ProfilePlan, ProfileError> {
        if self.set.get_profile(profile).is_none() {
            return Err(self.unknown(profile));
        }
        if let Some(command) = self.get(profile, "credential_process") {
            let Some(target) = agent_profile(command) else {
                return Err(ProfileError::OtherProcess {
                    profile: profile.into(),
                    command: command.into(),
                });
            };
            let follows = self
                .get(target, "credential_process")
                .and_then(agent_profile);
            // A profile naming itself (what `mfa-agent adopt` writes) is minted itself: the
            // agent's own reference means "this profile's keys and MFA device".
            if target == profile {
                return self.plan_direct(profile);
            }
            if follows.is_some_and(|next| next != target) {
                return Err(ProfileError::ProcessLoop {
                    profile: profile.into(),
                    target: target.into(),
                });
            }
            return self.plan_direct(target);
        }
        self.plan_direct(profile)
    }

    /// [`Profiles::plan`] for a profile that must be minted itself.
    fn plan_direct(&self, profile: &str) -> Result<ProfilePlan, ProfileError> {
        if self.set.get_profile(profile).is_none() {
            return Err(self.unknown(profile));
        }
        let sso = |p: &str| {
            ["sso_session", "sso_start_url"]
                .iter()
                .any(|key| self.get(p, key).is_some())
        };
        // The chain from this profile to the one with the long-term keys: role profiles,
        // each naming its source_profile, as the AWS CLI follows them.
        let mut chain: Vec<&str> = Vec::new();
        let mut current = profile;
        while self.get(current, "role_arn").is_some() {
            if chain.len() == MAX_CHAIN {
                return Err(ProfileError::ChainTooLong {
                    profile: profile.into(),
                });
            }
            chain.push(current);
            let source = self.get(current, "source_profile").ok_or_else(|| {
                ProfileError::NoSourceProfile {
                    profile: current.into(),
                }
            })?;
            if chain.contains(&source) {
                return Err(ProfileError::SourceLoop {
                    profile: current.into(),
                });
            }
            if self.set.get_profile(source).is_none() {
                return Err(self.unknown(source));
            }
            current = source;
        }
        let root = current;
        if sso(root) {
            return Err(ProfileError::Sso {
                profile: root.into(),
            });
        }
        // One MFA session at the root serves the whole chain: the first mfa_serial found
        // from this profile down to the root names its device.
        let mfa_serial = chain
            .iter()
            .chain(std::iter::once(&root))
            .find_map(|p| self.get(p, "mfa_serial"))
            .ok_or_else(|| ProfileError::NoMfaSerial {
                profile: profile.into(),
            })?;
        // A command that prints the device's codes (aws-vault's setting), found as the
        // serial is.
        let mfa_process = chain
            .iter()
            .chain(std::iter::once(&root))
            .find_map(|p| self.get(p, "mfa_process"))
            .map(str::to_owned);
        // A profile's region, else the nearest one down the chain.
        let region_from = |at: usize| {
            chain[at..]
                .iter()
                .chain(std::iter::once(&root))
                .find_map(|p| self.get(p, "region"))
                .map(str::to_owned)
        };
        let mut hops = Vec::with_capacity(chain.len());
        // Root first: each role is assumed with the one before it.
        for (at, name) in chain.iter().enumerate().rev() {
            hops.push(Hop {
                profile: (*name).to_owned(),
                region: region_from(at),
                role: self.role_spec(name)?,
            });
        }
        let role = hops.pop().map(|hop| hop.role);
        Ok(ProfilePlan {
            profile: profile.into(),
            source_profile: root.into(),
            mfa_serial: mfa_serial.into(),
            mfa_process,
            region: region_from(0),
            session_duration: self.duration(
                root,
                &SESSION_DURATION_RANGE,
                "GetSessionToken allows 900 to 129600 seconds",
            )?,
            role,
            via: hops,
        })
    }

    fn role_spec(&self, profile: &str) -> Result<RoleSpec, ProfileError> {
        Ok(RoleSpec {
            arn: self.get(profile, "role_arn").unwrap_or_default().into(),
            session_name: self.get(profile, "role_session_name").map(str::to_owned),
            external_id: self.get(profile, "external_id").map(str::to_owned),
            duration: self.duration(
                profile,
                &(ROLE_MIN_DURATION..=ROLE_MAX_DURATION),
                "AssumeRole allows 900 seconds up to the role's maximum (at most 43200)",
            )?,
        })
    }

    fn duration(
        &self,
        profile: &str,
        range: &std::ops::RangeInclusive<u32>,
        hint: &str,
    ) -> Result<Option<u32>, ProfileError> {
        let Some(value) = self.get(profile, "duration_seconds") else {
            return Ok(None);
        };
        match value.parse::<u32>() {
            Ok(d) if range.contains(&d) => Ok(Some(d)),
            _ => Err(ProfileError::BadDuration {
                profile: profile.into(),
                value: value.into(),
                hint: hint.into(),
            }),
        }
    }
}

/// The `--profile` of an `mfa-agent credential-process` command line.
#[must_use]
pub fn agent_profile(command: &str) -> Option<&str> {
    let mut words = command.split_whitespace();
    words.find(|w| w.ends_with("mfa-agent"))?;
    let mut words = words.skip_while(|w| *w != "credential-process");
    words.next()?;
    while let Some(word) = words.next() {
        if word == "--profile" {
            return words.next();
        }
        if let Some(name) = word.strip_prefix("--profile=") {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "
[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::123456789012:mfa/alice
aws_access_key_id = AKIAEXAMPLE
aws_secret_access_key = secret
duration_seconds = 3600

[profile admin]
role_arn = arn:aws:iam::210987654321:role/Admin
source_profile = base
role_session_name = alice
external_id = xyz
duration_seconds = 7200

[profile nomfa]
region = us-east-1

[profile orphan]
role_arn = arn:aws:iam::210987654321:role/Admin

[profile loop]
role_arn = arn:aws:iam::210987654321:role/Admin
source_profile = loop

[profile nested]
role_arn = arn:aws:iam::210987654321:role/Other
source_profile = admin

[profile toolong]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
duration_seconds = 999999

[profile prod]
credential_process = mfa-agent credential-process --profile admin

[profile self]
credential_process = /usr/bin/mfa-agent credential-process --profile self

[profile adopted]
credential_process = /usr/bin/mfa-agent credential-process --profile adopted
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile via-adopted]
credential_process = mfa-agent credential-process --profile adopted

[profile twice]
credential_process = mfa-agent credential-process --profile prod

[profile vault]
credential_process = aws-vault export --format=json base

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin

[profile fromsso]
role_arn = arn:aws:iam::210987654321:role/Admin
source_profile = sso
";

    #[tokio::test]
    async fn a_file_that_does_not_parse_is_reported_with_its_line() {
        let err = Profiles::from_config_text("[profile a]\nregion = x\n[profile b\n")
            .await
            .err()
            .expect("an unterminated section header")
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[tokio::test]
    async fn a_credential_process_profile_stands_for_the_profile_it_names() {
        let profiles = Profiles::from_config_text(CONFIG).await.unwrap();
        assert_eq!(
            profiles.plan("prod").unwrap(),
            profiles.plan("admin").unwrap(),
            "exec prod mints what aws --profile prod would"
        );
        let loops = |p: &str| matches!(profiles.plan(p), Err(ProfileError::ProcessLoop { .. }));
        assert!(loops("twice"));
        // A profile naming itself is minted itself (`mfa-agent adopt`), as is one naming it.
        let adopted = profiles.plan("adopted").unwrap();
        assert_eq!(
            (adopted.source_profile.as_str(), adopted.role.is_none()),
            ("adopted", true)
        );
        assert_eq!(profiles.plan("via-adopted").unwrap(), adopted);
        assert!(matches!(
            profiles.plan("self"),
            Err(ProfileError::NoMfaSerial { .. })
        ));
        let err = profiles.plan("vault").unwrap_err().to_string();
        assert!(
            err.contains("aws-vault export") && err.contains("not mfa-agent's"),
            "{err}"
        );
        for sso in ["sso", "fromsso"] {
            let err = profiles.plan(sso).unwrap_err().to_string();
            assert!(
                err.contains("\"sso\" is an IAM Identity Center (SSO) profile"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn plans_source_and_role_profiles() {
        let profiles = Profiles::from_config_text(CONFIG).await.unwrap();
        let base = profiles.plan("base").unwrap();
        assert_eq!(base.source_profile, "base");
        assert_eq!(base.mfa_serial, "arn:aws:iam::123456789012:mfa/alice");
        assert_eq!(base.session_duration, Some(3600));
        assert_eq!(base.region.as_deref(), Some("eu-west-1"));
        assert!(base.role.is_none());
        assert_eq!(
            profiles.static_keys("base").unwrap().access_key_id,
            "AKIAEXAMPLE"
        );

        let admin = profiles.plan("admin").unwrap();
        assert_eq!(admin.source_profile, "base");
        assert_eq!(
            admin.mfa_serial, base.mfa_serial,
            "inherits the source's serial"
        );
        assert_eq!(admin.region.as_deref(), Some("eu-west-1"));
        let role = admin.role.unwrap();
        assert_eq!(role.arn, "arn:aws:iam::210987654321:role/Admin");
        assert_eq!(role.session_name.as_deref(), Some("alice"));
        assert_eq!(role.external_id.as_deref(), Some("xyz"));
        assert_eq!(role.duration, Some(7200));
    }

    #[tokio::test]
    async fn each_misconfiguration_names_the_fix() {
        let profiles = Profiles::from_config_text(CONFIG).await.unwrap();
        let err = |p: &str| profiles.plan(p).unwrap_err();
        assert_eq!(
            err("missing"),
            ProfileError::Unknown {
                profile: "missing".into(),
                suggestion: None,
            }
        );
        // A typo of a name that is there: named in the error.
        let typo = err("nomfs");
        assert_eq!(
            typo,
            ProfileError::Unknown {
                profile: "nomfs".into(),
                suggestion: Some("nomfa".into()),
            }
        );
        assert!(
            typo.to_string().contains("(did you mean \"nomfa\"?)"),
            "{typo}"
        );
        assert_eq!(
            err("nomfa"),
            ProfileError::NoMfaSerial {
                profile: "nomfa".into()
            }
        );
        assert_eq!(
            err("orphan"),
            ProfileError::NoSourceProfile {
                profile: "orphan".into()
            }
        );
        assert_eq!(
            err("loop"),
            ProfileError::SourceLoop {
                profile: "loop".into()
            }
        );
        let nested = profiles.plan("nested").unwrap();
        assert_eq!(nested.source_profile, "base");
        assert_eq!(nested.via.len(), 1, "admin, then nested's own role");
        assert_eq!(nested.via[0].profile, "admin");
        assert_eq!(
            nested.role.unwrap().arn,
            "arn:aws:iam::210987654321:role/Other"
        );
        assert!(err("toolong").to_string().contains("900 to 129600"));
    }
}
