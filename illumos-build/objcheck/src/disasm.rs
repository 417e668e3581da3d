//! The code of an object, as `objdump -d` prints it: per labelled chunk
//! (function) its instructions; the stack frame each function sets up; the
//! instructions that touch FPU/SIMD state.

use std::path::Path;

use crate::tools::{self, Tool};

#[derive(Clone, Debug)]
pub struct Insn {
    pub offset: u64,
    /// The mnemonic, without prefixes (`lock`, `rep`, `data16`, ...).
    pub mnemonic: String,
    /// The operands, without objdump's `# ...` comment.
    pub operands: String,
    /// The whole instruction as objdump shows it.
    pub text: String,
}

/// A labelled chunk of code: a function.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub section: String,
    pub start: u64,
    pub label: String,
    pub insns: Vec<Insn>,
}

const PREFIXES: &[&str] = &[
    "lock", "rep", "repz", "repe", "repnz", "repne", "data16", "data32", "addr32", "cs", "ds",
    "ss", "es", "fs", "gs", "bnd", "notrack", "xacquire", "xrelease", "{disp32}", "{disp8}",
    "{vex}", "{vex3}", "{evex}",
];

fn parse_insn(offset: u64, text: &str) -> Insn {
    let code = text.split(" #").next().unwrap_or(text).trim();
    let mut words = code.split_whitespace();
    let mut mnemonic = String::new();
    for w in words.by_ref() {
        if PREFIXES.contains(&w) || w.starts_with("rex") {
            continue;
        }
        mnemonic = w.to_string();
        break;
    }
    let operands = words.collect::<Vec<_>>().join(" ");
    Insn {
        offset,
        mnemonic,
        operands,
        text: text.trim().to_string(),
    }
}

/// Parses `objdump -d -w --no-show-raw-insn` output.
pub fn parse(text: &str) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Disassembly of section ") {
            section = rest.trim_end_matches(':').to_string();
            continue;
        }
        // "0000000000000000 <name>:"
        if let Some((addr, rest)) = line.split_once(" <") {
            if let (Ok(start), Some(label)) =
                (u64::from_str_radix(addr, 16), rest.strip_suffix(">:"))
            {
                chunks.push(Chunk {
                    section: section.clone(),
                    start,
                    label: label.to_string(),
                    insns: Vec::new(),
                });
                continue;
            }
        }
        // "     1b0:\tpush   %rbp"
        let Some((addr, insn)) = line.split_once(":\t") else {
            continue;
        };
        let Ok(offset) = u64::from_str_radix(addr.trim(), 16) else {
            continue;
        };
        if let Some(c) = chunks.last_mut() {
            c.insns.push(parse_insn(offset, insn));
        }
    }
    chunks
}

/// Disassembles the executable sections of an object.
pub fn disassemble(obj: &Path) -> Result<Vec<Chunk>, String> {
    Ok(parse(&tools::run(
        Tool::Objdump,
        &["-d", "-w", "--no-show-raw-insn"],
        obj,
    )?))
}

/// Why an instruction touches FPU/MMX/SSE/AVX state, if it does.
pub fn fpu_simd_use(i: &Insn) -> Option<&'static str> {
    let ops = i.operands.as_str();
    for (reg, what) in [
        ("%xmm", "an SSE register (%xmm)"),
        ("%ymm", "an AVX register (%ymm)"),
        ("%zmm", "an AVX-512 register (%zmm)"),
        ("%mm", "an MMX register (%mm)"),
        ("%st", "an x87 register (%st)"),
    ] {
        if ops.contains(reg) {
            return Some(what);
        }
    }
    if ops.contains("%k") && ops.split(['%', ',', ' ', '{', '}']).any(is_mask_reg) {
        return Some("an AVX-512 mask register (%k)");
    }
    let m = i.mnemonic.as_str();
    // No integer instruction's mnemonic starts with 'f': those are x87
    // (and fxsave/fxrstor, which save FPU state).
    if m.starts_with('f') {
        return Some("an x87 instruction");
    }
    if matches!(
        m,
        "emms" | "ldmxcsr" | "stmxcsr" | "vldmxcsr" | "vstmxcsr" | "vzeroupper" | "vzeroall"
    ) || m.starts_with("xsave")
        || m.starts_with("xrstor")
    {
        return Some("an FPU/SIMD state instruction");
    }
    None
}

