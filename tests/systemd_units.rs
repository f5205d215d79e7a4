//! The systemd user units in `systemd/`: systemd's own checker accepts them, the service's
//! sandbox scores as exposed as it claims, and (in tests/agent.rs) the socket unit's path and
//! command activate the daemon clients talk to.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name)
}

/// The units with `ExecStart` pointing at this build instead of /usr/bin, in a fresh
/// directory (verify checks that the command exists).
fn units_for_this_build(dir: &Path) -> Vec<PathBuf> {
    [
        "mfa-agent.socket",
        "mfa-agent.service",
        "mfa-agent-tray.service",
    ]
    .iter()
    .map(|name| {
        let text = std::fs::read_to_string(unit(name))
            .unwrap()
            .replace("/usr/bin/mfa-agent", env!("CARGO_BIN_EXE_mfa-agent"));
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    })
    .collect()
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let units = units_for_this_build(dir.path());
    // --man=no: the man page is checked where it is installed (tests/package.rs).
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .args(&units)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("systemd-analyze runs (package systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    assert!(
        said.trim().is_empty(),
        "verify is clean, no warnings:\n{said}"
    );
}

#[test]
fn service_sandbox_exposure_is_what_the_readme_says() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit("mfa-agent.service"))
        .output()
        .expect("systemd-analyze runs (package systemd)");
    let said = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = said
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for mfa-agent.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    println!("systemd-analyze security --offline=true: exposure {exposure}");
    // The README says 1.9, "OK": the claim and the unit must move together.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("rates the service {exposure:.1}")),
        "the README does not state the exposure systemd-analyze gives ({exposure}):\n{said}"
    );
    assert!(exposure <= 1.9, "exposure {exposure} is over 1.9:\n{said}");
}
