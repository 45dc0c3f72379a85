//! cargo-fuzz target `bsm_trail`: the checks are [`auditrecv_native_fuzz::bsm_trail`] (shared with the regression tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditrecv_native_fuzz::bsm_trail(data));
