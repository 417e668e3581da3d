//! The ELF facts of an object, as `readelf -W` prints them: header,
//! sections, symbols, relocations.

use std::path::Path;

use crate::tools::{self, Tool};

/// The ELF header fields the checks look at.
#[derive(Debug, Default)]
pub struct Header {
    pub class: String,
    pub kind: String,
    pub machine: String,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub index: usize,
    pub name: String,
    pub kind: String,
    pub size: u64,
    pub flags: String,
}

impl Section {
    pub fn is_exec(&self) -> bool {
        self.flags.contains('X')
    }
    pub fn is_alloc(&self) -> bool {
        self.flags.contains('A')
    }
    pub fn is_write(&self) -> bool {
        self.flags.contains('W')
    }
    pub fn is_tls(&self) -> bool {
        self.flags.contains('T')
    }
}

#[derive(Clone, Debug)]
pub struct Symbol {
    pub value: u64,
    pub size: u64,
    pub kind: String,
    pub bind: String,
    /// Section index, or "UND", "ABS", "COM".
    pub ndx: String,
    pub name: String,
    /// Demangled name (the name itself when not mangled).
    pub demangled: String,
}

impl Symbol {
    pub fn is_undefined(&self) -> bool {
        self.ndx == "UND"
    }
    pub fn is_global(&self) -> bool {
        self.bind != "LOCAL"
    }
    pub fn section(&self) -> Option<usize> {
        self.ndx.parse().ok()
    }
}

#[derive(Clone, Debug)]
pub struct Reloc {
    /// The relocation section, e.g. `.rela.text`.
    pub in_section: String,
    /// The section it applies to (by name), e.g. `.text`.
    pub target_section: String,
    pub offset: u64,
    pub kind: String,
    /// The symbol, or the section name for section symbols; empty if none.
    pub symbol: String,
    pub addend: i64,
}

#[derive(Debug, Default)]
pub struct Elf {
    pub header: Header,
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    pub relocs: Vec<Reloc>,
    /// Relocation sections of type REL (no addend), which krtld rejects.
    pub rel_sections: Vec<String>,
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_header(text: &str) -> Header {
    let mut h = Header::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "Class" => h.class = v,
            "Type" => h.kind = v,
            "Machine" => h.machine = v,
            _ => {}
        }
    }
    h
}

fn parse_sections(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((nr, rest)) = rest.split_once(']') else {
            continue;
        };
        let Ok(index) = nr.trim().parse::<usize>() else {
            continue; // the "[Nr] Name ..." title
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // name type addr off size es [flags] lk inf al; the null section
        // has no name.
        if index == 0 || f.len() < 9 {
            continue;
        }
        let flags = if f.len() >= 10 { f[6] } else { "" };
        out.push(Section {
            index,
            name: f[0].to_string(),
            kind: f[1].to_string(),
            size: u64::from_str_radix(f[4], 16).unwrap_or(0),
            flags: flags.to_string(),
        });
    }
    out
}

fn parse_symbols(text: &str) -> Vec<Symbol> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Num: Value Size Type Bind Vis Ndx [Name]
        if f.len() < 7 || !f[0].ends_with(':') || f[0] == "Num:" {
            continue;
        }
        let (Ok(value), Some(size)) = (u64::from_str_radix(f[1], 16), parse_u64(f[2])) else {
            continue;
        };
        out.push(Symbol {
            value,
            size,
            kind: f[3].to_string(),
            bind: f[4].to_string(),
            ndx: f[6].to_string(),
            name: f.get(7).map(|s| s.to_string()).unwrap_or_default(),
            demangled: String::new(),
        });
    }
    out
}

