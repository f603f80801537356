//! Opening a client's transport: what the `connect` functions of both adapters share.
//!
//! [`ConnectOptions`] holds everything a client connection is made with: the protocol
//! [`Config`], the driver's [`Timeouts`] and, with TLS, the rustls configuration for `wss://`.
//! The adapters' `connect_with` open a TCP connection (and TLS over it) here, then run the
//! opening handshake over it with their own loop.

#[cfg(feature = "blocking")]
pub(crate) mod blocking;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

#[cfg(feature = "tls")]
use std::sync::Arc;

use crate::config::Config;
use crate::driver::Timeouts;

/// How a client connects: the protocol [`Config`], the [`Timeouts`] and (with TLS) the rustls
/// client configuration. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use hybi::{Config, ConnectOptions, Timeouts};
/// let options = ConnectOptions::default()
///     .with_config(Config::default().with_protocols(["chat"]))
///     .with_timeouts(Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(3))));
/// assert_eq!(options.config().protocols(), ["chat"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    config: Config,
    timeouts: Timeouts,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ConnectOptions {
    /// Sets the protocol configuration.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the timeouts (the handshake timeout bounds the TCP and TLS connect too).
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Sets the rustls client configuration for `wss://` (default: ring, safe protocol
    /// versions, the bundled web PKI roots).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn with_tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The rustls client configuration set by [`with_tls_config`](Self::with_tls_config).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }
}
