//! permessage-deflate (RFC 7692): negotiation and the per-message codec.
//!
//! Negotiation is plain string logic and lives in the core. The codec uses `flate2` on its
//! pure-Rust zlib-rs backend (feature `deflate`, on by default), so no C library is needed.
//!
//! Notes on window bits: zlib cannot compress a raw DEFLATE stream with an 8-bit (256-byte)
//! window. When the peer limits our window to 8 bits, we send every message uncompressed, which
//! RFC 7692 §6 allows (compression is per message). Inflating always works: a decoder window at
//! least as large as the peer's is all that is needed.

use alloc::format;
use alloc::string::String;

use crate::handshake::split_list;
use crate::role::Role;

/// The extension's registered name.
pub(crate) const NAME: &str = "permessage-deflate";

/// Settings for permessage-deflate (RFC 7692), set with
/// [`Config::with_deflate`](crate::Config::with_deflate). Off unless configured. Builders are
/// named `with_*`, getters after the setting.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`level`](Self::level) | 6 | zlib compression level, 0-9 |
/// | [`server_max_window_bits`](Self::server_max_window_bits) | 15 | the server's LZ77 window (a client asks for it; a server uses at most it) |
/// | [`client_max_window_bits`](Self::client_max_window_bits) | 15 | the client's window (a client uses at most it; a server asks for it) |
/// | [`server_no_context_takeover`](Self::server_no_context_takeover) | off | the server resets its compressor after each message |
/// | [`client_no_context_takeover`](Self::client_no_context_takeover) | off | the client resets its compressor after each message |
/// | [`threshold`](Self::threshold) | 32 | messages shorter than this are sent uncompressed |
///
/// Memory, measured with a counting allocator (`tests/memory.rs`): a connection that has
/// compressed and inflated a message with context takeover holds about 430 KB with 15-bit
/// windows and about 300 KB with 10-bit windows (the zlib state of both directions). With
/// `no_context_takeover` in a direction, that side's state is dropped by
/// [`Connection::release_memory`](crate::Connection::release_memory) between messages: with
/// both, an idle compressing connection holds about 2 KB.
///
/// ```
/// use hybi::{Config, DeflateConfig};
/// let cfg = Config::default()
///     .with_deflate(DeflateConfig::default().with_level(1).with_client_no_context_takeover(true));
/// assert_eq!(cfg.deflate().map(|d| d.level()), Some(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    level: u32,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            threshold: 32,
        }
    }
}

impl DeflateConfig {
    /// The compression level, 0 (none) to 9 (best); clamped to 9.
    #[must_use]
    pub fn with_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// The value set by [`with_level`](Self::with_level).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// The server's window bits, 8-15 (clamped).
    #[must_use]
    pub fn with_server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The value set by [`with_server_max_window_bits`](Self::with_server_max_window_bits).
    pub fn server_max_window_bits(&self) -> u8 {
        self.server_max_window_bits
    }

    /// The client's window bits, 8-15 (clamped).
    #[must_use]
    pub fn with_client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The value set by [`with_client_max_window_bits`](Self::with_client_max_window_bits).
    pub fn client_max_window_bits(&self) -> u8 {
        self.client_max_window_bits
    }

    /// Ask for (client) or apply (server) `server_no_context_takeover`.
    #[must_use]
    pub fn with_server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// The value set by [`with_server_no_context_takeover`](Self::with_server_no_context_takeover).
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// Apply (client) or ask for (server) `client_no_context_takeover`.
    #[must_use]
    pub fn with_client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// The value set by [`with_client_no_context_takeover`](Self::with_client_no_context_takeover).
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// Messages shorter than `bytes` are sent uncompressed.
    #[must_use]
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The value set by [`with_threshold`](Self::with_threshold).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The client's offer, as one `Sec-WebSocket-Extensions` element (RFC 7692 §7.1).
    pub(crate) fn offer(&self) -> String {
        let mut s = String::from(NAME);
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        // Always say we accept a limit on our window (§7.1.2.2).
        s.push_str("; client_max_window_bits");
        if self.client_max_window_bits < 15 {
            s.push_str(&format!("={}", self.client_max_window_bits));
        }
        s
    }
}

/// The negotiated parameters (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: u8,
    pub(crate) client_max_window_bits: u8,
}

/// The parameters of one element, as written (each at most once).
#[derive(Debug, Default)]
struct Raw {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `None`: absent; `Some(None)`: present without a value.
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// `true` when `element` names permessage-deflate.
pub(crate) fn is_deflate(element: &str) -> bool {
    element
        .split(';')
        .next()
        .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(NAME))
}

