//! The rules about function symbols: `retpoline`, `fbt-entry`,
//! `fbt-return`, `shared-address`, `names`, `stack-protector`.
//!
//! Functions here are the object's `STT_FUNC` symbols with their
//! `st_value`/`st_size` (what fbt walks), not objdump's labels: objdump
//! prints one label per address, so a second symbol at the same address
//! would be invisible.

use std::collections::{BTreeMap, HashMap};

use crate::disasm::{Chunk, Insn};
use crate::elf::{Elf, Reloc, Symbol};
use crate::fbt::{self, Entry, Target};
use crate::{clean_name, is_legacy_rust, is_v0_rust, FuncSymbol, Names, Policy, Rule, Violation};

const THUNK: &str = "__x86_indirect_thunk_";

/// PC-relative relocations: the target is `S + A + 4` for a rel32 field at
/// the end of its instruction.
fn pc_relative(kind: &str) -> bool {
    matches!(kind, "R_X86_64_PC32" | "R_X86_64_PLT32")
}

/// The code of an object, by section, and what refers to it.
struct Code<'a> {
    elf: &'a Elf,
    /// Instructions of each executable section, by address.
    insns: HashMap<&'a str, Vec<&'a Insn>>,
    /// Relocations applying to each section, by offset.
    relocs: HashMap<&'a str, Vec<&'a Reloc>>,
    /// Function symbols of each section, by address.
    funcs: HashMap<&'a str, Vec<&'a Symbol>>,
}

impl<'a> Code<'a> {
    fn new(elf: &'a Elf, chunks: &'a [Chunk]) -> Code<'a> {
        let mut insns: HashMap<&str, Vec<&Insn>> = HashMap::new();
        for c in chunks {
            insns
                .entry(c.section.as_str())
                .or_default()
                .extend(c.insns.iter());
        }
        for v in insns.values_mut() {
            v.sort_by_key(|i| i.offset);
            v.dedup_by_key(|i| i.offset);
        }
        let mut relocs: HashMap<&str, Vec<&Reloc>> = HashMap::new();
        for r in &elf.relocs {
            relocs.entry(r.target_section.as_str()).or_default().push(r);
        }
        for v in relocs.values_mut() {
            v.sort_by_key(|r| r.offset);
        }
        let mut funcs: HashMap<&str, Vec<&Symbol>> = HashMap::new();
        for s in elf.symbols.iter().filter(|s| s.kind == "FUNC") {
            if let Some(sec) = s.section().and_then(|n| elf.section(n)) {
                funcs.entry(sec.name.as_str()).or_default().push(s);
            }
        }
        for v in funcs.values_mut() {
            v.sort_by_key(|s| (s.value, s.is_global()));
        }
        Code {
            elf,
            insns,
            relocs,
            funcs,
        }
    }

    fn section_of(&self, s: &Symbol) -> Option<&'a str> {
        s.section()
            .and_then(|n| self.elf.section(n))
            .map(|sec| sec.name.as_str())
    }

    /// The instructions in `[from, to)` of a section.
    fn range(&self, section: &str, from: u64, to: u64) -> Vec<Insn> {
        let Some(all) = self.insns.get(section) else {
            return Vec::new();
        };
        let a = all.partition_point(|i| i.offset < from);
        let b = all.partition_point(|i| i.offset < to);
        all[a..b].iter().map(|i| (*i).clone()).collect()
    }

    /// The relocations applying to `[from, to)` of a section.
    fn relocs_in(&self, section: &str, from: u64, to: u64) -> &[&'a Reloc] {
        let Some(all) = self.relocs.get(section) else {
            return &[];
        };
        let a = all.partition_point(|r| r.offset < from);
        let b = all.partition_point(|r| r.offset < to);
        &all[a..b]
    }

    /// The end of a function symbol: `st_value + st_size`, or for a
    /// symbol without a size the next function or the end of the section.
    fn end(&self, section: &str, s: &Symbol) -> u64 {
        if s.size > 0 {
            return s.value + s.size;
        }
        self.funcs
            .get(section)
            .and_then(|v| v.iter().map(|f| f.value).find(|&a| a > s.value))
            .or_else(|| self.elf.section_by_name(section).map(|sec| sec.size))
            .unwrap_or(s.value)
    }

    /// The function symbol whose body holds an address (the global one if
    /// several start there).
    fn func_at(&self, section: &str, addr: u64) -> Option<&'a Symbol> {
        self.funcs.get(section).and_then(|v| {
            v.iter()
                .rev()
                .find(|f| f.value <= addr && addr < self.end(section, f).max(f.value + 1))
                .copied()
        })
    }

    /// A readable name for an address in a section.
    fn describe(&self, section: &str, addr: u64) -> String {
        match self.func_at(section, addr) {
            Some(f) if f.value == addr => clean_name(&f.demangled),
            Some(f) => format!("{}+0x{:x}", clean_name(&f.demangled), addr - f.value),
            None => format!("{section}+0x{addr:x}"),
        }
    }

    /// Where a relocation points: (section, address), or None for an
    /// undefined symbol.
    fn reloc_target(&self, r: &Reloc, bias: i64) -> Option<(&'a str, u64)> {
        if let Some(sec) = self.elf.section_by_name(&r.symbol) {
            return Some((sec.name.as_str(), (r.addend + bias).max(0) as u64));
        }
        let s = self
            .elf
            .symbols
            .iter()
            .find(|s| s.name == r.symbol && !s.is_undefined() && s.kind != "SECTION")?;
        let sec = self.section_of(s)?;
        Some((sec, (s.value as i64 + r.addend + bias).max(0) as u64))
    }
}

