//! `mfa-agent doctor`: checks everything a mint depends on, and for each problem says how to
//! fix it. Reads no secret (the keyring is asked whether it is locked, not for an entry) and
//! asks for no touch.

mod print;
mod profiles;
mod system;

pub use self::print::run;

use serde::Serialize;

use crate::aws::sts::Sts;
use crate::config::Config;
use crate::paths::Paths;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works now, but something the user may want to know or change.
    Warn,
    /// A mint will fail until this is fixed.
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked: "agent", "store", "keys", "clock", "profile NAME", ...
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// What to do about it, for warnings and failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Self::ok(check, detail)
        }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Self::ok(check, detail)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// The worst status among the findings.
    #[must_use]
    pub fn overall(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

/// Runs every check. Blocking (HID, D-Bus, the socket); STS is called on its own runtime.
#[must_use]
pub fn diagnose(paths: &Paths) -> Report {
    let mut findings = Vec::new();
    let config = match Config::load(&paths.config_dir) {
        Ok(config) => {
            findings.push(Finding::ok("config", "config.toml is valid (or absent)"));
            config
        }
        Err(e) => {
            findings.push(Finding::fail(
                "config",
                crate::report::what_happened(&e),
                "fix config.toml as the message says; the README's Settings section lists every setting",
            ));
            Config::defaults_here()
        }
    };
    findings.push(system::agent(paths, &config));
    let vault = system::store(paths, &mut findings);
    findings.extend(system::security_keys(vault.as_ref()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let sts = Sts::from_env(std::time::Duration::from_secs(config.sts_timeout_seconds));
    let region = runtime.block_on(async {
        let (found, region) = profiles::check(&config, vault.as_ref()).await;
        findings.extend(found);
        region
    });
    findings.push(runtime.block_on(system::clock(&sts, region.as_deref())));
    Report { findings }
}
