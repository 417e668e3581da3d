//! The fuzz target's seed corpus as a regression test, on the stable
//! toolchain and without libFuzzer: every file of
//! `fuzz/corpus/differential/` goes through what the fuzz target
//! (`fuzz/fuzz_targets/differential.rs`) does with it, `from_bytes` then
//! `run`, and both implementations must agree.  Inputs that once found a
//! divergence belong in that corpus, so this keeps them fixed.
//!
//! A plain program (no libtest harness): without the original
//! (`ILLUMOS_GATE` unset) it checks nothing and says so, "0 passed, 0
//! failed, 1 skipped".

use std::fs;
use std::path::PathBuf;

use vmm_gpt_difftest::{from_bytes, program, run};

fn main() {
    program::answer_list("fuzz_corpus");
    program::skip_without_original("fuzz_corpus");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/differential");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seed inputs", dir.display());

    let mut failures = Vec::new();
    let mut ops = 0;
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (format, seq) = from_bytes(&data);
        ops += seq.len();
        if let Err(d) = run(format, &seq) {
            failures.push(format!(
                "{} ({format:?}, {} ops): {d}",
                file.display(),
                seq.len()
            ));
        }
    }
    println!(
        "fuzz_corpus: {} inputs, {ops} operations, {} divergent",
        files.len(),
        failures.len()
    );
    if failures.is_empty() {
        program::close("fuzz_corpus", 1, 0, 0);
    }
    println!("{}", failures.join("\n"));
    program::close("fuzz_corpus", 0, 1, 0);
}
