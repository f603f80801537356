//! The rooms of this instance: who of its clients is in which room, the fan-out of what the bus
//! delivers to them, and the coalescing of presence notices.
//!
//! Every object is serialized and framed once ([`PreparedMessage`]) and its frame shared by
//! every recipient's outbox (a clone is a reference count; with permessage-deflate it is
//! compressed once per window size among recipients without context takeover). A member's join or leave costs each other member one
//! queued notice at most, and notices are coalesced per room: the first change after a quiet
//! window goes out at once, later ones are gathered and sent as one `presence` object when the
//! window ends, so that a storm of joins costs each member a bounded number of frames a second.
//! The window grows with the room (100 ms up to 1,000 members, the room's size / 10 ms above,
//! at most 1 s). Before a chat message is fanned out, the room's gathered changes are sent, so
//! that members see a join before the newcomer's first message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hybi::{Message, PreparedMessage, Utf8Bytes};

use super::limits::{Item, Outbox};
use super::protocol::{self, Change, Nick};

/// A joined client, as the rooms see it.
pub struct Client {
    pub nick: Nick,
    pub room: String,
    pub outbox: Outbox,
    /// Where it is in its room's member list (for an O(1) removal).
    slot: AtomicUsize,
}

impl Client {
    pub fn new(nick: Nick, room: String, budget: usize) -> Arc<Self> {
        Arc::new(Self {
            nick,
            room,
            outbox: Outbox::new(budget),
            slot: AtomicUsize::new(usize::MAX),
        })
    }
}

/// What the bus delivers, from this instance or another.
#[derive(Debug)]
pub enum Delivery {
    /// A `message` or `binary` object with its id, and a binary message's bytes.
    Message {
        room: String,
        id: u64,
        json: Utf8Bytes,
        binary: Option<Bytes>,
    },
    /// Members joined or left, in this order; `count` is the room's size after them.
    Presence {
        room: String,
        changes: Vec<Change>,
        count: u64,
    },
}

struct Room {
    members: Vec<Arc<Client>>,
    /// Changes gathered for the next presence notice.
    pending: Vec<Change>,
    count: u64,
    last_notice: Option<Instant>,
    /// The newest message id seen here (Redis reseeds its counter from it after a restart).
    last_id: u64,
}

impl Room {
    fn window(&self) -> Duration {
        Duration::from_millis((self.count / 10).clamp(100, 1000))
    }

    fn fan_out(&self, item: impl Fn() -> Item) {
        for m in &self.members {
            m.outbox.push(item());
        }
    }

    fn send_pending(&mut self, name: &str, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        let notice = protocol::presence(name, &self.pending, self.count);
        self.pending.clear();
        if self.pending.capacity() > 64 {
            self.pending = Vec::new();
        }
        self.last_notice = Some(now);
        let notice = PreparedMessage::new(notice);
        self.fan_out(|| Item::new(notice.clone()));
    }
}

#[derive(Default)]
struct State {
    rooms: HashMap<String, Room>,
    /// Rooms with gathered changes.
    dirty: Vec<String>,
}

/// The rooms of this instance.
#[derive(Default)]
pub struct Rooms {
    state: Mutex<State>,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a client to its room here: from now on it is sent what the room is sent (held back
    /// until its welcome).
    pub fn enter(&self, client: &Arc<Client>) {
        let mut s = self.lock();
        let room = s.rooms.entry(client.room.clone()).or_insert_with(|| Room {
            members: Vec::new(),
            pending: Vec::new(),
            count: 0,
            last_notice: None,
            last_id: 0,
        });
        client.slot.store(room.members.len(), Ordering::Relaxed);
        room.members.push(client.clone());
    }

    /// Removes a client from its room here (the bus announces its leave).
    pub fn exit(&self, client: &Arc<Client>) {
        let mut s = self.lock();
        let Some(room) = s.rooms.get_mut(&client.room) else {
            return;
        };
        let slot = client.slot.swap(usize::MAX, Ordering::Relaxed);
        if slot < room.members.len() && Arc::ptr_eq(&room.members[slot], client) {
            room.members.swap_remove(slot);
            if let Some(moved) = room.members.get(slot) {
                moved.slot.store(slot, Ordering::Relaxed);
            }
        }
        if room.members.is_empty() {
            s.rooms.remove(&client.room);
        }
    }

    /// Fans a delivery out to the room's members here.
    pub fn deliver(&self, delivery: Delivery) {
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        match delivery {
            Delivery::Message {
                room,
                id,
                json,
                binary,
            } => {
                let Some(r) = s.rooms.get_mut(&room) else {
                    return;
                };
                r.last_id = r.last_id.max(id);
                r.send_pending(&room, now);
                let msg = PreparedMessage::new(Message::Text(json));
                let then = binary.map(|b| PreparedMessage::new(Message::Binary(b)));
                r.fan_out(|| Item {
                    id,
                    msg: msg.clone(),
                    then: then.clone(),
                });
            }
            Delivery::Presence {
                room,
                changes,
                count,
            } => {
                let Some(r) = s.rooms.get_mut(&room) else {
                    return;
                };
                r.count = count;
                let quiet = r
                    .last_notice
                    .is_none_or(|at| now.duration_since(at) >= r.window());
                if quiet && r.pending.is_empty() {
                    r.pending = changes;
                    r.send_pending(&room, now);
                } else {
                    if r.pending.is_empty() {
                        s.dirty.push(room);
                    }
                    r.pending.extend(changes);
                }
            }
        }
    }

    /// Sends the gathered presence changes whose window is over. Called every few tens of ms.
    pub fn flush_presence(&self) {
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let rooms = &mut s.rooms;
        s.dirty.retain(|name| {
            let Some(r) = rooms.get_mut(name) else {
                return false;
            };
            if r.pending.is_empty() {
                return false;
            }
            let due = r
                .last_notice
                .is_none_or(|at| now.duration_since(at) >= r.window());
            if due {
                r.send_pending(name, now);
            }
            !due
        });
    }

    /// Every member here: (room, nick), for re-registering them with the bus.
    pub fn members(&self) -> Vec<(String, Nick)> {
        let s = self.lock();
        s.rooms
            .values()
            .flat_map(|r| r.members.iter().map(|m| (m.room.clone(), m.nick.clone())))
            .collect()
    }

    /// The newest message id seen in each room with members here.
    pub fn last_ids(&self) -> Vec<(String, u64)> {
        let s = self.lock();
        s.rooms
            .iter()
            .map(|(name, r)| (name.clone(), r.last_id))
            .collect()
    }

    /// Kicks the member `nick` of `room` (its nickname was taken while the bus was away).
    pub fn kick(&self, room: &str, key: &str) {
        let s = self.lock();
        if let Some(r) = s.rooms.get(room) {
            for m in r.members.iter().filter(|m| m.nick.key == key) {
                m.outbox.kick("nickname taken while the server was cut off");
            }
        }
    }
}
