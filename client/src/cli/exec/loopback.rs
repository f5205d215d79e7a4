//! Who is on the other end of a TCP connection to 127.0.0.1: the kernel's socket table
//! (`/proc/net/tcp`) names the uid that owns the client's socket and its inode, and the
//! process holding that inode is found among the user's own (`/proc/PID/fd`). Linux only;
//! elsewhere nothing is known, and nothing is refused for it.

use std::net::SocketAddr;

/// The owner of the client's end of a loopback connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Client {
    pub uid: u32,
    /// The process holding the socket, when it is one of ours (another user's `/proc/PID/fd`
    /// cannot be read).
    pub pid: Option<u32>,
}

/// The client of the connection from `peer` to `local`, if the kernel lists it.
#[must_use]
pub(super) fn client_of(peer: SocketAddr, local: SocketAddr) -> Option<Client> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (uid, inode) = find(&table, &hex_address(peer)?, &hex_address(local)?)?;
    Some(Client {
        uid,
        pid: holder_of(inode),
    })
}

/// An IPv4 address as `/proc/net/tcp` writes it: the address in the host's byte order as
/// hex, a colon, the port as hex (`0100007F:1F90` for 127.0.0.1:8080 on x86).
fn hex_address(address: SocketAddr) -> Option<String> {
    let SocketAddr::V4(v4) = address else {
        return None;
    };
    Some(format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    ))
}

/// The uid and inode of the socket whose local end is `own` and remote end `other`.
fn find(table: &str, own: &str, other: &str) -> Option<(u32, u64)> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st queues timer retransmits uid timeout inode ...
        (fields.get(1) == Some(&own) && fields.get(2) == Some(&other))
            .then(|| Some((fields.get(7)?.parse().ok()?, fields.get(9)?.parse().ok()?)))
            .flatten()
    })
}

/// The process with an open descriptor on socket `inode`.
fn holder_of(inode: u64) -> Option<u32> {
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.as_os_str() == wanted.as_str())
                })
                .then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_of_a_loopback_connection_is_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let found = client_of(peer, listener.local_addr().unwrap()).unwrap();
        assert_eq!(found.uid, crate::sys::current_uid());
        assert_eq!(found.pid, Some(std::process::id()));
        let elsewhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(client_of(elsewhere, listener.local_addr().unwrap()), None);
    }
}
