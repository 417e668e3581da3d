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

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::exit;

use vmm_gpt_difftest::{from_bytes, reference_available, run};

fn main() {
    if env::args().any(|a| a == "--list") {
        println!("fuzz_seed_corpus_runs_without_divergence: test");
        return;
    }
    if !reference_available() {
        println!("fuzz_corpus: the original is not built (ILLUMOS_GATE unset): skipped");
        println!("fuzz_corpus: 0 passed, 0 failed, 1 skipped");
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
    if failures.is_empty() {
        println!("fuzz_corpus: 1 passed, 0 failed, 0 skipped");
    } else {
        println!("{}", failures.join("\n"));
        println!("fuzz_corpus: 0 passed, 1 failed, 0 skipped");
        exit(1);
    }
}
