//! Following redirect answers to the opening handshake: the `Location` resolved against the
//! request URL (RFC 3986 §5.2, with `http`/`https` mapped to `ws`/`wss`), and the hop policy
//! (a limit, no loops, never from `wss://` down to `ws://`).

use crate::driver::Error;
use crate::driver::RedirectError;
use crate::handshake::{ClientRequest, HandshakeError};

/// The redirects followed so far by one `connect_with`.
#[derive(Debug)]
pub(crate) struct Redirects {
    max: usize,
    /// Every URL requested so far, the first included.
    visited: Vec<String>,
}

impl Redirects {
    /// Starts with the first request; `max` redirects may be followed (0: none).
    pub(crate) fn new(first: &ClientRequest, max: usize) -> Self {
        Self {
            max,
            visited: vec![first.url()],
        }
    }

    /// After the handshake for `current` failed with `error`: the request for the next hop
    /// when `error` is a redirect to follow.
    ///
    /// # Errors
    ///
    /// `error` itself when it is not a redirect, or when redirects are not followed (a limit
    /// of 0); [`Error::Redirect`] for a `Location` that is not a WebSocket URL, a downgrade
    /// from `wss://` to `ws://`, a URL already visited or one redirect too many.
    pub(crate) fn follow(
        &mut self,
        current: &ClientRequest,
        error: Error,
    ) -> Result<ClientRequest, Error> {
        let Error::Handshake(HandshakeError::Redirect { location, .. }) = &error else {
            return Err(error);
        };
        if self.max == 0 {
            return Err(error);
        }
        let invalid = |reason| RedirectError::InvalidLocation {
            location: location.clone(),
            reason,
        };
        let next_url = resolve(current, location).map_err(invalid)?;
        let next = current.redirected(&next_url).map_err(|e| match e {
            HandshakeError::InvalidUrl(reason) => invalid(reason),
            _ => invalid("not a WebSocket URL"),
        })?;
        let url = next.url();
        if current.is_tls() && !next.is_tls() {
            return Err(RedirectError::Downgrade {
                from: current.url(),
                to: url,
            }
            .into());
        }
        if self.visited.contains(&url) {
            return Err(RedirectError::Loop { url }.into());
        }
        // `visited` holds the first URL and one per redirect followed.
        if self.visited.len() > self.max {
            return Err(RedirectError::TooMany {
                max: self.max,
                location: url,
            }
            .into());
        }
        self.visited.push(url);
        Ok(next)
    }
}

/// The absolute `ws://` or `wss://` URL a `Location` value points to, from the request `base`.
///
/// A fragment is dropped. An absolute URL keeps its scheme, `http` becoming `ws` and `https`
/// `wss`; `//authority/path` takes the base's scheme; `/path` the base's authority; a
/// relative path is merged with the base's path; dot segments are removed (RFC 3986 §5.2.2).
pub(crate) fn resolve(base: &ClientRequest, location: &str) -> Result<String, &'static str> {
    let location = location.trim_matches([' ', '\t']);
    let location = location.split_once('#').map_or(location, |(l, _)| l);
    if location.is_empty() {
        return Err("empty Location");
    }
    let base_url = base.url();
    let base_scheme = if base.is_tls() { "wss" } else { "ws" };
    if let Some((scheme, rest)) = split_scheme(location) {
        let scheme = if scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("http") {
            "ws"
        } else if scheme.eq_ignore_ascii_case("wss") || scheme.eq_ignore_ascii_case("https") {
            "wss"
        } else {
            return Err("scheme is not ws, wss, http or https");
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or("absolute URL without a host")?;
        return Ok(format!("{scheme}://{rest}"));
    }
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{base_scheme}://{rest}"));
    }
    // `base_url` is the authority followed by the resource name.
    let origin = &base_url[..base_url.len() - base.uri().len()];
    let base_path = base.uri().split_once('?').map_or(base.uri(), |(p, _)| p);
    let (path, query) = match location.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (location, None),
    };
    let path = if path.is_empty() {
        // A query alone (or nothing but a fragment, refused above): the base's path.
        base_path.to_owned()
    } else if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        // RFC 3986 §5.2.3: everything of the base path up to its last `/`, then the reference.
        let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        remove_dot_segments(&format!("{dir}{path}"))
    };
    Ok(match query {
        Some(query) => format!("{origin}{path}?{query}"),
        None => format!("{origin}{path}"),
    })
}

