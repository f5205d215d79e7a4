//! The IAM calls MFA device enrolment needs, through aws-sdk-iam, with errors turned into
//! advice that says whether anything changed in AWS.

use std::time::Duration;

use aws_sdk_iam::config::{
    BehaviorVersion, Credentials, Region, SharedHttpClient, retry::RetryConfig,
};
use aws_sdk_iam::error::SdkError;
use thiserror::Error;

use super::LongTermKeys;
use super::call::{self, Failure};
use crate::secret::SecretString;

/// IAM is global; the SDK signs its calls for us-east-1 in the aws partition and finds the
/// endpoint of other partitions (GovCloud, China) from a region of theirs.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IamError {
    #[error(
        "IAM refused another MFA device: the user has as many as AWS allows (8) ({message}); remove one that is no longer used (`mfa-agent aws devices` lists them)"
    )]
    TooManyDevices { message: String },
    #[error(
        "an MFA device of that name exists in the account already ({message}); choose another with --device-name"
    )]
    NameTaken { message: String },
    #[error(
        "AWS rejected the two consecutive codes ({message}); check this machine's clock (`timedatectl`) and retry in 30 s"
    )]
    CodesRejected { message: String },
    #[error(
        "AWS denied the IAM call ({message}); the user's policy must allow it (the README's Force-MFA policy does)"
    )]
    AccessDenied { message: String },
    #[error("IAM has no such user or device ({message})")]
    NoSuchEntity { message: String },
    #[error("AWS is throttling IAM calls ({message}); wait a minute and retry")]
    Throttled { message: String },
    #[error("IAM is unavailable (HTTP {status}); retry shortly")]
    Unavailable { status: u16 },
    #[error("IAM did not answer within {seconds} s; check the network")]
    Timeout { seconds: u64 },
    #[error("failed to reach IAM ({detail}); check the network and any proxy settings")]
    Network { detail: String },
    #[error("IAM refused the request: {code}: {message}")]
    Other { code: String, message: String },
    /// An answer that cannot be used (the SDK fills missing fields with empty values).
    #[error("{message}")]
    Unusable { message: String },
}

/// A virtual MFA device IAM just created: its serial and its seed (base32).
pub struct NewDevice {
    pub serial: String,
    pub seed: SecretString,
}

/// An IAM client factory, like [`super::sts::Sts`]: one client per call.
#[derive(Debug, Clone)]
pub struct Iam {
    endpoint: Option<String>,
    timeout: Duration,
    /// Shared by every client made here (see [`super::http`]).
    http: SharedHttpClient,
}

