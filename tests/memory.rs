//! Memory: the heap an idle OPEN connection holds, and zero allocations per message in steady
//! state on the receive and send paths. Measured with a counting allocator (per thread, so
//! tests running in parallel do not disturb each other). Not timed.

mod support;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hybi::{Config, Connection, Event, Role};
use support::*;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + layout.size() as isize));
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + new_size as isize - layout.size() as isize));
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: forwarding a valid reallocation request to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(|l| l.get())
}

fn allocs() -> usize {
    ALLOCS.with(|a| a.get())
}

/// Heap bytes `conn` owns: what dropping it frees.
fn held(conn: Connection) -> isize {
    let before = live();
    drop(conn);
    before - live()
}

/// How far a connection got before its heap is measured.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Stage {
    /// Just opened, nothing exchanged, the transport has nothing more ("would block").
    Opened,
    /// After traffic that included a large message each way, waiting for more with the read
    /// buffer reserved.
    Busy,
    /// After that, the adapter's keepalive timer found the transport quiet.
    Idle,
}

/// What an adapter's connection holds at `stage` (client, server), not counting the configs
/// (shared between connections, and kept alive here).
fn core_heap_at(stage: Stage) -> (isize, isize) {
    let (client_cfg, server_cfg) = (
        client_config().with_protocols(["chat"]),
        Config::default().with_protocols(["chat"]),
    );
    let mut p = Pair::with(
        client_cfg.clone(),
        server_cfg.clone(),
        "ws://example.com/chat",
    );
    if stage >= Stage::Busy {
        p.client.send_binary(&vec![1; 200_000]).unwrap();
        p.server.send_binary(&vec![2; 200_000]).unwrap();
        p.client.send_text("hello").unwrap();
        p.server.send_text("welcome").unwrap();
        p.drive();
    }
    for conn in [&mut p.client, &mut p.server] {
        // What an adapter does when the transport has nothing more to read.
        conn.release_memory();
        match stage {
            Stage::Opened => assert!(conn.read_buffer_released()),
            // The next read, with the read buffer reserved (back to its working size).
            Stage::Busy => conn.read_into(|_| ()),
            Stage::Idle => {
                conn.release_idle_memory();
                assert!(conn.read_buffer_released());
            }
        }
    }
    let Pair { client, server, .. } = p;
    (held(client), held(server))
}

/// The heap of an OPEN connection: none but the subprotocol's name once it is opened and when
/// it has gone idle; the read buffer and small queues while data flows; large buffers shrink
/// back after a large message.
#[test]
fn idle_open_connection_holds_little_heap() {
    let buffer = Config::default().read_buffer_size() as isize;
    for stage in [Stage::Opened, Stage::Busy, Stage::Idle] {
        let (c, s) = core_heap_at(stage);
        println!(
            "OPEN connection heap, {stage:?}: server {s} bytes, client {c} bytes (read buffer \
             {buffer} bytes; size_of::<Connection>() = {} bytes, not counted)",
            std::mem::size_of::<Connection>()
        );
        let bound = match stage {
            // The negotiated subprotocol ("chat") is all: no buffer survives the handshake,
            // and an idle connection gives its buffers back.
            Stage::Opened | Stage::Idle => 16,
            // The read buffer, plus the event queue (4 slots of 48 bytes) and the small
            // output buffer kept for the next message. Nothing of the 200 KB messages.
            Stage::Busy => buffer + 512,
        };
        assert!(s <= bound, "{stage:?}: server holds {s} bytes");
        assert!(c <= bound, "{stage:?}: client holds {c} bytes");
    }
}

