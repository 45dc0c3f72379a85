//! The fuzzers' regressions, replayed on every `cargo test`: each `.bin` under `fuzz/regressions/<target>/`
//! (crashes `scripts/fuzz_native.py` found and minimized, and hand-made hostile inputs) goes through
//! every fuzz target's code, which is this very file's module `fuzz` (`fuzz/src/lib.rs`, included
//! here): no panic, and the targets' invariants hold.

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::fs;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    out.sort();
    out
}

#[test]
fn every_regression_input_passes_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let (mut inputs, mut failures) = (0, Vec::new());
    for dir in sorted(&root).into_iter().filter(|p| p.is_dir()) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        assert!(
            fuzz::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name}: no such target in fuzz/src/lib.rs TARGETS"
        );
        for file in sorted(&dir).into_iter().filter(|p| p.extension().is_some_and(|x| x == "bin")) {
            let data = fs::read(&file).expect("a regression input");
            inputs += 1;
            for (target, check) in fuzz::TARGETS {
                if catch_unwind(|| check(&data)).is_err() {
                    failures.push(format!("{} through {target}", file.display()));
                }
            }
        }
    }
    assert!(inputs >= 3, "only {inputs} regression inputs under {}", root.display());
    assert!(failures.is_empty(), "panics (messages above):\n{}", failures.join("\n"));
}

#[test]
fn every_target_has_its_fuzz_target_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut files: Vec<String> =
        sorted(&dir).iter().filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned)).collect();
    let mut names: Vec<String> = fuzz::TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    files.sort();
    names.sort();
    assert_eq!(files, names, "fuzz/fuzz_targets/*.rs and TARGETS in fuzz/src/lib.rs differ");
}
