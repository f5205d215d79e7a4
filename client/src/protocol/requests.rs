//! What a client asks the agent, one type per request, and the reply each gets ([`Call`]).
//!
//! The wire shape is the enum's: `{"type": "seed_add", "name": ..., ...}`. Each request with
//! fields is a struct of its own, so that a client says `agent.call(SeedExport { name })`
//! and gets the seed's URI back, not a [`Response`] to match; the agent takes the same
//! struct apart in the one place that carries it out.

use serde::{Deserialize, Serialize};

use super::{
    CallerEnv, CodeReply, CredentialsUser, CredsEntry, ExportedKeys, KeyListing, MfaDeviceListing,
    MfaEnrolment, Response, SeedListing, SeedMaterial, SessionCredentials, StatusReport, StoreKind,
    conceal_b64, conceal_b64_option, expose_b64, expose_b64_option,
};
use crate::secret::SecretString;

/// One line from a client; `type` names the request, its fields are the request's own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Hello(Hello),
    Credentials(Credentials),
    /// The agent's state, for `mfa-agent status`.
    Status,
    /// Drops every cached session.
    Lock,
    /// Ends the agent (`mfa-agent stop`): it answers `stopping`, then exits; the next
    /// command that needs one starts a new agent, with the configuration as it is then.
    Stop,
    Answer(Answer),
    /// Turns the connection into a feed: a `status` response now, then an `event` line for
    /// every change until the client hangs up (the tray's view of the agent).
    Subscribe,
    Code(Code),
    /// The seeds in the vault (never their secrets).
    SeedList,
    SeedAdd(SeedAdd),
    /// Restores a damaged seed index from the copy kept before its last change.
    SeedRecover,
    SeedRename(SeedRename),
    SeedLink(SeedLink),
    SeedRemove(SeedRemove),
    SeedImport(SeedImport),
    SeedExport(SeedExport),
    /// Profiles with long-term keys in the vault.
    CredsList,
    CredsAdd(CredsAdd),
    CredsRemove(CredsRemove),
    CredsExport(CredsExport),
    CredsRotate(CredsRotate),
    /// The security keys plugged in, and those enrolled.
    KeyList,
    KeyEnroll(KeyEnroll),
    KeyTest(KeyTest),
    KeyRemove(KeyRemove),
    AwsEnroll(AwsEnroll),
    AwsResync(AwsResync),
    AwsUnenroll(AwsUnenroll),
    AwsDevices(AwsDevices),
    ConsoleLogin(ConsoleLogin),
}

/// Opens a connection; must come first.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The client's AWS environment: the requests on this connection read profiles and
    /// reach AWS as the client would. Absent (the tray, an older client), the agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CallerEnv>,
}

/// Session credentials for an AWS profile, minted if none are cached.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub profile: String,
    /// Mint new credentials even if cached ones are still fresh.
    #[serde(default)]
    pub force_refresh: bool,
    /// Who will use them, when not the program that ran the client (`exec`): named in
    /// the audit log and approved under `confirm = "each-program"` in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<CredentialsUser>,
}

/// The answer to `ask`, on the same connection: what the user typed ("yes"/"no" for a
/// confirmation), or none when the client cannot ask (no terminal). For a PIN the agent
/// then tries pinentry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    #[serde(
        default,
        serialize_with = "expose_b64_option",
        deserialize_with = "conceal_b64_option"
    )]
    pub answer: Option<SecretString>,
}

/// The code of a seed; the replay guard marks its time step as used.
#[derive(Debug, Serialize, Deserialize)]
pub struct Code {
    pub seed: String,
    /// The code of the next window (the second code AWS asks for when enabling a device).
    #[serde(default)]
    pub next: bool,
}

/// Stores a seed given as an otpauth:// URI or a base32 secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedAdd {
    pub name: String,
    pub material: SeedMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The store a new vault is created in; an existing vault must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreKind>,
    /// The seed already linked to `serial` is removed once this one is stored (a
    /// re-created MFA device).
    #[serde(default)]
    pub replace: bool,
}

