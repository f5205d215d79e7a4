//! Checks of what runs around the profiles: the agent, the secret store, security keys and
//! the clock.

use std::path::Path;

use super::Finding;
use crate::aws::sts::Sts;
use crate::client::{Client, ClientError, enabled_socket_unit};
use crate::config::Config;
use crate::paths::Paths;
use crate::protocol::{Status, StoreKind};
use crate::vault::{self, Index};

/// TOTP codes change every 30 s and AWS accepts little more than one step of drift.
const CLOCK_FAIL_SECONDS: i64 = 30;
const CLOCK_WARN_SECONDS: i64 = 5;

pub(super) fn agent(paths: &Paths, config: &Config) -> Finding {
    let check = "agent";
    let mut client = match Client::connect(paths, false) {
        Ok(client) => client,
        Err(ClientError::NotRunning { path, .. }) => {
            if let Some(unit) = enabled_socket_unit(paths) {
                return Finding::fail(
                    check,
                    format!(
                        "nothing listens on {}, though the socket unit is enabled ({})",
                        path.display(),
                        unit.display()
                    ),
                    "`systemctl --user start mfa-agent.socket`; `journalctl --user -u mfa-agent` shows why it stopped",
                );
            }
            return if config.autostart_enabled() {
                Finding::ok(
                    check,
                    format!(
                        "not running; the first request starts it at {}",
                        path.display()
                    ),
                )
            } else {
                Finding::fail(
                    check,
                    format!("not running, and autostart is off ({})", path.display()),
                    "start it with `mfa-agent daemon`, or `systemctl --user enable --now mfa-agent.socket`",
                )
            };
        }
        Err(e) => {
            return Finding::fail(
                check,
                crate::report::what_happened(&e),
                "remove the file named, or point MFA_AGENT_SOCKET elsewhere",
            );
        }
    };
    match client.call(Status, |_| {}) {
        Ok(report) if report.agent_version == env!("CARGO_PKG_VERSION") => Finding::ok(
            check,
            format!(
                "running (pid {}, version {}), {} session(s) cached",
                report.pid,
                report.agent_version,
                report.sessions.len()
            ),
        ),
        Ok(report) => Finding::fail(
            check,
            format!(
                "the running daemon (pid {}) is version {}, this mfa-agent is {}",
                report.pid,
                report.agent_version,
                env!("CARGO_PKG_VERSION")
            ),
            format!(
                "restart it: `systemctl --user restart mfa-agent.service`, or `kill {}` (clients start the new one)",
                report.pid
            ),
        ),
        Err(e) => Finding::fail(
            check,
            crate::report::what_happened(&e),
            "restart the daemon (`systemctl --user restart mfa-agent.service` or kill it)",
        ),
    }
}

/// The vault's index and the store behind it; returns the index for the later checks.
pub(super) fn store(paths: &Paths, findings: &mut Vec<Finding>) -> Option<Index> {
    let check = "store";
    let index = match vault::read_index(&paths.data_dir) {
        Ok(index) => index,
        Err(e) => {
            findings.push(Finding::fail(
                check,
                crate::report::what_happened(&e),
                "fix or move away the file named; `mfa-agent seed add` starts a new vault",
            ));
            return None;
        }
    };
    let seeds = index.seeds.len();
    let sealed = if index.is_sealed() {
        ", sealed by a security key"
    } else {
        ""
    };
    let summary = format!("{seeds} seed(s){sealed}");
    findings.push(match index.store {
        StoreKind::Keyring => keyring_state(&summary),
        StoreKind::File => Finding::ok(
            check,
            format!(
                "{summary}, in the encrypted file store (the agent reads MFA_AGENT_PASSPHRASE_FILE)"
            ),
        ),
    });
    if seeds == 0 {
        findings.push(Finding::warn(
            "seeds",
            "no TOTP seed stored yet",
            "add your MFA device's seed: `mfa-agent seed add NAME --qr qr.png --serial ARN` (README, Quickstart)",
        ));
    }
    Some(index)
}

/// Whether the Secret Service answers and its default collection is unlocked. Asks for the
/// collection's `Locked` property only: no entry is read, so nothing prompts.
#[cfg(target_os = "linux")]
fn keyring_state(summary: &str) -> Finding {
    let check = "store";
    let locked = (|| -> zbus::Result<bool> {
        let bus = zbus::blocking::Connection::session()?;
        let collection = zbus::blocking::Proxy::new(
            &bus,
            "org.freedesktop.secrets",
            "/org/freedesktop/secrets/aliases/default",
            "org.freedesktop.Secret.Collection",
        )?;
        collection.get_property::<bool>("Locked")
    })();
    match locked {
        Ok(false) => Finding::ok(
            check,
            format!("{summary}, in the OS keyring (Secret Service, unlocked)"),
        ),
        Ok(true) => Finding::fail(
            check,
            format!("{summary}, in the OS keyring, which is locked"),
            "unlock it: log in to the desktop, or on a headless box run `gnome-keyring-daemon --replace --daemonize --unlock` and type the keyring's password, then Ctrl-D",
        ),
        Err(e) => Finding::fail(
            check,
            format!("{summary}; no Secret Service answers on the session bus ({e})"),
            "start your desktop keyring (GNOME Keyring, KeePassXC), or keep seeds in an encrypted file with `--store file`",
        ),
    }
}

#[cfg(not(target_os = "linux"))]
fn keyring_state(summary: &str) -> Finding {
    Finding::ok("store", format!("{summary}, in the OS keyring"))
}

