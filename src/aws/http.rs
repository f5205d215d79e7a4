//! The HTTP client the agent reaches STS and IAM with: rustls on ring (the one TLS crypto
//! provider in the build, which reqwest and ctap-hid-fido2 need anyway), a caller's proxy
//! and CA bundle, and connections kept alive from one call to the next. Built once per
//! caller context and shared by every SDK client made for it: a mint then pays neither for
//! loading the root certificates nor, within the pool's idle time, for a TLS handshake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sts::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};
use thiserror::Error;

/// How long an idle connection to AWS stays open for the next call.
const POOL_IDLE: Duration = Duration::from_secs(90);

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransportError {
    #[error(
        "{variable} is not a proxy URL mfa-agent can use ({detail}); set it to http://HOST:PORT (or unset it) and retry"
    )]
    BadProxy {
        variable: &'static str,
        detail: String,
    },
    #[error(
        "AWS_CA_BUNDLE={path} cannot be used: {detail}; point it at a PEM file of CA certificates (or unset it) and retry"
    )]
    BadCaBundle { path: String, detail: String },
}

/// The way out to AWS: a proxy (or none), and the certificates a server must chain to.
#[derive(Clone, Default)]
pub struct Transport {
    /// The proxy's URL and the variable it came from, and the hosts that bypass it
    /// (`NO_PROXY`).
    pub proxy: Option<Proxy>,
    /// `AWS_CA_BUNDLE`'s path and contents: PEM certificates trusted instead of the
    /// system's (as in the AWS CLI, the bundle replaces the system roots).
    pub ca_bundle: Option<(String, Vec<u8>)>,
}

#[derive(Clone)]
pub struct Proxy {
    pub variable: &'static str,
    pub url: String,
    pub no_proxy: Option<String>,
}

impl Transport {
    /// The client for this transport. Proxy and certificates are checked here, so that a
    /// bad one is an error for its caller rather than a panic deep in the TLS stack.
    pub fn client(&self) -> Result<SharedHttpClient, TransportError> {
        let proxy = match &self.proxy {
            None => ProxyConfig::disabled(),
            Some(proxy) => {
                let config =
                    ProxyConfig::all(proxy.url.as_str()).map_err(|e| TransportError::BadProxy {
                        variable: proxy.variable,
                        detail: e.to_string(),
                    })?;
                match &proxy.no_proxy {
                    Some(rules) => config.no_proxy(rules),
                    None => config,
                }
            }
        };
        let trust = match &self.ca_bundle {
            None => TrustStore::default(),
            Some((path, pem)) => TrustStore::empty().with_pem_certificate(usable_roots(path, pem)?),
        };
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .expect("a TLS context is only a trust store");
        Ok(SharedHttpClient::new(Client {
            proxied: self.proxy.is_some(),
            proxy,
            tls,
            connectors: Arc::default(),
        }))
    }
}

/// The process's client straight to AWS, trusting the system's certificates: built once,
/// so every caller shares its connections.
#[must_use]
pub fn direct() -> SharedHttpClient {
    static DIRECT: std::sync::OnceLock<SharedHttpClient> = std::sync::OnceLock::new();
    DIRECT
        .get_or_init(|| {
            Transport::default()
                .client()
                .expect("no proxy or bundle to check")
        })
        .clone()
}

/// The certificates of a CA bundle that rustls can use as trust anchors, as PEM for the
/// SDK's TLS setup (which panics on one it cannot read). A system bundle (a common value of
/// AWS_CA_BUNDLE) may hold a few rustls refuses: those are left out, as rustls's own loader
/// of the system's roots does; a bundle with none usable is an error.
fn usable_roots(path: &str, pem: &[u8]) -> Result<Vec<u8>, TransportError> {
    use base64::Engine as _;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let bad = |detail: String| TransportError::BadCaBundle {
        path: path.to_owned(),
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("it is not PEM ({e})")))?;
    let mut usable = Vec::new();
    let mut skipped = 0;
    for cert in certs {
        let mut probe = rustls::RootCertStore::empty();
        if probe.add(cert.clone()).is_err() {
            skipped += 1;
            continue;
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        usable.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            usable.extend_from_slice(line);
            usable.push(b'\n');
        }
        usable.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    if usable.is_empty() {
        return Err(bad(if skipped == 0 {
            "it holds no certificate".into()
        } else {
            format!("none of its {skipped} certificates can be used")
        }));
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            path,
            "AWS_CA_BUNDLE holds certificates rustls cannot use; they are left out"
        );
    }
    Ok(usable)
}

/// An [`HttpClient`] whose connectors (one per set of timeouts the SDK asks for, in
/// practice one) keep their connection pools for the life of the client.
#[derive(Clone)]
struct Client {
    proxied: bool,
    proxy: ProxyConfig,
    tls: TlsContext,
    connectors: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

/// A connector's connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// Names no proxy URL: it may carry a password, and the SDK logs its clients.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().expect("connector cache poisoned");
        connectors
            .entry(key)
            .or_insert_with(|| {
                let mut builder = Connector::builder()
                    .connector_settings(settings.clone())
                    .pool_idle_timeout(POOL_IDLE)
                    .proxy_config(self.proxy.clone());
                builder.set_sleep_impl(components.sleep_impl());
                let connector = builder
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .tls_context(self.tls.clone())
                    .build();
                SharedHttpConnector::new(connector)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_keeps_the_certificates_rustls_can_use() {
        // A certificate-shaped block whose content is no certificate, beside the system's.
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            usable_roots("junk.pem", junk),
            Err(TransportError::BadCaBundle { .. })
        ));
        assert!(usable_roots("empty.pem", b"").is_err());
        let Ok(system) = std::fs::read("/etc/ssl/certs/ca-certificates.crt") else {
            return;
        };
        let mut mixed = junk.to_vec();
        mixed.extend_from_slice(&system);
        let kept = usable_roots("mixed.pem", &mixed).unwrap();
        let transport = Transport {
            proxy: None,
            ca_bundle: Some(("mixed.pem".into(), mixed)),
        };
        assert!(transport.client().is_ok());
        assert!(kept.len() > 1000, "the system's roots are kept");
    }
}
