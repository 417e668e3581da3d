//! What DTrace's fbt provider and retpolines need of a function, from its
//! instructions (`objdump -d`).
//!
//! fbt (`uts/intel/dtrace/fbt.c`, `fbt_provide_module`) looks at every
//! non-weak `STT_FUNC` symbol of a module, decodes its bytes from
//! `st_value` to `st_value + st_size`, puts the entry probe on the first
//! instruction that is `push %rbp` (byte 0x55; none: the function gets no
//! probes at all) and a return probe on every plain `ret` (byte 0xc3) after
//! it.  A path that leaves through a tail `jmp`, or that returns before the
//! push, fires no return probe; a `ret $n` or `repz ret` is not
//! instrumented.  The checks here hold each function to what the illumos
//! kernel's own C code gives fbt (gcc with `-fno-shrink-wrap
//! -fno-optimize-sibling-calls` and frame pointers): the probe at offset 0
//! and a `ret` of its own on every way out.

use crate::disasm::Insn;

/// Where a branch goes, as the checker resolved it (relocations first,
/// then the address objdump printed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Inside the function.
    Inside,
    /// Outside it: another function, an imported symbol, an address.
    Outside(String),
    /// Through a register or memory, not a jump table: an indirect tail
    /// call (raw, or through `__x86_indirect_thunk_<reg>`).
    Indirect(String),
    /// Through a jump table (stays inside the function).
    Table,
}

/// The mnemonic without the operand-size suffix objdump may print
/// (`callq`, `jmpq`, `retq`, `pushq`).
fn base(m: &str) -> &str {
    match m {
        "callq" | "jmpq" | "retq" | "pushq" | "popq" | "movq" | "leaveq" | "ljmpq" | "lcallq" => {
            &m[..m.len() - 1]
        }
        _ => m,
    }
}

/// `push %rbp`, unprefixed: the byte 0x55 fbt looks for.
pub fn is_push_rbp(i: &Insn) -> bool {
    base(&i.mnemonic) == "push" && i.operands == "%rbp" && !has_prefix(i)
}

/// `mov %rsp,%rbp`.
pub fn is_mov_rsp_rbp(i: &Insn) -> bool {
    base(&i.mnemonic) == "mov" && i.operands == "%rsp,%rbp"
}

/// Any return (`ret`, `ret $n`, `repz ret`, `retw`), not `iret`/`sysret`.
pub fn is_ret(i: &Insn) -> bool {
    matches!(base(&i.mnemonic), "ret" | "retw" | "lret" | "lretq")
}

/// The return fbt instruments: a plain `ret` (0xc3), no prefix, no operand.
pub fn is_plain_ret(i: &Insn) -> bool {
    base(&i.mnemonic) == "ret" && i.operands.is_empty() && !has_prefix(i)
}

/// Whether objdump shows a prefix before the mnemonic (`repz ret`,
/// `bnd jmp`, `data16 ...`).
fn has_prefix(i: &Insn) -> bool {
    let first = i.text.split_whitespace().next().unwrap_or("");
    first != i.mnemonic
}

/// A jump, conditional or not (`jmp`, `je`, `jrcxz`, ...).
pub fn is_jump(i: &Insn) -> bool {
    let m = base(&i.mnemonic);
    m.starts_with('j') || m == "ljmp"
}

pub fn is_unconditional_jump(i: &Insn) -> bool {
    matches!(base(&i.mnemonic), "jmp" | "ljmp")
}

pub fn is_call(i: &Insn) -> bool {
    matches!(base(&i.mnemonic), "call" | "lcall")
}

/// A raw indirect branch: `call *...` or `jmp *...`, register or memory
/// operand (a Spectre v2 branch target injection gadget).
pub fn is_raw_indirect(i: &Insn) -> bool {
    (is_call(i) || is_unconditional_jump(i)) && i.operands.starts_with('*')
}

/// A memory operand with an index register, `*0x0(,%rax,8)` or
/// `*(%rcx,%rax,8)`: a branch through a table.
pub fn has_index_register(i: &Insn) -> bool {
    i.operands
        .split_once('(')
        .map(|(_, inner)| inner.trim_end_matches(')').contains(','))
        .unwrap_or(false)
}

/// Alignment padding between functions.
pub fn is_padding(i: &Insn) -> bool {
    let m = i.mnemonic.as_str();
    m.starts_with("nop")
        || m == "int3"
        || (m == "xchg" && i.operands == "%ax,%ax")
        || i.text == "(bad)"
}

/// An instruction that ends a path for good: `ud2` (Rust's and gcc's
/// `unreachable`), `hlt`.
pub fn is_trap(i: &Insn) -> bool {
    matches!(i.mnemonic.as_str(), "ud2" | "ud1" | "ud0" | "hlt")
}

/// Whether an instruction transfers control.
pub fn is_control(i: &Insn) -> bool {
    let m = base(&i.mnemonic);
    is_jump(i)
        || is_call(i)
        || is_ret(i)
        || m.starts_with("loop")
        || m.starts_with("iret")
        || matches!(
            m,
            "syscall" | "sysret" | "sysenter" | "sysexit" | "int" | "into"
        )
        || is_trap(i)
}