/// Waking an idle connection: the read buffer comes back at its working size, with a handful
/// of allocations (the buffer, the event queue, the output buffer for the answer). Then no
/// more: the working buffers stay while data flows.
#[test]
fn waking_an_idle_connection_allocates_a_few_buffers_once() {
    let msg = frame(true, 2, &[7u8; 100], Some(KEY));
    let mut conn = open_with(Role::Server, Config::default());
    let echo = |conn: &mut Connection| {
        conn.handle_input(&msg);
        while let Some(ev) = conn.next_event() {
            if let Event::Message(m) = ev {
                conn.send(m).unwrap();
            }
        }
        let n = conn.buffered_amount();
        conn.advance_output(n);
        conn.release_memory();
    };
    echo(&mut conn);
    conn.release_idle_memory();
    assert!(conn.read_buffer_released());
    let before = allocs();
    echo(&mut conn);
    let waking = allocs() - before;
    assert!(!conn.read_buffer_released());
    let before = allocs();
    for _ in 0..100 {
        echo(&mut conn);
        // Wake-ups that bring nothing (another source woke the task) keep the buffers.
        conn.release_memory();
        conn.release_memory();
    }
    let busy = allocs() - before;
    println!("waking an idle connection: {waking} allocations, then {busy} in 100 messages");
    assert!(waking <= 4, "{waking} allocations to wake up");
    assert_eq!(busy, 0);
}

/// Reads adapt: a read that fills the room offered doubles the next one, up to
/// `Config::max_read_size`, so a steady stream of 64 KiB messages (or of batches) is taken in
/// with one read each once warm, with no allocation.
#[test]
fn read_size_adapts_to_the_traffic() {
    let wire = peer_wire(Role::Server, 1, 64 << 10, None);
    let mut conn = open_with(Role::Server, Config::default());
    let mut reads_per_message = Vec::new();
    for _ in 0..8 {
        let mut pos = 0;
        let mut reads = 0;
        while pos < wire.len() {
            conn.read_into(|buf| {
                let n = (buf.capacity() - buf.len()).min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
            });
            reads += 1;
        }
        assert!(matches!(conn.next_event(), Some(Event::Message(m)) if m.len() == 64 << 10));
        conn.release_memory();
        reads_per_message.push(reads);
    }
    assert_eq!(reads_per_message.last(), Some(&1), "{reads_per_message:?}");
    // The room offered is larger than the frame (64 KiB + a 14-byte header), so a read that
    // brings exactly one frame does not fill it: the runtime then knows the socket is drained
    // and does not try another read that would find nothing.
    let mut offered = 0;
    conn.read_into(|buf| offered = buf.capacity() - buf.len());
    assert!(
        offered > wire.len(),
        "offered {offered} for a {} B frame",
        wire.len()
    );
    let before = allocs();
    for _ in 0..20 {
        feed_like_adapter(&mut conn, &wire, false);
    }
    assert_eq!(allocs() - before, 0);
    // Idle: back to the small size.
    conn.release_idle_memory();
    let mut offered = 0;
    conn.read_into(|buf| offered = buf.capacity() - buf.len());
    let base = Config::default().read_buffer_size();
    assert!(
        offered < 2 * base,
        "offered {offered} after the idle release"
    );
}

fn steady_state_allocations(role: Role) -> usize {
    let mut conn = open_with(role, Config::default());
    let other_mask = if role == Role::Server {
        Some(KEY)
    } else {
        None
    };
    let msg = frame(true, 2, &[7u8; 16], other_mask);
    let mut batch = Vec::new();
    for _ in 0..8 {
        batch.extend_from_slice(&msg);
    }
    let run = |conn: &mut Connection| {
        conn.handle_input(&batch);
        while let Some(ev) = conn.next_event() {
            if let Event::Message(m) = ev {
                conn.send_binary(m.as_bytes()).unwrap();
            }
        }
        loop {
            let n = conn.pending_output().len();
            if n == 0 {
                break;
            }
            conn.advance_output(n);
        }
    };
    for _ in 0..100 {
        run(&mut conn); // warm up: buffers reach their working size
    }
    let before = allocs();
    for _ in 0..1000 {
        run(&mut conn);
    }
    allocs() - before
}

#[test]
fn zero_allocations_per_message_in_steady_state() {
    assert_eq!(steady_state_allocations(Role::Server), 0, "server");
    assert_eq!(steady_state_allocations(Role::Client), 0, "client");
}

