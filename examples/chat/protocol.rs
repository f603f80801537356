//! The chat's wire protocol: what a client may send (parsed and validated here), and the
//! server's JSON objects (built here, each serialized once). The protocol itself is documented
//! at the top of `examples/chat_server.rs`.

use bytes::Bytes;
use hybi::{Message, Utf8Bytes};
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

/// Longest nickname, in characters (after normalization).
pub const MAX_NICK: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM: usize = 32;
/// Longest chat text, in characters.
pub const MAX_TEXT: usize = 4000;
/// Largest binary message that is broadcast.
pub const MAX_BINARY: usize = 64 * 1024;
/// Largest message the WebSocket accepts at all (larger: close 1009).
pub const MAX_MESSAGE: u64 = 128 << 10;
/// Messages kept per room for newcomers and for resuming.
pub const HISTORY: usize = 50;
/// Members per page of a `welcome` or a `who` answer.
pub const PAGE: usize = 100;
/// The room of a join that names none.
pub const DEFAULT_ROOM: &str = "lobby";

pub const E_JOIN_FIRST: &str = "join first";
pub const E_NICK: &str = "invalid nickname (1-32 characters)";
pub const E_NICK_CHARS: &str = "invalid nickname (control, invisible or bidi characters)";
pub const E_TAKEN: &str = "nickname already taken";
pub const E_ROOM: &str = "invalid room name (1-32 of a-z, 0-9, '-', '_', '.')";
pub const E_SINCE: &str = "invalid since (a message id)";
pub const E_UNAVAILABLE: &str = "room temporarily unavailable, try again";
pub const E_RATE: &str = "rate limit exceeded, slow down";

/// A nickname: as shown, and the key that makes two nicknames the same person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nick {
    /// NFKC-normalized and trimmed: what everybody sees.
    pub display: String,
    /// The display form, lowercased and normalized again: unique per room.
    pub key: String,
}

/// Characters a nickname may not hold: controls, and format characters that are invisible or
/// reorder text (zero-width, joiners, bidi embeddings, overrides and isolates, tags, ...).
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0E}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Validates and normalizes a nickname: NFKC, trimmed, 1..=32 characters, none forbidden.
pub fn nick(raw: &str) -> Result<Nick, &'static str> {
    let display: String = raw.nfkc().collect::<String>().trim().to_owned();
    if display.chars().any(forbidden) {
        return Err(E_NICK_CHARS);
    }
    if !(1..=MAX_NICK).contains(&display.chars().count()) {
        return Err(E_NICK);
    }
    let key = display.to_lowercase().nfkc().collect();
    Ok(Nick { display, key })
}

/// Validates a room name (absent: the default room). Names are case-insensitive: lowercased.
pub fn room(raw: Option<&Value>) -> Result<String, &'static str> {
    let name = match raw {
        None | Some(Value::Null) => return Ok(DEFAULT_ROOM.to_owned()),
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(_) => return Err(E_ROOM),
    };
    let ok = (1..=MAX_ROOM).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(name)
    } else {
        Err(E_ROOM)
    }
}

/// A message from a client, parsed.
#[derive(Debug)]
pub enum Incoming {
    Join {
        nick: Nick,
        room: String,
        since: Option<u64>,
    },
    Text(String),
    Binary(Bytes),
    /// The next page of the member list, after the cursor `after`.
    Who {
        after: u64,
    },
    /// The room's messages after `since`.
    History {
        since: u64,
    },
}

/// Parses the first message of a connection: a join, or the error to close with.
pub fn parse_join(msg: &Message) -> Result<Incoming, &'static str> {
    let Some(Value::Object(m)) = msg.as_text().and_then(|t| serde_json::from_str(t).ok()) else {
        return Err(E_JOIN_FIRST);
    };
    if m.get("type").and_then(Value::as_str) != Some("join") {
        return Err(E_JOIN_FIRST);
    }
    let nick = nick(m.get("nick").and_then(Value::as_str).ok_or(E_NICK)?)?;
    let room = room(m.get("room"))?;
    let since = match m.get("since") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or(E_SINCE)?),
    };
    Ok(Incoming::Join { nick, room, since })
}

