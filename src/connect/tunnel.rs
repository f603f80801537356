//! Opening a tunnel through a proxy, sans-IO: [`Tunnel`] says what to send and how much to
//! read, and judges what the proxy answered; the blocking and tokio glue only move the bytes.
//!
//! Reads never go past the proxy's answer (the tunnel says how many bytes it may take), so the
//! bytes after it (the target's, once the tunnel is up) stay in the socket for TLS or the
//! WebSocket handshake.

use std::net::SocketAddr;

use super::http_connect::HttpConnect;
use super::proxy::{ProxyScheme, ProxyUrl};
use super::socks::Socks5;
use crate::driver::ProxyErrorKind;

/// Where the tunnel leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A host (name or IP literal without brackets) and port, for the proxy to resolve.
    Name(&'a str, u16),
    /// An address resolved here.
    Addr(SocketAddr),
}

/// What the glue does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write all these bytes to the proxy.
    Send(Vec<u8>),
    /// Read at least one and at most this many bytes, and pass them to
    /// [`Tunnel::receive`]; a read of zero bytes (end of stream) is
    /// [`ProxyErrorKind::Closed`].
    Receive(usize),
    /// The tunnel is up: the connection now leads to the target.
    Done,
}

/// The proxy's side of opening a tunnel: HTTP `CONNECT` or SOCKS5.
#[derive(Debug)]
pub(crate) enum Tunnel {
    Http(HttpConnect),
    Socks5(Socks5),
}

impl Tunnel {
    /// A tunnel through `proxy` to `target`; `max_head` bounds an HTTP proxy's answer head.
    ///
    /// # Errors
    ///
    /// [`ProxyErrorKind::Unsupported`] for a target SOCKS5 cannot name (a host name longer
    /// than 255 bytes) or credentials it cannot carry (longer than 255 bytes, or empty).
    pub(crate) fn new(
        proxy: &ProxyUrl,
        target: Target<'_>,
        max_head: usize,
    ) -> Result<Self, ProxyErrorKind> {
        Ok(match proxy.scheme() {
            ProxyScheme::Http => {
                Self::Http(HttpConnect::new(target, proxy.credentials(), max_head))
            }
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                Self::Socks5(Socks5::new(target, proxy.credentials())?)
            }
        })
    }

    /// What to do next.
    pub(crate) fn step(&mut self) -> Step {
        match self {
            Self::Http(t) => t.step(),
            Self::Socks5(t) => t.step(),
        }
    }

    /// Takes bytes read from the proxy (at most what [`Step::Receive`] allowed).
    ///
    /// # Errors
    ///
    /// What the answer means when it is not a way forward: a refusal, a failure code, or
    /// bytes that are not the protocol.
    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<(), ProxyErrorKind> {
        match self {
            Self::Http(t) => t.receive(bytes),
            Self::Socks5(t) => t.receive(bytes),
        }
    }
}

/// Runs `tunnel` against a scripted proxy: `answers` are what the proxy sends, each after the
/// client has sent something. Returns what the client sent and the result. Shared by the unit
/// tests of both protocols.
#[cfg(test)]
pub(crate) fn run_script(
    tunnel: &mut Tunnel,
    answer: &[u8],
    chunk: usize,
) -> (Vec<u8>, Result<usize, ProxyErrorKind>) {
    let mut sent = Vec::new();
    let mut pos = 0;
    loop {
        match tunnel.step() {
            Step::Send(bytes) => sent.extend_from_slice(&bytes),
            Step::Receive(max) => {
                assert!(max > 0);
                let n = max.min(chunk).min(answer.len() - pos);
                if n == 0 {
                    return (sent, Err(ProxyErrorKind::Closed));
                }
                if let Err(e) = tunnel.receive(&answer[pos..pos + n]) {
                    return (sent, Err(e));
                }
                pos += n;
            }
            Step::Done => return (sent, Ok(pos)),
        }
    }
}
