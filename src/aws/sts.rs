//! Calls to AWS STS through aws-sdk-sts, with errors turned into advice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
    SharedHttpClient, retry::RetryConfig,
};
use aws_sdk_sts::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sts::types::Credentials as StsCredentials;
use thiserror::Error;

use super::LongTermKeys;
use super::call::{self, Failure, HttpStatus};
use super::profile::RoleSpec;
use crate::protocol::SessionCredentials;
use crate::secret::SecretString;

/// STS's global endpoint lives in us-east-1; used when a profile names no region.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StsError {
    #[error(
        "AWS rejected the MFA code ({message}); if the code was just used elsewhere, retry in 30 s, otherwise the seed does not match the MFA device (compare `mfa-agent code` with your phone)"
    )]
    MfaRejected { message: String },
    #[error(
        "AWS denied the request ({message}); check the keys, the MFA serial and the role's trust policy"
    )]
    AccessDenied { message: String },
    #[error("AWS is throttling STS calls ({message}); wait a minute and retry")]
    Throttled { message: String },
    #[error("STS is unavailable (HTTP {status}); retry shortly")]
    Unavailable { status: u16 },
    #[error(
        "STS did not answer within {seconds} s; check the network (or raise sts_timeout_seconds in config.toml)"
    )]
    Timeout { seconds: u64 },
    #[error("failed to reach STS ({detail}); check the network and any proxy settings")]
    Network { detail: String },
    #[error("STS refused the request: {code}: {message}")]
    Other { code: String, message: String },
    /// The caller's proxy or CA bundle cannot be used.
    #[error(transparent)]
    Transport(#[from] super::http::TransportError),
    /// An answer no client could use (a session without a key, or expired on arrival).
    #[error("{message}")]
    Unusable { message: String },
}

/// An STS client factory: one client per call, since each call signs with other keys.
#[derive(Debug, Clone)]
pub struct Sts {
    endpoint: Option<String>,
    timeout: Duration,
    /// Shared by every client made here (see [`super::http`]).
    http: SharedHttpClient,
    /// `AWS_STS_REGIONAL_ENDPOINTS=legacy`: the global endpoint where AWS had one.
    legacy_global_endpoint: bool,
}

/// An MFA device and one of its codes.
pub struct Mfa<'a> {
    pub serial: &'a str,
    pub code: &'a str,
}

impl Sts {
    /// `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` redirect calls (e.g. to a local test
    /// server), as in the AWS SDKs.
    #[must_use]
    pub fn from_env(timeout: Duration) -> Self {
        let endpoint = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Self::new(
            endpoint,
            timeout,
            super::http::Transport::default()
                .client()
                .expect("no proxy or bundle to check"),
        )
    }

    /// Calls to `endpoint` (AWS's own when `None`).
    #[must_use]
    pub fn new(endpoint: Option<String>, timeout: Duration, http: SharedHttpClient) -> Self {
        Self {
            endpoint,
            timeout,
            http,
            legacy_global_endpoint: false,
        }
    }

    /// Calls the global endpoint (sts.amazonaws.com) from the regions that had it, as the
    /// AWS CLI does under `AWS_STS_REGIONAL_ENDPOINTS=legacy`.
    #[must_use]
    pub fn with_legacy_global_endpoint(mut self, on: bool) -> Self {
        self.legacy_global_endpoint = on;
        self
    }