impl Iam {
    /// `AWS_ENDPOINT_URL_IAM` or `AWS_ENDPOINT_URL` redirect calls, as in the AWS SDKs.
    #[must_use]
    pub fn from_env(timeout: Duration) -> Self {
        let endpoint = ["AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"]
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
        }
    }

    /// No retries: a retried create or enable whose first attempt reached AWS would fail
    /// for the wrong reason (a name taken by itself, codes spent by itself).
    fn client(&self, keys: Credentials, region: Option<&str>) -> aws_sdk_iam::Client {
        let mut config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.unwrap_or(DEFAULT_REGION).to_owned()))
            .credentials_provider(keys)
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(call::timeouts(self.timeout));
        if let Some(url) = &self.endpoint {
            config = config.endpoint_url(url);
        }
        aws_sdk_iam::Client::from_conf(config.build())
    }

    /// CreateVirtualMFADevice: the device and its seed, which must go straight into the
    /// vault.
    pub async fn create_virtual_mfa_device(
        &self,
        keys: Credentials,
        region: Option<&str>,
        name: &str,
    ) -> Result<NewDevice, IamError> {
        let out = self
            .client(keys, region)
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name)
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        let device = out.virtual_mfa_device();
        let seed = device
            .and_then(|d| d.base32_string_seed())
            .and_then(|blob| String::from_utf8(blob.as_ref().to_vec()).ok());
        // The SDK fills a missing serial with "" and a missing seed with no bytes.
        match (device, seed) {
            (Some(device), Some(seed))
                if device.serial_number().starts_with("arn:") && !seed.is_empty() =>
            {
                Ok(NewDevice {
                    serial: device.serial_number().to_owned(),
                    seed: SecretString::new(seed),
                })
            }
            _ => Err(IamError::Unusable {
                message: format!(
                    "IAM answered CreateVirtualMFADevice without the device's serial and seed; if it was created, remove it with `aws iam delete-virtual-mfa-device --serial-number arn:aws:iam::ACCOUNT:mfa/{name}`"
                ),
            }),
        }
    }

    /// EnableMFADevice with two consecutive codes.
    pub async fn enable(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
        serial: &str,
        codes: (&str, &str),
    ) -> Result<(), IamError> {
        self.client(keys, region)
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(codes.0)
            .authentication_code2(codes.1)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.map_error(&e))
    }

    /// ResyncMFADevice with two consecutive codes.
    pub async fn resync(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
        serial: &str,
        codes: (&str, &str),
    ) -> Result<(), IamError> {
        self.client(keys, region)
            .resync_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(codes.0)
            .authentication_code2(codes.1)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.map_error(&e))
    }

    /// DeactivateMFADevice (policies demand an MFA session for it).
    pub async fn deactivate(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
        serial: &str,
    ) -> Result<(), IamError> {
        self.client(keys, region)
            .deactivate_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.map_error(&e))
    }

    /// DeleteVirtualMFADevice.
    pub async fn delete(
        &self,
        keys: Credentials,
        region: Option<&str>,
        serial: &str,
    ) -> Result<(), IamError> {
        self.client(keys, region)
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.map_error(&e))
    }

    /// ListMFADevices: each device's serial and when it was enabled (Unix seconds).
    pub async fn devices(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
    ) -> Result<Vec<(String, i64)>, IamError> {
        let out = self
            .client(keys, region)
            .list_mfa_devices()
            .user_name(user)
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        Ok(out
            .mfa_devices()
            .iter()
            .map(|d| (d.serial_number().to_owned(), d.enable_date().secs()))
            .collect())
    }

    /// ListAccessKeys: the ids of the user's access keys.
    pub async fn access_keys(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
    ) -> Result<Vec<String>, IamError> {
        let out = self
            .client(keys, region)
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(str::to_owned))
            .collect())
    }

    /// CreateAccessKey: a new pair of long-term keys for the user.
    pub async fn create_access_key(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
    ) -> Result<LongTermKeys, IamError> {
        let out = self
            .client(keys, region)
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        let key = out.access_key().ok_or_else(|| IamError::Other {
            code: "NoKey".into(),
            message: "IAM created an access key but returned none".into(),
        })?;
        Ok(LongTermKeys {
            access_key_id: key.access_key_id().to_owned(),
            secret_access_key: SecretString::new(key.secret_access_key().to_owned()),
        })
    }

    /// DeleteAccessKey.
    pub async fn delete_access_key(
        &self,
        keys: Credentials,
        region: Option<&str>,
        user: &str,
        access_key_id: &str,
    ) -> Result<(), IamError> {
        self.client(keys, region)
            .delete_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.map_error(&e))
    }

    fn map_error<E, R>(&self, err: &SdkError<E, R>) -> IamError
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata,
        R: call::HttpStatus,
    {
        match call::failure(err) {
            Failure::Service {
                code,
                message,
                status,
            } => classify(&code, message, status),
            Failure::Timeout => IamError::Timeout {
                seconds: self.timeout.as_secs(),
            },
            Failure::Network(detail) => IamError::Network { detail },
            Failure::Unreadable(status) if status >= 500 => IamError::Unavailable { status },
            Failure::Unreadable(status) => IamError::Other {
                code: format!("HTTP {status}"),
                message: "unreadable response".into(),
            },
        }
    }
}

fn classify(code: &str, message: String, status: u16) -> IamError {
    match code {
        "LimitExceeded" => IamError::TooManyDevices { message },
        "EntityAlreadyExists" => IamError::NameTaken { message },
        "InvalidAuthenticationCode" => IamError::CodesRejected { message },
        "AccessDenied" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            IamError::AccessDenied { message }
        }
        "NoSuchEntity" => IamError::NoSuchEntity { message },
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            IamError::Throttled { message }
        }
        _ if status >= 500 => IamError::Unavailable { status },
        _ => IamError::Other {
            code: code.to_owned(),
            message,
        },
    }
}

/// The IAM user name in a caller ARN (`arn:aws:iam::123456789012:user/PATH/NAME`); `None`
/// for a role session or the root user, which have no MFA devices of their own to enrol.
#[must_use]
pub fn user_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let path = resource.strip_prefix("user/")?;
    path.rsplit('/').next().filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_comes_from_an_iam_user_arn_only() {
        assert_eq!(
            user_of_arn("arn:aws:iam::123456789012:user/alice"),
            Some("alice")
        );
        assert_eq!(
            user_of_arn("arn:aws:iam::123456789012:user/team/dev/bob"),
            Some("bob")
        );
        assert_eq!(
            user_of_arn("arn:aws:sts::123456789012:assumed-role/admin/session"),
            None
        );
        assert_eq!(user_of_arn("arn:aws:iam::123456789012:root"), None);
    }

    #[test]
    fn iam_error_codes_become_advice() {
        assert!(matches!(
            classify("LimitExceeded", "max 8".into(), 409),
            IamError::TooManyDevices { .. }
        ));
        let taken = classify("EntityAlreadyExists", "exists".into(), 409);
        assert!(taken.to_string().contains("--device-name"));
        assert!(matches!(
            classify("InvalidAuthenticationCode", "bad".into(), 403),
            IamError::CodesRejected { .. }
        ));
        assert_eq!(
            classify("ServiceFailure", String::new(), 500),
            IamError::Unavailable { status: 500 }
        );
    }
}
