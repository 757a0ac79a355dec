//! The process-wide list of secret strings, and scrubbing them out of any text.
//!
//! Every value that came from `${env:…}` or `${file:…}` and every password found in a
//! connection URL is registered here when the config loads. Log lines pass through
//! [`ScrubbingWriter`], and every [`crate::series::run_error::RunError`] message through [`scrub`], so a
//! secret that leaks into a driver's error text still never reaches a log, a page or a label.

use crate::sync::RwLockExt;
use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::RwLock;

/// Values shorter than this are not treated as secrets: masking every `1` or `db` in the
/// logs would destroy them, and such short values are not credentials anyone should use.
pub const MIN_SECRET_LEN: usize = 4;

/// What a secret is replaced with.
pub const MASK: &str = "<redacted>";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret to scrub from now on (ignored when shorter than
/// [`MIN_SECRET_LEN`]). Secrets are never forgotten: a reload may drop a value from the
/// config while old log lines or errors could still carry it.
pub fn register(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    // JSON logs and `{:?}` formatting escape quotes and backslashes, so the escaped form of a
    // secret is registered too; otherwise it would no longer match once written.
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    let mut list = SECRETS.write_locked();
    for form in [value.to_owned(), escaped] {
        if !list.contains(&form) {
            list.push(form);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let list = SECRETS.read_locked();
    if !list.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// A URL for display: the password (and any query string, which often holds one) removed.
/// Text that does not parse as a URL is shown as `<unparsable url>` rather than risk it.
pub fn display_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

/// Registers the passwords of a connection URL, raw and percent-decoded, as secrets: the one
/// in its user info and any `password=` query parameter. The user info is read by hand, since
/// multi-host URLs (`mongodb://u:p@h1,h2/db`) are not URLs to a strict parser.
pub fn register_url_password(raw: &str) {
    let mut found = Vec::new();
    if let Some((_, rest)) = raw.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                found.push(pw.to_owned());
            }
        }
    }
    if let Some((_, query)) = raw.split_once('?') {
        for pair in query.split('&') {
            if let Some(("password" | "sslpassword", v)) = pair.split_once('=') {
                found.push(v.to_owned());
            }
        }
    }
    for pw in found {
        register(&pw);
        if let Ok(decoded) = percent_encoding::percent_decode_str(&pw).decode_utf8() {
            register(&decoded);
        }
    }
}

/// A log writer that scrubs secrets from every line before it reaches the real writer.
/// tracing-subscriber's fmt layer formats a whole event and writes it in one call, so
/// scrubbing per write sees whole lines.
pub struct ScrubbingWriter<W>(pub W);

impl<W: Write> Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => {
                self.0.write_all(scrub(text).as_bytes())?;
                Ok(buf.len())
            }
            Err(_) => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_registered_values_longest_first() {
        register("s3cr3t-pass");
        register("s3cr3t");
        assert_eq!(scrub("auth s3cr3t-pass failed"), "auth <redacted> failed");
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("ab");
        assert_eq!(scrub("ab cd"), "ab cd");
    }

    #[test]
    fn display_url_drops_password_and_query() {
        assert_eq!(
            display_url("postgres://app:hunter22@db:5432/app?password=x"),
            "postgres://app@db:5432/app"
        );
        assert_eq!(display_url("not a url"), "<unparsable url>");
    }

    #[test]
    fn escaped_forms_and_multi_host_and_query_passwords() {
        register(r#"pa"ss\word1"#);
        assert_eq!(
            scrub(r#"{"err":"pa\"ss\\word1"}"#),
            r#"{"err":"<redacted>"}"#
        );
        register_url_password("mongodb://app:MultiHostPw9@h1:27017,h2:27017/app");
        assert_eq!(scrub("auth MultiHostPw9"), "auth <redacted>");
        register_url_password("postgres://h/db?user=app&password=QueryPw77");
        assert_eq!(scrub("QueryPw77"), "<redacted>");
    }

    #[test]
    fn url_passwords_are_registered_decoded_too() {
        register_url_password("redis://:p%40ssword9@127.0.0.1:6379");
        assert_eq!(scrub("x p@ssword9 y"), "x <redacted> y");
        assert_eq!(scrub("x p%40ssword9 y"), "x <redacted> y");
    }
}