    fn client(
        &self,
        keys: Credentials,
        region: Option<&str>,
        retry: RetryConfig,
    ) -> aws_sdk_sts::Client {
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.unwrap_or(DEFAULT_REGION).to_owned()))
            .credentials_provider(keys)
            .http_client(self.http.clone())
            .retry_config(retry)
            .timeout_config(call::timeouts(self.timeout));
        if let Some(url) = &self.endpoint {
            config = config.endpoint_url(url);
        } else if self.legacy_global_endpoint {
            config = config.endpoint_resolver(super::context::LegacyGlobalEndpoint);
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }

    /// GetSessionToken with an MFA code.
    pub async fn get_session_token(
        &self,
        keys: &LongTermKeys,
        region: Option<&str>,
        mfa: &Mfa<'_>,
        duration: Option<u32>,
    ) -> Result<SessionCredentials, StsError> {
        // Never retry a call carrying an MFA code: if the first attempt reached AWS, the
        // retry would reuse the code and be rejected, hiding the real outcome.
        let client = self.client(long_term(keys), region, RetryConfig::disabled());
        let out = client
            .get_session_token()
            .serial_number(mfa.serial)
            .token_code(mfa.code)
            .set_duration_seconds(duration.map(i32::try_from).transpose().unwrap_or(None))
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        convert(out.credentials(), region)
    }

    /// AssumeRole, signed with `keys` (an MFA session, or long-term keys plus `mfa`).
    pub async fn assume_role(
        &self,
        keys: Credentials,
        region: Option<&str>,
        role: &RoleSpec,
        session_name: &str,
        duration: Option<u32>,
        mfa: Option<&Mfa<'_>>,
    ) -> Result<SessionCredentials, StsError> {
        let retry = if mfa.is_some() {
            RetryConfig::disabled()
        } else {
            RetryConfig::standard().with_max_attempts(3)
        };
        let client = self.client(keys, region, retry);
        let out = client
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(session_name)
            .set_external_id(role.external_id.clone())
            .set_duration_seconds(duration.and_then(|d| i32::try_from(d).ok()))
            .set_serial_number(mfa.map(|m| m.serial.to_owned()))
            .set_token_code(mfa.map(|m| m.code.to_owned()))
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        convert(out.credentials(), region)
    }

    /// GetCallerIdentity signed with `keys`: whose keys they are, as an ARN.
    pub async fn caller_arn(
        &self,
        keys: Credentials,
        region: Option<&str>,
    ) -> Result<String, StsError> {
        let client = self.client(keys, region, RetryConfig::standard().with_max_attempts(3));
        let out = client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        out.arn().map(str::to_owned).ok_or_else(|| StsError::Other {
            code: "NoArn".into(),
            message: "GetCallerIdentity returned no ARN".into(),
        })
    }

    /// STS's clock, from the Date header of a GetCallerIdentity answer: TOTP codes are only
    /// accepted within about 30 s of AWS's time. The call is signed with made-up keys, so it
    /// needs no credentials and reveals none; AWS's refusal carries the header as well.
    pub async fn server_time(&self, region: Option<&str>) -> Result<i64, StsError> {
        let date = DateHeader::default();
        let keys = Credentials::new(
            "AKIAMFAAGENTCLOCKXXX",
            "clock-check",
            None,
            None,
            "mfa-agent",
        );
        let client = self.client(keys, region, RetryConfig::disabled());
        let answer = client
            .get_caller_identity()
            .customize()
            .interceptor(date.clone())
            .send()
            .await;
        let seen = date.0.lock().expect("date lock poisoned").take();
        match (seen, answer) {
            (Some(header), _) => DateTime::from_str(&header, DateTimeFormat::HttpDate)
                .map(|t| t.secs())
                .map_err(|e| StsError::Other {
                    code: "BadDate".into(),
                    message: format!("STS sent an unreadable Date header {header:?}: {e}"),
                }),
            (None, Err(e)) => Err(self.map_error(&e)),
            (None, Ok(_)) => Err(StsError::Other {
                code: "NoDate".into(),
                message: "STS answered without a Date header".into(),
            }),
        }
    }

    fn map_error<E: ProvideErrorMetadata, R: HttpStatus>(&self, err: &SdkError<E, R>) -> StsError {
        match call::failure(err) {
            Failure::Service {
                code,
                message,
                status,
            } => classify(&code, message, status),
            Failure::Timeout => StsError::Timeout {
                seconds: self.timeout.as_secs(),
            },
            Failure::Network(detail) => StsError::Network { detail },
            Failure::Unreadable(status) if status >= 500 => StsError::Unavailable { status },
            Failure::Unreadable(status) => StsError::Other {
                code: format!("HTTP {status}"),
                message: "unreadable response".into(),
            },
        }
    }
}

/// Records the Date header of the response it sees.
#[derive(Debug, Clone, Default)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "DateHeader"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().expect("date lock poisoned") = Some(date.to_owned());
        }
        Ok(())
    }
}

fn classify(code: &str, message: String, status: u16) -> StsError {
    match code {
        "AccessDenied" if message.contains("MultiFactorAuthentication") => {
            StsError::MfaRejected { message }
        }
        "AccessDenied" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            StsError::AccessDenied { message }
        }
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            StsError::Throttled { message }
        }
        _ if status >= 500 => StsError::Unavailable { status },
        _ => StsError::Other {
            code: code.to_owned(),
            message,
        },
    }
}

