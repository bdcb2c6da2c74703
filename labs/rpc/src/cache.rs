//! Part C: the server's reply cache, the half of at-most-once calls that lives on the server.
//!
//! A client that timed out cannot know whether its request was lost on the way there or its
//! reply on the way back. It sends the request again with the same id and its client id;
//! the server looks the pair up here: a request it has already executed is answered with
//! the reply it sent before, and one still running is waited for, instead of being executed
//! a second time.
//!
//! The cache is bounded, so that its memory does not grow with the number of calls: it
//! keeps the last [`REPLIES_PER_CLIENT`] replies of each client (a client retries only its
//! latest calls) and the [`MAX_CLIENTS`] clients used most recently (a client that has been
//! quiet the longest is forgotten first).

// The imports name what you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::wire::Response;

/// How many replies the server keeps per client.
pub const REPLIES_PER_CLIENT: usize = 64;
/// How many clients the server keeps replies for.
pub const MAX_CLIENTS: usize = 1024;

/// What [`ReplyCache::begin`] found for a (client, id).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Never seen: execute it now; it is marked as running.
    Fresh,
    /// Being executed by another connection: wait for its [`ReplyCache::finish`].
    Running,
    /// Executed before: send this reply again.
    Done(Response),
}

/// A bounded map from (client, request id) to the reply sent.
#[derive(Debug)]
pub struct ReplyCache {
    per_client: usize,
    max_clients: usize,
    clients: HashMap<String, Replies>,
    /// A clock for "used most recently".
    tick: u64,
}

#[derive(Debug, Default)]
struct Replies {
    last_used: u64,
    /// Ids in the order they were first seen, oldest first.
    order: VecDeque<String>,
    /// `None` while running.
    replies: HashMap<String, Option<Response>>,
}

impl ReplyCache {
    /// A cache that keeps `per_client` replies for each of at most `max_clients` clients.
    pub fn new(per_client: usize, max_clients: usize) -> ReplyCache {
        ReplyCache {
            per_client: per_client.max(1),
            max_clients: max_clients.max(1),
            clients: HashMap::new(),
            tick: 0,
        }
    }

    /// Looks up `(client, id)`; when it is [`Lookup::Fresh`], records it as running.
    pub fn begin(&mut self, client: &str, id: &Value) -> Lookup {
        todo!(
            "part C: evict the least recently used client when full; Done, Running or Fresh (then record as running, dropping the oldest id past per_client)"
        )
    }

    /// Stores the reply to `(client, id)` once it has been executed.
    pub fn finish(&mut self, client: &str, id: &Value, reply: Response) {
        todo!("part C: store the reply of a running (client, id), if it is still there")
    }

    /// How many replies (running or done) it holds, over every client.
    pub fn len(&self) -> usize {
        todo!("part C: the replies held, over every client")
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many clients it holds replies for.
    pub fn clients(&self) -> usize {
        todo!("part C: the clients held")
    }
}
