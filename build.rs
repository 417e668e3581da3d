// Generates include/sys/vmm_gpt.h and include/sys/vmm_gpt_impl.h from the
// Rust definitions with cbindgen (configured in cbindgen.toml and
// cbindgen-impl.toml).  A file is only rewritten when its contents change,
// so a build leaves a fresh checkout untouched; the test
// `headers_are_fresh` fails when the checked-in copy is stale.

use std::path::Path;

fn generate(crate_dir: &Path, config: &str, out: &str, single_file: Option<&str>) {
    let config = cbindgen::Config::from_file(crate_dir.join(config))
        .unwrap_or_else(|e| panic!("{config}: {e}"));
    let builder = cbindgen::Builder::new().with_config(config);
    let builder = match single_file {
        Some(f) => builder.with_src(crate_dir.join(f)),
        None => builder.with_crate(crate_dir),
    };
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen for {out}: {e}"));
    bindings.write_to_file(crate_dir.join(out));
}

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let crate_dir = Path::new(&crate_dir);
    for f in ["src", "cbindgen.toml", "cbindgen-impl.toml", "include/sys"] {
        println!("cargo:rerun-if-changed={f}");
    }
    generate(crate_dir, "cbindgen.toml", "include/sys/vmm_gpt.h", None);
    generate(
        crate_dir,
        "cbindgen-impl.toml",
        "include/sys/vmm_gpt_impl.h",
        Some("src/abi_impl.rs"),
    );
}
