//! Each caller in its own context: one agent serves every shell of its user, and each
//! command gets the profiles, the STS endpoint and the proxy of its own environment, not
//! the environment the agent was started with. Against the strict fake STS, with an agent
//! started with none of the variables the commands set.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::common::fake_sts::{self, FakeSts};
use crate::common::minting::{SHORT_SEED, align_to_a_fresh_window};
use crate::common::proxy::Proxy;
use crate::common::{Run, SERIAL, TestEnv};

/// A keyring-backed agent holding the 3-second test seed for SERIAL, started with no AWS
/// variables, and a `~/.aws/config` without the profiles the tests use.
fn agent_without_context() -> TestEnv {
    let env = TestEnv::with_keyring();
    crate::common::minting::add_work_seed(&env, SHORT_SEED, 3);
    env.aws_config("[profile home]\nregion = eu-west-1\n");
    env.start_daemon();
    env
}

/// An AWS config in `dir/name` with a source profile holding the fake's keys, and `ops`
/// assuming `role`.
fn project_config(dir: &Path, name: &str, role: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(name),
        format!(
            "[profile base]\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [profile ops]\nrole_arn = {role}\nsource_profile = base\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_ACCESS_KEY
        ),
    )
    .unwrap();
}

/// `mfa-agent ARGS` run in `dir` with `vars` added to the test's environment.
fn run_in(env: &TestEnv, dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = env.cmd(args);
    cmd.current_dir(dir)
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Run(cmd.output().unwrap())
}

fn access_key(run: &Run) -> String {
    let json: Value = serde_json::from_str(&run.success()).unwrap();
    json["AccessKeyId"].as_str().unwrap().to_owned()
}

#[test]
fn a_profile_and_an_endpoint_only_the_callers_shell_knows() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = agent_without_context();
    let project = env.path().join("project");
    project_config(&project, "aws.config", "arn:aws:iam::210987654321:role/Ops");
    // As direnv would set it: relative to the project, which is the client's working
    // directory and not the agent's.
    let context = [
        ("AWS_CONFIG_FILE", "aws.config"),
        ("AWS_ENDPOINT_URL", &sts.url),
    ];
    let minted = run_in(
        &env,
        &project,
        &context,
        &["credential-process", "--profile", "ops"],
    );
    let key = access_key(&minted);
    assert_eq!(sts.gst_calls(), 1);
    assert_eq!(sts.assume_role_count(), 1);
    assert!(sts.issued().iter().any(|(issued, _, _)| *issued == key));

    // Another shell of the same user, without the project's variables, sees its own
    // config: the agent kept no caller's context for the next one.
    let elsewhere = run_in(
        &env,
        env.path(),
        &[],
        &["credential-process", "--profile", "ops"],
    );
    elsewhere.failure(&["no profile \"ops\""]);

    // The session is the project's, cached for the project's shells.
    let again = run_in(
        &env,
        &project,
        &context,
        &["credential-process", "--profile", "ops"],
    );
    assert_eq!(access_key(&again), key);
    assert_eq!(sts.assume_role_count(), 1, "a cache hit calls STS again");
    let status = run_in(&env, &project, &context, &["status", "--json"]);
    let status: Value = serde_json::from_str(&status.success()).unwrap();
    let sessions = status["sessions"].as_array().unwrap();
    let wanted = format!(
        "AWS_CONFIG_FILE={} AWS_ENDPOINT_URL={}",
        project.join("aws.config").display(),
        sts.url
    );
    assert!(
        sessions
            .iter()
            .any(|s| s["name"]["profile"] == "ops" && s["context"] == wanted.as_str()),
        "status names the session's context: {status}"
    );
    let shown = run_in(&env, &project, &context, &["status"]).success();
    assert!(shown.contains(&format!("ops [{wanted}]")), "{shown}");
    // The audit log names the context of each use.
    let subject = format!("ops ({wanted})");
    let logged = crate::common::audit_log_once(&env, |all| {
        all.iter()
            .filter(|e| e["profile"] == subject.as_str())
            .count()
            >= 2
    });
    let outcomes: Vec<&str> = logged
        .iter()
        .filter(|e| e["profile"] == subject.as_str())
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["issued", "hit"], "{logged:#?}");
}

#[test]
fn one_profile_name_in_two_configs_is_two_sessions_of_two_roles() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = agent_without_context();
    let (a, b) = (env.path().join("a"), env.path().join("b"));
    let (role_a, role_b) = (
        "arn:aws:iam::210987654321:role/OpsA",
        "arn:aws:iam::210987654321:role/OpsB",
    );
    project_config(&a, "config", role_a);
    project_config(&b, "config", role_b);
    let in_a = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", &sts.url),
    ];
    let in_b = in_a;
    align_to_a_fresh_window();
    let first = access_key(&run_in(
        &env,
        &a,
        &in_a,
        &["credential-process", "--profile", "ops"],
    ));
    let second = access_key(&run_in(
        &env,
        &b,
        &in_b,
        &["credential-process", "--profile", "ops"],
    ));
    assert_ne!(
        first, second,
        "the second project got the first one's session"
    );
    let roles: Vec<String> = sts
        .requests()
        .iter()
        .filter_map(|form| form.get("RoleArn").cloned())
        .collect();
    assert_eq!(roles, [role_a, role_b], "each project assumes its own role");
    // Each project's session stays its own.
    let again = access_key(&run_in(
        &env,
        &a,
        &in_a,
        &["credential-process", "--profile", "ops"],
    ));
    assert_eq!(again, first);
    assert_eq!(sts.assume_role_count(), 2);
}

