//! Part A: the wire format (marshalling). One line of the connection holds one JSON text: a
//! request object or a batch (an array of them); the server answers with one line, a
//! response object or an array of them.
//!
//! ```text
//! --> {"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}
//! <-- {"jsonrpc":"2.0","result":3.0,"id":1}
//! --> {"jsonrpc":"2.0","method":"nope","id":"a"}
//! <-- {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"a"}
//! ```

// The imports name what you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Invalid JSON was received (or a line over [`MAX_LINE`] bytes, or bytes that are not UTF-8).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object (or the batch is empty).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method exists, but its parameters are wrong (count, names or types).
pub const INVALID_PARAMS: i64 = -32602;

/// The longest line the server reads, in bytes, without its newline. A longer line is
/// answered with a parse error and skipped up to its newline; the connection goes on.
pub const MAX_LINE: usize = 64 * 1024;

/// The extension member of a request that names the client, for at-most-once calls: a
/// request with both an `id` and `"_client"` is executed at most once per (client, id).
pub const CLIENT_MEMBER: &str = "_client";

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// One of the codes above, or another integer.
    pub code: i64,
    /// A short description: "Parse error", "Invalid Request", "Method not found", ...
    pub message: String,
}

impl ErrorObject {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> ErrorObject {
        ErrorObject {
            code,
            message: message.into(),
        }
    }

    /// -32700 "Parse error".
    pub fn parse_error() -> ErrorObject {
        ErrorObject::new(PARSE_ERROR, "Parse error")
    }

    /// -32600 "Invalid Request", with what was wrong.
    pub fn invalid_request(why: &str) -> ErrorObject {
        ErrorObject::new(INVALID_REQUEST, format!("Invalid Request: {why}"))
    }

    /// -32601 "Method not found", naming it.
    pub fn method_not_found(method: &str) -> ErrorObject {
        ErrorObject::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// -32602 "Invalid params", with what was wrong.
    pub fn invalid_params(why: &str) -> ErrorObject {
        ErrorObject::new(INVALID_PARAMS, format!("Invalid params: {why}"))
    }
}

/// The `params` of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// No `params` member.
    None,
    /// By position: `"params": [1, 2]`.
    ByPosition(Vec<Value>),
    /// By name: `"params": {"a": 1, "b": 2}`.
    ByName(Map<String, Value>),
}

/// A valid request object.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method's name.
    pub method: String,
    /// Its parameters.
    pub params: Params,
    /// The id (a string, a number or null); `None` for a notification, which gets no reply.
    pub id: Option<Value>,
    /// The [`CLIENT_MEMBER`] extension: who sent it, for at-most-once calls.
    pub client: Option<String>,
}

impl Request {
    /// The request as one line of JSON, without the newline.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use rpc::wire::{Params, Request};
    /// let r = Request { method: "add".into(), params: Params::ByPosition(vec![1.into(), 2.into()]),
    ///                   id: Some(7.into()), client: None };
    /// assert_eq!(r.to_line(), r#"{"id":7,"jsonrpc":"2.0","method":"add","params":[1,2]}"#);
    /// ```
    pub fn to_line(&self) -> String {
        todo!(
            "part A: an object with jsonrpc, method, params (unless Params::None), id (unless None) and _client (unless None), as compact JSON"
        )
    }
}

/// A response object: the request's id and either a result or an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request it answers (null when that could not be read).
    pub id: Value,
    /// The `result` member, or the `error` member.
    pub outcome: Result<Value, ErrorObject>,
}

impl Response {
    /// An error response.
    pub fn error(id: Value, error: ErrorObject) -> Response {
        Response {
            id,
            outcome: Err(error),
        }
    }

    /// The response as a JSON value: `{"jsonrpc":"2.0","result":...,"id":...}` or
    /// `{"jsonrpc":"2.0","error":{"code":...,"message":...},"id":...}`.
    pub fn to_value(&self) -> Value {
        todo!("part A: jsonrpc 2.0, then result or error (never both), and id")
    }

    /// Reads a response object (what a client does with a reply).
    ///
    /// # Errors
    ///
    /// What is wrong with it, when it is not a JSON-RPC 2.0 response object.
    pub fn from_value(value: &Value) -> Result<Response, String> {
        todo!("part A: an object with jsonrpc 2.0, id, and exactly one of result and error")
    }
}

/// One element of a line: a valid request, or the error reply an invalid one gets.
pub type Entry = Result<Request, Response>;

/// What one line holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// One request object (or the error reply to an invalid one).
    Single(Entry),
    /// A non-empty batch, in order.
    Batch(Vec<Entry>),
    /// Not JSON, or an empty batch: this one reply, and nothing is executed.
    Reject(Response),
}

/// Parses one line (without its newline).
///
/// Bytes that are not UTF-8 or not one JSON text are a parse error; `[]` is an invalid
/// request (one error object, not an array); each element of a batch is checked alone by
/// [`parse_request`].
///
/// # Example
///
/// ```no_run
/// # use rpc::wire::{parse_line, Message, PARSE_ERROR};
/// let Message::Reject(r) = parse_line(b"{oops") else { panic!() };
/// assert_eq!(r.outcome.unwrap_err().code, PARSE_ERROR);
/// ```
pub fn parse_line(line: &[u8]) -> Message {
    todo!("part A: not JSON: Reject(-32700); []: Reject(-32600); an array: Batch; else Single")
}

/// Checks one request object. An invalid one gets a -32600 reply (even without an id) whose
/// id is the request's id when that id is valid, and null otherwise.
///
/// Valid: an object with `"jsonrpc": "2.0"`, a string `method`, `params` absent or an array
/// or an object, `id` absent (a notification) or a string, a number or null, and
/// [`CLIENT_MEMBER`] absent or a string. Other members are ignored.
///
/// # Errors
///
/// The -32600 response for an invalid request.
pub fn parse_request(value: Value) -> Result<Request, Response> {
    todo!("part A: check the object, the id, jsonrpc, method, params and _client, in that order")
}

/// The line (without newline) that answers `replies`: `None` when there is nothing to
/// send (only notifications), one object for a single request, an array for a batch.
pub fn encode_replies(replies: Vec<Response>, batch: bool) -> Option<String> {
    todo!("part A: None for no replies; an array for a batch; one object otherwise")
}