fn parse_relocs(text: &str, rel_sections: &mut Vec<String>) -> Vec<Reloc> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Relocation section '") {
            current = rest.split('\'').next().unwrap_or("").to_string();
            if current.starts_with(".rel.") {
                rel_sections.push(current.clone());
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !f[2].starts_with("R_") {
            continue;
        }
        let Ok(offset) = u64::from_str_radix(f[0], 16) else {
            continue;
        };
        // "... Sym.Value Sym.Name + Addend" or, without a symbol, just the
        // addend.
        let (symbol, addend) = match f.len() {
            n if n >= 7 => {
                let magnitude = i64::from_str_radix(f[6], 16).unwrap_or(0);
                let addend = if f[5] == "-" { -magnitude } else { magnitude };
                (f[4].to_string(), addend)
            }
            4 => (String::new(), i64::from_str_radix(f[3], 16).unwrap_or(0)),
            _ => (f.get(4).unwrap_or(&"").to_string(), 0),
        };
        let target_section = current
            .strip_prefix(".rela")
            .or_else(|| current.strip_prefix(".rel"))
            .unwrap_or(&current)
            .to_string();
        out.push(Reloc {
            in_section: current.clone(),
            target_section,
            offset,
            kind: f[2].to_string(),
            symbol,
            addend,
        });
    }
    out
}

impl Elf {
    /// Reads an object with `readelf` and demangles its symbol names.
    pub fn read(obj: &Path) -> Result<Elf, String> {
        let header = parse_header(&tools::run(Tool::Readelf, &["-hW"], obj)?);
        let sections = parse_sections(&tools::run(Tool::Readelf, &["-SW"], obj)?);
        let mut symbols = parse_symbols(&tools::run(Tool::Readelf, &["-sW"], obj)?);
        let names: Vec<String> = symbols.iter().map(|s| s.name.clone()).collect();
        for (s, d) in symbols.iter_mut().zip(tools::demangle(&names)?) {
            s.demangled = d;
        }
        let mut rel_sections = Vec::new();
        let relocs = parse_relocs(
            &tools::run(Tool::Readelf, &["-rW"], obj)?,
            &mut rel_sections,
        );
        Ok(Elf {
            header,
            sections,
            symbols,
            relocs,
            rel_sections,
        })
    }

    pub fn section(&self, index: usize) -> Option<&Section> {
        self.sections.iter().find(|s| s.index == index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_readelf_lines() {
        let secs = parse_sections(
            "  [ 1] .text             PROGBITS        0000000000000000 000040 002023 00  AX  0   0 16\n\
             [ 8] .note.GNU-stack   PROGBITS        0000000000000000 002625 000000 00      0   0  1\n",
        );
        assert_eq!(secs.len(), 2);
        assert_eq!((secs[0].name.as_str(), secs[0].size), (".text", 0x2023));
        assert!(secs[0].is_exec() && !secs[1].is_alloc());
        let syms = parse_symbols(
            "    12: 0000000000001c20    10 FUNC    GLOBAL DEFAULT    1 vmm_gpt_alloc\n\
                  2: 0000000000000000     0 SECTION LOCAL  DEFAULT    1 \n\
                  9: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND kas\n",
        );
        assert_eq!(syms.len(), 3);
        assert!(syms[0].is_global() && syms[2].is_undefined());
        let mut rel = Vec::new();
        let relocs = parse_relocs(
            "Relocation section '.rela.text' at offset 0x30f0 contains 2 entries:\n\
             \x20   Offset             Info             Type               Symbol's Value  Symbol's Name + Addend\n\
             00000000000000f5  0000001100000004 R_X86_64_PLT32         0000000000000000 kmem_free - 4\n\
             00000000000001a0  000000010000000b R_X86_64_32S           0000000000000000 .rodata + 4a\n",
            &mut rel,
        );
        assert_eq!(relocs.len(), 2);
        assert_eq!(relocs[0].addend, -4);
        assert_eq!(
            (relocs[1].symbol.as_str(), relocs[1].addend),
            (".rodata", 0x4a)
        );
        assert_eq!(relocs[1].target_section, ".text");
        assert!(rel.is_empty());
    }
}
