//! # objcheck: what the vmm-gpt kernel object contains
//!
//! Inspects a relocatable x86-64 object (`target/kernel/vmm_gpt.o`, made by
//! `illumos-build/build.sh`) with GNU binutils and reports every property
//! that decides whether the illumos kernel can link and run it, and whether
//! DTrace and mdb see it as they see the kernel's C code
//! (`docs/kernel-object.md`):
//!
//! | rule | fails on |
//! | --- | --- |
//! | `elf` | not an ELF64 x86-64 relocatable object |
//! | `export` | a global definition other than the 21 of `vmm_gpt.o`, or one of them missing |
//! | `import` | an undefined symbol outside `imports.txt`: the kernel services, `memcpy`, `memmove`, `memset`, `memcmp`, the retpoline thunks `__x86_indirect_thunk_<reg>`, `__stack_chk_guard` and `__stack_chk_fail` |
//! | `relocation` | a relocation other than `R_X86_64_64`, `PC32`, `PLT32`, `32S`, `32` (krtld has no GOT and rejects TLS); a REL section |
//! | `fpu-simd` | an instruction using `%mm`, `%xmm`, `%ymm`, `%zmm`, `%k`, x87 registers or instructions |
//! | `section` | `.eh_frame`, `.gcc_except_table`, TLS or constructor sections |
//! | `rust-runtime` | a symbol of `core`, `alloc`, `std`, `compiler_builtins` or unwinding, local ones too |
//! | `stack-frame` | a function's frame above the limit (512 bytes), or of variable size |
//! | `recursion` | a cycle in the call graph |
//! | `ctfmerge` | a `.c` file symbol without CTF data, which `ctfmerge` refuses |
//! | `retpoline` | a raw indirect `call *` or `jmp *` (register or memory operand: a Spectre v2 gadget; illumos compiles every indirect branch as a call or jump to `__x86_indirect_thunk_<reg>`), or a jump table: an indirect `jmp` through a memory operand with an index register, or code addresses inside a function (not its start) stored in `.rodata`/`.data` |
//! | `fbt-entry` | a function symbol (local ones too: fbt instruments every `STT_FUNC` of a module) whose first instruction is not `push %rbp` (no push at all: no probes; a push after other instructions: the entry probe is late, or fires on some paths only), or whose `push %rbp` is not followed by `mov %rsp,%rbp` before anything that branches or uses the stack; a weak function or one of size 0 (fbt skips them) |
//! | `fbt-return` | a function that can return but has no plain `ret` of its own after its `push %rbp`; a `jmp` (conditional or not, direct or through a thunk) that leaves the function: a tail call, no return probe, the frame gone from stack traces; a return fbt does not instrument (before the push, `ret $n`, `repz ret`) |
//! | `shared-address` | two function symbols at one address: two fbt probes on one patch point |
//! | `names` | a symbol name containing `$` (a D probe description takes it for a macro variable); a Rust symbol in the legacy mangling (`_ZN...17h<hash>E`) rather than v0 (`_R...`) |
//! | `stack-protector` | a stack canary read from `%gs:0x28`/`%fs:0x28` (Linux's per-CPU/TLS canary; in the illumos kernel `%gs` holds the `cpu_t`): illumos' canary is the global `__stack_chk_guard` |
//!
//! The fbt rules hold each function to what fbt gives the illumos kernel's
//! C code (see [`fbt`]).  `Policy::fbt_exempt` names functions excused from
//! `fbt-entry` and `fbt-return`; it is empty for the kernel object.  A
//! function that never returns needs no `ret` (`vmm_gpt_impl_panic`, which
//! ends in a call to `panic`): "can return" is decided conservatively from
//! the instructions ([`fbt::returns`]).
//!
//! The report also has the measurements: sizes, relocation kinds, a
//! per-function table of frame sizes (pushes plus `sub $N,%rsp`, from the
//! instructions), the call graph from the relocations, the deepest chain of
//! frames inside the object, and the fbt/retpoline view of every function
//! symbol (entry probe, returns, tail calls, indirect branches, stack
//! protector).
//!
//! ## The original as the baseline
//!
//! [`compile_original`] compiles `vmm_gpt.c` with the flags illumos gives
//! gcc for a kernel module ([`ILLUMOS_CFLAGS`]), less those this gcc
//! rejects ([`kernel_cflags`]; gcc 12 here: `-msave-args`, which only
//! illumos' gcc has, and `-fno-clone-functions`, which gcc 12 does not
//! know), plus [`HOST_CFLAGS`], which undo a Linux gcc's defaults that
//! illumos' gcc does not have (PIE, CET, the `%gs` stack canary).  Besides
//! the `recursion` of `vmm_gpt_node_next` (its own code, bounded by the four
//! levels of the tree), the original so compiled breaks one rule,
//! `fbt-entry`, in two ways that are properties of upstream gcc, not of the
//! code:
//!
//! - upstream gcc drops the frame of a leaf function that does not touch
//!   the stack even with `-fno-omit-frame-pointer`
//!   (`ix86_finalize_stack_frame_flags`): `jmp_off_to_addr`,
//!   `jmp_addr_to_off`, `vmm_gpte_query_accessed`, `vmm_gpte_query_dirty`
//!   have no `push %rbp` (in DEBUG, where the last two assert, only the
//!   first two).  illumos' gcc is patched to keep it ("Disable
//!   -fomit-frame-pointer"; `-msave-args` requires a frame too);
//! - gcc's second scheduling pass hoists a load that does not touch the
//!   stack above `push %rbp` (`vmm_gpte_reset_accessed`, `_reset_dirty`,
//!   `vmm_gpt_node_remove`, non-DEBUG): the probe is still on every path,
//!   a few bytes in.
//!
//! [`FRAME_CFLAGS`] (`-pg -mnop-mcount`: a profiling call site after every
//! prologue, assembled as a 5-byte nop) keep every frame and the prologue
//! first, as illumos' gcc does; with them the original breaks no rule but
//! that recursion, DEBUG and non-DEBUG (`tests/kernel_object.rs` checks
//! both, and that the plain build breaks nothing else).

pub mod disasm;
pub mod elf;
pub mod fbt;
pub mod graph;
mod symbols;
pub mod tools;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use disasm::Frame;
use elf::Elf;

