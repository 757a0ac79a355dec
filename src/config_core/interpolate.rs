//! `${env:NAME}` and `${file:PATH}` references in any string value of the config.
//!
//! Every substituted value is registered as a secret (see [`crate::secrets`]), so a password
//! read this way is scrubbed from every log line and error message. `$${` writes a literal `${`.
//!
//! An environment variable's value may itself hold `${file:PATH}` references, resolved when it
//! is read: a container runtime can then pass a URL whose password stays in a secret file
//! (`PULSE_POSTGRES_URL='postgres://app:${file:/run/secrets/pg}@db/app'`), so the password is
//! in neither the environment nor the process table. Nothing else in a value is interpreted.

use serde_yaml::Value;

use super::ConfigError;

/// Replaces references in every string of `value` (keys excluded), recording one error per
/// bad reference with the path where it stands.
pub fn interpolate(value: &mut Value, path: &str, errors: &mut Vec<ConfigError>) {
    walk(value, path, errors, &mut |_, text| expand(text));
}

/// What stands for a reference left unresolved by [`leave_unresolved`].
pub const UNRESOLVED: &str = "unresolved-reference";

/// Replaces every reference in `value` with [`UNRESOLVED`] without reading any variable or
/// file, and records the path of each string that held one: for the commands that write no
/// secret (`rules`, `dashboards`, `scrape-config`), which must run where the secrets are not
/// (CI, a laptop). `${env:NAME:-default}` takes its default instead, since a default is
/// config text, not a secret: a Redis key built on a prefix variable is then the key the
/// default names in the generated rules and panels, not a placeholder. A malformed reference
/// is still an error.
pub fn leave_unresolved(
    value: &mut Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    unresolved: &mut Vec<String>,
) {
    walk(value, path, errors, &mut |at, text| {
        let mut any = false;
        let out = substitute(text, Refs::All, &mut |reference| match reference
            .strip_prefix("env:")
            .and_then(|r| r.split_once(":-"))
        {
            Some((_, default)) => Ok(default.to_owned()),
            None => {
                any = true;
                Ok(UNRESOLVED.to_owned())
            }
        })?;
        if any {
            unresolved.push(at.to_owned());
        }
        Ok(out)
    });
}

/// Applies `each` to every string of `value` that holds a `$` (keys excluded), with its path.
fn walk(
    value: &mut Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    each: &mut dyn FnMut(&str, &str) -> Result<String, String>,
) {
    match value {
        Value::String(s) if s.contains('$') => match each(path, s) {
            Ok(expanded) => *s = expanded,
            Err(message) => errors.push(ConfigError::new(path, message)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), errors, each);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = key
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "?".into());
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                walk(item, &child, errors, each);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, errors, each),
        _ => {}
    }
}

/// `text` with its references resolved, or a message saying which one failed and how to fix it.
pub fn expand(text: &str) -> Result<String, String> {
    substitute(text, Refs::All, &mut resolve)
}

/// `value` with every `${file:PATH}` replaced by that file's content (registered as a
/// secret); everything else, other `$` sequences included, is kept as it is. For values that
/// come from outside the config: environment variables, and the demo's connection flags.
pub fn expand_files(value: &str) -> Result<String, String> {
    substitute(value, Refs::FilesOnly, &mut resolve)
}

/// The secret files a config text reads when loaded: its `${file:PATH}` references, and
/// those in the values of the environment variables it references, in order. Reads none of
/// them (the config watcher digests them to notice a rotated secret).
pub fn secret_files(text: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    fn file(reference: &str, files: &mut Vec<std::path::PathBuf>) {
        if let Some(path) = reference.strip_prefix("file:") {
            files.push(path.into());
        }
    }
    // Walked with the loader's own grammar; what it would fail on ends the walk early, and
    // the load reports it.
    let _ = substitute(text, Refs::All, &mut |reference| {
        file(reference, &mut files);
        if let Some(spec) = reference.strip_prefix("env:") {
            let name = spec.split_once(":-").map_or(spec, |(name, _)| name);
            let value = std::env::var(name).unwrap_or_default();
            let _ = substitute(&value, Refs::FilesOnly, &mut |r| {
                file(r, &mut files);
                Ok(String::new())
            });
        }
        Ok(String::new())
    });
    files
}

