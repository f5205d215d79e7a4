//! `mfa-agent aws`: virtual MFA devices enrolled from the command line, against the strict
//! fake (which checks the codes: two consecutive, then a later one for the session) and
//! moto (an IAM emulator nobody here wrote, for the wire format).

use crate::common;

use common::TestEnv;
use common::fake_sts::{self, FakeSts};
use serde_json::Value;

const NEW_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice-mfa-agent";

/// A keyring-backed env whose profile `base` has alice's long-term keys and no MFA device
/// yet, with the agent pointed at `sts` (which answers IAM too).
fn alice(sts: &FakeSts) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.aws_config(&format!(
        "# alice's own keys\n[profile base]\nregion = eu-west-1\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[profile other]\nregion = us-east-1\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    env.start_daemon();
    env
}

fn config_of(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path().join(".aws/config")).unwrap()
}

fn seeds(env: &TestEnv) -> Value {
    serde_json::from_str(&env.run(["seed", "list", "--json"], "").success()).unwrap()
}

#[test]
fn enrolment_keeps_the_seed_in_the_vault_and_the_next_session_uses_it() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let env = alice(&sts);
    let before = config_of(&env);
    let enrolled = env.run(["aws", "enroll", "--profile", "base", "--write-config"], "");
    assert_eq!(
        enrolled.success().trim(),
        NEW_SERIAL,
        "the serial on stdout"
    );
    assert!(
        enrolled
            .stderr()
            .contains("its seed is in the vault as \"base\""),
        "{}",
        enrolled.stderr()
    );
    // IAM enabled it with one pair of codes; the seed was never shown or written in clear.
    let devices = sts.mfa_devices();
    let (seed, enabled) = &devices[NEW_SERIAL];
    assert!(*enabled);
    assert_eq!(sts.iam_codes().len(), 1);
    assert!(
        !enrolled.stdout().contains(seed.as_str()) && !enrolled.stderr().contains(seed.as_str())
    );
    for (path, bytes) in env.all_file_contents() {
        assert!(
            !bytes.windows(seed.len()).any(|w| w == seed.as_bytes()),
            "the seed is in {} in clear",
            path.display()
        );
    }
    // The profile names the device; the rest of the file is as it was, and kept beside it.
    let config = config_of(&env);
    assert_eq!(
        config,
        before.replace(
            "aws_secret_access_key = fakeStsSecretAccessKeyForTests0000000000\n",
            &format!("aws_secret_access_key = fakeStsSecretAccessKeyForTests0000000000\nmfa_serial = {NEW_SERIAL}\n")
        )
    );
    assert_eq!(
        std::fs::read_to_string(env.path().join(".aws/config.bak")).unwrap(),
        before
    );
    let listed = seeds(&env);
    let seed_entry = listed["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "base")
        .cloned()
        .unwrap_or_default();
    assert_eq!(seed_entry["serial"], NEW_SERIAL, "{listed}");

    // A session right away: its code is a later one than the pair IAM took.
    let minted = env.run(["credential-process", "--profile", "base"], "");
    let json: Value = serde_json::from_str(&minted.success()).unwrap();
    assert_eq!(json["AccessKeyId"], sts.issued()[0].0.as_str());
    assert_eq!((sts.gst_calls(), sts.rejected_codes()), (1, 0));
    let gst = sts
        .requests()
        .into_iter()
        .find(|r| r["Action"] == "GetSessionToken")
        .unwrap();
    assert_eq!(gst["SerialNumber"], NEW_SERIAL);

    // `devices` lists both of alice's devices, and which the vault holds.
    let devices: Value = serde_json::from_str(
        &env.run(["aws", "devices", "--profile", "base", "--json"], "")
            .success(),
    )
    .unwrap();
    let seed_of = |serial: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["serial"] == serial)
            .map(|d| d["seed"].clone())
    };
    assert_eq!(seed_of(NEW_SERIAL), Some(Value::from("base")), "{devices}");
    assert_eq!(seed_of(common::SERIAL), Some(Value::Null), "{devices}");

    // Resync takes a fresh pair.
    env.run(["aws", "resync", "--profile", "base"], "")
        .success();
    assert_eq!(sts.iam_codes().len(), 2);

    unenrolment_takes_away_what_enrolment_made(&env, &sts, &before);
}

/// Unenrol: asks first; deactivates with an MFA session (the fake refuses long-term keys),
/// deletes, drops the seed, and takes the mfa_serial enrolment wrote out of the profile.
fn unenrolment_takes_away_what_enrolment_made(env: &TestEnv, sts: &FakeSts, before: &str) {
    env.run(["aws", "unenroll", "--profile", "base"], "")
        .failure(&["nothing was changed", "pass --yes"]);
    assert!(sts.mfa_devices().contains_key(NEW_SERIAL));
    let gone = env.run(["aws", "unenroll", "--profile", "base", "--yes"], "");
    assert!(
        gone.stderr().contains("deactivated and deleted"),
        "{}",
        gone.stderr()
    );
    assert!(sts.mfa_devices().is_empty());
    let deactivate = sts
        .requests()
        .into_iter()
        .find(|r| r["Action"] == "DeactivateMFADevice")
        .unwrap();
    assert!(
        deactivate["SignedBy"].starts_with("ASIAFAKE"),
        "signed by the MFA session"
    );
    assert!(seeds(env)["seeds"].as_array().unwrap().is_empty());
    // The mfa_serial enrolment wrote goes with the device (--yes answers that question
    // too); the rest of the file is as it was before the enrolment.
    assert!(
        gone.stderr()
            .contains("removed mfa_serial from [profile base]"),
        "{}",
        gone.stderr()
    );
    assert_eq!(config_of(env), before);
}