/// The 21 exports of `vmm_gpt.o` (also used by build.sh).
pub const EXPORTS_FILE: &str = include_str!("../../exports.txt");
/// The opt-in extension's export (`build.sh --harvest`), on top of the 21.
pub const EXPORTS_HARVEST_FILE: &str = include_str!("../../exports-harvest.txt");
/// What the object may import (also used by build.sh).
pub const IMPORTS_FILE: &str = include_str!("../../imports.txt");

/// The relocation types krtld applies correctly for such an object.
pub const RELOCATIONS: [&str; 5] = [
    "R_X86_64_64",
    "R_X86_64_PC32",
    "R_X86_64_PLT32",
    "R_X86_64_32S",
    "R_X86_64_32",
];

/// The largest stack frame allowed, in bytes.
pub const MAX_FRAME: u64 = 512;

/// The names of a list file: one a line, `#` comments.
pub fn list(file: &str) -> BTreeSet<String> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// What an object must satisfy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Exactly these global definitions.
    pub exports: BTreeSet<String>,
    /// Undefined symbols must be among these.
    pub imports: BTreeSet<String>,
    pub relocations: BTreeSet<String>,
    pub max_frame: u64,
    /// Accept `.c` file symbols (objects compiled from C, which
    /// ctfconvert gives CTF data in an illumos build).
    pub allow_c_file_symbols: bool,
    /// Functions (raw or demangled names) excused from `fbt-entry` and
    /// `fbt-return`: each one an explicit, documented decision.  Empty for
    /// the kernel object: every function of it must have its entry probe at
    /// offset 0 and, if it can return, a return probe on every way out.  (A
    /// function that never returns, such as `vmm_gpt_impl_panic`, needs no
    /// exception: it needs no `ret`.)
    pub fbt_exempt: BTreeSet<String>,
}

impl Policy {
    /// The policy of the vmm-gpt kernel object.
    pub fn kernel_object() -> Policy {
        Policy {
            exports: list(EXPORTS_FILE),
            imports: list(IMPORTS_FILE),
            relocations: RELOCATIONS.iter().map(|s| s.to_string()).collect(),
            max_frame: MAX_FRAME,
            allow_c_file_symbols: false,
            fbt_exempt: BTreeSet::new(),
        }
    }

    /// The policy of the opt-in kernel object (`build.sh --harvest`): the
    /// same rules, and the extension's export beside the 21.
    pub fn kernel_object_harvest() -> Policy {
        let mut p = Policy::kernel_object();
        p.exports.extend(list(EXPORTS_HARVEST_FILE));
        p
    }
}

/// The rule a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    Elf,
    Export,
    Import,
    Relocation,
    FpuSimd,
    Section,
    RustRuntime,
    StackFrame,
    Recursion,
    CtfMerge,
    Retpoline,
    FbtEntry,
    FbtReturn,
    SharedAddress,
    Names,
    StackProtector,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 16] = [
        Rule::Elf,
        Rule::Export,
        Rule::Import,
        Rule::Relocation,
        Rule::FpuSimd,
        Rule::Section,
        Rule::RustRuntime,
        Rule::StackFrame,
        Rule::Recursion,
        Rule::CtfMerge,
        Rule::Retpoline,
        Rule::FbtEntry,
        Rule::FbtReturn,
        Rule::SharedAddress,
        Rule::Names,
        Rule::StackProtector,
    ];

    /// The rule of a name as printed (`fbt-entry`).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.to_string() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Elf => "elf",
            Rule::Export => "export",
            Rule::Import => "import",
            Rule::Relocation => "relocation",
            Rule::FpuSimd => "fpu-simd",
            Rule::Section => "section",
            Rule::RustRuntime => "rust-runtime",
            Rule::StackFrame => "stack-frame",
            Rule::Recursion => "recursion",
            Rule::CtfMerge => "ctfmerge",
            Rule::Retpoline => "retpoline",
            Rule::FbtEntry => "fbt-entry",
            Rule::FbtReturn => "fbt-return",
            Rule::SharedAddress => "shared-address",
            Rule::Names => "names",
            Rule::StackProtector => "stack-protector",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// A function of the object.
#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub demangled: String,
    pub global: bool,
    pub section: String,
    pub start: u64,
    pub size: u64,
    pub frame: Frame,
    /// Functions of the object it calls, jumps to or takes the address of.
    pub callees: BTreeSet<usize>,
    /// Undefined symbols it references.
    pub external: BTreeSet<String>,
}

/// Everything found in one object.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub violations: Vec<Violation>,
    pub functions: Vec<Function>,
    /// Relocations of code and data (allocated sections), by kind.
    pub relocations: BTreeMap<String, usize>,
    /// Relocations of sections not loaded (debug information).
    pub debug_relocations: usize,
    pub text_size: u64,
    pub rodata_size: u64,
    pub data_size: u64,
    pub bss_size: u64,
    pub exports: BTreeSet<String>,
    pub imports: BTreeSet<String>,
    /// Bytes of stack (frames and return addresses) of the deepest chain
    /// of calls inside the object, and the chain.
    pub deepest: (u64, Vec<usize>),
    pub max_frame: u64,
    /// The fbt and retpoline view of every function symbol, by address.
    pub symbols: Vec<FuncSymbol>,
    /// Function symbols sharing an address (each group by name).
    pub shared: Vec<Vec<String>>,
    /// How the object's symbols are named.
    pub names: Names,
}

/// A function symbol as fbt and retpolines see it.
#[derive(Clone, Debug)]
pub struct FuncSymbol {
    /// The raw name, as in `dtrace -l` and mdb.
    pub name: String,
    /// Demangled, without hashes.
    pub demangled: String,
    pub global: bool,
    pub weak: bool,
    pub section: String,
    pub start: u64,
    pub size: u64,
    /// Where the entry probe lands.
    pub entry: fbt::Entry,
    /// How it leaves.
    pub returns: fbt::Returns,
    /// Raw indirect branches in it (offset in the function, instruction).
    pub raw_indirect: Vec<(u64, String)>,
    /// Indirect jumps through a memory operand with an index register
    /// (`jmp *0x0(,%rax,8)`): jump table dispatches.
    pub indexed_jumps: usize,
    /// Calls through `__x86_indirect_thunk_<reg>`.
    pub thunk_calls: usize,
    /// Code addresses inside it stored in data (`.rodata+0x8`, ...): its
    /// jump tables.
    pub table_entries: Vec<String>,
    /// It uses the stack protector (`__stack_chk_guard` or
    /// `__stack_chk_fail`, or a `%gs:0x28`/`%fs:0x28` canary).
    pub stack_protector: bool,
    /// Instructions reading a Linux-style canary (`%gs:0x28`).
    pub tls_canary: Vec<String>,
    /// Excused from the fbt rules by the policy.
    pub exempt: bool,
}

