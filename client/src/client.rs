//! The blocking client every command uses to talk to the daemon, starting it on demand.

use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::paths::Paths;
use crate::protocol::{
    Answer, AskKind, Call, Event, Hello, MAX_LINE, PROTOCOL_VERSION, Request, Response,
    StatusReport, Subscribe,
};
use crate::secret::SecretString;
use crate::{atomic, sys};

/// How long a started daemon gets to open its socket: milliseconds on a normal machine,
/// seconds on a slow, loaded or emulated one. A daemon that dies is noticed at once.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to go on waiting once the started daemon has exited: it may have lost the race
/// to another client's daemon, which then opens the socket.
const AFTER_EXIT: Duration = Duration::from_secs(2);
/// The longest a request may take: a wait for the next code window plus a slow STS.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("no mfa-agent daemon is running at {path}; {hint}")]
    NotRunning { path: PathBuf, hint: String },
    #[error(
        "the socket {path} belongs to uid {owner}, not to you (uid {me}); refusing to send requests there: unset MFA_AGENT_SOCKET or fix its path"
    )]
    ForeignSocket { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "the started daemon {how} without opening {path}; run `mfa-agent daemon` by hand to see why (log: {log})"
    )]
    StartFailed {
        path: PathBuf,
        log: PathBuf,
        /// "exited (status 1)", "did not answer within 30 s".
        how: String,
    },
    /// The I/O error is said, not exposed as a source (a client's error is often shown on
    /// its own, as by the tray).
    #[error("failed to talk to the agent at {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "the agent at {path} did not answer within {seconds} s; `mfa-agent status` shows what it is doing, and `mfa-agent stop` restarts it"
    )]
    NoAnswer { path: PathBuf, seconds: u64 },
    #[error("failed to start the agent {exe}: {cause}")]
    Start { exe: PathBuf, cause: io::Error },
    #[error("the agent sent an unexpected response ({0}); restart it after upgrading")]
    Protocol(String),
    /// An answer that does not fit the request: an agent of another version.
    #[error(
        "the agent answered {kind:?}, which this client did not ask for; restart the agent after upgrading (`mfa-agent status` shows its version)"
    )]
    Unexpected { kind: &'static str },
    #[error("{0}")]
    Agent(String),
}

/// Past this size, an autostarted daemon's log is rotated (to `daemon.log.1`).
const MAX_LOG: u64 = 1024 * 1024;

/// The daemon's binary (the AWS SDK, HID and the keyring live there, not in clients).
pub(crate) const DAEMON: &str = "mfa-agent-daemon";

/// A binary of this package: the one installed next to the running one, else from PATH.
pub(crate) fn companion(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe.with_file_name(name);
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{name} is not installed next to {} nor on PATH; reinstall mfa-agent (it ships mfa-agent, mfa-agent-daemon and mfa-agent-tray)",
                    exe.display()
                ),
            )
        })
}

pub struct Client {
    path: PathBuf,
    stream: BufReader<UnixStream>,
    /// Hello is sent on connect but its reply read with the first request's, saving a
    /// round trip on every `credential_process` call.
    hello_pending: bool,
}

impl Client {
    /// Connects and says hello. With `autostart`, a missing daemon is started in the
    /// background first (unless the systemd socket unit is enabled to do that).
    pub fn connect(paths: &Paths, autostart: bool) -> Result<Self, ClientError> {
        let path = paths.socket.clone();
        let stream = match open(&path) {
            Ok(stream) => stream,
            Err(ClientError::NotRunning { hint, .. }) if autostart => {
                if let Some(unit) = enabled_socket_unit(paths) {
                    let hint = format!(
                        "the systemd socket unit is enabled ({}) but not listening: `systemctl --user start mfa-agent.socket`, and `journalctl --user -u mfa-agent` says why it stopped",
                        unit.display()
                    );
                    return Err(ClientError::NotRunning { path, hint });
                }
                tracing::debug!("no daemon ({hint}); starting one");
                start_daemon(paths, &path)?
            }
            Err(e) => return Err(e),
        };
        let mut client = Self {
            path,
            stream: BufReader::new(stream),
            hello_pending: false,
        };
        client.write(&Request::from(Hello {
            version: PROTOCOL_VERSION,
            context: Some(crate::protocol::CallerEnv::of_this_process()),
        }))?;
        client.hello_pending = true;
        Ok(client)
    }

    fn write(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(request).expect("requests always serialise");
        line.push(b'\n');
        let written = self.stream.get_mut().write_all(&line);
        // An `answer` may carry a PIN or passphrase, other requests a seed or key.
        zeroize::Zeroize::zeroize(&mut line);
        written.map_err(|source| ClientError::Io {
            path: self.path.clone(),
            cause: source,
        })
    }

    /// Sends `request` and returns its reply, passing progress messages to `on_waiting`. An
    /// `error` response becomes [`ClientError::Agent`]. A question from the agent is answered
    /// with "cannot ask" (see [`Client::call_asking`]).
    pub fn call<C: Call>(
        &mut self,
        request: C,
        on_waiting: impl FnMut(&str),
    ) -> Result<C::Reply, ClientError> {
        self.call_asking(request, on_waiting, |_| None)
    }

