//! Config errors: each with the path of the field it is about (`sources[2].checks[0].sql`),
//! and a report of them that stays readable whatever the input (long values and long lists
//! are cut, and say so).

use std::fmt;

/// One problem in a config file: where (a path such as `sources[1].checks[0].labels`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field; empty for the file as a whole.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Line and column (from 1) of the field in the file, where the YAML has one.
    pub at: Option<(usize, usize)>,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
            at: None,
        }
    }
}

/// Characters of a path or message shown: a hostile value (a 10 MB name) is echoed in part,
/// so the report stays readable.
const SHOWN_CHARS: usize = 500;

/// Errors listed in a report; the rest are counted.
const SHOWN_ERRORS: usize = 50;

/// `text`, cut at [`SHOWN_CHARS`] characters with a note of how much was left out.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => text.into(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut).into(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&shown(&self.message))?;
        } else {
            write!(f, "{}: {}", shown(&self.path), shown(&self.message))?;
        }
        match self.at {
            Some((line, column)) => write!(f, " (line {line}, column {column})"),
            None => Ok(()),
        }
    }
}

/// Every error found in one config file, reported together.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} config error(s):", self.0.len())?;
        for e in self.0.iter().take(SHOWN_ERRORS) {
            write!(f, "\n  - {e}")?;
        }
        if self.0.len() > SHOWN_ERRORS {
            write!(
                f,
                "\n  … and {} more; fix these first",
                self.0.len() - SHOWN_ERRORS
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_shows_enough_of_a_hostile_value_and_counts_the_rest() {
        let long = ConfigError::new(
            "sources[0].name",
            format!("{:?} is bad", "é".repeat(10_000)),
        );
        let text = long.to_string();
        assert!(text.chars().count() < 600, "{}", text.len());
        assert!(text.ends_with("more bytes)"), "{text}");
        let many = ConfigErrors(
            (0..60)
                .map(|i| ConfigError::new(format!("p{i}"), "x"))
                .collect(),
        );
        let text = many.to_string();
        assert!(text.starts_with("60 config error(s):"));
        assert!(text.contains("p49: x") && !text.contains("p50: x"));
        assert!(text.ends_with("… and 10 more; fix these first"), "{text}");
    }
}