impl FuncSymbol {
    /// Whether it has a jump table.
    pub fn has_jump_table(&self) -> bool {
        !self.table_entries.is_empty() || self.indexed_jumps > 0
    }

    /// fbt gives it an entry probe at offset 0, and every way out of it is
    /// a probed `ret` (or it never returns).
    pub fn fbt_ok(&self) -> bool {
        self.entry == fbt::Entry::Ok
            && !self.weak
            && (!self.returns.can_return
                || (self.returns.probed > 0
                    && self.returns.unprobed.is_empty()
                    && self.returns.tail_jumps.is_empty()))
    }
}

/// The naming schemes of an object's symbols (every symbol but file and
/// section symbols, defined or not).
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Names containing `$`.
    pub dollar: Vec<String>,
    /// Rust names in the legacy mangling (`_ZN...17h<hash>E`).
    pub legacy: Vec<String>,
    /// Rust names in the v0 mangling (`_R...`).
    pub v0: Vec<String>,
    /// Other names (C).
    pub plain: usize,
}

/// A Rust symbol in the legacy mangling: `_ZN`, path segments, and a
/// final `17h<16 hex digits>E` hash segment.
pub fn is_legacy_rust(name: &str) -> bool {
    let n = name.len();
    name.starts_with("_ZN")
        && n > 23
        && name.ends_with('E')
        && &name.as_bytes()[n - 20..n - 17] == b"17h"
        && name.as_bytes()[n - 17..n - 1]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// A Rust symbol in the v0 mangling.
pub fn is_v0_rust(name: &str) -> bool {
    name.starts_with("_R") && name.len() > 2
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// The function with the largest frame.
    pub fn largest_frame(&self) -> Option<&Function> {
        self.functions.iter().max_by_key(|f| f.frame.bytes)
    }
}

const PC_RELATIVE: [&str; 2] = ["R_X86_64_PC32", "R_X86_64_PLT32"];

/// A demangled Rust name without its hash (legacy mangling's
/// `::h0123456789abcdef`) and crate disambiguators (v0's `crate[0123abcd]`).
pub fn clean_name(demangled: &str) -> String {
    let mut s = demangled.to_string();
    if let Some(i) = s.rfind("::h") {
        let hash = &s[i + 3..];
        if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            s.truncate(i);
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|c| open + c);
        match close {
            Some(c) if c > open + 1 && rest[open + 1..c].bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.push_str(&rest[..open]);
                rest = &rest[c + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_rust_runtime(raw: &str, demangled: &str) -> bool {
    const CRATES: [&str; 4] = ["core::", "alloc::", "std::", "compiler_builtins::"];
    let clean = clean_name(demangled);
    let d = clean.trim_start_matches('<');
    CRATES.iter().any(|c| d.starts_with(c))
        || demangled.contains("__rustc::")
        || raw.starts_with("_Unwind_")
        || raw.starts_with("__rust_")
        || raw.starts_with("__gcc_personality")
        || raw.starts_with("__cxa_")
        || raw.contains("rust_eh_personality")
        || raw.contains("rust_begin_unwind")
        || raw.starts_with("__rdl_")
        || raw.starts_with("__rg_")
}

fn relocation_problem(kind: &str) -> &'static str {
    if kind.contains("GOT") && !kind.contains("TPOFF") {
        "krtld has no GOT: it applies GOT-relative relocations as plain PC-relative ones \
         to the symbol, so code using one reads or jumps into garbage (compile without PIC, \
         with the static relocation model; for rustc also -C relro-level=off)"
    } else if kind.contains("TPOFF") || kind.contains("TLS") || kind.contains("DTPMOD") {
        "thread-local storage: krtld rejects TLS relocations"
    } else {
        "not among the relocations krtld applies for this object (64, PC32, PLT32, 32S, 32)"
    }
}

/// Checks an object against a policy.  Errors are failures to read it.
pub fn check(obj: &Path, policy: &Policy) -> Result<Report, String> {
    let elf = Elf::read(obj)?;
    let chunks = disasm::disassemble(obj)?;
    let mut v: Vec<Violation> = Vec::new();
    let mut violation = |rule: Rule, message: String| v.push(Violation { rule, message });

    // ELF header.
    let h = &elf.header;
    if h.class != "ELF64" || !h.kind.starts_with("REL") || !h.machine.contains("X86-64") {
        violation(
            Rule::Elf,
            format!(
                "not an ELF64 x86-64 relocatable object (class {}, type {}, machine {})",
                h.class, h.kind, h.machine
            ),
        );
    }

    // Sections.
    let (mut text_size, mut rodata_size, mut data_size, mut bss_size) = (0, 0, 0, 0);
    for s in &elf.sections {
        let n = s.name.as_str();
        if n == ".eh_frame" || n == ".eh_frame_hdr" || s.kind == "X86_64_UNWIND" {
            violation(
                Rule::Section,
                format!("{n}: unwind tables (the kernel never unwinds; build without them)"),
            );
        } else if n.starts_with(".gcc_except_table") {
            violation(
                Rule::Section,
                format!("{n}: exception handling tables (landing pads: code that can unwind)"),
            );
        } else if s.is_tls() || n.starts_with(".tdata") || n.starts_with(".tbss") {
            violation(
                Rule::Section,
                format!("{n}: thread-local storage, which the kernel does not have"),
            );
        } else if [
            ".init_array",
            ".fini_array",
            ".preinit_array",
            ".ctors",
            ".dtors",
        ]
        .iter()
        .any(|p| n.starts_with(p))
            || n == ".init"
            || n == ".fini"
            || s.kind.contains("INIT_ARRAY")
            || s.kind.contains("FINI_ARRAY")
        {
            violation(
                Rule::Section,
                format!("{n}: constructors/destructors, which krtld never runs"),
            );
        }
        if s.is_alloc() {
            if s.is_exec() {
                text_size += s.size;
            } else if s.kind == "NOBITS" {
                bss_size += s.size;
            } else if s.is_write() {
                data_size += s.size;
            } else {
                rodata_size += s.size;
            }
        }
    }
    for s in &elf.rel_sections {
        violation(
            Rule::Relocation,
            format!("{s}: a REL relocation section (no addends), which krtld rejects"),
        );
    }

    // Symbols.
    let mut exports = BTreeSet::new();
    let mut imports = BTreeSet::new();
    let mut runtime = Vec::new();
    for s in &elf.symbols {
        if s.kind == "FILE" {
            if s.name.ends_with(".c") && !policy.allow_c_file_symbols {
                violation(
                    Rule::CtfMerge,
                    format!(
                        "file symbol {}: ctfmerge requires CTF data of objects built from C",
                        s.name
                    ),
                );
            }
            continue;
        }
        if s.kind == "SECTION" || s.name.is_empty() {
            continue;
        }
        if s.is_undefined() {
            imports.insert(s.name.clone());
        } else if s.is_global() {
            exports.insert(s.name.clone());
        }
        if is_rust_runtime(&s.name, &s.demangled) {
            runtime.push(format!(
                "{} ({}, {})",
                clean_name(&s.demangled),
                s.bind.to_lowercase(),
                if s.is_undefined() {
                    "undefined"
                } else {
                    "defined"
                }
            ));
        }
    }
    for e in exports.difference(&policy.exports) {
        violation(
            Rule::Export,
            format!("global definition {e} is not one of the exports of vmm_gpt.o (make it local)"),
        );
    }
    for e in policy.exports.difference(&exports) {
        violation(
            Rule::Export,
            format!("export {e} is missing (not defined, or not global)"),
        );
    }
    for i in imports.difference(&policy.imports) {
        if i == "_GLOBAL_OFFSET_TABLE_" {
            violation(
                Rule::Relocation,
                format!("{i} is referenced: code that uses a GOT, which krtld does not have"),
            );
        } else {
            violation(
                Rule::Import,
                format!("import {i} is not a kernel service vmm_gpt.o may use"),
            );
        }
    }
    for r in runtime {
        violation(
            Rule::RustRuntime,
            format!("runtime symbol {r}: Rust core/alloc/compiler_builtins or unwinding code in the object"),
        );
    }

    // Relocations.
    let mut relocations: BTreeMap<String, usize> = BTreeMap::new();
    let mut debug_relocations = 0;
    let mut bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &elf.relocs {
        if elf
            .section_by_name(&r.target_section)
            .is_some_and(|s| s.is_alloc())
        {
            *relocations.entry(r.kind.clone()).or_default() += 1;
        } else {
            debug_relocations += 1;
        }
        if !policy.relocations.contains(&r.kind) {
            bad.entry(r.kind.clone()).or_default().push(format!(
                "{} in {} at 0x{:x}",
                if r.symbol.is_empty() { "-" } else { &r.symbol },
                r.target_section,
                r.offset
            ));
        }
    }
    for (kind, uses) in bad {
        let shown: Vec<&str> = uses.iter().take(3).map(String::as_str).collect();
        violation(
            Rule::Relocation,
            format!(
                "{kind} x{} (e.g. {}): {}",
                uses.len(),
                shown.join("; "),
                relocation_problem(&kind)
            ),
        );
    }

    // Functions: the labelled chunks of the executable sections.
    let mut by_section: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut functions: Vec<Function> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let sym = elf.symbols.iter().find(|s| {
            s.name == c.label
                && s.value == c.start
                && s.section()
                    .and_then(|n| elf.section(n))
                    .is_some_and(|sec| sec.name == c.section)
        });
        let end = chunks
            .get(i + 1)
            .filter(|n| n.section == c.section)
            .map(|n| n.start)
            .or_else(|| elf.section_by_name(&c.section).map(|s| s.size))
            .unwrap_or(c.start);
        let frame = disasm::frame(&c.insns);
        let demangled = clean_name(&sym.map_or_else(|| c.label.clone(), |s| s.demangled.clone()));
        let simd: Vec<&disasm::Insn> = c
            .insns
            .iter()
            .filter(|i| disasm::fpu_simd_use(i).is_some())
            .collect();
        if let Some(first) = simd.first() {
            violation(
                Rule::FpuSimd,
                format!(
                    "{demangled}: {} instruction(s) touching FPU/SIMD state, e.g. `{}` at 0x{:x} ({})",
                    simd.len(),
                    first.text,
                    first.offset,
                    disasm::fpu_simd_use(first).unwrap_or("")
                ),
            );
        }
        if frame.bytes > policy.max_frame {
            violation(
                Rule::StackFrame,
                format!(
                    "{demangled}: a {}-byte stack frame, above the {}-byte limit (kernel stacks are a few pages)",
                    frame.bytes, policy.max_frame
                ),
            );
        }
        if let Some(insn) = &frame.dynamic {
            violation(
                Rule::StackFrame,
                format!("{demangled}: a stack allocation of variable size (`{insn}`)"),
            );
        }
        by_section.entry(c.section.as_str()).or_default().push(i);
        functions.push(Function {
            name: c.label.clone(),
            demangled,
            global: sym.is_some_and(|s| s.is_global()),
            section: c.section.clone(),
            start: c.start,
            size: end.saturating_sub(c.start),
            frame,
            callees: BTreeSet::new(),
            external: BTreeSet::new(),
        });
    }

    // The call graph, from the relocations in code.
    let func_at = |section: &str, off: u64| -> Option<usize> {
        by_section.get(section).and_then(|idx| {
            idx.iter()
                .copied()
                .filter(|&i| functions[i].start <= off)
                .max_by_key(|&i| functions[i].start)
        })
    };
    let mut edges: Vec<(usize, Option<usize>, String)> = Vec::new();
    for r in &elf.relocs {
        let Some(from) = func_at(&r.target_section, r.offset) else {
            continue;
        };
        let to = if let Some(sec) = elf
            .section_by_name(&r.symbol)
            .filter(|s| s.is_exec() && !r.symbol.is_empty())
        {
            let bias = if PC_RELATIVE.contains(&r.kind.as_str()) {
                4
            } else {
                0
            };
            func_at(&sec.name, (r.addend + bias).max(0) as u64)
        } else if let Some(s) = elf
            .symbols
            .iter()
            .find(|s| s.name == r.symbol && !s.is_undefined() && s.kind != "SECTION")
        {
            s.section()
                .and_then(|n| elf.section(n))
                .filter(|sec| sec.is_exec())
                .and_then(|sec| func_at(&sec.name, s.value))
        } else {
            None
        };
        edges.push((from, to, r.symbol.clone()));
    }
    // Direct calls and jumps that the assembler resolved (to a function in
    // the same section: no relocation).
    let mut reloc_at: HashMap<&str, BTreeSet<u64>> = HashMap::new();
    for r in &elf.relocs {
        reloc_at
            .entry(r.target_section.as_str())
            .or_default()
            .insert(r.offset);
    }
    for (ci, c) in chunks.iter().enumerate() {
        for (k, insn) in c.insns.iter().enumerate() {
            let m = insn.mnemonic.as_str();
            if !(m.starts_with('j') || m.starts_with("call")) {
                continue;
            }
            let end = c
                .insns
                .get(k + 1)
                .map_or(functions[ci].start + functions[ci].size, |n| n.offset);
            let relocated = reloc_at
                .get(c.section.as_str())
                .is_some_and(|set| set.range(insn.offset..end).next().is_some());
            let target = insn
                .operands
                .split_once(" <")
                .and_then(|(a, _)| u64::from_str_radix(a.trim(), 16).ok());
            let (false, Some(target)) = (relocated, target) else {
                continue;
            };
            let Some(t) = func_at(&c.section, target) else {
                continue;
            };
            let is_call = m.starts_with("call");
            if t != ci || (is_call && target == functions[ci].start) {
                edges.push((ci, Some(t), String::new()));
            }
        }
    }
    for (from, to, sym) in edges {
        match to {
            Some(t) => {
                functions[from].callees.insert(t);
            }
            None if imports.contains(&sym) => {
                functions[from].external.insert(sym);
            }
            None => {}
        }
    }
    let mut g = graph::Graph::new(functions.len());
    for (i, f) in functions.iter().enumerate() {
        g.edges[i] = f.callees.clone();
    }
    for cycle in g.cycles() {
        let mut names: Vec<&str> = cycle
            .iter()
            .map(|&i| functions[i].demangled.as_str())
            .collect();
        names.sort_unstable();
        let what = match names.as_slice() {
            [one] => format!("{one} calls itself"),
            many => format!("{} call each other", many.join(", ")),
        };
        violation(
            Rule::Recursion,
            format!("{what}: stack use is unbounded (kernel stacks are a few pages)"),
        );
    }
    let cost: Vec<u64> = functions.iter().map(|f| f.frame.bytes + 8).collect();
    let deepest = g.deepest_chain(&cost);

    // Function symbols: retpolines, fbt, shared addresses, names, the
    // stack protector.
    let (symbols, shared, names, more) = symbols::analyse(&elf, &chunks, policy);
    v.extend(more);

    Ok(Report {
        path: obj.to_path_buf(),
        violations: v,
        functions,
        relocations,
        debug_relocations,
        text_size,
        rodata_size,
        data_size,
        bss_size,
        exports,
        imports,
        deepest,
        max_frame: policy.max_frame,
        symbols,
        shared,
        names,
    })
}

fn short(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let keep: String = name.chars().take(width - 3).collect();
        format!("{keep}...")
    }
}

impl Report {
    /// Sizes, relocation kinds, imports, the largest frame, the deepest
    /// chain.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}:", self.path.display());
        let _ = writeln!(
            s,
            "  text {} B, rodata {} B, data {} B, bss {} B; {} functions, {} global definitions",
            self.text_size,
            self.rodata_size,
            self.data_size,
            self.bss_size,
            self.functions.len(),
            self.exports.len()
        );
        let kinds: Vec<String> = self
            .relocations
            .iter()
            .map(|(k, n)| format!("{} x{n}", k.trim_start_matches("R_X86_64_")))
            .collect();
        let _ = write!(s, "  relocations: {}", kinds.join(", "));
        if self.debug_relocations > 0 {
            let _ = write!(s, " (and {} in debug information)", self.debug_relocations);
        }
        s.push('\n');
        let imports: Vec<&str> = self.imports.iter().map(String::as_str).collect();
        let _ = writeln!(s, "  imports ({}): {}", imports.len(), imports.join(" "));
        if let Some(f) = self.largest_frame() {
            let _ = writeln!(
                s,
                "  largest frame: {} B in {} (limit {} B)",
                f.frame.bytes, f.demangled, self.max_frame
            );
        }
        let chain: Vec<&str> = self
            .deepest
            .1
            .iter()
            .map(|&i| self.functions[i].demangled.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  deepest chain inside the object: {} B ({})",
            self.deepest.0,
            chain.join(" -> ")
        );
        s
    }

    /// One row per function, largest frame first.
    pub fn frame_table(&self) -> String {
        let mut rows: Vec<&Function> = self.functions.iter().collect();
        rows.sort_by(|a, b| {
            b.frame
                .bytes
                .cmp(&a.frame.bytes)
                .then(a.demangled.cmp(&b.demangled))
        });
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  {:>5} {:>6} {:>5} {:>6}  function",
            "frame", "pushed", "sub", "size"
        );
        for f in rows {
            let _ = writeln!(
                s,
                "  {:>5} {:>6} {:>5} {:>6}  {}{}",
                f.frame.bytes,
                f.frame.pushed,
                f.frame.largest_sub,
                f.size,
                short(&f.demangled, 90),
                if f.global { " (global)" } else { "" }
            );
        }
        s
    }

    /// Who calls whom (inside the object, then [kernel services]).
    pub fn call_graph(&self) -> String {
        let mut s = String::new();
        let mut order: Vec<usize> = (0..self.functions.len()).collect();
        order.sort_by(|&a, &b| {
            self.functions[a]
                .demangled
                .cmp(&self.functions[b].demangled)
        });
        for i in order {
            let f = &self.functions[i];
            let mut to: Vec<String> = f
                .callees
                .iter()
                .map(|&c| short(&self.functions[c].demangled, 60))
                .collect();
            to.sort();
            let ext: Vec<&str> = f.external.iter().map(String::as_str).collect();
            let mut line = to.join(", ");
            if !ext.is_empty() {
                if !line.is_empty() {
                    line.push(' ');
                }
                let _ = write!(line, "[{}]", ext.join(", "));
            }
            let _ = writeln!(s, "  {} -> {}", short(&f.demangled, 60), line);
        }
        s
    }

    /// Raw indirect calls and jumps (`call *`, `jmp *`).
    pub fn raw_indirect(&self) -> usize {
        self.symbols.iter().map(|f| f.raw_indirect.len()).sum()
    }

    /// Calls through `__x86_indirect_thunk_<reg>`.
    pub fn thunk_calls(&self) -> usize {
        self.symbols.iter().map(|f| f.thunk_calls).sum()
    }

    /// Functions with a jump table.
    pub fn jump_tables(&self) -> usize {
        self.symbols.iter().filter(|f| f.has_jump_table()).count()
    }

    /// Tail jumps out of functions: (sites, functions).
    pub fn tail_calls(&self) -> (usize, usize) {
        let with: Vec<usize> = self
            .symbols
            .iter()
            .map(|f| f.returns.tail_jumps.len())
            .filter(|&n| n > 0)
            .collect();
        (with.iter().sum(), with.len())
    }

    /// Functions using the stack protector.
    pub fn stack_protected(&self) -> usize {
        self.symbols.iter().filter(|f| f.stack_protector).count()
    }

    /// Where the entry probes are, in words: "yes (all 30)" or "no in 6
    /// of 39: 6 after a branch".
    pub fn entry_summary(&self) -> String {
        let n = self.symbols.len();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.symbols {
            let k = match &f.entry {
                _ if f.weak => "weak",
                fbt::Entry::Ok => continue,
                fbt::Entry::Empty => "size 0",
                fbt::Entry::NoPush => "no push",
                fbt::Entry::Late {
                    after_branch: true, ..
                } => "after a branch",
                fbt::Entry::Late { .. } => "scheduled late",
                fbt::Entry::Unlinked { .. } => "no mov",
            };
            *kinds.entry(k).or_default() += 1;
        }
        let bad: usize = kinds.values().sum();
        if bad == 0 {
            return format!("yes (all {n})");
        }
        let parts: Vec<String> = kinds.iter().map(|(k, c)| format!("{c} {k}")).collect();
        format!("no in {bad} of {n}: {}", parts.join(", "))
    }

    /// The naming schemes, in words.
    pub fn names_summary(&self) -> String {
        let n = &self.names;
        let mut parts = Vec::new();
        if !n.legacy.is_empty() {
            parts.push(format!("legacy {}", n.legacy.len()));
        }
        if !n.v0.is_empty() {
            parts.push(format!("v0 {}", n.v0.len()));
        }
        if !n.dollar.is_empty() {
            parts.push(format!("{} with $", n.dollar.len()));
        }
        if parts.is_empty() {
            "C".into()
        } else {
            parts.join(", ")
        }
    }

    /// One row per function symbol, by address: where fbt's probes go.
    pub fn fbt_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  {:>6} {:>15} {:>4} {:>4} {:>4} {:>5} {:>3}  function",
            "addr", "entry", "rets", "tail", "ind", "thunk", "ssp"
        );
        for f in &self.symbols {
            let entry = match &f.entry {
                _ if f.weak => "weak".to_string(),
                fbt::Entry::Ok => "ok".to_string(),
                fbt::Entry::Empty => "size 0".to_string(),
                fbt::Entry::NoPush => "no push".to_string(),
                fbt::Entry::Late {
                    offset,
                    after_branch,
                    ..
                } => format!(
                    "push at +0x{offset:x}{}",
                    if *after_branch { "!" } else { "" }
                ),
                fbt::Entry::Unlinked { .. } => "no mov".to_string(),
            };
            let rets = if f.returns.can_return {
                f.returns.probed.to_string()
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                s,
                "  {:>6x} {:>15} {:>4} {:>4} {:>4} {:>5} {:>3}  {}{}{}",
                f.start,
                entry,
                rets,
                f.returns.tail_jumps.len(),
                f.raw_indirect.len(),
                f.thunk_calls,
                if f.stack_protector { "yes" } else { "" },
                short(&f.demangled, 80),
                if f.global { " (global)" } else { "" },
                if f.exempt { " (exempt)" } else { "" }
            );
        }
        s
    }

    /// The rules broken, with how often: "retpoline x4, names x5".
    pub fn rules_broken(&self) -> String {
        let mut by: BTreeMap<Rule, usize> = BTreeMap::new();
        for v in &self.violations {
            *by.entry(v.rule).or_default() += 1;
        }
        if by.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = by.iter().map(|(r, n)| format!("{r} x{n}")).collect();
        parts.join(", ")
    }

    /// Everything: [`Report::details`], then the violations.
    pub fn full(&self) -> String {
        let mut s = self.details();
        s.push('\n');
        if self.violations.is_empty() {
            s.push_str("  no violations\n");
        } else {
            let _ = writeln!(s, "  {} violation(s):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "    {v}");
            }
        }
        s
    }

    /// The measurements: summary, frames, call graph, fbt view.
    pub fn details(&self) -> String {
        let mut s = self.summary();
        s.push_str("\n  stack frames (bytes below the return address):\n");
        s.push_str(&self.frame_table());
        s.push_str("\n  call graph (inside the object, then [imports]):\n");
        s.push_str(&self.call_graph());
        s.push_str(
            "\n  function symbols as fbt sees them (entry: where `push %rbp` is, ! after a \
             branch; rets: probed `ret`s, - never returns; tail: jumps out; ind: raw indirect \
             branches; thunk: calls through __x86_indirect_thunk; ssp: stack protector):\n",
        );
        s.push_str(&self.fbt_table());
        s
    }
}

