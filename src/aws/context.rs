//! A caller's AWS context: which config files its profiles come from, where STS and IAM
//! are, the region, and the way out (proxy, CA bundle), read from the environment the
//! client sent ([`CallerEnv`]) as the AWS CLI would read its own. One agent serves every
//! shell of its user; each gets the profiles and the network its own `aws` command sees.
//!
//! Sessions are keyed by [`ContextId`] and profile name: the variables that change which
//! session a profile name means (its files and its STS endpoint). The proxy, CA bundle and
//! region only change how STS is reached, so shells that differ in them share sessions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_smithy_runtime_api::client::endpoint::EndpointFuture;
use aws_types::os_shim_internal::Env;

use super::http::{Proxy, Transport, TransportError};
use super::iam::Iam;
use super::profile::{ProfileError, Profiles};
use super::sts::Sts;
use crate::protocol::CallerEnv;

/// The variables that change which session a profile name stands for, in the order a
/// context is named by.
const IDENTITY: [&str; 4] = [
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
];

/// Which sessions a context shares: its [`IDENTITY`] variables, named as a user would set
/// them (`AWS_CONFIG_FILE=/home/me/project/aws.config`). The agent's own context (in which
/// it was started, usually the same as every shell's) is not named: status, prompts and
/// the audit log name a context only where it differs.
#[derive(Clone, Default)]
pub struct ContextId {
    key: Arc<str>,
    named: bool,
}

impl ContextId {
    fn of(env: &CallerEnv) -> Self {
        let named: Vec<String> = IDENTITY
            .iter()
            .filter_map(|&name| env.get(name).map(|value| format!("{name}={value}")))
            .collect();
        Self {
            named: !named.is_empty(),
            key: named.join(" ").into(),
        }
    }

    /// How status and prompts name the context: `None` for the agent's own.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        match (self.named, self.key.is_empty()) {
            (false, _) => None,
            // A shell without the variables an agent started elsewhere had.
            (true, true) => Some("no AWS_CONFIG_FILE or AWS_ENDPOINT_URL"),
            (true, false) => Some(&self.key),
        }
    }
}

impl PartialEq for ContextId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ContextId {}

impl std::hash::Hash for ContextId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Debug for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label().unwrap_or("default"))
    }
}