/// What permessage-deflate costs a connection: measured after one compressed message each
/// way (with context takeover the zlib state stays; without it, `release_memory` drops it).
#[test]
fn deflate_connection_heap() {
    use hybi::DeflateConfig;
    let msg = "{\"type\":\"message\",\"from\":\"alice\",\"text\":\"hello hello hello\"}".repeat(4);
    let mut figures = Vec::new();
    for (name, cfg) in [
        ("takeover, 15-bit windows", DeflateConfig::default()),
        (
            "no context takeover",
            DeflateConfig::default()
                .with_client_no_context_takeover(true)
                .with_server_no_context_takeover(true),
        ),
        (
            "takeover, 10-bit windows",
            DeflateConfig::default()
                .with_client_max_window_bits(10)
                .with_server_max_window_bits(10),
        ),
    ] {
        let mut p = Pair::with(
            client_config().with_deflate(cfg),
            Config::default().with_deflate(cfg),
            "ws://example.com/",
        );
        p.client.send_text(&msg).unwrap();
        p.server.send_text(&msg).unwrap();
        p.drive();
        for conn in [&mut p.client, &mut p.server] {
            conn.release_memory();
            conn.read_into(|_| ());
        }
        let Pair { client, server, .. } = p;
        let (c, s) = (held(client), held(server));
        println!("deflate ({name}): server {s} bytes, client {c} bytes");
        figures.push((name, s, c));
    }
    // Without context takeover the zlib state is released between messages.
    assert!(figures[1].1 < 4096 && figures[1].2 < 4096, "{figures:?}");
    // Smaller windows cost less than 15-bit ones.
    assert!(figures[2].1 < figures[0].1, "{figures:?}");
}

/// Feeds `wire` the way an adapter does: one read at a time into the room `read_into`
/// reserved, then `release_memory` when the "transport" has nothing more (would block).
fn feed_like_adapter(conn: &mut Connection, wire: &[u8], echo: bool) -> usize {
    let mut pos = 0;
    let mut messages = 0;
    while pos < wire.len() {
        conn.read_into(|buf| {
            let n = (buf.capacity() - buf.len()).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
        });
        while let Some(ev) = conn.next_event() {
            if let Event::Message(m) = ev {
                messages += 1;
                if echo {
                    conn.send(m).unwrap();
                }
            }
        }
        // Written out at once (a vectored write), as the adapter's flush does.
        let n = conn.buffered_amount();
        let mut seen = 0;
        for chunk in conn.output_chunks() {
            seen += chunk.len();
        }
        assert_eq!(seen, n);
        conn.advance_output(n);
    }
    conn.release_memory();
    messages
}

/// `count` messages of `len` bytes as `role`'s peer sends them, in frames of at most
/// `fragment` bytes.
fn peer_wire(role: Role, count: usize, len: usize, fragment: Option<usize>) -> Vec<u8> {
    let peer = if role == Role::Server {
        Role::Client
    } else {
        Role::Server
    };
    let mut c = open_with(peer, Config::default().with_write_fragment_size(fragment));
    for i in 0..count {
        c.send_binary(&vec![i as u8; len]).unwrap();
    }
    let mut wire = Vec::new();
    for chunk in c.output_chunks() {
        wire.extend_from_slice(chunk);
    }
    wire
}

/// Allocations over 500 batches, after 50 to warm up, of receiving (and echoing) `wire`.
fn allocations_per_batch(role: Role, wire: &[u8], expected: usize, echo: bool) -> usize {
    let mut conn = open_with(role, Config::default());
    for _ in 0..50 {
        assert_eq!(feed_like_adapter(&mut conn, wire, echo), expected);
    }
    let before = allocs();
    for _ in 0..500 {
        feed_like_adapter(&mut conn, wire, echo);
    }
    allocs() - before
}

#[test]
fn zero_allocations_up_to_the_read_buffer_size_in_both_roles() {
    let buffer = Config::default().read_buffer_size();
    for role in [Role::Server, Role::Client] {
        // Every frame up to the read buffer's size (payload + at most 8 header bytes here);
        // batches of 8 when they fit in the buffer, so reads straddle frames.
        for len in [0, 1, 16, 100, 125, 126, 500, buffer - 8] {
            let batch = if 8 * (len + 8) <= buffer { 8 } else { 1 };
            for (count, echo) in [(1, false), (1, true), (batch, true), (3, true)] {
                let wire = peer_wire(role, count, len, None);
                let n = allocations_per_batch(role, &wire, count, echo);
                assert_eq!(n, 0, "{role:?}: {count} x {len} B, echo {echo}");
            }
        }
    }
}

