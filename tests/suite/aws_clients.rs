//! Real AWS clients using `credential_process = mfa-agent credential-process --profile P`:
//! the AWS CLI v2 (Debian's package), boto3 (PyPI), the AWS SDK for JavaScript (npm) and the
//! AWS SDK for Go v2 (Debian's package, built offline by `tests/run`), each calling
//! GetCallerIdentity on moto's STS emulator.

use crate::common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use common::moto::{Moto, venv};
use common::{SERIAL, TestEnv};
use serde_json::Value;

/// A keyring env with the test seed, a source profile, a role profile, and two profiles
/// that hand both to AWS clients through credential_process.
fn setup(moto: &Moto) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &moto.url);
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    env.add_seed("work", &["--serial", SERIAL]);
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    env.aws_config(&format!(
        "[profile base]\nmfa_serial = {SERIAL}\naws_access_key_id = AKIAMOTOTEST00000001\naws_secret_access_key = motoSecret\n\n\
         [profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\nsource_profile = base\nrole_session_name = alice\n\n\
         [profile cli-base]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile base\n\n\
         [profile cli-admin]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile admin\n"
    ));
    env.start_daemon();
    env
}

fn run_json(env: &TestEnv, mut cmd: Command) -> Value {
    // The clients get the same private environment as the agent's own commands.
    let probe = env.cmd(["--version"]);
    cmd.env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let out = cmd.output().expect("the client runs");
    assert!(
        out.status.success(),
        "client failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The AWS CLI's GetCallerIdentity for `profile`. Debian's AWS CLI v2 (2.9) predates
/// AWS_ENDPOINT_URL, so it gets --endpoint-url.
fn aws_cli_identity(moto: &Moto, profile: &str) -> Command {
    let mut cmd = Command::new("/usr/bin/aws");
    cmd.args(["sts", "get-caller-identity", "--output", "json"])
        .args(["--profile", profile, "--endpoint-url", &moto.url]);
    cmd
}

/// `mfa-agent exec --server PROFILE -- python tests/clients/SCRIPT ARG`, with the venv's
/// boto3; its output.
fn python_under_exec_server(
    env: &TestEnv,
    profile: &str,
    script: &str,
    arg: &str,
) -> std::process::Output {
    let mut cmd = env.cmd(["exec", "--server", profile, "--"]);
    cmd.arg(venv().join("bin/python"))
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/clients")
                .join(script),
        )
        .arg(arg);
    cmd.output().unwrap()
}

/// The AWS SDK for Go v2 test client (tests/clients/go), which `tests/run` builds.
fn go_client() -> PathBuf {
    let path = std::env::var_os("MFA_AGENT_TEST_GO_CLIENT")
        .map(PathBuf::from)
        .expect(
            "MFA_AGENT_TEST_GO_CLIENT is not set: this test needs the AWS SDK for Go v2 client that `tests/run` builds from Debian's golang-github-aws-aws-sdk-go-v2-dev; run the suite with `tests/run`",
        );
    assert!(
        path.exists(),
        "{} is missing; rerun `tests/run`",
        path.display()
    );
    path
}

fn assert_identity(identity: &Value, role: bool) {
    assert_eq!(identity["Account"], "123456789012", "{identity}");
    let arn = identity["Arn"].as_str().unwrap();
    if role {
        assert!(arn.contains("assumed-role/Admin/alice"), "{arn}");
    }
}

#[test]
fn aws_cli_v2_from_debian() {
    let moto = Moto::start();
    let env = setup(&moto);
    // Debian's AWS CLI v2 (2.9) predates AWS_ENDPOINT_URL, so it gets --endpoint-url.
    let aws = PathBuf::from("/usr/bin/aws");
    assert!(
        aws.exists(),
        "Debian's awscli package is missing; `tests/run` installs it"
    );
    let version = Command::new(&aws).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("aws-cli/2."),
        "the AWS CLI must be v2"
    );
    for (profile, role) in [("cli-base", false), ("cli-admin", true)] {
        assert_identity(&run_json(&env, aws_cli_identity(&moto, profile)), role);
    }
}

