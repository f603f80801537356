//! The opening handshake of a connection (RFC 6455 §4, RFC 8441, RFC 7692 §5-§7): the
//! constructors, reading the request (server) or the response (client), the application's
//! decision, and [`Negotiated`], the one place where a server settles subprotocol and
//! extensions, whether the handshake arrived as bytes or through an HTTP stack.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::BufMut;

use super::{Connection, Event, Failure, Handshake, Handshaking, Initiator, Phase};
use crate::config::Config;
use crate::error::UsageError;
use crate::extensions::deflate::{self, Deflate, Params};
use crate::frame::Status;
use crate::handshake::{
    accept_key_bytes, put_header, Accept, ClientRequest, HandshakeError, HttpVersion, Reject,
    Request, Response,
};
use crate::role::Role;

/// A server's answer to an opening handshake, negotiated against its [`Config`]: the response
/// to send and what the connection will use (subprotocol, permessage-deflate).
///
/// [`Connection::accept`] uses it for a handshake the connection read itself; an HTTP stack
/// that parsed the request (hyper, axum, an HTTP/2 server) builds the [`Request`] with
/// [`Request::from_head`], sends the response from [`status`](Self::status) and
/// [`headers`](Self::headers), and opens the connection with [`Connection::accepted`].
///
/// ```
/// use hybi::handshake::HttpVersion;
/// use hybi::{Accept, Config, Connection, DeflateConfig, Negotiated, Request, State};
/// let fields: [(&str, &[u8]); 6] = [
///     ("host", b"example.com"),
///     ("upgrade", b"websocket"),
///     ("connection", b"Upgrade"),
///     ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
///     ("sec-websocket-version", b"13"),
///     ("sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
/// ];
/// let request = Request::from_head("GET", "/chat", HttpVersion::Http11, fields)?;
/// let config = Config::default().with_deflate(DeflateConfig::default());
/// let negotiated = Negotiated::new(&request, Accept::new(), &config)?;
/// assert_eq!(negotiated.status(), 101);
/// let headers: Vec<_> = negotiated.headers().collect();
/// assert!(headers.contains(&("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
/// assert_eq!(negotiated.extensions(), ["permessage-deflate"]);
/// let conn = Connection::accepted(config, &negotiated);
/// assert_eq!(conn.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    version: HttpVersion,
    /// `Sec-WebSocket-Accept`, over HTTP/1.1.
    accept_key: Option<[u8; 28]>,
    protocol: Option<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
    deflate: Option<Params>,
}

impl Negotiated {
    /// Settles the answer to `request`: the subprotocol the [`Accept`] names (or, when it
    /// names none, the first one the client offered that is in [`Config::protocols`]), and
    /// permessage-deflate when [`Config::deflate`] is set and the client offered it.
    ///
    /// # Errors
    ///
    /// [`UsageError::ProtocolNotOffered`] if the chosen subprotocol was not offered, and
    /// [`UsageError::InvalidHeader`] for an extra header that cannot be sent.
    pub fn new(request: &Request, accept: Accept, config: &Config) -> Result<Self, UsageError> {
        accept.validate(request)?;
        let protocol = accept.selected_protocol().map(String::from).or_else(|| {
            request
                .protocols()
                .iter()
                .find(|p| config.protocols().contains(p))
                .cloned()
        });
        let mut extensions = Vec::new();
        let mut params = None;
        if let Some(d) = config.deflate().filter(|_| cfg!(feature = "deflate")) {
            if let Some((answer, p)) = deflate::negotiate_server(request.extensions(), d) {
                extensions.push(answer);
                params = Some(p);
            }
        }
        Ok(Self {
            version: request.version(),
            accept_key: request.key().map(|k| accept_key_bytes(k.as_bytes())),
            protocol,
            extensions,
            headers: accept
                .headers()
                .map(|(n, v)| (String::from(n), String::from(v)))
                .collect(),
            deflate: params,
        })
    }

    /// The status to answer with: 101 (Switching Protocols) over HTTP/1.1, 200 over HTTP/2.
    pub fn status(&self) -> u16 {
        match self.version {
            HttpVersion::Http11 => 101,
            HttpVersion::Http2 => 200,
        }
    }