/// Gives a seed a new name (its secret, serial and parameters unchanged).
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedRename {
    pub name: String,
    pub new_name: String,
}

/// Links an MFA device to a seed (and to no other).
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedLink {
    pub name: String,
    pub serial: String,
}

/// Removes a seed (asking first unless `yes`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedRemove {
    pub name: String,
    /// Confirmed already; otherwise the agent asks.
    #[serde(default)]
    pub yes: bool,
}

/// Seeds from `otpauth://` URIs, one per line, and Google Authenticator export links
/// (`otpauth-migration://`, several accounts each).
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedImport {
    #[serde(serialize_with = "expose_b64", deserialize_with = "conceal_b64")]
    pub text: SecretString,
    /// The store a new vault is created in; an existing vault must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreKind>,
}

/// A seed's otpauth:// URI, for a backup in a phone app.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedExport {
    pub name: String,
}

/// Stores a profile's long-term keys in the vault.
#[derive(Debug, Serialize, Deserialize)]
pub struct CredsAdd {
    pub profile: String,
    pub access_key_id: String,
    #[serde(serialize_with = "expose_b64", deserialize_with = "conceal_b64")]
    pub secret_access_key: SecretString,
    #[serde(default)]
    pub replace: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreKind>,
}

/// Removes a profile's long-term keys from the vault (asking first unless `yes`).
#[derive(Debug, Serialize, Deserialize)]
pub struct CredsRemove {
    pub profile: String,
    #[serde(default)]
    pub yes: bool,
}

/// A profile's long-term keys out of the vault (`adopt --undo` puts them back in the
/// credentials file): a use of the secret, as `seed export` is.
#[derive(Debug, Serialize, Deserialize)]
pub struct CredsExport {
    pub profile: String,
}

/// A new access key for the profile's IAM user, into the vault; then the old deleted.
#[derive(Debug, Serialize, Deserialize)]
pub struct CredsRotate {
    pub profile: String,
}

/// Enrols the plugged-in security key; the first one creates the vault's data key, a backup
/// key needs an enrolled one to unlock it.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyEnroll {
    pub name: String,
    /// Whether the PIN is part of unlocking; unset: yes when the key has a PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Checks an enrolled key end to end: touch, signature, and unwrapping the data key.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyTest {
    pub name: String,
}

/// Forgets an enrolled key (asking first unless `yes`; the removal takes a touch).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyRemove {
    pub name: String,
    #[serde(default)]
    pub yes: bool,
}

/// A new virtual MFA device for the IAM user of `profile`'s long-term keys, its seed
/// straight into the vault (never shown), enabled with two consecutive codes.
#[derive(Debug, Serialize, Deserialize)]
pub struct AwsEnroll {
    pub profile: String,
    /// The device's name in IAM; default `USER-mfa-agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The IAM user; default the one the keys belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The seed's name in the vault; default the profile's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// ResyncMFADevice for the device `profile`'s `mfa_serial` names.
#[derive(Debug, Serialize, Deserialize)]
pub struct AwsResync {
    pub profile: String,
}

/// Deactivate and delete `profile`'s virtual MFA device, then drop its seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct AwsUnenroll {
    pub profile: String,
    /// The IAM user; default the one the profile's MFA session belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub yes: bool,
}

/// The MFA devices of `profile`'s IAM user.
#[derive(Debug, Serialize, Deserialize)]
pub struct AwsDevices {
    pub profile: String,
}

/// An AWS console sign-in link from `profile`'s (role) session.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsoleLogin {
    pub profile: String,
}