/// Parses a message from a joined client; `Err` is the text of the `error` to answer with.
pub fn parse(msg: Message) -> Result<Incoming, &'static str> {
    let text = match msg {
        Message::Binary(data) if data.len() > MAX_BINARY => {
            return Err("binary message too large (max 65536 bytes)")
        }
        Message::Binary(data) => return Ok(Incoming::Binary(data)),
        Message::Text(t) => t,
    };
    let m = match serde_json::from_str::<Value>(text.as_str()) {
        Err(_) => return Err("invalid JSON"),
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err("invalid message"),
    };
    match m.get("type").and_then(Value::as_str) {
        Some("message") => match m.get("text").and_then(Value::as_str) {
            None => Err("invalid message"),
            Some(s) if s.chars().count() > MAX_TEXT => {
                Err("message too long (max 4000 characters)")
            }
            Some(s) => Ok(Incoming::Text(s.to_owned())),
        },
        Some("who") => match m.get("after") {
            None | Some(Value::Null) => Ok(Incoming::Who { after: 0 }),
            Some(v) => v
                .as_u64()
                .map(|after| Incoming::Who { after })
                .ok_or("invalid who (after: a cursor)"),
        },
        Some("history") => match m.get("since") {
            None | Some(Value::Null) => Ok(Incoming::History { since: 0 }),
            Some(v) => v
                .as_u64()
                .map(|since| Incoming::History { since })
                .ok_or(E_SINCE),
        },
        Some("join") => Err("already joined"),
        Some(_) | None => Err("unknown message type"),
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A JSON value as a text message, serialized once (clones are reference counts).
pub fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

pub fn error(text: &str) -> Message {
    self::text(&json!({"type": "error", "text": text}))
}

pub fn room_error(room: &str, text: &str) -> Message {
    self::text(&json!({"type": "error", "room": room, "text": text}))
}

/// A chat message or binary announcement before the bus gives it its id: the JSON is
/// `prefix + id + suffix`, so that the id can be set where it is assigned (in Redis, by the
/// script that also stores and publishes it) without serializing again.
#[derive(Debug, Clone)]
pub struct Draft {
    pub prefix: String,
    pub suffix: String,
    /// The bytes of a binary message, sent right after its announcement.
    pub binary: Option<Bytes>,
}

impl Draft {
    fn new(kind: &str, room: &str, rest: &Value) -> Self {
        let head = json!({"type": kind, "room": room}).to_string();
        // `{"type":..,"room":..}` + `,"id":` + ID + `,` + the rest's members + `}`.
        let mut prefix = head;
        prefix.pop();
        prefix.push_str(",\"id\":");
        let rest = rest.to_string();
        let suffix = format!(",{}", &rest[1..]);
        Self {
            prefix,
            suffix,
            binary: None,
        }
    }

    pub fn message(room: &str, from: &str, text: &str) -> Self {
        Self::new(
            "message",
            room,
            &json!({"from": from, "text": text, "ts": now_ms()}),
        )
    }

    pub fn binary(room: &str, from: &str, data: Bytes) -> Self {
        let mut d = Self::new(
            "binary",
            room,
            &json!({"from": from, "size": data.len(), "ts": now_ms()}),
        );
        d.binary = Some(data);
        d
    }

    /// The JSON with its id.
    pub fn with_id(&self, id: u64) -> String {
        format!("{}{id}{}", self.prefix, self.suffix)
    }
}

/// The id of a stored `message`/`binary` object (its JSON starts with the type, the room and
/// the id, as [`Draft`] writes it).
pub fn id_of(json: &str) -> Option<u64> {
    let at = json.find(",\"id\":")? + 6;
    let digits = json[at..].bytes().take_while(u8::is_ascii_digit).count();
    json[at..at + digits].parse().ok()
}

/// One change of a room's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub joined: bool,
    pub nick: String,
}

