//! The proxy environment variables, as curl reads them: pure functions over a snapshot, so
//! that the choice can be tested without touching the process environment.

use std::fmt;
use std::net::IpAddr;

/// The variables that choose a proxy, lowercase names first (curl's order).
const HTTP: [&str; 2] = ["http_proxy", "HTTP_PROXY"];
const HTTPS: [&str; 2] = ["https_proxy", "HTTPS_PROXY"];
const ALL: [&str; 2] = ["all_proxy", "ALL_PROXY"];
const NO: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// A snapshot of the proxy variables; an empty value counts as unset.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyEnv {
    http: Option<String>,
    https: Option<String>,
    all: Option<String>,
    no: Option<String>,
}

impl ProxyEnv {
    /// The variables of this process, now.
    pub(crate) fn from_process() -> Self {
        let names = HTTP.iter().chain(&HTTPS).chain(&ALL).chain(&NO);
        Self::from_vars(names.filter_map(|&name| Some((name, std::env::var(name).ok()?))))
    }

    /// The variables among `vars`; for a variable set in both cases, the lowercase one.
    pub(crate) fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        // Every slot holds (value, set by the lowercase name).
        let mut slots: [Option<(String, bool)>; 4] = Default::default();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref().trim());
            if value.is_empty() {
                continue;
            }
            let Some(slot) = [HTTP, HTTPS, ALL, NO]
                .iter()
                .position(|names| names.contains(&name))
            else {
                continue;
            };
            let lowercase = name.bytes().all(|b| !b.is_ascii_uppercase());
            let keep = slots[slot]
                .as_ref()
                .is_some_and(|(_, was_lowercase)| *was_lowercase && !lowercase);
            if !keep {
                slots[slot] = Some((value.to_owned(), lowercase));
            }
        }
        let [http, https, all, no] = slots.map(|slot| slot.map(|(value, _)| value));
        Self {
            http,
            https,
            all,
            no,
        }
    }

    /// The proxy URL (unparsed) for a `ws://` (`tls` false) or `wss://` connection to
    /// `host:port`, or `None` for a direct one.
    pub(crate) fn select(&self, tls: bool, host: &str, port: u16) -> Option<&str> {
        let specific = if tls { &self.https } else { &self.http };
        let proxy = specific.as_deref().or(self.all.as_deref())?;
        match &self.no {
            Some(list) if no_proxy_matches(list, host, port) => None,
            _ => Some(proxy),
        }
    }
}

impl fmt::Debug for ProxyEnv {
    /// Names only the variables that are set: proxy URLs may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("ProxyEnv")
            .field("http", &set(&self.http))
            .field("https", &set(&self.https))
            .field("all", &set(&self.all))
            .field("no", &self.no)
            .finish()
    }
}

/// Whether the `NO_PROXY` list `list` exempts `host:port` (`host` without brackets, as
/// `ClientRequest::host` gives it). See `Proxy::from_env` for the syntax.
pub(crate) fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.');
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let Some((pattern, entry_port)) = split_port(entry) else {
                return false;
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            match (pattern, host_ip) {
                (Pattern::Ip(ip), Some(h)) => ip == h,
                (Pattern::Net(net, bits), Some(h)) => in_network(h, net, bits),
                (Pattern::Domain(domain), None) => domain_matches(host, domain),
                _ => false,
            }
        })
}

/// One entry of a `NO_PROXY` list, without its port.
enum Pattern<'a> {
    Ip(IpAddr),
    Net(IpAddr, u8),
    Domain(&'a str),
}

