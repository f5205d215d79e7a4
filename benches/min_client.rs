//! The floor for a cache hit: the least a client can do. Connects to the agent's socket,
//! sends hello and one credentials request, prints the reply line. Built by the benchmark
//! with plain `rustc -O` (std only), so it costs one process start and one round trip.
//!
//!   min_client SOCKET PROFILE PROTOCOL_VERSION

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

fn main() {
    let mut args = std::env::args().skip(1);
    let (socket, profile, version) = (
        args.next().unwrap(),
        args.next().unwrap(),
        args.next().unwrap(),
    );
    let mut stream = UnixStream::connect(socket).unwrap();
    write!(
        stream,
        "{{\"type\":\"hello\",\"version\":{version}}}\n{{\"type\":\"credentials\",\"profile\":\"{profile}\"}}\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let (mut hello, mut reply) = (String::new(), String::new());
    reader.read_line(&mut hello).unwrap();
    reader.read_line(&mut reply).unwrap();
    assert!(reply.starts_with("{\"type\":\"credentials\""), "{reply}");
    std::io::stdout().write_all(reply.as_bytes()).unwrap();
}