#[test]
fn boto3_from_pypi() {
    let moto = Moto::start();
    let env = setup(&moto);
    for (profile, role) in [("cli-base", false), ("cli-admin", true)] {
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.args([
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/get_caller_identity.py"
            ),
            profile,
        ]);
        assert_identity(&run_json(&env, cmd), role);
    }
}

#[test]
fn aws_sdk_for_javascript_from_npm() {
    let moto = Moto::start();
    let env = setup(&moto);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/@aws-sdk/credential-providers")
            .exists(),
        "the npm packages are missing; `tests/run` installs them"
    );
    for (profile, role) in [("cli-base", false), ("cli-admin", true)] {
        let mut cmd = Command::new("node");
        cmd.current_dir(dir)
            .args(["get_caller_identity.mjs", profile]);
        assert_identity(&run_json(&env, cmd), role);
    }
}

/// The SDK inside Terraform's AWS provider: it runs the credential_process and gets exactly
/// the session the agent holds for that profile.
#[test]
fn aws_sdk_for_go_v2_from_debian() {
    let moto = Moto::start();
    let env = setup(&moto);
    for (profile, role) in [("cli-base", false), ("cli-admin", true)] {
        let mut cmd = Command::new(go_client());
        cmd.args(["identity", profile, &moto.url]);
        let identity = run_json(&env, cmd);
        assert_identity(&identity, role);
        assert_eq!(identity["Source"], "ProcessProvider", "{identity}");
        let agent_profile = profile.trim_start_matches("cli-");
        let served: Value = serde_json::from_str(
            &env.run(["credential-process", "--profile", agent_profile], "")
                .success(),
        )
        .unwrap();
        assert_eq!(
            identity["AccessKeyId"], served["AccessKeyId"],
            "the Go SDK used the agent's cached session for {agent_profile}"
        );
    }
}

#[test]
fn one_mfa_session_serves_every_client() {
    let moto = Moto::start();
    let env = setup(&moto);
    let mut cmd = Command::new(venv().join("bin/python"));
    cmd.args([
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/get_caller_identity.py"
        ),
        "cli-admin",
    ]);
    run_json(&env, cmd);
    run_json(&env, aws_cli_identity(&moto, "cli-admin"));
    let status = env.status();
    let sessions = status["sessions"].as_array().unwrap();
    assert_eq!(
        sessions.len(),
        2,
        "one MFA session and one role session: {status}"
    );
}

/// A chain of roles through the AWS CLI v2: hub, then deploy, each assumed with the
/// session before it, against moto's STS.
#[test]
fn a_chain_of_roles_through_the_aws_cli() {
    let moto = Moto::start();
    let env = setup(&moto);
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let _ = write!(
        config,
        "\n[profile hub]\nrole_arn = arn:aws:iam::123456789012:role/Hub\nsource_profile = base\nrole_session_name = alice\n\n\
         [profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/Deploy\nsource_profile = hub\nrole_session_name = alice\n\n\
         [profile cli-deploy]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile deploy\n"
    );
    env.aws_config(&config);
    let identity = run_json(&env, aws_cli_identity(&moto, "cli-deploy"));
    let arn = identity["Arn"].as_str().unwrap();
    assert!(arn.contains("assumed-role/Deploy/alice"), "{arn}");
}

/// `exec --server`: boto3 in the child gets its credentials from the local endpoint (and
/// no static keys); a request without the right token gets 401; the server lives exactly
/// as long as the child, whose exit code `exec` returns.
#[test]
fn exec_server_serves_boto3_for_as_long_as_the_child_lives() {
    let moto = Moto::start();
    let env = setup(&moto);
    let out = python_under_exec_server(&env, "admin", "container_credentials.py", "7");
    assert_eq!(
        out.status.code(),
        Some(7),
        "the child's exit code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/Admin/alice"),
        "{report}"
    );
    assert_eq!(report["static_keys"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["unauthorized"],
        serde_json::json!([401, 401]),
        "{report}"
    );
    let uri = report["uri"].as_str().unwrap();
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    let port = uri
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/');
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "the server is gone with the child"
    );
}