    /// The subprotocol chosen, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extensions accepted, as `Sec-WebSocket-Extensions` elements.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The response header fields to send with [`status`](Self::status), in order: over
    /// HTTP/1.1 `Upgrade`, `Connection` and `Sec-WebSocket-Accept` (§4.2.2 step 5); then
    /// `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when negotiated, then the
    /// [`Accept`]'s extra headers.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let upgrade = self
            .accept_key
            .as_ref()
            .map(|key| {
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    // Base64 is ASCII.
                    (
                        "Sec-WebSocket-Accept",
                        core::str::from_utf8(key).unwrap_or_default(),
                    ),
                ]
            })
            .into_iter()
            .flatten();
        let protocol = self.protocol().map(|p| ("Sec-WebSocket-Protocol", p));
        let extensions = self
            .extensions
            .iter()
            .map(|e| ("Sec-WebSocket-Extensions", e.as_str()));
        upgrade
            .chain(protocol)
            .chain(extensions)
            .chain(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// Appends the HTTP/1.1 response head (status line, [`headers`](Self::headers), empty
    /// line), for a server that writes its own bytes.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in self.headers() {
            put_header(dst, name, value.as_bytes());
        }
        dst.put_slice(b"\r\n");
    }
}

/// The client's side of an opening handshake that an HTTP stack carries: an HTTP/2 extended
/// CONNECT (RFC 8441: many WebSockets on one connection), or an HTTP/1.1 upgrade sent by an
/// HTTP client library. The stack sends [`method`](Self::method) to the request's path with
/// [`headers`](Self::headers) (and, over HTTP/2, `:protocol: websocket`), then gives the
/// response to [`finish`](Self::finish), which checks it and opens the connection with what
/// was negotiated (subprotocol, permessage-deflate).
///
/// ```
/// use hybi::handshake::HttpVersion;
/// use hybi::{ClientHandshake, ClientRequest, Config, DeflateConfig, State};
/// let config = Config::default().with_protocols(["chat"]).with_deflate(DeflateConfig::default());
/// let request = ClientRequest::new("wss://example.com/chat")?;
/// let handshake = ClientHandshake::new(request, config, HttpVersion::Http2);
/// assert_eq!(handshake.method(), "CONNECT");
/// let headers = handshake.headers();
/// assert!(headers.contains(&("sec-websocket-version".into(), "13".into())));
/// assert!(headers.contains(&("sec-websocket-protocol".into(), "chat".into())));
/// // The server's 200, with what it chose.
/// let fields: [(&str, &[u8]); 2] = [
///     ("sec-websocket-protocol", b"chat"),
///     ("sec-websocket-extensions", b"permessage-deflate"),
/// ];
/// let (conn, response) = handshake.finish(200, fields)?;
/// assert_eq!((conn.state(), conn.protocol()), (State::Open, Some("chat")));
/// assert_eq!(response.extensions(), ["permessage-deflate"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    version: HttpVersion,
    request: ClientRequest,
    /// `Sec-WebSocket-Key`, over HTTP/1.1.
    key: Option<String>,
    config: Config,
}

impl ClientHandshake {
    /// The handshake for `request` over `version`, offering what `config` turns on (its
    /// subprotocols, permessage-deflate) besides what the request offers itself.
    pub fn new(request: ClientRequest, config: Config, version: HttpVersion) -> Self {
        let request = with_offers(request, &config);
        let key = (version == HttpVersion::Http11).then(|| {
            let mut nonce = [0u8; 16];
            config.mask_source().fill(&mut nonce);
            crate::handshake::encode_key(&nonce)
        });
        Self {
            version,
            request,
            key,
            config,
        }
    }

    /// The request, with the config's offers added.
    pub fn request(&self) -> &ClientRequest {
        &self.request
    }