    /// As [`Client::call`], and when the agent needs something only the user can give (a
    /// PIN, a passphrase, a yes), `on_ask` asks the user and returns the answer, or `None`
    /// if it cannot ask.
    pub(crate) fn call_asking<C: Call>(
        &mut self,
        request: C,
        mut on_waiting: impl FnMut(&str),
        mut on_ask: impl FnMut(&Question<'_>) -> Option<SecretString>,
    ) -> Result<C::Reply, ClientError> {
        self.write(&request.into())?;
        if self.hello_pending {
            self.hello_pending = false;
            let hello = self.read_reply(&mut on_waiting, &mut on_ask)?;
            Hello::reply(hello).map_err(|kind| ClientError::Unexpected { kind })?;
        }
        let response = self.read_reply(&mut on_waiting, &mut on_ask)?;
        C::reply(response).map_err(|kind| ClientError::Unexpected { kind })
    }

    /// Subscribes to the agent's events: the state now, and the connection as a feed (the
    /// tray's).
    pub fn subscribe(mut self) -> Result<(StatusReport, Subscription), ClientError> {
        let report = self.call(Subscribe, |_| {})?;
        Ok((report, Subscription(self)))
    }

    /// Reads up to the next final response, passing progress messages on.
    fn read_reply(
        &mut self,
        on_waiting: &mut impl FnMut(&str),
        on_ask: &mut impl FnMut(&Question<'_>) -> Option<SecretString>,
    ) -> Result<Response, ClientError> {
        let path = self.path.clone();
        let io_err = |source: io::Error| match source.kind() {
            // The read timeout ran out: say so, not "resource temporarily unavailable".
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::NoAnswer {
                path: path.clone(),
                seconds: RESPONSE_TIMEOUT.as_secs(),
            },
            _ => ClientError::Io {
                path: path.clone(),
                cause: source,
            },
        };
        loop {
            let mut reply = Vec::with_capacity(4096);
            let n = io::Read::take(&mut self.stream, MAX_LINE as u64 * 4)
                .read_until(b'\n', &mut reply)
                .map_err(io_err)?;
            if n == 0 {
                let eof = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the agent closed the connection",
                );
                return Err(io_err(eof));
            }
            let parsed = serde_json::from_slice::<Response>(&reply);
            // The line may hold session credentials: wipe it once parsed.
            zeroize::Zeroize::zeroize(&mut reply);
            match parsed {
                Ok(Response::Waiting { message }) => on_waiting(&message),
                Ok(Response::Ask { kind, message }) => {
                    let question = Question {
                        kind,
                        message: &message,
                        agent: self.stream.get_ref(),
                        superseded: Cell::new(false),
                    };
                    let answer = on_ask(&question);
                    // An agent that stopped waiting sends its final response instead.
                    if !question.superseded.get() {
                        self.write(&Request::from(Answer { answer }))?;
                    }
                }
                Ok(Response::Error { message }) => return Err(ClientError::Agent(message)),
                Ok(response) => return Ok(response),
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
        }
    }
}

/// Something the agent asks the client's user (see [`Client::call_asking`]).
pub struct Question<'a> {
    pub kind: AskKind,
    pub message: &'a str,
    agent: &'a UnixStream,
    superseded: Cell<bool>,
}

impl Question<'_> {
    /// Waits until `input` has something to read (`true`), or the agent stops waiting for
    /// the answer, e.g. its prompt timed out (`false`: the answer is not sent).
    pub fn wait_for(&self, input: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
        use std::os::fd::AsFd as _;
        let ready = sys::first_readable(&[input, self.agent.as_fd()])?;
        self.superseded.set(ready != 0);
        Ok(ready == 0)
    }
}

/// A subscribed connection (see [`Client::subscribe`]).
pub struct Subscription(Client);

impl Subscription {
    /// Blocks until the agent reports something.
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        match self.0.read_reply(&mut |_| {}, &mut |_| None)? {
            Response::Event(event) => Ok(event),
            other => Err(ClientError::Unexpected { kind: other.kind() }),
        }
    }
}

fn open(path: &Path) -> Result<UnixStream, ClientError> {
    let me = sys::current_uid();
    match std::fs::metadata(path) {
        Ok(meta) if meta.uid() != me => {
            return Err(ClientError::ForeignSocket {
                path: path.into(),
                owner: meta.uid(),
                me,
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ClientError::NotRunning {
                path: path.into(),
                hint: not_running_hint(),
            });
        }
        Err(source) => {
            return Err(ClientError::Io {
                path: path.into(),
                cause: source,
            });
        }
    }
    let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => ClientError::NotRunning {
            path: path.into(),
            hint: not_running_hint(),
        },
        _ => ClientError::Io {
            path: path.into(),
            cause: source,
        },
    })?;
    // The other end must be ours too: a socket file we own could still be served by
    // another user's process if it was renamed into place.
    let owner = sys::peer_uid(&stream).map_err(|source| ClientError::Io {
        path: path.into(),
        cause: source,
    })?;
    if owner != me {
        return Err(ClientError::ForeignSocket {
            path: path.into(),
            owner,
            me,
        });
    }
    stream
        .set_read_timeout(Some(RESPONSE_TIMEOUT))
        .map_err(|source| ClientError::Io {
            path: path.into(),
            cause: source,
        })?;
    Ok(stream)
}

