//! The Debian package that `.ci/build-deb` makes (and `tests/run` builds before the tests):
//! installed with `dpkg -i` into a private root (never onto this machine, where an installed
//! socket unit would change how clients start the agent), it puts every file where Debian and
//! systemd look for it, and what it installs works.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deb() -> PathBuf {
    std::env::var_os("MFA_AGENT_TEST_DEB").map(PathBuf::from).expect(
        "MFA_AGENT_TEST_DEB is not set: it names the package `tests/run` builds with `.ci/build-deb --profile dev`",
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{said}");
    said
}

/// A root with an empty dpkg database, the package installed in it.
fn installed() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::write(admin.join("status"), "").unwrap();
    // The private root has no libc6/libudev1 packages to satisfy Depends: this machine's are
    // the ones the binary runs with below.
    run(Command::new("dpkg")
        .args(["--force-not-root", "--force-depends", "--root"])
        .arg(root.path())
        .arg("-i")
        .arg(deb()));
    root
}

#[test]
fn the_package_installs_binary_units_rule_completions_and_man_pages() {
    let root = installed();
    let at = |path: &str| root.path().join(path.trim_start_matches('/'));
    let listed = run(Command::new("dpkg")
        .arg("--root")
        .arg(root.path())
        .args(["-L", "mfa-agent"]));
    for file in [
        "/usr/bin/mfa-agent",
        "/usr/bin/mfa-agent-daemon",
        "/usr/bin/mfa-agent-tray",
        "/usr/lib/systemd/user/mfa-agent.socket",
        "/usr/lib/systemd/user/mfa-agent.service",
        "/usr/lib/systemd/user/mfa-agent-tray.service",
        "/usr/lib/udev/rules.d/70-mfa-agent.rules",
        "/usr/share/bash-completion/completions/mfa-agent",
        "/usr/share/zsh/vendor-completions/_mfa-agent",
        "/usr/share/fish/vendor_completions.d/mfa-agent.fish",
        "/usr/share/man/man1/mfa-agent.1.gz",
        "/usr/share/man/man1/mfa-agent-credential-process.1.gz",
        "/usr/share/man/man1/mfa-agent-key-enroll.1.gz",
    ] {
        assert!(
            listed.lines().any(|l| l == file),
            "dpkg -L lists {file}:\n{listed}"
        );
        assert!(at(file).is_file(), "{file} is installed");
    }
    // The units and the rule are the ones in the repository, byte for byte.
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (installed, repo) in [
        ("/usr/lib/systemd/user", "systemd/mfa-agent.socket"),
        ("/usr/lib/systemd/user", "systemd/mfa-agent.service"),
        ("/usr/lib/systemd/user", "systemd/mfa-agent-tray.service"),
        ("/usr/lib/udev/rules.d", "udev/70-mfa-agent.rules"),
    ] {
        let name = Path::new(repo).file_name().unwrap().to_str().unwrap();
        let installed = format!("{installed}/{name}");
        assert_eq!(
            std::fs::read(at(&installed)).unwrap(),
            std::fs::read(source.join(repo)).unwrap(),
            "{installed}"
        );
    }

    // What was installed works: the binaries, the man page, the completions.
    for binary in ["mfa-agent", "mfa-agent-daemon", "mfa-agent-tray"] {
        let version = run(Command::new(at(&format!("/usr/bin/{binary}"))).arg("--version"));
        assert_eq!(
            version.trim(),
            format!("{binary} {}", env!("CARGO_PKG_VERSION"))
        );
    }
    let page = run(Command::new("man")
        .arg("-l")
        .arg(at("/usr/share/man/man1/mfa-agent-credential-process.1.gz"))
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0"));
    assert!(page.contains("--profile"), "{page}");
    let completion = at("/usr/share/bash-completion/completions/mfa-agent");
    let completed = run(Command::new("bash").arg("-c").arg(format!(
        "source '{}' && f=$(complete -p mfa-agent | sed -E 's/.* -F ([^ ]+) .*/\\1/') && COMP_WORDS=(mfa-agent cred) COMP_CWORD=1 && $f mfa-agent cred mfa-agent && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        completion.display()
    )));
    assert!(
        completed.lines().any(|l| l == "credential-process"),
        "bash completes `mfa-agent cred`: {completed}"
    );
}
