//! promtool rule tests narrowed to the rules their cases can observe.
//!
//! `promtool test rules` evaluates every loaded rule at every step of every case, whether a
//! case reads it or not. The bundled alert tests load `alerts/pulse-alerts.yml` whole (88
//! alerts) beside the recording rules, so over three weeks at 15-minute steps most of their CPU
//! went to alerts no case names: `business-rhythm.test.yml` took 23.6 CPU-seconds as written
//! and 7.7 narrowed (promtool 2.42, measured one after the other). And a case reads a few
//! groups of a file whose other cases read others: `pulse-alerts.test.yml` (122 cases) took
//! 18.0 narrowed as one file and 4.4 case by case. The suite runs these files with two
//! promtools and again with two replicas, so [`narrowed_cases`] writes each case as a file of
//! its own that loads only what that case can observe; a developer running a file by hand
//! still gets it as written.
//!
//! What is kept, group by group (a group stays whole, in its file's order): every group the
//! file's `group_eval_order` names, every group holding an alert a case names, and, until
//! nothing more is added, every group recording a series that a kept rule or a case's
//! `promql_expr_test` reads. Nothing else can change what a case sees, because no rule reads
//! `ALERTS` or selects by `__name__`, which [`narrowed`] and [`narrowed_cases`] assert of every
//! rule they load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// Writes each case of the promtool test file `file` as a test file of its own, narrowed (see
/// the module's header): [`narrowed_cases`] into `dir`. Returns their paths in the file's
/// order, for one `promtool test rules` call.
pub fn narrowed_file(file: &Path, dir: &Path) -> Vec<PathBuf> {
    let tests: Value = serde_yaml::from_str(&std::fs::read_to_string(file).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let name = file.file_name().unwrap().to_str().unwrap();
    narrowed_cases(&tests, name, file.parent().unwrap(), dir)
}

/// Writes each case of `tests` (a promtool test file named `name`, its `rule_files` relative to
/// `base`) as a test file of its own, with the rules that case alone can observe
/// ([`narrowed`]). Each goes with its rule copies into a folder of its own in `dir`, named for
/// `name` and the case's number from 1, so that promtool's report says which case failed.
/// Returns their paths in the file's order.
pub fn narrowed_cases(tests: &Value, name: &str, base: &Path, dir: &Path) -> Vec<PathBuf> {
    // Read and checked once for every case: pulse-alerts.yml alone is 100 KB of YAML.
    let files = rule_files(tests, base);
    let cases = tests["tests"].as_sequence().expect("a test file has tests");
    cases
        .iter()
        .enumerate()
        .map(|(k, case)| {
            let own = dir.join(format!("{name}-case-{}", k + 1));
            std::fs::create_dir_all(&own).unwrap();
            let mut one = tests.clone();
            one["tests"] = Value::Sequence(vec![case.clone()]);
            let out = own.join(name);
            let one = narrowed_with(&one, &files, &own);
            std::fs::write(&out, serde_yaml::to_string(&one).unwrap()).unwrap();
            out
        })
        .collect()
}

/// `tests` (a promtool test file whose `rule_files` are relative to `base`) with its
/// `rule_files` replaced by narrowed copies written into `dir`, as absolute paths. A rule file
/// left without a group is left out.
pub fn narrowed(tests: &Value, base: &Path, dir: &Path) -> Value {
    narrowed_with(tests, &rule_files(tests, base), dir)
}

/// The rule files `tests` loads (relative to `base`), parsed, each with its path; asserts that
/// no rule reads `ALERTS` or selects by `__name__` (the module's header says why).
fn rule_files(tests: &Value, base: &Path) -> Vec<(PathBuf, Value)> {
    let files: Vec<(PathBuf, Value)> = tests["rule_files"]
        .as_sequence()
        .expect("a test file has rule_files")
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            assert!(
                !f.contains('*'),
                "{f}: narrowing reads no globs in rule_files"
            );
            let path = base.join(f);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, serde_yaml::from_str(&text).unwrap())
        })
        .collect();
    for (path, rules) in &files {
        for rule in rules["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap())
        {
            let expr = rule["expr"].as_str().unwrap();
            assert!(
                !expr.contains("ALERTS") && !expr.contains("__name__"),
                "{}: a rule reads ALERTS or selects by __name__, so a narrowed test would \
                 leave out what it reads; load every group instead: {expr}",
                path.display()
            );
        }
    }
    files
}

/// [`narrowed`] with the rule files already read ([`rule_files`]).
fn narrowed_with(tests: &Value, files: &[(PathBuf, Value)], dir: &Path) -> Value {
    let cases = tests["tests"].as_sequence().expect("a test file has tests");
    let named: BTreeSet<&str> = cases
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_sequence().into_iter().flatten())
        .map(|a| a["alertname"].as_str().unwrap())
        .collect();
    let mut readers: Vec<String> = cases
        .iter()
        .flat_map(|t| t["promql_expr_test"].as_sequence().into_iter().flatten())
        .map(|e| e["expr"].as_str().unwrap().to_owned())
        .collect();
    let order: Vec<&str> = tests["group_eval_order"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|g| g.as_str().unwrap())
        .collect();

    // (file, group) of every group, and whether it is kept so far.
    let groups: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, (_, rules))| {
            (0..rules["groups"].as_sequence().unwrap().len()).map(move |g| (f, g))
        })
        .collect();
    let group = |(f, g): (usize, usize)| &files[f].1["groups"][g];
    let rules = |(f, g): (usize, usize)| group((f, g))["rules"].as_sequence().unwrap();
    let mut kept: Vec<bool> = groups
        .iter()
        .map(|&at| {
            order.contains(&group(at)["name"].as_str().unwrap())
                || rules(at)
                    .iter()
                    .any(|r| r["alert"].as_str().is_some_and(|a| named.contains(a)))
        })
        .collect();
    readers.extend(
        groups
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .flat_map(|(&at, _)| {
                rules(at)
                    .iter()
                    .map(|r| r["expr"].as_str().unwrap().to_owned())
            }),
    );
    // Until no group is added: a group recording what a kept rule or a case reads. A name read
    // as part of a longer one keeps a group it need not: that costs time, never a case.
    loop {
        let mut added = Vec::new();
        for (i, &at) in groups.iter().enumerate() {
            let records = rules(at).iter().filter_map(|r| r["record"].as_str());
            if !kept[i]
                && records
                    .clone()
                    .any(|name| readers.iter().any(|e| e.contains(name)))
            {
                added.push(i);
            }
        }
        if added.is_empty() {
            break;
        }
        for i in added {
            kept[i] = true;
            readers.extend(
                rules(groups[i])
                    .iter()
                    .map(|r| r["expr"].as_str().unwrap().to_owned()),
            );
        }
    }

    let mut paths = Vec::new();
    for (f, (path, rules)) in files.iter().enumerate() {
        let groups: Vec<Value> = groups
            .iter()
            .zip(&kept)
            .filter(|(&(file, _), &k)| file == f && k)
            .map(|(&at, _)| group(at).clone())
            .collect();
        if groups.is_empty() {
            continue;
        }
        let mut rules = rules.clone();
        rules["groups"] = Value::Sequence(groups);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let copy = dir.join(format!("rules-{f}-{stem}.yml"));
        std::fs::write(&copy, serde_yaml::to_string(&rules).unwrap()).unwrap();
        paths.push(Value::from(copy.to_str().unwrap()));
    }
    let mut tests = tests.clone();
    tests["rule_files"] = Value::Sequence(paths);
    tests
}