/// Whether an instruction uses the stack or the frame pointer (reads or
/// writes `%rsp`/`%rbp` or their parts, or pushes, pops, calls, returns).
pub fn touches_frame(i: &Insn) -> bool {
    let m = base(&i.mnemonic);
    if matches!(m, "push" | "pop" | "pushf" | "popf" | "leave" | "enter") || is_control(i) {
        return true;
    }
    i.operands
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '%'))
        .any(|w| {
            matches!(
                w,
                "%rsp" | "%esp" | "%sp" | "%spl" | "%rbp" | "%ebp" | "%bp" | "%bpl"
            )
        })
}

/// Where fbt's entry probe of a function lands, and whether the frame is
/// set up there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `push %rbp` at offset 0, then `mov %rsp,%rbp` with nothing in
    /// between that branches or uses the stack.
    Ok,
    /// The function has no bytes (`st_size` 0): fbt gives it no probes.
    Empty,
    /// No `push %rbp` anywhere: fbt gives it no probes.
    NoPush,
    /// The first `push %rbp` is at `offset`, after `before` instructions;
    /// `after_branch`: one of them is a branch, so the probe fires on some
    /// paths only (shrink-wrapping).
    Late {
        offset: u64,
        before: usize,
        after_branch: bool,
    },
    /// `push %rbp` at offset 0, but `mov %rsp,%rbp` does not follow before
    /// `at` (an instruction that branches or uses the stack), or never.
    Unlinked { at: Option<String> },
}

/// The entry analysis of a function's instructions (`start`: its address).
pub fn entry(insns: &[Insn], start: u64) -> Entry {
    let Some(first) = insns.first() else {
        return Entry::Empty;
    };
    let Some(k) = insns.iter().position(is_push_rbp) else {
        return Entry::NoPush;
    };
    if k > 0 || first.offset != start {
        return Entry::Late {
            offset: insns[k].offset - start,
            before: k,
            after_branch: insns[..k].iter().any(is_control),
        };
    }
    for i in &insns[1..] {
        if is_mov_rsp_rbp(i) {
            return Entry::Ok;
        }
        if touches_frame(i) {
            return Entry::Unlinked {
                at: Some(format!(
                    "`{}` at +0x{:x}",
                    i.text.split_whitespace().collect::<Vec<_>>().join(" "),
                    i.offset - start
                )),
            };
        }
    }
    Entry::Unlinked { at: None }
}

/// How a function can leave, as fbt sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Returns {
    /// The function can return (see [`returns`]).
    pub can_return: bool,
    /// Plain `ret`s after the first `push %rbp`: fbt's return probes.
    pub probed: usize,
    /// Returns fbt does not instrument: before the first `push %rbp`
    /// (offset, text), or not a plain `ret` (`ret $n`, `repz ret`).
    pub unprobed: Vec<(u64, String)>,
    /// Jumps that leave the function (offset, where to): tail calls.
    pub tail_jumps: Vec<(u64, String)>,
    /// Execution runs past the last instruction into whatever follows.
    pub falls_off: bool,
}