fn long_term(keys: &LongTermKeys) -> Credentials {
    Credentials::new(
        &keys.access_key_id,
        keys.secret_access_key.expose(),
        None,
        None,
        "mfa-agent",
    )
}

/// Wraps session credentials for signing a further call (AssumeRole on an MFA session).
#[must_use]
pub fn signing_credentials(session: &SessionCredentials) -> Credentials {
    Credentials::new(
        &session.access_key_id,
        session.secret_access_key.expose(),
        Some(session.session_token.expose().to_owned()),
        None,
        "mfa-agent",
    )
}

/// Long-term keys as SDK credentials (for AssumeRole with MFA).
#[must_use]
pub fn long_term_credentials(keys: &LongTermKeys) -> Credentials {
    long_term(keys)
}

/// STS's credentials as a session, refused when they could not work: the SDK fills the
/// fields a malformed answer (a proxy's, a broken emulator's) lacks with empty strings and the
/// epoch, and a session handed out that way would fail in every client instead of here.
fn convert(
    creds: Option<&StsCredentials>,
    region: Option<&str>,
) -> Result<SessionCredentials, StsError> {
    let incomplete = |what: &str| StsError::Unusable {
        message: format!(
            "STS answered without {what}; if a proxy or a test endpoint (AWS_ENDPOINT_URL) stands in for STS, check it"
        ),
    };
    let creds = creds.ok_or_else(|| incomplete("credentials"))?;
    for (field, what) in [
        (creds.access_key_id(), "an access key id"),
        (creds.secret_access_key(), "a secret access key"),
        (creds.session_token(), "a session token"),
    ] {
        if field.is_empty() {
            return Err(incomplete(what));
        }
    }
    let expiration = creds.expiration().secs();
    let now = crate::clock::unix_now_i64();
    if expiration <= now {
        return Err(StsError::Unusable {
            message: format!(
                "STS returned a session that expired {} s ago; check this machine's clock (`mfa-agent doctor`)",
                now - expiration
            ),
        });
    }
    Ok(SessionCredentials {
        access_key_id: creds.access_key_id().to_owned(),
        secret_access_key: SecretString::new(creds.secret_access_key().to_owned()),
        session_token: SecretString::new(creds.session_token().to_owned()),
        expiration,
        region: region.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts_credentials(key: &str, secret: &str, token: &str, expiration: i64) -> StsCredentials {
        StsCredentials::builder()
            .access_key_id(key)
            .secret_access_key(secret)
            .session_token(token)
            .expiration(DateTime::from_secs(expiration))
            .build()
            .unwrap()
    }

    #[test]
    fn credentials_that_could_not_work_are_refused() {
        let later = crate::clock::unix_now_i64() + 3600;
        let ok = convert(Some(&sts_credentials("ASIA1", "s", "t", later)), None).unwrap();
        assert_eq!(ok.access_key_id, "ASIA1");
        for (creds, needle) in [
            (
                sts_credentials("", "s", "t", later),
                "without an access key id",
            ),
            (
                sts_credentials("ASIA1", "", "t", later),
                "without a secret access key",
            ),
            (
                sts_credentials("ASIA1", "s", "", later),
                "without a session token",
            ),
            (sts_credentials("ASIA1", "s", "t", 0), "expired"),
        ] {
            let err = convert(Some(&creds), None).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(
            convert(None, None)
                .unwrap_err()
                .to_string()
                .contains("without credentials")
        );
    }

    #[test]
    fn aws_error_codes_become_advice() {
        let mfa = classify(
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code.".into(),
            403,
        );
        assert!(matches!(mfa, StsError::MfaRejected { .. }));
        assert!(mfa.to_string().contains("retry in 30 s"));
        assert!(matches!(
            classify("AccessDenied", "not authorized".into(), 403),
            StsError::AccessDenied { .. }
        ));
        assert!(matches!(
            classify("Throttling", "Rate exceeded".into(), 400),
            StsError::Throttled { .. }
        ));
        assert_eq!(
            classify("InternalFailure", String::new(), 503),
            StsError::Unavailable { status: 503 }
        );
    }
}
