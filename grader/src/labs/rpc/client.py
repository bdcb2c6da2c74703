# The rpc lab's check `python_client`: a JSON-RPC client made of Python's json and socket
# modules, against the student's rpc-server. Usage: python3 client.py PORT
# Prints `ok` and exits 0, or prints one line `FAIL: ...` and exits 1.
import json
import socket
import sys

PORT = int(sys.argv[1])


class Fail(Exception):
    pass


class Conn:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        self.file = self.sock.makefile("rb")

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, after):
        try:
            line = self.file.readline()
        except socket.timeout:
            raise Fail(f"after {json.dumps(after)}, no reply line within 5 s")
        if not line:
            raise Fail(f"after {json.dumps(after)}, the server closed the connection")
        if not line.endswith(b"\n"):
            raise Fail(f"after {json.dumps(after)}, a reply without its newline: {line!r}")
        try:
            return json.loads(line)
        except ValueError:
            raise Fail(f"after {json.dumps(after)}, the reply {line!r} is not JSON")

    def ask(self, obj):
        self.send(obj)
        return self.recv(obj)


def req(method, params, id):
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": id}


def expect(sent, got, ok, expected):
    if not ok:
        raise Fail(f"sent {json.dumps(sent)}, the reply was {json.dumps(got)}; expected {expected}")


def main():
    c = Conn()
    for method, params, result in [
        ("add", [1, 2], 3),
        ("add", {"a": 0.25, "b": 0.5}, 0.75),
        ("kv.put", ["k", [1, {"x": None}]], None),
        ("kv.get", {"key": "k"}, [1, {"x": None}]),
        ("counter.incr", [], 1),
    ]:
        sent = req(method, params, f"id-{method}")
        r = c.ask(sent)
        if isinstance(r, dict) and "result" in r and "error" in r:
            raise Fail(f"sent {json.dumps(sent)}, the reply was {json.dumps(r)}: a reply has "
                       "\"result\" or \"error\", never both (not even one of them null)")
        expect(sent, r, isinstance(r, dict) and r.get("jsonrpc") == "2.0" and "result" in r
               and r["result"] == result and r.get("id") == sent["id"] and "error" not in r,
               f'"jsonrpc": "2.0", "result": {json.dumps(result)}, "id": "{sent["id"]}"')
    for method, params, code in [("divide", [1, 2], -32601), ("add", [1], -32602)]:
        sent = req(method, params, 99)
        r = c.ask(sent)
        expect(sent, r, isinstance(r, dict) and isinstance(r.get("error"), dict)
               and r["error"].get("code") == code and r.get("id") == 99, f'"error": {{"code": {code}, ...}}, "id": 99')

    # Notifications on this connection get no reply: the next line answers the next request.
    c.send({"jsonrpc": "2.0", "method": "counter.incr"})
    c.send({"jsonrpc": "2.0", "method": "unknown.method"})
    c.send([{"jsonrpc": "2.0", "method": "counter.incr"}, {"jsonrpc": "2.0", "method": "counter.incr"}])
    sent = req("counter.incr", [], "after-notes")
    r = c.ask(sent)
    expect("three notifications (one in a batch of two), then " + json.dumps(sent), r,
           isinstance(r, dict) and r.get("id") == "after-notes" and r.get("result") == 5,
           'the reply to the request, "result": 5 (notifications run, and get no reply line)')

    batch = [req("add", [2, 2], 1), {"jsonrpc": "2.0", "method": "counter.incr"}, req("kv.get", ["k"], 2), 5]
    r = c.ask(batch)
    ok = isinstance(r, list) and len(r) == 3
    if ok:
        by_id = {json.dumps(x.get("id")): x for x in r if isinstance(x, dict)}
        ok = (by_id.get("1", {}).get("result") == 4 and by_id.get("2", {}).get("result") == [1, {"x": None}]
              and by_id.get("null", {}).get("error", {}).get("code") == -32600)
    expect(batch, r, ok, "one line with an array of three replies: 4 for id 1, the list for id 2, -32600 with id null for 5")

    # A second connection sees the same state.
    d = Conn()
    sent = req("counter.incr", [], 7)
    r = d.ask(sent)
    expect(sent, r, isinstance(r, dict) and r.get("result") == 7, '"result": 7 (the counter is shared by every connection)')


try:
    main()
    print("ok")
except Fail as e:
    print(f"FAIL: {e}")
    sys.exit(1)
except OSError as e:
    print(f"FAIL: {e}")
    sys.exit(1)
