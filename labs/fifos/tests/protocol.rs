//! Part A: requests and replies on the wire, and the decoder that cuts a byte stream into
//! lines. Pure functions: no process, no FIFO.

use std::path::Path;

use fifos::protocol::{
    BadRequest, Decoder, MAX_LINE, Rejected, Reply, Request, client_fifo, parse_request,
    server_fifo,
};
use rstest::rstest;

/// The two FIFOs of a service directory have fixed names.
#[test]
fn fifo_paths_part_a() {
    let dir = Path::new("/srv/seq");
    assert_eq!(server_fifo(dir), Path::new("/srv/seq/seqnum.fifo"));
    assert_eq!(client_fifo(dir, 412), Path::new("/srv/seq/client.412.fifo"));
}

/// A request goes on the wire as `<pid> <count>\n`.
#[test]
fn request_line_part_a() {
    let req = Request {
        pid: 412,
        count: 10,
    };
    assert_eq!(req.to_line(), "412 10\n");
}

/// Well-formed lines parse.
#[rstest]
#[case::small(b"412 10", 412, 10)]
#[case::count_one(b"1 1", 1, 1)]
#[case::count_max(b"99999 1000000", 99999, 1_000_000)]
#[case::largest_pid(b"2147483647 3", 2_147_483_647, 3)]
fn parses_requests_part_a(#[case] line: &[u8], #[case] pid: u32, #[case] count: u64) {
    assert_eq!(
        parse_request(line),
        Ok(Request { pid, count }),
        "{:?}",
        String::from_utf8_lossy(line)
    );
}

/// Bad lines are rejected with the reason, and with the pid when the first field is one.
#[rstest]
#[case::count_zero(b"412 0", Some(412), BadRequest::BadCount)]
#[case::count_too_big(b"412 1000001", Some(412), BadRequest::BadCount)]
#[case::count_not_a_number(b"412 ten", Some(412), BadRequest::BadCount)]
#[case::negative_count(b"412 -3", Some(412), BadRequest::BadCount)]
#[case::no_count(b"412", Some(412), BadRequest::Malformed)]
#[case::three_fields(b"412 5 6", Some(412), BadRequest::Malformed)]
#[case::empty(b"", None, BadRequest::Malformed)]
#[case::pid_zero(b"0 5", None, BadRequest::BadPid)]
#[case::pid_not_a_number(b"me 5", None, BadRequest::BadPid)]
#[case::pid_too_big(b"2147483648 5", None, BadRequest::BadPid)]
fn rejects_requests_part_a(
    #[case] line: &[u8],
    #[case] pid: Option<u32>,
    #[case] reason: BadRequest,
) {
    assert_eq!(
        parse_request(line),
        Err(Rejected { pid, reason }),
        "{:?}",
        String::from_utf8_lossy(line)
    );
}

/// Replies go on the wire as `<start>\n` and `error <reason>\n`, and parse back.
#[rstest]
#[case::start(Reply::Start(0), "0\n")]
#[case::big_start(Reply::Start(123_456_789), "123456789\n")]
#[case::error(Reply::Error("bad pid".into()), "error bad pid\n")]
fn reply_lines_part_a(#[case] reply: Reply, #[case] line: &str) {
    assert_eq!(reply.to_line(), line);
    assert_eq!(
        Reply::parse(line.trim_end_matches('\n').as_bytes()),
        Some(reply)
    );
}

/// Anything else is not a reply.
#[rstest]
#[case::empty(b"")]
#[case::words(b"forty-two")]
#[case::negative(b"-1")]
fn not_replies_part_a(#[case] line: &[u8]) {
    assert_eq!(
        Reply::parse(line),
        None,
        "{:?}",
        String::from_utf8_lossy(line)
    );
}

/// One read may hold several lines, and end in the middle of one.
#[test]
fn decoder_cuts_lines_part_a() {
    let mut d = Decoder::new();
    assert_eq!(
        d.feed(b"1 2\n3 4\n5"),
        [
            Ok(Request { pid: 1, count: 2 }),
            Ok(Request { pid: 3, count: 4 })
        ]
    );
    assert_eq!(d.feed(b" 6"), []);
    assert_eq!(d.feed(b"\n"), [Ok(Request { pid: 5, count: 6 })]);
}

/// Bad lines come out as rejections, in order with the good ones.
#[test]
fn decoder_keeps_order_part_a() {
    let mut d = Decoder::new();
    assert_eq!(
        d.feed(b"7 0\n\n8 1\n"),
        [
            Err(Rejected {
                pid: Some(7),
                reason: BadRequest::BadCount
            }),
            Err(Rejected {
                pid: None,
                reason: BadRequest::Malformed
            }),
            Ok(Request { pid: 8, count: 1 }),
        ]
    );
}

/// A line longer than MAX_LINE is rejected as too long (with its pid), and the next line
/// is read normally.
#[test]
fn decoder_rejects_long_lines_part_a() {
    let mut d = Decoder::new();
    let mut long = b"412 ".to_vec();
    long.extend(std::iter::repeat_n(b'5', 10 * MAX_LINE));
    long.push(b'\n');
    assert_eq!(
        d.feed(&long),
        [Err(Rejected {
            pid: Some(412),
            reason: BadRequest::TooLong
        })]
    );
    assert_eq!(d.feed(b"9 9\n"), [Ok(Request { pid: 9, count: 9 })]);
}
