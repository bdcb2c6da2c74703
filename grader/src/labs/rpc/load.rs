//! `concurrent_sleep` (slow calls delay no other client) and `idle_cpu` (a server with
//! nothing to do blocks in the kernel).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{LineConn, Reply, request, start_server};
use crate::check::{CheckResult, Ctx, Fail};
use crate::{ensure, fail};

/// How many clients sleep at once, and how long each sleep is.
const CLIENTS: usize = 100;
const SLEEP_MS: u64 = 500;
/// By when every sleep must have been answered, from the moment the last one was sent.
const ALL_ANSWERED: Duration = Duration::from_secs(3);
/// How long the probe may take while the sleeps run.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// 100 connections send `sleep(500)` at once, every other one with a `"_client"` member (as
/// RpcClient sends every call, so that its calls go through the reply cache); meanwhile a
/// `sleep(0)` on another connection is answered within 2 s, and every sleep within 3 s.
///
/// The probe is a `sleep` (this item's own method): its reply only has to come, whatever it
/// holds, so that a wrong `add` costs the items that judge `add`, not this one.
pub(super) fn concurrent_sleep(ctx: &mut Ctx) -> CheckResult {
    let server = start_server(ctx)?;
    let mut conns = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        conns.push(LineConn::open(server.port)?);
    }
    let (tx, rx) = mpsc::channel::<(usize, Reply)>();
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.send(sleeper(i).to_string().as_bytes())?;
    }
    let sent = Instant::now();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((i, conn.recv(ALL_ANSWERED + Duration::from_secs(2))));
        });
    }
    drop(tx);

    // The probe goes right after the sleeps: a server that blocks on a sleep has one
    // running by now, and if not, its sleeps run one after the other and fail below.
    let probe = request("sleep", json!([0]), json!("probe"));
    let mut other = LineConn::open(server.port)?;
    other.send(probe.as_bytes())?;
    let reply = other.recv(PROBE_LIMIT);
    if !matches!(&reply, Reply::Json(v) if v["id"] == "probe") {
        fail!(
            "while {CLIENTS} other connections waited for sleep({SLEEP_MS}), `{probe}` on a new \
             connection got {} within {} s (expected its reply at once): sleep blocks the whole \
             server. Serve each connection on a thread of its own, and hold no lock while \
             sleeping",
            reply.describe(),
            PROBE_LIMIT.as_secs()
        );
    }

    // Answered sleeps: [without _client, with _client].
    let mut answered = [0usize; 2];
    let mut wrong: Option<String> = None;
    let mut late: Option<String> = None;
    while let Ok((i, reply)) = rx.recv_timeout(ALL_ANSWERED.saturating_sub(sent.elapsed())) {
        match &reply {
            Reply::Json(v) if v["id"] == json!(i) && v["result"] == json!(SLEEP_MS) => {
                answered[i % 2] += 1
            }
            Reply::Json(Value::Object(_)) | Reply::NotJson(_) => {
                wrong.get_or_insert(format!(
                    "the reply to `{}` was {}; expected \"result\": {SLEEP_MS}, \"id\": {i}",
                    sleeper(i),
                    reply.describe()
                ));
            }
            _ => {
                late.get_or_insert(format!("connection {i} got {}", reply.describe()));
            }
        }
        if answered[0] + answered[1] == CLIENTS {
            break;
        }
    }
    if let Some(why) = wrong {
        return Err(Fail(why));
    }
    let half = CLIENTS / 2;
    let took = sent.elapsed().as_secs_f64();
    let late = late.map(|l| format!(" ({l})")).unwrap_or_default();
    ensure!(
        !(answered[0] == half && answered[1] < half),
        "{CLIENTS} connections each sent sleep({SLEEP_MS}) at once, every other one with a \
         \"_client\" member as RpcClient sends it; {took:.1} s later all {half} without \
         \"_client\" had their reply, but only {} of the {half} with one{late}: a call with a \
         client id holds up the others. Do not hold the reply cache's lock while the call runs: \
         take it to look the (client, id) up and mark it running, release it, run the call, \
         and take it again to store the reply",
        answered[1]
    );
    ensure!(
        answered == [half, half],
        "{CLIENTS} connections each sent sleep({SLEEP_MS}) at once; {took:.1} s later only {} \
         had their reply{late}: sleep blocks the whole server. Calls on different connections \
         must run at the same time: one thread per connection, and no lock held while sleeping",
        answered[0] + answered[1]
    );
    ctx.note(format!(
        "{CLIENTS} sleep({SLEEP_MS}) calls at once were all answered after {:.2} s",
        sent.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The request of sleeper `i`: `sleep(500)` with id `i`, and for odd `i` a `"_client"`.
fn sleeper(i: usize) -> Value {
    let mut r = json!({"jsonrpc": "2.0", "method": "sleep", "params": [SLEEP_MS], "id": i});
    if i % 2 == 1 {
        r["_client"] = json!(format!("sleeper-{i}"));
    }
    r
}

/// A server with a connected client that says nothing uses under 5% of a CPU over 1 s.
pub(super) fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let server = start_server(ctx)?;
    let mut conn = LineConn::open(server.port)?;
    // Any reply will do: that the server answers is all this item needs.
    let reply = conn.ask(request("sleep", json!([0]), json!(1)).as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == 1),
        "sleep [0] (id 1) got {} instead of a reply with id 1: no idle server to measure",
        reply.describe()
    );
    // A second client that has connected and sent half a line.
    let mut half = LineConn::open(server.port)?;
    half.send_raw(br#"{"jsonrpc":"2.0","#)?;
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    testkit::cpu::check_idle(
        &[server.proc.pid],
        Duration::from_secs(1),
        0.05,
        "Block in accept() and read() (no non-blocking sockets polled in a loop, no \
         read timeouts retried at once)",
    )
    .map_err(|why| {
        Fail(format!(
            "rpc-server spins: two clients were connected (one silent, one in the middle of a \
             line), and {why}"
        ))
    })?;
    drop((conn, half));
    Ok(())
}