fn is_mask_reg(w: &str) -> bool {
    w.len() == 2 && w.starts_with('k') && w.as_bytes()[1].is_ascii_digit() && w.as_bytes()[1] < b'8'
}

/// The stack a function allocates, from its instructions.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    /// The most bytes below the return address at any point: pushes plus
    /// `sub $N,%rsp`, less what was popped or added back.
    pub bytes: u64,
    /// Of that, the bytes pushed (at the deepest point).
    pub pushed: u64,
    /// The largest single `sub $N,%rsp`.
    pub largest_sub: u64,
    /// A `sub %reg,%rsp` or `and` of %rsp: a stack allocation whose size
    /// is not a constant (the instruction).
    pub dynamic: Option<String>,
}

/// Parses objdump's `$0x...` immediate as a signed 64-bit value.
fn imm(ops: &str) -> Option<i64> {
    let hex = ops.strip_prefix("$0x")?.split(',').next()?;
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// `-0x28(%rbp),%rsp` -> Some(-0x28) for base `%rbp`.
fn lea_disp(ops: &str, base: &str) -> Option<i64> {
    let (src, dst) = ops.split_once(',')?;
    if dst != "%rsp" {
        return None;
    }
    let disp = src.strip_suffix(&format!("({base})"))?;
    if disp.is_empty() {
        return Some(0);
    }
    let (neg, hex) = match disp.strip_prefix('-') {
        Some(h) => (true, h),
        None => (false, disp),
    };
    let v = i64::from_str_radix(hex.strip_prefix("0x")?, 16).ok()?;
    Some(if neg { -v } else { v })
}

/// Follows the stack pointer through a function's instructions.
///
/// A linear walk: pushes, `sub $N,%rsp` and `and $-N,%rsp` deepen the
/// stack; pops, `add $N,%rsp`, `lea N(%rbp),%rsp`, `mov %rbp,%rsp` and
/// `leave` give it back.  After a `ret` or an unconditional `jmp` (a tail
/// call or a branch) the code that follows is reached from the function's
/// body, so the depth goes back to what it was before the epilogue that
/// preceded them.  The result is the deepest point.
pub fn frame(insns: &[Insn]) -> Frame {
    let mut f = Frame::default();
    let mut depth: i64 = 0;
    let mut pushed: i64 = 0;
    // Depth (and pushed bytes) when %rbp was set to %rsp.
    let mut rbp: Option<(i64, i64)> = None;
    // Depth and pushed bytes before the current run of stack-releasing
    // instructions, which may be an epilogue.
    let mut before_release: Option<(i64, i64)> = None;

    for i in insns {
        let m = i.mnemonic.as_str();
        let m = if m.len() > 3 {
            m.trim_end_matches('q')
        } else {
            m
        };
        let ops = i.operands.as_str();
        let (old_depth, old_pushed) = (depth, pushed);
        match m {
            "push" | "pushf" => {
                depth += 8;
                pushed += 8;
            }
            "pop" | "popf" => {
                depth -= 8;
                pushed -= 8;
            }
            "sub" | "add" if ops.ends_with(",%rsp") => match imm(ops) {
                Some(n) => {
                    let n = if m == "sub" { n } else { -n };
                    depth += n;
                    if n > 0 {
                        f.largest_sub = f.largest_sub.max(n as u64);
                    }
                }
                None => f.dynamic = Some(i.text.clone()),
            },
            "and" if ops.ends_with(",%rsp") => match imm(ops) {
                // Aligning down to 2^k adds at most 2^k - 1 bytes.
                Some(mask) if mask < 0 => depth += -mask - 1,
                _ => f.dynamic = Some(i.text.clone()),
            },
            "lea" if ops.ends_with(",%rsp") => {
                if let Some(d) = lea_disp(ops, "%rsp") {
                    depth -= d;
                } else if let (Some(d), Some((base, base_pushed))) = (lea_disp(ops, "%rbp"), rbp) {
                    depth = base - d;
                    pushed = base_pushed - d;
                } else {
                    f.dynamic = Some(i.text.clone());
                }
            }
            "mov" if ops == "%rsp,%rbp" => rbp = Some((depth, pushed)),
            "mov" if ops == "%rbp,%rsp" => {
                if let Some((d, p)) = rbp {
                    (depth, pushed) = (d, p);
                }
            }
            "mov" if ops.ends_with(",%rsp") => f.dynamic = Some(i.text.clone()),
            "leave" => {
                let (d, p) = rbp.unwrap_or((depth, pushed));
                (depth, pushed) = (d - 8, p - 8);
            }
            _ => {}
        }
        depth = depth.max(0);
        pushed = pushed.clamp(0, depth);
        if depth > old_depth {
            before_release = None;
        } else if depth < old_depth && before_release.is_none() {
            before_release = Some((old_depth, old_pushed));
        }
        if depth > f.bytes as i64 {
            f.bytes = depth as u64;
            f.pushed = pushed as u64;
        }
        if m == "ret" || m == "jmp" {
            // The next instruction is reached from the body.
            if let Some((d, p)) = before_release.take() {
                (depth, pushed) = (d, p);
            }
        } else if m == "call" || m.starts_with('j') || m.starts_with("loop") {
            // What was given back before a call or a conditional branch
            // was a mid-body adjustment, not an epilogue.
            before_release = None;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insns(code: &str) -> Vec<Insn> {
        code.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(n, l)| parse_insn(n as u64, l))
            .collect()
    }

    #[test]
    fn llvm_prologue_and_tail_call() {
        let f = frame(&insns(
            "push %rbp\n mov %rsp,%rbp\n push %r15\n push %r14\n push %rbx\n sub $0x18,%rsp\n
             test %rdi,%rdi\n je 40\n add $0x18,%rsp\n pop %rbx\n pop %r14\n pop %r15\n
             pop %rbp\n jmp 0\n call 0\n add $0x18,%rsp\n pop %rbx\n pop %r14\n pop %r15\n
             pop %rbp\n ret",
        ));
        assert_eq!((f.bytes, f.pushed, f.largest_sub), (56, 32, 0x18));
        assert!(f.dynamic.is_none());
    }

    #[test]
    fn gcc_pushed_arguments_and_leave() {
        let f = frame(&insns(
            "push %rbp\n mov %rsp,%rbp\n sub $0x400,%rsp\n push $0x1\n push %rax\n call 0\n
             add $0x10,%rsp\n leave\n ret",
        ));
        assert_eq!(f.bytes, 8 + 0x400 + 16);
    }

    #[test]
    fn negative_add_is_an_allocation() {
        let f = frame(&insns(
            "add $0xffffffffffffff80,%rsp\n sub $0xffffffffffffff80,%rsp\n ret",
        ));
        assert_eq!((f.bytes, f.largest_sub), (128, 128));
    }

    #[test]
    fn dynamic_allocation_is_reported() {
        let f = frame(&insns(
            "push %rbp\n mov %rsp,%rbp\n sub %rax,%rsp\n leave\n ret",
        ));
        assert!(f.dynamic.is_some());
    }

    #[test]
    fn simd_and_x87_are_recognised() {
        let i = insns("movaps %xmm0,(%rdi)\n fldt (%rdi)\n mov %rax,%rbx\n lock cmpxchg %rcx,(%rdx)\n kmovw %k1,%eax");
        let uses: Vec<bool> = i.iter().map(|i| fpu_simd_use(i).is_some()).collect();
        assert_eq!(uses, [true, true, false, false, true]);
        assert_eq!(i[3].mnemonic, "cmpxchg");
    }
}
