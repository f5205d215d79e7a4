//! `mfa-agent creds rotate`: a new access key, stored, proven, and only then the old one
//! deleted; against the strict fake (which lets a user manage keys only from an MFA
//! session, and makes new keys wait before they work) and moto (the wire format).

use crate::common;

use common::TestEnv;
use common::fake_sts::{self, FakeSts};
use common::minting::SHORT_SEED;
use serde_json::Value;

const NEW_KEY: &str = "AKIAFAKEROTATED00001";

/// The keys of `base` in the vault, its MFA device's seed (3-second codes) too, and the
/// agent pointed at `sts`.
fn alice(sts: &FakeSts) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.set("MFA_AGENT_PROPAGATION_WAIT", "4");
    let uri = format!("otpauth://totp/work?secret={SHORT_SEED}&period=3");
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
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {}\n",
        common::SERIAL
    ));
    env.run(
        ["creds", "add", "base", "--stdin"],
        &format!(
            "{} {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_ACCESS_KEY
        ),
    )
    .success();
    env.start_daemon();
    env
}

fn vault_key(env: &TestEnv) -> String {
    let listed: Value =
        serde_json::from_str(&env.run(["creds", "list", "--json"], "").success()).unwrap();
    listed[0]["access_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A fresh mint, and the key its GetSessionToken was signed with.
fn mint_signed_by(env: &TestEnv, sts: &FakeSts) -> String {
    common::minting::align_to_a_fresh_window();
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    sts.requests()
        .into_iter()
        .rev()
        .find(|r| r["Action"] == "GetSessionToken")
        .unwrap()["SignedBy"]
        .clone()
}

#[test]
fn rotation_stores_and_proves_the_new_key_before_the_old_one_goes() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = alice(&sts);
    // IAM takes a moment to make the new key valid: the agent waits for it.
    sts.delay_new_keys(2);
    let rotated = env.run(["creds", "rotate", "base"], "");
    rotated.success();
    assert!(
        rotated
            .stderr()
            .contains("rotated the access key of IAM user alice")
            && rotated
                .stderr()
                .contains("waiting for IAM to make the new key valid"),
        "{}",
        rotated.stderr()
    );
    assert_eq!(
        sts.access_keys(),
        [NEW_KEY],
        "the old key is deleted in AWS"
    );
    assert_eq!(vault_key(&env), "****0001");
    // The order: created from the MFA session, proven with the new key, then the delete.
    let requests = sts.requests();
    let at = |action: &str, signer: &dyn Fn(&str) -> bool| {
        requests
            .iter()
            .position(|r| r["Action"] == action && signer(&r["SignedBy"]))
            .unwrap_or_else(|| panic!("no {action}: {requests:?}"))
    };
    let create = at("CreateAccessKey", &|k| k.starts_with("ASIAFAKE"));
    let proof = at("GetCallerIdentity", &|k| k == NEW_KEY);
    let delete = at("DeleteAccessKey", &|k| k.starts_with("ASIAFAKE"));
    assert!(create < proof && proof < delete, "{requests:?}");
    // The next session is minted with the new key.
    assert_eq!(mint_signed_by(&env, &sts), NEW_KEY);
}

#[test]
fn a_failure_at_any_step_leaves_a_working_key_in_the_vault() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = alice(&sts);

    // The new key never works (within the wait): the old one goes back in the vault, the
    // new one is deleted.
    sts.delay_new_keys(3600);
    env.run(["creds", "rotate", "base"], "").failure(&[
        "the new key did not work within 4 s",
        "the vault holds the old key ****0001 again",
        "was deleted in AWS",
    ]);
    assert_eq!(sts.access_keys(), [fake_sts::ACCESS_KEY_ID]);
    assert_eq!(mint_signed_by(&env, &sts), fake_sts::ACCESS_KEY_ID);

    // The delete of the old key fails: the vault holds the new, working key, and the error
    // says which key is left and how to delete it.
    sts.delay_new_keys(0);
    sts.refuse_next_iam("DeleteAccessKey");
    env.run(["creds", "rotate", "base"], "").failure(&[
        "the vault holds the new key",
        &format!("deleting the old key {} failed", fake_sts::ACCESS_KEY_ID),
        "aws iam delete-access-key --user-name alice",
    ]);
    let keys = sts.access_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(vault_key(&env), "****0002");
    assert_eq!(mint_signed_by(&env, &sts), "AKIAFAKEROTATED00002");

    // Two keys exist now: rotation refuses, naming them, and changes nothing.
    env.run(["creds", "rotate", "base"], "").failure(&[
        "has two access keys already",
        fake_sts::ACCESS_KEY_ID,
        "AKIAFAKEROTATED00002",
        "nothing was changed",
    ]);
    assert_eq!(sts.access_keys(), keys);

    // Keys that are not in the vault cannot be rotated there.
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {}\n\n[profile filed]\nregion = eu-west-1\nmfa_serial = {}\naws_access_key_id = AKIAEXAMPLEEXAMPLE12\naws_secret_access_key = x\n",
        common::SERIAL,
        common::SERIAL
    ));
    env.run(["creds", "rotate", "filed"], "").failure(&[
        "the vault holds no keys for profile \"filed\"",
        "creds import filed",
    ]);
}

/// The same against moto: CreateAccessKey, ListAccessKeys and DeleteAccessKey as aws-sdk-iam
/// sends them, read back with boto3.
#[test]
fn rotation_speaks_iam_as_moto_does() {
    let moto = common::moto::Moto::start();
    let keys = moto.boto3_iam(
        "iam.create_user(UserName='bob')\nk = iam.create_access_key(UserName='bob')['AccessKey']\nprint(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let (key_id, _) = keys.split_once(' ').unwrap();
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &moto.url);
    env.run(
        [
            "seed",
            "add",
            "work",
            "--secret",
            "-",
            "--serial",
            common::SERIAL,
        ],
        common::AWS_SEED,
    )
    .success();
    env.aws_config(&format!(
        "[profile bob]\nregion = us-east-1\nmfa_serial = {}\n",
        common::SERIAL
    ));
    env.run(["creds", "add", "bob", "--stdin"], &format!("{keys}\n"))
        .success();
    env.start_daemon();
    env.run(["creds", "rotate", "bob"], "").success();
    let left = moto.boto3_iam(
        "print(' '.join(k['AccessKeyId'] for k in iam.list_access_keys(UserName='bob')['AccessKeyMetadata']))",
    );
    assert!(
        !left.is_empty() && !left.contains(' ') && left != key_id,
        "{left}"
    );
    assert_eq!(vault_key(&env), format!("****{}", &left[left.len() - 4..]));
}
