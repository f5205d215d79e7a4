//! moto's server mode on 127.0.0.1: an STS/IAM emulator nobody here wrote, for checking that
//! real AWS clients and our SDK calls agree on the wire.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    pub url: String,
    child: Child,
}

/// The Python virtualenv `tests/run` makes (moto, boto3).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("MFA_AGENT_TEST_VENV").map(PathBuf::from).expect(
        "MFA_AGENT_TEST_VENV is not set: this test needs the Python venv with moto and boto3 that `tests/run` creates; run the suite with `tests/run`",
    );
    assert!(
        venv.join("bin/moto_server").exists(),
        "{} has no moto_server; rerun `tests/run`",
        venv.display()
    );
    venv
}

impl Moto {
    pub fn start() -> Self {
        // moto cannot report a port it picked: a free one is picked here and handed to it.
        // Another process may take it in between; then moto exits, and another is tried.
        for _ in 0..5 {
            if let Some(moto) = Self::start_on(free_port()) {
                return moto;
            }
        }
        panic!("moto_server failed to listen on 5 free ports in turn");
    }

    /// moto on `port`, once it answers there; `None` if it exited (the port was taken).
    fn start_on(port: u16) -> Option<Self> {
        let child = Command::new(venv().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let mut moto = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Ours, and alive: a listener that is not moto (it lost the port) does not count.
            if moto.child.try_wait().unwrap().is_some() {
                return None;
            }
            if answers_as_moto(port) {
                return Some(moto);
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a boto3 `script` against this server with `iam` bound to an IAM client (throwaway
    /// keys, as moto takes any); its stdout, trimmed. A failing script fails the test.
    pub fn boto3_iam(&self, script: &str) -> String {
        let program = format!(
            "import boto3, json\niam = boto3.client('iam', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='AKIAIOSFODNN7EXAMPLE', aws_secret_access_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')\n{script}",
            self.url
        );
        let out = Command::new(venv().join("bin/python"))
            .args(["-c", &program])
            .output()
            .expect("the venv's python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// Whether moto's own API answers on `port` (its state as JSON), not just any listener.
fn answers_as_moto(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = String::new();
    stream
        .write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .and_then(|()| stream.read_to_string(&mut reply))
        .is_ok()
        && reply.starts_with("HTTP/1.1 200")
        && reply.contains("Werkzeug")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
