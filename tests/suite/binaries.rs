//! The split the README promises: the client every `credential_process` call starts links
//! no AWS SDK, HID or D-Bus code (the agent holds those), and the command names users type
//! reach the other binaries.

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