/// `scheme ":" rest` when `reference` starts with an RFC 3986 scheme.
fn split_scheme(reference: &str) -> Option<(&str, &str)> {
    let colon = reference.find(':')?;
    let scheme = &reference[..colon];
    let mut bytes = scheme.bytes();
    let first_alpha = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (first_alpha && rest_ok).then(|| (scheme, &reference[colon + 1..]))
}

/// RFC 3986 §5.2.4 for an absolute path (one starting with `/`).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A path ending in a dot segment ends with `/`.
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(url: &str) -> ClientRequest {
        ClientRequest::new(url).unwrap()
    }

    #[test]
    fn resolution() {
        let base = req("ws://a.example:8080/x/y/z?q=1");
        let cases = [
            ("wss://b.example/chat", "wss://b.example/chat"),
            ("WS://b.example", "ws://b.example"),
            ("http://b.example:81/p", "ws://b.example:81/p"),
            ("HTTPS://b.example/p?x", "wss://b.example/p?x"),
            ("//c.example/p", "ws://c.example/p"),
            ("/abs", "ws://a.example:8080/abs"),
            ("/abs/../b/./c", "ws://a.example:8080/b/c"),
            ("/abs?k=v", "ws://a.example:8080/abs?k=v"),
            ("rel", "ws://a.example:8080/x/y/rel"),
            ("rel/", "ws://a.example:8080/x/y/rel/"),
            ("./rel", "ws://a.example:8080/x/y/rel"),
            ("../rel", "ws://a.example:8080/x/rel"),
            ("../../../../rel", "ws://a.example:8080/rel"),
            ("..", "ws://a.example:8080/x/"),
            (".", "ws://a.example:8080/x/y/"),
            ("?other", "ws://a.example:8080/x/y/z?other"),
            ("/p#frag", "ws://a.example:8080/p"),
            ("  /p  ", "ws://a.example:8080/p"),
            ("g:h", "invalid"),
        ];
        for (location, expected) in cases {
            let got = resolve(&base, location);
            if expected == "invalid" {
                assert!(got.is_err(), "{location}: {got:?}");
            } else {
                assert_eq!(got.as_deref(), Ok(expected), "{location}");
            }
        }
        let v6 = req("wss://[::1]:9001/a/b");
        assert_eq!(resolve(&v6, "c").unwrap(), "wss://[::1]:9001/a/c");
        assert_eq!(resolve(&v6, "//[::2]/").unwrap(), "wss://[::2]/");
        for bad in ["", "#only", "ftp://x/", "mailto:a@b", "http:/no-host"] {
            assert!(resolve(&v6, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dot_segments() {
        for (path, expected) in [
            ("/", "/"),
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/a//b", "/a//b"),
            ("/..", "/"),
            ("/a/..", "/"),
            ("/a/.", "/a/"),
            ("/a/../..", "/"),
        ] {
            assert_eq!(remove_dot_segments(path), expected, "{path}");
        }
    }

    fn redirect(status: u16, location: &str) -> Error {
        HandshakeError::Redirect {
            status,
            location: location.into(),
        }
        .into()
    }

    #[test]
    fn keeps_the_request_but_its_url() {
        let first = req("ws://a.example/one")
            .origin("http://app.example")
            .protocols(["chat"])
            .header("Authorization", "Bearer x");
        let mut hops = Redirects::new(&first, 10);
        let next = hops.follow(&first, redirect(307, "/two")).unwrap();
        assert_eq!(next.url(), "ws://a.example/two");
        assert_eq!(next.offered_protocols(), ["chat"]);
        let mut a = Vec::new();
        let mut b = Vec::new();
        first.encode("k", &mut a);
        next.encode("k", &mut b);
        let tail = |v: &[u8]| {
            String::from_utf8_lossy(v)
                .split_once("\r\n")
                .unwrap()
                .1
                .to_owned()
        };
        assert_eq!(tail(&a), tail(&b));
    }

    #[test]
    fn policy() {
        let ws = req("ws://a.example/");
        let wss = req("wss://a.example/");
        // Not a redirect: passed through.
        let mut hops = Redirects::new(&ws, 10);
        let other = hops.follow(&ws, HandshakeError::UnexpectedStatus(404).into());
        assert!(matches!(
            other,
            Err(Error::Handshake(HandshakeError::UnexpectedStatus(404)))
        ));
        // A limit of 0: the redirect itself is the error.
        let mut hops = Redirects::new(&ws, 0);
        let r = hops.follow(&ws, redirect(301, "/b"));
        assert!(matches!(
            r,
            Err(Error::Handshake(HandshakeError::Redirect {
                status: 301,
                ..
            }))
        ));
        // Downgrade, also through http://.
        for location in ["ws://a.example/", "http://b.example/"] {
            let mut hops = Redirects::new(&wss, 10);
            let r = hops.follow(&wss, redirect(302, location));
            assert!(
                matches!(r, Err(Error::Redirect(RedirectError::Downgrade { .. }))),
                "{r:?}"
            );
        }
        // Upgrade is fine.
        let mut hops = Redirects::new(&ws, 10);
        assert!(hops
            .follow(&ws, redirect(308, "wss://a.example/"))
            .unwrap()
            .is_tls());
        // A loop: back to the first URL, or to itself.
        let mut hops = Redirects::new(&ws, 10);
        let b = hops.follow(&ws, redirect(301, "/b")).unwrap();
        let r = hops.follow(&b, redirect(301, "/"));
        assert!(
            matches!(&r, Err(Error::Redirect(RedirectError::Loop { url })) if url == "ws://a.example/")
        );
        let mut hops = Redirects::new(&ws, 10);
        let r = hops.follow(&ws, redirect(301, "ws://A.example:80"));
        assert!(
            matches!(r, Err(Error::Redirect(RedirectError::Loop { .. }))),
            "{r:?}"
        );
        // Invalid locations.
        for bad in ["ftp://x/", "ws://user@x/", "/a b", "ws://[::1/"] {
            let mut hops = Redirects::new(&ws, 10);
            let r = hops.follow(&ws, redirect(301, bad));
            assert!(
                matches!(
                    r,
                    Err(Error::Redirect(RedirectError::InvalidLocation { .. }))
                ),
                "{bad}: {r:?}"
            );
        }
    }

    #[test]
    fn at_most_max_hops() {
        for max in 1..5 {
            let mut current = req("ws://a.example/0");
            let mut hops = Redirects::new(&current, max);
            for i in 1..=max {
                current = hops
                    .follow(&current, redirect(302, &format!("/{i}")))
                    .unwrap();
            }
            let r = hops.follow(&current, redirect(302, "/next"));
            assert!(
                matches!(&r, Err(Error::Redirect(RedirectError::TooMany { max: m, location })) if *m == max && location == "ws://a.example/next"),
                "{r:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn resolve_never_panics_and_yields_websocket_urls(location in "\\PC{0,40}") {
            let base = req("wss://[::1]:9001/a/b?c");
            if let Ok(url) = resolve(&base, &location) {
                prop_assert!(url.starts_with("ws://") || url.starts_with("wss://"), "{}", url);
            }
        }

        #[test]
        fn relative_paths_stay_on_the_origin(segments in proptest::collection::vec("[a-z.]{1,4}", 1..6)) {
            let base = req("ws://h.example:1234/p/q");
            let url = resolve(&base, &segments.join("/")).unwrap();
            prop_assert!(url.starts_with("ws://h.example:1234/"), "{}", url);
            let path = &url["ws://h.example:1234".len()..];
            prop_assert!(!path.split('/').any(|s| s == "." || s == ".."), "{}", url);
        }
    }
}
