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

/// The values of every `Key=` line of a unit, in order, each split on whitespace.
fn unit_values(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .flat_map(|values| values.split_whitespace().map(str::to_owned))
        .collect()
}

/// The service makes the home read-only: every directory the agent writes must be among its
/// `ReadWritePaths` and created before the sandbox is set up, or `seed add`, `creds add` and
/// `key enroll` fail with "Read-only file system" whenever systemd started the agent.
#[test]
fn the_service_sandbox_lets_the_agent_write_every_directory_it_writes() {
    let text = std::fs::read_to_string(unit("mfa-agent.service")).unwrap();
    let (home, runtime) = ("/home/u", "/run/user/1000");
    // systemd's %h and %t in a user manager; the agent under that manager sees no XDG_*
    // but XDG_RUNTIME_DIR.
    let expand = |value: &str| value.replace("%h", home).replace("%t", runtime);
    let writable: Vec<String> = unit_values(&text, "ReadWritePaths")
        .iter()
        .map(|v| expand(v))
        .collect();
    let created: Vec<String> = unit_values(&text, "ExecStartPre")
        .iter()
        .map(|v| expand(v))
        .filter(|v| v.starts_with('/') && !v.ends_with("mkdir"))
        .collect();
    let paths = mfa_agent::paths::Paths::from_lookup(|name| match name {
        "HOME" => Some(home.into()),
        "XDG_RUNTIME_DIR" => Some(runtime.into()),
        _ => None,
    })
    .unwrap();
    for dir in [&paths.data_dir, &paths.state_dir, &paths.runtime_dir] {
        let dir = dir.to_str().unwrap().to_owned();
        assert!(
            writable.contains(&dir),
            "{dir} is not among ReadWritePaths {writable:?}"
        );
        // The runtime directory is the socket unit's (DirectoryMode=0700).
        if dir.starts_with(home) {
            assert!(
                created.contains(&dir),
                "{dir} is not created before the sandbox: {created:?}"
            );
        }
    }
}
