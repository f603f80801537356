//! WebSockets over HTTP/2 for the load tools (RFC 8441): one HTTP/2 connection (h2c, prior
//! knowledge, over plain TCP) with hyper's HTTP/2 client, and WebSockets opened on it as
//! extended CONNECT streams, each a hybi `WebSocketStream` client over hyper's upgraded
//! stream. The server must allow extended CONNECT (`axum::serve` does; `hyper_echo --http2`).

use http_body_util::Empty;
use hybi::tokio::WebSocketStream;
use hybi::{ClientRequest, Config, Connection, Error, Role, Timeouts};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A WebSocket on an HTTP/2 stream.
pub type H2WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One HTTP/2 connection to the server of a `ws://` URL, and the URL's target.
#[derive(Clone)]
pub struct H2Connection {
    sender: SendRequest<Empty<Bytes>>,
    uri: String,
}

impl H2Connection {
    /// Connects to the host and port of `url` (a `ws://` URL) and does the HTTP/2 handshake;
    /// the connection is driven by a task of its own. hyper's client windows are its defaults
    /// (2 MiB per stream, 5 MiB per connection).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let request = ClientRequest::new(url)?;
        let tcp = tokio::net::TcpStream::connect((request.host(), request.port())).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let uri = format!(
            "http://{}:{}{}",
            request.host(),
            request.port(),
            request.uri()
        );
        Ok(Self { sender, uri })
    }

    /// Opens a WebSocket on a new stream: `CONNECT` with `:protocol websocket`, version 13,
    /// the subprotocol when given; a 200 makes a client `WebSocketStream` with `timeouts`.
    pub async fn websocket(
        &self,
        protocol: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<H2WebSocket, Error> {
        let mut builder = hyper::Request::builder()
            .method(hyper::Method::CONNECT)
            .uri(&self.uri)
            .header("sec-websocket-version", "13");
        if let Some(p) = protocol {
            builder = builder.header("sec-websocket-protocol", p);
        }
        let mut request = builder.body(Empty::new()).map_err(std::io::Error::other)?;
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(std::io::Error::other)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        if response.status() != 200 {
            return Err(hybi::HandshakeError::UnexpectedStatus(response.status().as_u16()).into());
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(std::io::Error::other)?;
        let conn = Connection::open(Role::Client, Config::default());
        Ok(WebSocketStream::new(TokioIo::new(upgraded), conn, timeouts))
    }
}
