//! The panic boundary between decoders and their caller: a panic while decoding one record must cost
//! that record (the caller dead-letters it), never the process. Pure Rust, so it is tested without
//! Python; `python.rs` maps the error to the `NativePanic` exception.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A caught panic, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked(pub String);

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Run `f`; a panic inside it becomes `Err(Panicked)`. The closures given here own or borrow their
/// input immutably and build their output from scratch, so nothing half-updated outlives a panic
/// (hence `AssertUnwindSafe`).
pub fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| Panicked(message(p.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bsm::record::tests::{header32, record, text_token};
    use crate::bsm::record::{Limits, decode_record_with};

    #[test]
    fn a_panic_in_the_decoder_is_caught() {
        let data = record(&header32(1, 0, 0, 11), &[&text_token(b"x")], true);
        let caught = guard(|| decode_record_with(&data, 0, true, Limits::default(), true).tokens.len());
        let Err(Panicked(msg)) = caught else { panic!("no panic") };
        assert!(msg.contains("fault injected"), "{msg}");
        // and the next call works
        assert_eq!(guard(|| decode_record_with(&data, 0, true, Limits::default(), false).tokens.len()), Ok(1));
    }

    #[test]
    fn formatted_panics_keep_their_message() {
        let n = 3;
        assert_eq!(guard(|| -> u8 { panic!("boom {n}") }), Err(Panicked("boom 3".into())));
    }
}
