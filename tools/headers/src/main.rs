//! `cargo run -p vmm-gpt-headers [-- --check]`: writes the generated headers
//! over the checked-in ones (only those that changed), or with `--check`
//! lists the stale ones and exits 1 (as `cbindgen --verify` would).

use std::fs;
use std::process::exit;

fn main() {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(_) => {
            eprintln!("usage: vmm-gpt-headers [--check]");
            exit(2);
        }
    };
    let root = vmm_gpt_headers::root();
    let result = if check {
        vmm_gpt_headers::stale(&root).map(|stale| {
            for p in &stale {
                println!("stale: {p} (run `cargo run -p vmm-gpt-headers`)");
            }
            if !stale.is_empty() {
                exit(1);
            }
            println!("headers are fresh");
        })
    } else {
        vmm_gpt_headers::generate(&root).map(|headers| {
            for h in headers {
                let path = root.join(h.path);
                if fs::read_to_string(&path).ok().as_deref() == Some(h.text.as_str()) {
                    println!("unchanged: {}", h.path);
                } else {
                    fs::write(&path, &h.text).unwrap_or_else(|e| {
                        eprintln!("{}: {e}", path.display());
                        exit(1)
                    });
                    println!("wrote: {}", h.path);
                }
            }
        })
    };
    if let Err(e) = result {
        eprintln!("vmm-gpt-headers: {e}");
        exit(1);
    }
}
