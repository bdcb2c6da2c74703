//! Sockets as the kernel sees them.

use std::net::SocketAddr;

/// One IPv4 TCP socket of `/proc/net/tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Its address, as the kernel shows it (`0100007F:1F90` for 127.0.0.1:8080).
    pub local: String,
    /// Its peer's address, likewise (`00000000:0000` for a listener).
    pub remote: String,
    /// The connection's state (`0A` listening, `01` established).
    pub state: String,
    /// Bytes sent and not yet acknowledged.
    pub tx_queue: u64,
    /// Bytes received and not yet read.
    pub rx_queue: u64,
    /// The socket's inode, as `/proc/PID/fd` shows it (`socket:[INODE]`).
    pub inode: u64,
}

/// `a` as `/proc/net/tcp` writes it; empty for IPv6.
pub fn kernel_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    }
}

/// Every IPv4 TCP socket of this network namespace.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(TcpSocket {
                local: (*f.get(1)?).to_owned(),
                remote: (*f.get(2)?).to_owned(),
                state: (*f.get(3)?).to_owned(),
                tx_queue: u64::from_str_radix(tx, 16).ok()?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// `local`'s end of the TCP connection to `remote`, if there is one.
pub fn connection(local: SocketAddr, remote: SocketAddr) -> Option<TcpSocket> {
    let (l, r) = (kernel_addr(local), kernel_addr(remote));
    tcp_sockets()
        .into_iter()
        .find(|s| s.local == l && s.remote == r)
}

/// The socket listening on `addr`, if there is one.
pub fn listener(addr: SocketAddr) -> Option<TcpSocket> {
    let l = kernel_addr(addr);
    tcp_sockets()
        .into_iter()
        .find(|s| s.local == l && s.state == "0A")
}

/// The send and receive queues (bytes) of `local`'s end of the TCP connection to `remote`,
/// from /proc/net/tcp: what `local`'s owner sent that `remote`'s end has not acknowledged,
/// and what `remote` sent that `local`'s owner has not read yet. `None` when there is no such
/// IPv4 connection. A test waits on them (with a deadline) to know that a server has read a
/// first piece before sending the next, instead of sleeping.
pub fn queues(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
    connection(local, remote).map(|s| (s.tx_queue, s.rx_queue))
}

/// The receive queue of `local`'s end of the TCP connection to `remote` (see [`queues`]).
pub fn rx_queue(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    queues(local, remote).map(|(_, rx)| rx)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// Bytes written and not yet read show in the reader's receive queue.
    #[test]
    fn unread_bytes_are_in_the_receive_queue() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let local = server.local_addr().unwrap();
        assert_eq!(super::rx_queue(local, peer), Some(0));
        client.write_all(b"12345").unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while super::rx_queue(local, peer) != Some(5) {
            assert!(
                std::time::Instant::now() < end,
                "{:?}",
                super::rx_queue(local, peer)
            );
            std::thread::yield_now();
        }
    }

    /// A listener and a connection are found with the inodes this process's descriptors show.
    #[test]
    fn sockets_are_found_with_their_inodes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let mine: Vec<u64> = crate::procfs::fds("self")
            .into_iter()
            .filter_map(|f| match f.kind {
                crate::procfs::FdKind::Socket(ino) => Some(ino),
                _ => None,
            })
            .collect();
        let l = super::listener(addr).unwrap();
        assert!(mine.contains(&l.inode), "{l:?} {mine:?}");
        let c = super::connection(client.local_addr().unwrap(), addr).unwrap();
        assert!(mine.contains(&c.inode), "{c:?} {mine:?}");
        assert_eq!(c.state, "01");
    }
}
