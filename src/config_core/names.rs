//! Prometheus naming rules for metric names, label names and our source names.

/// True when `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True when `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, and not
/// starting with `__`, which Prometheus reserves for itself.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    !name.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `name` is a usable source or check name: non-empty, at most 64 characters of
/// `[A-Za-z0-9_.:-]`, so it reads well as a label value and in logs.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Labels that pulse-exporter puts on its own metrics; user checks may not define them on
/// built-in metric families, and they read as confusing on business metrics too.
pub const RESERVED_LABELS: [&str; 3] = ["source", "check", "kind"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        assert!(is_metric_name("app_users"));
        assert!(is_metric_name("app:users_total"));
        assert!(!is_metric_name("1app"));
        assert!(!is_metric_name("app-users"));
        assert!(!is_metric_name(""));
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("plan"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("__name__"));
        assert!(!is_label_name("a:b"));
        assert!(!is_label_name("9x"));
    }

    #[test]
    fn object_names() {
        assert!(is_object_name("app-db.eu_1"));
        assert!(!is_object_name("app db"));
        assert!(!is_object_name(""));
    }
}
