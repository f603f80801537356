//! `Request::parse` (the server side of the opening handshake) on arbitrary bytes.
//!
//! The first byte picks the limits (`max_header_bytes`, `max_headers`); the rest is the buffer.
//!
//! Properties:
//! - no panic, and only the errors `Request::parse` documents;
//! - `Partial { needed }`: `needed` is 1 or 2, the buffer is within `max_header_bytes`, and it
//!   holds no empty line (no `\n\n` or `\n\r\n`); `HeadTooLarge` only for a head or buffer over
//!   the limit;
//! - `Complete((request, used))`: `used` ≤ the buffer and the limit, the head ends with `\n`, the
//!   same request comes from the head alone and with larger limits, and the head without its
//!   last byte is `Partial` with a `needed` no larger than what is missing;
//! - the request is consistent (GET, a non-empty path starting with `/`, a valid 24-byte key),
//!   and `Accept::new()` (also with the first offered subprotocol and the offered extensions)
//!   validates and encodes a response that `Response::parse` accepts for a client that offered
//!   what the request offered with the request's key, using exactly the response's bytes.
#![no_main]

use hybi::frame::Status;
use hybi::HandshakeError;
use hybi::{Accept, ClientRequest, Request, Response};
use hybi_fuzz::has_empty_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    let max_bytes = [64, 256, 1024, 8192][usize::from(sel & 3)];
    let max_headers = [0, 3, 8, 64][usize::from(sel >> 2 & 3)];
    let result = Request::parse(buf, max_bytes, max_headers);
    match &result {
        Ok(Status::Partial { needed }) => {
            assert!(matches!(needed, 1 | 2));
            assert!(buf.len() <= max_bytes);
            assert!(
                !has_empty_line(buf),
                "Partial for a buffer with an empty line"
            );
        }
        Ok(Status::Complete((req, used))) => {
            let used = *used;
            assert!(used <= buf.len() && used <= max_bytes);
            assert!(buf[..used].ends_with(b"\n"));
            assert!(has_empty_line(&buf[..used]));
            assert_eq!(req.method(), "GET");
            assert!(req.path().starts_with('/'));
            assert_eq!(req.key().map(str::len), Some(24));
            assert!(req.headers().count() <= max_headers);
            assert_eq!(Request::parse(&buf[..used], max_bytes, max_headers), result);
            assert_eq!(Request::parse(buf, 1 << 20, 1000), result);
            match Request::parse(&buf[..used - 1], max_bytes, max_headers) {
                Ok(Status::Partial { needed }) => assert!(needed <= 1),
                other => panic!("head minus one byte: {other:?}"),
            }
            check_accept(req);
        }
        Err(e) => match e {
            HandshakeError::HeadTooLarge { max } => {
                assert_eq!(*max, max_bytes);
                assert!(buf.len() > max_bytes);
            }
            HandshakeError::TooManyHeaders { max } => assert_eq!(*max, max_headers),
            HandshakeError::Malformed(_)
            | HandshakeError::MethodNotGet
            | HandshakeError::UnsupportedHttpVersion
            | HandshakeError::MissingHost
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::MissingKey
            | HandshakeError::InvalidKey
            | HandshakeError::UnsupportedVersion => {
                // The server's error answer is a well-formed HTTP response with that status.
                let answer = e.response();
                let mut fields = [httparse::EMPTY_HEADER; 8];
                let mut resp = httparse::Response::new(&mut fields);
                let n = match resp.parse(&answer) {
                    Ok(httparse::Status::Complete(n)) => n,
                    other => panic!("bad error response {other:?}"),
                };
                assert_eq!(resp.code, Some(e.http_status()));
                assert!(n < answer.len());
            }
            other => panic!("undocumented request error {other:?}"),
        },
    }
});

/// A request that parsed is one a server can accept, and the client accepts that answer.
fn check_accept(req: &Request) {
    let mut client = ClientRequest::new("ws://example.com/").unwrap();
    for p in req.protocols() {
        client = client.protocol(p.clone());
    }
    for e in req.extensions() {
        client = client.extension(e.clone());
    }
    let mut answers = vec![Accept::new()];
    if let Some(p) = req.protocols().first() {
        answers.push(Accept::new().protocol(p.clone()));
    }
    // Without and with permessage-deflate on the server: what it negotiates from the offer,
    // the client (which offered the same) accepts.
    let configs = [
        hybi::Config::default(),
        hybi::Config::default().with_deflate(hybi::DeflateConfig::default()),
    ];
    for accept in answers {
        assert_eq!(accept.validate(req), Ok(()), "{accept:?} for {req:?}");
        for config in &configs {
            let negotiated = hybi::Negotiated::new(req, accept.clone(), config).unwrap();
            let mut out = Vec::new();
            negotiated.encode(&mut out);
            // The client reads the answer with frames pipelined after it.
            let len = out.len();
            out.extend_from_slice(&[0x81, 0x00]);
            let key = req.key().unwrap_or_default();
            match Response::parse(&out, &client, key, 1 << 20, 1000) {
                Ok(Status::Complete((resp, used))) => {
                    assert_eq!(used, len);
                    assert_eq!(resp.status(), 101);
                    assert_eq!(resp.protocol(), accept.selected_protocol());
                    assert_eq!(resp.extensions(), negotiated.extensions());
                }
                other => panic!("client refused {negotiated:?} for {req:?}: {other:?}"),
            }
        }
    }
}