/// FIDO devices: present, openable (the udev rule), and whether the vault needs one.
pub(super) fn security_keys(vault: Option<&Index>) -> Vec<Finding> {
    let check = "security keys";
    let enrolled: Vec<&str> = vault
        .map(|v| v.keys.iter().map(|k| k.name.as_str()).collect())
        .unwrap_or_default();
    let sealed = !enrolled.is_empty();
    let devices = match crate::keys::list() {
        Ok(devices) => devices,
        Err(e) if sealed => {
            return vec![Finding::fail(
                check,
                crate::report::what_happened(&e),
                udev_fix(),
            )];
        }
        Err(e) => {
            return vec![Finding::warn(
                check,
                crate::report::what_happened(&e),
                "only needed for sealing with a security key; see the README's Security keys section",
            )];
        }
    };
    let mut findings = Vec::new();
    for key in vault.map(|v| v.keys.as_slice()).unwrap_or_default() {
        if let (protects, Some(fix)) = key.guarantee() {
            findings.push(Finding::warn(format!("key {}", key.name), protects, fix));
        }
    }
    for device in devices.iter().filter(|d| d.error.is_some()) {
        findings.push(Finding::fail(
            check,
            format!("{} at {} cannot be opened", device.product, device.path),
            udev_fix(),
        ));
    }
    let usable: Vec<String> = devices
        .iter()
        .filter(|d| d.error.is_none())
        .map(|d| {
            let name = vault.and_then(|v| crate::keys::unlock::enrolled_on(&v.keys, &d.path));
            let enrolled = name
                .map(|n| format!(", enrolled as {n}"))
                .unwrap_or_default();
            format!("{} ({}, {}{enrolled})", d.product, d.path, d.capability)
        })
        .collect();
    let enrolled_list = enrolled.join(", ");
    findings.push(match (usable.is_empty(), sealed) {
        (true, true) => Finding::warn(
            check,
            format!("none plugged in; enrolled: {enrolled_list}"),
            "plug in an enrolled key before the next mint (it waits a short while for one)",
        ),
        (true, false) => Finding::ok(
            check,
            "none plugged in, none enrolled (seeds are not sealed)",
        ),
        (false, true) => Finding::ok(
            check,
            format!(
                "plugged in: {}; enrolled: {enrolled_list}",
                usable.join("; ")
            ),
        ),
        (false, false) => Finding::warn(
            check,
            format!("plugged in: {}; none enrolled", usable.join("; ")),
            "`mfa-agent key enroll` seals the seeds so that only a touch of this key opens them",
        ),
    });
    findings
}

/// Where the rule is, or how to install it.
fn udev_fix() -> String {
    let rules = [
        "/etc/udev/rules.d/70-mfa-agent.rules",
        "/usr/lib/udev/rules.d/70-mfa-agent.rules",
        "/lib/udev/rules.d/70-mfa-agent.rules",
    ];
    match rules.iter().find(|r| Path::new(r).exists()) {
        Some(rule) => format!(
            "{rule} is installed: unplug and replug the key, or run `sudo udevadm trigger`; if that does not help, check that you are logged in on a local seat (`loginctl`) or in the plugdev group"
        ),
        None => "install the udev rule: `sudo install -m 644 udev/70-mfa-agent.rules /etc/udev/rules.d/ && sudo udevadm control --reload && sudo udevadm trigger` (or the Debian package), then replug the key".into(),
    }
}

/// This machine's clock against STS's.
pub(super) async fn clock(sts: &Sts, region: Option<&str>) -> Finding {
    let check = "clock";
    let server = match sts.server_time(region).await {
        Ok(server) => server,
        Err(e) => {
            return Finding::warn(
                check,
                format!("not checked: {e}"),
                "doctor compares the clock with STS's; run it again when STS is reachable",
            );
        }
    };
    let skew = skew_seconds(server, std::time::SystemTime::now());
    let direction = if skew >= 0 { "ahead of" } else { "behind" };
    let detail = format!("this machine is {} s {direction} AWS STS", skew.abs());
    let fix = "turn on time synchronisation: `timedatectl set-ntp true` (or fix the NTP client)";
    match skew.abs() {
        s if s > CLOCK_FAIL_SECONDS => {
            Finding::fail(check, format!("{detail}: MFA codes will be rejected"), fix)
        }
        s if s > CLOCK_WARN_SECONDS => Finding::warn(check, detail, fix),
        _ => Finding::ok(check, detail),
    }
}

/// How far this machine's clock (read as the answer arrived) is ahead of STS's.
///
/// A Date header has whole seconds, cut down: the server's time was somewhere in
/// `[server, server + 1)`, so its middle is the best guess, and the result is rounded rather
/// than cut. (Cutting both clocks made a two-minute skew read as 119 s one time in a few.)
fn skew_seconds(server: i64, now: std::time::SystemTime) -> i64 {
    let local = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let skew = (local - (server as f64 + 0.5)).round() as i64;
    skew
}

#[cfg(test)]
mod tests {
    use super::skew_seconds;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_whole_second_date_is_read_from_its_middle() {
        let at = |secs: f64| UNIX_EPOCH + Duration::from_secs_f64(secs);
        // STS two minutes ahead; its Date says 1120 for any time in [1120, 1121).
        assert_eq!(skew_seconds(1120, at(1000.02)), -120);
        assert_eq!(skew_seconds(1120, at(1000.97)), -120);
        assert_eq!(skew_seconds(1000, at(1000.4)), 0);
        assert_eq!(skew_seconds(1000, at(1030.6)), 30);
    }
}
