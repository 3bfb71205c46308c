//! Names the commit the binary is built from (`--version`, `logout_gateway_build_info`):
//! `LGW_COMMIT` from the environment (a packager's build), else `git rev-parse`, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LGW_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let commit = std::env::var("LGW_COMMIT").ok().filter(|c| !c.is_empty()).or_else(git_head);
    println!("cargo:rustc-env=LGW_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}

fn git_head() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    let c = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !c.is_empty()).then_some(c)
}