/// The references a text may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refs {
    /// Config text: `${env:…}`, `${file:…}`, and `$${` for a literal `${`.
    All,
    /// A value from outside the config: only `${file:…}`; every other `$` is literal.
    FilesOnly,
}

/// The one walk over `text` that [`expand`], [`expand_files`] and [`secret_files`] share:
/// `resolve` gets the inside of each reference (`env:NAME`, `file:PATH`).
fn substitute(
    text: &str,
    refs: Refs,
    resolve: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let opens = match refs {
            Refs::All => tail.starts_with("${"),
            Refs::FilesOnly => tail.starts_with("${file:"),
        };
        if let (Refs::All, Some(after)) = (refs, tail.strip_prefix("$${")) {
            out.push_str("${");
            rest = after;
        } else if opens {
            let after = &tail["${".len()..];
            let end = after.find('}').ok_or_else(|| {
                format!("unterminated reference `${{{after}`: close it with `}}`")
            })?;
            out.push_str(&resolve(&after[..end])?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Largest secret file read (64 KiB): a password, token or certificate is far smaller, and a
/// reference to the wrong file (a log, `/dev/zero`) must fail rather than fill memory.
pub(crate) const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads a secret file: a regular file (a FIFO or device such as `/dev/stdin` would block or
/// never end) of at most [`MAX_SECRET_BYTES`], in UTF-8.
fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "larger than {} KiB, which no secret is: is it the right file?",
            MAX_SECRET_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

fn resolve(reference: &str) -> Result<String, String> {
    let value = if let Some(spec) = reference.strip_prefix("env:") {
        // `${env:NAME:-default}`: the default is config text, not a secret, so it is not
        // registered for scrubbing (a default URL would otherwise mask itself in every log).
        let (name, default) = match spec.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (spec, None),
        };
        // An empty value counts as unset where a default is given.
        let set = std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty() || default.is_none());
        match (set, default) {
            (Some(v), _) => expand_files(&v)
                .map_err(|e| format!("environment variable {name} (from ${{env:{name}}}): {e}"))?,
            (None, Some(default)) => return Ok(default.to_owned()),
            (None, None) => {
                return Err(format!("environment variable {name} (from ${{env:{name}}}) is not set; export it, give a default with ${{env:{name}:-value}}, or change the reference"))
            }
        }
    } else if let Some(path) = reference.strip_prefix("file:") {
        let raw = read_secret_file(path)
            .map_err(|e| format!("cannot read secret file {path} (from ${{file:{path}}}): {e}"))?;
        // Secret files usually end with a newline that is not part of the secret.
        raw.strip_suffix("\r\n")
            .or_else(|| raw.strip_suffix('\n'))
            .unwrap_or(&raw)
            .to_owned()
    } else {
        return Err(format!(
            "unknown reference ${{{reference}}}: use ${{env:NAME}} or ${{file:PATH}} (write $${{ for a literal ${{)"
        ));
    };
    crate::secrets::register(&value);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generators read no secret, but a default is config text: it stands in the
    /// generated output, where a reference without one is a placeholder.
    #[test]
    fn an_unresolved_load_takes_defaults_and_reads_no_variable() {
        std::env::set_var("PULSE_TEST_UNRESOLVED_SET", "from-the-environment:");
        let mut v: Value = serde_yaml::from_str(
            "a: '${env:PULSE_TEST_UNRESOLVED_SET:-p:}q'\nb: '${env:PULSE_TEST_UNRESOLVED_SET}'\nc: '${file:/nonexistent}'\n",
        )
        .unwrap();
        let (mut errors, mut unresolved) = (Vec::new(), Vec::new());
        leave_unresolved(&mut v, "", &mut errors, &mut unresolved);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(v["a"].as_str(), Some("p:q"));
        assert_eq!(v["b"].as_str(), Some(UNRESOLVED));
        assert_eq!(v["c"].as_str(), Some(UNRESOLVED));
        assert_eq!(unresolved, ["b", "c"]);
    }

    #[test]
    fn secret_files_are_the_file_references_the_loader_would_read() {
        std::env::set_var(
            "PULSE_TEST_SECRET_FILES_URL",
            "redis://:${file:/run/secrets/redis}@cache/$5",
        );
        let text = "a: postgres://app:${file:/run/secrets/pg}@db\n\
                    b: $${file:/literal}\n\
                    c: ${env:PULSE_TEST_SECRET_FILES_URL:-redis://cache}\n\
                    d: ${env:PULSE_TEST_SECRET_FILES_UNSET:-x}\n";
        assert_eq!(
            secret_files(text),
            [
                std::path::PathBuf::from("/run/secrets/pg"),
                "/run/secrets/redis".into()
            ]
        );
        std::env::remove_var("PULSE_TEST_SECRET_FILES_URL");
    }

    #[test]
    fn env_and_literal() {
        std::env::set_var("PULSE_TEST_INTERP", "value-1");
        assert_eq!(
            expand("a ${env:PULSE_TEST_INTERP} b").unwrap(),
            "a value-1 b"
        );
        assert_eq!(
            expand("cost $5 and $${env:X}").unwrap(),
            "cost $5 and ${env:X}"
        );
    }

    #[test]
    fn env_default_applies_when_unset_or_empty() {
        std::env::set_var("PULSE_TEST_INTERP_SET", "from-env");
        std::env::set_var("PULSE_TEST_INTERP_EMPTY", "");
        assert_eq!(
            expand("${env:PULSE_TEST_INTERP_SET:-fallback}").unwrap(),
            "from-env"
        );
        assert_eq!(
            expand("${env:PULSE_TEST_INTERP_EMPTY:-fallback}").unwrap(),
            "fallback"
        );
        assert_eq!(
            expand("redis://${env:PULSE_TEST_INTERP_UNSET_X:-127.0.0.1:6379}/0").unwrap(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(expand("${env:PULSE_TEST_INTERP_UNSET_X:-}").unwrap(), "");
    }

    #[test]
    fn file_reference_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "filesecret\n").unwrap();
        assert_eq!(
            expand(&format!("${{file:{}}}", p.display())).unwrap(),
            "filesecret"
        );
    }

    #[test]
    fn environment_values_may_reference_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pg");
        std::fs::write(&p, "EnvFilePw42\n").unwrap();
        std::env::set_var(
            "PULSE_TEST_INTERP_URL",
            format!("postgres://app:${{file:{}}}@db/app?x=$5", p.display()),
        );
        assert_eq!(
            expand("${env:PULSE_TEST_INTERP_URL}").unwrap(),
            "postgres://app:EnvFilePw42@db/app?x=$5"
        );
        // The password read from the file is a secret like any other.
        assert!(!crate::secrets::scrub("login EnvFilePw42 failed").contains("EnvFilePw42"));
        // Other references in an environment value are not followed.
        std::env::set_var("PULSE_TEST_INTERP_NESTED", "${env:HOME}");
        assert_eq!(
            expand("${env:PULSE_TEST_INTERP_NESTED}").unwrap(),
            "${env:HOME}"
        );
        std::env::set_var("PULSE_TEST_INTERP_BAD", "x${file:/nonexistent/pulse}");
        let e = expand("${env:PULSE_TEST_INTERP_BAD}").unwrap_err();
        assert!(
            e.contains("PULSE_TEST_INTERP_BAD") && e.contains("/nonexistent/pulse"),
            "{e}"
        );
    }

    #[test]
    fn devices_and_huge_files_are_not_read_as_secrets() {
        let dev = expand("${file:/dev/zero}").unwrap_err();
        assert!(
            dev.contains("/dev/zero") && dev.contains("not a regular file"),
            "{dev}"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 70 * 1024]).unwrap();
        let err = expand(&format!("${{file:{}}}", big.display())).unwrap_err();
        assert!(err.contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn errors_name_the_reference() {
        let e = expand("${env:PULSE_TEST_SURELY_UNSET}").unwrap_err();
        assert!(e.contains("PULSE_TEST_SURELY_UNSET"), "{e}");
        let e = expand("${file:/nonexistent/pulse}").unwrap_err();
        assert!(e.contains("/nonexistent/pulse"), "{e}");
        assert!(expand("${vault:x}")
            .unwrap_err()
            .contains("unknown reference"));
        assert!(expand("${env:X").unwrap_err().contains("unterminated"));
    }
}
