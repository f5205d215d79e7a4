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

pub(super) async fn login(
    minter: &Minter,
    visitor: &Visitor,
    profile: String,
) -> anyhow::Result<Response> {
    let profiles = visitor.progress.context().profiles().await?;
    let plan = profiles.plan(&profile)?;
    if plan.role.is_none() {
        // The profile with the keys: `profile` itself, or the one its credential_process
        // names (`work-mfa` stands for `work`).
        let source = &plan.source_profile;
        bail!(
            "profile {profile:?} is an IAM user's MFA session (GetSessionToken), which the console sign-in endpoint does not take: AWS signs an IAM user in from the CLI only through GetFederationToken, whose session carries no MFA, so MFA-only policies deny it; open the console with a role profile (role_arn, source_profile = {source}), or sign in with your password and MFA device"
        );
    }
    let session = super::credentials::session(minter, &profile, false, &visitor.progress).await?;
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

/// getSigninToken: the session in, a sign-in token (valid 15 minutes) out. The request's
/// query holds the session's secret key and token, so no error from here carries the URL,
/// the query or the answer's body unscrubbed: each failure is described by what happened.
async fn signin_token(
    endpoint: &str,
    session: &SessionCredentials,
    timeout: Duration,
) -> anyhow::Result<SecretString> {
    check_endpoint(endpoint)?;
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
            "failed to reach the sign-in endpoint {endpoint}: {}",
            unreached(&e, timeout)
        )
    })?;
    let status = answer.status();
    let body = Zeroizing::new(answer.text().await.unwrap_or_default());
    if !status.is_success() {
        // The body is shown for the endpoint's reason, but a proxy's error page may echo the
        // request: one that holds a part of the session is not shown.
        let shown = Zeroizing::new(body.chars().take(200).collect::<String>());
        let reason = if holds_session(&body, session) {
            "its answer echoes the request, which holds the session, so it is not shown"
        } else {
            shown.trim()
        };
        bail!(
            "the sign-in endpoint {endpoint} refused the session (HTTP {}): {reason}; {}",
            status.as_u16(),
            if status.is_server_error() {
                "retry in a minute"
            } else {
                "check signin_endpoint in config.toml and any proxy"
            }
        );
    }
    let answer: SigninAnswer = serde_json::from_str(&body).map_err(|_| {
        anyhow::anyhow!(
            "the sign-in endpoint {endpoint} answered without a SigninToken; check signin_endpoint in config.toml"
        )
    })?;
    Ok(SecretString::new(answer.token))
}

/// Whether `text` holds the session's secret key or token, as they are or percent-encoded.
fn holds_session(text: &str, session: &SessionCredentials) -> bool {
    [&session.secret_access_key, &session.session_token]
        .iter()
        .any(|secret| {
            let encoded =
                Zeroizing::new(utf8_percent_encode(secret.expose(), COMPONENT).to_string());
            text.contains(secret.expose()) || text.contains(encoded.as_str())
        })
        || text.contains("Session=")
}

/// Why the endpoint was not reached, from the error's kind and its causes: never the error's
/// own text, which names the URL.
fn unreached(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} s (sts_timeout_seconds in config.toml); check the network and any proxy",
            timeout.as_secs()
        );
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let cause = causes.last().map_or("no cause given", String::as_str);
    if e.is_connect() {
        format!("could not connect ({cause}); check the network, DNS and any proxy")
    } else {
        format!("the request failed ({cause}); check the network and any proxy")
    }
}

/// The session travels in the endpoint's query: only over TLS, or to this machine (a test
/// endpoint, a local forwarder).
fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        anyhow::anyhow!("signin_endpoint {endpoint:?} in config.toml is not a URL ({e})")
    })?;
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        bail!(
            "signin_endpoint {endpoint:?} in config.toml must be https:// (http:// only on this machine, 127.0.0.1 or ::1): the session's secret key travels in its query"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;

    /// A session whose secret and token have characters percent-encoding changes.
    fn session() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIASESSION000000000".into(),
            secret_access_key: SecretString::new("wJalr/XUtnFEMI+K7MDENG=secretkey".into()),
            session_token: SecretString::new("FwoGZXIvYXdzEJr//////////sessiontoken==".into()),
            expiration: 0,
            region: None,
        }
    }

    /// How the stand-in endpoint on 127.0.0.1 treats its one request.
    enum Answer {
        /// Replies with this status and body; `{request}` in the body becomes the request
        /// line, as a proxy's error page may show it.
        Http(u16, &'static str),
        /// Reads the request and closes the connection without a word.
        Close,
        /// Reads the request and says nothing until the test ends.
        Silence,
    }

    fn endpoint(answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/federation", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 8192];
            let n = stream.read(&mut request).unwrap_or(0);
            let line = String::from_utf8_lossy(&request[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            match answer {
                Answer::Http(status, body) => {
                    let body = body.replace("{request}", &line);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Answer::Close => {}
                Answer::Silence => std::thread::sleep(Duration::from_secs(30)),
            }
        });
        url
    }

    fn fails(endpoint: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let session = session();
        let err = runtime
            .block_on(signin_token(endpoint, &session, Duration::from_secs(2)))
            .map(|_| ())
            .unwrap_err();
        let said = format!("{err:#}");
        for secret in [&session.secret_access_key, &session.session_token] {
            let encoded = utf8_percent_encode(secret.expose(), COMPONENT).to_string();
            assert!(
                !said.contains(secret.expose()) && !said.contains(&encoded),
                "a secret in: {said}"
            );
        }
        assert!(!said.contains("Session="), "the query in: {said}");
        said
    }

    #[test]
    fn no_failure_of_the_sign_in_endpoint_carries_the_session() {
        let refused = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/federation", listener.local_addr().unwrap())
        };
        let cases = [
            (refused, "could not connect"),
            // No name resolves under .invalid (RFC 6761), with or without a network.
            (
                "https://signin.invalid/federation".to_owned(),
                "failed to reach",
            ),
            (
                endpoint(Answer::Http(400, "bad request: {request}")),
                "HTTP 400): its answer echoes the request",
            ),
            (
                endpoint(Answer::Http(503, "Service Unavailable")),
                "HTTP 503): Service Unavailable",
            ),
            (
                endpoint(Answer::Http(200, "<html>a captive portal</html>")),
                "without a SigninToken",
            ),
            (endpoint(Answer::Close), "failed to reach"),
            (endpoint(Answer::Silence), "no answer within 2 s"),
        ];
        for (url, needle) in cases {
            let said = fails(&url);
            assert!(said.contains(needle), "{url}: {said}");
            assert!(
                said.contains("check") || said.contains("retry"),
                "it says what to do: {said}"
            );
        }
    }

    #[test]
    fn the_session_goes_only_over_tls_or_to_this_machine() {
        for url in [
            "http://signin.example.com/federation",
            "http://10.0.0.1/federation",
            "ftp://127.0.0.1/federation",
        ] {
            let said = fails(url);
            assert!(said.contains("must be https://"), "{url}: {said}");
        }
        for url in [
            "https://signin.aws.amazon.com/federation",
            "http://127.0.0.1:1/federation",
            "http://[::1]:1/federation",
            "http://localhost:1/federation",
        ] {
            assert!(check_endpoint(url).is_ok(), "{url}");
        }
    }
}
