//! The layer rule of ARCHITECTURE.md, checked: every top-level module of `src/` sits on a layer,
//! and may refer (`crate::<module>` anywhere in its code, `use` lines or paths) only to modules
//! on lower layers. A module missing from the table fails too, so a new module gets a place.
//! And the shape rule: no function over 60 lines, no file over 400, declarative tables aside.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top. A module may use only modules of a lower layer.
const LAYERS: &[&[&str]] = &[
    // Primitives: no crate imports at all.
    &["address", "crypto", "fault", "metrics", "serving", "tls", "uri"],
    // Configuration.
    &["config"],
    // The OP's session cookies as configured; storage, pages, logging.
    &["cookies", "render", "session", "telemetry"],
    // Who the clients are.
    &["clients"],
    // The upstream's keys and hint validation.
    &["oidc"],
    // Calls out: back-channel delivery, RFC 7009 revocation, the Shared Signals transmitter.
    &["backchannel", "revoke", "ssf"],
    // Learning and logout.
    &["learn", "logout"],
    // The listeners.
    &["admin", "proxy"],
    // The process around them: binding, reload, upgrade, signals.
    &["lifecycle"],
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

/// Most lines a function may have, and a file (ARCHITECTURE.md, "Shape").
const MAX_FN_LINES: usize = 60;
const MAX_FILE_LINES: usize = 400;

/// Declarative tables, exempt from the limits: the file format's serde structs with their
/// defaults, and the list of every metric.
const TABLES: &[&str] = &["config/raw.rs", "metrics.rs::register"];

/// `code` with the contents of comments, strings and character literals blanked (newlines
/// kept), so braces and `fn` inside them do not count.
fn blank_literals(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    let keep = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1).copied() == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1).copied() == Some('*') {
            while i < c.len() && !(c[i] == '*' && c.get(i + 1).copied() == Some('/')) {
                out.push(keep(c[i]));
                i += 1;
            }
            out.push_str("  ");
            i += 2;
        } else if c[i] == 'r'
            && (c.get(i + 1).copied() == Some('"') || c.get(i + 1).copied() == Some('#'))
            && !c[i.saturating_sub(1)].is_alphanumeric()
        {
            let hashes = c[i + 1..].iter().take_while(|ch| **ch == '#').count();
            if c.get(i + 1 + hashes) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let start = i + 2 + hashes;
            let body: String = c[start..].iter().collect();
            let end = body.find(&close).map(|e| start + body[..e].chars().count()).unwrap_or(c.len());
            out.push_str("r\"");
            for ch in &c[start..end] {
                out.push(keep(*ch));
            }
            out.push('"');
            i = end + close.chars().count();
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\''
            && (c.get(i + 2).copied() == Some('\'')
                || (c.get(i + 1).copied() == Some('\\') && c[i + 2..].iter().take(8).any(|x| *x == '\'')))
        {
            // A character literal ('x', '\n', '\u{7f}'); anything else after ' is a lifetime.
            let len = c[i + 1..].iter().position(|x| *x == '\'').map(|p| p + 2).unwrap_or(1);
            out.push_str("' '");
            out.extend(std::iter::repeat_n(' ', len.saturating_sub(3)));
            i += len;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// (name, first line, lines) of every function with a body in `code`, test modules left out.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let blank = blank_literals(code);
    let lines: Vec<&str> = blank.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        if l.starts_with("#[cfg(test)]") && lines.get(i + 1).is_some_and(|n| n.trim_start().starts_with("mod ")) {
            break;
        }
        let words: Vec<&str> =
            l.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        let is_fn = words.iter().position(|w| *w == "fn").is_some_and(|p| {
            words[..p]
                .iter()
                .all(|w| ["pub", "crate", "super", "async", "const", "unsafe", "extern", "in", "self"].contains(w))
        });
        if !is_fn {
            i += 1;
            continue;
        }
        let name = words.iter().skip_while(|w| **w != "fn").nth(1).unwrap_or(&"?").to_string();
        let (mut depth, mut opened, mut j) = (0i32, false, i);
        'scan: while j < lines.len() {
            for ch in lines[j].chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break 'scan,
                    _ => {}
                }
                if opened && depth == 0 {
                    break 'scan;
                }
            }
            j += 1;
        }
        if opened {
            out.push((name, i + 1, j - i + 1));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn functions_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let name = rel.rsplit('/').next().unwrap_or("");
        if ["tests.rs", "contract.rs", "testing.rs"].contains(&name) {
            continue; // test code
        }
        let code = std::fs::read_to_string(&file).unwrap();
        let n = code.lines().count();
        if n > MAX_FILE_LINES && !TABLES.contains(&rel.as_str()) {
            problems.push(format!("{rel}: {n} lines (at most {MAX_FILE_LINES})"));
        }
        for (f, line, len) in functions(&code) {
            if len > MAX_FN_LINES && !TABLES.contains(&format!("{rel}::{f}").as_str()) {
                problems.push(format!("{rel}:{line}: fn {f} has {len} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    assert!(problems.is_empty(), "too large (ARCHITECTURE.md, \"Shape\"):\n{}", problems.join("\n"));
}

#[test]
fn the_shape_checker_measures_functions_and_ignores_literals() {
    let code = "fn a() {\n    let s = \"}\";\n    let c = '{';\n    // }\n}\n\ntrait T {\n    fn b(&self);\n}\n\npub(crate) async fn c<'a>(x: &'a str) -> &'a str {\n    let r = r#\"{\"#;\n    x\n}\n#[cfg(test)]\nmod tests {\n    fn d() {}\n}\n";
    assert_eq!(functions(code), [("a".to_string(), 1, 5), ("c".to_string(), 11, 4)]);
}
