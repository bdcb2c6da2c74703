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
        self.tick += 1;
        let key = id.to_string();
        if !self.clients.contains_key(client) && self.clients.len() >= self.max_clients {
            // Forget the client that has been quiet the longest.
            if let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, r)| r.last_used)
                .map(|(c, _)| c.clone())
            {
                self.clients.remove(&oldest);
            }
        }
        let replies = self.clients.entry(client.to_owned()).or_default();
        replies.last_used = self.tick;
        match replies.replies.get(&key) {
            Some(Some(reply)) => return Lookup::Done(reply.clone()),
            Some(None) => return Lookup::Running,
            None => {}
        }
        replies.replies.insert(key.clone(), None);
        replies.order.push_back(key);
        while replies.order.len() > self.per_client {
            if let Some(old) = replies.order.pop_front() {
                replies.replies.remove(&old);
            }
        }
        Lookup::Fresh
    }

    /// Stores the reply to `(client, id)` once it has been executed.
    pub fn finish(&mut self, client: &str, id: &Value, reply: Response) {
        // Evicted while it ran (a very busy client): nothing to keep it for.
        if let Some(slot) = self
            .clients
            .get_mut(client)
            .and_then(|r| r.replies.get_mut(&id.to_string()))
        {
            *slot = Some(reply);
        }
    }

    /// How many replies (running or done) it holds, over every client.
    pub fn len(&self) -> usize {
        self.clients.values().map(|r| r.replies.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many clients it holds replies for.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}
