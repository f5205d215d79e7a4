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

/// Drives an interactive zsh on a pseudo-terminal of its own (zsh/zpty): TAB after the line
/// `$2`, with the completion script in directory `$1` on fpath, and compadd wrapped to print
/// every match it is given (marked `MATCH:`, a word the echoed commands never spell out).
/// zsh completes only inside its line editor, hence the terminal.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -d $1/.zcompdump"
zpty -w z 'compadd() { local -a __m; local p=MAT; builtin compadd -A __m "$@"; print -r -- "${(@)__m/#/${p}CH:}"; builtin compadd "$@" }'
zpty -w -n z "$2"$'\t'
local out chunk
integer waited=0 quiet=0
# Read until the matches have come and the terminal has been quiet for half a second, for
# at most 30 s (a loaded machine starts zsh, compinit and mfa-agent slowly).
while (( waited < 300 )) && ! [[ $out == *MATCH:* && quiet -ge 5 ]]; do
  if zpty -r -t z chunk; then out+=$chunk; quiet=0; else (( quiet++, waited++ )); sleep 0.1; fi
done
print -r -- "$out" | grep -ao 'MATCH:[^[:space:][:cntrl:]]*' | sed 's/^MATCH://' | sort -u
zpty -d z
"#;

/// What zsh offers on TAB after `line`, in `env`.
fn zsh(env: &TestEnv, line: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mfa-agent"))
        .args(["completions", "zsh"])
        .output()
        .unwrap();
    std::fs::write(dir.path().join("_mfa-agent"), &out.stdout).unwrap();
    std::fs::write(dir.path().join("drive.zsh"), ZSH_DRIVER).unwrap();
    let out = in_env(env, "zsh")
        .arg("-f")
        .arg(dir.path().join("drive.zsh"))
        .arg(dir.path())
        .arg(line)
        .output()
        .expect("zsh runs (package zsh, installed by tests/run)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn zsh_completes_subcommands_and_profile_and_seed_names() {
    let env = names_env();
    let script = script("zsh");
    let parsed = Command::new("zsh")
        .args(["-n", script.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(zsh(&env, "mfa-agent se"), ["seed"]);
    assert_eq!(
        zsh(&env, "mfa-agent exec "),
        ["default", "old-keys", "prod-admin", "work"]
    );
    assert_eq!(
        zsh(&env, "mfa-agent credential-process --profile pr"),
        ["prod-admin"]
    );
    assert_eq!(zsh(&env, "mfa-agent code "), ["work"]);
    assert_eq!(
        zsh(&env, "mfa-agent seed add --se"),
        ["--secret", "--serial"]
    );
}
