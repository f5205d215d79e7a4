//! `mfa-agent adopt NAME`: a profile keeps its name. Its keys move into the vault, the
//! profile gets its MFA session from the agent, and real clients use it and the roles built
//! on it unchanged: the AWS CLI, boto3 and the AWS SDKs for Go and JavaScript, against the
//! strict fake STS.
//! `--undo` puts every byte back.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::fake_sts::{self, FakeSts};
use crate::common::minting::ROLE;
use crate::common::moto::venv;
use crate::common::{AWS_SEED, SERIAL, TestEnv};

const CONFIG: &str = "# my AWS set-up\n[profile work]\nregion = us-east-1\n\n[profile prod-admin] # the one I use\nrole_arn = ROLE\nsource_profile = work\nmfa_serial = SERIAL\nregion = us-east-1\n\n[profile unrelated]\nregion = eu-west-1\n";

fn credentials() -> String {
    format!(
        "[other]\naws_access_key_id = AKIAOTHEROTHER000001\naws_secret_access_key = otherSecretStaysPut\n\n[work] # my work account\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    )
}

fn setup(sts: &FakeSts) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    env.add_seed("work", &["--serial", SERIAL]);
    env.aws_config(&CONFIG.replace("ROLE", ROLE).replace("SERIAL", SERIAL));
    std::fs::write(env.path().join(".aws/credentials"), credentials()).unwrap();
    env.start_daemon();
    env
}

/// `cmd` in the test's private environment, as a user's shell would run it.
fn in_env(env: &TestEnv, mut cmd: Command) -> Command {
    let probe = env.cmd(["--version"]);
    cmd.env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd
}

fn json_of(mut cmd: Command) -> Value {
    let out = cmd.output().expect("the client runs");
    assert!(
        out.status.success(),
        "client failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn go_client() -> PathBuf {
    std::env::var_os("MFA_AGENT_TEST_GO_CLIENT")
        .map(PathBuf::from)
        .expect("MFA_AGENT_TEST_GO_CLIENT is not set: run the suite with `tests/run`")
}

#[test]
fn an_adopted_profile_and_its_roles_keep_their_names_in_the_aws_cli_and_sdks() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let aws = env.path().join(".aws");
    let adopted = env.run(["adopt", "work", "--yes"], "");
    let said = adopted.success();
    assert!(said.is_empty(), "nothing on stdout: {said}");
    assert!(
        adopted.stderr().contains("adopted \"work\""),
        "{}",
        adopted.stderr()
    );

    // The keys left the plaintext file; the other profile's are byte for byte as they were.
    let creds = std::fs::read_to_string(aws.join("credentials")).unwrap();
    assert!(!creds.contains(fake_sts::SECRET_ACCESS_KEY), "{creds}");
    assert!(creds.starts_with(
        "[other]\naws_access_key_id = AKIAOTHEROTHER000001\naws_secret_access_key = otherSecretStaysPut\n"
    ));
    let config = std::fs::read_to_string(aws.join("config")).unwrap();
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    assert!(
        config.contains(&format!(
            "[profile work]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile work\nmfa_serial = {SERIAL}\n"
        )),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "[profile prod-admin] # the one I use\nrole_arn = {ROLE}\nsource_profile = work\nregion = us-east-1\n"
        )),
        "the role's mfa_serial moved to work: {config}"
    );
    assert!(
        config.starts_with("# my AWS set-up\n")
            && config.ends_with("[profile unrelated]\nregion = eu-west-1\n")
    );
    let backup = aws.join("config.bak");
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        CONFIG.replace("ROLE", ROLE).replace("SERIAL", SERIAL)
    );
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The AWS CLI on the profile's own name: its MFA session comes from the agent.
    let mut cli = Command::new("/usr/bin/aws");
    cli.args([
        "sts",
        "get-caller-identity",
        "--output",
        "json",
        "--profile",
        "work",
    ])
    .args(["--endpoint-url", &sts.url]);
    let identity = json_of(in_env(&env, cli));
    assert_eq!(identity["Account"], "123456789012", "{identity}");
    assert_eq!(sts.gst_calls(), 1, "one MFA session");

    // boto3 assumes the role built on it itself, with that session: no code asked for.
    let mut boto3 = Command::new(venv().join("bin/python"));
    boto3.arg(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/get_caller_identity.py"),
    );
    boto3.arg("prod-admin");
    json_of(in_env(&env, boto3));
    assert_eq!(sts.gst_calls(), 1, "the role reused the MFA session");
    let roles: Vec<String> = sts
        .requests()
        .iter()
        .filter_map(|form| form.get("RoleArn").cloned())
        .collect();
    assert_eq!(
        roles,
        [ROLE],
        "boto3 assumed the role with the agent's session"
    );

    // The Go SDK (Terraform's) on the profile's name.
    let mut go = Command::new(go_client());
    go.args(["identity", "work", &sts.url]);
    let identity = json_of(in_env(&env, go));
    assert_eq!(identity["Source"], "ProcessProvider", "{identity}");

    // The AWS SDK for JavaScript on the profile's name.
    let mut node = Command::new("node");
    node.current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients"))
        .args(["get_caller_identity.mjs", "work"]);
    let identity = json_of(in_env(&env, node));
    assert_eq!(identity["Account"], "123456789012", "{identity}");

    // Undo: every byte back.
    env.run(["adopt", "work", "--undo", "--yes"], "").success();
    assert_eq!(
        std::fs::read_to_string(aws.join("credentials")).unwrap(),
        credentials()
    );
    assert_eq!(
        std::fs::read_to_string(aws.join("config")).unwrap(),
        CONFIG.replace("ROLE", ROLE).replace("SERIAL", SERIAL)
    );
    let listed = env.run(["creds", "list"], "").stdout();
    assert!(
        !listed.contains("work"),
        "the vault let the keys go: {listed}"
    );
}

#[test]
fn adopt_refuses_what_it_cannot_keep_working_and_changes_nothing() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let aws = env.path().join(".aws");
    let before = (
        std::fs::read(aws.join("config")).unwrap(),
        std::fs::read(aws.join("credentials")).unwrap(),
    );
    env.run(["adopt", "prod-admin", "--yes"], "")
        .failure(&["role profile", "adopt its source profile (work)"]);
    env.run(["adopt", "unrelated", "--yes"], "")
        .failure(&["names no MFA device"]);
    env.run(["adopt", "work", "--undo", "--yes"], "")
        .failure(&["was not adopted"]);
    // No terminal to confirm on, and no --yes.
    env.run(["adopt", "work"], "")
        .failure(&["nothing was changed", "--yes"]);
    assert_eq!(
        (
            std::fs::read(aws.join("config")).unwrap(),
            std::fs::read(aws.join("credentials")).unwrap()
        ),
        before
    );
    assert!(!aws.join("config.bak").exists());
    // Adopting twice is refused once done.
    env.run(["adopt", "work", "--yes"], "").success();
    env.run(["adopt", "work", "--yes"], "")
        .failure(&["adopted already", "--undo"]);
}