#[test]
fn zero_allocations_for_fragmented_messages() {
    let _buffer = Config::default().read_buffer_size();
    for role in [Role::Server, Role::Client] {
        // One message per read: a read that completes several fragmented messages needs
        // storage for each (the first reuses the assembly buffer, the others allocate theirs
        // while the first is still alive in the event queue).
        // Frames that fit in the read buffer together (4 x 22 B, 4 x 233 B), and an assembly
        // buffer that stays under the size `release_memory` keeps (it grows by doubling).
        for (len, fragment) in [(64, 16), (900, 225)] {
            let wire = peer_wire(role, 1, len, Some(fragment));
            let n = allocations_per_batch(role, &wire, 1, true);
            assert_eq!(n, 0, "{role:?}: {len} B in {fragment} B fragments");
        }
    }
}

#[test]
fn zero_allocations_sending_in_both_roles() {
    let buffer = Config::default().read_buffer_size();
    for role in [Role::Server, Role::Client] {
        let mut conn = open_with(role, Config::default());
        let payloads: Vec<Vec<u8>> = [0, 16, 125, 126, 500, buffer - 14]
            .iter()
            .map(|&n| vec![3u8; n])
            .collect();
        let shared: Vec<bytes::Bytes> = payloads.iter().map(|p| p.clone().into()).collect();
        let flush = |conn: &mut Connection| {
            let n = conn.buffered_amount();
            conn.advance_output(n);
            conn.release_memory();
        };
        let run = |conn: &mut Connection| {
            for (i, p) in payloads.iter().enumerate() {
                conn.send_binary(p).unwrap();
                flush(conn);
                conn.send(hybi::Message::Binary(shared[i].clone())).unwrap();
                flush(conn);
                conn.send_fragment(hybi::MessageKind::Binary, &p[..p.len() / 2], false)
                    .unwrap();
                conn.send_fragment(hybi::MessageKind::Binary, &p[p.len() / 2..], true)
                    .unwrap();
                flush(conn);
            }
        };
        for _ in 0..50 {
            run(&mut conn);
        }
        let before = allocs();
        for _ in 0..500 {
            run(&mut conn);
        }
        assert_eq!(allocs() - before, 0, "{role:?}");
    }
}

/// Fan-out: a prepared message costs a recipient no allocation in steady state (a reference
/// count and an entry in its output queue), plain or compressed once with permessage-deflate
/// (no server context takeover), small or large, interleaved with other output.
#[test]
fn zero_allocations_per_prepared_delivery() {
    let deflate = hybi::DeflateConfig::default().with_server_no_context_takeover(true);
    for compressed in [false, true] {
        let config = if compressed {
            Config::default().with_deflate(deflate)
        } else {
            Config::default()
        };
        // Server connections that negotiated what `config` asks for.
        let mut room: Vec<Connection> = (0..20).map(|_| server_with(&config)).collect();
        let messages: Vec<hybi::PreparedMessage> = [16usize, 125, 1000, 5000, 70_000]
            .iter()
            .map(|&n| hybi::PreparedMessage::new(hybi::Message::text("ab".repeat(n / 2))))
            .collect();
        let round = |room: &mut Vec<Connection>| {
            for m in &messages {
                for conn in room.iter_mut() {
                    conn.send_prepared(m).unwrap();
                    conn.send_ping(b"between").unwrap();
                }
            }
            for conn in room.iter_mut() {
                let n = conn.buffered_amount();
                conn.advance_output(n);
                conn.release_memory();
            }
        };
        for _ in 0..20 {
            round(&mut room);
        }
        let before = allocs();
        for _ in 0..200 {
            round(&mut room);
        }
        assert_eq!(allocs() - before, 0, "compressed: {compressed}");
        if compressed {
            // Once per message, whatever the number of recipients (the 16-byte one is under
            // the compression threshold: never compressed).
            let made: Vec<usize> = messages.iter().map(|m| m.compressions()).collect();
            assert_eq!(made, [0, 1, 1, 1, 1]);
        }
    }
}

