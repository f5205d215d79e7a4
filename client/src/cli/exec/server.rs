//! `exec --server`: the AWS container-credentials endpoint (what ECS gives a task) on
//! 127.0.0.1, for the one child it runs. The SDKs fetch from it on their own whenever their
//! credentials near expiry, so a four-hour `terraform apply` or a boto3 service keeps
//! working across sessions (and 1-hour chained role sessions) without being restarted.
//! Every request is a request to the agent, which serves its cache or mints.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::clock::iso8601;
use crate::paths::Paths;
use crate::secret::SecretString;

/// The container-credentials format, with the SDKs' field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
}

/// How long one client may take to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// A request's head larger than this is not an SDK's.
const MAX_HEAD: usize = 8 * 1024;
/// Connections answered at once: an SDK makes one at a time; past this, new ones are
/// closed unread until one ends (each lasts at most the head deadline plus the agent's
/// answer).
const MAX_CONNECTIONS: usize = 16;

/// Runs `command` with `AWS_CONTAINER_CREDENTIALS_FULL_URI` pointing at a server for
/// `profile`, until it exits; returns its exit status.
pub(super) fn exec(paths: &Paths, profile: &str, command: &[String]) -> Result<ExitCode> {
    // The first session up front: prompts and errors come before the child starts.
    let (program, rest) = super::program_and_args(command);
    let first = super::fetch(
        paths,
        profile,
        false,
        Some(crate::protocol::CredentialsUser::Command(program.clone())),
    )?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("failed to listen on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let token = random_token()?;
    let serving = Serving {
        paths: paths.clone(),
        profile: profile.to_owned(),
        token: token.clone(),
    };
    // The server lives as long as this process, which lives as long as the child.
    std::thread::spawn(move || serving.serve(&listener));

    let mut child = Command::new(&program);
    child
        .args(&rest)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CREDENTIAL_EXPIRATION")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://127.0.0.1:{port}/"),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.expose())
        .env("MFA_AGENT_PROFILE", profile);
    if let Some(region) = &first.region {
        child
            .env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region);
    }
    drop(first);
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(super::not_run(&program, &e)),
    };
    // Ctrl-C reaches the child (same process group); this process waits for it to end.
    crate::sys::ignore_interrupts();
    let status = child.wait().context("failed to wait for the command")?;
    Ok(exit_code(status))
}

/// The child's exit code; a child killed by a signal gives 128 + the signal, as shells do.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// 32 random bytes from the kernel, hex: the bearer token only the child knows.
fn random_token() -> Result<SecretString> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("failed to read /dev/urandom")?;
    let hex = bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    });
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(SecretString::new(hex))
}

struct Serving {
    paths: Paths,
    profile: String,
    token: SecretString,
}

impl Serving {
    fn serve(self, listener: &TcpListener) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let serving = std::sync::Arc::new(self);
        let busy = std::sync::Arc::new(AtomicUsize::new(0));
        let local = listener.local_addr().ok();
        let me = crate::sys::current_uid();
        loop {
            let Ok((stream, peer)) = listener.accept() else {
                // Out of descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            // 127.0.0.1 is every local user's: another user's connection is closed unread,
            // so slow ones cannot hold the slots the child needs.
            let client = local.and_then(|local| super::loopback::client_of(peer, local));
            if client.is_some_and(|c| c.uid != me) {
                continue;
            }
            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                busy.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            let (serving, busy) = (serving.clone(), busy.clone());
            std::thread::spawn(move || {
                serving.answer(stream, client.and_then(|c| c.pid));
                busy.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }

    /// Answers one request; `pid` is the process behind it (the SDK in the child), named
    /// to the agent as the credentials' user.
    fn answer(&self, mut stream: TcpStream, pid: Option<u32>) {
        let Some(head) = read_head(&mut stream) else {
            return respond(&mut stream, 400, br#"{"message":"bad request"}"#);
        };
        let authorized = header(&head, "authorization")
            .is_some_and(|given| same(given.as_bytes(), self.token.expose().as_bytes()));
        if !head.starts_with("GET ") {
            return respond(&mut stream, 405, br#"{"message":"only GET is served"}"#);
        }
        if !authorized {
            return respond(
                &mut stream,
                401,
                br#"{"message":"missing or wrong Authorization token"}"#,
            );
        }
        let user = pid.map(crate::protocol::CredentialsUser::Process);
        match super::fetch(&self.paths, &self.profile, false, user) {
            Ok(creds) => {
                let body = ContainerCredentials {
                    access_key_id: &creds.access_key_id,
                    secret_access_key: creds.secret_access_key.expose(),
                    token: creds.session_token.expose(),
                    expiration: iso8601(creds.expiration),
                };
                // Sized so that serialising never reallocates; wiped after the write.
                let mut json = Vec::with_capacity(4096);
                if serde_json::to_writer(&mut json, &body).is_ok() {
                    respond(&mut stream, 200, &json);
                }
                zeroize::Zeroize::zeroize(&mut json);
            }
            Err(e) => {
                let message = crate::report::sentence(e.as_ref());
                let body = serde_json::json!({ "message": message }).to_string();
                respond(&mut stream, 500, body.as_bytes());
            }
        }
    }
}

/// The request line and headers, up to the blank line, all within [`HEAD_DEADLINE`] (a
/// byte a second does not keep a connection open).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let deadline = std::time::Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(head).ok()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn respond(stream: &mut TcpStream, status: u16, body: &[u8]) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_compared_whole_and_headers_found_in_any_case() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"abcd"));
        let head = "GET / HTTP/1.1\r\nHost: x\r\nAUTHORIZATION:  tok \r\n\r\n";
        assert_eq!(header(head, "authorization"), Some("tok"));
        assert_eq!(header(head, "cookie"), None);
        assert_eq!(random_token().unwrap().expose().len(), 64);
    }
}
