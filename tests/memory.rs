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

#[test]
fn idle_open_connection_holds_little_heap() {
    let mut p = Pair::with(
        client_config().protocols(["chat"]),
        Config::default().protocols(["chat"]),
        "ws://example.com/chat",
    );
    // Some traffic, including a large message, then idle.
    p.client.send_binary(&vec![1; 200_000]).unwrap();
    p.server.send_text("welcome").unwrap();
    p.drive();
    // What an adapter does when the transport has nothing more: release, then wait for the
    // next read with the read buffer reserved.
    for conn in [&mut p.client, &mut p.server] {
        conn.release_memory();
        conn.read_into(|_| ());
    }
    let Pair { client, server, .. } = p;
    let (c, s) = (held(client), held(server));
    println!(
        "idle OPEN connection heap: server {s} bytes, client {c} bytes (read buffer {} bytes; \
         size_of::<Connection>() = {} bytes, not counted)",
        Config::default().get_read_buffer_size(),
        std::mem::size_of::<Connection>()
    );
    // The figure in the README; the read buffer (Config::read_buffer_size, 1 KiB) dominates.
    assert!(s <= 1700, "server holds {s} bytes");
    assert!(c <= 1700, "client holds {c} bytes");
}

/// After `release_idle_memory` (what the adapters call after the handshake and once nothing
/// arrived for `Options::release_after`), an idle connection holds no read buffer, and the
/// next message still arrives (the buffer comes back for it).
#[test]
fn idle_release_frees_the_read_buffer() {
    let mut p = Pair::with(
        client_config().protocols(["chat"]),
        Config::default().protocols(["chat"]),
        "ws://example.com/chat",
    );
    p.client.send_binary(&vec![1; 200_000]).unwrap();
    p.server.send_text("welcome").unwrap();
    p.drive();
    for conn in [&mut p.client, &mut p.server] {
        conn.release_idle_memory();
    }
    let before = live();
    p.client.send_text("still there?").unwrap();
    p.drive();
    assert!(live() > before, "the read buffer comes back with input");
    for conn in [&mut p.client, &mut p.server] {
        conn.release_idle_memory();
    }
    let Pair { client, server, .. } = p;
    let (c, s) = (held(client), held(server));
    println!("idle OPEN connection heap after release_idle_memory: server {s} B, client {c} B");
    // What is left: the config's Arc is shared; the negotiated subprotocol string and the
    // server's record of the request.
    assert!(s <= 700, "server holds {s} bytes");
    assert!(c <= 700, "client holds {c} bytes");
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
    let before = allocs();
    for _ in 0..20 {
        feed_like_adapter(&mut conn, &wire, false);
    }
    assert_eq!(allocs() - before, 0);
    // Idle: back to the small size.
    conn.release_idle_memory();
    let mut offered = 0;
    conn.read_into(|buf| offered = buf.capacity() - buf.len());
    let base = Config::default().get_read_buffer_size();
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
                .client_no_context_takeover(true)
                .server_no_context_takeover(true),
        ),
        (
            "takeover, 10-bit windows",
            DeflateConfig::default()
                .client_max_window_bits(10)
                .server_max_window_bits(10),
        ),
    ] {
        let mut p = Pair::with(
            client_config().deflate(cfg),
            Config::default().deflate(cfg),
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
    let mut c = open_with(peer, Config::default().write_fragment_size(fragment));
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
    let buffer = Config::default().get_read_buffer_size();
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
    let _buffer = Config::default().get_read_buffer_size();
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
    let buffer = Config::default().get_read_buffer_size();
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
    use hybi::Options;
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
                let mut ws = WebSocketStream::new(server_io, conn, Options::default());
                let echo = async move {
                    loop {
                        let Ok(first) = ws.recv().await else { return };
                        ws.queue(first).unwrap();
                        while let Some(more) = ws.try_recv() {
                            ws.queue(more).unwrap();
                        }
                        if ws.flush().await.is_err() {
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

    /// The heap an idle OPEN `WebSocketStream` holds while it waits in `recv` (the core, its
    /// reserved read buffer and the keepalive timer), not counting the transport.
    #[test]
    fn idle_websocket_stream_holds_little_heap() {
        runtime().block_on(async {
            let (server_io, mut peer) = tokio::io::duplex(64 << 10);
            let conn = Connection::open(Role::Server, Config::default());
            let mut ws = Box::new(WebSocketStream::new(server_io, conn, Options::default()));
            // Some traffic, including a large message, then idle.
            let big = frame(true, 2, &vec![1u8; 200_000], Some(KEY));
            let (written, got) = tokio::join!(peer.write_all(&big), ws.recv());
            written.unwrap();
            assert_eq!(got.unwrap().len(), 200_000);
            ws.send(vec![2u8; 100]).await.unwrap();
            let mut got = [0u8; 102];
            peer.read_exact(&mut got).await.unwrap();
            {
                let mut recv = pin!(ws.recv());
                let mut cx = Context::from_waker(Waker::noop());
                assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Pending));
            }
            let before = live();
            drop(ws);
            let held = before - live();
            println!(
                "idle OPEN tokio WebSocketStream heap: {held} bytes (plus size_of = {} bytes \
                 where it is stored)",
                std::mem::size_of::<WebSocketStream<tokio::io::DuplexStream>>()
            );
            assert!(held <= 2300, "WebSocketStream holds {held} bytes");
        });
    }

    /// Once nothing arrived for `Options::release_after` (2 s by default), a waiting
    /// `WebSocketStream` frees its read buffer: an idle connection holds its timer and little
    /// else. The next message still arrives.
    #[test]
    fn idle_websocket_stream_releases_its_buffers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (server_io, mut peer) = tokio::io::duplex(64 << 10);
            let conn = Connection::open(Role::Server, Config::default());
            let mut ws = Box::new(WebSocketStream::new(server_io, conn, Options::default()));
            let batch = frame(true, 2, &[1u8; 500], Some(KEY)).repeat(8);
            peer.write_all(&batch).await.unwrap();
            for _ in 0..8 {
                assert_eq!(ws.recv().await.unwrap().len(), 500);
            }
            tokio::select! {
                r = ws.recv() => panic!("no message was sent: {r:?}"),
                _ = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
            }
            peer.write_all(&frame(true, 2, b"later", Some(KEY)))
                .await
                .unwrap();
            assert_eq!(ws.recv().await.unwrap().as_bytes(), b"later");
            tokio::select! {
                r = ws.recv() => panic!("no message was sent: {r:?}"),
                _ = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
            }
            let before = live();
            drop(ws);
            let held = before - live();
            // The box holding the stream itself is part of what dropping it frees.
            let inline = std::mem::size_of::<WebSocketStream<tokio::io::DuplexStream>>() as isize;
            println!(
                "idle tokio WebSocketStream after release_after: {} B of heap besides its own \
                 {inline} B",
                held - inline
            );
            assert!(held - inline <= 400, "WebSocketStream holds {held} bytes");
        });
    }
}
