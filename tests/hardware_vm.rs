//! Security keys over the real USB HID path: hidapi on /dev/hidraw and ctap-hid-fido2,
//! against an independent virtual authenticator (soft-fido2 on /dev/uhid, in the test-only
//! package tests/fido-token). This machine's kernel has no uhid, so the tests run inside
//! micro-VMs (tests/vm/boot), booted once for all of them: this same test binary runs there,
//! where each test does the work, and the host asserts what each reported. Tests named
//! `systemd_*` (in `systemd.rs`) run in a VM that boots systemd as PID 1 instead.

mod common;
#[path = "hardware_vm/systemd.rs"]
mod systemd;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mfa_agent::vault::SecretStore as _;
use serde_json::Value;

const IN_VM: &str = "MFA_AGENT_IN_VM";
const PASSPHRASE: &str = "correct horse battery";
const SHORT_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// On the host: asserts the outcome of `test` in the VM run (one boot per VM for every test
/// this run selects, see [`vm_run`]). In the VM: false, so the caller goes on to do the work.
fn delegated_to_vm(test: &str) -> bool {
    if std::env::var_os(IN_VM).is_some() {
        return false;
    }
    let run = vm_run();
    let Some(outcome) = run.outcomes.get(test) else {
        panic!("{test} did not run to its end in the VM:\n{}", run.log);
    };
    assert!(
        outcome.passed,
        "the test failed inside the VM:\n{}",
        outcome.output
    );
    // As the harness does for a test on the host: its output is shown with --nocapture.
    if std::env::args().any(|a| a == "--nocapture") {
        eprintln!("{}", outcome.output);
    }
    true
}

/// What the VMs reported: each test's outcome, and their whole output for when a test's
/// own is missing (a VM that crashed or timed out).
struct VmRun {
    outcomes: HashMap<String, Outcome>,
    log: String,
}

struct Outcome {
    passed: bool,
    output: String,
    /// tests/vm/each's end mark: the name, exit status and seconds.
    ended: String,
}

/// One VM and the tests it runs: busybox runs them straight after the kernel (fast, and the
/// tests own the whole machine), taking them from the shared queue; systemd boots a full
/// system first, for the units in `systemd/`, and runs the ones it is given.
#[derive(Clone, Copy)]
enum Vm<'a> {
    Busybox(&'a Queue),
    Systemd(&'a [String]),
}

/// The busybox tests still to run: one file per test in `todo/`, each VM moving the one it
/// takes to `taken/` (tests/vm/each --queue), in a directory shared with the VMs.
struct Queue {
    dir: tempfile::TempDir,
    tests: Vec<String>,
}

impl Queue {
    fn of(tests: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the VMs' queue of tests");
        for sub in ["todo", "taken"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        // Numbered in the order the harness lists them: the VMs take them in that order.
        for (i, test) in tests.iter().enumerate() {
            std::fs::write(dir.path().join("todo").join(format!("{i:04}")), test).unwrap();
        }
        Self {
            dir,
            tests: tests.to_vec(),
        }
    }

    /// Whether a test is still there to take (a VM booted for none would only cost a boot).
    fn has_work(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("todo")).is_ok_and(|mut todo| todo.next().is_some())
    }
}

/// Boots the micro-VM a few times for all the tests rather than once per test: a boot under
/// software emulation costs more than most tests. The tests this run selects (the harness's
/// own filter, read back through `--list`) run one after another inside each VM
/// (tests/vm/each), since they share /dev/hidraw0. The first test to ask starts the run;
/// the rest wait for it and read their outcome.
///
/// The VMs run in lanes, one per core (at most two), never more emulated machines than
/// cores: beside two others on two cores, the systemd VM's first request once waited past
/// the client's 120 s response timeout. The `systemd::` tests get a systemd VM of their own,
/// first in the first lane; every busybox VM takes its tests from one shared queue as it
/// goes, so the lanes end together however long each test turns out to be.
fn vm_run() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let me = std::env::current_exe().unwrap();
        let (systemd, busybox): (Vec<String>, Vec<String>) = selected_tests(&me)
            .into_iter()
            .partition(|test| test.starts_with("systemd::"));
        let queue = Queue::of(&busybox);
        let vms = busybox.len() + usize::from(!systemd.is_empty());
        let lanes = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 2)
            .min(vms.max(1));
        let logs: Vec<String> = std::thread::scope(|scope| {
            let running: Vec<_> = (0..lanes)
                .map(|lane| {
                    let (me, queue, systemd) = (&me, &queue, &systemd);
                    scope.spawn(move || {
                        let mut log = String::new();
                        if lane == 0 && !systemd.is_empty() {
                            log += &boot_for(me, Vm::Systemd(systemd));
                        }
                        if queue.has_work() {
                            log += "\n";
                            log += &boot_for(me, Vm::Busybox(queue));
                        }
                        log
                    })
                })
                .collect();
            running.into_iter().map(|vm| vm.join().unwrap()).collect()
        });
        let log = logs.join("\n");
        let outcomes = outcomes(&log);
        // Seen with --nocapture: how long each test took in its VM.
        for outcome in outcomes.values() {
            eprintln!("vm: {}", outcome.ended);
        }
        VmRun { outcomes, log }
    })
}

