//! `mfa-agent login P`: an AWS console sign-in link made from the profile's role session,
//! through the federation endpoint: getSigninToken with the session, then the login URL,
//! as the console's own federation and aws-vault's `login` do.

use std::time::Duration;

use anyhow::{Context as _, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use zeroize::Zeroizing;

use super::super::door::Visitor;
use super::super::minter::Minter;
use crate::aws::profile::Profiles;
use crate::config::Config;
use crate::protocol::{Response, SessionCredentials};
use crate::secret::SecretString;

/// A URL query component: everything but RFC 3986's unreserved characters encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The session as the federation endpoint reads it.
#[derive(Serialize)]
struct FederationSession<'a> {
    #[serde(rename = "sessionId")]
    id: &'a str,
    #[serde(rename = "sessionKey")]
    key: &'a str,
    #[serde(rename = "sessionToken")]
    token: &'a str,
}

pub async fn login(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    let profiles = Profiles::load().await?;
    let plan = profiles.plan(&profile)?;
    if plan.role.is_none() {
        bail!(
            "profile {profile:?} is an IAM user's MFA session (GetSessionToken), which the console sign-in endpoint does not take: AWS signs an IAM user in from the CLI only through GetFederationToken, whose session carries no MFA, so MFA-only policies deny it; open the console with a role profile (role_arn, source_profile = {profile}), or sign in with your password and MFA device"
        );
    }
    let session = minter
        .credentials(&profile, false, &visitor.progress)
        .await?;
    let (endpoint, destination) = endpoints(minter.config(), plan.region.as_deref());
    let timeout = Duration::from_secs(minter.config().sts_timeout_seconds);
    let token = signin_token(&endpoint, &session, timeout).await?;
    let url = format!(
        "{endpoint}?Action=login&Issuer=mfa-agent&Destination={}&SigninToken={}",
        utf8_percent_encode(&destination, COMPONENT),
        utf8_percent_encode(token.expose(), COMPONENT)
    );
    Ok(Response::SigninUrl {
        url: SecretString::new(url),
    })
}

/// The federation endpoint and the console for the profile's partition (from its region),
/// unless config.toml names them (`signin_endpoint`, `console_url`).
fn endpoints(config: &Config, region: Option<&str>) -> (String, String) {
    let region = region.unwrap_or("");
    let (signin, console) = if region.starts_with("us-gov-") {
        (
            "https://signin.amazonaws-us-gov.com/federation",
            "https://console.amazonaws-us-gov.com/",
        )
    } else if region.starts_with("cn-") {
        (
            "https://signin.amazonaws.cn/federation",
            "https://console.amazonaws.cn/",
        )
    } else {
        (
            "https://signin.aws.amazon.com/federation",
            "https://console.aws.amazon.com/",
        )
    };
    (
        config
            .signin_endpoint
            .clone()
            .unwrap_or_else(|| signin.into()),
        config.console_url.clone().unwrap_or_else(|| console.into()),
    )
}

/// getSigninToken's answer.
#[derive(serde::Deserialize)]
struct SigninAnswer {
    #[serde(rename = "SigninToken")]
    token: String,
}

/// getSigninToken: the session in, a sign-in token (valid 15 minutes) out.
async fn signin_token(
    endpoint: &str,
    session: &SessionCredentials,
    timeout: Duration,
) -> anyhow::Result<SecretString> {
    let json = Zeroizing::new(serde_json::to_string(&FederationSession {
        id: &session.access_key_id,
        key: session.secret_access_key.expose(),
        token: session.session_token.expose(),
    })?);
    let url = Zeroizing::new(format!(
        "{endpoint}?Action=getSigninToken&Session={}",
        utf8_percent_encode(&json, COMPONENT)
    ));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("failed to set up an HTTPS client")?;
    let answer = client.get(url.as_str()).send().await.map_err(|e| {
        anyhow::anyhow!(
            "failed to reach the sign-in endpoint {endpoint} ({}); check the network",
            crate::report::one_sentence(&e)
        )
    })?;
    let status = answer.status();
    let body = Zeroizing::new(answer.text().await.unwrap_or_default());
    if !status.is_success() {
        bail!(
            "the sign-in endpoint {endpoint} refused the session (HTTP {}): {}",
            status.as_u16(),
            body.chars().take(200).collect::<String>().trim()
        );
    }
    let answer: SigninAnswer = serde_json::from_str(&body).with_context(|| {
        format!("the sign-in endpoint {endpoint} answered without a SigninToken")
    })?;
    Ok(SecretString::new(answer.token))
}
