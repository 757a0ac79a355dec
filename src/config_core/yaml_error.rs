//! What a YAML syntax error means to the person who wrote the file: the parser's own words,
//! the key it stopped in, and the likely fix (a tab, an indentation, a value that needs
//! quotes), since the parser's text alone names neither.

/// The message for a file that is not valid YAML: the parser's error, then where it stopped
/// (the keys leading to the line) and what usually causes that error.
pub fn explain(text: &str, error: &serde_yaml::Error) -> String {
    let raw = error.to_string();
    let Some(at) = error.location() else {
        return format!("invalid YAML: {raw}");
    };
    let line = at.line();
    let mut out = format!("invalid YAML: {raw}");
    if let Some(path) = keys_before(text, line) {
        out.push_str(&format!(" (in `{path}`)"));
    }
    if let Some(hint) = hint(text, line, &raw) {
        out.push_str(": ");
        out.push_str(hint);
    }
    out
}

/// The keys enclosing line `line` (1-based), outermost first, as the config's errors write
/// them (`sources[1].checks[0].sql`): each is the nearest line above with less indentation
/// that starts a `key:`; a key holding a list gets the index of the item the line is in.
fn keys_before(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let last = line.min(lines.len());
    let mut keys = Vec::new();
    let mut bound = usize::MAX;
    // The column of the `- ` starting the list item the keys so far are in, and how many
    // items of that list start at or above the line.
    let mut item: Option<(usize, usize)> = None;
    for l in lines[..last].iter().rev() {
        let trimmed = l.trim_start_matches(' ');
        let spaces = l.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            item = match item {
                Some((column, n)) if column == spaces => Some((column, n + 1)),
                None if spaces < bound => Some((spaces, 1)),
                other => other,
            };
        }
        let body = l.trim_start_matches([' ', '-']);
        let indent = l.len() - body.len();
        if indent >= bound {
            continue;
        }
        if let Some(key) = key_of(body) {
            match item {
                Some((column, n)) if indent <= column => {
                    keys.push(format!("{key}[{}]", n - 1));
                    item = None;
                }
                _ => keys.push(key.to_owned()),
            }
            bound = indent;
            if indent == 0 {
                break;
            }
        }
    }
    keys.reverse();
    (!keys.is_empty()).then(|| keys.join("."))
}

/// The key a line starts, when it starts one (`name:`, `"a b":`).
fn key_of(body: &str) -> Option<&str> {
    let (key, _) = body.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '));
    plain.then_some(key)
}

/// The likely fix for the parser's error `raw` at line `line`.
fn hint(text: &str, line: usize, raw: &str) -> Option<&'static str> {
    let near = text.lines().skip(line.saturating_sub(2)).take(2).any(|l| {
        l.chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
    });
    if near || raw.contains("tab") {
        return Some("YAML does not allow tabs in indentation: indent with spaces");
    }
    if raw.contains("mapping values are not allowed") {
        return Some("a value holding `: ` must be quoted (`sql: \"SELECT …\"`), or the line is indented deeper than its key expects");
    }
    if raw.contains("did not find expected key")
        || raw.contains("did not find expected '-' indicator")
        || raw.contains("could not find expected ':'")
    {
        return Some("check the indentation: each field of an item lines up under the first, and an item of a list starts with `- `");
    }
    if raw.contains("found character that cannot start any token") {
        return Some("a value starting with `@`, a backtick, `%` or a tab must be quoted");
    }
    if raw.contains("found undefined tag handle") || raw.contains("found unknown anchor") {
        return Some("a value starting with `!` or `*` must be quoted");
    }
    if raw.contains("duplicate") {
        return Some("a key is written twice in the same mapping: keep one");
    }
    if raw.contains("found unexpected end of stream") || raw.contains("did not find expected") {
        return Some("a quote or bracket is not closed");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        let e = serde_yaml::from_str::<serde_yaml::Value>(text).unwrap_err();
        explain(text, &e)
    }

    /// Each common mistake is named with the key it is in and its fix.
    #[test]
    fn syntax_errors_name_their_key_and_fix() {
        let tab = "sources:\n  - name: db\n\tkind: postgres\n";
        let m = message(tab);
        assert!(m.contains("tabs in indentation"), "{m}");
        let colon = "sources:\n  - name: db\n    kind: postgres\n    checks:\n      - metric: app_users\n        sql: SELECT a: b FROM t\n";
        let m = message(colon);
        assert!(m.contains("(in `sources[0].checks[0].sql`)"), "{m}");
        assert!(m.contains("must be quoted"), "{m}");
        let indent = "sources:\n  - name: db\n    kind: postgres\n   url: x\n";
        let m = message(indent);
        assert!(m.contains("check the indentation"), "{m}");
        assert!(m.starts_with("invalid YAML: "), "{m}");
        let at = "sources:\n  - name: @db\n";
        let m = message(at);
        assert!(m.contains("must be quoted"), "{m}");
        assert!(m.contains("(in `sources[0].name`)"), "{m}");
        // The index counts the items above, of that list only; a compact list too.
        let second = "sources:\n  - name: a\n    checks:\n      - metric: x\n  - name: b\n    checks:\n      - metric: y\n      - metric: z\n        sql: SELECT a: b\n";
        let m = message(second);
        assert!(m.contains("(in `sources[1].checks[1].sql`)"), "{m}");
        let compact = "sources:\n- name: a\n- name: b\n  url: x: y\n";
        let m = message(compact);
        assert!(m.contains("(in `sources[1].url`)"), "{m}");
    }
}
