#!/usr/bin/python3
"""A RESP client written from the protocol's description, for the tcp-sockets checks.

usage: raw_resp.py PORT

Sends requests cut at every byte boundary: the first piece, then (once the server has read
it: the receive queue of its end of the connection in /proc/net/tcp is empty) the rest, and
compares each reply byte for byte. Then a pipeline of every request, cut at every byte.
Prints `ok <cuts>` and exits 0, or prints what went wrong and exits 1.
"""
import socket
import struct
import sys
import time

PORT = int(sys.argv[1])


def req(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def bulk(v):
    return b"$%d\r\n%s\r\n" % (len(v), v)


BINARY = b"\x00\xff\r\n$5\r\nhello\r\n*2\r\n"
CASES = [
    (req(b"SET", b"py:bin", BINARY), b"+OK\r\n"),
    (req(b"GET", b"py:bin"), bulk(BINARY)),
    (req(b"EXISTS", b"py:bin", b"py:none"), b":1\r\n"),
    (req(b"ECHO", b"cut me anywhere"), bulk(b"cut me anywhere")),
    (b"PING\r\n", b"+PONG\r\n"),
    (req(b"SET", b"py:empty", b""), b"+OK\r\n"),
    (req(b"GET", b"py:empty"), b"$0\r\n\r\n"),
    (req(b"DEL", b"py:bin", b"py:empty"), b":2\r\n"),
    (req(b"GET", b"py:bin"), b"$-1\r\n"),
    (req(b"NOPE"), b"-ERR unknown command 'NOPE'\r\n"),
]


def server_unread(sock):
    """Bytes the server has not read yet on this connection: the receive queue of its end,
    looked up by address with sock_diag (what `ss` uses), one exact lookup."""
    me_host, me_port = sock.getsockname()
    diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)  # NETLINK_SOCK_DIAG
    try:
        ident = struct.pack(">HH", PORT, me_port)
        ident += socket.inet_aton("127.0.0.1") + bytes(12)
        ident += socket.inet_aton(me_host) + bytes(12)
        ident += struct.pack("=I", 0) + b"\xff" * 8  # any interface, no cookie
        body = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
        body += ident
        header = struct.pack("=IHHII", 16 + len(body), 20, 1, 1, 0)  # SOCK_DIAG_BY_FAMILY
        diag.sendto(header + body, (0, 0))
        reply = diag.recv(65536)
    finally:
        diag.close()
    _, kind = struct.unpack_from("=IH", reply, 0)
    if kind != 20:
        return 0  # gone (NLMSG_ERROR): nothing left unread
    return struct.unpack_from("=I", reply, 16 + 4 + 48 + 4)[0]


def wait_read(sock, what):
    end = time.monotonic() + 5
    while server_unread(sock) != 0:
        if time.monotonic() > end:
            fail("the server did not read the first %s within 5 s" % what)
        time.sleep(0.0002)


def recv_exactly(sock, n):
    got = b""
    while len(got) < n:
        try:
            chunk = sock.recv(n - len(got))
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


def fail(message):
    print(message)
    sys.exit(1)


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def main():
    sock = connect()
    cuts = 0
    # Pass k cuts every request after its k-th byte; each pass runs the whole list, so
    # that every request sees the same state (SET before GET, DEL after).
    longest = max(len(f) for f, _ in CASES)
    for k in range(1, longest):
        for frame, reply in CASES:
            if k >= len(frame):
                sock.sendall(frame)
                got = recv_exactly(sock, len(reply))
                if got != reply:
                    fail("sent %r whole: expected the reply %r, got %r" % (frame, reply, got))
                continue
            sock.sendall(frame[:k])
            wait_read(sock, "%d bytes of %r" % (k, frame))
            sock.sendall(frame[k:])
            got = recv_exactly(sock, len(reply))
            if got != reply:
                fail("sent %r as %d bytes, then (once the server had read them) the other %d: "
                     "expected the reply %r, got %r"
                     % (frame, k, len(frame) - k, reply, got))
            cuts += 1
    # Every request in one pipeline, cut at every byte.
    pipeline = b"".join(f for f, _ in CASES)
    replies = b"".join(r for _, r in CASES)
    for k in range(1, len(pipeline), 3):
        sock.sendall(pipeline[:k])
        wait_read(sock, "%d bytes of a pipeline of %d requests" % (k, len(CASES)))
        sock.sendall(pipeline[k:])
        got = recv_exactly(sock, len(replies))
        if got != replies:
            fail("sent a pipeline of %d requests (%d bytes) as %d bytes, then the rest: "
                 "expected the replies %r, got %r" % (len(CASES), len(pipeline), k, replies, got))
        cuts += 1
    sock.close()
    print("ok %d" % cuts)


main()
