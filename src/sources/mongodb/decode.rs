//! Reading BSON values as the exporter needs them: numbers for samples, text for labels, beat
//! times for heartbeats, and an aggregate's output document as a row. Nothing here panics on
//! what a collection may hold: NULL and missing fields, strings where numbers belong, huge
//! or fractional numbers, dates and ObjectIds.

use mongodb::bson::{Bson, Document};

use crate::series::run_error::{Reason, RunError};
use crate::sources::rows::Row;

/// A number from a numeric or boolean BSON value; `None` for anything else.
pub(super) fn number(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        Bson::Decimal128(d) => d.to_string().parse().ok(),
        Bson::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Label text: strings (cut to a label's length), ObjectIds as hex, dates as RFC 3339;
/// NULL and missing are empty.
pub(super) fn text(v: Option<&Bson>) -> String {
    match v {
        None | Some(Bson::Null) => String::new(),
        Some(Bson::String(s)) => crate::series::sample::label_head(s).to_owned(),
        Some(Bson::ObjectId(o)) => o.to_hex(),
        Some(Bson::DateTime(d)) => d.try_to_rfc3339_string().unwrap_or_default(),
        Some(other) => other.to_string(),
    }
}

/// A beat time field as unix seconds: a date, or a number of seconds or milliseconds.
pub(super) fn beat_time(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::DateTime(d) => Some(d.timestamp_millis() as f64 / 1000.0),
        Bson::String(s) => crate::sources::heartbeat::parse_time(s),
        other => {
            number(Some(other)).and_then(|n| crate::sources::heartbeat::parse_time(&n.to_string()))
        }
    }
}

/// An aggregate's output document as a row: a missing field reads as NULL.
pub(super) struct DocRow<'a>(pub(super) &'a Document);

impl Row for DocRow<'_> {
    fn text(&self, field: &str) -> Result<String, RunError> {
        Ok(text(self.0.get(field)))
    }

    fn number(&self, field: &str) -> Result<Option<f64>, RunError> {
        match self.0.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(v) => number(Some(v)).map(Some).ok_or_else(|| {
                RunError::new(
                    Reason::Decode,
                    format!("field `{field}` holds {} where a number belongs: fix the pipeline or list it under `labels`", v.element_type_name()),
                )
            }),
        }
    }
}

trait ElementTypeName {
    fn element_type_name(&self) -> &'static str;
}

impl ElementTypeName for Bson {
    fn element_type_name(&self) -> &'static str {
        match self {
            Bson::String(_) => "a string",
            Bson::Document(_) => "a document",
            Bson::Array(_) => "an array",
            Bson::DateTime(_) => "a date",
            Bson::ObjectId(_) => "an ObjectId",
            _ => "a non-numeric value",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId, DateTime, Decimal128};

    #[test]
    fn numbers_come_from_every_numeric_type_and_nothing_else() {
        assert_eq!(number(Some(&Bson::Int32(-3))), Some(-3.0));
        assert_eq!(number(Some(&Bson::Int64(i64::MAX))), Some(i64::MAX as f64));
        assert_eq!(number(Some(&Bson::Double(0.25))), Some(0.25));
        let dec: Decimal128 = "12345678901234567890.5".parse().unwrap();
        assert_eq!(
            number(Some(&Bson::Decimal128(dec))),
            Some(1.2345678901234567e19)
        );
        assert_eq!(number(Some(&Bson::Boolean(true))), Some(1.0));
        for not in [
            Bson::String("42".into()),
            Bson::Null,
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::Document(doc! {"n": 1}),
            Bson::DateTime(DateTime::from_millis(0)),
        ] {
            assert_eq!(number(Some(&not)), None, "{not:?}");
        }
        assert_eq!(number(None), None);
    }

    #[test]
    fn label_text_reads_strings_ids_dates_and_cuts_huge_values() {
        assert_eq!(text(None), "");
        assert_eq!(text(Some(&Bson::Null)), "");
        assert_eq!(text(Some(&Bson::String("pro".into()))), "pro");
        let id = ObjectId::parse_str("65f0c0ffee0000000000beef").unwrap();
        assert_eq!(text(Some(&Bson::ObjectId(id))), "65f0c0ffee0000000000beef");
        let date = DateTime::from_millis(1_800_000_000_000);
        assert_eq!(text(Some(&Bson::DateTime(date))), "2027-01-15T08:00:00Z");
        assert_eq!(text(Some(&Bson::Int32(5))), "5");
        // A megabyte string is copied only as far as a label can hold (cut later, counted).
        let huge = "x".repeat(1 << 20);
        let head = text(Some(&Bson::String(huge)));
        assert!(head.len() < 10_000, "{}", head.len());
    }

    #[test]
    fn beat_times_read_dates_seconds_milliseconds_and_text() {
        let date = DateTime::from_millis(1_800_000_000_500);
        assert_eq!(
            beat_time(Some(&Bson::DateTime(date))),
            Some(1_800_000_000.5)
        );
        assert_eq!(beat_time(Some(&Bson::Int64(1_800_000_000))), Some(1.8e9));
        assert_eq!(
            beat_time(Some(&Bson::Int64(1_800_000_000_000))),
            Some(1.8e9)
        );
        assert_eq!(
            beat_time(Some(&Bson::String("2027-01-15T08:00:00Z".into()))),
            Some(1.8e9)
        );
        for not in [
            Bson::String("yesterday".into()),
            Bson::Int32(0),
            Bson::Int32(-5),
            Bson::Array(vec![]),
        ] {
            assert_eq!(beat_time(Some(&not)), None, "{not:?}");
        }
        assert_eq!(beat_time(None), None);
    }

    #[test]
    fn a_document_row_reads_missing_and_null_as_null_and_names_the_wrong_type() {
        let d = doc! {
            "plan": "pro", "users": 12_i64, "nothing": Bson::Null,
            "label_in_values": "many", "nested": {"a": 1},
        };
        let row = DocRow(&d);
        assert_eq!(row.number("users").unwrap(), Some(12.0));
        assert_eq!(row.number("missing").unwrap(), None);
        assert_eq!(row.number("nothing").unwrap(), None);
        assert_eq!(row.text("plan").unwrap(), "pro");
        assert_eq!(row.text("missing").unwrap(), "");
        for (field, what) in [("label_in_values", "a string"), ("nested", "a document")] {
            let e = row.number(field).unwrap_err();
            assert_eq!(e.reason(), Reason::Decode);
            let message = e.to_string();
            assert!(
                message.contains(&format!("`{field}` holds {what} where a number belongs")),
                "{message}"
            );
        }
    }
}
