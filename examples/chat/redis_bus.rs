//! The bus on Redis, shared by every instance that names the same Redis (`--redis URL`).
//!
//! # Schema (every key starts with the prefix, `chat:` by default)
//!
//! ```text
//! room:R:id        STRING  the room's newest message id (INCR)
//! room:R:history   LIST    the room's last 50 message objects (JSON), oldest first
//! room:R:nicks     HASH    nick key (NFKC, lowercased) -> instance id: unique nicknames
//! room:R:online    ZSET    display nick, scored by its join sequence number: the member list
//! room:R:seq       STRING  the room's join sequence (INCR)
//! instances        ZSET    instance id, scored by when it expires (ms, Redis clock)
//! inst:I           SET     "ROOM\nKEY\nDISPLAY" for every member of instance I
//! events           channel everything delivered to the rooms (one subscription per instance)
//! ```
//!
//! Every change is one Lua script, so it is atomic and its notice is published in the same
//! step: a message's id is assigned, stored and published together, so every instance receives
//! a room's messages in id order. Event payloads are lines: `M\nROOM\nID\nJSON` for a message
//! (`B\n...\nJSON\nBYTES` for a binary one), `P\nROOM\nCOUNT\n+NICK\n-NICK...` for presence.
//!
//! # Liveness
//!
//! Each instance refreshes its `instances` entry every `ttl / 3` (default ttl 15 s) and then
//! reaps: one script removes every expired instance's members and publishes one coalesced
//! `presence` leave per room. So when an instance dies (kill -9), its users are announced as
//! left within ttl + ttl / 3 (20 s by default).
//!
//! # Faults
//!
//! Redis pub/sub delivers at most once. When Redis cannot be reached, commands fail at once
//! with [`BusError::Unavailable`] (the client gets an `error`, nothing is buffered), and a
//! supervisor reconnects with full-jitter backoff (0.1 s doubling to 5 s), resubscribes, and
//! re-registers this instance's members (when its entry had expired or Redis lost its data,
//! which a heartbeat that adds rather than refreshes the entry reveals) and raises each room's
//! id counter to the newest id seen here, so that ids keep increasing after a Redis restart
//! without persistence. Messages published while an instance was cut off from the channel are
//! not delivered to it: their ids reveal the gap, and a client fetches it with `history`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use hybi::Utf8Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use tokio::sync::{watch, Notify};

use super::bus::{BoxFuture, Bus, BusError};
use super::limits::{backoff, random_u64};
use super::protocol::{Change, Draft, Nick, Page, Snapshot, HISTORY, PAGE};
use super::rooms::{Delivery, Rooms};
use super::stopped;

const JOIN: &str = r"
-- KEYS: nicks online seq inst  ARGV: inst key display room channel page entry
local owner = redis.call('HGET', KEYS[1], ARGV[2])
if owner and owner ~= ARGV[1] then return {-1} end
local fresh = not owner or not redis.call('ZSCORE', KEYS[2], ARGV[3])
if fresh then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], seq, ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[7])
end
local count = redis.call('ZCARD', KEYS[2])
if fresh then
  redis.call('PUBLISH', ARGV[5], 'P\n' .. ARGV[4] .. '\n' .. count .. '\n+' .. ARGV[3])
end
local page = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[6]), 'WITHSCORES')
return {count, page}
";

const LEAVE: &str = r"
-- KEYS: nicks online inst  ARGV: inst key display room channel entry
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[1] then return -1 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[6])
local count = redis.call('ZCARD', KEYS[2])
redis.call('PUBLISH', ARGV[5], 'P\n' .. ARGV[4] .. '\n' .. count .. '\n-' .. ARGV[3])
return count
";

