//! Shell completion, run in the shells themselves: the script `mfa-agent completions SHELL`
//! prints (and the package installs) completes subcommands past the first word, and offers
//! the profiles of the AWS files and the seeds of the vault where a command takes one.

use std::process::Command;

use crate::common::TestEnv;

/// `shell` with the test's private environment (its HOME, its agent), and the binary
/// under test first in PATH, as the scripts run `mfa-agent complete-names` by name.
fn in_env(env: &TestEnv, shell: &str) -> Command {
    let probe = env.cmd(["--version"]);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mfa-agent"))
        .parent()
        .unwrap()
        .to_owned();
    let mut cmd = Command::new(shell);
    cmd.env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    cmd
}

fn script(shell: &str) -> tempfile::NamedTempFile {
    let out = Command::new(env!("CARGO_BIN_EXE_mfa-agent"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &out.stdout).unwrap();
    file
}

/// What bash offers for the words of `line` (the last one being completed), through the
/// completion function the script registers, as bash calls it on TAB.
fn bash(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    bash_with(Command::new("bash"), script, line)
}

fn bash_with(mut shell: Command, script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
         f=$(complete -p mfa-agent | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
         $f mfa-agent \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = shell
        .args(["--norc", "-c", &program])
        .output()
        .expect("bash runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What fish offers for `line` (`complete -C`).
fn fish(script: &std::path::Path, line: &str) -> Vec<String> {
    fish_with(Command::new("fish"), script, line)
}

fn fish_with(mut shell: Command, script: &std::path::Path, line: &str) -> Vec<String> {
    let out = shell
        .args([
            "--no-config",
            "-c",
            &format!("source '{}'; complete -C '{line}'", script.display()),
        ])
        .output()
        .expect("fish runs (package fish, installed by tests/run)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

#[test]
fn bash_completes_past_the_first_word() {
    let script = script("bash");
    let offered = bash(script.path(), &["mfa-agent", "se"]);
    assert_eq!(offered, ["seed"]);
    let offered = bash(script.path(), &["mfa-agent", "seed", ""]);
    for sub in ["add", "list", "export", "import", "remove"] {
        assert!(offered.iter().any(|o| o == sub), "{sub} in {offered:?}");
    }
    let offered = bash(script.path(), &["mfa-agent", "key", "en"]);
    assert_eq!(offered, ["enroll"]);
    let offered = bash(script.path(), &["mfa-agent", "seed", "add", "--st"]);
    assert_eq!(offered, ["--store"]);
}

#[test]
fn fish_completes_past_the_first_word() {
    let script = script("fish");
    let offered = fish(script.path(), "mfa-agent seed ");
    for sub in ["add", "list", "export", "import", "remove"] {
        assert!(offered.iter().any(|o| o == sub), "{sub} in {offered:?}");
    }
    assert_eq!(fish(script.path(), "mfa-agent key en"), ["enroll"]);
}

/// An env whose AWS files name three profiles (one in the credentials file only), and
/// whose agent holds the seed `work`.
fn names_env() -> TestEnv {
    let env = TestEnv::with_keyring();
    env.aws_config("[default]\nregion = eu-west-1\n\n[profile work] # mine\nregion = us-east-1\n\n[profile prod-admin]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = work\n");
    std::fs::write(
        env.path().join(".aws/credentials"),
        "[old-keys]\naws_access_key_id = AKIAEXAMPLE\n",
    )
    .unwrap();
    env.add_seed("work", &[]);
    env
}

#[test]
fn bash_offers_profile_and_seed_names_where_a_command_takes_one() {
    let env = names_env();
    let script = script("bash");
    let profiles = ["default", "old-keys", "prod-admin", "work"];
    let offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "exec", ""],
    );
    assert_eq!(offered, profiles);
    let offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "credential-process", "--profile", "pr"],
    );
    assert_eq!(offered, ["prod-admin"]);
    let offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "adopt", "w"],
    );
    assert_eq!(offered, ["work"]);
    let offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "code", ""],
    );
    assert_eq!(offered, ["work"]);
    let offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "seed", "export", ""],
    );
    assert_eq!(offered, ["work"]);
    // Elsewhere, clap's own completion as before: a new seed's name is not an old one's.
    let mut offered = bash_with(
        in_env(&env, "bash"),
        script.path(),
        &["mfa-agent", "seed", "add", "--se"],
    );
    offered.sort();
    assert_eq!(offered, ["--secret", "--serial"]);
}

#[test]
fn fish_offers_profile_and_seed_names_where_a_command_takes_one() {
    let env = names_env();
    let script = script("fish");
    let offered = fish_with(in_env(&env, "fish"), script.path(), "mfa-agent exec ");
    for profile in ["default", "old-keys", "prod-admin", "work"] {
        assert!(
            offered.iter().any(|o| o == profile),
            "{profile} in {offered:?}"
        );
    }
    let offered = fish_with(
        in_env(&env, "fish"),
        script.path(),
        "mfa-agent credential-process --profile pr",
    );
    assert!(
        offered.iter().any(|o| o.ends_with("prod-admin")),
        "{offered:?}"
    );
    let offered = fish_with(in_env(&env, "fish"), script.path(), "mfa-agent code ");
    assert!(offered.iter().any(|o| o == "work"), "{offered:?}");
}

/// zsh: the script parses, and the arguments that take a profile or a seed complete with
/// their names. (Not driven through zsh's line editor here: zsh completes only inside a
/// widget, which needs a terminal.)
#[test]
fn the_zsh_script_parses_and_completes_names_where_they_go() {
    let script = script("zsh");
    let out = Command::new("zsh")
        .args(["-n", script.path().to_str().unwrap()])
        .output()
        .expect("zsh runs (package zsh, installed by tests/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(script.path()).unwrap();
    assert!(text.contains(
        "':profile -- The AWS profile to get credentials for:_mfa_agent_names profiles'"
    ));
    assert!(text.contains(":PROFILE:_mfa_agent_names profiles'"));
    assert!(text.contains(":_mfa_agent_names seeds'"));
    assert!(!text.contains(
        "A name for the seed, used by `code NAME` and the agent'\\''s settings:_mfa_agent_names"
    ));
}
