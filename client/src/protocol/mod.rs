//! The agent's wire protocol, shared by the daemon and every client.
//!
//! One JSON object per line over a Unix socket. A connection opens with `hello` (the
//! protocol version is checked); each request then gets zero or more `waiting` lines
//! (progress the client shows to the user) and `ask` lines (a question the client puts to
//! its user and answers with `answer`), then exactly one final response.
//!
//! The agent is the one owner of secrets and security keys: every request that reads a
//! seed or long-term key, or needs a touch, is carried out by the agent; the client only
//! reads what the user gives it (stdin, a file, a QR image, a prompt) and shows answers.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::SecretString;

mod requests;
mod views;

pub use self::requests::{
    Answer, AwsDevices, AwsEnroll, AwsResync, AwsUnenroll, Call, Code, ConsoleLogin, Credentials,
    CredsAdd, CredsExport, CredsList, CredsRemove, CredsRotate, Hello, KeyEnroll, KeyList,
    KeyRemove, KeyTest, Lock, Request, SeedAdd, SeedExport, SeedImport, SeedLink, SeedList,
    SeedRecover, SeedRemove, SeedRename, Status, Stop, Subscribe,
};
pub use self::views::{
    Capability, CodeReply, CredsEntry, KeyDevice, KeyGuarantee, LastError, ListedSeed, MfaDevice,
    PinState, SessionName, SessionSummary, StatusReport, StoreKind, mask,
};

/// Bumped by hand whenever a message changes shape (3: secrets a client sends are base64;
/// credentials name who uses them; 4: hello carries the client's AWS environment, sessions
/// name theirs).
pub const PROTOCOL_VERSION: u32 = 5;

/// The environment variables that decide which profiles a program sees and how it reaches
/// AWS, as the AWS CLI and SDKs read them: a client sends the ones set in its environment.
pub const CONTEXT_VARIABLES: [&str; 17] = [
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The variables that name files, which a client sends as absolute paths (its working
/// directory is not the agent's).
const PATH_VARIABLES: [&str; 3] = [
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
];

/// A client's values of [`CONTEXT_VARIABLES`] (the set ones only, never empty).
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallerEnv(std::collections::BTreeMap<String, String>);

impl CallerEnv {
    /// This process's context: the variables set (and not empty), file names made
    /// absolute against its working directory.
    #[must_use]
    pub fn of_this_process() -> Self {
        let cwd = std::env::current_dir().ok();
        Self::from_pairs(CONTEXT_VARIABLES.iter().filter_map(|&name| {
            let value = std::env::var(name).ok()?;
            let value = match &cwd {
                Some(cwd) if PATH_VARIABLES.contains(&name) && !value.starts_with(['/', '~']) => {
                    cwd.join(&value).to_string_lossy().into_owned()
                }
                _ => value,
            };
            Some((name, value))
        }))
    }

    /// The pairs among `pairs` that are context variables with a value; others are dropped.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        Self(
            pairs
                .into_iter()
                .filter(|(name, value)| CONTEXT_VARIABLES.contains(name) && !value.is_empty())
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    }

    /// The value of `name`, if set.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Only the known variables with a value: what a client sent is not trusted to be.
    #[must_use]
    pub fn cleaned(mut self) -> Self {
        self.0
            .retain(|name, value| CONTEXT_VARIABLES.contains(&name.as_str()) && !value.is_empty());
        self
    }
}

/// Names the variables set, never their values: a proxy URL may hold a password.
impl fmt::Debug for CallerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// No request comes close; a longer line is refused and the connection closed.
pub const MAX_LINE: usize = 64 * 1024;

/// Who will use credentials a client asks for on another's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsUser {
    /// `exec`: the command the client runs with them next (its file name).
    Command(String),
    /// `exec --server`: the process behind the HTTP request, a descendant of the client.
    Process(u32),
}

