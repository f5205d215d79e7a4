//! A forward HTTP proxy on 127.0.0.1 for one upstream: it takes requests in the absolute
//! form a client sends a proxy (`POST http://host:port/ HTTP/1.1`), records the URL asked
//! for, and passes each to `upstream` in origin form, one request per connection. The host
//! a client names need not resolve: only the proxy reaches the upstream.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Proxy {
    pub url: String,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy that sends every request to `upstream` ("127.0.0.1:PORT").
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, seen, stopping) = (upstream.to_owned(), asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        forward(client, &upstream, &seen);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            url,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// The URLs clients asked the proxy for, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Passes one request to `upstream` and its answer back, recording the absolute URL asked
/// for in `seen` before the answer goes back (a client may exit, and its test look, the
/// moment it has its answer).
fn forward(client: TcpStream, upstream: &str, seen: &Mutex<Vec<String>>) -> Option<()> {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let path = target
        .strip_prefix("http://")
        .map(|rest| rest.find('/').map_or("/", |i| &rest[i..]))?;
    let mut head = format!("{method} {path} {version}\r\n");
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("proxy-connection:") {
            continue;
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        head.push_str(&line);
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    seen.lock().unwrap().push(target.to_owned());
    let mut server = TcpStream::connect(upstream).ok()?;
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(&body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    // Tell the client the connection ends here, so it never reuses it for another request.
    let status_end = answer.windows(2).position(|w| w == b"\r\n")? + 2;
    answer.splice(
        status_end..status_end,
        b"Connection: close\r\n".iter().copied(),
    );
    let mut client = client;
    client.write_all(&answer).ok()
}
