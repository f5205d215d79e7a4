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

fn key_list(env: &common::TestEnv) -> Value {
    serde_json::from_str::<Value>(&env.run(["key", "list", "--json"], "").success()).unwrap()
}

fn stop(mut key: Child) {
    let _ = key.kill();
    let _ = key.wait();
    // The hidraw node goes with the uhid device; wait so the next key gets hidraw0 again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new("/dev/hidraw0").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn key_list_reads_a_fido2_key_through_hidraw() {
    if delegated_to_vm("key_list_reads_a_fido2_key_through_hidraw") {
        return;
    }
    let env = common::TestEnv::new();
    assert!(
        key_list(&env)["devices"].as_array().unwrap().is_empty(),
        "no key before the virtual one is plugged in"
    );
    let human = env.run(["key", "list"], "");
    human.success();
    assert!(
        human.stderr().contains("no security key found"),
        "{}",
        human.stderr()
    );

    let key = virtual_key(&["--pin", "123456"]);
    let listed = key_list(&env);
    stop(key);
    let devices = listed["devices"].as_array().unwrap();
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

#[test]
fn enrol_and_unlock_with_touch_and_with_pin() {
    if delegated_to_vm("enrol_and_unlock_with_touch_and_with_pin") {
        return;
    }
    // Touch only: enrol (two touches), then a full test (touch, signature, data key).
    let env = common::TestEnv::new();
    let key = virtual_key(&[]);
    let enrolled = env.run(["key", "enroll", "--name", "main"], "");
    enrolled.success();
    assert!(
        enrolled.stderr().contains("touch your security key"),
        "the user is asked to touch: {}",
        enrolled.stderr()
    );
    let tested = env.run(["key", "test", "main"], "").success();
    assert!(tested.contains("works"), "{tested}");
    assert_eq!(key_list(&env)["enrolled"][0], "main");
    env.run(["key", "enroll", "--name", "main"], "")
        .failure(&["already enrolled", "--name"]);
    stop(key);

    // Another key (a fresh virtual one) is not the enrolled key.
    let stranger = virtual_key(&[]);
    env.run(["key", "test", "main"], "")
        .failure(&["not among the plugged-in keys"]);
    stop(stranger);

    // With a PIN, over PIN/UV protocol 2 (the only one soft-fido2 speaks).
    let mut pinned = common::TestEnv::new();
    let pin_file = pinned.path().join("pin");
    std::fs::write(&pin_file, "123456").unwrap();
    pinned.set("MFA_AGENT_PIN_FILE", pin_file.to_str().unwrap());
    let key = virtual_key(&["--pin", "123456"]);
    pinned
        .run(["key", "enroll", "--name", "pinned", "--pin"], "")
        .success();
    pinned.run(["key", "test", "pinned"], "").success();
    std::fs::write(&pin_file, "654321").unwrap();
    pinned
        .run(["key", "test", "pinned"], "")
        .failure(&["wrong PIN"]);
    std::fs::write(&pin_file, "12").unwrap();
    pinned
        .run(["key", "test", "pinned"], "")
        .failure(&["4 to 63 characters", "nothing was sent"]);
    stop(key);

    // A key that refuses the touch.
    let denied_env = common::TestEnv::new();
    let key = virtual_key(&["--deny-touch"]);
    denied_env
        .run(["key", "enroll", "--name", "x"], "")
        .failure(&["refused"]);
    stop(key);
    assert!(
        key_list(&denied_env)["enrolled"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a failed enrolment records nothing"
    );

    // No key at all: a bounded wait, then a clear error.
    let mut absent = common::TestEnv::new();
    absent.set("MFA_AGENT_KEY_WAIT", "1");
    absent
        .run(["key", "enroll"], "")
        .failure(&["no FIDO2 security key found within 1 s", "plug one in"]);
}