/// The notice for a batch of changes: one `join`/`leave` object for one change, a `presence`
/// object with all of them, in order, for more.
pub fn presence(room: &str, changes: &[Change], count: u64) -> Message {
    if let [one] = changes {
        let kind = if one.joined { "join" } else { "leave" };
        return text(
            &json!({"type": kind, "room": room, "nick": one.nick, "count": count, "ts": now_ms()}),
        );
    }
    let list: Vec<Value> = changes
        .iter()
        .map(|c| json!({"type": if c.joined { "join" } else { "leave" }, "nick": c.nick}))
        .collect();
    text(
        &json!({"type": "presence", "room": room, "changes": list, "count": count, "ts": now_ms()}),
    )
}

/// A page of a room's member list: nicknames in join order, the room's size, and the cursor of
/// the next page (none on the last).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub members: Vec<String>,
    pub count: u64,
    pub next: Option<u64>,
}

/// What a joiner gets: a page of members, and the history it asked for.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub page: Page,
    /// Stored `message`/`binary` objects, oldest first.
    pub history: Vec<String>,
    /// The room's newest message id (0: none yet).
    pub last_id: u64,
}

/// Keeps the history entries after `since` (all without it), and says whether some messages
/// after `since` are no longer kept.
pub fn since_filter(history: Vec<String>, since: Option<u64>) -> (Vec<String>, bool) {
    let Some(since) = since else {
        return (history, false);
    };
    let first = history.first().and_then(|h| id_of(h));
    let truncated = first.is_some_and(|first| first > since + 1);
    let kept = history
        .into_iter()
        .filter(|h| id_of(h).is_some_and(|id| id > since))
        .collect();
    (kept, truncated)
}

fn push_page(out: &mut String, page: &Page) {
    out.push_str(",\"online\":");
    out.push_str(&serde_json::to_string(&page.members).unwrap_or_else(|_| "[]".into()));
    out.push_str(&format!(",\"count\":{}", page.count));
    out.push_str(",\"next\":");
    match page.next {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

fn push_history(out: &mut String, history: &[String]) {
    out.push_str(",\"history\":[");
    for (i, h) in history.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(h);
    }
    out.push(']');
}

/// The `welcome`: built by concatenation, the history entries are stored JSON.
pub fn welcome(room: &str, nick: &str, snap: &Snapshot, since: Option<u64>) -> Message {
    let (history, truncated) = since_filter(snap.history.clone(), since);
    let mut out = json!({"type": "welcome", "room": room, "nick": nick}).to_string();
    out.pop();
    push_page(&mut out, &snap.page);
    out.push_str(&format!(
        ",\"last_id\":{},\"truncated\":{truncated}",
        snap.last_id
    ));
    push_history(&mut out, &history);
    out.push('}');
    Message::Text(out.into())
}

/// The answer to `who`.
pub fn who(room: &str, page: &Page) -> Message {
    let mut out = json!({"type": "who", "room": room}).to_string();
    out.pop();
    push_page(&mut out, page);
    out.push('}');
    Message::Text(out.into())
}

/// The answer to `history`.
pub fn history(room: &str, snap_history: Vec<String>, last_id: u64, since: u64) -> Message {
    let (history, truncated) = since_filter(snap_history, Some(since));
    let mut out = json!({"type": "history", "room": room}).to_string();
    out.pop();
    out.push_str(&format!(
        ",\"since\":{since},\"last_id\":{last_id},\"truncated\":{truncated}"
    ));
    push_history(&mut out, &history);
    out.push('}');
    Message::Text(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        assert_eq!(nick("  bob ").unwrap().display, "bob");
        assert_eq!(nick("Ｂｏｂ").unwrap().key, "bob"); // fullwidth, NFKC
        assert_eq!(nick("ALICE").unwrap().key, nick("alice").unwrap().key);
        assert_eq!(nick("alice\u{200b}"), Err(E_NICK_CHARS));
        assert_eq!(nick("\u{202e}ecila"), Err(E_NICK_CHARS));
        assert_eq!(nick("a\nb"), Err(E_NICK_CHARS));
        assert_eq!(nick("   "), Err(E_NICK));
        assert_eq!(nick(&"x".repeat(33)), Err(E_NICK));
    }

    #[test]
    fn drafts_and_ids() {
        let d = Draft::message("lobby", "a\"b", "hi");
        let j = d.with_id(42);
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["from"], "a\"b");
        assert_eq!(id_of(&j), Some(42));
    }
}
