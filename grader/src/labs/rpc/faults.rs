//! `at_most_once`: the grader sits as a proxy between `rpc-call` (the student's
//! `RpcClient`) and `rpc-server`, and loses the first reply of the calls the seed chooses:
//! it swallows the reply (the client must time out) or cuts both connections instead of
//! forwarding it (the client sees the connection end). Either way the server has executed
//! the call. A client that retries with the same id and client id gets the cached reply; a
//! server that executes the retry again counts twice.
//!
//! A call is known by its request text (as JSON, so member order does not matter): a retry
//! of it is the same text, and passes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{LineConn, Reply, request, start_server};
use crate::check::{CheckResult, Ctx, Fail};
use crate::{ensure, fail};

/// How many `rpc-call` processes run at once, and how many calls each makes.
const CLIENTS: usize = 4;
const CALLS: usize = 12;
/// The client's timeout per attempt (ms) and its retries: a swallowed reply costs one timeout.
const TIMEOUT_MS: u64 = 400;
const RETRIES: u32 = 6;

/// What the proxy does to a reply it loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Swallow,
    Cut,
}

/// The proxy's shared record.
#[derive(Default)]
struct Record {
    /// Request texts whose first reply has passed or been lost.
    seen: HashSet<String>,
    /// How many replies were swallowed and how many connections cut.
    swallowed: usize,
    cut: usize,
    /// The `_client` members of the requests that went up.
    clients: BTreeSet<String>,
}

struct Proxy {
    port: u16,
    record: Arc<Mutex<Record>>,
}

/// The seeded choice: lose the first reply of about one call in three, half of them by
/// swallowing and half by cutting.
fn choice(seed: u64, text: &str) -> Option<Fault> {
    // FNV-1a over the text, mixed with the seed.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 29;
    match h % 6 {
        0 => Some(Fault::Swallow),
        1 => Some(Fault::Cut),
        _ => None,
    }
}

fn start_proxy(server: u16, seed: u64) -> Result<Proxy, Fail> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let record: Arc<Mutex<Record>> = Arc::default();
    let rec = Arc::clone(&record);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", server)) else {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            };
            let rec = Arc::clone(&rec);
            std::thread::spawn(move || relay(client, upstream, seed, rec));
        }
    });
    Ok(Proxy { port, record })
}

/// One client connection: requests go up as they come, and the texts of those with an id
/// are remembered by id; replies come down, except a first reply the seed chooses to lose.
fn relay(client: TcpStream, upstream: TcpStream, seed: u64, record: Arc<Mutex<Record>>) {
    let (Ok(mut up), Ok(mut down)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    let pending: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let texts = Arc::clone(&pending);
    let up_record = Arc::clone(&record);
    let from_client = BufReader::new(client);
    let upward = std::thread::spawn(move || {
        for line in from_client.split(b'\n') {
            let Ok(mut line) = line else { break };
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if let Some(id) = v.get("id") {
                    texts.lock().unwrap().insert(id.to_string(), v.to_string());
                }
                if let Some(c) = v.get("_client") {
                    let c = c.as_str().map_or_else(|| c.to_string(), str::to_owned);
                    up_record.lock().unwrap().clients.insert(c);
                }
            }
            line.push(b'\n');
            if up.write_all(&line).is_err() {
                break;
            }
        }
        let _ = up.shutdown(Shutdown::Write);
    });
    let from_server = BufReader::new(upstream);
    for line in from_server.split(b'\n') {
        let Ok(mut line) = line else { break };
        let reply: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
        let text = reply
            .get("id")
            .and_then(|id| pending.lock().unwrap().remove(&id.to_string()));
        if let Some(text) = text {
            let mut rec = record.lock().unwrap();
            if rec.seen.insert(text.clone()) {
                match choice(seed, &text) {
                    Some(Fault::Swallow) => {
                        rec.swallowed += 1;
                        continue;
                    }
                    Some(Fault::Cut) => {
                        rec.cut += 1;
                        break;
                    }
                    None => {}
                }
            }
        }
        line.push(b'\n');
        if down.write_all(&line).is_err() {
            break;
        }
    }
    let _ = down.shutdown(Shutdown::Both);
    let _ = upward.join();
}