#[test]
fn a_failed_step_leaves_nothing_behind_and_says_so() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let env = alice(&sts);

    // AWS refuses the codes: the device is deleted again, the seed dropped.
    sts.refuse_next_iam("EnableMFADevice");
    env.run(["aws", "enroll", "--profile", "base"], "")
        .failure(&[
            "AWS rejected the two consecutive codes",
            "deleted again, so nothing is left in AWS",
        ]);
    assert!(sts.mfa_devices().is_empty());
    assert!(seeds(&env)["seeds"].as_array().unwrap().is_empty());
    assert!(!config_of(&env).contains("mfa_serial"));

    // Not allowed to create one: nothing changed anywhere.
    sts.refuse_next_iam("CreateVirtualMFADevice");
    env.run(["aws", "enroll", "--profile", "base"], "")
        .failure(&[
            "AWS denied the IAM call",
            "nothing was changed in AWS or in the vault",
        ]);

    // A device name that is taken, and a user with AWS's 8 devices.
    env.run(
        [
            "aws",
            "enroll",
            "--profile",
            "base",
            "--device-name",
            "alice",
        ],
        "",
    )
    .failure(&[
        "exists in the account already",
        "--device-name",
        "nothing was changed",
    ]);
    sts.add_devices(7);
    env.run(["aws", "enroll", "--profile", "base"], "")
        .failure(&["as many as AWS allows (8)", "nothing was changed"]);
    assert_eq!(sts.mfa_devices().len(), 7);

    // A seed of that name in the vault: refused before anything reaches AWS.
    env.run(["seed", "add", "base", "--secret", "-"], common::AWS_SEED)
        .success();
    let creates = || {
        sts.requests()
            .iter()
            .filter(|r| r["Action"] == "CreateVirtualMFADevice")
            .count()
    };
    let before = creates();
    env.run(["aws", "enroll", "--profile", "base"], "")
        .failure(&["a seed named \"base\" already", "--seed"]);
    assert_eq!(creates(), before);

    // A profile without keys.
    env.run(["aws", "enroll", "--profile", "other", "--seed", "o"], "")
        .failure(&["has no long-term keys", "mfa-agent creds add other"]);
}

/// The same commands against moto: what aws-sdk-iam sends and reads is what an IAM
/// implementation nobody here wrote speaks (moto checks neither codes nor MFA sessions).
#[test]
fn enrolment_speaks_iam_as_moto_does() {
    let moto = common::moto::Moto::start();
    let keys = moto.boto3_iam(
        "iam.create_user(UserName='bob')\nk = iam.create_access_key(UserName='bob')['AccessKey']\nprint(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let (key_id, secret) = keys.trim().split_once(' ').unwrap();
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &moto.url);
    env.aws_config(&format!(
        "[profile bob]\nregion = us-east-1\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    ));
    env.start_daemon();
    let serial = env
        .run(["aws", "enroll", "--profile", "bob", "--write-config"], "")
        .success()
        .trim()
        .to_owned();
    assert_eq!(serial, "arn:aws:iam::123456789012:mfa/bob-mfa-agent");
    // moto holds the device, enabled for bob, and its seed is the vault's (read back with
    // `seed export`, which spends no code: a code shown would make the next mint wait).
    let listed = moto.boto3_iam(
        "d = iam.list_virtual_mfa_devices(AssignmentStatus='Assigned')['VirtualMFADevices']\nprint(json.dumps([[x['SerialNumber'], x['User']['UserName'], x['Base32StringSeed'].decode()] for x in d]))",
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0][0], serial.as_str(), "{listed}");
    assert_eq!(listed[0][1], "bob", "{listed}");
    let uri = env.run(["seed", "export", "bob", "--uri"], "").success();
    assert!(
        uri.contains(&format!("secret={}", listed[0][2].as_str().unwrap())),
        "the vault holds moto's seed"
    );
    let devices: Value = serde_json::from_str(
        &env.run(["aws", "devices", "--profile", "bob", "--json"], "")
            .success(),
    )
    .unwrap();
    assert_eq!(devices[0]["serial"], serial.as_str(), "{devices}");
    assert_eq!(devices[0]["seed"], "bob", "{devices}");

    // moto answers GetCallerIdentity for a session with a user of its own ("moto"), where
    // AWS names the session's IAM user: the user is named here.
    env.run(
        [
            "aws",
            "unenroll",
            "--profile",
            "bob",
            "--user",
            "bob",
            "--yes",
        ],
        "",
    )
    .success();
    let left = moto.boto3_iam("print(len(iam.list_virtual_mfa_devices()['VirtualMFADevices']))");
    assert_eq!(left.trim(), "0");
}
