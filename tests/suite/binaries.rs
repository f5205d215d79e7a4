//! The split the README promises: the client every `credential_process` call starts links
//! no AWS SDK, HID or D-Bus code (the agent holds those), and the command names users type
//! reach the other binaries. The split is the build's: the client's code is the
//! `mfa-agent-client` crate, whose dependencies cannot reach them, and the `mfa-agent`
//! binary is that crate's command line and nothing else.

use crate::common;

use std::process::Command;

/// The crates a binary links, by their symbols (`nm`, from binutils).
fn links(binary: &str, krate: &str) -> bool {
    let out = Command::new("nm")
        .args(["--demangle", "--defined-only", binary])
        .output()
        .expect("nm runs (binutils)");
    assert!(out.status.success(), "nm {binary} failed");
    String::from_utf8_lossy(&out.stdout).contains(&format!("{krate}::"))
}

fn dynamic_libraries(binary: &str) -> String {
    let out = Command::new("ldd").arg(binary).output().expect("ldd runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_client_links_no_sdk_hid_or_dbus_and_the_daemon_does() {
    let client = env!("CARGO_BIN_EXE_mfa-agent");
    let daemon = env!("CARGO_BIN_EXE_mfa-agent-daemon");
    let tray = env!("CARGO_BIN_EXE_mfa-agent-tray");
    for krate in [
        "aws_sdk_sts",
        "ctap_hid_fido2",
        "hidapi",
        "zbus",
        "ksni",
        "hyper",
    ] {
        assert!(!links(client, krate), "the client links {krate}");
    }
    for krate in ["aws_sdk_sts", "ctap_hid_fido2", "zbus"] {
        assert!(
            links(daemon, krate),
            "the daemon lacks {krate}: is the check blind?"
        );
    }
    assert!(links(tray, "ksni") && !links(tray, "aws_sdk_sts") && !links(tray, "ctap_hid_fido2"));
    assert!(!dynamic_libraries(client).contains("libudev"));
    assert!(dynamic_libraries(daemon).contains("libudev"));
}

/// Crates only the agent and the tray may build on: AWS's SDK and its HTTP stack, security
/// keys over HID, D-Bus (the Secret Service, notifications, the tray), the async runtime.
const AGENT_ONLY: [&str; 11] = [
    "aws-config",
    "aws-sdk-sts",
    "aws-sdk-iam",
    "aws-smithy-runtime",
    "hyper",
    "reqwest",
    "ctap-hid-fido2",
    "hidapi",
    "zbus",
    "ksni",
    "tokio",
];

/// The crates `package` is built from on this machine (its normal dependencies, to the
/// bottom: not its tests' or build scripts'), by name, from cargo's own resolution of the
/// locked tree.
fn built_from(package: &str) -> std::collections::BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .args(["--package", package])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(names.contains(package), "cargo tree listed no {package}");
    names
}

#[test]
fn the_client_is_a_crate_that_cannot_reach_the_sdk_hid_or_dbus() {
    let client = built_from("mfa-agent-client");
    for krate in AGENT_ONLY {
        assert!(
            !client.contains(krate),
            "mfa-agent-client builds on {krate}: the client must not reach it (it is the agent's)"
        );
    }
    let agent = built_from("mfa-agent");
    for krate in ["aws-sdk-sts", "ctap-hid-fido2", "zbus", "tokio"] {
        assert!(
            agent.contains(krate),
            "the agent lacks {krate}: is the check blind?"
        );
    }
    // The `mfa-agent` binary is built in the agent's package (the tests start it by name),
    // so its one source file must call the client's crate alone.
    let main = include_str!("../../src/main.rs");
    assert!(
        main.contains("mfa_agent_client::") && !main.contains("mfa_agent::"),
        "src/main.rs must use mfa_agent_client alone"
    );
}

#[test]
fn daemon_doctor_and_tray_are_still_mfa_agent_commands() {
    let env = common::TestEnv::new();
    // `mfa-agent doctor` runs the daemon binary's checks (exit 1: nothing is set up here).
    let doctor = env.run(["doctor", "--json"], "");
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout()).unwrap();
    assert!(report["findings"].as_array().is_some_and(|f| !f.is_empty()));
    // `mfa-agent tray` reaches the tray binary, which says what it needs.
    env.run(["tray"], "").failure(&["StatusNotifierWatcher"]);
}
