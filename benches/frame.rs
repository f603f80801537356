//! Frame header decode/encode for the three length forms (7-bit, 16-bit, 64-bit), masked and
//! not, and the opening handshake: parsing the client's request and encoding the 101 answer.
//!
//! `cargo bench --bench frame`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hybi::frame::{FrameHeader, Opcode, Status, MAX_HEADER_LEN};
use hybi::{Accept, Request};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn header(len: u64, masked: bool) -> FrameHeader {
    let mut h = FrameHeader::new(Opcode::Binary, len);
    h.mask = masked.then_some(KEY);
    h
}

fn headers(c: &mut Criterion) {
    for (name, len) in [("7bit", 100u64), ("16bit", 1000), ("64bit", 1 << 20)] {
        for masked in [false, true] {
            let h = header(len, masked);
            let mut bytes = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut bytes);
            let suffix = if masked { "masked" } else { "unmasked" };
            let mut group = c.benchmark_group(format!("header/{name}/{suffix}"));
            group.throughput(Throughput::Elements(1));
            group.bench_function("decode", |b| {
                b.iter(|| match FrameHeader::decode(black_box(&bytes[..n])) {
                    Ok(Status::Complete((h, used))) => (h.payload_len, used),
                    _ => unreachable!(),
                })
            });
            group.bench_function("encode", |b| {
                let mut out = [0u8; MAX_HEADER_LEN];
                b.iter(|| black_box(&h).encode(black_box(&mut out)))
            });
            group.finish();
        }
    }
}

/// What a browser sends (Chrome, trimmed of cookies).
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_request", |b| {
        b.iter(|| match Request::parse(black_box(REQUEST), 8 << 10, 64) {
            Ok(Status::Complete((r, used))) => (r.key().map_or(0, str::len), used),
            _ => unreachable!(),
        })
    });
    let Ok(Status::Complete((request, _))) = Request::parse(REQUEST, 8 << 10, 64) else {
        unreachable!()
    };
    group.bench_function("encode_101", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            Accept::new().encode(black_box(&request), &mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(20);
    targets = headers, handshake
}
criterion_main!(benches);
