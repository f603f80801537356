//! WebSocket extensions (RFC 6455 §9). permessage-deflate (RFC 7692) is the one implemented.

pub(crate) mod deflate;
