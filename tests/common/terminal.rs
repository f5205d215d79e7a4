//! A user at a terminal, and at a desktop dialog: a client run on a pseudo-terminal
//! (util-linux `script`) that a test reads and types into, and a stand-in for the
//! desktop's pinentry that speaks its Assuan protocol.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

/// A client on a pseudo-terminal of its own.
pub struct OnTerminal {
    child: Child,
    stdout: ChildStdout,
    seen: Vec<u8>,
    /// Where the next [`OnTerminal::wait_for`] starts looking.
    cursor: usize,
}

impl OnTerminal {
    /// Runs `client` (its program, arguments and environment) on a new terminal.
    pub fn start(client: &Command) -> Self {
        // `script` runs its command through a shell: the arguments are plain words here.
        let mut line: Vec<String> = vec![client.get_program().to_string_lossy().into_owned()];
        line.extend(client.get_args().map(|a| a.to_string_lossy().into_owned()));
        let mut child = Command::new("script")
            .args(["-qec", &line.join(" "), "/dev/null"])
            .env_clear()
            .envs(client.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        let stdout = child.stdout.take().unwrap();
        Self {
            child,
            stdout,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// Reads the terminal until `text` appears after what earlier waits matched; returns
    /// everything shown so far. Panics if the client ends first.
    pub fn wait_for(&mut self, text: &str) -> String {
        let mut chunk = [0u8; 256];
        loop {
            let shown = String::from_utf8_lossy(&self.seen[self.cursor..]).into_owned();
            if let Some(at) = shown.find(text) {
                self.cursor += at + text.len();
                return String::from_utf8_lossy(&self.seen).into_owned();
            }
            let n = self.stdout.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "the client ended before showing {text:?}: {}",
                String::from_utf8_lossy(&self.seen)
            );
            self.seen.extend_from_slice(&chunk[..n]);
        }
    }

    /// Waits until the client has turned echo off on its terminal (as a hidden prompt
    /// does once it is shown), so that what is typed next is not echoed: the terminal's own
    /// settings, read with `stty`, are the event, not a pause.
    pub fn wait_for_echo_off(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(tty) = self.client_terminal() {
                let out = Command::new("stty")
                    .args(["-F", &tty, "-a"])
                    .output()
                    .expect("stty (coreutils) runs");
                let settings = String::from_utf8_lossy(&out.stdout);
                if settings.split_whitespace().any(|flag| flag == "-echo") {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the client did not turn echo off within 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The pseudo-terminal `script` gave the client: the standard input of a process
    /// below `script`.
    fn client_terminal(&self) -> Option<String> {
        let parent_of = |pid: &str| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name, which may hold spaces: state, then the parent.
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let script = self.child.id();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid = entry.file_name().to_string_lossy().into_owned();
                let below_script = {
                    let mut at = parent_of(&pid);
                    let mut hops = 0;
                    while let Some(p) = at.filter(|p| *p > 1 && hops < 16) {
                        if p == script {
                            break;
                        }
                        at = parent_of(&p.to_string());
                        hops += 1;
                    }
                    at == Some(script)
                };
                let tty = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok()?;
                let tty = tty.to_string_lossy().into_owned();
                (below_script && tty.starts_with("/dev/pts/")).then_some(tty)
            })
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the terminal, as a user closing the window would: the client gets SIGHUP.
    pub fn hang_up(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the client to end: its exit status and all it showed.
    pub fn finish(mut self) -> (ExitStatus, String) {
        self.stdout.read_to_end(&mut self.seen).unwrap();
        let status = self.child.wait().unwrap();
        (status, String::from_utf8_lossy(&self.seen).into_owned())
    }
}

/// How a [`pinentry`] stand-in answers.
pub enum Answers {
    /// The first line of the file, every time (a PIN).
    Same,
    /// Each line once, in order (codes); with none left, the dialog is cancelled.
    EachOnce,
}

/// A stand-in for the desktop's pinentry dialog: speaks pinentry's Assuan protocol, logs
/// each description it was shown (a line per dialog), waits `delay_seconds`, and "types"
/// from `answers`. Returns the program and its log.
pub fn pinentry(
    dir: &Path,
    answers: &Path,
    how: &Answers,
    delay_seconds: u32,
) -> (PathBuf, PathBuf) {
    let script = dir.join("pinentry");
    let log = dir.join("pinentry.log");
    let (log_s, answers_s) = (log.display(), answers.display());
    let take = match how {
        Answers::Same => format!("answer=$(head -n1 '{answers_s}')"),
        Answers::EachOnce => format!(
            "answer=$(head -n1 '{answers_s}'); [ -n \"$answer\" ] || exit 1; sed -i 1d '{answers_s}'"
        ),
    };
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho 'OK ready'\nwhile read -r cmd rest; do\n  case \"$cmd\" in\n    SETDESC) printf '%s\\n' \"$rest\" >> '{log_s}'; echo OK ;;\n    GETPIN) sleep {delay_seconds}; {take}; printf 'D %s\\nOK\\n' \"$answer\" ;;\n    BYE) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n"
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    (script, log)
}