/// A seed as the user gave it; the agent parses and checks it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeedMaterial {
    /// An `otpauth://totp/...` URI (typed, piped, from a file or a QR image).
    Uri {
        #[serde(serialize_with = "expose_b64", deserialize_with = "conceal_b64")]
        text: SecretString,
    },
    /// A base32 secret.
    Base32 {
        #[serde(serialize_with = "expose_b64", deserialize_with = "conceal_b64")]
        text: SecretString,
    },
}

/// What the agent asks the client's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskKind {
    /// A security key's PIN (hidden).
    Pin,
    /// The passphrase of the encrypted seed file (hidden).
    Passphrase,
    /// A new passphrase for the encrypted seed file: the client asks twice and compares.
    NewPassphrase,
    /// A yes/no question; the answer is "yes" or "no".
    Confirm,
    /// A 6-digit MFA code from the user's token or phone app (shown as typed: it is spent
    /// once used). The agent may stop waiting and send its final response instead.
    MfaCode,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        agent_version: String,
    },
    /// Progress on a long request, e.g. waiting for the next MFA code window.
    Waiting {
        message: String,
    },
    /// The request needs something only the user can give: the client asks (`message` says
    /// what, e.g. which key's PIN and how many tries are left) and replies with `answer`.
    Ask {
        kind: AskKind,
        message: String,
    },
    /// Shared with the agent's cache: a cache hit copies no secret.
    Credentials(Arc<SessionCredentials>),
    Status(StatusReport),
    Locked {
        dropped: usize,
    },
    /// The agent exits once this is sent.
    Stopping {
        pid: u32,
    },
    /// On a subscribed connection: something happened.
    Event(Event),
    Code(CodeReply),
    Seeds(SeedListing),
    /// A seed's otpauth:// URI (`seed_export`).
    SeedUri {
        #[serde(serialize_with = "expose", deserialize_with = "conceal")]
        uri: SecretString,
    },
    Creds {
        entries: Vec<CredsEntry>,
    },
    /// A profile's long-term keys (`creds_export`).
    LongTermKeys(ExportedKeys),
    Keys(KeyListing),
    /// A change went through; `message` says what happened, for the user.
    Done {
        message: String,
    },
    /// `aws enroll` went through: the new device, for the client to put in ~/.aws/config.
    MfaEnrolled(MfaEnrolment),
    /// `login`: the console sign-in link (a bearer token for 15 minutes).
    SigninUrl {
        #[serde(serialize_with = "expose", deserialize_with = "conceal")]
        url: SecretString,
    },
    /// `aws devices`.
    MfaDevices(MfaDeviceListing),
    Error {
        message: String,
    },
}

/// The seeds in the vault (`seed_list`), never their secrets.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedListing {
    /// Where the vault keeps its secrets.
    pub store: StoreKind,
    pub seeds: Vec<ListedSeed>,
}

/// A profile's long-term keys out of the vault (`creds_export`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportedKeys {
    pub access_key_id: String,
    #[serde(serialize_with = "expose", deserialize_with = "conceal")]
    pub secret_access_key: SecretString,
}

/// The security keys plugged in and those enrolled (`key_list`).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyListing {
    pub devices: Vec<KeyDevice>,
    /// The names of the enrolled keys.
    pub enrolled: Vec<String>,
    /// What each enrolled key guarantees, in enrolment order.
    #[serde(default)]
    pub guarantees: Vec<KeyGuarantee>,
}

/// A virtual MFA device `aws enroll` created and enabled.
#[derive(Debug, Serialize, Deserialize)]
pub struct MfaEnrolment {
    /// Its ARN, for `mfa_serial` in ~/.aws/config.
    pub serial: String,
    /// What was done, for the user.
    pub message: String,
}

/// The MFA devices of an IAM user (`aws_devices`).
#[derive(Debug, Serialize, Deserialize)]
pub struct MfaDeviceListing {
    pub user: String,
    pub devices: Vec<MfaDevice>,
}

