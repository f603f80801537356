//! Connection throughput on an in-memory pair: many small messages (16 B) and one large one
//! (16 MiB, in one frame and in 64 KiB fragments), receive and send, in both roles.
//!
//! `cargo bench --bench conn`. Receiving is fed the way an adapter feeds it: `read_into`, one
//! "read" at a time into the spare room the connection reserved (at most 64 KiB per read), so
//! the only copy is the one a socket read makes. Throughput is per message or per payload byte.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hybi::{Config, Connection, Event, Message, Role};

const SMALL: usize = 16;
const BATCH: usize = 1000;
const LARGE: usize = 16 << 20;
const FRAG: usize = 64 << 10;
const MAX_READ: usize = 64 << 10;

/// Everything `conn` has queued, as one byte string (the wire).
fn take_output(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::with_capacity(conn.buffered_amount());
    for chunk in conn.output_chunks() {
        wire.extend_from_slice(chunk);
    }
    conn.advance_output(wire.len());
    wire
}

/// Discards everything `conn` has queued, as a transport would after writing it.
fn drain_output(conn: &mut Connection) -> usize {
    let n = conn.buffered_amount();
    let mut seen = 0;
    for chunk in conn.output_chunks() {
        seen += black_box(chunk).len();
    }
    conn.advance_output(n);
    seen
}

/// Feeds `wire` through `read_into` as socket reads would, and counts the messages delivered.
fn feed(conn: &mut Connection, wire: &[u8]) -> usize {
    let mut pos = 0;
    let mut messages = 0;
    while pos < wire.len() {
        conn.read_into(|buf| {
            let n = (buf.capacity() - buf.len())
                .min(wire.len() - pos)
                .min(MAX_READ);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
        });
        while let Some(ev) = conn.next_event() {
            if let Event::Message(m) = ev {
                black_box(m.as_bytes());
                messages += 1;
            }
        }
    }
    messages
}

fn config(fragment: Option<usize>) -> Config {
    Config::default().with_write_fragment_size(fragment)
}

/// What `role`'s peer sends: `count` binary messages of `len` bytes.
fn wire_to(role: Role, count: usize, len: usize, fragment: Option<usize>) -> Vec<u8> {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut c = Connection::open(peer, config(fragment));
    let payload = vec![0x5a; len];
    for _ in 0..count {
        c.send_binary(&payload).unwrap();
    }
    take_output(&mut c)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

fn small(c: &mut Criterion) {
    let mut group = c.benchmark_group("conn/16B");
    group.throughput(Throughput::Elements(BATCH as u64));
    let payload = [0x5au8; SMALL];
    for role in [Role::Server, Role::Client] {
        let name = role_name(role);
        let wire = wire_to(role, BATCH, SMALL, None);
        let mut conn = Connection::open(role, Config::default());
        group.bench_function(format!("recv/{name}"), |b| {
            b.iter(|| assert_eq!(feed(&mut conn, black_box(&wire)), BATCH))
        });
        let mut conn = Connection::open(role, Config::default());
        group.bench_function(format!("send/{name}"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    conn.send_binary(black_box(&payload)).unwrap();
                }
                drain_output(&mut conn)
            })
        });
        // What an echo server does per batch: receive, answer each, write once.
        let mut conn = Connection::open(role, Config::default());
        group.bench_function(format!("echo/{name}"), |b| {
            b.iter(|| {
                let mut pos = 0;
                while pos < wire.len() {
                    conn.read_into(|buf| {
                        let n = (buf.capacity() - buf.len()).min(wire.len() - pos);
                        buf.extend_from_slice(&wire[pos..pos + n]);
                        pos += n;
                    });
                    while let Some(ev) = conn.next_event() {
                        if let Event::Message(m) = ev {
                            conn.send(m).unwrap();
                        }
                    }
                    drain_output(&mut conn);
                }
            })
        });
    }
    // Both ends: the client sends, the server receives.
    let mut client = Connection::open(Role::Client, Config::default());
    let mut server = Connection::open(Role::Server, Config::default());
    group.bench_function("pair/client-to-server", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                client.send_binary(black_box(&payload)).unwrap();
            }
            let wire = take_output(&mut client);
            assert_eq!(feed(&mut server, &wire), BATCH);
        })
    });
    group.finish();
}

fn large(c: &mut Criterion) {
    let mut group = c.benchmark_group("conn/16MiB");
    group.throughput(Throughput::Bytes(LARGE as u64));
    group.sample_size(10);
    for (frames, fragment) in [("1frame", None), ("64KiB-frames", Some(FRAG))] {
        for role in [Role::Server, Role::Client] {
            let name = role_name(role);
            let wire = wire_to(role, 1, LARGE, fragment);
            let mut conn = Connection::open(role, Config::default());
            group.bench_function(format!("recv/{name}/{frames}"), |b| {
                b.iter(|| {
                    assert_eq!(feed(&mut conn, black_box(&wire)), 1);
                    conn.release_memory();
                })
            });
            // A client masks into the output (one copy); a server queues a `Bytes` payload
            // without a copy when it goes out in one frame.
            let payload = Bytes::from(vec![0x5au8; LARGE]);
            let mut conn = Connection::open(role, config(fragment));
            group.bench_function(format!("send/{name}/{frames}"), |b| {
                b.iter(|| {
                    conn.send(Message::Binary(payload.clone())).unwrap();
                    drain_output(&mut conn);
                    conn.release_memory();
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20);
    targets = small, large
}
criterion_main!(benches);
