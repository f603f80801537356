//! One WebSocket client, from its opened connection to the end of its close handshake.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use hybi::tokio::WebSocketStream;
use hybi::{CloseCode, Error, Message};
use tokio::io::{AsyncRead, AsyncWrite};

use super::bus::BusError;
use super::limits::{Item, Pop, RateLimit, Verdict};
use super::protocol::{self, Draft, Incoming};
use super::rooms::Client;
use super::stopped;
use super::{App, Unjoined};

/// Output bytes a connection may hold for its socket before its task stops taking from its
/// outbox (what waits beyond that is counted against the outbox's budget).
pub const WRITE_HIGH: usize = 256 << 10;

/// How the session ends, when the server is the one closing.
type Closing = Option<(CloseCode, String)>;

enum Step {
    /// A message from the client, or how its connection ended.
    In(Result<Message, Error>),
    /// Something to send.
    Out(Item),
    /// The client is to be closed with 1008 and this reason.
    Kicked(&'static str),
}

/// Waits for a message from the client or, while the socket keeps up, one from its outbox.
/// Polling the connection also writes its queued output, so output drains while this waits.
///
/// The outbox goes first: a client that sends faster than it reads is slowed down (its input
/// waits in TCP) rather than kicked because its own echoes filled its outbox.
async fn next_step<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    client: Option<&Client>,
) -> Step {
    poll_fn(|cx| {
        for first in [true, false] {
            // Above the mark the socket is behind: leave messages in the bounded outbox. The
            // connection registers for writability when polled, so we are woken once it drains.
            if let Some(c) = client {
                if ws.connection().buffered_amount() < WRITE_HIGH {
                    match c.outbox.poll_pop(cx) {
                        Poll::Ready(Pop::Item(item)) => return Poll::Ready(Step::Out(item)),
                        Poll::Ready(Pop::Kicked(why)) => return Poll::Ready(Step::Kicked(why)),
                        Poll::Pending => {}
                    }
                } else if let Poll::Ready(why) = c.outbox.poll_kicked(cx) {
                    // Behind, its outbox filled up: the kick must not wait for the socket.
                    return Poll::Ready(Step::Kicked(why));
                }
            }
            if first {
                if let Poll::Ready(r) = ws.poll_recv(cx) {
                    return Poll::Ready(Step::In(r));
                }
                // Polling the connection wrote what the socket took: below the mark again, the
                // outbox must be polled now (registering its waker).
            }
        }
        Poll::Pending
    })
    .await
}

/// Queues an item, then whatever else is waiting, so it all goes out in one vectored write.
fn queue_all<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    client: &Client,
    item: Item,
) {
    let mut next = Some(item);
    while let Some(item) = next.take() {
        if ws.queue_prepared(&item.msg).is_err() {
            return;
        }
        if let Some(then) = item.then {
            if ws.queue_prepared(&then).is_err() {
                return;
            }
        }
        if ws.connection().buffered_amount() < WRITE_HIGH {
            next = client.outbox.try_pop();
        }
    }
}

/// Handles a message from a joined client. `Some` closes the connection.
async fn handle(app: &App, client: &Client, limit: &mut RateLimit, msg: Message) -> Closing {
    match limit.check() {
        Verdict::Ok => {}
        Verdict::Refuse => {
            client.outbox.answer(protocol::error(protocol::E_RATE));
            return None;
        }
        Verdict::Close => {
            return Some((CloseCode::POLICY_VIOLATION, "rate limit exceeded".into()));
        }
    }
    let room = client.room.as_str();
    let answer = match protocol::parse(msg) {
        Err(error) => protocol::error(error),
        Ok(Incoming::Text(text)) => {
            let draft = Draft::message(room, &client.nick.display, &text);
            match app.bus.publish(room, draft).await {
                Ok(_) => return None,
                Err(_) => protocol::room_error(room, protocol::E_UNAVAILABLE),
            }
        }
        Ok(Incoming::Binary(data)) => {
            let draft = Draft::binary(room, &client.nick.display, data);
            match app.bus.publish(room, draft).await {
                Ok(_) => return None,
                Err(_) => protocol::room_error(room, protocol::E_UNAVAILABLE),
            }
        }
        Ok(Incoming::Who { after }) => match app.bus.who(room, after).await {
            Ok(page) => protocol::who(room, &page),
            Err(_) => protocol::room_error(room, protocol::E_UNAVAILABLE),
        },
        Ok(Incoming::History { since }) => match app.bus.history(room).await {
            Ok((history, last_id)) => protocol::history(room, history, last_id, since),
            Err(_) => protocol::room_error(room, protocol::E_UNAVAILABLE),
        },
        Ok(Incoming::Join { .. }) => protocol::error("already joined"),
    };
    // Through the outbox, so it stays in order with the broadcasts.
    client.outbox.answer(answer);
    None
}