/// A server connection OPEN after a handshake with a client that offered what `config` turns
/// on (permessage-deflate), its events drained and output written.
fn server_with(config: &Config) -> Connection {
    let request = hybi::ClientRequest::new("ws://h/").unwrap();
    let mut client = Connection::client(
        request,
        client_config().with_deflate(config.deflate().copied().unwrap_or_default()),
    );
    let mut server = Connection::server(config.clone());
    server.handle_input(&take_output(&mut client));
    while let Some(ev) = server.next_event() {
        if let Event::Request(_) = ev {
            server.accept(hybi::Accept::new()).unwrap();
        }
    }
    take_output(&mut server);
    server
}

/// No copy: a server's unfragmented message is the read buffer's bytes, unmasked in place.
#[test]
fn received_payload_points_into_the_read_buffer() {
    let mut conn = open_with(Role::Server, Config::default());
    let wire = frame(true, 2, &[9u8; 100], Some(KEY));
    let mut range = 0..0;
    conn.read_into(|buf| {
        buf.extend_from_slice(&wire);
        let p = buf.as_ptr() as usize;
        range = p..p + buf.len();
    });
    let Some(Event::Message(m)) = conn.next_event() else {
        panic!("no message")
    };
    let at = m.as_bytes().as_ptr() as usize;
    assert!(range.contains(&at), "payload was copied");
    assert_eq!(at - range.start, wire.len() - 100);
    assert_eq!(m.as_bytes(), &[9u8; 100][..]);
}

mod tokio_adapter {
    use super::*;
    use hybi::tokio::WebSocketStream;
    use hybi::Timeouts;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The echo server's path (recv + try_recv + queue + one flush) over an in-memory pipe, with
    /// the peer played by raw bytes: no allocation per message once warm.
    #[test]
    fn echo_path_allocates_nothing_per_message() {
        runtime().block_on(async {
            for len in [16usize, 1000] {
                let (server_io, mut peer) = tokio::io::duplex(64 << 10);
                let conn = Connection::open(Role::Server, Config::default());
                let mut ws = WebSocketStream::new(server_io, conn, Timeouts::default());
                let echo = async move {
                    loop {
                        let Ok(first) = ws.recv().await else { return };
                        ws.queue(first).unwrap();
                        while let Some(more) = ws.try_recv() {
                            ws.queue(more).unwrap();
                        }
                        if ws.flush_queue().await.is_err() {
                            return;
                        }
                    }
                };
                let task = tokio::spawn(echo);
                let mut batch = Vec::new();
                for _ in 0..8 {
                    batch.extend_from_slice(&frame(true, 2, &vec![5u8; len], Some(KEY)));
                }
                let answer_len = batch.len() - 8 * 4; // unmasked answers
                let mut answer = vec![0u8; answer_len];
                let mut round = async |peer: &mut tokio::io::DuplexStream| {
                    peer.write_all(&batch).await.unwrap();
                    peer.read_exact(&mut answer).await.unwrap();
                };
                for _ in 0..50 {
                    round(&mut peer).await;
                }
                let before = allocs();
                for _ in 0..500 {
                    round(&mut peer).await;
                }
                let n = allocs() - before;
                assert_eq!(n, 0, "{len} B: {n} allocations in 500 batches of 8");
                drop(peer);
                task.await.unwrap();
            }
        });
    }

