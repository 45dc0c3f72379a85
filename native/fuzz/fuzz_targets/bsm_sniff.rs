//! cargo-fuzz target `bsm_sniff`: the checks are [`auditrecv_native_fuzz::bsm_sniff`] (shared with the regression tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditrecv_native_fuzz::bsm_sniff(data));
