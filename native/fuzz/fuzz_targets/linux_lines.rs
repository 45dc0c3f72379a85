//! cargo-fuzz target `linux_lines`: the checks are [`auditrecv_native_fuzz::linux_lines`] (shared with the regression tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditrecv_native_fuzz::linux_lines(data));
