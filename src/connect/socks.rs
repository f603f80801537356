//! A tunnel through a SOCKS5 proxy (RFC 1928): the method negotiation, the username/password
//! sub-negotiation (RFC 1929) when the proxy URL has credentials, and `CONNECT` to a domain name
//! (`socks5h://`) or an address (`socks5://`, resolved here).

use std::net::IpAddr;

use super::tunnel::{Step, Target};
use crate::driver::ProxyErrorKind;

const VERSION: u8 = 0x05;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Greeting sent: VER, METHOD (2 bytes).
    Method,
    /// Username/password sent: VER, STATUS (2 bytes).
    Auth,
    /// Request sent: VER, REP, RSV, ATYP (4 bytes).
    ReplyHead,
    /// The length byte of a domain-name BND.ADDR.
    ReplyDomainLen,
    /// The rest of the reply: BND.ADDR (or its rest) and BND.PORT.
    ReplyRest,
    Done,
}

#[derive(Debug)]
pub(crate) struct Socks5 {
    phase: Phase,
    /// Bytes to send at the next step.
    out: Option<Vec<u8>>,
    /// The sub-negotiation, sent if the proxy picks username/password.
    auth: Option<Vec<u8>>,
    /// The CONNECT request, sent once the method is settled.
    connect: Vec<u8>,
    /// The current message so far, and its length.
    buf: Vec<u8>,
    want: usize,
}

impl Socks5 {
    pub(crate) fn new(
        target: Target<'_>,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, ProxyErrorKind> {
        let auth = credentials.map(auth_request).transpose()?;
        // Offer no authentication, and username/password when there are credentials.
        let greeting = if auth.is_some() {
            vec![VERSION, 2, NO_AUTH, USER_PASS]
        } else {
            vec![VERSION, 1, NO_AUTH]
        };
        Ok(Self {
            phase: Phase::Method,
            out: Some(greeting),
            auth,
            connect: connect_request(target)?,
            buf: Vec::new(),
            want: 2,
        })
    }

    pub(crate) fn step(&mut self) -> Step {
        if let Some(out) = self.out.take() {
            return Step::Send(out);
        }
        match self.phase {
            Phase::Done => Step::Done,
            _ => Step::Receive(self.want - self.buf.len()),
        }
    }

    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<(), ProxyErrorKind> {
        let room = self.want - self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.buf.len() < self.want {
            return Ok(());
        }
        let message = std::mem::take(&mut self.buf);
        match (self.phase, message.as_slice()) {
            (Phase::Method, &[VERSION, method]) => match (method, self.auth.take()) {
                (NO_AUTH, _) => self.request(),
                (USER_PASS, Some(auth)) => self.expect(Phase::Auth, Some(auth), 2),
                (NO_ACCEPTABLE, _) => return Err(ProxyErrorKind::SocksNoAcceptableMethod),
                _ => {
                    return Err(ProxyErrorKind::Malformed(
                        "SOCKS5 method that was not offered",
                    ))
                }
            },
            // RFC 1929 §2: VER is 1; some servers answer with 5, which is accepted.
            (Phase::Auth, &[0x01 | VERSION, status]) => match status {
                0 => self.request(),
                status => return Err(ProxyErrorKind::SocksAuth(status)),
            },
            (Phase::ReplyHead, &[VERSION, rep, _, atyp]) => {
                if rep != 0 {
                    return Err(ProxyErrorKind::Socks(rep));
                }
                match atyp {
                    ATYP_IPV4 => self.expect(Phase::ReplyRest, None, 4 + 2),
                    ATYP_IPV6 => self.expect(Phase::ReplyRest, None, 16 + 2),
                    ATYP_DOMAIN => self.expect(Phase::ReplyDomainLen, None, 1),
                    _ => return Err(ProxyErrorKind::Malformed("SOCKS5 reply address type")),
                }
            }
            (Phase::ReplyDomainLen, &[len]) => {
                self.expect(Phase::ReplyRest, None, usize::from(len) + 2);
            }
            (Phase::ReplyRest, _) => self.phase = Phase::Done,
            _ => return Err(ProxyErrorKind::Malformed("not a SOCKS5 answer")),
        }
        Ok(())
    }

    /// Sends the CONNECT request and waits for the reply's head.
    fn request(&mut self) {
        let connect = std::mem::take(&mut self.connect);
        self.expect(Phase::ReplyHead, Some(connect), 4);
    }

    fn expect(&mut self, phase: Phase, send: Option<Vec<u8>>, want: usize) {
        self.phase = phase;
        self.out = send;
        self.want = want;
    }
}

