//! Limits and options for a [`Connection`](crate::Connection).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::extensions::deflate::DeflateConfig;

/// A source of randomness for mask keys (§5.3) and `Sec-WebSocket-Key` nonces (§4.1).
///
/// RFC 6455 §10.3 requires mask keys that the application cannot predict, so the default is the
/// operating system's CSPRNG ([`OsRandom`]). Tests inject a fixed source to get byte-exact output.
pub trait MaskSource: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG, through `getrandom`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl MaskSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator does not fail on supported platforms once seeded; a failure here means
        // the platform cannot provide the randomness RFC 6455 §10.3 requires, so stop loudly.
        getrandom::fill(buf).expect("the OS random number generator failed");
    }
}

/// Limits and options, shared cheaply between connections (cloning is a reference count).
///
/// Every limit has a safe default:
///
/// | option (set with `with_*`) | default |
/// |---|---|
/// | [`max_frame_size`](Self::max_frame_size) | 16 MiB |
/// | [`max_message_size`](Self::max_message_size) | 64 MiB |
/// | [`max_fragments`](Self::max_fragments) | 131 072 |
/// | [`max_header_bytes`](Self::max_header_bytes) | 8 KiB |
/// | [`max_headers`](Self::max_headers) | 64 |
/// | [`write_fragment_size`](Self::write_fragment_size) | none (one frame per message) |
/// | [`write_high_water`](Self::write_high_water) | 1 MiB |
/// | [`stream_fragments`](Self::stream_fragments) | off |
/// | [`auto_pong`](Self::auto_pong) | on |
/// | [`read_buffer_size`](Self::read_buffer_size) | 1 KiB |
/// | [`max_read_size`](Self::max_read_size) | 64 KiB |
/// | [`protocols`](Self::protocols) | none |
/// | [`deflate`](Self::deflate) | off |
///
/// Builders are named `with_*` and getters after the setting:
///
/// ```
/// use hybi::Config;
/// let cfg = Config::default()
///     .with_max_message_size(1 << 20)
///     .with_protocols(["chat"]);
/// assert_eq!(cfg.max_message_size(), 1 << 20);
/// assert_eq!(cfg.protocols(), ["chat"]);
/// ```
#[derive(Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    max_frame_size: u64,
    max_message_size: u64,
    max_fragments: usize,
    max_header_bytes: usize,
    max_headers: usize,
    write_fragment_size: Option<usize>,
    write_high_water: usize,
    stream_fragments: bool,
    auto_pong: bool,
    read_buffer_size: usize,
    max_read_size: usize,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    mask_source: Arc<dyn MaskSource>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                max_frame_size: 16 << 20,
                max_message_size: 64 << 20,
                max_fragments: 1 << 17,
                max_header_bytes: 8 << 10,
                max_headers: 64,
                write_fragment_size: None,
                write_high_water: 1 << 20,
                stream_fragments: false,
                auto_pong: true,
                read_buffer_size: 1 << 10,
                max_read_size: 64 << 10,
                protocols: Vec::new(),
                deflate: None,
                mask_source: Arc::new(OsRandom),
            }),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Config")
            .field("max_frame_size", &i.max_frame_size)
            .field("max_message_size", &i.max_message_size)
            .field("max_fragments", &i.max_fragments)
            .field("max_header_bytes", &i.max_header_bytes)
            .field("max_headers", &i.max_headers)
            .field("write_fragment_size", &i.write_fragment_size)
            .field("write_high_water", &i.write_high_water)
            .field("stream_fragments", &i.stream_fragments)
            .field("auto_pong", &i.auto_pong)
            .field("read_buffer_size", &i.read_buffer_size)
            .field("max_read_size", &i.max_read_size)
            .field("protocols", &i.protocols)
            .field("deflate", &i.deflate)
            .finish_non_exhaustive()
    }
}

macro_rules! option {
    ($(#[$doc:meta])* $name:ident, $set:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $set(mut self, value: $ty) -> Self {
            Arc::make_mut(&mut self.inner).$name = value;
            self
        }
        #[doc = concat!("The value set by [`", stringify!($set), "`](Self::", stringify!($set), ").")]
        pub fn $name(&self) -> $ty {
            self.inner.$name
        }
    };
}