fn not_running_hint() -> String {
    "start it with `mfa-agent daemon` (or `systemctl --user enable --now mfa-agent.socket`)".into()
}

/// The systemd user socket unit, if it is enabled (for this user, or for all users with
/// `systemctl --global`): then systemd, not clients, starts the daemon. Installed but not
/// enabled (a fresh package install) still lets clients start it, so nothing breaks before
/// the user runs `systemctl --user enable`.
#[must_use]
pub fn enabled_socket_unit(paths: &Paths) -> Option<PathBuf> {
    let user_config = paths.config_dir.parent()?.join("systemd/user");
    [user_config.as_path(), Path::new("/etc/systemd/user")]
        .iter()
        .map(|dir| dir.join("sockets.target.wants/mfa-agent.socket"))
        .find(|link| link.symlink_metadata().is_ok())
}

fn start_daemon(paths: &Paths, socket: &Path) -> Result<UnixStream, ClientError> {
    let log = paths.state_dir.join("daemon.log");
    let io_err = |source| ClientError::Io {
        path: log.clone(),
        cause: source,
    };
    atomic::ensure_private_dir(&paths.state_dir).map_err(io_err)?;
    // One old log is kept, so the log never grows without bound.
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > MAX_LOG) {
        std::fs::rename(&log, log.with_extension("log.1")).map_err(io_err)?;
    }
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .map_err(io_err)?;
    let exe = companion(DAEMON).map_err(|source| ClientError::Start {
        exe: PathBuf::from(DAEMON),
        cause: source,
    })?;
    let mut command = Command::new(&exe);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    // Its own session: a Ctrl-C meant for the client does not stop the daemon, and it has
    // no terminal to read (prompts go to the client that asks).
    sys::detach_from_session(&mut command);
    let mut child = command
        .spawn()
        .map_err(|source| ClientError::Start { exe, cause: source })?;
    let mut deadline = Instant::now() + START_TIMEOUT;
    let mut exited = None;
    loop {
        match open(socket) {
            Ok(stream) => return Ok(stream),
            Err(ClientError::NotRunning { .. }) if Instant::now() < deadline => {
                if exited.is_none()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    exited = Some(status);
                    deadline = deadline.min(Instant::now() + AFTER_EXIT);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(ClientError::NotRunning { .. }) => {
                let how = exited.map_or_else(
                    || format!("did not answer within {} s", START_TIMEOUT.as_secs()),
                    |status| format!("exited ({status})"),
                );
                return Err(ClientError::StartFailed {
                    path: socket.into(),
                    log,
                    how,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;

    #[test]
    fn an_agent_that_does_not_answer_in_time_is_a_clear_error() {
        let (ours, _agent) = UnixStream::pair().unwrap();
        // The response timeout, shortened: the agent end never writes.
        ours.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut client = Client {
            path: PathBuf::from("/run/user/1000/mfa-agent/agent.sock"),
            stream: BufReader::new(ours),
            hello_pending: false,
        };
        let err = client.call(Status, |_| {}).unwrap_err();
        let said = err.to_string();
        assert!(matches!(err, ClientError::NoAnswer { .. }), "{said}");
        assert!(
            said.contains("did not answer within 120 s") && said.contains("mfa-agent status"),
            "{said}"
        );
    }

    /// A reply of another request's kind (an agent of another version) is an error that
    /// says so and what to do, never read as if it answered: `status` answered with
    /// `locked` must not become a status.
    #[test]
    fn an_answer_to_another_request_is_refused_with_what_to_do() {
        let (ours, mut agent) = UnixStream::pair().unwrap();
        let mut client = Client {
            path: PathBuf::from("/run/user/1000/mfa-agent/agent.sock"),
            stream: BufReader::new(ours),
            hello_pending: false,
        };
        agent
            .write_all(b"{\"type\":\"waiting\",\"message\":\"a moment\"}\n{\"type\":\"locked\",\"dropped\":2}\n")
            .unwrap();
        let mut progress = Vec::new();
        let err = client
            .call(Status, |message| progress.push(message.to_owned()))
            .unwrap_err();
        let said = err.to_string();
        assert!(
            matches!(err, ClientError::Unexpected { kind: "locked" }),
            "{said}"
        );
        assert!(said.contains("restart the agent after upgrading"), "{said}");
        assert_eq!(
            progress,
            ["a moment"],
            "progress before the reply is passed on"
        );
        // The same kind of answer to the request it belongs to is its reply.
        agent
            .write_all(b"{\"type\":\"locked\",\"dropped\":2}\n")
            .unwrap();
        assert_eq!(client.call(crate::protocol::Lock, |_| {}).unwrap(), 2);
    }
}
