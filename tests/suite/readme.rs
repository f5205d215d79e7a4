//! The README, run as written: its `~/.aws/config` example and its Quickstart commands,
//! parsed out of README.md (not copied here), in a private home against moto's STS, through
//! the AWS CLI v2. When the README and the product drift apart, this fails.

use crate::common;

use std::process::Command;

use common::moto::Moto;
use common::{AWS_SEED, SERIAL, TestEnv};
use serde_json::Value;

const README: &str = include_str!("../../README.md");

/// The first fenced block of `lang` after `heading`, without the indentation of the list
/// item it sits in (Markdown's, not the file's).
fn block(heading: &str, lang: &str) -> String {
    let section = &README[README.find(heading).expect("the README section")..];
    let fence = format!("```{lang}\n");
    let at = section.find(&fence).expect("a fenced block");
    let indent = section[..at].len() - section[..at].trim_end_matches(' ').len();
    let start = at + fence.len();
    let body = &section[start..start + section[start..].find("```").unwrap()];
    body.lines()
        .map(|line| line.strip_prefix(&" ".repeat(indent)).unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The commands of a `sh` block, without comments.
fn commands(block: &str) -> Vec<Vec<String>> {
    block
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The AWS CLI with the env's private environment and `mfa-agent` on PATH, as a user has.
fn aws(env: &TestEnv, moto: &Moto, args: &[&str]) -> Value {
    let probe = env.cmd(["--version"]);
    let out = Command::new("/usr/bin/aws")
        .args(args)
        .args(["--output", "json", "--endpoint-url", &moto.url])
        .env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .expect("Debian's awscli runs (`tests/run` installs it)");
    assert!(
        out.status.success(),
        "aws {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_quickstart_runs_as_written() {
    let moto = Moto::start();
    let mut env = TestEnv::with_keyring();
    // `mfa-agent` on PATH, as the package installs it: the README's credential_process
    // lines name it so.
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mfa-agent"))
        .parent()
        .unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    env.set("PATH", &format!("{}:{path}", bin_dir.display()));
    env.set("AWS_ENDPOINT_URL", &moto.url);
    env.set("AWS_EC2_METADATA_DISABLED", "true");

    // Step 2: the console's QR code saved as qr.png (made here by an independent encoder),
    // stored by the README's command, linked to the README's serial.
    let uri = format!(
        "otpauth://totp/Amazon%20Web%20Services:alice?secret={AWS_SEED}&issuer=Amazon%20Web%20Services"
    );
    let made = Command::new("qrencode")
        .args(["-o", "qr.png", &uri])
        .current_dir(env.path())
        .status()
        .expect("qrencode runs (`tests/run` installs it)");
    assert!(made.success());
    assert!(
        README.contains(SERIAL),
        "the README's serial is the test device's"
    );
    for command in commands(&block("2. Store it", "sh")) {
        run_as_shown(&env, &command);
    }
    assert!(
        !env.path().join("qr.png").exists(),
        "the README removes the screenshot"
    );

    // Step 4: ~/.aws/config exactly as shown, and the keys added by hand.
    let config = block("4. Point your AWS profiles at the agent", "ini");
    env.aws_config(&config);
    env.run(
        ["creds", "add", "work", "--stdin"],
        "AKIAMOTOTEST00000001 motoSecretAccessKey00000",
    )
    .success();

    // Step 5: the AWS CLI through the README's credential_process profiles, and exec.
    let identity = aws(
        &env,
        &moto,
        &["--profile", "prod", "sts", "get-caller-identity"],
    );
    assert!(
        identity["Arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/Admin/"),
        "{identity}"
    );
    let identity = aws(
        &env,
        &moto,
        &["--profile", "work-mfa", "sts", "get-caller-identity"],
    );
    assert_eq!(identity["Account"], "123456789012", "{identity}");
    for command in commands(&block("5. Use it", "sh")) {
        if command[0] == "aws" {
            continue; // S3 calls; the STS calls above go the same way
        }
        run_as_shown(&env, &command);
    }
    // Step 3's two codes, run last: run first, they would make the mints above wait a
    // minute for a code AWS has not seen (the agent remembers what it showed).
    for command in commands(&block("3. AWS asks for two consecutive codes", "sh")) {
        run_as_shown(&env, &command);
    }
}

/// Runs a README command line in the home directory, as a user at a shell would.
/// `exec PROFILE -- terraform plan` runs `env` instead (no Terraform here) and checks that
/// the session reached it.
fn run_as_shown(env: &TestEnv, command: &[String]) {
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["rm", files @ ..] => {
            for file in files {
                std::fs::remove_file(env.path().join(file)).unwrap();
            }
        }
        ["mfa-agent", "exec", profile, "--", ..] => {
            let out = env.run(["exec", profile, "--", "env"], "").success();
            assert!(out.contains("AWS_SESSION_TOKEN="), "{out}");
        }
        ["mfa-agent", rest @ ..] => {
            let mut cmd = env.cmd(rest);
            let out = cmd.current_dir(env.path()).output().unwrap();
            common::Run(out).success();
        }
        _ => panic!("a Quickstart command this test does not know: {command:?}"),
    }
}

/// Every Debian package the README's Install tells a newcomer to install exists in this
/// machine's Debian archive (a name that does not would stop the install at its first
/// command), and the compiler the build needs is among them.
#[test]
fn the_install_names_only_packages_debian_has() {
    let install =
        &README[README.find("## Install").unwrap()..README.find("## Quickstart").unwrap()];
    let mut named: Vec<&str> = install
        .lines()
        .filter_map(|line| line.split("apt-get install -y ").nth(1))
        .flat_map(|rest| {
            rest.split("&&")
                .next()
                .unwrap()
                .split_whitespace()
                .filter(|word| !word.starts_with("./"))
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    assert!(named.contains(&"build-essential"), "{named:?}");
    for package in named {
        let out = Command::new("apt-cache")
            .args(["show", "--no-all-versions", package])
            .output()
            .expect("apt-cache runs");
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "the README installs {package:?}, which Debian does not have: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