/// RFC 1929 §2: VER 1, ULEN, UNAME, PLEN, PASSWD; each 1 to 255 bytes.
fn auth_request((user, password): (&str, &str)) -> Result<Vec<u8>, ProxyErrorKind> {
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len())) else {
        return Err(ProxyErrorKind::Unsupported(
            "SOCKS5 user name or password longer than 255 bytes",
        ));
    };
    if ulen == 0 || plen == 0 {
        return Err(ProxyErrorKind::Unsupported(
            "SOCKS5 username/password authentication with an empty user name or password",
        ));
    }
    let mut out = Vec::with_capacity(3 + user.len() + password.len());
    out.extend_from_slice(&[0x01, ulen]);
    out.extend_from_slice(user.as_bytes());
    out.push(plen);
    out.extend_from_slice(password.as_bytes());
    Ok(out)
}

/// RFC 1928 §4: VER, CMD CONNECT, RSV, ATYP, DST.ADDR, DST.PORT. A name that is an IP literal
/// goes as an address.
fn connect_request(target: Target<'_>) -> Result<Vec<u8>, ProxyErrorKind> {
    let mut out = vec![VERSION, CONNECT, 0x00];
    let port = match target {
        Target::Addr(addr) => {
            put_ip(&mut out, addr.ip());
            addr.port()
        }
        Target::Name(host, port) => {
            match host.parse::<IpAddr>() {
                Ok(ip) => put_ip(&mut out, ip),
                Err(_) => {
                    let Ok(len) = u8::try_from(host.len()) else {
                        return Err(ProxyErrorKind::Unsupported(
                            "SOCKS5 host name longer than 255 bytes",
                        ));
                    };
                    out.extend_from_slice(&[ATYP_DOMAIN, len]);
                    out.extend_from_slice(host.as_bytes());
                }
            }
            port
        }
    };
    out.extend_from_slice(&port.to_be_bytes());
    Ok(out)
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
}

/// Whether a SOCKS5 failure is about the address asked for (another address of the same host
/// may work): network or host unreachable, connection refused, TTL expired, address type not
/// supported.
pub(crate) fn try_next_address(kind: &ProxyErrorKind) -> bool {
    matches!(kind, ProxyErrorKind::Socks(0x03..=0x06 | 0x08))
}

#[cfg(test)]
mod tests {
    use super::super::tunnel::{run_script, Tunnel};
    use super::*;
    use proptest::prelude::*;

