//! The headers illumos compiles against, generated from the library's Rust
//! definitions with cbindgen: `include/sys/vmm_gpt.h` from the whole crate
//! (`cbindgen.toml`), `include/sys/vmm_gpt_impl.h` from `src/abi_impl.rs`
//! (`cbindgen-impl.toml`) and the opt-in extension's
//! `include/sys/vmm_gpt_ext.h` from `src/ffi_ext.rs` (`cbindgen-ext.toml`).
//!
//! This is its own command, not the library's build script, so that the
//! library has no dependencies of any kind and no build writes into the
//! source tree (an illumos build host builds offline).  `cargo run -p
//! vmm-gpt-headers` rewrites the checked-in headers; `-- --check` and the
//! test `headers_are_fresh` (ctest/tests/headers.rs) fail when they are
//! stale.

use std::fs;
use std::path::{Path, PathBuf};

/// One generated header: where it goes (relative to the repository root)
/// and what it holds.
pub struct Header {
    pub path: &'static str,
    pub text: String,
}

/// The repository root (the library's crate directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generate_one(root: &Path, config: &str, single_file: Option<&str>) -> Result<String, String> {
    let config =
        cbindgen::Config::from_file(root.join(config)).map_err(|e| format!("{config}: {e}"))?;
    let builder = cbindgen::Builder::new().with_config(config);
    let builder = match single_file {
        Some(f) => builder.with_src(root.join(f)),
        None => builder.with_crate(root),
    };
    let bindings = builder.generate().map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| format!("cbindgen wrote no UTF-8: {e}"))
}

/// The three headers, generated from the sources under `root`.
pub fn generate(root: &Path) -> Result<Vec<Header>, String> {
    Ok(vec![
        Header {
            path: "include/sys/vmm_gpt.h",
            text: generate_one(root, "cbindgen.toml", None)?,
        },
        Header {
            path: "include/sys/vmm_gpt_impl.h",
            text: generate_one(root, "cbindgen-impl.toml", Some("src/abi_impl.rs"))?,
        },
        Header {
            path: "include/sys/vmm_gpt_ext.h",
            text: generate_one(root, "cbindgen-ext.toml", Some("src/ffi_ext.rs"))?,
        },
    ])
}

/// The headers under `root` that differ from what [`generate`] makes.
pub fn stale(root: &Path) -> Result<Vec<&'static str>, String> {
    Ok(generate(root)?
        .into_iter()
        .filter(|h| fs::read_to_string(root.join(h.path)).ok().as_deref() != Some(h.text.as_str()))
        .map(|h| h.path)
        .collect())
}