/// A request with the reply it expects (mini-redis's command pattern): the client sends
/// it, and [`Call::reply`] takes the one response that answers it out of the agent's.
pub trait Call: Into<Request> {
    /// What the client gets: the seeds for `seed_list`, what was done for a change.
    type Reply;
    /// The reply in `response`.
    ///
    /// # Errors
    /// The kind of `response` (as on the wire) when it does not answer this request: an
    /// agent of another version.
    fn reply(response: Response) -> Result<Self::Reply, &'static str>;
}

/// The requests that carry nothing but their type, as values a client can call with.
macro_rules! bare_requests {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("[`Request::", stringify!($name), "`], to call with.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl From<$name> for Request {
            fn from(_: $name) -> Self {
                Self::$name
            }
        }
    )*};
}
bare_requests!(
    Status,
    Lock,
    Stop,
    Subscribe,
    SeedList,
    SeedRecover,
    CredsList,
    KeyList
);

/// The requests that are a struct of their own go into the enum as its variant.
macro_rules! struct_requests {
    ($($name:ident),* $(,)?) => {$(
        impl From<$name> for Request {
            fn from(request: $name) -> Self {
                Self::$name(request)
            }
        }
    )*};
}
struct_requests!(
    Hello,
    Credentials,
    Answer,
    Code,
    SeedAdd,
    SeedRename,
    SeedLink,
    SeedRemove,
    SeedImport,
    SeedExport,
    CredsAdd,
    CredsRemove,
    CredsExport,
    CredsRotate,
    KeyEnroll,
    KeyTest,
    KeyRemove,
    AwsEnroll,
    AwsResync,
    AwsUnenroll,
    AwsDevices,
    ConsoleLogin,
);

/// `calls!(Request => Reply: pattern => value, ...)`: the response that answers each
/// request, and what of it the client gets.
macro_rules! calls {
    ($($request:ident => $reply:ty: $pattern:pat => $value:expr;)*) => {$(
        impl Call for $request {
            type Reply = $reply;
            fn reply(response: Response) -> Result<$reply, &'static str> {
                match response {
                    $pattern => Ok($value),
                    other => Err(other.kind()),
                }
            }
        }
    )*};
}
calls! {
    Hello => String: Response::Hello { agent_version, .. } => agent_version;
    Credentials => std::sync::Arc<SessionCredentials>: Response::Credentials(creds) => creds;
    Status => StatusReport: Response::Status(report) => report;
    Subscribe => StatusReport: Response::Status(report) => report;
    Lock => usize: Response::Locked { dropped } => dropped;
    Stop => u32: Response::Stopping { pid } => pid;
    Code => CodeReply: Response::Code(code) => code;
    SeedList => SeedListing: Response::Seeds(listing) => listing;
    SeedExport => SecretString: Response::SeedUri { uri } => uri;
    CredsList => Vec<CredsEntry>: Response::Creds { entries } => entries;
    CredsExport => ExportedKeys: Response::LongTermKeys(keys) => keys;
    KeyList => KeyListing: Response::Keys(listing) => listing;
    AwsEnroll => MfaEnrolment: Response::MfaEnrolled(enrolment) => enrolment;
    AwsDevices => MfaDeviceListing: Response::MfaDevices(listing) => listing;
    ConsoleLogin => SecretString: Response::SigninUrl { url } => url;
    // The changes: what was done, in words for the user.
    SeedAdd => String: Response::Done { message } => message;
    SeedRecover => String: Response::Done { message } => message;
    SeedRename => String: Response::Done { message } => message;
    SeedLink => String: Response::Done { message } => message;
    SeedRemove => String: Response::Done { message } => message;
    SeedImport => String: Response::Done { message } => message;
    CredsAdd => String: Response::Done { message } => message;
    CredsRemove => String: Response::Done { message } => message;
    CredsRotate => String: Response::Done { message } => message;
    KeyEnroll => String: Response::Done { message } => message;
    KeyTest => String: Response::Done { message } => message;
    KeyRemove => String: Response::Done { message } => message;
    AwsResync => String: Response::Done { message } => message;
    AwsUnenroll => String: Response::Done { message } => message;
}
