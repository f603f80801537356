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