/// The ways out of a function.  `targets[k]` is where `insns[k]` goes if
/// it is a jump (`None` for other instructions).
///
/// "Can return" is decided conservatively: a function can return when it
/// has any return instruction, any jump that leaves it, or when its last
/// instruction (alignment padding aside) could fall through past its end.
/// It cannot when none of these holds: every path ends in a jump back into
/// it, a trap (`ud2`, `hlt`), or a `call` as its very last instruction,
/// which compilers emit only for a callee that never returns (`panic`,
/// `__stack_chk_fail`, a Rust `-> !` function): a call that returned there
/// would run into the next function.
pub fn returns(insns: &[Insn], start: u64, targets: &[Option<Target>]) -> Returns {
    let mut r = Returns::default();
    let push = insns.iter().position(is_push_rbp);
    for (k, i) in insns.iter().enumerate() {
        if is_ret(i) {
            let after_push = push.is_some_and(|p| k > p);
            if after_push && is_plain_ret(i) {
                r.probed += 1;
            } else {
                r.unprobed.push((i.offset - start, i.text.clone()));
            }
            continue;
        }
        if !is_jump(i) {
            continue;
        }
        match targets.get(k).cloned().flatten() {
            Some(Target::Outside(to)) => r.tail_jumps.push((i.offset - start, to)),
            Some(Target::Indirect(how)) => r.tail_jumps.push((i.offset - start, how)),
            Some(Target::Inside) | Some(Target::Table) | None => {}
        }
    }
    let last = insns.iter().rev().find(|i| !is_padding(i));
    r.falls_off = match last {
        None => false,
        Some(i) => !(is_ret(i) || is_unconditional_jump(i) || is_call(i) || is_trap(i)),
    };
    r.can_return =
        r.probed > 0 || !r.unprobed.is_empty() || !r.tail_jumps.is_empty() || r.falls_off;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disasm::parse;

    /// Instructions from objdump-like lines "offset: text".
    fn insns(code: &str) -> Vec<Insn> {
        let text: String = code
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (a, t) = l.split_once(':').expect("offset: insn");
                format!("{:>8}:\t{}\n", a.trim(), t.trim())
            })
            .collect();
        parse(&format!("0000000000000000 <f>:\n{text}"))
            .pop()
            .expect("one chunk")
            .insns
    }

    #[test]
    fn entry_at_offset_0_with_scheduled_mov() {
        // gcc schedules argument set-up between push and mov.
        let i = insns(
            "0: push %rbp\n 1: mov $0x0,%rdi\n 8: xor %eax,%eax\n a: mov %rsp,%rbp\n d: call 12",
        );
        assert_eq!(entry(&i, 0), Entry::Ok);
        let i = insns("0: push %rbp\n 1: push %rbx\n 2: mov %rsp,%rbp");
        assert!(matches!(entry(&i, 0), Entry::Unlinked { at: Some(_) }));
    }

    #[test]
    fn shrink_wrapped_entry_is_late_after_a_branch() {
        let i = insns(
            "0: test %rdi,%rdi\n 3: je 10\n 5: xor %eax,%eax\n 7: ret\n 10: push %rbp\n
             11: mov %rsp,%rbp\n 14: call 0\n 19: pop %rbp\n 1a: ret",
        );
        assert_eq!(
            entry(&i, 0),
            Entry::Late {
                offset: 0x10,
                before: 4,
                after_branch: true
            }
        );
        let r = returns(&i, 0, &vec![None; i.len()]);
        assert!(r.can_return);
        assert_eq!(r.probed, 1);
        assert_eq!(r.unprobed, vec![(7, "ret".to_string())]);
    }

    #[test]
    fn frameless_leaf_has_no_push() {
        let i = insns("0: lea 0x1(%rdi),%rax\n 4: ret\n 5: nopw 0x0(%rax,%rax,1)");
        assert_eq!(entry(&i, 0), Entry::NoPush);
        assert_eq!(entry(&[], 0), Entry::Empty);
    }

    #[test]
    fn tail_jumps_and_noreturn_calls() {
        let i = insns("0: push %rbp\n 1: mov %rsp,%rbp\n 4: pop %rbp\n 5: jmp 100");
        let t = vec![None, None, None, Some(Target::Outside("g".into()))];
        let r = returns(&i, 0, &t);
        assert!(r.can_return);
        assert_eq!((r.probed, r.tail_jumps.len()), (0, 1));

        // Ends in a call to panic, then padding: cannot return.
        let i = insns(
            "0: push %rbp\n 1: mov %rsp,%rbp\n 4: call 9\n 9: data16 cs nopw 0x0(%rax,%rax,1)\n
             14: nopl (%rax)",
        );
        let r = returns(&i, 0, &vec![None; i.len()]);
        assert!(!r.can_return && !r.falls_off);

        // ud2 ends it too; a conditional jump back inside does not leave.
        let i = insns("0: push %rbp\n 1: mov %rsp,%rbp\n 4: jne 1\n 6: ud2");
        let r = returns(&i, 0, &[None, None, Some(Target::Inside), None]);
        assert!(!r.can_return);

        // A function whose code stops mid-way falls off its end.
        let i = insns("0: push %rbp\n 1: mov %rsp,%rbp\n 4: mov %rdi,%rax");
        assert!(returns(&i, 0, &vec![None; i.len()]).falls_off);
    }

    #[test]
    fn unprobed_return_forms() {
        let i = insns("0: push %rbp\n 1: mov %rsp,%rbp\n 4: pop %rbp\n 5: repz ret\n 7: ret $0x8");
        let r = returns(&i, 0, &vec![None; i.len()]);
        assert_eq!(r.probed, 0);
        assert_eq!(r.unprobed.len(), 2);
    }

    #[test]
    fn indirect_branches() {
        let i = insns(
            "0: jmp *0x0(,%rax,8)\n 7: jmp *%rax\n 9: call *0x10(%rdi)\n c: notrack jmp *%rcx\n
             e: call 13\n 13: jmp 0",
        );
        let raw: Vec<bool> = i.iter().map(is_raw_indirect).collect();
        assert_eq!(raw, [true, true, true, true, false, false]);
        let table: Vec<bool> = i.iter().map(has_index_register).collect();
        assert_eq!(table, [true, false, false, false, false, false]);
    }

    #[test]
    fn frame_use() {
        let i = insns(
            "0: mov %rdi,%rax\n 3: mov -0x8(%rbp),%rax\n 7: sub $0x8,%rsp\n b: mov %ebx,%ecx\n
             d: movzbl %bpl,%eax",
        );
        let t: Vec<bool> = i.iter().map(touches_frame).collect();
        assert_eq!(t, [false, true, true, false, true]);
    }
}
