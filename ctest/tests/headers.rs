//! The checked-in headers are what cbindgen makes of the Rust definitions
//! (`tools/headers`, `cargo run -p vmm-gpt-headers`), and they say what
//! illumos' say.

// The package links the C harness into every test target, and the harness
// needs the library.
use vmm_gpt as _;
use vmm_gpt_harness as _;

mod common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn header(name: &str) -> String {
    let path = root().join("include/sys").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn headers_are_fresh() {
    let stale =
        vmm_gpt_headers::stale(&root()).unwrap_or_else(|e| panic!("generating the headers: {e}"));
    assert!(
        stale.is_empty(),
        "the checked-in headers are stale: {stale:?}; regenerate them with \
         `cargo run -p vmm-gpt-headers`, review and commit them"
    );
}

#[test]
fn vmm_gpt_h_has_the_illumos_shape() {
    let h = header("vmm_gpt.h");
    for needle in [
        "#ifndef _VMM_GPT_H",
        "#define _VMM_GPT_H",
        "#include <sys/types.h>",
        "struct vmm_pte_impl;",
        "typedef enum vmm_gpt_node_level vmm_gpt_node_level_t;",
        "typedef struct vmm_gpt vmm_gpt_t;",
        "typedef uint64_t vmm_gpt_entry_t;",
        "typedef struct vmm_gpt_iter vmm_gpt_iter_t;",
        "typedef struct vmm_gpt_iter_entry vmm_gpt_iter_entry_t;",
        "vmm_gpt_entry_t *vgi_entries[MAX_GPT_LEVEL];",
        "bool vmm_gpt_init(const struct vmm_pte_impl *",
    ] {
        assert!(h.contains(needle), "vmm_gpt.h lacks `{needle}`:\n{h}");
    }
    // Exactly one include, and none of the kernel's types redefined.
    assert_eq!(h.matches("#include").count(), 1, "{h}");
    for typ in ["pfn_t;", "uint_t;", " bool;", "size_t;"] {
        assert!(!h.contains(&format!("typedef unsigned long {typ}")), "{h}");
        assert!(!h.contains(&format!("typedef unsigned int {typ}")), "{h}");
    }
    // The 19 prototypes, in illumos' order, and nothing else exported.
    let protos: Vec<&str> = h
        .lines()
        .filter(|l| l.contains('(') && l.ends_with(");"))
        .collect();
    let names: Vec<&str> = protos
        .iter()
        .map(|l| {
            let name = l.split('(').next().unwrap();
            name.rsplit([' ', '*']).next().unwrap()
        })
        .collect();
    assert_eq!(names, common::names(common::EXPORTS)[..19]);
}

#[test]
fn vmm_gpt_impl_h_has_the_illumos_shape() {
    let h = header("vmm_gpt_impl.h");
    let includes: Vec<&str> = h.lines().filter(|l| l.starts_with("#include")).collect();
    assert_eq!(
        includes,
        [
            "#include <sys/types.h>",
            "#include <sys/mach_mmu.h>",
            "#include <sys/mman.h>",
            "#include <sys/x86_archext.h>",
            "#include <vm/hat_pte.h>",
        ]
    );
    for needle in [
        "#ifndef _VMM_GPT_IMPL_H",
        "typedef struct vmm_pte_impl vmm_pte_impl_t;",
        "uint64_t (*vpi_map_table)(pfn_t);",
        "uint64_t (*vpi_map_page)(pfn_t, uint_t, uint8_t);",
        "bool (*vpi_pte_parse)(uint64_t, pfn_t*, uint_t*);",
        "uint64_t vpi_bit_accessed;",
        "uint64_t vpi_bit_dirty;",
        "uint64_t (*vpi_get_pmtp)(pfn_t, bool);",
        "bool (*vpi_hw_ad_supported)(void);",
    ] {
        assert!(h.contains(needle), "vmm_gpt_impl.h lacks `{needle}`:\n{h}");
    }
}
