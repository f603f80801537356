//! The bus: what the instances of a chat share. Message ids, history, presence and unique
//! nicknames live here, and whatever it accepts it delivers, in id order, to the rooms of every
//! instance (this one included) through [`Rooms::deliver`].
//!
//! Two implementations: [`LocalBus`], in this process (the default: one instance), and
//! [`RedisBus`](super::redis_bus::RedisBus), shared by every instance on one Redis.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use hybi::Utf8Bytes;

use super::protocol::{Change, Draft, Nick, Page, Snapshot, HISTORY, PAGE};
use super::rooms::{Delivery, Rooms};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusError {
    /// The nickname is in use in that room (on any instance).
    Taken,
    /// The shared state cannot be reached (Redis is down): try again later.
    Unavailable,
}

/// What the instances share.
pub trait Bus: Send + Sync {
    /// Claims `nick` in `room` for this instance, announces the join, and returns the room as
    /// the joiner sees it: the first page of members (the joiner included) and the history.
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a Nick,
    ) -> BoxFuture<'a, Result<Snapshot, BusError>>;

    /// Releases `nick` in `room` and announces the leave.
    fn leave<'a>(&'a self, room: &'a str, nick: &'a Nick) -> BoxFuture<'a, Result<(), BusError>>;

    /// Gives a message its id, keeps it in the room's history and delivers it everywhere.
    fn publish<'a>(&'a self, room: &'a str, draft: Draft) -> BoxFuture<'a, Result<u64, BusError>>;

    /// The page of the room's members after the cursor `after` (0: the first page).
    fn who<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Page, BusError>>;

    /// The room's kept history, oldest first, and its newest id.
    fn history<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(Vec<String>, u64), BusError>>;
}

// ------------------------------------------------------------------------------ in process

#[derive(Default)]
struct LocalRoom {
    last_id: u64,
    history: VecDeque<String>,
    /// Members in join order: join sequence number → display nick.
    online: BTreeMap<u64, String>,
    /// Nick key → join sequence number.
    keys: HashMap<String, u64>,
    next_seq: u64,
}

impl LocalRoom {
    fn page(&self, after: u64) -> Page {
        let mut members = Vec::new();
        let mut next = None;
        for (&seq, nick) in self.online.range(after + 1..) {
            if members.len() == PAGE {
                next = Some(seq - 1);
                break;
            }
            members.push(nick.clone());
        }
        Page {
            members,
            count: self.online.len() as u64,
            next,
        }
    }
}

/// The bus of a single instance: everything in this process, under one lock. Deliveries are
/// made under that lock, so they are in id order.
pub struct LocalBus {
    rooms: Mutex<HashMap<String, LocalRoom>>,
    sink: Arc<Rooms>,
}

impl LocalBus {
    pub fn new(sink: Arc<Rooms>) -> Self {
        Self {
            rooms: Mutex::default(),
            sink,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, LocalRoom>, &Rooms) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rooms, &self.sink)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Bus for LocalBus {
    fn join<'a>(
        &'a self,
        room: &'a str,
        nick: &'a Nick,
    ) -> BoxFuture<'a, Result<Snapshot, BusError>> {
        ready(self.with(|rooms, sink| {
            let r = rooms.entry(room.to_owned()).or_default();
            if r.keys.contains_key(&nick.key) {
                return Err(BusError::Taken);
            }
            r.next_seq += 1;
            r.keys.insert(nick.key.clone(), r.next_seq);
            r.online.insert(r.next_seq, nick.display.clone());
            let snap = Snapshot {
                page: r.page(0),
                history: r.history.iter().cloned().collect(),
                last_id: r.last_id,
            };
            sink.deliver(Delivery::Presence {
                room: room.to_owned(),
                changes: vec![Change {
                    joined: true,
                    nick: nick.display.clone(),
                }],
                count: r.online.len() as u64,
            });
            Ok(snap)
        }))
    }

    fn leave<'a>(&'a self, room: &'a str, nick: &'a Nick) -> BoxFuture<'a, Result<(), BusError>> {
        ready(self.with(|rooms, sink| {
            let Some(r) = rooms.get_mut(room) else {
                return Ok(());
            };
            if let Some(seq) = r.keys.remove(&nick.key) {
                r.online.remove(&seq);
                sink.deliver(Delivery::Presence {
                    room: room.to_owned(),
                    changes: vec![Change {
                        joined: false,
                        nick: nick.display.clone(),
                    }],
                    count: r.online.len() as u64,
                });
            }
            // An empty room keeps its ids and history (clients may come back with `since`).
            Ok(())
        }))
    }

    fn publish<'a>(&'a self, room: &'a str, draft: Draft) -> BoxFuture<'a, Result<u64, BusError>> {
        ready(self.with(|rooms, sink| {
            let r = rooms.entry(room.to_owned()).or_default();
            r.last_id += 1;
            let id = r.last_id;
            let json = draft.with_id(id);
            if r.history.len() == HISTORY {
                r.history.pop_front();
            }
            r.history.push_back(json.clone());
            sink.deliver(Delivery::Message {
                room: room.to_owned(),
                id,
                json: Utf8Bytes::from(json),
                binary: draft.binary,
            });
            Ok(id)
        }))
    }

    fn who<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Page, BusError>> {
        ready(Ok(self.with(|rooms, _| {
            rooms.get(room).map(|r| r.page(after)).unwrap_or_default()
        })))
    }

    fn history<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(Vec<String>, u64), BusError>> {
        ready(Ok(self.with(|rooms, _| {
            rooms
                .get(room)
                .map(|r| (r.history.iter().cloned().collect(), r.last_id))
                .unwrap_or_default()
        })))
    }
}