/// A side-by-side table of some objects' measurements.
pub fn compare(columns: &[(&str, &Report)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((
            name.to_string(),
            columns.iter().map(|(_, r)| f(r)).collect(),
        ));
    };
    row("text bytes", &|r| r.text_size.to_string());
    row("rodata bytes", &|r| r.rodata_size.to_string());
    row("data+bss bytes", &|r| {
        (r.data_size + r.bss_size).to_string()
    });
    row("functions", &|r| r.functions.len().to_string());
    row(
        "raw indirect call/jmp",
        &|r| match (r.raw_indirect(), r.thunk_calls()) {
            (n, 0) => n.to_string(),
            (n, t) => format!("{n} ({t} thunk calls)"),
        },
    );
    row("jump tables", &|r| r.jump_tables().to_string());
    row("tail calls", &|r| match r.tail_calls() {
        (0, _) => "0".into(),
        (n, f) => format!("{n} in {f} functions"),
    });
    row("prologue at offset 0", &|r| r.entry_summary());
    row("shared addresses", &|r| match r.shared.len() {
        0 => "none".into(),
        n => n.to_string(),
    });
    row("names", &|r| r.names_summary());
    row("stack protector", &|r| match r.stack_protected() {
        0 => "none".into(),
        n => format!("{n} functions"),
    });
    row("largest frame", &|r| {
        r.largest_frame()
            .map_or("-".into(), |f| format!("{} B", f.frame.bytes))
    });
    row("  in", &|r| {
        r.largest_frame()
            .map_or("-".into(), |f| short(&f.demangled, 28))
    });
    row("deepest chain", &|r| format!("{} B", r.deepest.0));
    row("imports", &|r| r.imports.len().to_string());
    let kinds: BTreeSet<&String> = columns
        .iter()
        .flat_map(|(_, r)| r.relocations.keys())
        .collect();
    for k in kinds {
        row(
            &format!("reloc {}", k.trim_start_matches("R_X86_64_")),
            &|r| r.relocations.get(k).copied().unwrap_or(0).to_string(),
        );
    }
    row("violations", &|r| r.violations.len().to_string());

    let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            rows.iter()
                .map(|(_, c)| c[i].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    let _ = write!(s, "  {:w0$}", "");
    for ((h, _), w) in columns.iter().zip(&widths) {
        let _ = write!(s, "  {h:>w$}");
    }
    s.push('\n');
    for (name, cells) in rows {
        let _ = write!(s, "  {name:w0$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(s, "  {c:>w$}");
        }
        s.push('\n');
    }
    s.push_str("  rules broken:\n");
    for (h, r) in columns {
        let _ = writeln!(s, "    {h}: {}", r.rules_broken());
    }
    s
}

/// The flags illumos-gate gives gcc for an amd64 kernel module
/// (`Makefile.master`, `uts/Makefile.uts`, `uts/intel/Makefile.intel`
/// through `cw`; see docs/kernel-object.md), and `-fno-omit-frame-pointer` for
/// illumos' gcc, which never omits the frame pointer.  [`kernel_cflags`]
/// leaves out those the compiler here rejects: `-msave-args` exists only in
/// illumos' gcc, `-fno-clone-functions` not in gcc 12.
pub const ILLUMOS_CFLAGS: &[&str] = &[
    // -xmodel=kernel (amd64_STAND_FLAGS)
    "-ffreestanding",
    "-mcmodel=kernel",
    "-mno-red-zone",
    // NO_SIMD
    "-mno-mmx",
    "-mno-sse",
    // SAVEARGS
    "-msave-args",
    // -xO3 through cw
    "-O2",
    "-fno-strict-aliasing",
    "-fno-unit-at-a-time",
    "-fno-optimize-sibling-calls",
    // CFLAGS_uts
    "-fno-shrink-wrap",
    "-mindirect-branch=thunk-extern",
    "-mindirect-branch-register",
    "-fno-asynchronous-unwind-tables",
    // STACKPROTECT
    "-fstack-protector-strong",
    // CCNOAUTOINLINE, CCNOREORDER
    "-fno-inline-small-functions",
    "-fno-inline-functions-called-once",
    "-fno-ipa-cp",
    "-fno-ipa-icf",
    "-fno-clone-functions",
    "-fno-reorder-functions",
    "-fno-reorder-blocks-and-partition",
    // CTF_FLAGS
    "-g",
    "-gdwarf-4",
    "-gstrict-dwarf",
    // illumos' gcc never omits the frame pointer
    "-fno-omit-frame-pointer",
];

/// What a Linux gcc needs beyond [`ILLUMOS_CFLAGS`] to generate code as
/// illumos' gcc does: no position-independent code (Debian's gcc defaults
/// to PIE, which the kernel code model refuses), no CET `endbr64` before
/// the prologue (Ubuntu's default `-fcf-protection`), and the stack
/// protector's canary in the global `__stack_chk_guard` (illumos' gcc's
/// default; a Linux gcc reads it from `%gs:0x28` with the kernel code
/// model).  And `-Wall`.
pub const HOST_CFLAGS: &[&str] = &[
    "-fno-pic",
    "-fcf-protection=none",
    "-mstack-protector-guard=global",
    "-Wall",
];

/// Upstream gcc drops the frame of a leaf function that does not touch the
/// stack, even with `-fno-omit-frame-pointer`, and may schedule a load
/// above `push %rbp`; illumos' gcc keeps every frame (its patches
/// "Disable -fomit-frame-pointer" and `-msave-args`).  `-pg -mnop-mcount`
/// is the stand-in here: a profiling call site after every prologue, which
/// needs the frame and pins the prologue first, assembled as a 5-byte nop
/// (no `mcount` import).  Not with `-fPIC` (gcc: not implemented).
pub const FRAME_CFLAGS: &[&str] = &["-pg", "-mnop-mcount"];

/// The kernel flags as this compiler takes them.
#[derive(Clone, Debug)]
pub struct CFlags {
    /// The compiler (`$CC`, else `gcc`).
    pub cc: String,
    /// Its `--version` line.
    pub version: String,
    /// [`ILLUMOS_CFLAGS`] it accepts, then [`HOST_CFLAGS`].
    pub accepted: Vec<String>,
    /// [`ILLUMOS_CFLAGS`] it rejects (left out).
    pub rejected: Vec<String>,
}

/// Probes, once per process, which of [`ILLUMOS_CFLAGS`] and
/// [`HOST_CFLAGS`] the compiler (`$CC`, else `gcc`) accepts: each is tried
/// alone (with `-fno-pic -Werror`) on an empty translation unit.
pub fn kernel_cflags() -> &'static CFlags {
    static FLAGS: std::sync::OnceLock<CFlags> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        let cc = std::env::var("CC")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "gcc".into());
        let accepts = |flag: &str| {
            Command::new(&cc)
                .args(["-fno-pic", "-Werror", flag, "-c", "-x", "c"])
                .args(["-o", "/dev/null", "/dev/null"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let version = Command::new(&cc)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("{cc} (version unknown)"));
        let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
        for f in ILLUMOS_CFLAGS.iter().chain(HOST_CFLAGS) {
            if accepts(f) {
                accepted.push(f.to_string());
            } else {
                rejected.push(f.to_string());
            }
        }
        CFlags {
            cc,
            version,
            accepted,
            rejected,
        }
    })
}

