//! The units a config is written in: durations (`90s`, `1h30m`), sizes (`10GiB`) and IANA
//! time zones, each read with a message that says what to write, shown back in its largest
//! exact unit, and described to the config reference's schema.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Longest duration any field takes.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// A duration written the human way in YAML: `15s`, `5m`, `1h30m`, `72h`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is the likeliest mistake: name the fix instead of a type mismatch.
        let text = match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}): write a number and a unit, e.g. 500ms, 15s, 5m, 1h"
            ))
        })?;
        // Bounded here so that no arithmetic on a configured duration can overflow.
        if d > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration {text:?} is longer than a year: use at most 365d"
            )));
        }
        Ok(Dur(d))
    }
}

/// In the generated reference and its defaults, a duration is text such as `1m 30s`.
impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&dur_text(self.0))
    }
}

/// A duration in the largest whole unit that writes it exactly: `24h`, `90s`, `500ms` (a
/// Prometheus duration too).
pub fn dur_text(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration" })
    }
}

/// A size in bytes written the human way in YAML: `64KiB`, `10GiB`, `500MB`, or a bare number
/// of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Size(b.0))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid size {text:?} ({e}): write a number and a unit, e.g. 64KiB, 16MiB, 10GiB"
                ))
            })
    }
}

impl serde::Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&size_text(self.0))
    }
}

impl schemars::JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "integer"], "format": "byte-size" })
    }
}

/// A size in the largest binary unit that writes it exactly: `10GiB`, `64KiB`, `1000B`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, n)| bytes > 0 && bytes.is_multiple_of(*n))
        .map_or_else(|| format!("{bytes}B"), |(u, n)| format!("{}{u}", bytes / n))
}

/// An IANA time zone, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.trim().parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone {text:?}: write an IANA name such as Europe/Berlin, America/New_York or UTC"
            ))
        })
    }
}

impl serde::Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl schemars::JsonSchema for TimeZone {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeZone".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "iana-time-zone" })
    }
}

impl TimeZone {
    /// Its offset from UTC at `at`, in seconds (east positive).
    pub fn offset_seconds(&self, at: chrono::DateTime<chrono::Utc>) -> i32 {
        use chrono::Offset;
        use chrono::TimeZone as _;
        self.0
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_units_and_are_shown_in_their_largest_exact_one() {
        let size = |v: &str| serde_yaml::from_str::<Size>(v).map(|s| s.0);
        assert_eq!(size("10GiB").unwrap(), 10 << 30);
        assert_eq!(size("64 KiB").unwrap(), 64 << 10);
        assert_eq!(size("500MB").unwrap(), 500_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        let err = size("ten gigs").unwrap_err().to_string();
        assert!(err.contains("e.g. 64KiB"), "{err}");
        assert!(size("-1").is_err());
        assert_eq!(size_text(10 << 30), "10GiB");
        assert_eq!(size_text(1536), "1536B");
        assert_eq!(size_text(64 << 10), "64KiB");
        assert_eq!(size_text(0), "0B");
    }

    #[test]
    fn a_time_zone_is_named_the_iana_way_and_its_offset_follows_daylight_saving() {
        let tz: TimeZone = serde_yaml::from_str("Europe/Berlin").unwrap();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        // Summer time ends on the last Sunday of October, at 01:00 UTC.
        assert_eq!(tz.offset_seconds(at("2026-10-25T00:59:00Z")), 7200);
        assert_eq!(tz.offset_seconds(at("2026-10-25T01:00:00Z")), 3600);
        let err = serde_yaml::from_str::<TimeZone>("CEST+2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("IANA name such as Europe/Berlin"), "{err}");
    }

    #[test]
    fn durations_are_shown_in_their_largest_exact_unit() {
        let text = |secs: u64| dur_text(Duration::from_secs(secs));
        assert_eq!(
            [text(0), text(90), text(120), text(86_400)],
            ["0s", "90s", "2m", "24h"]
        );
        assert_eq!(dur_text(Duration::from_millis(1500)), "1500ms");
    }
}