    /// What a server `WebSocketStream` (accepted over an in-memory pipe from a hybi client)
    /// holds on the heap at `stage`, waiting in `recv`: the core's buffers and the keepalive
    /// timer, not the transport. Time is tokio's paused clock, moved by hand.
    fn stream_heap_at(stage: Stage) -> isize {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (server_io, client_io) = tokio::io::duplex(64 << 10);
            // Shared between connections in a server: not counted.
            let config = Config::default();
            let accepting =
                hybi::tokio::accept_with(server_io, config.clone(), Timeouts::default(), |_| {
                    Ok(hybi::Accept::new())
                });
            let request = hybi::ClientRequest::new("ws://example.com/").unwrap();
            // The client sends no pings of its own.
            let quiet = Timeouts::default().with_ping_interval(None);
            let connecting = hybi::tokio::client_with(client_io, request, client_config(), quiet);
            let (ws, client) = tokio::join!(accepting, connecting);
            let (mut ws, (mut client, _)) = (ws.unwrap(), client.unwrap());
            if stage >= Stage::Busy {
                let (sent, got) = tokio::join!(client.send_message(vec![1u8; 200_000]), ws.recv());
                sent.unwrap();
                assert_eq!(got.unwrap().len(), 200_000);
                let (sent, got) = tokio::join!(ws.send_message(vec![2u8; 200_000]), client.recv());
                sent.unwrap();
                assert_eq!(got.unwrap().len(), 200_000);
                let (sent, got) = tokio::join!(client.send_message("hello"), ws.recv());
                sent.unwrap();
                assert_eq!(got.unwrap().as_text(), Some("hello"));
            }
            if stage == Stage::Idle {
                // Past `Timeouts::release_after` (2 s), well before the keepalive ping (20 s).
                tokio::time::advance(std::time::Duration::from_secs(3)).await;
            }
            {
                let mut recv = pin!(ws.recv());
                let mut cx = Context::from_waker(Waker::noop());
                assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Pending));
            }
            assert_eq!(ws.connection().read_buffer_released(), stage != Stage::Busy);
            // The transport stays alive (its other end is the client's).
            let before = live();
            let io = ws.into_inner();
            let held = before - live();
            drop((io, client, config));
            held
        })
    }

    /// The heap an OPEN tokio `WebSocketStream` holds while it waits in `recv`: the keepalive
    /// timer alone once opened and once idle; the read buffer and small queues while data
    /// flows, nothing left of the 200 KB messages.
    #[test]
    fn idle_websocket_stream_holds_little_heap() {
        let buffer = Config::default().read_buffer_size() as isize;
        for stage in [Stage::Opened, Stage::Busy, Stage::Idle] {
            let held = stream_heap_at(stage);
            println!(
                "OPEN tokio WebSocketStream heap, {stage:?}: {held} bytes (plus size_of = {} \
                 bytes where it is stored)",
                std::mem::size_of::<WebSocketStream<tokio::io::DuplexStream>>()
            );
            let bound = match stage {
                // The keepalive timer's boxed `Sleep` (112 bytes with tokio 1.x) and nothing
                // else: the core holds no buffer.
                Stage::Opened | Stage::Idle => 256,
                // The timer, at most the read buffer, the event queue (4 slots of 48 bytes)
                // and the small output buffer kept for the next message.
                Stage::Busy => 256 + buffer + 512,
            };
            assert!(
                held <= bound,
                "{stage:?}: WebSocketStream holds {held} bytes"
            );
        }
    }
}

mod blocking_adapter {
    use super::*;
    use hybi::blocking::{Transport, WebSocket};
    use hybi::Timeouts;
    use std::io::{self, Read, Write};
    use std::time::Duration;

    /// A transport that plays a script of reads (bytes, or `None`: nothing within the read
    /// timeout) and notes the live heap each time it is read. Nothing it holds is freed or grown
    /// while it plays.
    struct Script {
        reads: Vec<Option<Vec<u8>>>,
        next: usize,
        heap_at_read: Vec<isize>,
        written: Vec<u8>,
    }

    impl Script {
        fn new(reads: Vec<Option<Vec<u8>>>) -> Self {
            Self {
                heap_at_read: Vec::with_capacity(reads.len() + 1),
                reads,
                next: 0,
                written: Vec::with_capacity(4096),
            }
        }
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.heap_at_read.push(live());
            let Some(step) = self.reads.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            match step {
                Some(bytes) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
                None => Err(io::ErrorKind::TimedOut.into()),
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.written.capacity() - self.written.len());
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Script {}