/// Temporary AWS credentials, as handed to `credential_process` and `exec`.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionCredentials {
    pub access_key_id: String,
    #[serde(serialize_with = "expose", deserialize_with = "conceal")]
    pub secret_access_key: SecretString,
    #[serde(serialize_with = "expose", deserialize_with = "conceal")]
    pub session_token: SecretString,
    /// Unix seconds.
    pub expiration: i64,
    /// The profile's region, if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &mask(&self.access_key_id))
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The message's type, as on the wire; never its contents.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Waiting { .. } => "waiting",
            Self::Ask { .. } => "ask",
            Self::Credentials(_) => "credentials",
            Self::Status(_) => "status",
            Self::Locked { .. } => "locked",
            Self::Stopping { .. } => "stopping",
            Self::Event(_) => "event",
            Self::Code(_) => "code",
            Self::Seeds(_) => "seeds",
            Self::SeedUri { .. } => "seed_uri",
            Self::Creds { .. } => "creds",
            Self::LongTermKeys(_) => "long_term_keys",
            Self::Keys(_) => "keys",
            Self::Done { .. } => "done",
            Self::MfaEnrolled(_) => "mfa_enrolled",
            Self::MfaDevices(_) => "mfa_devices",
            Self::SigninUrl { .. } => "signin_url",
            Self::Error { .. } => "error",
        }
    }
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

fn conceal<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::new)
}

// What a client sends that is secret (a passphrase, a PIN, a seed, a secret key) travels as
// base64. A JSON string with escapes (a `"` or `\` in a passphrase) is unescaped by the
// parser into buffers of its own, which it drops unwiped; base64 never needs escaping, so
// the secret is read straight from the request line, which the agent wipes.

fn expose_b64<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    let encoded = zeroize::Zeroizing::new(BASE64.encode(secret.expose()));
    s.serialize_str(&encoded)
}

fn conceal_b64<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    let encoded: &'de str = Deserialize::deserialize(d)?;
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| serde::de::Error::custom("a secret that is not base64"))?;
    String::from_utf8(bytes)
        .map(SecretString::new)
        .map_err(|e| {
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            serde::de::Error::custom("a secret that is not UTF-8")
        })
}

#[allow(clippy::ref_option)] // serde's serialize_with passes `&Option<T>`
fn expose_b64_option<S: Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => {
            let encoded = zeroize::Zeroizing::new(BASE64.encode(secret.expose()));
            s.serialize_some(encoded.as_str())
        }
        None => s.serialize_none(),
    }
}

fn conceal_b64_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "conceal_b64")] SecretString);
    Option::<Wrapped>::deserialize(d).map(|w| w.map(|Wrapped(secret)| secret))
}