/// Where an illumos-gate checkout has the original.
pub const ORIGINAL: &str = "usr/src/uts/intel/io/vmm/vmm_gpt.c";

/// Compiles the original `vmm_gpt.c` of an illumos-gate checkout as kernel
/// code, with [`kernel_cflags`] and then `extra` (e.g. [`FRAME_CFLAGS`]),
/// with `-DDEBUG` for a DEBUG kernel's object, against the given include
/// directories (the project's headers and the kernel stand-ins).  Returns
/// the command line.
pub fn compile_original(
    gate: &Path,
    includes: &[PathBuf],
    debug: bool,
    extra: &[&str],
    out: &Path,
) -> Result<String, String> {
    let src = gate.join(ORIGINAL);
    if !src.is_file() {
        return Err(format!("the original is not at {}", src.display()));
    }
    let flags = kernel_cflags();
    let mut cmd = Command::new(&flags.cc);
    cmd.args(&flags.accepted).args(extra);
    if debug {
        cmd.arg("-DDEBUG");
    }
    for i in includes {
        cmd.arg("-I").arg(i);
    }
    cmd.arg("-c").arg(&src).arg("-o").arg(out);
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", flags.cc))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let words: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_the_21_exports_and_the_kernel_services() {
        let e = list(EXPORTS_FILE);
        assert_eq!(e.len(), 21);
        let h = list(EXPORTS_HARVEST_FILE);
        assert_eq!(h, BTreeSet::from(["vmm_gpt_harvest_dirty".to_string()]));
        assert_eq!(Policy::kernel_object_harvest().exports.len(), 22);
        assert!(e.contains("vmm_gpt_init") && e.contains("vmm_pte_uninit_impl"));
        let i = list(IMPORTS_FILE);
        for s in [
            "kmem_zalloc",
            "panic",
            "vmm_gpti_parse",
            "memset",
            "assfail3",
            "__x86_indirect_thunk_rax",
            "__x86_indirect_thunk_r11",
            "__stack_chk_guard",
            "__stack_chk_fail",
        ] {
            assert!(i.contains(s), "{s}");
        }
        // illumos' retpoline.S has a thunk for every register but %rsp.
        assert_eq!(
            i.iter()
                .filter(|n| n.starts_with("__x86_indirect_thunk_"))
                .count(),
            15
        );
        assert!(!i.contains("__x86_indirect_thunk_rsp"));
    }

    #[test]
    fn mangling_schemes() {
        assert!(is_legacy_rust("_ZN7vmm_gpt4walk4walk17h3967f90998452924E"));
        assert!(is_legacy_rust(
            "_ZN62_$LT$vmm_gpt..node..L2Dir$u20$as$u20$vmm_gpt..node..NewDir$GT$4free17h8ad3e148c63b4bc5E"
        ));
        // C++ and C names are not Rust's legacy mangling.
        assert!(!is_legacy_rust("_ZN3foo3barEv"));
        assert!(!is_legacy_rust("_ZN3foo3barE"));
        assert!(!is_legacy_rust("vmm_gpt_walk"));
        assert!(!is_legacy_rust("_ZN7vmm_gpt4walk4walk17hxyz7f90998452924E"));
        assert!(is_v0_rust("_RNvNtCsgEmfK2I1SDS_7vmm_gpt4walk4walk"));
        assert!(!is_v0_rust("_R") && !is_v0_rust("vmm_gpt_walk"));
    }

    #[test]
    fn rule_names_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(&r.to_string()), Some(r));
        }
        assert_eq!(Rule::from_name("fbt-entry"), Some(Rule::FbtEntry));
        assert_eq!(Rule::from_name("nope"), None);
    }

    #[test]
    fn rust_runtime_names() {
        assert!(is_rust_runtime(
            "_ZN4core9panicking5panic17h0E",
            "core::panicking::panic"
        ));
        assert!(is_rust_runtime(
            "x",
            "<core::fmt::Arguments as core::fmt::Display>::fmt"
        ));
        assert!(is_rust_runtime("_Unwind_Resume", "_Unwind_Resume"));
        assert!(is_rust_runtime(
            "rust_eh_personality",
            "rust_eh_personality"
        ));
        assert!(!is_rust_runtime(
            "x",
            "<vmm_gpt::node::L2Dir as core::ops::Drop>::drop"
        ));
        assert!(!is_rust_runtime("x", "vmm_gpt::walk::walk"));
        assert!(is_rust_runtime(
            "_RNvNtCsgEmfK2I1SDS_4core9panicking30panic_null_pointer_dereference",
            "core[5ab0a1c7e3e1c9f2]::panicking::panic_null_pointer_dereference"
        ));
    }

    #[test]
    fn clean_names() {
        assert_eq!(
            clean_name("vmm_gpt::walk::walk::h6c191338674eb1b6"),
            "vmm_gpt::walk::walk"
        );
        assert_eq!(
            clean_name("<vmm_gpt[bc07420711b87fc8]::node::Gpt>::free"),
            "<vmm_gpt::node::Gpt>::free"
        );
        assert_eq!(clean_name("a[i]::b[]"), "a[i]::b[]");
    }
}
