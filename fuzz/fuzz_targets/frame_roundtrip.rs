//! Frame encode → decode round trip, and chunked masking.
//!
//! Properties: a sequence of arbitrary valid frames (FIN, RSV bits, one of the six opcodes, an
//! optional mask, a payload; control frames final and at most 125 bytes), each encoded with
//! `FrameHeader::encode` (or a non-minimal length form) and its payload masked, decodes back to
//! the same frames using exactly the bytes written; `apply_mask` over arbitrary chunks with the
//! offset carried on equals `apply_mask_naive` over the whole buffer at once, and masking twice
//! is the identity.
#![no_main]

use arbitrary::Arbitrary;
use hybi::frame::{apply_mask, FrameHeader, Opcode, Status, MAX_HEADER_LEN};
use hybi::testing::apply_mask_naive;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl From<Op> for Opcode {
    fn from(op: Op) -> Self {
        match op {
            Op::Continuation => Opcode::Continuation,
            Op::Text => Opcode::Text,
            Op::Binary => Opcode::Binary,
            Op::Close => Opcode::Close,
            Op::Ping => Opcode::Ping,
            Op::Pong => Opcode::Pong,
        }
    }
}

/// How the length is written: the minimal form, or a longer one (accepted on receipt).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum LenForm {
    Minimal,
    Ext16,
    Ext64,
}

#[derive(Arbitrary, Debug)]
struct FrameSpec {
    fin: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
    op: Op,
    mask: Option<[u8; 4]>,
    form: LenForm,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<FrameSpec>,
    key: [u8; 4],
    offset: u8,
    data: Vec<u8>,
    chunks: Vec<u8>,
}

/// Writes the header in the requested length form (falls back to minimal when the form cannot
/// hold the length, or when the frame is a control frame: those must use the 7-bit form).
fn encode_header(h: &FrameHeader, form: LenForm, out: &mut Vec<u8>) {
    let len = h.payload_len;
    let form = match form {
        _ if h.opcode.is_control() => LenForm::Minimal,
        LenForm::Ext16 if len > 0xffff => LenForm::Minimal,
        f => f,
    };
    match form {
        LenForm::Minimal => {
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut buf);
            assert_eq!(n, h.encoded_len());
            out.extend_from_slice(&buf[..n]);
        }
        LenForm::Ext16 | LenForm::Ext64 => {
            out.push((h.fin as u8) << 7 | h.rsv_bits() << 4 | u8::from(h.opcode));
            let m = if h.mask.is_some() { 0x80 } else { 0 };
            if matches!(form, LenForm::Ext16) {
                out.push(m | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(m | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
            if let Some(k) = h.mask {
                out.extend_from_slice(&k);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    // 1. Round trip of a frame sequence.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for spec in &input.frames {
        let opcode = Opcode::from(spec.op);
        let mut payload = spec.payload.clone();
        if opcode.is_control() {
            payload.truncate(125);
        }
        let h = FrameHeader {
            fin: spec.fin || opcode.is_control(),
            rsv1: spec.rsv1,
            rsv2: spec.rsv2,
            rsv3: spec.rsv3,
            opcode,
            mask: spec.mask,
            payload_len: payload.len() as u64,
        };
        encode_header(&h, spec.form, &mut wire);
        let start = wire.len();
        wire.extend_from_slice(&payload);
        if let Some(k) = h.mask {
            apply_mask(&mut wire[start..], k, 0);
        }
        expected.push((h, payload));
    }
    let mut rest = &wire[..];
    for (h, payload) in &expected {
        let Ok(Status::Complete((got, used))) = FrameHeader::decode(rest) else {
            panic!("{h:?} did not decode: {:?}", FrameHeader::decode(rest));
        };
        assert_eq!(&got, h);
        assert!(used <= rest.len() && used >= got.encoded_len());
        let len = got.payload_len as usize;
        let mut p = rest[used..used + len].to_vec();
        if let Some(k) = got.mask {
            apply_mask_naive(&mut p, k, 0);
        }
        assert_eq!(&p, payload);
        rest = &rest[used + len..];
    }
    assert!(rest.is_empty());

    // 2. Chunked masking with carried offsets equals the naive mask at once.
    let offset = usize::from(input.offset);
    let mut fast = input.data.clone();
    let mut at = 0;
    let mut sizes = input.chunks.iter().cycle();
    while at < fast.len() {
        let size = sizes.next().map_or(fast.len(), |&s| usize::from(s).max(1));
        let end = (at + size).min(fast.len());
        apply_mask(&mut fast[at..end], input.key, offset + at);
        at = end;
    }
    let mut slow = input.data.clone();
    apply_mask_naive(&mut slow, input.key, offset);
    assert_eq!(fast, slow);
    apply_mask(&mut fast, input.key, offset);
    assert_eq!(fast, input.data);
});