/// Everything a request needs to read profiles and reach AWS as its caller would.
pub struct AwsContext {
    id: ContextId,
    env: CallerEnv,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`: ahead of a profile's own, as in the SDKs.
    region: Option<String>,
    /// The transport is checked when built; a bad proxy or CA bundle is an error for the
    /// requests that call AWS, not for `status` or `lock` on the same connection.
    sts: Result<Sts, TransportError>,
    iam: Result<Iam, TransportError>,
}

impl AwsContext {
    /// The context of `env`; calls time out after `timeout`.
    #[must_use]
    pub fn new(env: CallerEnv, timeout: Duration) -> Self {
        let endpoint = |service: &str| {
            env.get(service)
                .or_else(|| env.get("AWS_ENDPOINT_URL"))
                .map(str::to_owned)
        };
        let sts_endpoint = endpoint("AWS_ENDPOINT_URL_STS");
        let iam_endpoint = endpoint("AWS_ENDPOINT_URL_IAM");
        let global = env
            .get("AWS_STS_REGIONAL_ENDPOINTS")
            .is_some_and(|v| v.eq_ignore_ascii_case("legacy"));
        let sts = transport(&env, sts_endpoint.as_deref())
            .and_then(|t| t.client())
            .map(|http| Sts::new(sts_endpoint, timeout, http).with_legacy_global_endpoint(global));
        let iam = transport(&env, iam_endpoint.as_deref())
            .and_then(|t| t.client())
            .map(|http| Iam::new(iam_endpoint, timeout, http));
        let region = env
            .get("AWS_REGION")
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .map(str::to_owned);
        Self {
            id: ContextId::of(&env),
            env,
            region,
            sts,
            iam,
        }
    }

    /// The agent's own context, for a client that sends none.
    #[must_use]
    pub fn of_this_process(timeout: Duration) -> Self {
        Self::new(CallerEnv::of_this_process(), timeout)
    }

    #[must_use]
    pub fn id(&self) -> &ContextId {
        &self.id
    }

    /// The caller's profiles: its config and credentials files, `~` being this user's home.
    pub async fn profiles(&self) -> Result<Profiles, ProfileError> {
        let home = std::env::var("HOME").ok();
        let mut vars: Vec<(&str, &str)> = ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]
            .iter()
            .filter_map(|&name| Some((name, self.env.get(name)?)))
            .collect();
        if let Some(home) = &home {
            vars.push(("HOME", home));
        }
        Profiles::load_in(&Env::from_slice(&vars)).await
    }

    /// STS as the caller reaches it.
    pub fn sts(&self) -> Result<&Sts, TransportError> {
        self.sts.as_ref().map_err(Clone::clone)
    }

    /// IAM as the caller reaches it.
    pub fn iam(&self) -> Result<&Iam, TransportError> {
        self.iam.as_ref().map_err(Clone::clone)
    }

    /// The region for a call on behalf of a profile whose own is `profile_region`.
    #[must_use]
    pub fn region<'a>(&'a self, profile_region: Option<&'a str>) -> Option<&'a str> {
        self.region.as_deref().or(profile_region)
    }
}

/// The contexts of the agent's callers, each built once (its HTTP client keeps its
/// connections, its CA bundle is read once), and the agent's own for clients that send none.
pub struct Contexts {
    own: Arc<AwsContext>,
    timeout: Duration,
    known: std::sync::Mutex<std::collections::HashMap<CallerEnv, Arc<AwsContext>>>,
}

/// More contexts than any user's shells have; past it the oldest are built again on use.
const MAX_CONTEXTS: usize = 64;

impl Contexts {
    #[must_use]
    pub fn new(mut own: AwsContext, timeout: Duration) -> Self {
        own.id.named = false;
        Self {
            own: Arc::new(own),
            timeout,
            known: std::sync::Mutex::default(),
        }
    }

    /// The context of a client that sent `env` (the agent's own for `None`).
    pub fn get(&self, env: Option<CallerEnv>) -> Arc<AwsContext> {
        let Some(env) = env else {
            return self.own.clone();
        };
        let env = env.cleaned();
        // Usually a shell's environment is the one the agent was started with.
        if env == self.own.env {
            return self.own.clone();
        }
        let mut known = self.known.lock().expect("contexts lock poisoned");
        if let Some(context) = known.get(&env) {
            return context.clone();
        }
        if known.len() >= MAX_CONTEXTS {
            known.clear();
        }
        let mut context = AwsContext::new(env.clone(), self.timeout);
        context.id.named = context.id != self.own.id;
        let context = Arc::new(context);
        known.insert(env, context.clone());
        context
    }

    /// The agent's own context.
    #[must_use]
    pub fn own(&self) -> &Arc<AwsContext> {
        &self.own
    }
}

/// The proxy for calls to `endpoint` (AWS's own, https, when `None`), from the variables
/// curl and the AWS CLI read, in their order; and the CA bundle.
fn transport(env: &CallerEnv, endpoint: Option<&str>) -> Result<Transport, TransportError> {
    let plain_http = endpoint.is_some_and(|url| url.starts_with("http://"));
    let candidates: [&'static str; 4] = if plain_http {
        ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    };
    let proxy = candidates.iter().find_map(|&variable| {
        Some(Proxy {
            variable,
            url: env.get(variable)?.to_owned(),
            no_proxy: env
                .get("NO_PROXY")
                .or_else(|| env.get("no_proxy"))
                .map(str::to_owned),
        })
    });
    let ca_bundle = match env.get("AWS_CA_BUNDLE") {
        None => None,
        Some(path) => {
            let expanded = match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
                _ => path.into(),
            };
            let pem = std::fs::read(&expanded).map_err(|e| TransportError::BadCaBundle {
                path: path.to_owned(),
                detail: format!("it cannot be read ({e})"),
            })?;
            Some((path.to_owned(), pem))
        }
    };
    Ok(Transport { proxy, ca_bundle })
}

/// STS's global endpoint where `AWS_STS_REGIONAL_ENDPOINTS=legacy` asks for it: the SDK's
/// own rules with their `UseGlobalEndpoint` switch on (which keeps regional endpoints for
/// the regions that never had the global one).
#[derive(Debug, Default)]
pub(super) struct LegacyGlobalEndpoint;

impl ResolveEndpoint for LegacyGlobalEndpoint {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let global = Params::builder()
            .set_region(params.region().map(str::to_owned))
            .set_use_dual_stack(params.use_dual_stack())
            .set_use_fips(params.use_fips())
            .set_endpoint(params.endpoint().map(str::to_owned))
            .use_global_endpoint(true)
            .build();
        EndpointFuture::new(async move {
            let params = global?;
            DefaultResolver::new().resolve_endpoint(&params).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> CallerEnv {
        CallerEnv::from_pairs(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())))
    }

    #[test]
    fn sessions_are_shared_across_proxies_and_regions_but_not_configs_or_endpoints() {
        let plain = ContextId::of(&env(&[]));
        assert_eq!(plain.label(), None);
        let proxied = ContextId::of(&env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("AWS_REGION", "eu-west-1"),
        ]));
        assert_eq!(proxied, plain);
        let project = ContextId::of(&env(&[("AWS_CONFIG_FILE", "/p/config")]));
        assert_ne!(project, plain);
        assert_eq!(project.label(), Some("AWS_CONFIG_FILE=/p/config"));
        let endpoint = ContextId::of(&env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]));
        assert_ne!(endpoint, plain);
        assert_ne!(endpoint, project);
    }

    #[test]
    fn only_a_context_other_than_the_agents_own_is_named() {
        let timeout = Duration::from_secs(1);
        let project = env(&[("AWS_CONFIG_FILE", "/p/config")]);
        let contexts = Contexts::new(AwsContext::new(project.clone(), timeout), timeout);
        assert_eq!(contexts.own().id().label(), None);
        assert_eq!(contexts.get(Some(project)).id().label(), None);
        let other = contexts.get(Some(env(&[("AWS_CONFIG_FILE", "/q/config")])));
        assert_eq!(other.id().label(), Some("AWS_CONFIG_FILE=/q/config"));
        let plain = contexts.get(Some(env(&[])));
        assert_eq!(
            plain.id().label(),
            Some("no AWS_CONFIG_FILE or AWS_ENDPOINT_URL"),
            "the empty context differs from this agent's"
        );
        assert_eq!(contexts.get(None).id(), contexts.own().id());
        assert!(
            Arc::ptr_eq(
                &contexts.get(Some(env(&[("AWS_CONFIG_FILE", "/p/config")]))),
                contexts.own()
            ),
            "the agent's own environment is served by its own context (one HTTP client)"
        );
    }

    #[test]
    fn the_proxy_follows_the_endpoints_scheme() {
        let vars = env(&[
            ("HTTPS_PROXY", "http://secure:1"),
            ("http_proxy", "http://plain:2"),
            ("no_proxy", "localhost"),
        ]);
        let https = transport(&vars, None).unwrap().proxy.unwrap();
        assert_eq!(
            (https.variable, https.url.as_str()),
            ("HTTPS_PROXY", "http://secure:1")
        );
        assert_eq!(https.no_proxy.as_deref(), Some("localhost"));
        let http = transport(&vars, Some("http://127.0.0.1:9"))
            .unwrap()
            .proxy
            .unwrap();
        assert_eq!(
            (http.variable, http.url.as_str()),
            ("http_proxy", "http://plain:2")
        );
        assert!(transport(&env(&[]), None).unwrap().proxy.is_none());
    }

    #[test]
    fn a_bad_proxy_or_bundle_is_an_error_for_calls_only() {
        let context = AwsContext::new(
            env(&[
                ("HTTPS_PROXY", "socks5://x:1"),
                ("AWS_CA_BUNDLE", "/nonexistent/ca.pem"),
            ]),
            Duration::from_secs(1),
        );
        let err = context.sts().unwrap_err().to_string();
        assert!(err.contains("AWS_CA_BUNDLE=/nonexistent/ca.pem"), "{err}");
        let context = AwsContext::new(
            env(&[("HTTPS_PROXY", "socks5://x:1")]),
            Duration::from_secs(1),
        );
        let err = context.sts().unwrap_err().to_string();
        assert!(
            err.contains("HTTPS_PROXY") && err.contains("http://HOST:PORT"),
            "{err}"
        );
        assert!(
            !err.contains("socks5://x:1"),
            "the URL may hold a password: {err}"
        );
    }

    #[test]
    fn the_callers_region_comes_before_the_profiles() {
        let context = AwsContext::new(
            env(&[("AWS_DEFAULT_REGION", "eu-central-1")]),
            Duration::from_secs(1),
        );
        assert_eq!(context.region(Some("us-west-2")), Some("eu-central-1"));
        let context = AwsContext::new(env(&[]), Duration::from_secs(1));
        assert_eq!(context.region(Some("us-west-2")), Some("us-west-2"));
    }
}
