//! The two facts every layer needs and none owns: which end a connection is, and its state.
//!
//! A leaf module: it imports nothing from the crate.

/// Which end of the connection this is (RFC 6455 §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the upgrade request and masks every frame it sends (§5.3).
    Client,
    /// Answers the upgrade request and never masks (§5.1).
    Server,
}

/// The state of a connection, named as in RFC 6455 and the browser's `readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The opening handshake is in progress.
    Connecting,
    /// The handshake completed; messages flow both ways.
    Open,
    /// A close frame was sent or received; the closing handshake is in progress.
    Closing,
    /// The connection is closed.
    Closed,
}