/// A window-bits value: a decimal integer 8-15 without leading zeros (§7.1.2.1), possibly in
/// a quoted string.
fn window_bits(value: &str) -> Option<u8> {
    let v = value.trim_ascii();
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// Parses the parameters of one permessage-deflate element: unknown or repeated parameters and
/// invalid values are errors (§7, "MUST decline" / "MUST fail").
fn parse(element: &str) -> Result<Raw, &'static str> {
    let mut raw = Raw::default();
    for param in split_list(element, b';').skip(1) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim_ascii(), Some(v)),
            None => (param, None),
        };
        let key = key.to_ascii_lowercase();
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) if !raw.server_no_context_takeover => {
                raw.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !raw.client_no_context_takeover => {
                raw.client_no_context_takeover = true
            }
            ("server_max_window_bits", v) if raw.server_max_window_bits.is_none() => {
                raw.server_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v).ok_or("invalid server_max_window_bits")?),
                    None => None,
                });
            }
            ("client_max_window_bits", v) if raw.client_max_window_bits.is_none() => {
                raw.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v).ok_or("invalid client_max_window_bits")?),
                    None => None,
                });
            }
            ("server_no_context_takeover" | "client_no_context_takeover", Some(_)) => {
                return Err("no_context_takeover takes no value")
            }
            (
                "server_no_context_takeover"
                | "client_no_context_takeover"
                | "server_max_window_bits"
                | "client_max_window_bits",
                _,
            ) => return Err("repeated permessage-deflate parameter"),
            _ => return Err("unknown permessage-deflate parameter"),
        }
    }
    Ok(raw)
}

/// Server: picks the first acceptable permessage-deflate offer (§5, §7.1) and returns the
/// response element and the parameters in force. Offers with unknown parameters or invalid
/// values are declined; `None` when no offer is acceptable.
pub(crate) fn negotiate_server(offers: &[String], cfg: &DeflateConfig) -> Option<(String, Params)> {
    for offer in offers.iter().filter(|o| is_deflate(o)) {
        let Ok(raw) = parse(offer) else { continue };
        // server_max_window_bits needs a value in an offer (§7.1.2.1).
        if raw.server_max_window_bits == Some(None) {
            continue;
        }
        let server_nct = raw.server_no_context_takeover || cfg.server_no_context_takeover;
        let client_nct = raw.client_no_context_takeover || cfg.client_no_context_takeover;
        let (server_bits, say_server_bits) = match raw.server_max_window_bits {
            Some(Some(asked)) => (asked.min(cfg.server_max_window_bits), true),
            _ => (cfg.server_max_window_bits, cfg.server_max_window_bits < 15),
        };
        let (client_bits, say_client_bits) = match raw.client_max_window_bits {
            // The client accepts a limit: impose ours, or echo its hint.
            Some(hint) => {
                let bits = hint.unwrap_or(15).min(cfg.client_max_window_bits);
                (bits, bits < 15 || hint.is_some())
            }
            // It does not: it may use up to 15 bits, and we inflate with that.
            None => (15, false),
        };
        let mut response = String::from(NAME);
        if server_nct {
            response.push_str("; server_no_context_takeover");
        }
        if client_nct {
            response.push_str("; client_no_context_takeover");
        }
        if say_server_bits {
            response.push_str(&format!("; server_max_window_bits={server_bits}"));
        }
        if say_client_bits {
            response.push_str(&format!("; client_max_window_bits={client_bits}"));
        }
        let params = Params {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        return Some((response, params));
    }
    None
}

/// Client: checks the server's answer to our offer (§7.1): `Ok(None)` when the server did not
/// accept permessage-deflate, an error when the answer is one the client MUST fail on.
pub(crate) fn accept_client(
    response: &[String],
    cfg: &DeflateConfig,
) -> Result<Option<Params>, &'static str> {
    let mut answers = response.iter().filter(|e| is_deflate(e));
    let Some(answer) = answers.next() else {
        return Ok(None);
    };
    if answers.next().is_some() {
        return Err("permessage-deflate accepted more than once");
    }
    let raw = parse(answer)?;
    if cfg.server_no_context_takeover && !raw.server_no_context_takeover {
        return Err("server ignored server_no_context_takeover");
    }
    let server_bits = match raw.server_max_window_bits {
        Some(Some(v)) if v <= cfg.server_max_window_bits => v,
        Some(Some(_)) => return Err("server_max_window_bits above the offer"),
        Some(None) => return Err("server_max_window_bits without a value"),
        None if cfg.server_max_window_bits < 15 => {
            return Err("server ignored server_max_window_bits")
        }
        None => 15,
    };
    let client_bits = match raw.client_max_window_bits {
        Some(Some(v)) if v <= cfg.client_max_window_bits => v,
        Some(Some(_)) => return Err("client_max_window_bits above the offer"),
        Some(None) => return Err("client_max_window_bits without a value"),
        None => cfg.client_max_window_bits,
    };
    Ok(Some(Params {
        server_no_context_takeover: raw.server_no_context_takeover,
        client_no_context_takeover: raw.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }))
}

