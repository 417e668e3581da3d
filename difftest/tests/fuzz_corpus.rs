//! The fuzz target's seed corpus as a regression test, on the stable
//! toolchain and without libFuzzer: every file of
//! `fuzz/corpus/differential/` goes through what the fuzz target
//! (`fuzz/fuzz_targets/differential.rs`) does with it, `from_bytes` then
//! `run`, and both implementations must agree.  Inputs that once found a
//! divergence belong in that corpus, so this keeps them fixed.
//!
//! Skipped (passing) when the original is not built (`ILLUMOS_GATE` unset).

use std::fs;
use std::path::PathBuf;

use vmm_gpt_difftest::{from_bytes, reference_available, run};

#[test]
fn fuzz_seed_corpus_runs_without_divergence() {
    if !reference_available() {
        println!("fuzz_corpus: the original is not built (ILLUMOS_GATE unset): skipped");
        return;
    }
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
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
