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
    // Clean as measured on systemd 252; a later release may warn of a setting it
    // deprecates, which the units should then follow.
    assert!(
        said.trim().is_empty(),
        "verify is clean, no warnings (it was on systemd 252; this is {}):\n{said}",
        systemd_release()
    );
}

/// `systemd-analyze security` changes its checks and weights between systemd releases: the
/// README states the figure and the release it was measured on. On that release the figure
/// must be the README's; on any other, the rating must still be "OK" or better (systemd's
/// bands: under 1.0 SAFE, under 5.0 OK), so a newer systemd fails only when it finds the
/// sandbox weaker, and says which release the README's figure is from.
#[test]
fn service_sandbox_exposure_is_what_the_readme_says() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit("mfa-agent.service"))
        .output()
        .expect("systemd-analyze runs (package systemd)");
    let said = String::from_utf8_lossy(&out.stdout);
    let (exposure, rating) = said
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for mfa-agent.service: ")
                .nth(1)
        })
        .and_then(|rest| {
            let mut words = rest.split_whitespace();
            Some((words.next()?.parse::<f64>().ok()?, words.next()?.to_owned()))
        })
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    let release = systemd_release();
    println!(
        "systemd-analyze security --offline=true (systemd {release}): exposure {exposure} {rating}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (stated, measured_on) = readme_exposure(&readme);
    if release == measured_on {
        assert!(
            (exposure - stated).abs() < 0.05,
            "systemd {release} rates the service {exposure}, the README says {stated} (measured on this release):\n{said}"
        );
    }
    assert!(
        ["OK", "SAFE", "PERFECT"].contains(&rating.as_str()),
        "systemd {release} rates the service {exposure} {rating}, worse than OK (the README's {stated} was measured on systemd {measured_on}):\n{said}"
    );
}

/// The major release of the systemd on this machine, e.g. 252.
fn systemd_release() -> u32 {
    let out = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze runs (package systemd)");
    let said = String::from_utf8_lossy(&out.stdout);
    said.split_whitespace()
        .nth(1)
        .and_then(|release| release.parse().ok())
        .unwrap_or_else(|| panic!("no release in systemd-analyze --version:\n{said}"))
}

/// What the README says `systemd-analyze security` rates the service, and on which systemd
/// release: "rates the service 1.9, "OK" (systemd 252".
fn readme_exposure(readme: &str) -> (f64, u32) {
    let after = readme
        .split("rates the service ")
        .nth(1)
        .expect("the README states the service's exposure (\"rates the service N\")");
    let figure = after.split(',').next().and_then(|f| f.trim().parse().ok());
    let release = after
        .split("(systemd ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|release| release.parse().ok());
    match (figure, release) {
        (Some(figure), Some(release)) => (figure, release),
        _ => panic!(
            "the README must state the service's exposure and the release it was measured on: rates the service N, \"OK\" (systemd R"
        ),
    }
}

#[test]
fn the_readme_exposure_claim_is_read_with_its_release() {
    let claim =
        "rates the service 1.9, \"OK\" (systemd 252, Debian 12's; releases weigh differently)";
    assert_eq!(readme_exposure(claim), (1.9, 252));
    let newer = "`systemd-analyze security` rates the service 2.1, \"OK\" (systemd 257)";
    assert_eq!(readme_exposure(newer), (2.1, 257));
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