/// The names of the tests that this process's harness runs: its own arguments (filters,
/// `--exact`, `--ignored`) with `--list`.
fn selected_tests(me: &std::path::Path) -> Vec<String> {
    let out = Command::new(me)
        .args(std::env::args().skip(1))
        .arg("--list")
        .output()
        .expect("the test binary lists its tests");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// One VM running its tests of this binary in turn: its output (stdout, then stderr).
fn boot_for(me: &std::path::Path, vm: Vm<'_>) -> String {
    let mut boot = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/boot"));
    boot.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/each"))
        .arg(me)
        .env(IN_VM, "1");
    // Bounded: a boot plus each test's own bound (tests/vm/each), for all it may take.
    let tests = match vm {
        Vm::Busybox(queue) => {
            boot.args(["--queue", "/dev/shm/share"])
                .env("MFA_AGENT_VM_SHARE", queue.dir.path())
                .env("MFA_AGENT_VM_INIT", "busybox");
            queue.tests.len()
        }
        Vm::Systemd(tests) => {
            boot.args(tests).env("MFA_AGENT_VM_INIT", "systemd");
            tests.len()
        }
    };
    let out = boot
        .env("MFA_AGENT_VM_TIMEOUT", (120 + 300 * tests).to_string())
        .output()
        .expect("tests/vm/boot runs");
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Each test's output between tests/vm/each's begin and end marks, and whether it passed:
/// exit status 0 and the harness's own "1 passed".
fn outcomes(log: &str) -> HashMap<String, Outcome> {
    let mut outcomes = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in log.lines() {
        // A mark may follow console output that did not end its line (a kernel message).
        let mark = |mark: &str| line.find(mark).map(|at| &line[at + mark.len()..]);
        if let Some(name) = mark("== vm-test-begin ") {
            current = Some((name.to_owned(), String::new()));
        } else if let Some(end) = mark("== vm-test-end ") {
            let Some((name, output)) = current.take() else {
                continue;
            };
            let passed = end.starts_with(&format!("{name} status=0 "))
                && output.contains("test result: ok. 1 passed");
            outcomes.insert(
                name,
                Outcome {
                    passed,
                    output,
                    ended: end.to_owned(),
                },
            );
        } else if let Some((_, output)) = current.as_mut() {
            output.push_str(line);
            output.push('\n');
        }
    }
    outcomes
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

/// A second virtual key beside the first, at `node`.
fn virtual_key_at(args: &[&str], node: &str) -> Child {
    let token = std::env::var_os("MFA_AGENT_TEST_TOKEN")
        .map(PathBuf::from)
        .unwrap();
    let child = Command::new(token)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("the virtual key starts");
    common::wait_for(std::path::Path::new(node), Duration::from_secs(10));
    child
}

fn key_list(env: &common::TestEnv) -> Value {
    serde_json::from_str::<Value>(&env.run(["key", "list", "--json"], "").success()).unwrap()
}

/// `~/.aws/config` with one source profile, `base`, for the strict fake STS.
fn source_profile(env: &common::TestEnv) {
    env.aws_config(&format!(
        "[profile base]\nmfa_serial = {}\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        common::SERIAL,
        common::fake_sts::ACCESS_KEY_ID,
        common::fake_sts::SECRET_ACCESS_KEY
    ));
}

fn stop(key: Child) {
    stop_device(key, "/dev/hidraw0");
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
    assert_eq!(device["pin_retries"], 8, "{device}");
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
    let listed = key_list(&env);
    assert_eq!(listed["enrolled"][0], "main");
    // Asked silently (no touch): this device is the one enrolled as "main".
    assert_eq!(listed["devices"][0]["enrolled_as"], "main", "{listed}");
    // doctor sees the key, openable, and the vault sealed by it.
    let doctor: Value = serde_json::from_str(&env.run(["doctor", "--json"], "").stdout()).unwrap();
    let keys = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "security keys")
        .cloned()
        .unwrap();
    assert_eq!(keys["status"], "ok", "{keys}");
    let detail = keys["detail"].as_str().unwrap();
    assert!(
        detail.contains("mfa-agent test token (/dev/hidraw0, seal and approve, enrolled as main)")
            && detail.contains("enrolled: main"),
        "{keys}"
    );
    env.run(["key", "enroll", "--name", "main"], "")
        .failure(&["already enrolled", "--name"]);
    stop(key);

    // Another key (a fresh virtual one) is not the enrolled key.
    let stranger = virtual_key(&[]);
    let listed = key_list(&env);
    assert!(
        listed["devices"][0].get("enrolled_as").is_none(),
        "{listed}"
    );
    env.run(["key", "test", "main"], "")
        .failure(&["not among the plugged-in keys"]);
    stop(stranger);

    // With a PIN, over PIN/UV protocol 2 (the only one soft-fido2 speaks).
    let (pinned, pin_file, key) = pinned_key();
    pinned
        .run(["key", "enroll", "--name", "pinned", "--pin"], "")
        .success();
    pinned.run(["key", "test", "pinned"], "").success();
    std::fs::write(&pin_file, "654321").unwrap();
    pinned
        .run(["key", "test", "pinned"], "")
        .failure(&["wrong PIN"]);
    // The key made a new key-agreement key after the wrong PIN: the next try agrees anew.
    std::fs::write(&pin_file, "123456").unwrap();
    pinned.run(["key", "test", "pinned"], "").success();
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
        // Enrolment takes any FIDO key, FIDO2 or U2F-only.
        .failure(&["no FIDO security key found within 1 s", "plug one in"]);
}

/// CTAP 2.1: the third wrong PIN in a row blocks PIN use until the key is power-cycled
/// (PIN_AUTH_BLOCKED), which is not the PIN being blocked for good. The user is told to
/// replug, not to reset (which would erase the key), and after the replug the right PIN
/// works again. `key list` counts the tries left through it all.
#[test]
fn three_wrong_pins_block_the_key_until_it_is_replugged() {
    if delegated_to_vm("three_wrong_pins_block_the_key_until_it_is_replugged") {
        return;
    }
    let mut env = common::TestEnv::new();
    let pin_file = env.path().join("pin");
    std::fs::write(&pin_file, "123456").unwrap();
    env.set("MFA_AGENT_PIN_FILE", pin_file.to_str().unwrap());
    let replug = env.path().join("replug");
    let key = virtual_key(&[
        "--pin",
        "123456",
        "--power-cycle-file",
        replug.to_str().unwrap(),
    ]);
    env.run(["key", "enroll", "--name", "pinned", "--pin"], "")
        .success();
    let retries = || key_list(&env)["devices"][0]["pin_retries"].clone();
    assert_eq!(retries(), 8);

    std::fs::write(&pin_file, "654321").unwrap();
    for _ in 0..2 {
        env.run(["key", "test", "pinned"], "")
            .failure(&["wrong PIN"]);
    }
    let blocked = env.run(["key", "test", "pinned"], "");
    blocked.failure(&["three wrong ones in a row", "unplug it, plug it back in"]);
    assert!(!blocked.stderr().contains("reset"), "{}", blocked.stderr());
    // Until the replug the key refuses even the right PIN.
    std::fs::write(&pin_file, "123456").unwrap();
    env.run(["key", "test", "pinned"], "")
        .failure(&["unplug it, plug it back in"]);
    assert_eq!(
        retries(),
        5,
        "three wrong PINs cost three tries; the refused one none"
    );
    let human = env.run(["key", "list"], "").success();
    assert!(
        human.contains("PIN:        set (protocols 2), 5 tries left"),
        "{human}"
    );

    // The replug forgets the run of wrong PINs, not the tries they cost (kept in flash).
    std::fs::write(&replug, "").unwrap();
    assert_eq!(retries(), 5);
    assert!(!replug.exists(), "the key was power-cycled");
    env.run(["key", "test", "pinned"], "").success();
    assert_eq!(retries(), 8, "the right PIN gives every try back");
    stop(key);
}

#[test]
fn enrolment_asks_silently_whether_the_key_gates_its_secret_on_a_touch() {
    if delegated_to_vm("enrolment_asks_silently_whether_the_key_gates_its_secret_on_a_touch") {
        return;
    }
    let touches = std::env::temp_dir().join("touches-probe");
    let count = || {
        std::fs::read_to_string(&touches)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let guarantee = |env: &common::TestEnv| key_list(env)["guarantees"][0].clone();

    // soft-fido2 answers hmac-secret without a touch, as many keys do: said at enrolment,
    // in `key list` and by doctor, with the fix.
    let open_env = common::TestEnv::new();
    let key = virtual_key(&["--touch-log", touches.to_str().unwrap()]);
    let enrolled = open_env.run(["key", "enroll", "--name", "main"], "");
    enrolled.success();
    assert!(
        enrolled
            .stderr()
            .contains("gives its sealing secret without a touch")
            && enrolled.stderr().contains("--pin"),
        "{}",
        enrolled.stderr()
    );
    assert_eq!(count(), 2, "the silent probe costs no touch");
    let listed = guarantee(&open_env);
    assert_eq!(listed["touch_gated"], false, "{listed}");
    assert!(
        listed["fix"].as_str().unwrap().contains("--pin"),
        "{listed}"
    );
    assert_eq!(count(), 2, "`key list` costs no touch");
    let doctor: Value =
        serde_json::from_str(&open_env.run(["doctor", "--json"], "").stdout()).unwrap();
    let finding = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "key main")
        .cloned()
        .unwrap_or_default();
    assert_eq!(finding["status"], "warn", "{doctor}");
    stop(key);

    // A key that refuses hmac-secret without a touch, like the Nitrokey 3 firmware.
    let gated_env = common::TestEnv::new();
    let key = virtual_key(&["--gate-hmac-on-touch"]);
    let enrolled = gated_env.run(["key", "enroll", "--name", "main"], "");
    enrolled.success();
    assert!(
        !enrolled.stderr().contains("warning"),
        "{}",
        enrolled.stderr()
    );
    let listed = guarantee(&gated_env);
    assert_eq!(listed["touch_gated"], true, "{listed}");
    assert!(listed.get("fix").is_none(), "{listed}");
    stop(key);

    // A key with a PIN is enrolled with it by default; a silent assertion with the index's
    // credential and salt then gets an answer that does not open the data key.
    let (pinned, _, key) = pinned_key();
    pinned
        .run(["key", "enroll", "--name", "pinned"], "")
        .success();
    assert_eq!(guarantee(&pinned)["uses_pin"], true, "PIN by default");
    let index = mfa_agent::vault::Index::load(&pinned.data_dir().join("seeds.json"))
        .unwrap()
        .unwrap();
    let enrolled = &index.keys[0];
    let salt: [u8; 32] = enrolled.salt.as_slice().try_into().unwrap();
    let silent =
        mfa_agent::keys::fido::silent_hmac_secret("/dev/hidraw0", &enrolled.credential_id, salt)
            .unwrap();
    // The key offers credProtect, so the credential was made "user verification required":
    // a request without the PIN is refused outright.
    assert_eq!(enrolled.cred_protect, Some(3), "{enrolled:?}");
    let listed = guarantee(&pinned);
    assert!(
        listed["protects"]
            .as_str()
            .unwrap()
            .contains("refuses any use of it without the PIN"),
        "{listed}"
    );
    assert!(
        silent.is_none(),
        "a credProtect-3 credential answers no silent request"
    );

    // The PIN-sealed vault still opens the proper way.
    pinned.run(["key", "test", "pinned"], "").success();
    stop(key);
    a_silent_answer_opens_no_pin_sealed_vault_without_cred_protect();
}

/// A key without credProtect (CTAP 2.0) enrols with its PIN, says so in the index, and what
/// a silent request for the credential gives does not open the data key.
fn a_silent_answer_opens_no_pin_sealed_vault_without_cred_protect() {
    let (bare, _, key) = pinned_key_with(&["--no-cred-protect"]);
    bare.run(["key", "enroll", "--name", "bare"], "").success();
    let index = mfa_agent::vault::Index::load(&bare.data_dir().join("seeds.json"))
        .unwrap()
        .unwrap();
    let enrolled = &index.keys[0];
    assert_eq!(enrolled.cred_protect, None, "{enrolled:?}");
    assert_eq!(
        key_list(&bare)["guarantees"][0]["uses_pin"],
        true,
        "PIN by default"
    );
    let salt: [u8; 32] = enrolled.salt.as_slice().try_into().unwrap();
    // A CTAP 2.0 key answers a request without the PIN and without a touch, from its secret
    // for use without user verification: an answer comes, and it must not open the data key
    // (it would if the vault had been sealed with a secret asked for without the PIN).
    let silent =
        mfa_agent::keys::fido::silent_hmac_secret("/dev/hidraw0", &enrolled.credential_id, salt)
            .unwrap()
            .expect("a key without credProtect answers a silent request");
    let opens = |output| enrolled.unwrap_data_key(output).is_ok();
    // The same request with the PIN: its answer opens the vault, so `opens` can say yes
    // (a wrong way of opening, not the key's answer, must not be what says no below).
    let pin = mfa_agent::secret::SecretString::new("123456".into());
    let credential = mfa_agent::keys::unlock::credential_of(enrolled);
    let with_pin =
        mfa_agent::keys::fido::hmac_secret("/dev/hidraw0", &credential, salt, Some(pin), &|| false)
            .unwrap();
    assert!(opens(&with_pin), "the answer with the PIN opens the vault");
    assert!(
        !opens(&silent),
        "the answer to a silent request opened a PIN-sealed vault"
    );
    bare.run(["key", "test", "bare"], "").success();
    stop(key);
}

/// A private HOME whose PIN file (MFA_AGENT_PIN_FILE) holds 123456, and a virtual key with
/// that PIN.
fn pinned_key() -> (common::TestEnv, PathBuf, Child) {
    pinned_key_with(&[])
}

/// As [`pinned_key`], the virtual key started with `more` arguments as well.
fn pinned_key_with(more: &[&str]) -> (common::TestEnv, PathBuf, Child) {
    let mut env = common::TestEnv::new();
    let pin_file = env.path().join("pin");
    std::fs::write(&pin_file, "123456").unwrap();
    env.set("MFA_AGENT_PIN_FILE", pin_file.to_str().unwrap());
    let args: Vec<&str> = ["--pin", "123456"].iter().chain(more).copied().collect();
    (env, pin_file, virtual_key(&args))
}

/// The stored (age-encrypted) form of the secret `name` (a seed's name, or
/// `aws-keys:PROFILE`), read with the library.
fn stored_seed(env: &common::TestEnv, passphrase: &'static str, name: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(env.data_dir().join("seeds.json")).unwrap()).unwrap();
    let vault_id = index["vault_id"].as_str().unwrap();
    // Generation 0 (no re-keying yet) has the ids of vault format 1.
    let id = match index["generation"].as_u64().unwrap_or(0) {
        0 => format!("{vault_id}/{name}"),
        generation => format!("{vault_id}/g{generation}/{name}"),
    };
    let mut store = mfa_agent::vault::FileStore::new(
        env.data_dir().join("seeds.age"),
        Box::new(move |_| Ok(mfa_agent::secret::SecretString::new(passphrase.into()))),
    );
    store.get(&id).unwrap().unwrap().expose().to_owned()
}

fn code_matches_oathtool(env: &common::TestEnv) -> String {
    let out = env.run(["code", "work", "--json"], "");
    let json: Value = serde_json::from_str(&out.success()).unwrap();
    let expected = common::oathtool(
        common::AWS_SEED,
        json["valid_from"].as_u64().unwrap(),
        "sha1",
        6,
        30,
    );
    assert_eq!(json["code"], expected.as_str());
    out.stderr()
}

/// A file-store vault holding seed `work` (the AWS-style test seed) for the test serial,
/// waiting 2 s for a key where one is needed.
fn file_vault_with_a_seed() -> common::TestEnv {
    let mut env = common::TestEnv::with_file_store(PASSPHRASE);
    env.set("MFA_AGENT_KEY_WAIT", "2");
    env.add_seed("work", &["--serial", common::SERIAL]);
    env
}

#[test]
fn seeds_sealed_by_a_key_open_only_with_an_enrolled_key() {
    if delegated_to_vm("seeds_sealed_by_a_key_open_only_with_an_enrolled_key") {
        return;
    }
    let mut env = file_vault_with_a_seed();
    assert!(
        stored_seed(&env, PASSPHRASE, "work").starts_with("ABCD"),
        "plain before enrolment"
    );
    vault_keys(&env);

    // Two keys: the main one and a backup, both plugged in while enrolling.
    let main = virtual_key(&[]);
    let backup = Command::new(std::env::var_os("MFA_AGENT_TEST_TOKEN").unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(
        std::path::Path::new("/dev/hidraw1"),
        Duration::from_secs(10),
    );
    let enrolled = env.run(
        [
            "key",
            "enroll",
            "--name",
            "main",
            "--device",
            "/dev/hidraw0",
        ],
        "",
    );
    enrolled.success();
    assert!(
        enrolled.stderr().contains("sealed 2 secret(s)"),
        "{}",
        enrolled.stderr()
    );
    let sealed = stored_seed(&env, PASSPHRASE, "work");
    assert!(
        sealed.starts_with("sealed:v1:") && !sealed.contains("ABCDEFGH"),
        "sealed at rest: {sealed}"
    );
    // The long-term AWS keys are sealed like the seeds.
    let sealed_keys = stored_seed(&env, PASSPHRASE, "aws-keys:base");
    assert!(
        sealed_keys.starts_with("sealed:v1:")
            && !sealed_keys.contains(&common::fake_sts::SECRET_ACCESS_KEY[..12]),
        "long-term keys sealed at rest: {sealed_keys}"
    );
    env.run(
        [
            "key",
            "enroll",
            "--name",
            "backup",
            "--device",
            "/dev/hidraw1",
        ],
        "",
    )
    .success();

    // A code needs a touch of an enrolled key, and is right.
    let stderr = code_matches_oathtool(&env);
    assert!(
        stderr.contains("touch your security key (main)"),
        "{stderr}"
    );

    // The agent asks the waiting client for the touch, then mints.
    let sts = common::fake_sts::FakeSts::start(common::AWS_SEED, 30);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    source_profile(&env);
    confirm_each_program(&env);
    env.start_daemon();
    let minted = env.run(["credential-process", "--profile", "base"], "");
    let json: Value = serde_json::from_str(&minted.success()).unwrap();
    assert!(
        json["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIAFAKE")
    );
    // The touch prompt names the program behind the client (the test binary), not
    // mfa-agent itself.
    assert!(
        minted.stderr().contains("to approve base for hardware_vm"),
        "{}",
        minted.stderr()
    );
    assert_eq!(sts.gst_calls(), 1);
    another_program_needs_a_touch(&env);
    assert_eq!(sts.gst_calls(), 1, "the cached session served it");
    env.stop_daemon();

    // The main key is lost: the backup alone still opens the seeds.
    stop_device(main, "/dev/hidraw0");
    code_matches_oathtool(&env);

    an_added_key_entry_is_refused(&env);
    remove_the_lost_key(&env);

    // Every enrolled key gone: the seeds stay shut, with a clear error.
    stop_device(backup, "/dev/hidraw1");
    env.run(["code", "work"], "")
        .failure(&["no FIDO2 security key found within 2 s"]);
    let stranger = virtual_key(&[]);
    env.run(["code", "work"], "")
        .failure(&["none of the plugged-in security keys is enrolled"]);
    stop(stranger);
}

/// A key entry another program adds to the index is refused, not trusted: the touch opens
/// the data key, which did not sign that key list. The index is put back after.
fn an_added_key_entry_is_refused(env: &common::TestEnv) {
    let index_path = env.data_dir().join("seeds.json");
    let signed = std::fs::read(&index_path).unwrap();
    let mut index: Value = serde_json::from_slice(&signed).unwrap();
    let mut intruder = index["keys"][0].clone();
    intruder["name"] = "intruder".into();
    index["keys"].as_array_mut().unwrap().push(intruder);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    env.run(["code", "work"], "")
        .failure(&["outside mfa-agent", "nothing was opened or changed"]);
    std::fs::write(&index_path, &signed).unwrap();
}

fn confirm_each_program(env: &common::TestEnv) {
    let config_dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        "[profiles.base]\nconfirm = \"each-program\"\n",
    )
    .unwrap();
}

/// Under `confirm = "each-program"`, another program (busybox `xargs` running the client)
/// gets the cached session only after a touch, asked in its name; the program that started
/// the session is not asked again.
fn another_program_needs_a_touch(env: &common::TestEnv) {
    let client = env.cmd(["credential-process", "--profile", "base"]);
    let mut xargs = Command::new("xargs");
    xargs
        .arg(client.get_program())
        .args(client.get_args())
        .env_clear()
        .envs(client.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null());
    let out = xargs.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("touch your security key (main) to let xargs (pid ")
            && stderr.contains("use the session of base"),
        "{stderr}"
    );
    let again = env.run(["credential-process", "--profile", "base"], "");
    again.success();
    assert!(!again.stderr().contains("touch"), "{}", again.stderr());
}

/// Removing a lost key (`main`) re-keys the vault with one touch of the backup: the
/// secrets move to a new data key, so a copy of the old index (which still wraps the old
/// data key for the lost key) opens nothing current.
fn remove_the_lost_key(env: &common::TestEnv) {
    let index_path = env.data_dir().join("seeds.json");
    let old_index = std::fs::read(&index_path).unwrap();
    let sealed_before = stored_seed(env, PASSPHRASE, "work");
    let removed = env.run(["key", "remove", "main", "--yes"], "");
    removed.success();
    assert!(
        removed
            .stderr()
            .contains("touch your security key (backup)")
            && removed.stderr().contains("re-keyed the vault (2 secret(s)"),
        "{}",
        removed.stderr()
    );
    let sealed_after = stored_seed(env, PASSPHRASE, "work");
    assert!(sealed_after.starts_with("sealed:v1:") && sealed_after != sealed_before);
    let new_index = std::fs::read(&index_path).unwrap();
    std::fs::write(&index_path, &old_index).unwrap();
    env.run(["code", "work"], "")
        .failure(&["holds no secret for seed \"work\""]);
    std::fs::write(&index_path, &new_index).unwrap();
    code_matches_oathtool(env);
}

#[test]
fn removing_the_last_key_unseals_the_seeds() {
    if delegated_to_vm("removing_the_last_key_unseals_the_seeds") {
        return;
    }
    let env = common::TestEnv::with_file_store(PASSPHRASE);
    env.add_seed("work", &[]);
    let key = virtual_key(&[]);
    env.run(["key", "enroll", "--name", "only"], "").success();
    assert!(stored_seed(&env, PASSPHRASE, "work").starts_with("sealed:v1:"));
    env.run(["key", "remove", "only"], "")
        .failure(&["pass --yes"]);
    let removed = env.run(["key", "remove", "only", "--yes"], "");
    removed.success();
    assert!(
        removed.stderr().contains("unsealed 1 secret(s)"),
        "{}",
        removed.stderr()
    );
    stop(key);
    assert!(stored_seed(&env, PASSPHRASE, "work").starts_with("ABCD"));
    code_matches_oathtool(&env);
}

/// Unplugs a virtual key: the hidraw node goes with it (waited for, so the next key gets
/// the same node).
fn stop_device(mut key: Child, node: &str) {
    let _ = key.kill();
    let _ = key.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(node).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file-store vault with seed `work` for the test serial, of 15-second codes: short waits
/// between two mints (AWS uses 30 s) that still leave the slow, emulated VM time to send
/// each code inside its window.
fn env_with_a_15_second_seed() -> common::TestEnv {
    let env = common::TestEnv::with_file_store(PASSPHRASE);
    let uri = format!("otpauth://totp/work?secret={SHORT_SEED}&period=15");
    env.run(
        [
            "seed",
            "add",
            "work",
            "--uri",
            "-",
            "--serial",
            common::SERIAL,
        ],
        &uri,
    )
    .success();
    env
}

/// Stores the fake STS's long-term keys in the vault for profile `base`.
fn vault_keys(env: &common::TestEnv) {
    let keys = format!(
        "{} {}",
        common::fake_sts::ACCESS_KEY_ID,
        common::fake_sts::SECRET_ACCESS_KEY
    );
    env.run(["creds", "add", "base", "--stdin"], &keys)
        .success();
}

#[test]
fn unlock_policy_needs_one_touch_for_many_mints() {
    if delegated_to_vm("unlock_policy_needs_one_touch_for_many_mints") {
        return;
    }
    let mut env = env_with_a_15_second_seed();
    let touches = std::env::temp_dir().join("touches");
    let key = virtual_key(&["--touch-log", touches.to_str().unwrap()]);
    env.run(["key", "enroll", "--name", "main"], "").success();
    let count = || {
        std::fs::read_to_string(&touches)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let after_enrolment = count();

    let config = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "touch = \"unlock\"\n").unwrap();
    let sts = common::fake_sts::FakeSts::start(SHORT_SEED, 15);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    source_profile(&env);
    env.start_daemon();
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    assert_eq!(
        count(),
        after_enrolment + 1,
        "the first mint asks for a touch"
    );
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    assert_eq!(
        count(),
        after_enrolment + 1,
        "unlocked: the second mint needs none"
    );
    assert_eq!(sts.gst_calls(), 2);
    let status = env.status();
    assert!(status["unlocked_until"].as_i64().is_some(), "{status}");
    // The unlock is the agent's, shared by every client: `code` needs no touch either.
    env.run(["code", "work"], "").success();
    assert_eq!(count(), after_enrolment + 1, "code shares the unlock");

    // `lock` forgets the sessions and locks the seeds: the next mint needs a touch again.
    env.run(["lock"], "").success();
    let status = env.status();
    assert!(status.get("unlocked_until").is_none(), "{status}");
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    assert_eq!(count(), after_enrolment + 2);

    // Unlocked again, the key set still changes only with a fresh touch of an enrolled key,
    // never on the data key the unlock holds (`--yes` skips the question, not the touch):
    // enrolling a backup, removing it (a re-key), removing the last key (an unseal).
    assert!(env.status()["unlocked_until"].as_i64().is_some());
    let backup = virtual_key_at(&[], "/dev/hidraw1");
    env.run(
        [
            "key",
            "enroll",
            "--name",
            "backup",
            "--device",
            "/dev/hidraw1",
            "--no-pin",
        ],
        "",
    )
    .success();
    assert_eq!(
        count(),
        after_enrolment + 3,
        "enrolling a backup took a touch of the enrolled key"
    );
    env.run(["key", "remove", "backup", "--yes"], "").success();
    assert_eq!(count(), after_enrolment + 4, "the re-key took a touch");
    stop_device(backup, "/dev/hidraw1");
    env.run(["key", "remove", "main", "--yes"], "").success();
    assert_eq!(count(), after_enrolment + 5, "the unseal took a touch");
    env.run(["code", "work"], "").success();
    assert_eq!(count(), after_enrolment + 5, "unsealed: codes need no key");
    env.stop_daemon();
    stop(key);
}

#[test]
fn requests_at_once_take_turns_at_the_key() {
    if delegated_to_vm("requests_at_once_take_turns_at_the_key") {
        return;
    }
    // The mint waits for the window after the codes shown: a short one.
    let mut env = env_with_a_15_second_seed();
    let touches = std::env::temp_dir().join("touches-at-once");
    // Each touch takes a moment, so the requests below are in flight together.
    let key = virtual_key(&[
        "--touch-log",
        touches.to_str().unwrap(),
        "--touch-delay-ms",
        "500",
    ]);
    // The source keys in the vault, sealed with the seed: a mint opens both with one touch.
    vault_keys(&env);
    env.run(["key", "enroll", "--name", "main"], "").success();
    let sts = common::fake_sts::FakeSts::start(SHORT_SEED, 15);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.aws_config(&format!(
        "[profile base]\nmfa_serial = {}\n",
        common::SERIAL
    ));
    env.start_daemon();
    let count = || {
        std::fs::read_to_string(&touches)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = count();

    // Two `code` commands and a mint at once on a sealed vault (a touch each).
    let children: Vec<_> = [
        &["code", "work"][..],
        &["code", "work"],
        &["credential-process", "--profile", "base"],
    ]
    .iter()
    .map(|args| {
        env.cmd(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| common::Run(c.wait_with_output().unwrap()))
        .collect();
    for out in &outputs {
        out.success();
        assert!(
            !out.stderr().contains("CHANNEL_BUSY") && !out.stderr().contains("busy"),
            "{}",
            out.stderr()
        );
    }
    // The key was asked one request at a time: three touches, every one answered (the
    // mint's one opened both the seed and the long-term keys).
    assert_eq!(count(), before + 3);
    assert!(
        outputs.iter().any(|o| o
            .stderr()
            .contains("earlier request(s) at the vault and security key")),
        "a client that waited for its turn was told so"
    );
    assert_eq!(sts.gst_calls(), 1);
    env.stop_daemon();
    stop(key);
}

/// `udevadm test` on the virtual key's hidraw node, with the rule files in `rules` only
/// (over a tmpfs on /etc/udev/rules.d, which masks the distribution's files of the same name).
fn udev_properties(rules: &[(&str, &str)]) -> String {
    let dir = std::path::Path::new("/etc/udev/rules.d");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(dir)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "a tmpfs over {}", dir.display());
    for (name, text) in rules {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = Command::new("udevadm")
        .args(["test", "--action=add", "/sys/class/hidraw/hidraw0"])
        .output()
        .expect("udevadm (package udev) runs");
    assert!(Command::new("umount").arg(dir).status().unwrap().success());
    // The properties go to stdout, the rules applied (file:line) to stderr: both, so a
    // failure shows why.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "udevadm test failed:\n{text}");
    text
}

#[test]
fn udev_rule_lets_the_user_open_a_fido_key() {
    if delegated_to_vm("udev_rule_lets_the_user_open_a_fido_key") {
        return;
    }
    let key = virtual_key(&[]);
    // systemd's own FIDO rules masked (empty files of the same name): a system where only
    // this project's rule can identify the key and grant access.
    let masked = [("60-fido-id.rules", ""), ("70-uaccess.rules", "")];
    let without = udev_properties(&masked);
    let rule = include_str!("../udev/70-mfa-agent.rules");
    let with = udev_properties(&[masked[0], masked[1], ("70-mfa-agent.rules", rule)]);
    stop(key);

    let tags = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("TAGS="))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(!tags(&without).contains("uaccess"), "{without}");
    assert!(
        with.contains("ID_SECURITY_TOKEN=1"),
        "fido_id saw the FIDO usage page: {with}"
    );
    assert!(tags(&with).contains(":uaccess:"), "{with}");
    // Without a seat manager (no uaccess), the plugdev group may open it.
    assert!(with.contains("mode=0660"), "{with}");
}

#[test]
fn the_agent_asks_for_the_pin_on_the_client_terminal_or_with_pinentry() {
    if delegated_to_vm("the_agent_asks_for_the_pin_on_the_client_terminal_or_with_pinentry") {
        return;
    }
    let mut env = common::TestEnv::with_file_store(PASSPHRASE);
    env.add_seed("work", &["--serial", common::SERIAL]);
    let key = virtual_key(&["--pin", "123456"]);
    // Enrolment reads the PIN from a file; the agent below must ask for it.
    let pin_file = env.path().join("pin");
    std::fs::write(&pin_file, "123456").unwrap();
    env.set("MFA_AGENT_PIN_FILE", pin_file.to_str().unwrap());
    env.run(["key", "enroll", "--name", "main", "--pin"], "")
        .success();
    env.unset("MFA_AGENT_PIN_FILE");

    let (pinentry, pinentry_log) =
        common::terminal::pinentry(env.path(), &pin_file, &common::terminal::Answers::Same, 0);
    let config = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("pinentry = \"{}\"\n", pinentry.display()),
    )
    .unwrap();
    let sts = common::fake_sts::FakeSts::start(common::AWS_SEED, 30);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    source_profile(&env);
    env.start_daemon();

    // A client on a terminal: the PIN prompt appears there, with the tries left, and what
    // is typed reaches the key through the agent. `script` gives the client a terminal.
    if !std::path::Path::new("/dev/pts/ptmx").exists() {
        std::fs::create_dir_all("/dev/pts").unwrap();
        assert!(
            Command::new("mount")
                .args(["-t", "devpts", "devpts", "/dev/pts"])
                .status()
                .unwrap()
                .success()
        );
    }
    let mut client =
        common::terminal::OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    // The prompt names the program that asked: "... to approve base for PROGRAM (pid N): ".
    client.wait_for("to approve base for ");
    // rpassword shows the prompt, then turns echo off: the PIN is typed once it has.
    client.wait_for_echo_off();
    client.type_line("123456");
    let (status, text) = client.finish();
    assert!(status.success(), "{text}");
    assert!(
        text.contains("PIN of security key main (8 tries left) to approve base for ")
            && text.contains(" (pid "),
        "{text}"
    );
    assert!(text.contains("\"AccessKeyId\":\"ASIAFAKE"), "{text}");
    assert!(!text.contains("123456"), "the PIN is not echoed: {text}");
    assert!(
        !pinentry_log.exists(),
        "no pinentry while the client has a terminal"
    );

    // A client without a terminal (the AWS CLI under an IDE, say): the agent asks pinentry.
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    let shown = std::fs::read_to_string(&pinentry_log).unwrap();
    assert!(shown.contains("PIN of security key main"), "{shown}");

    // A wrong PIN from pinentry is a clear error, and costs a try that the next prompt shows.
    std::fs::write(&pin_file, "654321").unwrap();
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .failure(&["wrong PIN"]);
    std::fs::write(&pin_file, "123456").unwrap();
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    let shown = std::fs::read_to_string(&pinentry_log).unwrap();
    assert!(shown.contains("7 tries left"), "{shown}");
    assert_eq!(sts.gst_calls(), 3);
    env.stop_daemon();
    stop(key);
}

#[test]
fn a_slow_touch_is_announced_on_the_desktop_and_withdrawn_after() {
    if delegated_to_vm("a_slow_touch_is_announced_on_the_desktop_and_withdrawn_after") {
        return;
    }
    let bus = common::dbus::PrivateBus::start();
    let (_server, shown, closed) = common::dbus::serve_notifications(&bus);
    let mut env = common::TestEnv::with_file_store(PASSPHRASE);
    env.set("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    env.add_seed("work", &["--serial", common::SERIAL]);
    // The person takes 2.5 s to touch: longer than the 1 s after which the agent asks on the
    // desktop too.
    let key = virtual_key(&["--touch-delay-ms", "2500"]);
    env.run(["key", "enroll", "--name", "main"], "").success();
    let sts = common::fake_sts::FakeSts::start(common::AWS_SEED, 30);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    source_profile(&env);
    env.start_daemon();
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    // The agent answers the client, then notifies: wait (bounded) for every notification:
    // the enrolment's two touches (the agent enrols, so it asks on the desktop too), the
    // mint's touch, and the credentials issued.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (shown.lock().unwrap().len() < 4 || closed.lock().unwrap().len() < 3)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    env.stop_daemon();
    stop(key);

    let shown = shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 4, "{shown:?}");
    assert_eq!(
        shown[0].0,
        "Touch your security key to enrol it as \"main\" (1 of 2)"
    );
    assert_eq!(shown[1].0, "Touch it again to confirm (2 of 2)");
    let (summary, body, urgency) = &shown[2];
    // The notification names the program that asked.
    assert!(
        summary.starts_with("Touch your security key (main) to approve base for ")
            && summary.contains(" (pid ")
            && !summary.contains("mfa-agent"),
        "{summary}"
    );
    assert!(body.contains("approve base"), "{body}");
    assert_eq!(*urgency, 2, "critical: it needs the user now");
    assert_eq!(shown[3].0, "AWS credentials issued for base");
    // Once touched, each request is withdrawn from the desktop.
    assert_eq!(*closed.lock().unwrap(), vec![1, 2, 3]);
}

#[test]
fn a_u2f_only_key_approves_every_code_and_mint() {
    if delegated_to_vm("a_u2f_only_key_approves_every_code_and_mint") {
        return;
    }
    let mut env = file_vault_with_a_seed();
    let touches = env.path().join("touches");
    let touch_count = || std::fs::read_to_string(&touches).map_or(0, |t| t.lines().count());
    let replay = env.path().join("replay");
    let key = virtual_key(&[
        "--u2f",
        "--touch-log",
        touches.to_str().unwrap(),
        "--replay-file",
        replay.to_str().unwrap(),
    ]);

    // Listed as what it is: U2F only, so it approves but cannot seal.
    let listed = key_list(&env);
    let device = &listed["devices"][0];
    assert_eq!(device["capability"], "approve only", "{listed}");
    assert_eq!(device["versions"][0], "U2F_V2", "{listed}");
    assert!(device.get("error").is_none(), "{listed}");

    let enrolled = env.run(["key", "enroll", "--name", "u2f"], "");
    enrolled.success();
    assert!(
        enrolled.stderr().contains("cannot seal"),
        "{}",
        enrolled.stderr()
    );
    assert_eq!(touch_count(), 1);
    // Removing it takes its touch (a change of the key set is approved by an enrolled key,
    // never by --yes alone) and leaves the seeds readable without a key; then it is
    // enrolled again.
    env.run(["key", "remove", "u2f", "--yes"], "").success();
    assert_eq!(touch_count(), 2, "the removal was approved by a touch");
    code_matches_oathtool(&env);
    assert_eq!(touch_count(), 2, "no key enrolled, no touch");
    env.run(["key", "enroll", "--name", "u2f"], "").success();
    assert_eq!(touch_count(), 3);
    assert_eq!(key_list(&env)["devices"][0]["enrolled_as"], "u2f");
    assert!(
        stored_seed(&env, PASSPHRASE, "work").starts_with("ABCD"),
        "a U2F key leaves the seeds unsealed"
    );
    let tested = env.run(["key", "test", "u2f"], "").success();
    assert!(tested.contains("U2F signature verified"), "{tested}");

    // Every code needs its touch, proven by a signature of the registered key.
    let stderr = code_matches_oathtool(&env);
    assert!(stderr.contains("touch your security key (u2f)"), "{stderr}");
    assert_eq!(touch_count(), 5);
    // A recorded approval, replayed by the key in answer to the next request, approves
    // nothing: each approval has the key sign a fresh challenge.
    std::fs::write(&replay, "").unwrap();
    // (`failure` also asserts that no code reached stdout.)
    env.run(["code", "work"], "")
        .failure(&["signature does not match"]);
    assert_eq!(touch_count(), 6);
    std::fs::remove_file(&replay).unwrap();

    // So does every mint by the agent.
    let sts = common::fake_sts::FakeSts::start(common::AWS_SEED, 30);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    source_profile(&env);
    confirm_each_program(&env);
    env.start_daemon();
    let minted = env.run(["credential-process", "--profile", "base"], "");
    minted.success();
    assert!(
        minted.stderr().contains("(u2f) to approve base"),
        "{}",
        minted.stderr()
    );
    assert_eq!(touch_count(), 7);
    env.stop_daemon();

    // A FIDO2 key cannot join a U2F-guarded vault, and another U2F key does not approve.
    // Nor does it approve the enrolled key's removal: the guard stays.
    stop(key);
    let stranger = virtual_key(&["--u2f"]);
    env.run(["code", "work"], "")
        .failure(&["none of the plugged-in U2F keys is enrolled"]);
    env.run(["key", "remove", "u2f", "--yes"], "")
        .failure(&["none of the plugged-in U2F keys is enrolled"]);
    env.run(["code", "work"], "")
        .failure(&["none of the plugged-in U2F keys is enrolled"]);
    stop(stranger);
    let fido2 = virtual_key(&[]);
    env.run(["key", "enroll", "--name", "other"], "")
        .failure(&["guarded by U2F keys", "key remove"]);
    stop(fido2);
}

/// The key pulled out while the agent waits for its touch: that request fails at once with
/// what happened and what to do (not after the 45 s touch deadline), the agent keeps
/// serving, and the vault is as it was. (A key pulled before the touch is asked for is
/// waited for, 30 s, as when none is plugged in.)
#[test]
fn a_key_pulled_out_mid_touch_fails_that_request_clearly() {
    if delegated_to_vm("a_key_pulled_out_mid_touch_fails_that_request_clearly") {
        return;
    }
    let env = env_with_a_15_second_seed();
    // A person who takes 4 s to touch: long enough to pull the key out first.
    let key = virtual_key(&["--touch-delay-ms", "4000"]);
    env.run(["key", "enroll", "--name", "main"], "").success();
    env.start_daemon();
    let vault = std::fs::read(env.data_dir().join("seeds.json")).unwrap();

    let mut waiting = env
        .cmd(["code", "work"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Pulled once the client relays the agent's "touch your security key" (the request is
    // at the key then), read from its stderr as it comes.
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = waiting.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !seen
        .recv_timeout(Duration::from_secs(60))
        .is_ok_and(|l| l.contains("touch your security key"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no touch was asked for"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let pulled = std::time::Instant::now();
    stop(key);
    let status = waiting.wait().unwrap();
    let took = pulled.elapsed();
    let said = reader.join().unwrap();
    assert!(!status.success(), "{said}");
    for needle in ["unplugged before it answered", "plug it back in"] {
        assert!(said.contains(needle), "{said}");
    }
    assert!(
        took < Duration::from_secs(15),
        "failed {took:?} after the pull: {said}"
    );

    // The agent lives on, and the vault is as it was.
    let status = env.status();
    assert!(status["pid"].as_u64().is_some(), "{status}");
    assert_eq!(
        std::fs::read(env.data_dir().join("seeds.json")).unwrap(),
        vault,
        "the vault is untouched"
    );
    env.stop_daemon();
}

/// A client that gives up while the agent waits for a touch (Ctrl-C, a killed terraform):
/// the agent sends CTAPHID_CANCEL on the request's channel, the key stops waiting (the
/// virtual key, as real ones, keeps reading the bus and sends KEEPALIVE meanwhile), and the
/// key is free for the next request at once rather than after the abandoned touch.
#[test]
fn a_client_that_gives_up_cancels_the_touch_at_the_key() {
    if delegated_to_vm("a_client_that_gives_up_cancels_the_touch_at_the_key") {
        return;
    }
    let env = env_with_a_15_second_seed();
    let touches = std::env::temp_dir().join("touches-cancel");
    let delay = std::env::temp_dir().join("touch-delay");
    std::fs::write(&delay, "0").unwrap();
    let key = virtual_key(&[
        "--touch-log",
        touches.to_str().unwrap(),
        "--touch-delay-file",
        delay.to_str().unwrap(),
    ]);
    env.run(["key", "enroll", "--name", "main"], "").success();
    env.start_daemon();
    let log = || std::fs::read_to_string(&touches).unwrap_or_default();

    // The person would take a minute: the client gives up first.
    std::fs::write(&delay, "60000").unwrap();
    let mut client = env
        .cmd(["code", "work"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(client.stderr.take().unwrap());
    let asked = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .any(|l| l.contains("touch your security key"));
    assert!(asked, "the client was asked for a touch");
    std::thread::sleep(Duration::from_millis(500));
    let _ = client.kill();
    let _ = client.wait();
    let gave_up = std::time::Instant::now();
    while !log().contains("cancelled") {
        assert!(
            gave_up.elapsed() < Duration::from_secs(20),
            "the key was not told to stop waiting: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The key is free: the next request gets its touch straight away.
    std::fs::write(&delay, "0").unwrap();
    let start = std::time::Instant::now();
    let code = env.run(["code", "work"], "").success();
    assert!(code.lines().next().is_some_and(|l| l.len() == 6), "{code}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the next request waited {:?}",
        start.elapsed()
    );
    env.stop_daemon();
    stop(key);
}

/// A key that answers with damaged CTAP2 messages (tests/fido-token/src/garble.rs: bit
/// flips, telling CBOR bytes, cuts, extra bytes, repeated runs, wrong status codes; a third
/// of the answers, at random): every `key list`, `code` and `key test` through it ends
/// within a bound, in the right result or in one clear error line, never in a panic; the
/// agent lives on with the same pid, and the vault is unchanged. A fuzzer of the CTAP2
/// parsing in hidapi, ctap-hid-fido2 and mfa-agent, fed through the real HID path.
/// `MFA_AGENT_GARBLE_ROUNDS` (8) rounds of the three commands; `MFA_AGENT_GARBLE_SEED`
/// (a fixed one by default) repeats a run, `MFA_AGENT_GARBLE_SEED=random` explores.
#[test]
fn damaged_answers_from_a_key_end_in_the_right_result_or_a_clear_error() {
    if delegated_to_vm("damaged_answers_from_a_key_end_in_the_right_result_or_a_clear_error") {
        return;
    }
    let env = file_vault_with_a_seed();
    let garble = std::env::temp_dir().join("garble-seed");
    let damage = std::env::temp_dir().join("garble-log");
    let _ = std::fs::remove_file(&garble);
    let key = virtual_key(&[
        "--garble-file",
        garble.to_str().unwrap(),
        "--garble-log",
        damage.to_str().unwrap(),
    ]);
    env.run(["key", "enroll", "--name", "main"], "").success();
    env.start_daemon();
    let pid = env.status()["pid"].clone();
    let vault = |env: &common::TestEnv| {
        ["seeds.json", "seeds.age"].map(|f| std::fs::read(env.data_dir().join(f)).unwrap())
    };
    let before = vault(&env);

    // A fixed seed in CI, so that a red run can be repeated; `random` explores.
    let seed = match std::env::var("MFA_AGENT_GARBLE_SEED").as_deref() {
        Ok("random") => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (now.as_nanos() as u64).to_string()
        }
        Ok(seed) => seed.to_owned(),
        Err(_) => "20261204".to_owned(),
    };
    eprintln!("garble seed {seed} (MFA_AGENT_GARBLE_SEED={seed} repeats this run)");
    std::fs::write(&garble, &seed).unwrap();
    let rounds: usize = std::env::var("MFA_AGENT_GARBLE_ROUNDS").map_or(8, |r| r.parse().unwrap());
    let mut errors: HashMap<String, usize> = HashMap::new();
    let mut right = 0;
    for round in 0..rounds {
        for command in [
            &["key", "list", "--json"][..],
            &["code", "work", "--json"],
            &["key", "test", "main"],
        ] {
            if command[0] == "code" {
                env.run(["lock"], "").success();
            }
            let (run, took) = bounded_run(&env, command, Duration::from_secs(90));
            let context = format!(
                "round {round}, {command:?}, after {took:?}, damage so far:\n{}",
                std::fs::read_to_string(&damage).unwrap_or_default()
            );
            match right_result_or_clear_error(command, &run, &context) {
                Ok(()) => {
                    eprintln!("round {round} {command:?}: right, {took:?}");
                    right += 1;
                }
                Err(line) => {
                    eprintln!("round {round} {command:?}: {line}, {took:?}");
                    *errors.entry(line).or_default() += 1;
                }
            }
            assert_eq!(
                env.status()["pid"],
                pid,
                "the agent was restarted: {context}"
            );
        }
    }
    let damaged = std::fs::read_to_string(&damage)
        .unwrap_or_default()
        .lines()
        .count();
    eprintln!("{rounds} rounds: {damaged} answers damaged, {right} commands right, errors:");
    let mut by_count: Vec<_> = errors.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    for (line, count) in &by_count {
        eprintln!("  {count:3} {line}");
    }
    assert!(
        damaged > 0 && !errors.is_empty(),
        "the key damaged nothing: the test tested nothing"
    );

    // Whole again, the key works at once and the vault is as it was.
    std::fs::remove_file(&garble).unwrap();
    env.run(["lock"], "").success();
    code_matches_oathtool(&env);
    env.run(["key", "test", "main"], "").success();
    assert!(vault(&env) == before, "the vault changed");

    env.stop_daemon();
    enrolments_through_damaged_answers(&garble, seed.parse().unwrap());
    stop(key);
}

/// Enrolment through the damaging key (makeCredential's attestation is the largest answer a
/// key gives), each time into a vault that has no key yet: an enrolment that succeeds must
/// have recorded a key that opens the vault, and one that fails must have recorded nothing
/// and left the seed readable as it was.
fn enrolments_through_damaged_answers(garble: &std::path::Path, seed: u64) {
    let env = file_vault_with_a_seed();
    for attempt in 0..4 {
        let name = format!("spare{attempt}");
        std::fs::write(garble, (seed.wrapping_add(attempt)).to_string()).unwrap();
        let command = ["key", "enroll", "--name", &name];
        let (run, took) = bounded_run(&env, &command, Duration::from_secs(90));
        std::fs::remove_file(garble).unwrap();
        let context = format!("enrolment {attempt}, after {took:?}");
        let enrolled = key_list(&env)["enrolled"].clone();
        match right_result_or_clear_error(&command, &run, &context) {
            Ok(()) => {
                eprintln!("enrolment {attempt}: right, {took:?}");
                assert_eq!(enrolled, serde_json::json!([name]), "{context}");
                env.run(["lock"], "").success();
                code_matches_oathtool(&env);
                env.run(["key", "remove", &name, "--yes"], "").success();
            }
            Err(line) => {
                eprintln!("enrolment {attempt}: {line}, {took:?}");
                assert_eq!(enrolled, serde_json::json!([]), "{context}");
            }
        }
        assert!(
            stored_seed(&env, PASSPHRASE, "work").starts_with("ABCD"),
            "{context}"
        );
    }
    env.stop_daemon();
}

/// Checks one command's run through the damaging key: a success must be right (a JSON key
/// list, the code oathtool computes, a key that "works"); a failure must be one clear error
/// line and nothing on stdout, which is returned. Neither may show a panic.
fn right_result_or_clear_error(
    command: &[&str],
    run: &common::Run,
    context: &str,
) -> Result<(), String> {
    let stderr = run.stderr();
    assert!(!stderr.contains("panicked"), "{context}\n{stderr}");
    if !run.0.status.success() {
        run.failure(&[]);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            ["retry", "again", "plug", "use another"]
                .iter()
                .any(|advice| line.contains(advice)),
            "the error does not say what to do: {line}\n{context}"
        );
        return Err(line.to_owned());
    }
    let stdout = run.stdout();
    match command {
        ["key", "list", ..] => {
            let listed: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{e}: {stdout}\n{context}"));
            assert!(listed["devices"].is_array(), "{listed}\n{context}");
        }
        ["code", ..] => {
            let json: Value = serde_json::from_str(&stdout).unwrap();
            let expected = common::oathtool(
                common::AWS_SEED,
                json["valid_from"].as_u64().unwrap(),
                "sha1",
                6,
                30,
            );
            assert_eq!(json["code"], expected.as_str(), "a wrong code: {context}");
        }
        // Whether it recorded a working key is for the caller to check.
        ["key", "enroll", ..] => {}
        _ => assert!(stdout.contains("works"), "{stdout}\n{context}"),
    }
    Ok(())
}

/// Runs a command of `env`, killing it (and failing the test) when it takes over `limit`.
fn bounded_run(env: &common::TestEnv, args: &[&str], limit: Duration) -> (common::Run, Duration) {
    let start = std::time::Instant::now();
    let child = env
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = finished.recv_timeout(limit).is_err();
        if hung {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        hung
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    let took = start.elapsed();
    assert!(!watchdog.join().unwrap(), "{args:?} hung for {took:?}");
    (common::Run(output), took)
}