    const OK_V4: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];

    fn tunnel(target: Target<'_>, credentials: Option<(&str, &str)>) -> Tunnel {
        Tunnel::Socks5(Socks5::new(target, credentials).unwrap())
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn no_auth_domain() {
        let mut t = tunnel(Target::Name("example.com", 443), None);
        let wire = cat(&[&[5, 0], OK_V4, b"target"]);
        let (sent, result) = run_script(&mut t, &wire, 1);
        assert_eq!(result.unwrap(), 2 + OK_V4.len());
        let mut expected = vec![5, 1, 0, 5, 1, 0, 3, 11];
        expected.extend_from_slice(b"example.com");
        expected.extend_from_slice(&[0x01, 0xbb]);
        assert_eq!(sent, expected);
    }

    #[test]
    fn addresses_and_literals() {
        let v4 = Target::Addr("127.0.0.1:9001".parse().unwrap());
        let (sent, _) = run_script(&mut tunnel(v4, None), &[5, 0], 64);
        assert_eq!(&sent[3..], &[5, 1, 0, 1, 127, 0, 0, 1, 0x23, 0x29]);
        let v6 = Target::Name("::1", 80);
        let (sent, _) = run_script(&mut tunnel(v6, None), &[5, 0], 64);
        let mut expected = vec![5, 1, 0, 4];
        expected.extend_from_slice(&[0; 15]);
        expected.extend_from_slice(&[1, 0, 80]);
        assert_eq!(&sent[3..], &expected[..]);
    }

    #[test]
    fn username_password() {
        let mut t = tunnel(Target::Name("h", 1), Some(("user", "pass")));
        let wire = cat(&[&[5, 2], &[1, 0], OK_V4]);
        let (sent, result) = run_script(&mut t, &wire, 3);
        assert_eq!(result.unwrap(), wire.len());
        assert_eq!(&sent[..4], &[5, 2, 0, 2]);
        assert_eq!(&sent[4..15], b"\x01\x04user\x04pass");
        assert_eq!(&sent[15..18], &[5, 1, 0]);
        // The proxy may still pick no authentication.
        let mut t = tunnel(Target::Name("h", 1), Some(("user", "pass")));
        let (sent, result) = run_script(&mut t, &cat(&[&[5, 0], OK_V4]), 64);
        assert!(result.is_ok());
        assert_eq!(&sent[4..7], &[5, 1, 0]);
    }

    #[test]
    fn reply_with_domain_and_ipv6_addresses() {
        let domain = cat(&[&[5, 0], &[5, 0, 0, 3, 4], b"host", &[0, 80], b"after"]);
        let v6 = cat(&[&[5, 0], &[5, 0, 0, 4], &[0; 16], &[0, 80], b"after"]);
        for wire in [domain, v6] {
            for chunk in [1, 2, 7, 100] {
                let mut t = tunnel(Target::Name("h", 1), None);
                assert_eq!(run_script(&mut t, &wire, chunk).1.unwrap(), wire.len() - 5);
            }
        }
    }

    #[test]
    fn failures_are_typed() {
        for code in 1..=8u8 {
            let mut t = tunnel(Target::Name("h", 1), None);
            // A failure may come without the address.
            let result = run_script(&mut t, &[5, 0, 5, code, 0, 1], 64).1;
            assert!(
                matches!(result, Err(ProxyErrorKind::Socks(c)) if c == code),
                "{result:?}"
            );
        }
        let no_method = run_script(&mut tunnel(Target::Name("h", 1), None), &[5, 0xff], 64).1;
        assert!(matches!(
            no_method,
            Err(ProxyErrorKind::SocksNoAcceptableMethod)
        ));
        let wrong = run_script(
            &mut tunnel(Target::Name("h", 1), Some(("u", "p"))),
            &[5, 2, 1, 1],
            64,
        )
        .1;
        assert!(
            matches!(wrong, Err(ProxyErrorKind::SocksAuth(1))),
            "{wrong:?}"
        );
        // Username/password picked although not offered.
        let unasked = run_script(&mut tunnel(Target::Name("h", 1), None), &[5, 2], 64).1;
        assert!(matches!(unasked, Err(ProxyErrorKind::Malformed(_))));
        for garbage in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            &[4, 0],
            &[5, 0, 4, 0, 0, 1],
        ] {
            let result = run_script(&mut tunnel(Target::Name("h", 1), None), garbage, 64).1;
            assert!(
                matches!(result, Err(ProxyErrorKind::Malformed(_))),
                "{garbage:?}"
            );
        }
        let bad_atyp = run_script(
            &mut tunnel(Target::Name("h", 1), None),
            &[5, 0, 5, 0, 0, 9],
            64,
        );
        assert!(matches!(bad_atyp.1, Err(ProxyErrorKind::Malformed(_))));
        for short in [&[][..], &[5], &[5, 0, 5, 0, 0, 1, 127]] {
            let result = run_script(&mut tunnel(Target::Name("h", 1), None), short, 64).1;
            assert!(matches!(result, Err(ProxyErrorKind::Closed)), "{short:?}");
        }
    }

    #[test]
    fn limits_of_socks5() {
        let long = "a".repeat(256);
        assert!(matches!(
            Socks5::new(Target::Name(&long, 1), None),
            Err(ProxyErrorKind::Unsupported(_))
        ));
        assert!(Socks5::new(Target::Name(&long[..255], 1), None).is_ok());
        for creds in [(&long[..], "p"), ("u", &long[..]), ("", "p"), ("u", "")] {
            assert!(matches!(
                Socks5::new(Target::Name("h", 1), Some(creds)),
                Err(ProxyErrorKind::Unsupported(_))
            ));
        }
    }

    #[test]
    fn which_failures_try_the_next_address() {
        assert!(try_next_address(&ProxyErrorKind::Socks(5)));
        assert!(try_next_address(&ProxyErrorKind::Socks(4)));
        assert!(!try_next_address(&ProxyErrorKind::Socks(2)));
        assert!(!try_next_address(&ProxyErrorKind::SocksAuth(1)));
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic_nor_overread(
            answer in proptest::collection::vec(any::<u8>(), 0..64),
            chunk in 1usize..16,
            creds: bool,
        ) {
            let creds = creds.then_some(("u", "p"));
            let mut t = tunnel(Target::Name("example.com", 80), creds);
            let (_, result) = run_script(&mut t, &answer, chunk);
            if let Ok(used) = result {
                prop_assert!(used <= answer.len());
                prop_assert!(used >= 2 + 4 + 1 + 2);
            }
        }
    }
}