#[test]
fn sts_reachable_only_through_a_proxy_only_the_callers_shell_knows() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = agent_without_context();
    let project = env.path().join("project");
    project_config(&project, "config", "arn:aws:iam::210987654321:role/Ops");
    let upstream = sts.url.trim_start_matches("http://");
    let port = upstream.rsplit(':').next().unwrap();
    // A name that resolves nowhere: only the proxy knows the way.
    let endpoint = format!("http://sts.behind-the-proxy.invalid:{port}");
    let proxy = Proxy::start(upstream);
    let direct = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let failed = run_in(
        &env,
        &project,
        &direct,
        &["credential-process", "--profile", "base"],
    );
    failed.failure(&["failed to reach STS"]);
    assert!(proxy.asked().is_empty());

    let proxied = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("HTTP_PROXY", proxy.url.as_str()),
    ];
    align_to_a_fresh_window();
    let key = access_key(&run_in(
        &env,
        &project,
        &proxied,
        &["credential-process", "--profile", "ops"],
    ));
    assert!(sts.issued().iter().any(|(issued, _, _)| *issued == key));
    let asked = proxy.asked();
    assert_eq!(
        asked.len(),
        2,
        "GetSessionToken and AssumeRole, through the proxy: {asked:?}"
    );
    assert!(
        asked.iter().all(|url| url.starts_with(&endpoint)),
        "{asked:?}"
    );
}

#[test]
fn a_proxy_the_agent_cannot_use_is_an_error_that_names_the_variable_not_its_value() {
    let env = agent_without_context();
    let project = env.path().join("project");
    project_config(&project, "config", "arn:aws:iam::210987654321:role/Ops");
    let context = [
        ("AWS_CONFIG_FILE", "config"),
        ("HTTPS_PROXY", "socks5://user:hunter2@127.0.0.1:1080"),
    ];
    let failed = run_in(
        &env,
        &project,
        &context,
        &["credential-process", "--profile", "base"],
    );
    let message = failed.failure(&["HTTPS_PROXY", "http://HOST:PORT"]);
    assert!(!message.contains("hunter2"), "{message}");
    // The agent serves the next request as before.
    env.status();
}

#[test]
fn confirm_each_program_holds_in_a_callers_context_too() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = agent_without_context();
    let dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[profiles.base]\nconfirm = \"each-program\"\n",
    )
    .unwrap();
    env.start_daemon();
    let project = env.path().join("project");
    project_config(&project, "config", "arn:aws:iam::210987654321:role/Ops");
    let context = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", &sts.url),
    ];
    // This test's own binary starts the session in the project's context.
    access_key(&run_in(
        &env,
        &project,
        &context,
        &["credential-process", "--profile", "base"],
    ));
    // python3, in the same context and with no terminal to be asked on, is refused.
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let probe = env.cmd(["--version"]);
    let mut python = std::process::Command::new("setsid");
    python
        .args(["-w", "python3", "-c"])
        .arg(format!(
            "import subprocess, sys; sys.exit(subprocess.run([{bin:?}, 'credential-process', '--profile', 'base'], stdout=subprocess.DEVNULL).returncode)"
        ))
        .env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .envs(context.iter().copied())
        .current_dir(&project);
    let refused = python.output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "python3 got a session it was not approved for"
    );
    assert!(stderr.contains("no terminal to ask on"), "{stderr}");
    assert_eq!(sts.gst_calls(), 1);
}

/// STS over https, as AWS serves it, behind a certificate only the caller's AWS_CA_BUNDLE
/// trusts (TLS inspection at work): the agent's TLS (rustls on ring) meets an independent
/// server's (OpenSSL's), the bundle is honoured, and without it the certificate is refused.
#[test]
fn sts_over_https_trusts_the_ca_bundle_of_the_callers_shell() {
    use crate::common::tls::TlsFront;
    let sts = FakeSts::start(SHORT_SEED, 3);
    let front = TlsFront::start(&sts.url);
    let env = agent_without_context();
    let project = env.path().join("project");
    project_config(&project, "config", "arn:aws:iam::210987654321:role/Ops");
    let untrusted = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", front.url.as_str()),
    ];
    let refused = run_in(
        &env,
        &project,
        &untrusted,
        &["credential-process", "--profile", "base"],
    );
    let message = refused.failure(&["failed to reach STS"]);
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert_eq!(sts.gst_calls(), 0);

    let ca = front.ca.to_str().unwrap();
    let trusted = [
        ("AWS_CONFIG_FILE", "config"),
        ("AWS_ENDPOINT_URL", front.url.as_str()),
        ("AWS_CA_BUNDLE", ca),
    ];
    align_to_a_fresh_window();
    let key = access_key(&run_in(
        &env,
        &project,
        &trusted,
        &["credential-process", "--profile", "ops"],
    ));
    assert!(sts.issued().iter().any(|(issued, _, _)| *issued == key));
    assert_eq!((sts.gst_calls(), sts.assume_role_count()), (1, 1));
}
