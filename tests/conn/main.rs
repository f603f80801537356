//! The sans-IO connection (`Connection`) driven by hand: handshake, framing, fragmentation,
//! UTF-8, control frames, limits, failing and closing. One test binary: each file below is a
//! module.

#[path = "../support/mod.rs"]
mod support;

mod closing;
mod control;
mod failing;
mod fragmentation;
mod framing;
mod handshake;
mod limits;
mod utf8;
