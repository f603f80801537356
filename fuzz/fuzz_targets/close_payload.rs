//! `CloseFrame::parse` on arbitrary close payloads.
//!
//! Properties: the empty payload is `Ok(None)`; one byte is `CloseTooShort`; otherwise the
//! first two bytes are the code and the result is `InvalidCloseCode(code)` exactly when the code
//! is not receivable, `InvalidCloseReason` exactly when the rest is not UTF-8, and `Ok(Some)`
//! otherwise; a parsed frame has a receivable code, re-encodes to the same bytes, and (for
//! payloads that fit a control frame) has a reason of at most 123 bytes and passes `validate`.
//! No other error appears.
#![no_main]

use hybi::CloseFrame;
use hybi::FrameError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = CloseFrame::parse(data);
    match data {
        [] => assert_eq!(result, Ok(None)),
        [_] => assert_eq!(result, Err(FrameError::CloseTooShort)),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let receivable = hybi::CloseCode::from(code).is_receivable();
            let utf8 = std::str::from_utf8(reason);
            match result {
                Err(FrameError::InvalidCloseCode(c)) => {
                    assert_eq!(c, code);
                    assert!(!receivable);
                }
                Err(FrameError::InvalidCloseReason) => assert!(receivable && utf8.is_err()),
                Ok(Some(frame)) => {
                    assert!(receivable && frame.code.is_receivable());
                    assert_eq!(frame.code.as_u16(), code);
                    assert_eq!(Ok(frame.reason.as_str()), utf8);
                    let mut again = Vec::new();
                    frame.encode(&mut again);
                    assert_eq!(again, data);
                    if data.len() <= 125 {
                        assert!(frame.reason.len() <= CloseFrame::MAX_REASON_LEN);
                        assert_eq!(frame.validate(), Ok(()));
                    }
                }
                other => panic!("undocumented result {other:?} for {data:x?}"),
            }
        }
    }
});