/// Splits an entry into its pattern and port; `None` for an entry that is neither.
fn split_port(entry: &str) -> Option<(Pattern<'_>, Option<u16>)> {
    let (host, port) = if let Some(literal) = entry.strip_prefix('[') {
        let (address, after) = literal.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (address, port)
    } else if entry.bytes().filter(|&b| b == b':').count() == 1 {
        let (host, port) = entry.split_once(':')?;
        (host, Some(port))
    } else {
        // A bare IPv6 address (or network), or no port.
        (entry, None)
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    let pattern = if let Ok(ip) = host.parse::<IpAddr>() {
        Pattern::Ip(ip)
    } else if let Some((net, bits)) = host.split_once('/') {
        let net = net.parse::<IpAddr>().ok()?;
        let bits = bits.parse::<u8>().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return None;
        }
        Pattern::Net(net, bits)
    } else {
        let domain = host.strip_prefix('*').unwrap_or(host);
        let domain = domain.strip_prefix('.').unwrap_or(domain);
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            return None;
        }
        Pattern::Domain(domain)
    };
    Some((pattern, port))
}

/// `host` is `domain` or a name under it.
fn domain_matches(host: &str, domain: &str) -> bool {
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    host.len() > domain.len()
        && host
            .get(host.len() - domain.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(domain))
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
}

