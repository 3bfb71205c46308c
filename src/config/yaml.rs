//! From YAML text to [`RawConfig`], collecting every problem instead of stopping at the first.
//!
//! Three passes: parse the text into a YAML value; replace `${NAME}` in every string with the
//! environment variable NAME (the environment is injected, so tests never touch the process
//! environment); deserialize with serde. serde stops at the first unknown key or wrong type, so
//! after each such error the offending key is removed and deserialization runs again, up to a
//! bound: `check` then lists every unknown key at once. A separate event scan of the text maps
//! key paths to line numbers, so problems found later by validation get a line too.

use std::collections::{HashMap, HashSet};

use serde_yaml_ng::{Mapping, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::raw::RawConfig;
use super::{Problem, Problems};

/// Where each key path (`upstream.url`, `clients.rp1.post_logout_redirect_uris[0]`) starts.
#[derive(Debug, Default)]
pub(super) struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// The line of `path`, or of its closest ancestor that has one.
    pub(super) fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    fn build(text: &str) -> Self {
        let mut rx = IndexBuilder::default();
        let mut parser = Parser::new_from_str(text);
        // A syntax error here is reported by serde_yaml_ng with its own location.
        let _ = parser.load(&mut rx, false);
        LineIndex { lines: rx.lines }
    }
}

enum Frame {
    Map { expect_key: bool, key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct IndexBuilder {
    stack: Vec<Frame>,
    path: Vec<String>,
    lines: HashMap<String, usize>,
}

impl IndexBuilder {
    /// Called when a value (scalar or collection) starts: names it in the path.
    fn value_starts(&mut self) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Map { key, .. } => key.take(),
            Frame::Seq { next } => {
                let seg = format!("[{next}]");
                *next += 1;
                Some(seg)
            }
        }
    }

    fn joined(&self, last: &str) -> String {
        let mut out = String::new();
        for seg in self.path.iter().map(String::as_str).chain(std::iter::once(last)) {
            if !out.is_empty() && !seg.starts_with('[') {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    fn after_value(&mut self) {
        if let Some(Frame::Map { expect_key, .. }) = self.stack.last_mut() {
            *expect_key = true;
        }
    }
}

impl MarkedEventReceiver for IndexBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(Frame::Map { expect_key: ek @ true, key }) = self.stack.last_mut() {
                    *ek = false;
                    *key = Some(text.clone());
                    let full = self.joined(&text);
                    self.lines.entry(full).or_insert(mark.line());
                    // Keep the key for the value that follows.
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(text);
                    }
                    return;
                }
                if let Some(seg) = self.value_starts() {
                    let full = self.joined(&seg);
                    self.lines.entry(full).or_insert(mark.line());
                }
                self.after_value();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let seg = self.value_starts();
                if let Some(seg) = &seg {
                    let full = self.joined(seg);
                    self.lines.entry(full).or_insert(mark.line());
                }
                self.path.push(seg.unwrap_or_default());
                let is_map = matches!(ev, Event::MappingStart(..));
                self.stack.push(if is_map {
                    Frame::Map { expect_key: true, key: None }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.path.pop();
                self.after_value();
            }
            Event::Alias(..) => {
                self.value_starts();
                self.after_value();
            }
            _ => {}
        }
    }
}

/// Parse YAML text into the raw model. `env` answers `${NAME}` look-ups.
/// Returns the raw config when the file's shape allowed one (after dropping offending keys), and
/// every problem found so far; the caller validates the raw config and adds its problems.
pub(super) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<RawConfig>, Vec<Problem>, LineIndex), Problems> {
    let index = LineIndex::build(text);
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        Problems(vec![Problem { path: String::new(), line, message: format!("not valid YAML: {e}") }])
    })?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    let mut problems = Vec::new();
    super::interpolate::interpolate(&mut value, &mut String::new(), env, &mut problems);
    for p in &mut problems {
        p.line = index.line_of(&p.path);
    }

    let mut removed: HashSet<String> = HashSet::new();
    // Each round removes one offending key; a file with more problems than this is not worth listing.
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, RawConfig>(value.clone()) {
            Ok(raw) => return Ok((Some(raw), problems, index)),
            Err(err) => {
                let path = err.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let message = err.inner().to_string();
                let missing = message.starts_with("missing field");
                // A required key we removed ourselves: its real problem is already listed.
                let echo = missing && removed.iter().any(|r| message.contains(&format!("`{}`", leaf(r))));
                if !echo {
                    problems.push(Problem { line: index.line_of(&path), path: path.clone(), message });
                }
                if missing || path.is_empty() || !remove_path(&mut value, &path) {
                    return Ok((None, problems, index));
                }
                removed.insert(path);
            }
        }
    }
    Ok((None, problems, index))
}

fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Remove the value at a serde_path_to_error path (`a.b[2].c`). Returns false if not found.
fn remove_path(value: &mut Value, path: &str) -> bool {
    let segs = split_path(path);
    let Some((last, parents)) = segs.split_last() else { return false };
    let mut cur = value;
    for seg in parents {
        let next = match (cur, seg) {
            (Value::Mapping(m), Seg::Key(k)) => m.get_mut(k.as_str()),
            (Value::Sequence(s), Seg::Index(i)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return false,
        }
    }
    match (cur, last) {
        (Value::Mapping(m), Seg::Key(k)) => m.remove(k.as_str()).is_some(),
        (Value::Sequence(s), Seg::Index(i)) if *i < s.len() => {
            s[*i] = Value::Null;
            true
        }
        _ => false,
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::interpolate::tests::env;

    #[test]
    fn line_index_maps_nested_paths() {
        let text = "listen: x\nupstream:\n  url: u\n  session_cookies:\n    - a\n    - b\nclients:\n  rp1:\n    post_logout_redirect_uris: [\"p\", \"q\"]\n";
        let idx = LineIndex::build(text);
        assert_eq!(idx.line_of("listen"), Some(1));
        assert_eq!(idx.line_of("upstream.url"), Some(3));
        assert_eq!(idx.line_of("upstream.session_cookies[1]"), Some(6));
        assert_eq!(idx.line_of("clients.rp1.post_logout_redirect_uris[1]"), Some(9));
        assert_eq!(idx.line_of("clients.rp1.nothing"), Some(8));
    }

    #[test]
    fn every_unknown_key_is_listed_with_its_line() {
        let text = "issuer: https://op.example\nupstream:\n  url: http://127.0.0.1:1\n  bogus: 1\nlisten_typo: x\njwks:\n  refresh: 1m\n";
        let (_, err, _) = parse(text, &env).unwrap();
        let paths: Vec<_> = err.iter().map(|p| (p.path.as_str(), p.line)).collect();
        assert!(paths.contains(&("upstream.bogus", Some(4))), "{paths:?}");
        assert!(paths.contains(&("listen_typo", Some(5))), "{paths:?}");
        assert!(paths.contains(&("jwks.refresh", Some(7))), "{paths:?}");
        assert!(err.iter().all(|p| p.message.contains("unknown field")), "{err:?}");
    }

    #[test]
    fn unset_variable_is_reported_at_its_key() {
        let text =
            "issuer: https://op.example\nupstream:\n  url: http://127.0.0.1:1\nadmin:\n  token: \"${MISSING}\"\n";
        let (raw, err, _) = parse(text, &env).unwrap();
        assert!(raw.is_some());
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].path, "admin.token");
        assert_eq!(err[0].line, Some(5));
        assert!(err[0].message.contains("MISSING"));
    }

    #[test]
    fn wrong_type_and_missing_required_key() {
        let (raw, err, _) = parse("upstream:\n  url: http://127.0.0.1:1\n  session_cookies: 3\n", &env).unwrap();
        assert!(raw.is_none());
        let msgs: Vec<_> = err.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        assert!(msgs.iter().any(|m| m.starts_with("upstream.session_cookies: invalid type")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("missing field `issuer`")), "{msgs:?}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse("upstream:\n  url: [unclosed\n", &env).unwrap_err();
        assert!(err.0[0].line.is_some());
        assert!(err.0[0].message.contains("not valid YAML"));
    }
}
