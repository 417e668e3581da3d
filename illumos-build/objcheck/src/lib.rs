//! # objcheck: what the vmm-gpt kernel object contains
//!
//! Inspects a relocatable x86-64 object (`target/kernel/vmm_gpt.o`, made by
//! `illumos-build/build.sh`) with GNU binutils and reports every property
//! that decides whether the illumos kernel can link and run it
//! (`../shared/docs/kernel-object.md`):
//!
//! | rule | fails on |
//! | --- | --- |
//! | `elf` | not an ELF64 x86-64 relocatable object |
//! | `export` | a global definition other than the 21 of `vmm_gpt.o`, or one of them missing |
//! | `import` | an undefined symbol outside the kernel services (and `memcpy`, `memmove`, `memset`, `memcmp`) |
//! | `relocation` | a relocation other than `R_X86_64_64`, `PC32`, `PLT32`, `32S`, `32` (krtld has no GOT and rejects TLS); a REL section |
//! | `fpu-simd` | an instruction using `%mm`, `%xmm`, `%ymm`, `%zmm`, `%k`, x87 registers or instructions |
//! | `section` | `.eh_frame`, `.gcc_except_table`, TLS or constructor sections |
//! | `rust-runtime` | a symbol of `core`, `alloc`, `std`, `compiler_builtins` or unwinding, local ones too |
//! | `stack-frame` | a function's frame above the limit (512 bytes), or of variable size |
//! | `recursion` | a cycle in the call graph |
//! | `ctfmerge` | a `.c` file symbol without CTF data, which `ctfmerge` refuses |
//!
//! The report also has the measurements: sizes, relocation kinds, a
//! per-function table of frame sizes (pushes plus `sub $N,%rsp`, from the
//! instructions), the call graph from the relocations, and the deepest chain
//! of frames inside the object.

pub mod disasm;
pub mod elf;
pub mod graph;
pub mod tools;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use disasm::Frame;
use elf::Elf;

/// The 21 exports of `vmm_gpt.o` (also used by build.sh).
pub const EXPORTS_FILE: &str = include_str!("../../exports.txt");
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
        }
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
    pub relocations: BTreeMap<String, usize>,
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
    let mut bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &elf.relocs {
        *relocations.entry(r.kind.clone()).or_default() += 1;
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

    Ok(Report {
        path: obj.to_path_buf(),
        violations: v,
        functions,
        relocations,
        text_size,
        rodata_size,
        data_size,
        bss_size,
        exports,
        imports,
        deepest,
        max_frame: policy.max_frame,
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
        let _ = writeln!(s, "  relocations: {}", kinds.join(", "));
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

    /// Everything: summary, frames, call graph, violations.
    pub fn full(&self) -> String {
        let mut s = self.summary();
        s.push_str("\n  stack frames (bytes below the return address):\n");
        s.push_str(&self.frame_table());
        s.push_str("\n  call graph (inside the object, then [imports]):\n");
        s.push_str(&self.call_graph());
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
    s
}

/// The flags of illumos' kernel C (Makefile.master and cw: `-xmodel=kernel`
/// and friends), for gcc on this host: `-fno-pic` because Debian's gcc
/// makes position-independent code by default and the kernel code model
/// does not allow it (illumos' gcc does not default to it).
pub const KERNEL_CFLAGS: &[&str] = &[
    "-O2",
    "-ffreestanding",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-fno-asynchronous-unwind-tables",
    "-fno-pic",
    "-Wall",
];

/// Where an illumos-gate checkout has the original.
pub const ORIGINAL: &str = "usr/src/uts/intel/io/vmm/vmm_gpt.c";

/// Compiles the original `vmm_gpt.c` of an illumos-gate checkout as kernel
/// code (with `-DDEBUG` for a DEBUG kernel's object) against the given
/// include directories (the project's headers and the kernel stand-ins).
pub fn compile_original(
    gate: &Path,
    includes: &[PathBuf],
    debug: bool,
    out: &Path,
) -> Result<(), String> {
    let src = gate.join(ORIGINAL);
    if !src.is_file() {
        return Err(format!("the original is not at {}", src.display()));
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let mut cmd = Command::new(&cc);
    cmd.args(KERNEL_CFLAGS);
    if debug {
        cmd.arg("-DDEBUG");
    }
    for i in includes {
        cmd.arg("-I").arg(i);
    }
    cmd.arg("-c").arg(&src).arg("-o").arg(out);
    let o = cmd.output().map_err(|e| format!("cannot run {cc}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_the_21_exports_and_the_kernel_services() {
        let e = list(EXPORTS_FILE);
        assert_eq!(e.len(), 21);
        assert!(e.contains("vmm_gpt_init") && e.contains("vmm_pte_uninit_impl"));
        let i = list(IMPORTS_FILE);
        for s in [
            "kmem_zalloc",
            "panic",
            "vmm_gpti_parse",
            "memset",
            "assfail3",
        ] {
            assert!(i.contains(s), "{s}");
        }
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
