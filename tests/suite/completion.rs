//! Shell completion, run in the shells themselves: the script `mfa-agent completions SHELL`
//! prints (and the package installs) completes subcommands past the first word.

use std::process::Command;

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
    let out = Command::new("bash")
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
    let out = Command::new("fish")
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