/// `ip` is in the network `net/bits` (both of one family).
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            (u128::from(u32::from(ip)), u128::from(u32::from(net)), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => (u128::from(ip), u128::from(net), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    if shift >= 128 {
        return true;
    }
    ip >> shift == net >> shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_vars(vars.iter().copied())
    }

    #[test]
    fn scheme_specific_then_all() {
        let e = env(&[
            ("HTTP_PROXY", "http://h:1"),
            ("HTTPS_PROXY", "http://s:2"),
            ("ALL_PROXY", "socks5://a:3"),
        ]);
        assert_eq!(e.select(false, "example.com", 80), Some("http://h:1"));
        assert_eq!(e.select(true, "example.com", 443), Some("http://s:2"));
        let e = env(&[("ALL_PROXY", "socks5://a:3")]);
        assert_eq!(e.select(false, "example.com", 80), Some("socks5://a:3"));
        assert_eq!(e.select(true, "example.com", 443), Some("socks5://a:3"));
        let e = env(&[("https_proxy", "http://s:2")]);
        assert_eq!(e.select(false, "example.com", 80), None);
        assert_eq!(env(&[]).select(true, "example.com", 443), None);
    }

    #[test]
    fn lowercase_wins_in_either_order() {
        for vars in [
            [
                ("http_proxy", "http://lower:1"),
                ("HTTP_PROXY", "http://upper:1"),
            ],
            [
                ("HTTP_PROXY", "http://upper:1"),
                ("http_proxy", "http://lower:1"),
            ],
        ] {
            assert_eq!(
                env(&vars).select(false, "x", 80),
                Some("http://lower:1"),
                "{vars:?}"
            );
        }
        let e = env(&[("no_proxy", "a.example"), ("NO_PROXY", "b.example")]);
        assert_eq!(e.no.as_deref(), Some("a.example"));
    }

    #[test]
    fn empty_values_are_unset_and_other_names_ignored() {
        let e = env(&[
            ("https_proxy", ""),
            ("HTTPS_PROXY", "http://upper:1"),
            ("ALL_PROXY", "  "),
            ("Https_Proxy", "http://mixed:1"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(e.select(true, "x", 443), Some("http://upper:1"));
        assert_eq!(e.select(false, "x", 80), None);
    }

    #[test]
    fn no_proxy_exempts() {
        let e = env(&[
            ("ALL_PROXY", "http://p:1"),
            ("NO_PROXY", "localhost, 10.0.0.0/8"),
        ]);
        assert_eq!(e.select(false, "localhost", 80), None);
        assert_eq!(e.select(false, "10.1.2.3", 80), None);
        assert_eq!(e.select(false, "127.0.0.1", 80), Some("http://p:1"));
    }

    #[test]
    fn loopback_is_not_exempt_by_default() {
        let e = env(&[("ALL_PROXY", "http://p:1")]);
        for host in ["127.0.0.1", "::1", "localhost"] {
            assert_eq!(e.select(false, host, 9001), Some("http://p:1"), "{host}");
        }
    }

    #[test]
    fn no_proxy_entries() {
        let yes = [
            ("*", "anything.example", 1),
            ("example.com", "example.com", 80),
            ("example.com", "www.example.com", 80),
            ("example.com", "a.b.EXAMPLE.com", 80),
            (".example.com", "example.com", 80),
            (".example.com", "www.example.com", 80),
            ("*.example.com", "www.example.com", 80),
            ("example.com.", "www.example.com", 80),
            ("example.com", "www.example.com.", 80),
            ("LOCALHOST", "localhost", 80),
            ("127.0.0.1", "127.0.0.1", 9001),
            ("::1", "::1", 9001),
            ("[::1]", "::1", 9001),
            ("[::1]:9001", "::1", 9001),
            ("0:0::1", "::1", 9001),
            ("127.0.0.1:9001", "127.0.0.1", 9001),
            ("example.com:8080", "www.example.com", 8080),
            ("127.0.0.0/8", "127.1.2.3", 1),
            ("0.0.0.0/0", "192.0.2.1", 1),
            ("fd00::/8", "fd12::1", 1),
            ("::/0", "::1", 1),
            ("a, b ,,example.com", "example.com", 1),
            ("a\tb example.com", "example.com", 1),
        ];
        for (list, host, port) in yes {
            assert!(no_proxy_matches(list, host, port), "{list:?} {host}:{port}");
        }
        let no = [
            ("", "example.com", 80),
            ("example.com", "notexample.com", 80),
            ("example.com", "example.com.evil", 80),
            ("www.example.com", "example.com", 80),
            ("example.com:8080", "example.com", 80),
            ("127.0.0.1", "127.0.0.2", 80),
            ("127.0.0.1", "localhost", 80),
            ("localhost", "127.0.0.1", 80),
            ("[::1]:9001", "::1", 9002),
            ("::1", "127.0.0.1", 80),
            ("127.0.0.0/8", "::1", 80),
            ("127.0.0.0/8", "128.0.0.1", 80),
            ("127.0.0.0/33", "127.0.0.1", 80),
            ("fd00::/8", "fe00::1", 80),
            ("*.", "example.com", 80),
            (".", "example.com", 80),
            ("**", "example.com", 80),
            ("example.com:x", "example.com", 80),
            ("[::1", "::1", 80),
            ("10.0.0.1", "example.com", 80),
        ];
        for (list, host, port) in no {
            assert!(
                !no_proxy_matches(list, host, port),
                "{list:?} {host}:{port}"
            );
        }
    }

    #[test]
    fn debug_hides_proxy_urls() {
        let e = env(&[("HTTPS_PROXY", "http://user:secret@p:1")]);
        assert!(!format!("{e:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn never_panics(list in ".{0,64}", host in ".{0,32}", port: u16) {
            let _ = no_proxy_matches(&list, &host, port);
        }

        #[test]
        fn a_name_is_exempt_by_itself_and_its_parents(
            labels in proptest::collection::vec("[a-z0-9-]{1,10}", 1..5),
            port: u16,
        ) {
            let host = labels.join(".");
            for i in 0..labels.len() {
                let parent = labels[i..].join(".");
                let dotted = format!(".{parent}");
                let with_port = format!("x,{parent}:{port}");
                for list in [&parent, &dotted, &with_port] {
                    prop_assert!(no_proxy_matches(list, &host, port), "{} {}", list, host);
                }
            }
            let longer = format!("x{host}");
            let under = format!("{host}.x");
            for list in [&longer, &under] {
                prop_assert!(!no_proxy_matches(list, &host, port), "{} {}", list, host);
            }
        }

        #[test]
        fn networks_contain_their_addresses(ip: std::net::Ipv4Addr, bits in 0u8..=32) {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            let net = format!("{}/{bits}", std::net::Ipv4Addr::from(u32::from(ip) & mask));
            let inside = no_proxy_matches(&net, &ip.to_string(), 1);
            prop_assert!(inside, "{} {}", net, ip);
            if bits > 0 {
                let flipped = u32::from(ip) ^ (1 << (32 - u32::from(bits)));
                let outside = std::net::Ipv4Addr::from(flipped).to_string();
                let matched = no_proxy_matches(&net, &outside, 1);
                prop_assert!(!matched, "{} {}", net, outside);
            }
        }
    }
}