/// Why inflating a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
pub(crate) enum InflateError {
    /// The inflated message would exceed the limit.
    TooLarge,
    /// The compressed data is corrupt.
    Corrupt,
}

#[cfg(feature = "deflate")]
pub(crate) use codec::{compress_message, Deflate};

#[cfg(not(feature = "deflate"))]
pub(crate) use stub::Deflate;

#[cfg(feature = "deflate")]
mod codec {
    use alloc::vec::Vec;
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

    use super::{DeflateConfig, InflateError, Params, Role};

    /// The bytes a sync flush ends with; removed after compressing, restored before inflating
    /// the end of a message (§7.2.1, §7.2.2).
    const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

    /// The per-connection codec state.
    pub(crate) struct Deflate {
        level: u32,
        threshold: usize,
        /// Our compressor's window bits (ours to respect); 8 means: never compress.
        own_bits: u8,
        own_reset: bool,
        peer_bits: u8,
        peer_reset: bool,
        compress: Option<Compress>,
        decompress: Option<Decompress>,
        /// The peer ended its stream with a final block (§7.2.3.5) in the message being
        /// received: the rest of the message is ignored, the next one starts afresh.
        peer_stream_ended: bool,
    }

    impl core::fmt::Debug for Deflate {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Deflate")
                .field("own_bits", &self.own_bits)
                .field("own_reset", &self.own_reset)
                .field("peer_bits", &self.peer_bits)
                .field("peer_reset", &self.peer_reset)
                .finish_non_exhaustive()
        }
    }

    /// Compresses `data` as one message with `c` into `out` (empty), with a sync flush whose
    /// trailer is then removed (RFC 7692 §7.2.1). Returns `false` (and `out` empty) when the
    /// message should go out uncompressed. Without context takeover (`reset`), only what
    /// shrinks is compressed; with it, sending the message raw would cost the shared history
    /// (the compressor must reset), so a little overhead is worth keeping it: the next
    /// messages refer back to this one.
    fn compress_into(c: &mut Compress, data: &[u8], out: &mut Vec<u8>, reset: bool) -> bool {
        let start = c.total_in();
        out.reserve(data.len() / 2 + 64);
        loop {
            let used = (c.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let room = out.capacity() - out.len();
            if c.compress_vec(&data[used..], out, FlushCompress::Sync)
                .is_err()
            {
                // Cannot happen with valid arguments; send the message as it is.
                c.reset();
                out.clear();
                return false;
            }
            let done = (c.total_in() - start) as usize == data.len();
            // A sync flush is complete once it stops filling the output.
            if done && out.capacity() - out.len() > 0 && room > 0 {
                break;
            }
        }
        let packed = out.len().saturating_sub(TRAILER.len());
        let worth = if reset {
            packed < data.len()
        } else {
            packed <= data.len() + data.len() / 16 + 8
        };
        let compressed = out.ends_with(&TRAILER) && worth;
        if !compressed || reset {
            // Uncompressed: the compressor's history now has data the peer never inflates,
            // so it must start afresh; with no_context_takeover it does anyway.
            c.reset();
        }
        if compressed {
            out.truncate(out.len() - TRAILER.len());
        } else {
            out.clear();
        }
        compressed
    }

    /// Compresses one message on its own (no context takeover) with `level` and a window of
    /// `bits`: the payload of a frame with RSV1, or `None` when it does not shrink.
    pub(crate) fn compress_message(data: &[u8], level: u32, bits: u8) -> Option<Vec<u8>> {
        let mut c = Compress::new_with_window_bits(Compression::new(level), false, bits.max(9));
        let mut out = Vec::new();
        compress_into(&mut c, data, &mut out, true).then_some(out)
    }

    impl Deflate {
        pub(crate) fn new(role: Role, params: Params, cfg: &DeflateConfig) -> Option<Self> {
            Some(Self::with(role, params, cfg))
        }

        fn with(role: Role, params: Params, cfg: &DeflateConfig) -> Self {
            let (own_bits, own_reset, peer_bits, peer_reset) = match role {
                Role::Server => (
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                ),
                Role::Client => (
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                ),
            };
            Self {
                level: cfg.level,
                threshold: cfg.threshold,
                own_bits,
                own_reset,
                peer_bits,
                peer_reset,
                compress: None,
                decompress: None,
                peer_stream_ended: false,
            }
        }

        /// Compresses a whole message into `out` (cleared first). Returns `false` when the
        /// message goes out uncompressed: shorter than the threshold, not worth it compressed
        /// (see [`compress_into`]), or our window is limited to 8 bits.
        pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
            out.clear();
            if data.len() < self.threshold || self.own_bits < 9 {
                return false;
            }
            let (level, bits) = (self.level, self.own_bits);
            let c = self.compress.get_or_insert_with(|| {
                Compress::new_with_window_bits(Compression::new(level), false, bits)
            });
            compress_into(c, data, out, self.own_reset)
        }

        /// With no context takeover on our side, every message is compressed on its own, so
        /// the same bytes serve every connection with the same window and level: those
        /// parameters, and the threshold below which messages go out uncompressed. `None` with
        /// context takeover (each connection's history differs) or an 8-bit window.
        pub(crate) fn shared_compression(&self) -> Option<(u8, u32, usize)> {
            (self.own_reset && self.own_bits >= 9).then_some((
                self.own_bits,
                self.level,
                self.threshold,
            ))
        }

        /// Inflates `input` (the next bytes of a compressed message) onto `out`, and at the end
        /// of the message (`fin`) the sync-flush trailer. `out` may grow to at most `limit`
        /// bytes: beyond that the message is too large, found before it is all inflated.
        pub(crate) fn inflate(
            &mut self,
            input: &[u8],
            fin: bool,
            out: &mut Vec<u8>,
            limit: usize,
        ) -> Result<(), InflateError> {
            if self.peer_stream_ended {
                // Whatever follows the final block (the trailer, or more) is ignored, however
                // the message's payload was cut into calls.
                if fin {
                    self.peer_stream_ended = false;
                    if let Some(d) = &mut self.decompress {
                        d.reset(false);
                    }
                }
                return Ok(());
            }
            let bits = self.peer_bits.max(9);
            let d = self
                .decompress
                .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
            let mut ended = false;
            for part in [input, if fin { &TRAILER[..] } else { &[][..] }] {
                if ended {
                    break;
                }
                let start = d.total_in();
                loop {
                    let used = (d.total_in() - start) as usize;
                    if out.len() > limit {
                        return Err(InflateError::TooLarge);
                    }
                    if out.capacity() - out.len() < 1024 {
                        // Grow with the output, never past the limit (plus one byte, to see it
                        // exceeded): a small input cannot make a large allocation.
                        let want = out.capacity().max(4096).min(limit + 1 - out.len()).max(1);
                        // Exact: `reserve` may double past the limit.
                        out.reserve_exact(want);
                    }
                    let before_out = out.len();
                    let status = d
                        .decompress_vec(&part[used..], out, FlushDecompress::Sync)
                        .map_err(|_| InflateError::Corrupt)?;
                    if status == Status::StreamEnd {
                        ended = true;
                        break;
                    }
                    let used_now = (d.total_in() - start) as usize;
                    let progress = used_now > used || out.len() > before_out;
                    if used_now == part.len() && out.len() < out.capacity() {
                        break;
                    }
                    if !progress {
                        break;
                    }
                }
            }
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            if fin && (ended || self.peer_reset) {
                d.reset(false);
            } else if ended {
                self.peer_stream_ended = true;
            }
            Ok(())
        }

        /// Drops codec state that the next message will not need (no context takeover).
        pub(crate) fn release(&mut self) {
            if self.own_reset {
                self.compress = None;
            }
            if self.peer_reset {
                self.decompress = None;
            }
        }
    }
}