impl Config {
    option!(
        /// The largest frame payload accepted; a larger frame fails the connection with 1009
        /// as soon as its header arrives, before any of its payload is buffered.
        max_frame_size, with_max_frame_size: u64
    );
    option!(
        /// The largest message accepted (the sum of its fragments); checked from each frame
        /// header before the payload is buffered. Exceeding it fails the connection with 1009.
        max_message_size, with_max_message_size: u64
    );
    option!(
        /// The most frames one message may have; more fail the connection with 1009.
        max_fragments, with_max_fragments: usize
    );
    option!(
        /// The largest opening-handshake head (request or response) accepted, in bytes. A larger
        /// head is answered with 431 by a server and fails the handshake.
        max_header_bytes, with_max_header_bytes: usize
    );
    option!(
        /// The most header fields an opening-handshake head may have (431 beyond).
        max_headers, with_max_headers: usize
    );
    option!(
        /// Split outgoing messages into frames of at most this many payload bytes
        /// (`None`: one frame per message).
        write_fragment_size, with_write_fragment_size: Option<usize>
    );
    option!(
        /// Queued output bytes above which the adapters' sending waits for the transport to
        /// take some (`Sink::poll_ready`, the split write half): the backpressure that keeps a
        /// slow reader from growing a sender's memory. Commands on a
        /// [`Connection`](crate::Connection) never wait;
        /// [`Connection::buffered_amount`](crate::Connection::buffered_amount) says how much is
        /// queued.
        write_high_water, with_write_high_water: usize
    );
    option!(
        /// Deliver data as [`Event::Fragment`](crate::Event::Fragment)s as it arrives, instead of
        /// assembling whole messages. The same UTF-8 and size checks apply.
        stream_fragments, with_stream_fragments: bool
    );
    option!(
        /// Answer pings with pongs automatically (RFC 6455 §5.5.2 requires an answer).
        auto_pong, with_auto_pong: bool
    );
    option!(
        /// The initial size of reads and of the read buffer. The buffer is allocated when data
        /// arrives, grows while reads fill it (up to [`max_read_size`](Self::max_read_size)) or
        /// a large frame needs room, gives back what grew past `max_read_size` on
        /// [`Connection::release_memory`](crate::Connection::release_memory), and is freed while
        /// the connection is idle ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)).
        read_buffer_size, with_read_buffer_size: usize
    );
    option!(
        /// The most one read offers room for when reads keep filling the room offered. Reads
        /// start at [`read_buffer_size`](Self::read_buffer_size) and double each time a read
        /// fills the buffer (a batch of messages, a large frame), up to this size, so a busy
        /// connection takes in what is waiting with few system calls; the size goes back down
        /// when the connection goes idle
        /// ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)). A
        /// frame larger than this still gets room for all of its payload, growing with the data
        /// that arrives.
        max_read_size, with_max_read_size: usize
    );

    /// The subprotocols this endpoint speaks, in preference order. A client offers them; a server
    /// that accepts with an [`Accept`](crate::Accept) naming none picks the first one the client
    /// offered that is in this list.
    #[must_use]
    pub fn with_protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Arc::make_mut(&mut self.inner).protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocols set by [`with_protocols`](Self::with_protocols).
    pub fn protocols(&self) -> &[String] {
        &self.inner.protocols
    }

    /// Turns permessage-deflate (RFC 7692) on: a client offers it, a server accepts a client's
    /// offer. Needs the `deflate` feature (default); without it, nothing is offered or accepted.
    #[must_use]
    pub fn with_deflate(mut self, deflate: DeflateConfig) -> Self {
        Arc::make_mut(&mut self.inner).deflate = Some(deflate);
        self
    }

    /// The permessage-deflate settings, if on.
    pub fn deflate(&self) -> Option<&DeflateConfig> {
        self.inner.deflate.as_ref()
    }

    /// Replaces the source of mask keys and nonces (default: [`OsRandom`]).
    #[must_use]
    pub fn with_mask_source(mut self, source: impl MaskSource + 'static) -> Self {
        Arc::make_mut(&mut self.inner).mask_source = Arc::new(source);
        self
    }

    /// The source of mask keys and nonces.
    pub fn mask_source(&self) -> &dyn MaskSource {
        &*self.inner.mask_source
    }
}
