//! Page languages: the translations in `templates/locales/`, and which one a request gets
//! (`ui_locales`, then `Accept-Language`, then English).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Pages, DEFAULT_LANG};

impl Pages {
    /// The page language: the first of `ui_locales` (space-separated BCP47 tags, preferred
    /// first) with a translation, else the browser's `Accept-Language` by weight, else English.
    /// A tag matches exactly or by its primary subtag.
    pub(crate) fn pick_lang<'a>(&'a self, ui_locales: Option<&str>, accept_language: Option<&str>) -> &'a str {
        let asked = ui_locales.unwrap_or("").split(' ').filter(|t| !t.is_empty()).take(16);
        asked.chain(accepted(accept_language.unwrap_or(""))).find_map(|t| self.translation(t)).unwrap_or(DEFAULT_LANG)
    }

    /// The translation a language tag asks for, exactly or by its primary subtag.
    fn translation<'a>(&'a self, tag: &str) -> Option<&'a str> {
        let tag = tag.to_ascii_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        for cand in [tag.as_str(), primary] {
            if let Some((k, _)) = self.locales.get_key_value(cand) {
                return Some(k.as_str());
            }
        }
        None
    }
}

/// The language ranges of an `Accept-Language` header, highest weight first (equal weights in
/// header order); `*` and weight 0 left out, at most 16 read.
fn accepted(header: &str) -> impl Iterator<Item = &str> {
    let mut ranges: Vec<(u16, usize, &str)> = Vec::new();
    for (i, part) in header.split(',').take(16).enumerate() {
        let mut fields = part.split(';');
        let tag = fields.next().unwrap_or("").trim();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q=").or_else(|| f.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if !tag.is_empty() && tag != "*" && q > 0.0 && q <= 1.0 {
            ranges.push(((q * 1000.0) as u16, i, tag));
        }
    }
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().map(|(_, _, t)| t)
}

pub(super) fn load_locales(dir: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(lang) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        out.insert(lang.to_ascii_lowercase(), map);
    }
    let en = out.get(DEFAULT_LANG).cloned().ok_or_else(|| format!("{}: missing {DEFAULT_LANG}.json", dir.display()))?;
    for map in out.values_mut() {
        for (k, v) in &en {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(out)
}
