//! What the blocking adapter needs of a byte stream, and the streams that have it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::connect::blocking::MaybeTlsStream;

/// A byte stream the blocking adapter can drive: `Read + Write`, plus the optional
/// capabilities that deadlines and a clean close need. The defaults do nothing, so any stream
/// can opt in with an empty `impl`, at the cost of no deadlines.
pub trait Transport: Read + Write {
    /// Sets how long a `read` may block (`None`: forever). Default: unsupported, ignored.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Sets how long a `write` may block (`None`: forever). Default: unsupported, ignored.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Shuts the write half down (TCP FIN). Default: nothing.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A transport with a second handle to the same connection, so that one thread can read while
/// another writes ([`WebSocket::into_split`](super::WebSocket::into_split)).
pub trait SplitTransport: Transport + Sized {
    /// Another handle to the same connection (`TcpStream::try_clone`).
    fn try_clone(&self) -> io::Result<Self>;
}

macro_rules! socket_transport {
    ($ty:ty) => {
        impl Transport for $ty {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_read_timeout(&*self, timeout)
            }
            fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_write_timeout(&*self, timeout)
            }
            fn shutdown_write(&mut self) -> io::Result<()> {
                self.shutdown(Shutdown::Write)
            }
        }

        impl SplitTransport for $ty {
            fn try_clone(&self) -> io::Result<Self> {
                <$ty>::try_clone(self)
            }
        }
    };
}

socket_transport!(TcpStream);
#[cfg(unix)]
socket_transport!(std::os::unix::net::UnixStream);

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.close_write()
    }
}

/// A timeout set on a transport, remembered so that it is set again only when the next
/// deadline comes before it expires: a busy connection makes no `setsockopt` call per read
/// or write.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Armed {
    /// When the timeout set expires: `None` before one is set, `Some(None)` for no timeout.
    until: Option<Option<std::time::Instant>>,
}

impl Armed {
    /// Makes the next call return by `deadline`. A timeout already set that expires before
    /// the deadline (but after `now`) is kept: the call then returns early and the deadlines
    /// are checked again, which is cheaper than setting it again.
    pub(crate) fn arm(
        &mut self,
        now: std::time::Instant,
        deadline: Option<std::time::Instant>,
        set: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        let keep = match (self.until, deadline) {
            (Some(None), None) => true,
            (Some(Some(until)), Some(at)) => until > now && until <= at,
            _ => false,
        };
        if !keep {
            let timeout = deadline.map(|at| {
                at.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            set(timeout)?;
            self.until = Some(timeout.map(|t| now + t));
        }
        Ok(())
    }
}

/// `true` for the errors a read or write timeout ends a call with.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
