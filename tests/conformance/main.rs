//! Conformance with RFC 6455, section by section (the Autobahn|Testsuite sections), over
//! loopback with both adapters in both roles and through the core frame by frame and byte by
//! byte. One test binary: each file below is a module.

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
