//! permessage-deflate negotiation (RFC 7692 §7.1): arbitrary `Sec-WebSocket-Extensions` offers
//! through the server's `negotiate_server`, arbitrary answers through the client's
//! `accept_client`, and each side's own output through the other (`hybi::fuzzing`, built only
//! under `cfg(fuzzing)`).
//!
//! Input: two settings (server, client), each 6 bytes (level, window bits ×2, flags), then the
//! offer header value and the answer header value, split at the first `\n` (lossy UTF-8).
//!
//! Properties:
//! - no panic;
//! - server, for any offer: an answer names permessage-deflate, states each parameter at most
//!   once, window bits within 8..=15, its server window never above the server's setting, and
//!   its no_context_takeover flags at least those the server sets; a default client that
//!   accepts the answer agrees on every parameter (so a client that offered any of the
//!   accepted elements, with no stricter wishes, agrees too);
//! - round trip: the server's answer to the client's own offer (`DeflateConfig::offer`) is
//!   accepted by that client, and both sides end with the same parameters, within what each
//!   side's settings allow; what the client asked for (no context takeover, window limits) is
//!   honoured;
//! - client, for any answer: accepted parameters are within 8..=15 and within what the client
//!   asked for; an answer without permessage-deflate is `Ok(None)`;
//! - the answer is independent of elements that are not permessage-deflate.
#![no_main]

use hybi::fuzzing::{
    deflate_accept_client, deflate_negotiate_server, deflate_offer, extension_elements,
    DeflateParams,
};
use hybi::DeflateConfig;
use libfuzzer_sys::fuzz_target;

fn config(b: &[u8]) -> DeflateConfig {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    DeflateConfig::default()
        .with_level(u32::from(at(0) % 10))
        .with_server_max_window_bits(8 + at(1) % 8)
        .with_client_max_window_bits(8 + at(2) % 8)
        .with_server_no_context_takeover(at(3) & 1 != 0)
        .with_client_no_context_takeover(at(3) & 2 != 0)
        .with_threshold(usize::from(at(4)))
}

/// What a config asks for, read back from its offer (the config's fields are private).
fn wishes(cfg: &DeflateConfig) -> (bool, bool, u8, u8) {
    let offer = deflate_offer(cfg);
    let bits = |name: &str| {
        offer
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .map_or(15, |v| v.parse::<u8>().unwrap())
    };
    (
        offer.contains("server_no_context_takeover"),
        offer.contains("client_no_context_takeover"),
        bits("server_max_window_bits"),
        bits("client_max_window_bits"),
    )
}

/// Checks a server answer element: its parameters, as stated.
fn check_answer(answer: &str, p: DeflateParams) {
    let mut parts = answer.split(';').map(str::trim);
    assert_eq!(parts.next(), Some("permessage-deflate"), "{answer:?}");
    let mut seen = Vec::new();
    let mut stated = (false, false, 15u8, None::<u8>);
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v.parse::<u8>().unwrap())),
            None => (param, None),
        };
        assert!(!seen.contains(&key), "{key} twice in {answer:?}");
        seen.push(key);
        match (key, value) {
            ("server_no_context_takeover", None) => stated.0 = true,
            ("client_no_context_takeover", None) => stated.1 = true,
            ("server_max_window_bits", Some(v)) => stated.2 = v,
            ("client_max_window_bits", Some(v)) => stated.3 = Some(v),
            _ => panic!("bad parameter {param:?} in {answer:?}"),
        }
        if let Some(v) = value {
            assert!((8..=15).contains(&v), "{answer:?}");
        }
    }
    assert_eq!(
        (stated.0, stated.1, stated.2),
        (p.0, p.1, p.2),
        "{answer:?}"
    );
    if let Some(v) = stated.3 {
        assert_eq!(v, p.3, "{answer:?}");
    }
}

fn in_range(p: DeflateParams) {
    assert!((8..=15).contains(&p.2) && (8..=15).contains(&p.3), "{p:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let server_cfg = config(&data[..6]);
    let client_cfg = config(&data[6..12]);
    let text = String::from_utf8_lossy(&data[12..]);
    let (offer_value, answer_value) = text.split_once('\n').unwrap_or((&text, ""));
    let offers = extension_elements(offer_value);
    let answers = extension_elements(answer_value);
    let (s_wish, c_wish) = (wishes(&server_cfg), wishes(&client_cfg));

    // The server on arbitrary offers.
    let chosen = deflate_negotiate_server(&offers, &server_cfg);
    if let Some((answer, p)) = &chosen {
        in_range(*p);
        check_answer(answer, *p);
        assert!(p.2 <= s_wish.2, "server window above its setting: {p:?}");
        assert!(p.0 >= s_wish.0 && p.1 >= s_wish.1, "{p:?}");
        match deflate_accept_client(std::slice::from_ref(answer), &DeflateConfig::default()) {
            Ok(Some(q)) => assert_eq!(q, *p, "client and server disagree on {answer:?}"),
            other => panic!("a default client refused {answer:?}: {other:?}"),
        }
    }
    // Elements that are not permessage-deflate change nothing.
    let only_deflate: Vec<String> = offers
        .iter()
        .filter(|o| {
            o.split(';')
                .next()
                .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case("permessage-deflate"))
        })
        .cloned()
        .collect();
    assert_eq!(deflate_negotiate_server(&only_deflate, &server_cfg), chosen);

    // Round trip: the client's own offer, first or after the arbitrary ones.
    let own = deflate_offer(&client_cfg);
    for list in [vec![own.clone()], {
        let mut v = offers.clone();
        v.push(own.clone());
        v
    }] {
        let Some((answer, p)) = deflate_negotiate_server(&list, &server_cfg) else {
            panic!("the server declined {list:?}");
        };
        if list.len() > 1 && chosen.is_some() {
            // An earlier acceptable offer wins (§5); the client did not make it.
            continue;
        }
        let q = match deflate_accept_client(std::slice::from_ref(&answer), &client_cfg) {
            Ok(Some(q)) => q,
            other => panic!("client refused the answer {answer:?} to its offer {own:?}: {other:?}"),
        };
        assert_eq!(q, p, "{own:?} → {answer:?}");
        in_range(p);
        // Both sides' wishes are honoured.
        assert!(p.0 >= c_wish.0 && p.0 >= s_wish.0, "{own:?} → {answer:?}");
        assert!(p.1 >= c_wish.1 && p.1 >= s_wish.1, "{own:?} → {answer:?}");
        assert!(p.2 <= c_wish.2 && p.2 <= s_wish.2, "{own:?} → {answer:?}");
        assert!(p.3 <= c_wish.3 && p.3 <= s_wish.3, "{own:?} → {answer:?}");
    }

    // The client on arbitrary answers.
    match deflate_accept_client(&answers, &client_cfg) {
        Ok(Some(p)) => {
            in_range(p);
            assert!(p.2 <= c_wish.2 && p.3 <= c_wish.3, "{answers:?} → {p:?}");
            assert!(p.0 >= c_wish.0 && p.1 >= c_wish.1, "{answers:?} → {p:?}");
        }
        Ok(None) => assert!(!answers.iter().any(|a| a
            .split(';')
            .next()
            .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case("permessage-deflate")))),
        Err(_) => {}
    }
});
