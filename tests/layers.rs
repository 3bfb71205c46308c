//! The layer rule of ARCHITECTURE.md, checked: every top-level module of `src/` sits on a layer,
//! and may refer (`crate::<module>` anywhere in its code, `use` lines or paths) only to modules
//! on lower layers. A module missing from the table fails too, so a new module gets a place.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top. A module may use only modules of a lower layer.
const LAYERS: &[&[&str]] = &[
    // Primitives: no crate imports at all.
    &["address", "crypto", "fault", "metrics", "uri"],
    // Configuration.
    &["config"],
    // The OP's session cookies as configured; storage, pages, logging.
    &["cookies", "render", "session", "telemetry"],
    // Who the clients are.
    &["clients"],
    // The upstream's keys and hint validation.
    &["oidc"],
    // Calls out: back-channel delivery, RFC 7009 revocation.
    &["backchannel", "revoke"],
    // Learning and logout.
    &["learn", "logout"],
    // The listeners.
    &["admin", "proxy"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `code` names as `crate::<module>`, comments left out.
fn references(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_only_use_modules_of_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue; // the root wires everything together
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let Some(own) = layer_of(&module) else {
            problems.entry(rel).or_default().push(format!("module `{module}` has no layer in tests/layers.rs"));
            continue;
        };
        let code = std::fs::read_to_string(&file).unwrap();
        for used in references(&code) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(l) if l < own => {}
                Some(l) => problems
                    .entry(rel.clone())
                    .or_default()
                    .push(format!("`{module}` (layer {own}) uses `crate::{used}` (layer {l}): not below it")),
                None => {
                    problems.entry(rel.clone()).or_default().push(format!("uses `crate::{used}`, which has no layer"))
                }
            }
        }
    }
    let report: Vec<String> = problems.iter().map(|(f, p)| format!("{f}:\n  {}", p.join("\n  "))).collect();
    assert!(report.is_empty(), "layer rule broken (ARCHITECTURE.md, \"Layers\"):\n{}", report.join("\n"));
}

#[test]
fn the_checker_sees_references() {
    let code = "use crate::proxy::route;\n// crate::logout in a comment\nlet x = crate::uri::decode(b\"\");";
    assert_eq!(references(code), ["proxy", "uri"]);
}
