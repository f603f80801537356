//! Which proxy a client connection goes through: [`Proxy`] (the environment, none, or one URL)
//! and [`ProxyUrl`] (`http://`, `socks5://`, `socks5h://`, with credentials).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::env::ProxyEnv;
use super::error::{ProxyError, ProxyErrorKind};
use crate::handshake::ClientRequest;

/// The protocol spoken with a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// `http://`: an HTTP proxy, asked for a tunnel with `CONNECT host:port` (RFC 9110
    /// §9.3.6), with `Proxy-Authorization: Basic` when the URL has credentials.
    Http,
    /// `socks5://`: SOCKS5 (RFC 1928), the target's name resolved here and its address sent.
    Socks5,
    /// `socks5h://`: SOCKS5, the target's name sent for the proxy to resolve.
    Socks5h,
}

impl ProxyScheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }

    /// The port of a URL that names none: 80 for `http`, 1080 for SOCKS.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Socks5 | Self::Socks5h => 1080,
        }
    }
}

/// A proxy's URL: `[scheme://][user[:password]@]host[:port][/]`.
///
/// The scheme is `http` (the default when there is none, as curl has it), `socks5` or
/// `socks5h`; the port defaults to 80 for `http` and 1080 for SOCKS. The user and password
/// are percent-decoded; they are used for `Proxy-Authorization: Basic` (HTTP) or the
/// username/password method of RFC 1929 (SOCKS5). A path is ignored.
///
/// `Display` and `Debug` never show the password, and `Display` (what errors print) shows no
/// credentials at all.
///
/// ```
/// use hybi::{ProxyScheme, ProxyUrl};
/// let proxy: ProxyUrl = "socks5h://me:p%40ss@[::1]:1080".parse()?;
/// assert_eq!(proxy.scheme(), ProxyScheme::Socks5h);
/// assert_eq!((proxy.host(), proxy.port()), ("::1", 1080));
/// assert_eq!(proxy.username(), Some("me"));
/// assert_eq!(proxy.to_string(), "socks5h://[::1]:1080");
///
/// let proxy: ProxyUrl = "proxy.example.com:3128".parse()?;
/// assert_eq!(proxy.to_string(), "http://proxy.example.com:3128");
/// # Ok::<(), hybi::ProxyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl ProxyUrl {
    /// Parses a proxy URL.
    ///
    /// # Errors
    ///
    /// A [`ProxyError`] naming the URL (credentials removed):
    /// [`ProxyErrorKind::Unsupported`] for another scheme (`https`, `socks4`, ...),
    /// [`ProxyErrorKind::InvalidUrl`] for an empty or invalid host, an invalid port, an
    /// invalid percent-encoding or credentials that are not UTF-8.
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        parse(url).map_err(|kind| ProxyError::new(redact(url), kind))
    }

    /// The protocol spoken with the proxy.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The proxy's host, without brackets for an IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, when the URL has credentials.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// The user name and password, when the URL has credentials (a user without a password
    /// has an empty one).
    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// An error of this proxy.
    pub(crate) fn error(&self, kind: ProxyErrorKind) -> ProxyError {
        ProxyError::new(self.to_string(), kind)
    }
}

impl FromStr for ProxyUrl {
    type Err = ProxyError;
    fn from_str(s: &str) -> Result<Self, ProxyError> {
        Self::parse(s)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `url` without its userinfo, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

fn parse(url: &str) -> Result<ProxyUrl, ProxyErrorKind> {
    use ProxyErrorKind::{InvalidUrl, Unsupported};

    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let scheme = match scheme {
        None => ProxyScheme::Http,
        Some(s) if s.eq_ignore_ascii_case("http") => ProxyScheme::Http,
        Some(s) if s.eq_ignore_ascii_case("socks5") => ProxyScheme::Socks5,
        Some(s) if s.eq_ignore_ascii_case("socks5h") => ProxyScheme::Socks5h,
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(Unsupported("TLS to the proxy (https://)"))
        }
        Some(s) if s.len() >= 5 && s[..5].eq_ignore_ascii_case("socks") => {
            return Err(Unsupported("SOCKS versions other than 5"))
        }
        Some(_) => return Err(Unsupported("proxy scheme other than http, socks5, socks5h")),
    };
    // The path (and anything after it) is ignored.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let credentials = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Some((percent_decode(user)?, percent_decode(password)?))
        }
    };

    let (host, port) = if let Some(literal) = hostport.strip_prefix('[') {
        let (address, after) = literal
            .split_once(']')
            .ok_or(InvalidUrl("unclosed IPv6 address"))?;
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(InvalidUrl("invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(InvalidUrl("invalid port"))?),
        };
        (address, port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
        if !host.bytes().all(valid) {
            return Err(InvalidUrl("invalid host"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(InvalidUrl("empty host"));
    }
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse() {
            Ok(0) | Err(_) => return Err(InvalidUrl("invalid port")),
            Ok(port) => port,
        },
        Some(_) => return Err(InvalidUrl("invalid port")),
    };
    Ok(ProxyUrl {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        credentials,
    })
}

/// Decodes `%XX` escapes (RFC 3986 §2.1); the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, ProxyErrorKind> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| {
                bytes
                    .get(j)
                    .and_then(|&h| char::from(h).to_digit(16))
                    .and_then(|d| u8::try_from(d).ok())
            };
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(ProxyErrorKind::InvalidUrl("invalid percent-encoding")),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ProxyErrorKind::InvalidUrl("credentials are not UTF-8"))
}