/// What subscribers (the tray, the notifier) hear about. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The cached sessions or the unlock state changed: their new values.
    Sessions {
        sessions: Vec<SessionSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unlocked_until: Option<i64>,
    },
    /// A mint for `profile` waits for the user: a touch of the security key, a key to be
    /// plugged in, or an MFA code to be typed; `message` says which.
    TouchNeeded { profile: String, message: String },
    /// A mint for `profile` waits `seconds` for the next code window (the current code was
    /// sent already, and AWS takes each code once): news where no terminal shows it.
    CodeWait { profile: String, seconds: u64 },
    /// The user approved (touched the key); the mint goes on.
    Approved { profile: String },
    /// New credentials for `profile`, valid until `expiration` (Unix seconds).
    Issued { profile: String, expiration: i64 },
    /// Minting for `profile` failed.
    Failed { profile: String, message: String },
    /// A cached session runs out soon and its renewal will need a touch.
    Expiring { session: String, expiration: i64 },
    /// How many requests wait for their turn at the vault and the security key (one runs at
    /// a time).
    Queue { waiting: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol is the contract between the two crates: it builds on nothing of theirs
    /// but `secret` (how secrets are held), so that no part of either leaks onto the wire.
    #[test]
    fn the_protocol_names_nothing_of_the_crate_but_secret() {
        for (file, source) in [
            ("mod.rs", include_str!("mod.rs")),
            ("requests.rs", include_str!("requests.rs")),
            ("views.rs", include_str!("views.rs")),
        ] {
            // What the protocol itself uses, not this test.
            let code = source.split("#[cfg(test)]").next().unwrap();
            let outside: Vec<&str> = code
                .match_indices("crate::")
                .map(|(at, _)| {
                    let rest = &code[at + "crate::".len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    &rest[..end]
                })
                .filter(|module| *module != "secret")
                .collect();
            assert!(
                outside.is_empty(),
                "protocol/{file} uses crate::{outside:?}"
            );
        }
    }

    #[test]
    fn requests_are_tagged_json_lines() {
        let line = serde_json::to_string(&Request::from(Credentials {
            profile: "p".into(),
            force_refresh: false,
            user: None,
        }))
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"credentials","profile":"p","force_refresh":false}"#
        );
        let parsed: Request =
            serde_json::from_str(r#"{"type":"credentials","profile":"p"}"#).unwrap();
        assert!(matches!(
            parsed,
            Request::Credentials(Credentials {
                force_refresh: false,
                ..
            })
        ));
        assert!(serde_json::from_str::<Request>(r#"{"type":"launch_missiles"}"#).is_err());
    }

    #[test]
    fn events_are_tagged_inside_the_response() {
        let line = serde_json::to_string(&Response::Event(Event::Issued {
            profile: "p".into(),
            expiration: 7,
        }))
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"event","event":"issued","profile":"p","expiration":7}"#
        );
        let back: Response = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            back,
            Response::Event(Event::Issued { expiration: 7, .. })
        ));
    }

    #[test]
    fn credentials_debug_masks_everything_secret() {
        let creds = SessionCredentials {
            access_key_id: "ASIAEXAMPLEKEY1234".into(),
            secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG".into()),
            session_token: SecretString::new("FwoGZXIvYXdzEJr".into()),
            expiration: 0,
            region: None,
        };
        let debug = format!("{creds:?}");
        assert!(debug.contains("****1234"));
        for secret in ["ASIAEXAMPLE", "wJalr", "FwoGZ"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let json = serde_json::to_string(&creds).unwrap();
        assert!(
            json.contains("wJalrXUtnFEMI/K7MDENG"),
            "the wire carries the secret"
        );
    }

    #[test]
    fn hello_carries_the_callers_variables_and_never_shows_their_values() {
        let env = CallerEnv::from_pairs([
            ("AWS_CONFIG_FILE", "/p/config".to_owned()),
            ("HTTPS_PROXY", "http://user:hunter2@proxy:3128".to_owned()),
            ("AWS_REGION", String::new()),
            ("PATH", "/usr/bin".to_owned()),
        ]);
        let line = serde_json::to_string(&Request::from(Hello {
            version: PROTOCOL_VERSION,
            context: Some(env.clone()),
        }))
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"hello","version":5,"context":{"AWS_CONFIG_FILE":"/p/config","HTTPS_PROXY":"http://user:hunter2@proxy:3128"}}"#,
            "only set context variables travel"
        );
        let shown = format!("{env:?}");
        assert!(
            shown.contains("HTTPS_PROXY") && !shown.contains("hunter2"),
            "{shown}"
        );
        // What a client sends is cleaned of anything that is not a context variable.
        let sent: CallerEnv = serde_json::from_str(
            r#"{"AWS_REGION":"eu-west-1","LD_PRELOAD":"/x.so","NO_PROXY":""}"#,
        )
        .unwrap();
        let kept = sent.cleaned();
        assert_eq!(kept.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(kept.get("LD_PRELOAD"), None);
        assert_eq!(kept.get("NO_PROXY"), None);
        // An older client's hello (no context) still parses: the agent then uses its own.
        let old: Request = serde_json::from_str(r#"{"type":"hello","version":4}"#).unwrap();
        assert!(matches!(old, Request::Hello(Hello { context: None, .. })));
    }
}
