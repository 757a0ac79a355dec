//! Time windows relative to now in check arguments: `{{now}}`, `{{now-60s}}`, `{{now_ms-1h}}`.
//!
//! Config files stay valid day after day: a sliding-window count such as
//! `ZCOUNT ai:requests {{now-60s}} +inf` is expanded at every run. `now` is unix seconds,
//! `now_ms` unix milliseconds; the offset is any duration (`90s`, `5m`, `24h`, `7d`).

use std::time::{SystemTime, UNIX_EPOCH};

/// `text` with every `{{…}}` expression replaced by its value at `now`.
pub fn expand(text: &str, now: SystemTime) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!("unterminated time expression in {text:?}: close it with }}}}")
        })?;
        out.push_str(&eval(after[..end].trim(), now)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks every expression in `text` without needing a clock.
pub fn validate(text: &str) -> Result<(), String> {
    expand(text, SystemTime::now()).map(|_| ())
}

fn eval(expr: &str, now: SystemTime) -> Result<String, String> {
    let (base, millis) = if let Some(r) = expr.strip_prefix("now_ms") {
        (r, true)
    } else if let Some(r) = expr.strip_prefix("now") {
        (r, false)
    } else {
        return Err(format!(
            "unknown time expression {{{{{expr}}}}}: use {{{{now}}}}, {{{{now-5m}}}} or {{{{now_ms-1h}}}}"
        ));
    };
    let at = shift(now, base).map_err(|e| format!("time expression {{{{{expr}}}}}: {e}"))?;
    let at = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(if millis {
        at.as_millis().to_string()
    } else {
        at.as_secs().to_string()
    })
}

/// `now` moved by a signed offset: `-24h`, `+5m`, or nothing for now itself. Used by every
/// relative time window (Redis command templates, MongoDB `$now`).
pub fn shift(now: SystemTime, offset: &str) -> Result<SystemTime, String> {
    let text = offset.trim();
    let parse = |d: &str| {
        humantime::parse_duration(d.trim())
            .map_err(|e| format!("bad offset {text:?} ({e}); write e.g. -24h or +5m"))
    };
    if text.is_empty() {
        Ok(now)
    } else if let Some(d) = text.strip_prefix('-') {
        Ok(now.checked_sub(parse(d)?).unwrap_or(UNIX_EPOCH))
    } else if let Some(d) = text.strip_prefix('+') {
        now.checked_add(parse(d)?)
            .ok_or_else(|| format!("offset {text:?} is too large"))
    } else {
        Err(format!("offset {text:?} must start with - or +"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expands_relative_windows() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(expand("{{now}}", now).unwrap(), "1000000");
        assert_eq!(expand("({{ now-60s }} +inf", now).unwrap(), "(999940 +inf");
        assert_eq!(expand("{{now_ms-1s}}", now).unwrap(), "999999000");
        assert_eq!(expand("{{now+1h}}", now).unwrap(), "1003600");
        assert_eq!(expand("no template", now).unwrap(), "no template");
    }

    #[test]
    fn rejects_unknown_and_malformed() {
        assert!(validate("{{today}}")
            .unwrap_err()
            .contains("unknown time expression"));
        assert!(validate("{{now*2}}").is_err());
        assert!(validate("{{now-5x}}").unwrap_err().contains("bad offset"));
        assert!(validate("{{now").unwrap_err().contains("unterminated"));
        // A pasted Unicode minus or an absurd offset is an error, never a panic.
        assert!(validate("{{now\u{2212}24h}}").is_err());
        assert!(validate("{{now€}}").is_err());
        assert!(validate("{{now+100000000000000000000y}}").is_err());
        // A pasted Unicode minus or an absurd offset is an error, never a panic.
        assert!(validate("{{now\u{2212}24h}}").is_err());
        assert!(validate("{{now€}}").is_err());
        assert!(validate("{{now+100000000000000000000y}}").is_err());
    }
}