/// Which proxy, if any, client connections go through. The default is
/// [`from_env`](Self::from_env).
///
/// ```
/// use hybi::{ClientRequest, Proxy};
/// let env = Proxy::from_vars([
///     ("https_proxy", "http://proxy.corp:3128"),
///     ("ALL_PROXY", "socks5h://127.0.0.1:1080"),
///     ("NO_PROXY", "localhost,.internal"),
/// ]);
/// let wss = ClientRequest::new("wss://example.com/")?;
/// let ws = ClientRequest::new("ws://example.com/")?;
/// let inside = ClientRequest::new("wss://chat.internal/")?;
/// assert_eq!(env.for_request(&wss)?.unwrap().to_string(), "http://proxy.corp:3128");
/// assert_eq!(env.for_request(&ws)?.unwrap().to_string(), "socks5h://127.0.0.1:1080");
/// assert!(env.for_request(&inside)?.is_none());
///
/// let direct = Proxy::none();
/// assert!(direct.for_request(&wss)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Proxy {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    /// The process environment, read at each connection.
    #[default]
    Env,
    /// A snapshot of proxy variables.
    Vars(Arc<ProxyEnv>),
    /// Direct connections.
    None,
    /// This proxy for every connection.
    Url(ProxyUrl),
}

impl Proxy {
    /// The proxy the environment names, read when connecting, as curl reads it: for `ws://`
    /// `http_proxy` then `HTTP_PROXY`, for `wss://` `https_proxy` then `HTTPS_PROXY`, then
    /// `all_proxy` / `ALL_PROXY` for either; an empty value counts as unset. `no_proxy` /
    /// `NO_PROXY` lists the hosts reached directly, separated by commas (or whitespace):
    ///
    /// - `*` alone: every host;
    /// - a domain (`example.com`, `.example.com`, `*.example.com`): that host and every
    ///   host under it, ASCII case-insensitive;
    /// - an IP address (`127.0.0.1`, `::1`, `[::1]`), or a network in CIDR notation
    ///   (`10.0.0.0/8`, `fd00::/8`): a host written as such an address;
    /// - any of those with `:port` (`[::1]:9001`, `example.com:8080`): only that port.
    ///
    /// Loopback is not exempt unless `NO_PROXY` says so: a proxy set in the environment is
    /// used for `ws://127.0.0.1/` too.
    pub fn from_env() -> Self {
        Self {
            source: Source::Env,
        }
    }

    /// Like [`from_env`](Self::from_env), from a snapshot of the variables instead of the
    /// process environment: `(name, value)` pairs, names as above (others are ignored). For
    /// tests, and for applications that keep their own configuration.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self {
            source: Source::Vars(Arc::new(ProxyEnv::from_vars(vars))),
        }
    }

    /// No proxy: every connection is direct, whatever the environment says.
    pub fn none() -> Self {
        Self {
            source: Source::None,
        }
    }

    /// This proxy for every connection, whatever the environment says (see [`ProxyUrl`]).
    ///
    /// # Errors
    ///
    /// The errors of [`ProxyUrl::parse`].
    pub fn url(url: &str) -> Result<Self, ProxyError> {
        Ok(Self::from(ProxyUrl::parse(url)?))
    }

    /// The proxy a connection for `request` goes through, or `None` for a direct one.
    ///
    /// # Errors
    ///
    /// The errors of [`ProxyUrl::parse`] for an environment variable that is not a proxy URL.
    pub fn for_request(&self, request: &ClientRequest) -> Result<Option<ProxyUrl>, ProxyError> {
        let from = |env: &ProxyEnv| {
            env.select(request.is_tls(), request.host(), request.port())
                .map(ProxyUrl::parse)
                .transpose()
        };
        match &self.source {
            Source::Env => from(&ProxyEnv::from_process()),
            Source::Vars(env) => from(env),
            Source::None => Ok(None),
            Source::Url(url) => Ok(Some(url.clone())),
        }
    }
}

impl From<ProxyUrl> for Proxy {
    fn from(url: ProxyUrl) -> Self {
        Self {
            source: Source::Url(url),
        }
    }
}
