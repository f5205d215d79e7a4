//! An https front for a test server: a throw-away CA and a certificate for 127.0.0.1 made
//! with the openssl command, and `tls_relay.py` (Python's ssl module) terminating TLS in
//! front of the plain-HTTP server. The client's TLS stack (rustls on ring) meets an
//! independent server's.
#![allow(dead_code)]

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The PEM of the CA that signed the server's certificate: what AWS_CA_BUNDLE names.
    pub ca: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (package openssl, installed by tests/run)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsFront {
    /// TLS in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=mfa-agent test CA",
                "-days",
                "1",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "1",
                "-extfile",
                "leaf.ext",
            ],
        );
        let port = upstream.rsplit(':').next().unwrap().trim_end_matches('/');
        let relay = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/tls_relay.py");
        let mut child = Command::new("python3")
            .arg(relay)
            .arg(d.join("leaf.pem"))
            .arg(d.join("leaf.key"))
            .arg(port)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let listening: u16 = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("tls_relay.py did not say its port: {line:?}")
        });
        Self {
            url: format!("https://127.0.0.1:{listening}"),
            ca: d.join("ca.pem"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