const PUBLISH: &str = r"
-- KEYS: id history  ARGV: channel room prefix suffix kind bytes keep
local id = redis.call('INCR', KEYS[1])
local json = ARGV[3] .. id .. ARGV[4]
redis.call('RPUSH', KEYS[2], json)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
local payload = ARGV[5] .. '\n' .. ARGV[2] .. '\n' .. id .. '\n' .. json
if ARGV[5] == 'B' then payload = payload .. '\n' .. ARGV[6] end
redis.call('PUBLISH', ARGV[1], payload)
return id
";

const HEARTBEAT: &str = r"
-- KEYS: instances  ARGV: inst ttl_ms   returns 1 when the entry was missing
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
";

const REAP: &str = r"
-- KEYS: instances  ARGV: prefix channel
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local rooms, order = {}, {}
for _, inst in ipairs(dead) do
  local set = ARGV[1] .. 'inst:' .. inst
  for _, e in ipairs(redis.call('SMEMBERS', set)) do
    local room, key, display = string.match(e, '^([^\n]*)\n([^\n]*)\n(.*)$')
    if room then
      local base = ARGV[1] .. 'room:' .. room
      if redis.call('HGET', base .. ':nicks', key) == inst then
        redis.call('HDEL', base .. ':nicks', key)
        redis.call('ZREM', base .. ':online', display)
        if not rooms[room] then rooms[room] = {}; table.insert(order, room) end
        table.insert(rooms[room], '-' .. display)
      end
    end
  end
  redis.call('DEL', set)
  redis.call('ZREM', KEYS[1], inst)
end
for _, room in ipairs(order) do
  local count = redis.call('ZCARD', ARGV[1] .. 'room:' .. room .. ':online')
  redis.call('PUBLISH', ARGV[2], 'P\n' .. room .. '\n' .. count .. '\n' .. table.concat(rooms[room], '\n'))
end
return #dead
";

const RESEED: &str = r"
-- KEYS: id  ARGV: newest id seen
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
";

struct Scripts {
    join: Script,
    leave: Script,
    publish: Script,
    heartbeat: Script,
    reap: Script,
    reseed: Script,
}

/// Settings of the Redis bus.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub url: String,
    pub prefix: String,
    /// How long an instance's presence lives without a heartbeat.
    pub ttl: Duration,
}

pub struct RedisBus {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    up: AtomicBool,
    /// Wakes the supervisor when a command found the connection broken.
    broken: Notify,
    inst: String,
    prefix: String,
    channel: String,
    ttl: Duration,
    scripts: Scripts,
    rooms: Arc<Rooms>,
    /// Members whose leave failed while Redis was away: removed once it is back.
    stale: Mutex<Vec<(String, Nick)>>,
    /// Set once the first connection is up.
    ready: watch::Sender<bool>,
}

fn entry(room: &str, nick: &Nick) -> String {
    format!("{room}\n{}\n{}", nick.key, nick.display)
}