/// 4 `rpc-call --repeat 12 counter.incr` at once through the lossy proxy: all succeed, each
/// prints its 12 values in increasing order, together 1..=48, and the counter is then 48.
pub(super) fn at_most_once(ctx: &mut Ctx) -> CheckResult {
    let server = start_server(ctx)?;
    let seed = ctx.next_u64();
    let proxy = start_proxy(server.port, seed)?;
    let args = [
        "--port".to_owned(),
        proxy.port.to_string(),
        "--timeout-ms".into(),
        TIMEOUT_MS.to_string(),
        "--retries".into(),
        RETRIES.to_string(),
        "--repeat".into(),
        CALLS.to_string(),
        "counter.incr".into(),
    ];
    let command = format!("rpc-call {}", args.join(" "));
    let mut procs = Vec::new();
    for _ in 0..CLIENTS {
        let spec = ctx.bin("rpc-call").args(&args);
        procs.push(ctx.spawn(&spec)?);
    }
    let mut values = BTreeSet::new();
    let mut failures = Vec::new();
    for p in &mut procs {
        let out = ctx.finish(&format!("`{command}`"), p, Duration::from_secs(60))?;
        let got: Vec<u64> = out
            .stdout_str()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if out.status() != 0 || got.len() != CALLS {
            failures.push(format!(
                "exited with status {} after printing {} of {CALLS} values; its stderr: {:?}. \
                 After a timeout or a broken connection, RpcClient must reconnect and send the \
                 same request again: the same id and the same _client, so that the server \
                 answers it from its reply cache",
                out.status(),
                got.len(),
                crate::run::clip(out.stderr_str().trim(), 300)
            ));
            continue;
        }
        if got.windows(2).any(|w| w[0] >= w[1]) {
            failures.push(format!(
                "printed {got:?}: a later call returned a value no greater than an earlier one. \
                 The counter and the reply cache are shared by every connection (a retry comes on \
                 a new connection): a server whose state is per connection counts again from 1"
            ));
        }
        values.extend(got);
    }
    let (swallowed, cut) = {
        let r = proxy.record.lock().unwrap();
        (r.swallowed, r.cut)
    };
    let lost = format!(
        "the grader's proxy lost the first reply of {} calls ({swallowed} swallowed: the client \
         must time out; {cut} with both connections cut: the client sees the connection end)",
        swallowed + cut
    );
    if let Some(first) = failures.first() {
        fail!(
            "{CLIENTS} clients ran `{command}` at once through a proxy, and {lost}. One \
             `rpc-call` {first}"
        );
    }
    let total = CLIENTS * CALLS;
    let after = LineConn::open(server.port)?
        .ask(request("counter.incr", json!([]), json!("final")).as_bytes())?;
    let Reply::Json(v) = &after else {
        fail!(
            "counter.incr sent straight to the server got {}",
            after.describe()
        );
    };
    let Some(next) = v["result"].as_u64() else {
        fail!(
            "counter.incr sent straight to the server got {}",
            after.describe()
        );
    };
    ensure!(
        next > 1,
        "after {total} successful counter.incr calls through a proxy, counter.incr sent straight \
         to the server on a new connection returned {next}: that connection's counter started \
         at 0. The store and the counter are shared by every connection"
    );
    let counted = next.saturating_sub(1);
    let total = total as u64;
    let clients = proxy.record.lock().unwrap().clients.clone();
    ensure!(
        counted <= total,
        "{CLIENTS} clients made {total} successful counter.incr calls through a proxy, and {lost}; \
         the counter then stood at {counted} instead of {total}: {} calls ran more than once. A \
         retry must send the same id and the same _client as the first attempt, and the server \
         must answer a (client, id) it has seen from its reply cache, not run it again",
        counted - total
    );
    ensure!(
        counted == total,
        "{CLIENTS} clients made {total} successful counter.incr calls through a proxy, and {lost}; \
         the counter then stood at {counted}: {} calls returned a value without running. A call \
         is answered from the reply cache without running when its (client, id) was seen \
         before: two different calls shared one. The {CLIENTS} rpc-call processes, started at \
         the same instant, sent {} distinct _client value(s) ({}): {}",
        total - counted,
        clients.len(),
        crate::run::clip(
            &clients
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            200
        ),
        if clients.len() < CLIENTS {
            "each RpcClient needs a client id unique on the machine, not only in its process \
             (the pid, the time and a counter together)"
        } else {
            "each had its own, so the server must key its reply cache by the client and the id \
             together (and the id by its JSON value: 7 and \"7\" are two ids)"
        }
    );
    let expected: BTreeSet<u64> = (1..=total).collect();
    ensure!(
        values == expected,
        "{CLIENTS} clients made {total} counter.incr calls through a proxy, and {lost}; the \
         values they printed are not 1..={total} each once: missing {:?}. A retry must return \
         the reply of the first execution (the same id, answered from the reply cache)",
        expected.difference(&values).collect::<Vec<_>>()
    );
    ensure!(
        swallowed + cut > 0,
        "the proxy lost no reply (seed {seed}): the check proved nothing"
    );
    repeat_while_running(&server)?;
    ctx.note(format!("{lost}; the counter ended at {total}"));
    Ok(())
}

