// Links the userland kernel stand-in (ctest/c: kernel services, the
// indirection stubs, the EPT and AMD test formats) into the demo.
fn main() {
    let c = "../ctest/c";
    let files = ["kernel.c", "stubs.S", "pte_ept.c", "pte_rvi.c"];
    for f in files {
        println!("cargo:rerun-if-changed={c}/{f}");
    }
    println!("cargo:rerun-if-changed=../ctest/include");
    cc::Build::new()
        .files(files.iter().map(|f| format!("{c}/{f}")))
        .include(c)
        .include("../ctest/include")
        .include("../include")
        .flag("-std=gnu11")
        .warnings_into_errors(true)
        .compile("vmm_gpt_demo_kernel");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=pthread");
}
