//! Opt-in tests with a real security key: `cargo test --test suite real_key -- --ignored
//! --nocapture`, with one FIDO2 key plugged in and someone to touch it (three touches; set
//! MFA_AGENT_PIN_FILE to enrol with the key's PIN).
//! Nothing is written to the key beyond one non-resident credential; nothing is reset.

use crate::common;

use common::{AWS_SEED, TestEnv};

#[test]
#[ignore = "needs a real security key and a person to touch it: cargo test --test suite real_key -- --ignored --nocapture"]
fn a_real_key_enrols_seals_and_opens_a_seed() {
    let mut env = TestEnv::with_file_store("correct horse battery");
    env.set("MFA_AGENT_KEY_WAIT", "60");
    if let Some(pin_file) = std::env::var_os("MFA_AGENT_PIN_FILE") {
        env.set("MFA_AGENT_PIN_FILE", pin_file.to_str().unwrap());
    }
    env.add_seed("work", &[]);
    let listed = env.run(["key", "list"], "").success();
    eprintln!("{listed}");
    let mut enroll = vec!["key", "enroll", "--name", "real"];
    if std::env::var_os("MFA_AGENT_PIN_FILE").is_some() {
        enroll.push("--pin");
    }
    eprintln!("touch the key twice to enrol it");
    env.run(enroll, "").success();
    eprintln!("touch the key once more to open the seed");
    let out: serde_json::Value =
        serde_json::from_str(&env.run(["code", "work", "--json"], "").success()).unwrap();
    let expected = common::oathtool(AWS_SEED, out["valid_from"].as_u64().unwrap(), "sha1", 6, 30);
    assert_eq!(out["code"], expected.as_str());
}
