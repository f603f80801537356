//! A tunnel through an HTTP proxy: `CONNECT host:port` (RFC 9110 §9.3.6), with
//! `Proxy-Authorization: Basic` (RFC 7617) when the proxy URL has credentials, and the proxy's
//! answer head judged: any 2xx opens the tunnel.

use base64::Engine as _;

use super::tunnel::{Step, Target};
use crate::driver::ProxyErrorKind;
use crate::frame::Status;
use crate::handshake::{head_window, incomplete, with_header_slots};

/// Header fields an answer head may have (a `CONNECT` answer has a few).
const MAX_FIELDS: usize = 64;

#[derive(Debug)]
pub(crate) struct HttpConnect {
    /// The request, until it is sent.
    request: Option<Vec<u8>>,
    /// The answer head so far.
    head: Vec<u8>,
    max_head: usize,
    done: bool,
}

impl HttpConnect {
    pub(crate) fn new(
        target: Target<'_>,
        credentials: Option<(&str, &str)>,
        max_head: usize,
    ) -> Self {
        Self {
            request: Some(request(target, credentials)),
            head: Vec::new(),
            max_head,
            done: false,
        }
    }

    pub(crate) fn step(&mut self) -> Step {
        if let Some(request) = self.request.take() {
            return Step::Send(request);
        }
        if self.done {
            return Step::Done;
        }
        // Never past the head: one byte when it may end with the next, else two.
        match incomplete::<()>(&self.head, self.max_head) {
            Ok(Status::Partial { needed }) => Step::Receive(needed),
            // Over the limit: `receive` has failed already; ask for one byte to fail again.
            _ => Step::Receive(1),
        }
    }

    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<(), ProxyErrorKind> {
        self.head.extend_from_slice(bytes);
        let window = head_window(&self.head, self.max_head);
        let parsed = with_header_slots(window.len(), MAX_FIELDS, |slots| {
            let mut answer = httparse::Response::new(slots);
            Ok(match answer.parse(window)? {
                httparse::Status::Complete(_) => answer.code,
                httparse::Status::Partial => None,
            })
        });
        let status = match parsed {
            Ok(Some(status)) => status,
            Ok(None) => {
                return match incomplete::<()>(&self.head, self.max_head) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(ProxyErrorKind::TooLarge { max: self.max_head }),
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ProxyErrorKind::Malformed("too many header fields"))
            }
            Err(_) => return Err(ProxyErrorKind::Malformed("not an HTTP answer")),
        };
        match status {
            200..=299 => {
                self.done = true;
                Ok(())
            }
            401 | 407 => Err(ProxyErrorKind::AuthRequired { status }),
            403 => Err(ProxyErrorKind::Forbidden),
            status => Err(ProxyErrorKind::Status(status)),
        }
    }
}