/// How long the first copy of the overlapping call sleeps.
const FIRST_MS: u64 = 1000;
/// How many repeats come while the first runs, and how far apart they are sent.
const REPEATS: u32 = 8;
const STAGGER: Duration = Duration::from_millis(100);
/// How long after the first's reply a waiting repeat may get its own.
const WAKE: Duration = Duration::from_millis(300);

/// A call with a `_client` runs `sleep(1000)` on one connection; while it runs (a thread of
/// the server is seen sleeping, or 300 ms have passed since the server read it), repeats of
/// its (client, id) come on other connections, 100 ms apart, with the params `[0]`. Each
/// must wait for the first and get its reply, `"result": 1000`: had it run again, it would
/// be `"result": 0`, at once. Each must also get it within 300 ms of the first's reply: a
/// repeat that polls, or waits on a condition variable that nobody notifies with a timeout
/// of its own, wakes late for some of the repeats, whatever its period (they are sent in
/// every phase of it).
fn repeat_while_running(server: &super::harness::Server) -> CheckResult {
    let call = |ms: u64| {
        json!({"jsonrpc": "2.0", "method": "sleep", "params": [ms], "id": "same",
               "_client": "overlap-check"})
        .to_string()
    };
    let mut first = LineConn::open(server.port)?;
    first.send(call(FIRST_MS).as_bytes())?;
    if !first.server_has_read(server.addr(), super::PROMPT) {
        fail!(
            "`{}` was not read by rpc-server within {} s",
            call(FIRST_MS),
            super::PROMPT.as_secs()
        );
    }
    let pid = server.pid();
    crate::check::poll_until(Instant::now() + Duration::from_millis(300), || {
        super::harness::sleeping_thread(pid)
    });
    let start = Instant::now();
    let port = server.port;
    let limit = Duration::from_millis(FIRST_MS) + super::PROMPT;
    let repeats: Vec<_> = (0..REPEATS)
        .map(|k| {
            let line = call(0);
            std::thread::spawn(move || -> Result<(Duration, Duration, Reply), Fail> {
                std::thread::sleep((start + STAGGER * k).saturating_duration_since(Instant::now()));
                let mut again = LineConn::open(port)?;
                let sent = start.elapsed();
                again.send(line.as_bytes())?;
                let reply = again.recv(limit);
                Ok((sent, start.elapsed(), reply))
            })
        })
        .collect();
    let first_reply = first.recv(limit);
    let first_at = start.elapsed();
    let mut answers = Vec::new();
    for r in repeats {
        answers.push(
            r.join()
                .unwrap_or_else(|_| Err(Fail("a repeat's thread panicked".into())))?,
        );
    }
    let what = format!(
        "`{}` ran on one connection; while it ran, repeats of its (client, id) came on others: \
         `{}`",
        call(FIRST_MS),
        call(0)
    );
    for (sent, at, reply) in &answers {
        if matches!(reply, Reply::Json(v) if v["result"] == 0) {
            fail!(
                "{what}. A repeat got {} after {} ms: it ran again. A repeat that arrives while \
                 the first still runs must wait for it and get its reply (\"result\": \
                 {FIRST_MS}): a (client, id) that is running is neither new nor done \
                 (Lookup::Running: wait on the condition variable until its reply is in the \
                 cache)",
                reply.describe(),
                at.saturating_sub(*sent).as_millis()
            );
        }
        ensure!(
            matches!(reply, Reply::Json(v) if v["result"] == FIRST_MS && v["id"] == "same"),
            "{what}. A repeat got {}; expected the reply of the first, \"result\": {FIRST_MS}, \
             \"id\": \"same\" (a repeat of a running call waits for it)",
            reply.describe()
        );
    }
    ensure!(
        matches!(&first_reply, Reply::Json(v) if v["result"] == FIRST_MS),
        "{what}. The first got {}; expected \"result\": {FIRST_MS}",
        first_reply.describe()
    );
    if let Some((sent, at, _)) = answers
        .iter()
        .filter(|(_, at, _)| *at > first_at + WAKE)
        .max_by_key(|(_, at, _)| *at)
    {
        fail!(
            "{what}. The first's reply came {} ms after the repeats began; a repeat sent at {} \
             ms got the same reply only at {} ms, {} ms after it. A repeat waiting for a \
             running call must wake as soon as the first's reply is in the cache (notify_all on \
             the condition variable once the reply is stored), not at a timeout of its own or \
             by polling",
            first_at.as_millis(),
            sent.as_millis(),
            at.as_millis(),
            at.saturating_sub(first_at).as_millis()
        );
    }
    Ok(())
}
