//! Conformance with RFC 6455, section by section (the Autobahn|Testsuite sections), over
//! loopback with both adapters in both roles and through the core frame by frame and byte by
//! byte. One test binary: each file below is a module.
//!
//! Every loopback case also runs over HTTP/2 (RFC 8441): the raw client's frames go as DATA on
//! an extended CONNECT stream to a hybi server behind hyper-util's auto builder, and the
//! answers are compared the same way (`support::wire::Mode::Http2`). Autobahn|Testsuite speaks
//! only HTTP/1.1: this is the conformance evidence for WebSockets over HTTP/2.

#[path = "../support/mod.rs"]
mod support;

mod closing;
mod fragmentation;
mod framing;
mod limits;
mod opcodes;
mod pingpong;
mod reserved_bits;
mod utf8;
