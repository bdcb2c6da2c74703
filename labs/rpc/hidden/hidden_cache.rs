//! Hidden tests, part C: the reply cache is bounded (per client and in clients) and keeps
//! what a retry needs: the latest replies of the clients used most recently.

use rpc::cache::{Lookup, MAX_CLIENTS, REPLIES_PER_CLIENT, ReplyCache};
use rpc::wire::Response;
use serde_json::{Value, json};

fn reply(id: u64) -> Response {
    Response {
        id: json!(id),
        outcome: Ok(json!(id * 10)),
    }
}

fn run(cache: &mut ReplyCache, client: &str, id: u64) {
    let got = cache.begin(client, &json!(id));
    assert_eq!(
        got,
        Lookup::Fresh,
        "a new (client, id) ({client}, {id}) is Fresh"
    );
    cache.finish(client, &json!(id), reply(id));
}

/// 10,000 calls of one client leave at most 8 replies in a cache of 8 per client, and the
/// latest one is still answered from it.
#[test]
fn replies_per_client_are_bounded_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    for id in 0..10_000 {
        run(&mut cache, "one", id);
    }
    assert!(
        cache.len() <= 8,
        "after 10000 calls of one client, a cache of 8 replies per client holds {} replies: \
         drop the oldest reply of a client when it has more than its bound, or the server's \
         memory grows with every call",
        cache.len()
    );
    assert_eq!(
        cache.begin("one", &json!(9_999)),
        Lookup::Done(reply(9_999))
    );
    assert_eq!(
        cache.begin("one", &json!(9_993)),
        Lookup::Done(reply(9_993))
    );
}

/// 1000 clients leave at most 4 in a cache of 4 clients; the most recent is kept.
#[test]
fn clients_are_bounded_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    for c in 0..1000 {
        run(&mut cache, &format!("client-{c}"), 1);
    }
    assert!(
        cache.clients() <= 4 && cache.len() <= 4 * 8,
        "after 1000 clients, a cache of 4 clients holds {} clients and {} replies: forget the \
         client used least recently when a new one comes and the cache is full, or the \
         server's memory grows with every new client",
        cache.clients(),
        cache.len()
    );
    assert_eq!(cache.begin("client-999", &json!(1)), Lookup::Done(reply(1)));
}

/// A client that keeps calling is kept while others come and go.
#[test]
fn a_busy_client_is_kept_part_c() {
    let mut cache = ReplyCache::new(8, 3);
    for i in 0..100 {
        run(&mut cache, &format!("passing-{i}"), 1);
        run(&mut cache, "busy", i);
    }
    assert_eq!(
        cache.begin("busy", &json!(99)),
        Lookup::Done(reply(99)),
        "the client used most recently must not be evicted"
    );
}

/// A running call is `Running` to a repeat; the server's own bounds are sensible.
#[test]
fn running_and_the_server_bounds_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Fresh);
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Running);
    cache.finish("c", &Value::from("x"), reply(1));
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Done(reply(1)));
    assert!(
        (1..=10_000).contains(&REPLIES_PER_CLIENT) && (1..=1_000_000).contains(&MAX_CLIENTS),
        "REPLIES_PER_CLIENT ({REPLIES_PER_CLIENT}) and MAX_CLIENTS ({MAX_CLIENTS}) bound the \
         server's memory"
    );
}
