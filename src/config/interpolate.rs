//! `${NAME}` and `${file:/path}` in proxy.yaml's string values: secrets from the environment
//! or from files (container secrets, systemd credentials), replaced before validation. Each
//! problem names the key it was found at.

use serde_yaml_ng::Value;

use super::Problem;

pub(super) fn interpolate(
    value: &mut Value,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(s) => match expand(s, env) {
            Ok(new) => *s = new,
            Err(message) => problems.push(Problem { path: path.clone(), line: None, message }),
        },
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                interpolate(v, path, env, problems);
                path.truncate(len);
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate(v, path, env, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Replace `${NAME}` with the variable's value and `${file:/path}` with that file's content
/// (without its final newline); `$${` stands for a literal `${`.
pub(super) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = t;
        } else if let Some(t) = tail.strip_prefix("${") {
            let end = t.find('}').ok_or_else(|| "unterminated ${ in value".to_string())?;
            let name = &t[..end];
            if let Some(path) = name.strip_prefix("file:") {
                out.push_str(&secret_file(path)?);
                rest = &t[end + 1..];
                continue;
            }
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("invalid variable name in ${{{name}}}"));
            }
            let v = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&v);
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A secret file's content without its final newline (`echo` and editors add one).
fn secret_file(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("${{file:{path}}}: the path must be absolute"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("${{file:{path}}}: cannot read: {e}"))?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok(text.to_string())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The environment the config tests see (also used by `yaml.rs`'s).
    pub(in crate::config) fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expand_replaces_known_and_rejects_unknown() {
        assert_eq!(expand("a-${TOKEN}-b", &env).unwrap(), "a-s3cret-b");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost $5 and $${TOKEN}", &env).unwrap(), "cost $5 and ${TOKEN}");
        assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE is not set"));
        assert!(expand("${TOKEN", &env).unwrap_err().contains("unterminated"));
        assert!(expand("${1X}", &env).unwrap_err().contains("invalid variable name"));
    }

    #[test]
    fn secrets_come_from_files_without_their_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "s3cret\n").unwrap();
        let p = f.display().to_string();
        assert_eq!(expand(&format!("pre-${{file:{p}}}-post"), &env).unwrap(), "pre-s3cret-post");
        std::fs::write(&f, "two\nlines\r\n").unwrap();
        assert_eq!(expand(&format!("${{file:{p}}}"), &env).unwrap(), "two\nlines");
        assert!(expand("${file:relative/secret}", &env).unwrap_err().contains("must be absolute"));
        let missing = expand(&format!("${{file:{p}.nope}}"), &env).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