    /// The heap a blocking server `WebSocket` holds at each read of `reads`, from its creation
    /// (the config is shared, and not counted).
    fn heap_at_reads(
        reads: Vec<Option<Vec<u8>>>,
        options: Timeouts,
        messages: usize,
    ) -> Vec<isize> {
        let config = Config::default();
        let script = Script::new(reads);
        let base = live();
        let mut ws = WebSocket::new(script, Connection::open(Role::Server, config), options);
        for _ in 0..messages {
            assert_eq!(ws.recv().unwrap().len(), 100);
        }
        ws.get_ref().heap_at_read.iter().map(|h| h - base).collect()
    }

    /// The blocking adapter waits for its first bytes, and waits again once its keepalive ping
    /// is due, with no read buffer; between messages it keeps its working buffers.
    #[test]
    fn idle_websocket_holds_no_read_buffer() {
        let buffer = Config::default().read_buffer_size() as isize;
        let msg = || Some(frame(true, 2, &[1u8; 100], Some(KEY)));
        // Default options: the keepalive ping is not due during the test.
        let busy = heap_at_reads(vec![None, msg(), None, msg()], Timeouts::default(), 2);
        println!("blocking WebSocket heap at each read, keepalive not due: {busy:?}");
        assert!(busy[0] <= 64, "waiting for the first bytes: {busy:?}");
        assert!(busy[2] >= buffer, "waiting between messages: {busy:?}");
        // The ping is due at once after every input: each wait is an idle one. What remains
        // is the ping's small output buffer.
        let idle = Timeouts::default().with_ping_interval(Some(Duration::ZERO));
        let idle = heap_at_reads(vec![msg(), None, msg()], idle, 2);
        println!("blocking WebSocket heap at each read, keepalive due: {idle:?}");
        assert!(idle[1] <= 64, "waiting once idle: {idle:?}");
    }
}

/// A browser's opening request (Chromium's header set, with a subprotocol) as its bytes.
const BROWSER_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
    Host: 127.0.0.1:8080\r\n\
    Connection: Upgrade\r\n\
    Pragma: no-cache\r\n\
    Cache-Control: no-cache\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
    Upgrade: websocket\r\n\
    Origin: http://127.0.0.1:8080\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Accept-Encoding: gzip, deflate, br, zstd\r\n\
    Accept-Language: en-US,en;q=0.9\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: chat\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Allocations over a server connection's whole life: the request in one read, accept, one
/// message each way, the client's close frame, and ours written out; and how many of them
/// the opening handshake took.
fn server_lifecycle_allocations(config: Config) -> (usize, usize) {
    let mut client = open_with(Role::Client, Config::default());
    client.send_text("hello").unwrap();
    client.close(hybi::CloseCode::NORMAL, "").unwrap();
    let mut frames = Vec::new();
    for chunk in client.output_chunks() {
        frames.extend_from_slice(chunk);
    }
    let before = allocs();
    let mut server = Connection::server(config);
    server.handle_input(BROWSER_REQUEST);
    let mut opened = false;
    while let Some(ev) = server.next_event() {
        match ev {
            Event::Request(req) => {
                assert_eq!(req.protocols(), ["chat"]);
                server.accept(hybi::Accept::new()).unwrap();
            }
            Event::Open(_) => opened = true,
            _ => {}
        }
    }
    assert!(opened);
    let n = server.buffered_amount();
    server.advance_output(n);
    let handshake = allocs() - before;
    server.handle_input(&frames);
    let mut closed = false;
    while let Some(ev) = server.next_event() {
        if let Event::Message(m) = ev {
            server.send(m).unwrap();
        }
    }
    // Writing the echo and our close frame completes the closing handshake.
    let n = server.buffered_amount();
    server.advance_output(n);
    while let Some(ev) = server.next_event() {
        closed |= matches!(ev, Event::Closed(_));
    }
    assert!(closed);
    drop(server);
    (allocs() - before, handshake)
}

/// The opening handshake copies the request head once and indexes it, rather than allocating
/// per header field, so a short server connection's whole life costs a handful of allocations
/// (it was 82 for this browser request when each field was copied on its own).
#[test]
fn a_server_connection_allocates_little_over_its_life() {
    let config = Config::default().with_protocols(["chat"]);
    let (life, handshake) = server_lifecycle_allocations(config);
    println!("server connection life: {life} allocations, {handshake} in the handshake");
    assert!(life <= 24, "{life} allocations");
}
