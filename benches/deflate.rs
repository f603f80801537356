//! permessage-deflate (RFC 7692) cost and benefit: an in-memory client → server `Connection`
//! pair (handshake done) carries JSON messages, plain and compressed, with and without context
//! takeover.
//!
//! `cargo bench --bench deflate`. Two workloads, each one batch per iteration:
//! - `chat`: 200 chat messages of 100-300 bytes, such as
//!   `{"type":"message","from":"alice","text":"...","ts":1732147200000}`;
//! - `json16k`: 8 JSON arrays of 16 KiB (chat history pages).
//!
//! Throughput is payload bytes through the client's send and the server's receive (masking,
//! compressing, framing, parsing, inflating, UTF-8 validation). The compression ratio of each
//! case (wire bytes, headers included, over payload bytes, for the batch sent twice on one
//! connection) is printed to stderr once before the measurements.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hybi::testing::FixedMask;
use hybi::{ClientRequest, Config, Connection, DeflateConfig, Event, Message};

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: [&str; 40] = [
    "hello", "hi", "the", "meeting", "is", "at", "noon", "ok", "see", "you", "there", "thanks",
    "lunch", "deploy", "done", "review", "please", "can", "someone", "look", "at", "my", "PR",
    "build", "is", "green", "again", "coffee", "later", "tomorrow", "works", "for", "me", "great",
    "news", "ship", "it", "sounds", "good", "👍",
];
const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

fn chat_message(rng: &mut Rng, i: u64) -> String {
    let mut text = String::new();
    let target = 40 + rng.below(190);
    while text.len() < target {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len())]);
    }
    format!(
        r#"{{"type":"message","from":"{}","room":"general","text":"{}","ts":{}}}"#,
        NAMES[rng.below(NAMES.len())],
        text,
        1_732_147_200_000u64 + i * 1371 + rng.below(1000) as u64
    )
}

/// 200 chat messages of 100-300 bytes.
fn chat_batch() -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..200).map(|i| chat_message(&mut rng, i)).collect()
}

/// 8 JSON arrays of chat messages, 16 KiB each (cut at a message boundary, then padded).
fn json16k_batch() -> Vec<String> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut i = 0;
    (0..8)
        .map(|_| {
            let mut s = String::from("[");
            loop {
                let m = chat_message(&mut rng, i);
                i += 1;
                if s.len() + m.len() + 2 > 16 << 10 {
                    break;
                }
                if s.len() > 1 {
                    s.push(',');
                }
                s.push_str(&m);
            }
            s.push(']');
            while s.len() < 16 << 10 {
                s.insert(s.len() - 1, ' ');
            }
            s
        })
        .collect()
}

/// A client → server pair, OPEN, with `deflate` on both sides (or neither).
fn pair(deflate: Option<DeflateConfig>) -> (Connection, Connection) {
    let mut cc = Config::default()
        .with_mask_source(FixedMask([0x37, 0xfa, 0x21, 0x3d]))
        .with_max_message_size(1 << 20);
    let mut sc = Config::default().with_max_message_size(1 << 20);
    if let Some(d) = deflate {
        cc = cc.with_deflate(d);
        sc = sc.with_deflate(d);
    }
    let mut client = Connection::client(ClientRequest::new("ws://bench/").unwrap(), cc);
    let mut server = Connection::server(sc);
    let mut extensions = Vec::new();
    for _ in 0..4 {
        move_bytes(&mut client, &mut server);
        while let Some(ev) = server.next_event() {
            if let Event::Request(_) = ev {
                server.accept(hybi::Accept::new()).unwrap();
            }
        }
        move_bytes(&mut server, &mut client);
        while let Some(ev) = client.next_event() {
            if let Event::Open(h) = ev {
                extensions = h.extensions;
            }
        }
    }
    assert_eq!(
        extensions.len(),
        usize::from(deflate.is_some()),
        "{extensions:?}"
    );
    (client, server)
}

/// Moves all of `from`'s output into `to`; returns the byte count.
fn move_bytes(from: &mut Connection, to: &mut Connection) -> usize {
    let mut n = 0;
    loop {
        let out = from.pending_output();
        if out.is_empty() {
            return n;
        }
        let k = out.len();
        to.handle_input(out);
        from.advance_output(k);
        n += k;
    }
}

/// Sends the batch from the client and receives it on the server; returns the wire bytes.
fn send_batch(client: &mut Connection, server: &mut Connection, batch: &[String]) -> usize {
    let mut wire = 0;
    for m in batch {
        client.send_text(m).unwrap();
        wire += move_bytes(client, server);
        match server.next_event() {
            Some(Event::Message(Message::Text(t))) => {
                debug_assert_eq!(t.len(), m.len());
                black_box(t);
            }
            other => panic!("expected the message, got {other:?}"),
        }
    }
    wire
}

fn cases() -> [(&'static str, Option<DeflateConfig>); 3] {
    [
        ("plain", None),
        ("deflate", Some(DeflateConfig::default())),
        (
            "deflate_no_context_takeover",
            Some(
                DeflateConfig::default()
                    .with_client_no_context_takeover(true)
                    .with_server_no_context_takeover(true),
            ),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let workloads = [("chat", chat_batch()), ("json16k", json16k_batch())];
    for (workload, batch) in &workloads {
        let payload: usize = batch.iter().map(String::len).sum();
        for (case, deflate) in cases() {
            let (mut client, mut server) = pair(deflate);
            let wire = send_batch(&mut client, &mut server, batch)
                + send_batch(&mut client, &mut server, batch);
            eprintln!(
                "ratio {workload}/{case}: {wire} wire bytes for {} payload bytes = {:.1}% ({} messages, mean {} B)",
                2 * payload,
                100.0 * wire as f64 / (2 * payload) as f64,
                2 * batch.len(),
                payload / batch.len()
            );
        }
    }
    for (workload, batch) in &workloads {
        let payload: usize = batch.iter().map(String::len).sum();
        let mut group = c.benchmark_group(*workload);
        group.throughput(Throughput::Bytes(payload as u64));
        for (case, deflate) in cases() {
            let (mut client, mut server) = pair(deflate);
            group.bench_function(case, |b| {
                b.iter(|| send_batch(&mut client, &mut server, batch))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
