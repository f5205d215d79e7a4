//! What the agent reports, as the wire carries it: seeds, security keys, long-term keys,
//! MFA devices and sessions. Views, never secrets: the vault, the keys module and the cache
//! turn their own types into these, so that a client needs nothing of theirs to read them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of secret store a vault can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The OS keyring: Secret Service on Linux, Keychain on macOS, Credential Manager on Windows.
    Keyring,
    /// A passphrase-encrypted file (age/scrypt), for machines without a keyring.
    File,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keyring => "OS keyring",
            Self::File => "encrypted file",
        })
    }
}

impl FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown store {s:?}; use `keyring` or `file`"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinState {
    Set,
    NotSet,
    /// The key has no PIN support (or did not say).
    Unsupported,
}

/// One FIDO device and what it reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyDevice {
    pub path: String,
    pub vendor_id: u16,
    pub product_id: u16,
    pub product: String,
    /// CTAP versions from getInfo, e.g. FIDO_2_0, FIDO_2_1, U2F_V2.
    pub versions: Vec<String>,
    /// Extensions getInfo lists (some keys support hmac-secret without listing it; enrolment
    /// decides from the makeCredential response).
    pub extensions: Vec<String>,
    pub pin: PinState,
    /// PIN tries left before the key blocks its PIN for good (CTAP2 getPINRetries, which
    /// costs no try), where a PIN is set and the key says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_retries: Option<u32>,
    /// PIN/UV auth protocols, most preferred first.
    pub pin_protocols: Vec<u32>,
    /// What mfa-agent can do with this key.
    pub capability: Capability,
    /// Why the device could not be asked, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The name it is enrolled under in this vault, if it is (filled in by callers that
    /// know the vault, with a silent probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_as: Option<String>,
}

/// What mfa-agent can do with a key (on the wire as the words users read in `key list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    /// FIDO2: hmac-secret seals the vault, and a touch approves.
    #[serde(rename = "seal and approve")]
    SealAndApprove,
    /// U2F only: no hmac-secret to seal with; a touch approves each use.
    #[serde(rename = "approve only")]
    ApproveOnly,
    /// The key could not be asked.
    #[serde(rename = "unknown")]
    Unknown,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SealAndApprove => "seal and approve",
            Self::ApproveOnly => "approve only",
            Self::Unknown => "unknown",
        })
    }
}

/// One MFA device of an IAM user, and the vault's seed for it if it holds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaDevice {
    pub serial: String,
    /// Unix seconds.
    pub enabled: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// A code handed out by the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeReply {
    pub name: String,
    pub digits: String,
    /// Unix seconds: the code's window.
    pub valid_from: u64,
    pub valid_until: u64,
    pub period: u64,
    /// The agent already sent the code of the window asked for to AWS: this is the
    /// code of a later one, which AWS accepts once its window begins.
    #[serde(default)]
    pub spent: bool,
    /// The seed is an AWS MFA device's: the agent will not send this code itself, so its
    /// next session for the device waits for a later window.
    #[serde(default)]
    pub for_aws: bool,
}

/// A seed in the vault, as `seed list` shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedSeed {
    pub name: String,
    /// The HMAC behind the codes, as otpauth URIs name it: SHA1, SHA256 or SHA512.
    pub algorithm: String,
    pub digits: u8,
    /// Seconds each code lasts.
    pub period: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The AWS MFA device it belongs to (`arn:aws:iam::ACCOUNT:mfa/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Unix time the seed was added.
    pub added: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyGuarantee {
    pub name: String,
    pub uses_pin: bool,
    /// Whether the key refused hmac-secret without a touch when asked at enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch_gated: Option<bool>,
    /// What it protects, in words.
    pub protects: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredsEntry {
    pub profile: String,
    /// Masked (`****ABCD`).
    pub access_key: String,
}

/// Shows only the last four characters of an access key id, as in logs and `status`.
#[must_use]
pub fn mask(access_key_id: &str) -> String {
    let tail: String = access_key_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("****{tail}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub agent_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub uptime_seconds: u64,
    /// Where seeds are kept, e.g. "OS keyring" or "encrypted file".
    pub store: String,
    pub sessions: Vec<SessionSummary>,
    /// Under `touch = "unlock"`: Unix time until which the seeds stay unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocked_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// Requests waiting for their turn at the vault and the security key.
    #[serde(default)]
    pub queue: usize,
    /// Requests for sessions being minted: the ones minting and the ones that wait to share
    /// their result (single-flight), a role's inner MFA session counted as one more.
    #[serde(default)]
    pub waiting_for_sessions: usize,
    /// Whether the agent shows desktop notifications (`[notifications] enabled` in
    /// config.toml, and a notifier listening); none from an agent older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<bool>,
}

/// Which session: a profile's own, or the MFA session (one GetSessionToken) behind a source
/// profile's role profiles. Profiles order before MFA sessions: where both are one session,
/// the profile's name is the one shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionName {
    Profile(String),
    MfaSession(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub name: SessionName,
    /// The AWS environment it was minted in, when not the default one (see
    /// `aws::context::ContextId`): the same profile name in two configs is two sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The masked access key id.
    pub access_key: String,
    /// Unix seconds.
    pub expiration: i64,
}

impl SessionSummary {
    /// The name people read: "base" for a profile's session, "base (MFA session)" for the
    /// MFA session behind its role profiles, and its context where that is not the default
    /// ("ops [AWS_CONFIG_FILE=/home/me/project/aws.config]").
    #[must_use]
    pub fn display_name(&self) -> String {
        let name = match &self.name {
            SessionName::Profile(profile) => profile.clone(),
            SessionName::MfaSession(source) => format!("{source} (MFA session)"),
        };
        match &self.context {
            Some(context) => format!("{name} [{context}]"),
            None => name,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastError {
    /// Unix seconds.
    pub at: i64,
    pub profile: String,
    pub message: String,
}
