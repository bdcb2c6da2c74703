//! Sockets as the kernel sees them.

use std::net::SocketAddr;

/// The send and receive queues (bytes) of `local`'s end of the TCP connection to `remote`,
/// from /proc/net/tcp: what `local`'s owner sent that `remote`'s end has not acknowledged,
/// and what `remote` sent that `local`'s owner has not read yet. `None` when there is no such
/// IPv4 connection. A test waits on them (with a deadline) to know that a server has read a
/// first piece before sending the next, instead of sleeping.
pub fn queues(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let (l, r) = (hex(local), hex(remote));
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&l.as_str()) || f.get(2) != Some(&r.as_str()) {
            return None;
        }
        let (tx, rx) = f.get(4)?.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
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
}
