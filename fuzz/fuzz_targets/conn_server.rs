//! A whole server connection fed arbitrary bytes in arbitrary chunks, with local commands
//! interleaved. See `hybi_fuzz` (fuzz/src/lib.rs) for the input format.
//!
//! Properties (checked after every step, for the whole feed and the chunked feed):
//! - no panic; `state()` only moves forward (CONNECTING ≤ OPEN ≤ CLOSING ≤ CLOSED), and is
//!   CLOSED exactly when `Event::Closed` was reported, which happens at most once and is the
//!   last event; input after it produces no events and no output;
//! - commands succeed or fail exactly as the state says (`WrongState`, `SendAfterClose`,
//!   `Closed`, `ControlTooLong`, `InvalidCloseCode`, `FragmentOutOfSequence`), and a failed
//!   command changes nothing;
//! - buffered output stays bounded (pongs coalesce) and `output_chunks` agrees with it;
//! - all output is the handshake head (a request/101 the other side's parser accepts, or one
//!   complete HTTP error response) followed by valid frames: masked iff client, control frames
//!   final and ≤ 125 bytes, a valid fragment sequence, UTF-8 text, one close frame at most, and
//!   it is the last frame;
//! - chunking invariance: the chunked feed gives the same events, command results, output and
//!   outcome as feeding each segment at once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hybi_fuzz::fuzz_connection(hybi::Role::Server, data));