    /// The method to send: `GET` over HTTP/1.1, `CONNECT` over HTTP/2.
    pub fn method(&self) -> &'static str {
        match self.version {
            HttpVersion::Http11 => "GET",
            HttpVersion::Http2 => "CONNECT",
        }
    }

    /// The header fields to send besides the request line (or the pseudo-header fields) and
    /// `Host` (see [`ClientRequest::authority`]): lowercase over HTTP/2.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.request.fields(self.version, self.key.as_deref())
    }

    /// Checks the server's response ([`Response::from_head`]) and returns the connection,
    /// OPEN with the negotiated subprotocol and extensions, and the response.
    ///
    /// # Errors
    ///
    /// Those of [`Response::from_head`], and [`HandshakeError::Extension`] for
    /// permessage-deflate parameters that do not fit the offer.
    pub fn finish<'a>(
        self,
        status: u16,
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(Connection, Response), HandshakeError> {
        let response = Response::from_head(
            status,
            self.version,
            fields,
            &self.request,
            self.key.as_deref(),
        )?;
        let mut conn = Connection::new(Role::Client, self.config, Phase::Open);
        conn.open_client(&response)?;
        Ok((conn, response))
    }
}

/// `request` with the offers `config` turns on: permessage-deflate (unless the request offers
/// it itself) and the subprotocols, after the request's own.
fn with_offers(request: ClientRequest, config: &Config) -> ClientRequest {
    let mut request = request;
    if let Some(d) = config.deflate().filter(|_| cfg!(feature = "deflate")) {
        if !request
            .offered_extensions()
            .iter()
            .any(|e| deflate::is_deflate(e))
        {
            request = request.extension(d.offer());
        }
    }
    for p in config.protocols() {
        if !request.offered_protocols().contains(p) {
            request = request.protocol(p.clone());
        }
    }
    request
}

impl Connection {
    /// A client in CONNECTING, with the upgrade request already queued as output.
    ///
    /// The `Sec-WebSocket-Key` nonce comes from the config's mask source. Subprotocols set with
    /// [`Config::with_protocols`] are offered after any the request names itself, and
    /// permessage-deflate when [`Config::with_deflate`] is set.
    pub fn client(request: ClientRequest, config: Config) -> Self {
        let mut conn = Self::new(Role::Client, config, Phase::Open);
        let mut nonce = [0u8; 16];
        conn.config.mask_source().fill(&mut nonce);
        let key = crate::handshake::encode_key(&nonce);
        let request = with_offers(request, &conn.config);
        let mut head = Vec::new();
        request.encode(&key, &mut head);
        conn.queue_raw(&head);
        conn.phase = Phase::Connecting(Box::new(Handshaking::Response { request, key }));
        conn
    }

    /// A server in CONNECTING, waiting for the upgrade request.
    pub fn server(config: Config) -> Self {
        Self::new(
            Role::Server,
            config,
            Phase::Connecting(Box::new(Handshaking::Request)),
        )
    }

    /// A connection that is already OPEN, with no subprotocol and no extensions: the
    /// handshake was done elsewhere. A server whose HTTP stack did the handshake should use
    /// [`accepted`](Self::accepted), which keeps what was negotiated.
    pub fn open(role: Role, config: Config) -> Self {
        Self::new(role, config, Phase::Open)
    }

    /// A server connection that is OPEN with what `negotiated` settled (subprotocol,
    /// permessage-deflate): for an HTTP stack that answered the handshake itself with
    /// `negotiated`'s status and headers.
    pub fn accepted(config: Config, negotiated: &Negotiated) -> Self {
        let mut conn = Self::new(Role::Server, config, Phase::Open);
        conn.apply(negotiated);
        conn
    }

    fn apply(&mut self, negotiated: &Negotiated) {
        self.protocol = negotiated.protocol.clone();
        // Over HTTP/2 the transport is a stream that is reset when dropped unfinished.
        self.wait_for_peer_end = negotiated.version == HttpVersion::Http2;
        self.deflate = negotiated
            .deflate
            .zip(self.config.deflate())
            .and_then(|(params, cfg)| Deflate::new(Role::Server, params, cfg))
            .map(Box::new);
    }

    // ---------------------------------------------------------------- C. commands: deciding

