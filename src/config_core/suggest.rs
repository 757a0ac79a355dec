//! "Did you mean": the closest of the names a place takes to a misspelt one, for the errors
//! of unknown fields and kinds.

/// The candidate closest to `word` by edit distance (a swap of two letters counts once),
/// when it is close enough to be the likely intent: at most one edit in a word of four
/// letters or fewer, two in a longer one, and never the word itself.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase());
            (d, c)
        })
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `message` with "; did you mean `x`?" added when it reports an unknown field or variant
/// (serde's "unknown field `lables`, expected one of `labels`, …" and the messages built on
/// it) and one of the names it lists is close to the unknown one.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
    else {
        return message.to_owned();
    };
    let Some((word, listed)) = rest.split_once('`') else {
        return message.to_owned();
    };
    // Every backticked name after the unknown one is a name the place takes.
    let names = listed.split('`').skip(1).step_by(2);
    match closest(word, names) {
        Some(c) => format!("{message}; did you mean `{c}`?"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_is_suggested_and_a_far_one_is_not() {
        assert_eq!(
            closest("lables", ["labels", "values", "value_label"]),
            Some("labels")
        );
        assert_eq!(
            closest("postgress", ["postgres", "redis"]),
            Some("postgres")
        );
        assert_eq!(closest("colour", ["url", "tls", "latency"]), None);
        assert_eq!(closest("sql", ["sql"]), None);
        assert_eq!(
            with_suggestion("unknown field `lables`, expected one of `labels`, `values`"),
            "unknown field `lables`, expected one of `labels`, `values`; did you mean `labels`?"
        );
        assert_eq!(
            with_suggestion("unknown field `intervall`, expected `interval`, or one of `name`"),
            "unknown field `intervall`, expected `interval`, or one of `name`; did you mean `interval`?"
        );
        assert_eq!(
            with_suggestion("unknown field `zzz`, expected one of `labels`"),
            "unknown field `zzz`, expected one of `labels`"
        );
        assert_eq!(with_suggestion("must be a list"), "must be a list");
    }
}