/// `CONNECT authority HTTP/1.1` with `Host` (RFC 9110 §9.3.6: the authority form, an IPv6
/// address in brackets) and `Proxy-Authorization` for credentials.
fn request(target: Target<'_>, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let authority = match target {
        Target::Name(host, port) if host.contains(':') => format!("[{host}]:{port}"),
        Target::Name(host, port) => format!("{host}:{port}"),
        Target::Addr(addr) => addr.to_string(),
    };
    let mut out = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        out.push_str("Proxy-Authorization: Basic ");
        out.push_str(&token);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::tunnel::{run_script, Tunnel};
    use super::*;
    use proptest::prelude::*;

    fn tunnel(target: Target<'_>, credentials: Option<(&str, &str)>) -> Tunnel {
        Tunnel::Http(HttpConnect::new(target, credentials, 8192))
    }

    fn run(answer: &[u8]) -> Result<usize, ProxyErrorKind> {
        run_script(
            &mut tunnel(Target::Name("example.com", 443), None),
            answer,
            4096,
        )
        .1
    }

    #[test]
    fn request_has_authority_and_host() {
        let (sent, _) = run_script(&mut tunnel(Target::Name("example.com", 443), None), b"", 1);
        assert_eq!(
            sent,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        let (sent, _) = run_script(&mut tunnel(Target::Name("::1", 9001), None), b"", 1);
        assert_eq!(
            sent,
            b"CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n"
        );
        let addr = Target::Addr("[fe80::1]:80".parse().unwrap());
        let (sent, _) = run_script(&mut tunnel(addr, None), b"", 1);
        assert!(sent.starts_with(b"CONNECT [fe80::1]:80 HTTP/1.1\r\n"));
    }

    #[test]
    fn basic_credentials() {
        // RFC 7617 §2's example: Aladdin / open sesame.
        let creds = Some(("Aladdin", "open sesame"));
        let (sent, _) = run_script(&mut tunnel(Target::Name("h", 1), creds), b"", 1);
        let sent = String::from_utf8(sent).unwrap();
        assert!(
            sent.contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            "{sent}"
        );
        assert!(sent.ends_with("\r\n\r\n"));
    }

    #[test]
    fn any_2xx_opens_the_tunnel_and_nothing_after_the_head_is_read() {
        let answers: [&[u8]; 4] = [
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n",
            b"HTTP/1.1 204 No Content\n\n",
            b"HTTP/1.1 299 Fine\r\n\n",
        ];
        for answer in answers {
            let mut wire = answer.to_vec();
            wire.extend_from_slice(b"\x16\x03\x01 target bytes");
            for chunk in [1, 2, 4096] {
                let mut t = tunnel(Target::Name("h", 1), None);
                assert_eq!(run_script(&mut t, &wire, chunk).1.unwrap(), answer.len());
                assert_eq!(t.step(), Step::Done);
            }
        }
    }

    #[test]
    fn refusals_are_typed() {
        type Check = fn(&ProxyErrorKind) -> bool;
        let cases: [(&[u8], Check); 7] = [
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
                |e| matches!(e, ProxyErrorKind::AuthRequired { status: 407 }),
            ),
            (b"HTTP/1.0 401 Unauthorized\r\n\r\n", |e| {
                matches!(e, ProxyErrorKind::AuthRequired { status: 401 })
            }),
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", |e| {
                matches!(e, ProxyErrorKind::Forbidden)
            }),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", |e| {
                matches!(e, ProxyErrorKind::Status(502))
            }),
            (b"HTTP/1.1 101 Switching\r\n\r\n", |e| {
                matches!(e, ProxyErrorKind::Status(101))
            }),
            (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", |e| {
                matches!(e, ProxyErrorKind::Malformed(_))
            }),
            (b"\x05\x00", |e| matches!(e, ProxyErrorKind::Malformed(_))),
        ];
        for (answer, expected) in cases {
            let e = run(answer).unwrap_err();
            assert!(expected(&e), "{:?}: {e:?}", String::from_utf8_lossy(answer));
        }
    }

    #[test]
    fn closed_before_the_head_ends() {
        assert!(matches!(run(b""), Err(ProxyErrorKind::Closed)));
        assert!(matches!(
            run(b"HTTP/1.1 200 OK\r\n"),
            Err(ProxyErrorKind::Closed)
        ));
    }

    #[test]
    fn endless_head_is_bounded() {
        let mut t = Tunnel::Http(HttpConnect::new(Target::Name("h", 1), None, 256));
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() < 10_000 {
            endless.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaa\r\n");
        }
        let (_, result) = run_script(&mut t, &endless, 4096);
        assert!(
            matches!(result, Err(ProxyErrorKind::TooLarge { max: 256 })),
            "{result:?}"
        );
        // Nothing long without a line end either.
        let mut t = Tunnel::Http(HttpConnect::new(Target::Name("h", 1), None, 256));
        let (_, result) = run_script(&mut t, &[b'a'; 1000], 4096);
        assert!(
            matches!(
                result,
                Err(ProxyErrorKind::Malformed(_) | ProxyErrorKind::TooLarge { .. })
            ),
            "{result:?}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic_nor_overread(
            answer in proptest::collection::vec(any::<u8>(), 0..300),
            chunk in 1usize..64,
        ) {
            let mut t = tunnel(Target::Name("h", 1), None);
            let (_, result) = run_script(&mut t, &answer, chunk);
            if let Ok(used) = result {
                prop_assert!(used <= answer.len());
                let head = &answer[..used];
                prop_assert!(head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"));
            }
        }

        #[test]
        fn status_decides(status in 100u16..1000, chunk in 1usize..16) {
            let answer = format!("HTTP/1.1 {status} Reason\r\nA: b\r\n\r\nrest");
            let mut t = tunnel(Target::Name("h", 1), None);
            let (_, result) = run_script(&mut t, answer.as_bytes(), chunk);
            let expected = match status {
                200..=299 => "ok",
                401 | 407 => "auth",
                403 => "forbidden",
                _ => "status",
            };
            let got = match result {
                Ok(used) if used == answer.len() - 4 => "ok",
                Err(ProxyErrorKind::AuthRequired { status: s }) if s == status => "auth",
                Err(ProxyErrorKind::Forbidden) => "forbidden",
                Err(ProxyErrorKind::Status(s)) if s == status => "status",
                _ => "wrong",
            };
            prop_assert_eq!(got, expected);
        }
    }
}