/// `exec --server` across expiries: the fake STS issues 12-second sessions, the agent renews
/// 5 s before the end, and boto3 in the child calls STS once a second for 30 s without a
/// single failure, on at least three sessions in turn.
#[test]
fn exec_server_renews_across_session_expiry_without_a_failed_call() {
    let sts = common::fake_sts::FakeSts::start(common::minting::SHORT_SEED, 3);
    sts.issue_sessions_lasting(12);
    let env = common::minting::setup_with(
        &sts,
        common::minting::SHORT_SEED,
        3,
        "refresh_margin_seconds = 5\n",
    );
    let out = python_under_exec_server(&env, "base", "renewal_loop.py", "30");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    assert!(report["calls"].as_u64().unwrap() >= 20, "{report}");
    let keys = report["keys"].as_array().unwrap();
    assert!(keys.len() >= 3, "renewed across expiries: {report}");
    assert_eq!(
        sts.identities_answered() as u64,
        report["calls"].as_u64().unwrap(),
        "every call reached STS with valid credentials"
    );
}

/// The same renewal across expiries for the AWS SDK for JavaScript, the AWS SDK for Go v2
/// and the AWS CLI v2 as children of `exec --server`, side by side: 12-second sessions, 30 s
/// of calls once a second, not one failure.
#[test]
fn exec_server_renews_for_the_js_and_go_sdks_and_the_aws_cli_too() {
    let sts = common::fake_sts::FakeSts::start(common::minting::SHORT_SEED, 3);
    sts.issue_sessions_lasting(12);
    let env = common::minting::setup_with(
        &sts,
        common::minting::SHORT_SEED,
        3,
        "refresh_margin_seconds = 5\n",
    );
    let clients = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut node = env.cmd(["exec", "--server", "base", "--", "node"]);
    node.arg(clients.join("renewal_loop.mjs")).arg("30");
    let mut cli = env.cmd(["exec", "--server", "base", "--"]);
    cli.arg(clients.join("aws_cli_loop.sh"))
        .args(["30", &sts.url]);
    let mut go = env.cmd(["exec", "--server", "base", "--"]);
    go.arg(go_client()).args(["loop", "30", &sts.url]);
    let (node, cli, go) = std::thread::scope(|s| {
        let node = s.spawn(|| node.output().unwrap());
        let cli = s.spawn(|| cli.output().unwrap());
        let go = s.spawn(|| go.output().unwrap());
        (
            node.join().unwrap(),
            cli.join().unwrap(),
            go.join().unwrap(),
        )
    });
    for out in [&node, &cli, &go] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let node: Value = serde_json::from_slice(&node.stdout).unwrap();
    assert_eq!(node["failures"], serde_json::json!([]), "{node}");
    assert!(node["calls"].as_u64().unwrap() >= 20, "{node}");
    assert!(
        node["keys"].as_array().unwrap().len() >= 3,
        "renewed across expiries: {node}"
    );
    let go: Value = serde_json::from_slice(&go.stdout).unwrap();
    assert_eq!(go["failures"], serde_json::json!([]), "{go}");
    assert_eq!(
        go["source"], "CredentialsEndpointProvider",
        "the Go SDK used the local server: {go}"
    );
    assert!(go["calls"].as_u64().unwrap() >= 20, "{go}");
    assert!(
        go["keys"].as_array().unwrap().len() >= 3,
        "renewed across expiries: {go}"
    );
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(cli["failures"], 0, "{cli}");
    assert!(cli["calls"].as_u64().unwrap() >= 10, "{cli}");
    assert!(sts.issued().len() >= 3, "sessions were renewed");
}
