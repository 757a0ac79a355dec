//! Filters and pipelines written in YAML, turned into BSON at every run so that `$now`,
//! `$nowSeconds` and `$nowMillis` windows are relative to the run.

use std::time::{SystemTime, UNIX_EPOCH};

use mongodb::bson::{self, Bson, Document};
use serde_yaml::Value;

/// Turns YAML into a BSON document, expanding `$now`, `$nowSeconds` and `$nowMillis`.
pub fn to_document(v: &Value, now: SystemTime) -> Result<Document, String> {
    match to_bson(v, now)? {
        Bson::Document(d) => Ok(d),
        other => Err(format!("expected a mapping, got {other}")),
    }
}

fn to_bson(v: &Value, now: SystemTime) -> Result<Bson, String> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Sequence(items) => Bson::Array(
            items
                .iter()
                .map(|i| to_bson(i, now))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            if map.len() == 1 {
                let (k, val) = map.iter().next().expect("one entry");
                if let (Some(op @ ("$now" | "$nowSeconds" | "$nowMillis")), Some(offset)) =
                    (k.as_str(), val.as_str())
                {
                    return relative_time(op, offset, now);
                }
            }
            let mut doc = Document::new();
            for (k, val) in map {
                let key = k
                    .as_str()
                    .ok_or_else(|| format!("field names must be strings, got {k:?}"))?;
                doc.insert(key, to_bson(val, now)?);
            }
            Bson::Document(doc)
        }
        Value::Tagged(t) => to_bson(&t.value, now)?,
    })
}

fn relative_time(op: &str, offset: &str, now: SystemTime) -> Result<Bson, String> {
    let at =
        crate::config_core::time_template::shift(now, offset).map_err(|e| format!("{op}: {e}"))?;
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    Ok(match op {
        "$now" => Bson::DateTime(bson::DateTime::from_millis(ms)),
        "$nowSeconds" => Bson::Int64(ms / 1000),
        _ => Bson::Int64(ms),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn relative_times_expand_at_run_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v: Value = serde_yaml::from_str("{ lastLogin: { $gte: { $now: \"-24h\" } }, ts: { $lt: { $nowSeconds: \"-1m\" } }, ms: { $nowMillis: \"\" } }").unwrap();
        let d = to_document(&v, now).unwrap();
        let gte = d
            .get_document("lastLogin")
            .unwrap()
            .get_datetime("$gte")
            .unwrap();
        assert_eq!(gte.timestamp_millis(), (1_000_000 - 86_400) * 1000);
        assert_eq!(
            d.get_document("ts").unwrap().get_i64("$lt").unwrap(),
            1_000_000 - 60
        );
        assert_eq!(d.get_i64("ms").unwrap(), 1_000_000_000);
        for bad in [
            "{ a: { $now: \"\u{2212}24h\" } }",
            "{ a: { $now: \"+100000000000000000000y\" } }",
        ] {
            let v: Value = serde_yaml::from_str(bad).unwrap();
            assert!(to_document(&v, now).is_err(), "{bad}");
        }
        let bad: Value = serde_yaml::from_str("{ a: { $now: \"yesterday\" } }").unwrap();
        assert!(to_document(&bad, now).unwrap_err().contains("$now"));
    }
}
