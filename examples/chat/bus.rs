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

/// Rooms the in-process bus keeps (with members or with history for clients that come back).
pub const MAX_ROOMS: usize = 10_000;

/// The bus of a single instance: everything in this process, under one lock. Deliveries are
/// made under that lock, so they are in id order.
///
/// An empty room keeps its ids and history (its clients may come back with `since`) until
/// `max_rooms` rooms exist: then a new room replaces an empty one, and when none is empty it
/// cannot be made (the join gets "room temporarily unavailable"), so that joining ever new
/// rooms cannot grow the server's memory without bound.
pub struct LocalBus {
    rooms: Mutex<HashMap<String, LocalRoom>>,
    sink: Arc<Rooms>,
    max_rooms: usize,
}

impl LocalBus {
    pub fn new(sink: Arc<Rooms>, max_rooms: usize) -> Self {
        Self {
            rooms: Mutex::default(),
            sink,
            max_rooms,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, LocalRoom>, &Rooms) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rooms, &self.sink)
    }
}

/// The room `name`, made if need be (replacing an empty room at the limit); `None` when the
/// limit is reached and every room has members.
fn room_mut<'r>(
    rooms: &'r mut HashMap<String, LocalRoom>,
    name: &str,
    max: usize,
) -> Option<&'r mut LocalRoom> {
    if !rooms.contains_key(name) && rooms.len() >= max {
        let empty = rooms
            .iter()
            .find(|(_, r)| r.online.is_empty())
            .map(|(k, _)| k.clone())?;
        rooms.remove(&empty);
    }
    Some(rooms.entry(name.to_owned()).or_default())
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
            let r = room_mut(rooms, room, self.max_rooms).ok_or(BusError::Unavailable)?;
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
            // The sender is a member: its room exists.
            let r = room_mut(rooms, room, self.max_rooms).ok_or(BusError::Unavailable)?;
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

#[cfg(test)]
mod tests {
    use super::super::protocol::nick;
    use super::*;

    #[test]
    fn local_bus_keeps_at_most_max_rooms() {
        let bus = LocalBus::new(Arc::new(Rooms::default()), 2);
        let block = |f: BoxFuture<'_, Result<Snapshot, BusError>>| {
            futures_util::FutureExt::now_or_never(f).expect("ready")
        };
        let a = nick("a").unwrap();
        assert!(block(bus.join("one", &a)).is_ok());
        assert!(block(bus.join("two", &a)).is_ok());
        // Both rooms have a member: no third.
        assert_eq!(
            block(bus.join("three", &a)).err(),
            Some(BusError::Unavailable)
        );
        // Once "one" is empty, "three" replaces it.
        futures_util::FutureExt::now_or_never(bus.leave("one", &a))
            .unwrap()
            .unwrap();
        assert!(block(bus.join("three", &a)).is_ok());
        let rooms = bus.rooms.lock().unwrap();
        assert_eq!(rooms.len(), 2);
        assert!(rooms.contains_key("two") && rooms.contains_key("three"));
    }
}
