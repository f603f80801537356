//! Which proxy a client connection goes through: [`Proxy`] (the environment, none, or one URL)
//! and [`ProxyUrl`] (`http://`, `socks5://`, `socks5h://`, with credentials).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::env::ProxyEnv;
use crate::driver::{ProxyError, ProxyErrorKind};
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
        Some(s) if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("socks")) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_ok(url: &str) -> ProxyUrl {
        ProxyUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn schemes_hosts_and_ports() {
        let cases = [
            ("http://proxy:3128", ProxyScheme::Http, "proxy", 3128),
            (
                "HTTP://Proxy.Example",
                ProxyScheme::Http,
                "proxy.example",
                80,
            ),
            ("proxy.corp:8080", ProxyScheme::Http, "proxy.corp", 8080),
            ("proxy.corp", ProxyScheme::Http, "proxy.corp", 80),
            ("socks5://127.0.0.1", ProxyScheme::Socks5, "127.0.0.1", 1080),
            ("SOCKS5H://[::1]:1081/", ProxyScheme::Socks5h, "::1", 1081),
            ("socks5h://[fe80::1]", ProxyScheme::Socks5h, "fe80::1", 1080),
            (
                "http://p:3128/ignored/path?x#y",
                ProxyScheme::Http,
                "p",
                3128,
            ),
            ("  http://p:1  ", ProxyScheme::Http, "p", 1),
            ("http://p:", ProxyScheme::Http, "p", 80),
        ];
        for (url, scheme, host, port) in cases {
            let p = parse_ok(url);
            assert_eq!(
                (p.scheme(), p.host(), p.port()),
                (scheme, host, port),
                "{url}"
            );
            assert_eq!(p.username(), None);
        }
        assert_eq!(parse_ok("[::1]:3128").to_string(), "http://[::1]:3128");
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let p = parse_ok("http://us%65r:p%40ss%3Aword@proxy:3128");
        assert_eq!(p.credentials(), Some(("user", "p@ss:word")));
        let p = parse_ok("socks5://a@b@proxy");
        assert_eq!(p.credentials(), Some(("a@b", "")));
        assert_eq!(p.host(), "proxy");
        let p = parse_ok("socks5h://me:s3cret@proxy:1");
        assert_eq!(p.to_string(), "socks5h://proxy:1");
        let debug = format!("{p:?}");
        assert!(!debug.contains("s3cret") && debug.contains("me"), "{debug}");
        let proxy = Proxy::from(p);
        assert!(!format!("{proxy:?}").contains("s3cret"));
    }

    #[test]
    fn invalid_and_unsupported() {
        for url in [
            "",
            "http://",
            "http://:80",
            "http://[::1",
            "http://[zz]:80",
            "http://[::1]x",
            "http://p:0",
            "http://p:65536",
            "http://p:12a",
            "http://p q:80",
            "http://u:%zz@p",
            "http://u:%ff@p",
        ] {
            let e = ProxyUrl::parse(url).unwrap_err();
            assert!(
                matches!(e.kind(), ProxyErrorKind::InvalidUrl(_)),
                "{url}: {e}"
            );
        }
        for url in [
            "https://p",
            "socks4://p",
            "socks4a://p",
            "SOCKS://p",
            "ftp://p",
            "soc€://p",
        ] {
            let e = ProxyUrl::parse(url).unwrap_err();
            assert!(
                matches!(e.kind(), ProxyErrorKind::Unsupported(_)),
                "{url}: {e}"
            );
        }
        let e = ProxyUrl::parse("https://user:secret@p:443/x").unwrap_err();
        assert_eq!(e.proxy(), "https://p:443/x");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("http://u:p@h:1"), "http://h:1");
        assert_eq!(redact("u:p@h:1/x"), "h:1/x");
        assert_eq!(redact("http://h:1"), "http://h:1");
        assert_eq!(redact("http://a@b@h/@x"), "http://h/@x");
    }

    #[test]
    fn choice() {
        let ws = ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
        assert!(Proxy::none().for_request(&ws).unwrap().is_none());
        let fixed = Proxy::url("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(fixed.for_request(&ws).unwrap().unwrap().port(), 1080);
        let vars = Proxy::from_vars([("HTTP_PROXY", "socks4://x")]);
        let e = vars.for_request(&ws).unwrap_err();
        assert!(matches!(e.kind(), ProxyErrorKind::Unsupported(_)));
        let vars = Proxy::from_vars([("HTTP_PROXY", "p:1"), ("NO_PROXY", "127.0.0.1:9001")]);
        assert!(vars.for_request(&ws).unwrap().is_none());
        let other_port = ClientRequest::new("ws://127.0.0.1:9002/").unwrap();
        assert!(vars.for_request(&other_port).unwrap().is_some());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_never_leaks(url in "\\PC{0,48}") {
            match ProxyUrl::parse(&url) {
                Ok(p) => {
                    let shown = p.to_string();
                    prop_assert!(ProxyUrl::parse(&shown).is_ok(), "{}", shown);
                    prop_assert!(!shown.contains('@'), "{}", shown);
                }
                Err(e) => {
                    // The error names what was given, userinfo removed.
                    prop_assert_eq!(e.proxy(), redact(&url));
                }
            }
        }

        #[test]
        fn credentials_round_trip(user in "[a-zA-Z0-9]{1,8}", password in "[ -~]{1,12}") {
            let encoded: String = password
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            let p = ProxyUrl::parse(&format!("socks5://{user}:{encoded}@h:1")).unwrap();
            prop_assert_eq!(p.credentials(), Some((user.as_str(), password.as_str())));
        }
    }
}