    /// Server: accepts the request reported by [`Event::Request`] and queues the 101 response
    /// ([`Negotiated`]: the subprotocol the [`Accept`] names, or the first one the client
    /// offered that is in [`Config::protocols`]; permessage-deflate from [`Config::deflate`]).
    /// The connection is OPEN at once, and frames the client pipelined are processed.
    ///
    /// Fails when no request is waiting, when the chosen subprotocol was not offered, or when an
    /// extra header cannot be sent.
    pub fn accept(&mut self, accept: Accept) -> Result<(), UsageError> {
        let Some(request) = self.request() else {
            return Err(UsageError::WrongState(self.state()));
        };
        let negotiated = Negotiated::new(request, accept, &self.config)?;
        // Straight into the output buffer.
        let queued = self.out.buf().len();
        negotiated.encode(self.out.buf());
        let head = self.out.buf().len() - queued;
        self.out.commit(head);
        self.apply(&negotiated);
        self.phase = Phase::Open;
        self.events.push_back(Event::Open(Box::new(Handshake {
            protocol: negotiated.protocol,
            extensions: negotiated.extensions,
            response: None,
        })));
        self.process_input();
        Ok(())
    }

    /// Server: refuses the request reported by [`Event::Request`] with the [`Reject`]'s HTTP
    /// status, headers and body; the connection becomes CLOSED and wants the transport shut
    /// down once the response is written.
    pub fn reject(&mut self, reject: Reject) -> Result<(), UsageError> {
        if self.request().is_none() {
            return Err(UsageError::WrongState(self.state()));
        }
        let mut head = Vec::new();
        reject.encode(&mut head)?;
        self.queue_raw(&head);
        self.abandon(Initiator::Local, None);
        Ok(())
    }

    // ---------------------------------------------------------------- reading the handshake

    /// Server: parses the request head. Returns `true` when the phase changed.
    pub(super) fn read_request(&mut self) -> bool {
        let cfg = &self.config;
        match Request::parse(&self.read.buf, cfg.max_header_bytes(), cfg.max_headers()) {
            Ok(Status::Partial { .. }) => false,
            Ok(Status::Complete((request, used))) => {
                let _ = self.read.buf.split_to(used);
                self.events.push_back(Event::Request(request.clone()));
                match &mut self.phase {
                    // The box the request phase had.
                    Phase::Connecting(h) => **h = Handshaking::Decision(request),
                    phase => *phase = Phase::Connecting(Box::new(Handshaking::Decision(request))),
                }
                true
            }
            Err(e) => {
                let response = e.response();
                self.queue_raw(&response);
                self.fail_handshake(e);
                true
            }
        }
    }

    /// Client: parses the response head. Returns `true` when the phase changed.
    pub(super) fn read_response(&mut self) -> bool {
        let Phase::Connecting(h) = &self.phase else {
            return false;
        };
        let Handshaking::Response { request, key } = &**h else {
            return false;
        };
        let cfg = &self.config;
        match Response::parse(
            &self.read.buf,
            request,
            key,
            cfg.max_header_bytes(),
            cfg.max_headers(),
        ) {
            Ok(Status::Partial { .. }) => false,
            Ok(Status::Complete((response, used))) => {
                let _ = self.read.buf.split_to(used);
                if let Err(e) = self.open_client(&response) {
                    self.fail_handshake(e);
                    return true;
                }
                let handshake = Handshake {
                    protocol: self.protocol.clone(),
                    extensions: response.extensions().to_vec(),
                    response: Some(response),
                };
                self.events.push_back(Event::Open(Box::new(handshake)));
                true
            }
            Err(e) => {
                self.fail_handshake(e);
                true
            }
        }
    }

    /// Client: takes what the server's response negotiated (subprotocol, permessage-deflate)
    /// and becomes OPEN.
    fn open_client(&mut self, response: &Response) -> Result<(), HandshakeError> {
        let deflate = match self.config.deflate() {
            Some(d) => deflate::accept_client(response.extensions(), d)
                .map(|p| p.and_then(|p| Deflate::new(Role::Client, p, d))),
            None if response.extensions().iter().any(|e| deflate::is_deflate(e)) => {
                Err("permessage-deflate accepted but not enabled")
            }
            None => Ok(None),
        };
        self.deflate = deflate.map_err(HandshakeError::Extension)?.map(Box::new);
        self.protocol = response.protocol().map(String::from);
        self.phase = Phase::Open;
        Ok(())
    }

    fn fail_handshake(&mut self, e: HandshakeError) {
        let initiator = match self.role {
            Role::Server => Initiator::Local,
            Role::Client => Initiator::Remote,
        };
        self.abandon(initiator, Some(Failure::Handshake(e)));
    }
}
