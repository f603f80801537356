//! Per-client limits: a token bucket for what a client sends, and its outbox, a queue of what
//! it is sent, bounded in bytes.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hybi::{Message, PreparedMessage};

/// A token bucket: `rate` tokens a second, at most `burst` saved up. A rate of 0 is no limit.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Rate limiting of one client: messages over the limit are refused with an `error`; a client
/// that keeps going (as many refused messages as the burst, refilled at a tenth of the rate) is
/// closed with 1008.
#[derive(Debug, Clone)]
pub struct RateLimit {
    messages: Bucket,
    strikes: Bucket,
}

pub enum Verdict {
    Ok,
    Refuse,
    Close,
}

impl RateLimit {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            messages: Bucket::new(rate, burst),
            strikes: Bucket::new(rate / 10.0, burst),
        }
    }

    pub fn check(&mut self) -> Verdict {
        if self.messages.take() {
            Verdict::Ok
        } else if self.strikes.take() {
            Verdict::Refuse
        } else {
            Verdict::Close
        }
    }
}

/// One entry of an outbox: a message, the binary frame that must follow it at once, and the
/// room message id it carries (0 for anything else), so that a joiner's welcome can drop what
/// its history already holds.
pub struct Item {
    pub id: u64,
    pub msg: PreparedMessage,
    pub then: Option<PreparedMessage>,
}

impl Item {
    /// An item without a message id; `msg` is framed here when it is not shared.
    pub fn new(msg: impl Into<PreparedMessage>) -> Self {
        Self {
            id: 0,
            msg: msg.into(),
            then: None,
        }
    }

    fn size(&self) -> usize {
        self.msg.message().len() + self.then.as_ref().map_or(0, |m| m.message().len())
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    waker: Option<Waker>,
    /// Why the client is to be closed (1008), once it is.
    kicked: Option<&'static str>,
    /// The items queued before the welcome wait for it.
    welcomed: bool,
}

/// What a client is sent, shared between whoever broadcasts and the client's task. Bounded in
/// bytes: a client whose unsent messages would pass `budget` is kicked ("too slow"), its queue
/// freed at once; it may reconnect and resume with `since`.
pub struct Outbox {
    queue: Mutex<Queue>,
    budget: usize,
}

pub enum Pop {
    Item(Item),
    Kicked(&'static str),
}

impl Outbox {
    pub fn new(budget: usize) -> Self {
        Self {
            queue: Mutex::default(),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item without waiting; `false` once the client is kicked.
    pub fn push(&self, item: Item) -> bool {
        let mut q = self.lock();
        if q.kicked.is_some() {
            return false;
        }
        let size = item.size();
        if q.bytes + size > self.budget {
            q.kicked = Some("too slow");
            q.items = VecDeque::new();
            q.bytes = 0;
        } else {
            q.bytes += size;
            q.items.push_back(item);
        }
        if let Some(w) = q.waker.take() {
            w.wake();
        }
        q.kicked.is_none()
    }

    /// Puts the welcome first, drops the queued messages it covers (ids up to `last_id`: they
    /// are in its history) and lets the client's task take from the queue.
    pub fn welcome(&self, welcome: Message, last_id: u64) {
        let mut q = self.lock();
        let mut dropped = 0;
        q.items.retain(|i| {
            let keep = i.id == 0 || i.id > last_id;
            if !keep {
                dropped += i.size();
            }
            keep
        });
        q.bytes -= dropped;
        q.bytes += welcome.len();
        q.items.push_front(Item::new(welcome));
        q.welcomed = true;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    /// Queues a direct answer (an error, a `who` page) after what is already queued, ignoring
    /// the budget: answers are bounded by the client's own rate limit.
    pub fn answer(&self, msg: Message) {
        let mut q = self.lock();
        q.bytes += msg.len();
        q.items.push_back(Item::new(msg));
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Pop> {
        let mut q = self.lock();
        if let Some(why) = q.kicked {
            return Poll::Ready(Pop::Kicked(why));
        }
        if q.welcomed {
            if let Some(item) = q.items.pop_front() {
                q.bytes -= item.size();
                if q.items.is_empty() {
                    // Caught up: an idle client holds no queue.
                    q.items = VecDeque::new();
                }
                return Poll::Ready(Pop::Item(item));
            }
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Whether the client is kicked; registers for the wake-up of the next push otherwise (for a
    /// task that does not take from the outbox while its socket is behind).
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let mut q = self.lock();
        if let Some(why) = q.kicked {
            return Poll::Ready(why);
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes an item that is ready, without registering for more.
    pub fn try_pop(&self) -> Option<Item> {
        let mut q = self.lock();
        if q.kicked.is_some() || !q.welcomed {
            return None;
        }
        let item = q.items.pop_front()?;
        q.bytes -= item.size();
        Some(item)
    }

    /// Closes the client (1008) with `why`: its nickname was given to someone else.
    pub fn kick(&self, why: &'static str) {
        let mut q = self.lock();
        q.kicked = Some(why);
        q.items = VecDeque::new();
        q.bytes = 0;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }
}

/// Full-jitter exponential backoff: a random wait up to `base * 2^attempt`, capped.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
    ceiling.mul_f64((random_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

/// A random number from the clock and a counter (enough for jitter and instance ids).
pub fn random_u64() -> u64 {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // splitmix64
    let mut z = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()) << 32;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