/// Analyses every function symbol; returns them with the violations of
/// the symbol rules, the groups of symbols sharing an address, and the
/// naming schemes.
pub(crate) fn analyse(
    elf: &Elf,
    chunks: &[Chunk],
    policy: &Policy,
) -> (Vec<FuncSymbol>, Vec<Vec<String>>, Names, Vec<Violation>) {
    let code = Code::new(elf, chunks);
    let mut v = Vec::new();
    let mut violation = |rule: Rule, message: String| v.push(Violation { rule, message });

    // Jump tables: code addresses inside a function (not its start) stored
    // in allocated data.  Function pointers (to a start) are fine.
    let mut tables: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    for r in &elf.relocs {
        let Some(in_sec) = elf.section_by_name(&r.target_section) else {
            continue;
        };
        // Unwind and exception tables hold code addresses too; the
        // `section` rule rejects them.
        if !in_sec.is_alloc()
            || in_sec.is_exec()
            || in_sec.name.starts_with(".eh_frame")
            || in_sec.name.starts_with(".gcc_except_table")
            || in_sec.kind == "X86_64_UNWIND"
        {
            continue;
        }
        let Some((sec, addr)) = code.reloc_target(r, 0) else {
            continue;
        };
        if !elf.section_by_name(sec).is_some_and(|s| s.is_exec()) {
            continue;
        }
        let Some(f) = code.func_at(sec, addr) else {
            continue;
        };
        // A PC-relative entry (`.long .LBB - .LJTI`) is a table even when
        // its addend happens to land on a start.
        if f.value != addr || pc_relative(&r.kind) {
            tables
                .entry((sec.to_string(), f.value))
                .or_default()
                .push(format!("{}+0x{:x}", r.target_section, r.offset));
        }
    }

    let mut symbols: Vec<FuncSymbol> = Vec::new();
    for s in elf.symbols.iter().filter(|s| s.kind == "FUNC") {
        let Some(section) = code.section_of(s) else {
            continue;
        };
        let start = s.value;
        let end = code.end(section, s);
        let insns = code.range(section, start, if s.size > 0 { end } else { start });
        let demangled = clean_name(&s.demangled);
        let table_entries = tables
            .get(&(section.to_string(), start))
            .cloned()
            .unwrap_or_default();
        let mut f = FuncSymbol {
            name: s.name.clone(),
            demangled: demangled.clone(),
            global: s.is_global(),
            weak: s.bind == "WEAK",
            section: section.to_string(),
            start,
            size: s.size,
            entry: fbt::entry(&insns, start),
            returns: fbt::Returns::default(),
            raw_indirect: Vec::new(),
            indexed_jumps: 0,
            thunk_calls: 0,
            table_entries,
            stack_protector: false,
            tls_canary: Vec::new(),
            exempt: policy.fbt_exempt.contains(&s.name) || policy.fbt_exempt.contains(&demangled),
        };
        let has_table = !f.table_entries.is_empty();
        let mut targets: Vec<Option<Target>> = Vec::with_capacity(insns.len());
        for (k, i) in insns.iter().enumerate() {
            let next = insns.get(k + 1).map_or(end, |n| n.offset);
            let relocs = code.relocs_in(section, i.offset, next);
            if relocs
                .iter()
                .any(|r| r.symbol == "__stack_chk_fail" || r.symbol == "__stack_chk_guard")
            {
                f.stack_protector = true;
            }
            if i.operands.contains("%gs:0x28") || i.operands.contains("%fs:0x28") {
                f.stack_protector = true;
                f.tls_canary
                    .push(format!("`{}` at +0x{:x}", i.text, i.offset - start));
            }
            let thunk = relocs.iter().find(|r| r.symbol.starts_with(THUNK));
            if fbt::is_raw_indirect(i) {
                f.raw_indirect.push((i.offset - start, i.text.clone()));
                if fbt::is_jump(i) && fbt::has_index_register(i) {
                    f.indexed_jumps += 1;
                }
            }
            if fbt::is_call(i) && thunk.is_some() {
                f.thunk_calls += 1;
            }
            if !fbt::is_jump(i) {
                targets.push(None);
                continue;
            }
            let target = if let Some(t) = thunk {
                if has_table {
                    Target::Table
                } else {
                    Target::Indirect(format!("an indirect jump through {}", t.symbol))
                }
            } else if i.operands.starts_with('*') {
                // A relocation on it is the memory operand's, not a target.
                if fbt::has_index_register(i) || has_table {
                    Target::Table
                } else {
                    Target::Indirect(format!("`{}`", squeeze(&i.text)))
                }
            } else if let Some(r) = relocs.first() {
                let bias = if pc_relative(&r.kind) { 4 } else { 0 };
                match code.reloc_target(r, bias) {
                    Some((sec, addr)) if sec == section && start <= addr && addr < end => {
                        Target::Inside
                    }
                    Some((sec, addr)) => Target::Outside(code.describe(sec, addr)),
                    None => Target::Outside(r.symbol.clone()),
                }
            } else {
                let addr = i
                    .operands
                    .split_whitespace()
                    .next()
                    .and_then(|a| u64::from_str_radix(a, 16).ok());
                match addr {
                    Some(a) if start <= a && a < end => Target::Inside,
                    Some(a) => Target::Outside(code.describe(section, a)),
                    None => Target::Indirect(format!("`{}`", squeeze(&i.text))),
                }
            };
            targets.push(Some(target));
        }
        f.returns = fbt::returns(&insns, start, &targets);
        symbols.push(f);
    }
    symbols.sort_by(|a, b| (&a.section, a.start, !a.global).cmp(&(&b.section, b.start, !b.global)));

    for f in &symbols {
        let name = &f.demangled;
        // retpoline
        if !f.raw_indirect.is_empty() {
            violation(
                Rule::Retpoline,
                format!(
                    "{name}: {} raw indirect branch(es): {}: a branch target injection (Spectre v2) \
                     gadget; illumos sends every indirect call and jump through \
                     __x86_indirect_thunk_<reg> (gcc -mindirect-branch=thunk-extern)",
                    f.raw_indirect.len(),
                    first_four(&f.raw_indirect, |(o, t)| format!("`{}` at +0x{o:x}", squeeze(t)))
                ),
            );
        }
        if f.has_jump_table() {
            let mut what = Vec::new();
            if f.indexed_jumps > 0 {
                what.push(format!(
                    "{} jump(s) through an indexed table",
                    f.indexed_jumps
                ));
            }
            if !f.table_entries.is_empty() {
                what.push(format!(
                    "{} address(es) inside it stored in data ({})",
                    f.table_entries.len(),
                    first_four(&f.table_entries, String::clone)
                ));
            }
            violation(
                Rule::Retpoline,
                format!(
                    "{name}: a jump table: {}: an indirect jump the kernel's retpoline policy does \
                     not allow (rustc: -C jump-tables=no)",
                    what.join("; ")
                ),
            );
        }
        // stack-protector
        if !f.tls_canary.is_empty() {
            violation(
                Rule::StackProtector,
                format!(
                    "{name}: reads its stack canary from {}: Linux's per-CPU/TLS canary; in the \
                     illumos kernel %gs holds the cpu_t, the canary is the global \
                     __stack_chk_guard (gcc -mstack-protector-guard=global, rustc: the illumos \
                     target or a target JSON)",
                    f.tls_canary[0]
                ),
            );
        }
        if f.exempt {
            continue;
        }
        // fbt-entry
        let entry_problem = match &f.entry {
            _ if f.weak => {
                Some("is a weak symbol: fbt skips weak functions, it has no probes".to_string())
            }
            Entry::Ok => None,
            Entry::Empty => Some(
                "has size 0 (no .size): fbt walks st_value..st_value+st_size, it has no probes"
                    .to_string(),
            ),
            Entry::NoPush => Some(
                "has no `push %rbp`: fbt gives it no probes at all, and it has no frame in \
                 stack traces"
                    .to_string(),
            ),
            Entry::Late {
                offset,
                before,
                after_branch: true,
            } => Some(format!(
                "its first `push %rbp` is at +0x{offset:x}, after {before} instruction(s) \
                 including a branch: the fbt entry probe fires only on the paths through it \
                 (shrink-wrapping; LLVM: -enable-shrink-wrap=false)"
            )),
            Entry::Late { offset, before, .. } => Some(format!(
                "its first `push %rbp` is at +0x{offset:x}, after {before} instruction(s): the \
                 fbt entry probe is not at offset 0"
            )),
            Entry::Unlinked { at: Some(at) } => Some(format!(
                "`push %rbp` at offset 0 is not followed by `mov %rsp,%rbp` before {at}: no \
                 frame pointer chain for stack traces"
            )),
            Entry::Unlinked { at: None } => Some(
                "`push %rbp` at offset 0 is never followed by `mov %rsp,%rbp`: no frame pointer \
                 chain for stack traces"
                    .to_string(),
            ),
        };
        if let Some(p) = entry_problem {
            violation(Rule::FbtEntry, format!("{name} {p}"));
        }
        // fbt-return: functions without any push have no probes at all
        // (reported above).
        let r = &f.returns;
        if f.weak || matches!(f.entry, Entry::NoPush | Entry::Empty) || !r.can_return {
            continue;
        }
        let mut problems = Vec::new();
        if r.probed == 0 {
            problems.push(if r.tail_jumps.is_empty() && r.unprobed.is_empty() {
                "can return (its code runs off its end) but has no `ret`: no fbt return probe"
                    .to_string()
            } else {
                "can return but has no `ret` of its own: no fbt return probe at all".to_string()
            });
        }
        if !r.tail_jumps.is_empty() {
            problems.push(format!(
                "leaves through {} tail jump(s) ({}): those paths fire no fbt return probe and \
                 drop its frame from stack traces",
                r.tail_jumps.len(),
                first_four(&r.tail_jumps, |(o, to)| format!("to {to} at +0x{o:x}"))
            ));
        }
        if !r.unprobed.is_empty() {
            problems.push(format!(
                "returns where fbt puts no return probe: {} (before its `push %rbp`, or not a \
                 plain `ret`)",
                first_four(&r.unprobed, |(o, t)| format!(
                    "`{}` at +0x{o:x}",
                    squeeze(t)
                ))
            ));
        }
        if r.falls_off && r.probed > 0 {
            problems.push("its code runs off its end into what follows".to_string());
        }
        if !problems.is_empty() {
            violation(Rule::FbtReturn, format!("{name} {}", problems.join("; ")));
        }
    }

    // shared-address
    let mut at: BTreeMap<(&str, u64), Vec<&FuncSymbol>> = BTreeMap::new();
    for f in &symbols {
        at.entry((f.section.as_str(), f.start)).or_default().push(f);
    }
    let mut shared = Vec::new();
    for ((section, addr), group) in at {
        if group.len() < 2 {
            continue;
        }
        let names: Vec<String> = group.iter().map(|f| f.demangled.clone()).collect();
        violation(
            Rule::SharedAddress,
            format!(
                "{} share address 0x{addr:x} in {section}: two fbt probes on one patch point \
                 (only one of them fires, and disabling one disarms the other)",
                names.join(", ")
            ),
        );
        shared.push(names);
    }

    // names
    let mut names = Names::default();
    for s in &elf.symbols {
        if s.kind == "FILE" || s.kind == "SECTION" || s.name.is_empty() {
            continue;
        }
        if s.name.contains('$') {
            names.dollar.push(s.name.clone());
            violation(
                Rule::Names,
                format!(
                    "{} ({}): the name contains `$`, which a D probe description takes for a \
                     macro variable (rustc: -C symbol-mangling-version=v0)",
                    s.name,
                    clean_name(&s.demangled)
                ),
            );
        }
        if is_legacy_rust(&s.name) {
            names.legacy.push(clean_name(&s.demangled));
        } else if is_v0_rust(&s.name) {
            names.v0.push(clean_name(&s.demangled));
        } else {
            names.plain += 1;
        }
    }
    names.legacy.sort();
    names.v0.sort();
    if !names.legacy.is_empty() {
        violation(
            Rule::Names,
            format!(
                "{} Rust symbol(s) in the legacy mangling (`_ZN...17h<hash>E`): {}: one scheme, v0 \
                 (`_R...`), for every variant (rustc: -C symbol-mangling-version=v0)",
                names.legacy.len(),
                names.legacy.join(", ")
            ),
        );
    }

    (symbols, shared, names, v)
}

/// objdump's instruction text with runs of spaces made one.
fn squeeze(t: &str) -> String {
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first four items of a list, shown with `show` and joined, with
/// ", ..." when there are more.
fn first_four<T>(items: &[T], show: impl FnMut(&T) -> String) -> String {
    let mut shown: Vec<String> = items.iter().take(4).map(show).collect();
    if items.len() > 4 {
        shown.push("...".to_string());
    }
    shown.join(", ")
}
