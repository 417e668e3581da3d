//! Running the GNU binutils that the checks read objects with.
//!
//! Each tool is taken from an environment variable when set (as in
//! `build.sh`: `VMM_GPT_READELF`, `VMM_GPT_OBJDUMP`, `VMM_GPT_NM`,
//! `VMM_GPT_CXXFILT`), else the plain name if it is GNU's, else the
//! `g`-prefixed name (illumos ships GNU binutils as `gobjdump`, ...).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A GNU binutils tool.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    Readelf,
    Objdump,
    Nm,
    Cxxfilt,
}

impl Tool {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Tool::Readelf => ("VMM_GPT_READELF", "readelf"),
            Tool::Objdump => ("VMM_GPT_OBJDUMP", "objdump"),
            Tool::Nm => ("VMM_GPT_NM", "nm"),
            Tool::Cxxfilt => ("VMM_GPT_CXXFILT", "c++filt"),
        }
    }

    /// The command to run.
    pub fn program(self) -> String {
        let (var, name) = self.names();
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return p.to_string_lossy().into_owned();
        }
        for candidate in [name.to_string(), format!("g{name}")] {
            let is_gnu = Command::new(&candidate)
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU"));
            if is_gnu {
                return candidate;
            }
        }
        name.to_string()
    }
}

/// Runs `tool args... obj` and returns its standard output.
pub fn run(tool: Tool, args: &[&str], obj: &Path) -> Result<String, String> {
    let program = tool.program();
    let out = Command::new(&program)
        .args(args)
        .arg(obj)
        .output()
        .map_err(|e| format!("cannot run {program}: {e} (GNU binutils are needed)"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} {} failed ({}): {}",
            args.join(" "),
            obj.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{program}: output is not UTF-8: {e}"))
}

/// Demangles symbol names (Rust legacy and v0, C++) with `c++filt`, one
/// per line; names it does not know come back unchanged.
pub fn demangle(names: &[String]) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let program = Tool::Cxxfilt.program();
    let mut child = Command::new(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let input = names.join("\n") + "\n";
    let mut stdin = child.stdin.take().ok_or("c++filt: no stdin")?;
    // Write from another thread: c++filt answers line by line and could
    // fill its output pipe before reading all of its input.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    writer
        .join()
        .map_err(|_| "c++filt writer panicked".to_string())?
        .map_err(|e| format!("{program}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.len() != names.len() {
        return Err(format!(
            "{program} returned {} names for {}",
            lines.len(),
            names.len()
        ));
    }
    Ok(lines)
}