#[cfg(not(feature = "deflate"))]
mod stub {
    use alloc::vec::Vec;

    use super::{DeflateConfig, InflateError, Params, Role};

    /// Without the `deflate` feature no codec exists: this type has no values.
    #[derive(Debug)]
    pub(crate) enum Deflate {}

    impl Deflate {
        pub(crate) fn new(_: Role, _: Params, _: &DeflateConfig) -> Option<Self> {
            None
        }
        pub(crate) fn compress(&mut self, _: &[u8], _: &mut Vec<u8>) -> bool {
            match *self {}
        }
        pub(crate) fn inflate(
            &mut self,
            _: &[u8],
            _: bool,
            _: &mut Vec<u8>,
            _: usize,
        ) -> Result<(), InflateError> {
            match *self {}
        }
        pub(crate) fn release(&mut self) {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn offers(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn window_bits_values() {
        for (v, ok) in [
            ("8", Some(8)),
            ("15", Some(15)),
            ("\"10\"", Some(10)),
            ("7", None),
            ("16", None),
            ("08", None),
            ("", None),
            ("1a", None),
        ] {
            assert_eq!(window_bits(v), ok, "{v}");
        }
    }

    #[test]
    fn server_negotiation_table() {
        let cfg = DeflateConfig::default();
        let table: &[(&[&str], Option<&str>)] = &[
            (&["permessage-deflate"], Some("permessage-deflate")),
            (
                &["permessage-deflate; client_max_window_bits"],
                Some("permessage-deflate"),
            ),
            (
                &["permessage-deflate; client_max_window_bits=10"],
                Some("permessage-deflate; client_max_window_bits=10"),
            ),
            (
                &["permessage-deflate; server_max_window_bits=9; client_no_context_takeover"],
                Some("permessage-deflate; client_no_context_takeover; server_max_window_bits=9"),
            ),
            (
                &["permessage-deflate; server_no_context_takeover"],
                Some("permessage-deflate; server_no_context_takeover"),
            ),
            // Declined offers: the next acceptable one wins (§5).
            (
                &[
                    "permessage-deflate; unknown_param",
                    "permessage-deflate; server_max_window_bits=16",
                    "permessage-deflate; server_max_window_bits",
                    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                    "permessage-deflate; client_no_context_takeover=1",
                    "x-other",
                    "permessage-deflate; client_max_window_bits=12",
                ],
                Some("permessage-deflate; client_max_window_bits=12"),
            ),
            (&["permessage-deflate; foo=bar"], None),
            (&["x-webkit-deflate-frame"], None),
        ];
        for (offered, expected) in table {
            let got = negotiate_server(&offers(offered), &cfg).map(|(r, _)| r);
            assert_eq!(got.as_deref(), *expected, "{offered:?}");
        }
    }

    #[test]
    fn server_applies_its_own_limits() {
        let cfg = DeflateConfig::default()
            .with_server_max_window_bits(10)
            .with_client_max_window_bits(11)
            .with_server_no_context_takeover(true);
        let (resp, p) = negotiate_server(
            &offers(&["permessage-deflate; client_max_window_bits"]),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
        );
        assert_eq!(
            p,
            Params {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: 10,
                client_max_window_bits: 11
            }
        );
        // A client that does not accept a window limit gets none (and may use 15 bits).
        let (resp, p) = negotiate_server(&offers(&["permessage-deflate"]), &cfg).unwrap();
        assert!(!resp.contains("client_max_window_bits"));
        assert_eq!(p.client_max_window_bits, 15);
    }

    #[test]
    fn client_offer_and_checks() {
        let cfg = DeflateConfig::default();
        assert_eq!(cfg.offer(), "permessage-deflate; client_max_window_bits");
        let ok = |r: &str| accept_client(&offers(&[r]), &cfg);
        assert_eq!(ok("x-other"), Ok(None));
        assert_eq!(
            ok("permessage-deflate; server_no_context_takeover; client_max_window_bits=9")
                .unwrap()
                .unwrap(),
            Params {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 9
            }
        );
        for bad in [
            "permessage-deflate; nope",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        assert!(
            accept_client(&offers(&["permessage-deflate", "permessage-deflate"]), &cfg).is_err()
        );
        // What we asked for must be honoured.
        let strict = DeflateConfig::default()
            .with_server_max_window_bits(10)
            .with_server_no_context_takeover(true)
            .with_client_max_window_bits(12);
        assert_eq!(
            strict.offer(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        );
        let check = |r: &str| accept_client(&offers(&[r]), &strict);
        assert!(check("permessage-deflate; server_max_window_bits=10").is_err());
        assert!(check("permessage-deflate; server_no_context_takeover").is_err());
        assert!(
            check("permessage-deflate; server_no_context_takeover; server_max_window_bits=11")
                .is_err()
        );
        assert!(check("permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=13").is_err());
        let p = check("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (9, 12)
        );
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn rfc7692_hello_examples() {
        // §7.2.3.1: "Hello" compressed in one block.
        let params = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let cfg = DeflateConfig::default().with_threshold(0);
        let mut d = Deflate::new(Role::Client, params, &cfg).unwrap();
        let mut out = Vec::new();
        d.inflate(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the second "Hello" with context takeover uses a back-reference.
        out.clear();
        d.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: a stored (uncompressed) DEFLATE block.
        let mut d = Deflate::new(Role::Client, params, &cfg).unwrap();
        out.clear();
        d.inflate(
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.4: two DEFLATE blocks in one message.
        let mut d = Deflate::new(Role::Client, params, &cfg).unwrap();
        out.clear();
        d.inflate(
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.5: a final (BFINAL) block: the next message starts afresh.
        let mut d = Deflate::new(Role::Client, params, &cfg).unwrap();
        out.clear();
        d.inflate(
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        out.clear();
        d.inflate(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            &mut out,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out, b"Hello");
        // Compressed, "Hello" would take 5 bytes plus the block framing, no less than the
        // message itself: without context takeover it is sent uncompressed (RSV1 clear), and
        // nothing is left behind. (With takeover it would go compressed to keep the history.)
        let fresh = Params {
            server_no_context_takeover: true,
            ..params
        };
        let mut c = Deflate::new(Role::Server, fresh, &cfg).unwrap();
        let mut packed = Vec::new();
        assert!(!c.compress(b"Hello", &mut packed));
        assert!(packed.is_empty());
        // A longer one does compress, and inflates back after the reset.
        let long = b"Hello Hello Hello Hello Hello Hello Hello Hello";
        assert!(c.compress(long, &mut packed));
        let mut d = Deflate::new(Role::Client, params, &cfg).unwrap();
        out.clear();
        d.inflate(&packed, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, long);
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn roundtrip_with_and_without_context_takeover() {
        for reset in [false, true] {
            for bits in [9u8, 12, 15] {
                let params = Params {
                    server_no_context_takeover: reset,
                    client_no_context_takeover: reset,
                    server_max_window_bits: bits,
                    client_max_window_bits: bits,
                };
                let cfg = DeflateConfig::default();
                let mut tx = Deflate::new(Role::Server, params, &cfg).unwrap();
                let mut rx = Deflate::new(Role::Client, params, &cfg).unwrap();
                let mut sizes = Vec::new();
                for i in 0..20 {
                    let msg = format!(
                        "{{\"type\":\"message\",\"from\":\"alice\",\"text\":\"hello number {i}\"}}"
                    )
                    .repeat(3);
                    let mut packed = Vec::new();
                    assert!(tx.compress(msg.as_bytes(), &mut packed));
                    sizes.push(packed.len());
                    let mut out = Vec::new();
                    rx.inflate(&packed, true, &mut out, 1 << 20).unwrap();
                    assert_eq!(out, msg.as_bytes());
                    tx.release();
                    rx.release();
                }
                if !reset {
                    // Context takeover: later messages shrink thanks to the shared history.
                    assert!(sizes[19] < sizes[0], "{sizes:?}");
                }
            }
        }
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn zip_bomb_stops_at_the_limit() {
        let params = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let cfg = DeflateConfig::default();
        let mut tx = Deflate::new(Role::Server, params, &cfg).unwrap();
        let bomb = vec![0u8; 8 << 20];
        let mut packed = Vec::new();
        assert!(tx.compress(&bomb, &mut packed));
        assert!(packed.len() < 16 << 10, "{}", packed.len());
        let mut rx = Deflate::new(Role::Client, params, &cfg).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            rx.inflate(&packed, true, &mut out, 1 << 20),
            Err(InflateError::TooLarge)
        );
        assert!(out.capacity() <= (1 << 20) + 8192, "{}", out.capacity());
        // Garbage is reported, not a panic.
        let mut rx = Deflate::new(Role::Client, params, &cfg).unwrap();
        assert_eq!(
            rx.inflate(&[0xff; 64], true, &mut Vec::new(), 1 << 20),
            Err(InflateError::Corrupt)
        );
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn window_of_8_bits_sends_uncompressed() {
        let params = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 8,
            client_max_window_bits: 8,
        };
        let mut tx = Deflate::new(Role::Server, params, &DeflateConfig::default()).unwrap();
        let mut out = Vec::new();
        assert!(!tx.compress(&[b'a'; 1000], &mut out));
    }
}