/// Joins: enters the room here first (so nothing delivered from now on is missed), claims the
/// nickname on the bus (which announces the join) and puts the welcome first in the outbox,
/// dropping what it already holds. `Err`: the error to close with.
async fn join(app: &App, first: &Message) -> Result<Arc<Client>, (CloseCode, &'static str)> {
    let Incoming::Join { nick, room, since } =
        protocol::parse_join(first).map_err(|e| (CloseCode::POLICY_VIOLATION, e))?
    else {
        return Err((CloseCode::POLICY_VIOLATION, protocol::E_JOIN_FIRST));
    };
    let client = Client::new(nick, room, app.options.queue_budget);
    app.rooms.enter(&client);
    match app.bus.join(&client.room, &client.nick).await {
        Ok(snap) => {
            let welcome = protocol::welcome(&client.room, &client.nick.display, &snap, since);
            client.outbox.welcome(welcome, snap.last_id);
            Ok(client)
        }
        Err(e) => {
            app.rooms.exit(&client);
            Err(match e {
                BusError::Taken => (CloseCode::POLICY_VIOLATION, protocol::E_TAKEN),
                BusError::Unavailable => (CloseCode::TRY_AGAIN_LATER, protocol::E_UNAVAILABLE),
            })
        }
    }
}

/// One client. `unjoined` counts it among the connections that have not joined until it does.
pub async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    app: Arc<App>,
    unjoined: Unjoined,
) {
    let mut stop = app.stop.clone();
    let mut unjoined = Some(unjoined);
    let mut me: Option<Arc<Client>> = None;
    let mut limit = RateLimit::new(app.options.rate, app.options.burst);
    let deadline = tokio::time::sleep(app.options.join_timeout);
    tokio::pin!(deadline);
    // Made once: registered with the channel once, not again for every step.
    let stopping = stopped(&mut stop);
    tokio::pin!(stopping);

    let closing: Closing = loop {
        let step = tokio::select! {
            biased;
            () = &mut stopping => {
                break Some((CloseCode::GOING_AWAY, "server shutting down".into()));
            }
            _ = &mut deadline, if me.is_none() => {
                let _ = ws.queue(protocol::error("join timeout"));
                break Some((CloseCode::POLICY_VIOLATION, "join timeout".into()));
            }
            step = next_step(ws, me.as_deref()) => step,
        };
        match step {
            Step::Out(item) => {
                if let Some(client) = &me {
                    queue_all(ws, client, item);
                }
            }
            Step::Kicked(why) => break Some((CloseCode::POLICY_VIOLATION, why.into())),
            Step::In(Err(_)) => break None,
            Step::In(Ok(msg)) => match &me {
                // Boxed: a join's state is needed once, not in every client's future for life.
                None => match Box::pin(join(&app, &msg)).await {
                    Ok(client) => {
                        unjoined = None;
                        me = Some(client);
                    }
                    Err((code, error)) => {
                        // Sent directly, so it precedes the close frame.
                        let _ = ws.queue(protocol::error(error));
                        break Some((code, error.into()));
                    }
                },
                Some(client) => {
                    let handled = Box::pin(handle(&app, client, &mut limit, msg)).await;
                    if let Some(close) = handled {
                        break Some(close);
                    }
                }
            },
        }
    };
    drop(unjoined);

    if let Some(client) = &me {
        app.rooms.exit(client);
        // When Redis is away this fails, and the bus removes the member once it is back.
        let _ = app.bus.leave(&client.room, &client.nick).await;
    }
    if let Some((code, reason)) = closing {
        // Queue the close frame (after any output still waiting) and complete the closing
        // handshake: `recv` writes, reads until the client's close and EOF, and gives up after
        // the close timeout of `Timeouts`.
        if ws.connection_mut().close(code, &reason).is_ok() {
            while ws.recv().await.is_ok() {}
        }
    }
}