/// Pairs of (member, score) as ZRANGE WITHSCORES answers them, as a page.
fn page_of(flat: Vec<String>, count: u64, full: usize) -> Page {
    let mut members = Vec::with_capacity(flat.len() / 2);
    let mut last = 0;
    for pair in flat.chunks(2) {
        if let [m, s] = pair {
            members.push(m.clone());
            last = s.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    let next = (members.len() >= full && (members.len() as u64) < count).then_some(last);
    Page {
        members,
        count,
        next,
    }
}

impl RedisBus {
    /// Starts the bus: its supervisor connects (retrying until Redis answers), subscribes and
    /// keeps the heartbeat, until `stop`.
    pub fn start(
        options: RedisOptions,
        rooms: Arc<Rooms>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| format!("invalid Redis URL {:?}: {e}", options.url))?;
        let inst = format!("{}-{:016x}", std::process::id(), random_u64());
        let bus = Arc::new(Self {
            client,
            conn: Mutex::new(None),
            up: AtomicBool::new(false),
            broken: Notify::new(),
            channel: format!("{}events", options.prefix),
            prefix: options.prefix,
            inst,
            ttl: options.ttl,
            scripts: Scripts {
                join: Script::new(JOIN),
                leave: Script::new(LEAVE),
                publish: Script::new(PUBLISH),
                heartbeat: Script::new(HEARTBEAT),
                reap: Script::new(REAP),
                reseed: Script::new(RESEED),
            },
            rooms,
            stale: Mutex::default(),
            ready: watch::Sender::new(false),
        });
        tokio::spawn(bus.clone().supervise(stop));
        Ok(bus)
    }

    /// Completes once connected to Redis for the first time.
    pub async fn ready(&self) {
        let _ = self.ready.subscribe().wait_for(|r| *r).await;
    }

    fn key(&self, room: &str, what: &str) -> String {
        format!("{}room:{room}:{what}", self.prefix)
    }

    fn inst_key(&self) -> String {
        format!("{}inst:{}", self.prefix, self.inst)
    }

    fn connection(&self) -> Result<MultiplexedConnection, BusError> {
        if !self.up.load(Ordering::Acquire) {
            return Err(BusError::Unavailable);
        }
        self.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(BusError::Unavailable)
    }

    /// A command failed: Redis is unavailable until the supervisor has reconnected.
    fn failed(&self, e: &redis::RedisError) -> BusError {
        if self.up.swap(false, Ordering::AcqRel) {
            eprintln!("redis: {e}; reconnecting");
        }
        self.broken.notify_one();
        BusError::Unavailable
    }

    async fn supervise(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut attempt = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let connected = tokio::select! {
                c = self.connect() => c,
                _ = stopped(&mut stop) => return,
            };
            let (conn, pubsub) = match connected {
                Ok(c) => c,
                Err(e) => {
                    if attempt == 0 {
                        eprintln!("redis: cannot connect: {e}; retrying");
                    }
                    let wait = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = stopped(&mut stop) => return,
                    }
                }
            };
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
            if let Err(e) = self.resync(conn.clone(), true).await {
                eprintln!("redis: resync failed: {e}");
                continue;
            }
            attempt = 0;
            self.up.store(true, Ordering::Release);
            eprintln!("redis: connected as instance {}", self.inst);
            self.ready.send_replace(true);
            self.run(conn, pubsub, &mut stop).await;
            self.up.store(false, Ordering::Release);
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if *stop.borrow() {
                return;
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<(MultiplexedConnection, redis::aio::PubSub)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub =
            tokio::time::timeout(Duration::from_secs(2), self.client.get_async_pubsub())
                .await
                .map_err(|_| {
                    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })??;
        pubsub.subscribe(&self.channel).await?;
        Ok((conn, pubsub))
    }

    /// The heartbeat; when it finds this instance's entry missing (first start, expired while
    /// cut off, or Redis lost its data), or when `always`, re-registers this instance's members
    /// and raises the id counters to what this instance has seen.
    async fn resync(
        &self,
        mut conn: MultiplexedConnection,
        always: bool,
    ) -> redis::RedisResult<()> {
        let added: i64 = self
            .scripts
            .heartbeat
            .key(format!("{}instances", self.prefix))
            .arg(&self.inst)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        let stale = std::mem::take(&mut *self.stale.lock().unwrap_or_else(|e| e.into_inner()));
        if added == 0 && !always && stale.is_empty() {
            return Ok(());
        }
        let members = self.rooms.members();
        for (room, nick) in stale {
            if members.iter().any(|(r, n)| *r == room && n.key == nick.key) {
                // Left while Redis was away, and back (same room, same name) since.
                continue;
            }
            if let Err(e) = self.leave_script(&mut conn, &room, &nick).await {
                self.stale
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((room, nick));
                return Err(e);
            }
        }
        for (room, last_id) in self.rooms.last_ids() {
            let _: i64 = self
                .scripts
                .reseed
                .key(self.key(&room, "id"))
                .arg(last_id)
                .invoke_async(&mut conn)
                .await?;
        }
        for (room, nick) in members {
            match self.join_script(&mut conn, &room, &nick).await? {
                Some(_) => {}
                None => {
                    eprintln!(
                        "redis: {} lost nickname {:?} while cut off",
                        room, nick.display
                    );
                    self.rooms.kick(&room, &nick.key);
                }
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        mut conn: MultiplexedConnection,
        pubsub: redis::aio::PubSub,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut events = pubsub.into_on_message();
        let mut beat = tokio::time::interval(self.ttl / 3);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        loop {
            tokio::select! {
                msg = events.next() => match msg {
                    Some(msg) => self.on_event(msg.get_payload_bytes()),
                    None => {
                        eprintln!("redis: subscription lost; reconnecting");
                        return;
                    }
                },
                _ = beat.tick() => {
                    if let Err(e) = self.resync(conn.clone(), false).await {
                        eprintln!("redis: heartbeat failed: {e}; reconnecting");
                        return;
                    }
                    let reaped: redis::RedisResult<i64> = self
                        .scripts
                        .reap
                        .key(format!("{}instances", self.prefix))
                        .arg(&self.prefix)
                        .arg(&self.channel)
                        .invoke_async(&mut conn)
                        .await;
                    match reaped {
                        Ok(n) if n > 0 => eprintln!("redis: reaped {n} dead instance(s)"),
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("redis: reap failed: {e}; reconnecting");
                            return;
                        }
                    }
                }
                _ = self.broken.notified() => {
                    // A command failed; the connection may still be fine: check it.
                    let ping: redis::RedisResult<String> =
                        redis::cmd("PING").query_async(&mut conn).await;
                    if ping.is_err() {
                        return;
                    }
                    self.up.store(true, Ordering::Release);
                }
                _ = stopped(stop) => return,
            }
        }
    }

    /// Parses an event from the channel and hands it to the rooms.
    fn on_event(&self, payload: &[u8]) {
        let bytes = Bytes::copy_from_slice(payload);
        let mut parts = bytes.splitn(4, |&b| b == b'\n');
        let (Some(kind), Some(room), Some(num), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let (Ok(room), Some(num)) = (
            std::str::from_utf8(room),
            std::str::from_utf8(num)
                .ok()
                .and_then(|n| n.parse::<u64>().ok()),
        ) else {
            return;
        };
        let rest_at = bytes.len() - rest.len();
        let delivery = match kind {
            b"M" | b"B" => {
                let (json, binary) = if kind == b"B" {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        return;
                    };
                    (
                        bytes.slice(rest_at..rest_at + nl),
                        Some(bytes.slice(rest_at + nl + 1..)),
                    )
                } else {
                    (bytes.slice(rest_at..), None)
                };
                let Ok(json) = Utf8Bytes::try_from(json) else {
                    return;
                };
                Delivery::Message {
                    room: room.to_owned(),
                    id: num,
                    json,
                    binary,
                }
            }
            b"P" => {
                let Ok(rest) = std::str::from_utf8(rest) else {
                    return;
                };
                let changes = rest
                    .split('\n')
                    .filter_map(|l| {
                        let (sign, nick) = l.split_at_checked(1)?;
                        Some(Change {
                            joined: sign == "+",
                            nick: nick.to_owned(),
                        })
                    })
                    .collect();
                Delivery::Presence {
                    room: room.to_owned(),
                    changes,
                    count: num,
                }
            }
            _ => return,
        };
        self.rooms.deliver(delivery);
    }

    /// The join script: `None` when the nickname is taken.
    async fn join_script(
        &self,
        conn: &mut MultiplexedConnection,
        room: &str,
        nick: &Nick,
    ) -> redis::RedisResult<Option<Page>> {
        let answer: redis::Value = self
            .scripts
            .join
            .key(self.key(room, "nicks"))
            .key(self.key(room, "online"))
            .key(self.key(room, "seq"))
            .key(self.inst_key())
            .arg(&self.inst)
            .arg(&nick.key)
            .arg(&nick.display)
            .arg(room)
            .arg(&self.channel)
            .arg(PAGE - 1)
            .arg(entry(room, nick))
            .invoke_async(conn)
            .await?;
        let (count, flat): (i64, Vec<String>) = match redis::from_redis_value(&answer) {
            Ok(v) => v,
            Err(_) => return Ok(None), // {-1}: taken
        };
        Ok(Some(page_of(flat, count.max(0) as u64, PAGE)))
    }

    async fn leave_script(
        &self,
        conn: &mut MultiplexedConnection,
        room: &str,
        nick: &Nick,
    ) -> redis::RedisResult<()> {
        let _: i64 = self
            .scripts
            .leave
            .key(self.key(room, "nicks"))
            .key(self.key(room, "online"))
            .key(self.inst_key())
            .arg(&self.inst)
            .arg(&nick.key)
            .arg(&nick.display)
            .arg(room)
            .arg(&self.channel)
            .arg(entry(room, nick))
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    async fn read_history(
        &self,
        conn: &mut MultiplexedConnection,
        room: &str,
    ) -> redis::RedisResult<(Vec<String>, u64)> {
        let (history, last): (Vec<String>, Option<u64>) = redis::pipe()
            .lrange(self.key(room, "history"), 0, -1)
            .get(self.key(room, "id"))
            .query_async(conn)
            .await?;
        Ok((history, last.unwrap_or(0)))
    }
}

impl Bus for RedisBus {
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a Nick,
    ) -> BoxFuture<'a, Result<Snapshot, BusError>> {
        Box::pin(async move {
            let mut conn = self.connection()?;
            let page = match self.join_script(&mut conn, room, nick).await {
                Ok(Some(page)) => page,
                Ok(None) => return Err(BusError::Taken),
                Err(e) => return Err(self.failed(&e)),
            };
            let (history, last_id) = self
                .read_history(&mut conn, room)
                .await
                .map_err(|e| self.failed(&e))?;
            Ok(Snapshot {
                page,
                history,
                last_id,
            })
        })
    }

    fn leave<'a>(&'a self, room: &'a str, nick: &'a Nick) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let failed = |e: Option<&redis::RedisError>| {
                if let Some(e) = e {
                    self.failed(e);
                }
                self.stale
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((room.to_owned(), nick.clone()));
                BusError::Unavailable
            };
            let Ok(mut conn) = self.connection() else {
                return Err(failed(None));
            };
            match self.leave_script(&mut conn, room, nick).await {
                Ok(()) => Ok(()),
                Err(e) => Err(failed(Some(&e))),
            }
        })
    }

    fn publish<'a>(&'a self, room: &'a str, draft: Draft) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            let mut conn = self.connection()?;
            let (kind, bytes) = match &draft.binary {
                Some(b) => ("B", b.as_ref()),
                None => ("M", &b""[..]),
            };
            let id: redis::RedisResult<u64> = self
                .scripts
                .publish
                .key(self.key(room, "id"))
                .key(self.key(room, "history"))
                .arg(&self.channel)
                .arg(room)
                .arg(&draft.prefix)
                .arg(&draft.suffix)
                .arg(kind)
                .arg(bytes)
                .arg(HISTORY)
                .invoke_async(&mut conn)
                .await;
            id.map_err(|e| self.failed(&e))
        })
    }

    fn who<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Page, BusError>> {
        Box::pin(async move {
            let mut conn = self.connection()?;
            let (flat, count): (Vec<String>, u64) = redis::pipe()
                .cmd("ZRANGE")
                .arg(self.key(room, "online"))
                .arg(format!("({after}"))
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(PAGE)
                .arg("WITHSCORES")
                .zcard(self.key(room, "online"))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(&e))?;
            Ok(page_of(flat, count, PAGE))
        })
    }

    fn history<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(Vec<String>, u64), BusError>> {
        Box::pin(async move {
            let mut conn = self.connection()?;
            self.read_history(&mut conn, room)
                .await
                .map_err(|e| self.failed(&e))
        })
    }
}
