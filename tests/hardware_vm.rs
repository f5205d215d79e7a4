//! Security keys over the real USB HID path: hidapi on /dev/hidraw and ctap-hid-fido2,
//! against an independent virtual authenticator (soft-fido2 on /dev/uhid, in the test-only
//! package tests/fido-token). This machine's kernel has no uhid, so each test boots a
//! micro-VM (tests/vm/boot) that runs this same test binary inside, where it does the work.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const IN_VM: &str = "MFA_AGENT_IN_VM";

/// On the host: boots the VM and runs `test` of this binary inside it. In the VM: false,
/// so the caller goes on to do the work.
fn delegated_to_vm(test: &str) -> bool {
    if std::env::var_os(IN_VM).is_some() {
        return false;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/boot"))
        .arg(&me)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_VM, "1")
        .output()
        .expect("tests/vm/boot runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test failed inside the VM:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Starts the virtual key and waits for its hidraw node.
fn virtual_key(args: &[&str]) -> Child {
    let token = std::env::var_os("MFA_AGENT_TEST_TOKEN").map(PathBuf::from).expect(
        "MFA_AGENT_TEST_TOKEN is not set: it names the virtual key binary that `tests/run` builds from tests/fido-token",
    );
    let child = Command::new(token)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("the virtual key starts");
    common::wait_for(
        std::path::Path::new("/dev/hidraw0"),
        Duration::from_secs(10),
    );
    child
}

fn key_list(env: &common::TestEnv) -> Vec<Value> {
    serde_json::from_str::<Value>(&env.run(["key", "list", "--json"], "").success())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn key_list_reads_a_fido2_key_through_hidraw() {
    if delegated_to_vm("key_list_reads_a_fido2_key_through_hidraw") {
        return;
    }
    let env = common::TestEnv::new();
    assert!(
        key_list(&env).is_empty(),
        "no key before the virtual one is plugged in"
    );
    let human = env.run(["key", "list"], "");
    human.success();
    assert!(
        human.stderr().contains("no security key found"),
        "{}",
        human.stderr()
    );

    let mut key = virtual_key(&["--pin", "123456"]);
    let devices = key_list(&env);
    let _ = key.kill();
    let _ = key.wait();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let device = &devices[0];
    assert_eq!(device["path"], "/dev/hidraw0");
    assert_eq!(device["product"], "mfa-agent test token");
    assert!(
        device["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "FIDO_2_0"),
        "{device}"
    );
    assert_eq!(device["pin"], "set");
    assert_eq!(device["pin_protocols"][0], 2, "protocol 2 preferred");
    assert_eq!(device["capability"], "seal and approve");
}
