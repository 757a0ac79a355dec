//! Reading a Postgres result: each cell by its type ([`read_cell`], the only part that needs
//! a live row), then as a number for a value column or as text for a label
//! ([`number`], [`text`]), which the unit tests below feed with fake cells: NULLs, text where
//! a number belongs, numbers too large for a float, types that are neither.

use rust_decimal::prelude::ToPrimitive;
use sqlx::postgres::PgRow;
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::series::run_error::{Reason, RunError};
use crate::sources::rows::{self, RowShape};

/// One cell, read by its Postgres type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'r> {
    /// SQL NULL.
    Null,
    /// `INT2`, `INT4`, `INT8`.
    Int(i64),
    /// `FLOAT4`, kept as such so a label shows it as written.
    Float4(f32),
    /// `FLOAT8`.
    Float8(f64),
    /// `NUMERIC`.
    Numeric(rust_decimal::Decimal),
    /// `BOOL`.
    Bool(bool),
    /// `TIMESTAMPTZ`.
    TimestampTz(DateTime<Utc>),
    /// `TIMESTAMP` (read as UTC).
    Timestamp(NaiveDateTime),
    /// `DATE`.
    Date(NaiveDate),
    /// `TEXT`, `VARCHAR`, `BPCHAR`, `NAME`.
    Text(&'r str),
    /// Any other type, by name.
    Other(String),
}

impl Cell<'_> {
    /// The Postgres type name, for errors.
    fn type_name(&self) -> &str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Float4(_) | Cell::Float8(_) => "a float",
            Cell::Numeric(_) => "NUMERIC",
            Cell::Bool(_) => "BOOL",
            Cell::TimestampTz(_) => "TIMESTAMPTZ",
            Cell::Timestamp(_) => "TIMESTAMP",
            Cell::Date(_) => "DATE",
            Cell::Text(_) => "TEXT",
            Cell::Other(name) => name,
        }
    }
}

impl rows::Row for PgRow {
    fn text(&self, field: &str) -> Result<String, RunError> {
        cell_text(self, field)
    }

    fn number(&self, field: &str) -> Result<Option<f64>, RunError> {
        cell_number(self, field)
    }
}

/// A value column as a number; `None` for NULL.
pub(super) fn cell_number(row: &PgRow, column: &str) -> Result<Option<f64>, RunError> {
    number(column, read_cell(row, column)?)
}

/// A label column as text; NULL becomes the empty string (an absent label).
pub(super) fn cell_text(row: &PgRow, column: &str) -> Result<String, RunError> {
    text(column, read_cell(row, column)?)
}

/// Fails with reason `decode`, naming the columns there are, when a label or value column
/// of the shape is not in the result.
pub(super) fn check_columns(first: &PgRow, shape: &RowShape) -> Result<(), RunError> {
    let columns: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
    missing_column(&columns, shape)
}

fn missing_column(columns: &[&str], shape: &RowShape) -> Result<(), RunError> {
    // A label column holds text to group by, a value column a number: the example of an
    // alias fits the one that is missing.
    let missing = |wanted: &str, example: String| {
        RunError::new(
            Reason::Decode,
            format!(
                "column `{wanted}` is not in the result (columns: {}); select it under that name, e.g. `{example}`",
                columns.join(", ")
            ),
        )
    };
    for wanted in &shape.labels {
        if !columns.contains(&wanted.as_str()) {
            let example =
                match crate::config_core::suggest::closest(wanted, columns.iter().copied()) {
                    Some(near) => format!("{near} AS {wanted}"),
                    None => format!("some_column::text AS {wanted}"),
                };
            return Err(missing(wanted, example));
        }
    }
    for wanted in &shape.values {
        if !columns.contains(&wanted.as_str()) {
            return Err(missing(wanted, format!("count(*) AS {wanted}")));
        }
    }
    Ok(())
}

fn decode_error(column: &str, err: sqlx::Error) -> RunError {
    RunError::new(Reason::Decode, format!("column `{column}`: {err}"))
}

/// Reads one cell of a live row by its type.
fn read_cell<'r>(row: &'r PgRow, column: &str) -> Result<Cell<'r>, RunError> {
    let raw = row
        .try_get_raw(column)
        .map_err(|e| decode_error(column, e))?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let ty = raw.type_info().name().to_owned();
    // chrono cannot hold Postgres's `infinity`: sqlx would panic decoding it.
    if matches!(ty.as_str(), "TIMESTAMPTZ" | "TIMESTAMP" | "DATE") {
        if let Some(sign) = infinite_time(&raw) {
            return Ok(Cell::Float8(sign * f64::INFINITY));
        }
    }
    let e = |err| decode_error(column, err);
    Ok(match ty.as_str() {
        "INT2" => Cell::Int(row.try_get::<i16, _>(column).map_err(e)?.into()),
        "INT4" => Cell::Int(row.try_get::<i32, _>(column).map_err(e)?.into()),
        "INT8" => Cell::Int(row.try_get::<i64, _>(column).map_err(e)?),
        "FLOAT4" => Cell::Float4(row.try_get::<f32, _>(column).map_err(e)?),
        "FLOAT8" => Cell::Float8(row.try_get::<f64, _>(column).map_err(e)?),
        "NUMERIC" => Cell::Numeric(row.try_get(column).map_err(e)?),
        "BOOL" => Cell::Bool(row.try_get(column).map_err(e)?),
        "TIMESTAMPTZ" => Cell::TimestampTz(row.try_get(column).map_err(e)?),
        "TIMESTAMP" => Cell::Timestamp(row.try_get(column).map_err(e)?),
        "DATE" => Cell::Date(row.try_get(column).map_err(e)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Cell::Text(row.try_get(column).map_err(e)?),
        _ => Cell::Other(ty),
    })
}

/// `1.0` for a point in time that is `infinity`, `-1.0` for `-infinity`, `None` for any other.
/// In the binary format they are the largest and smallest integer of the type's width.
fn infinite_time(raw: &sqlx::postgres::PgValueRef<'_>) -> Option<f64> {
    match raw.format() {
        sqlx::postgres::PgValueFormat::Binary => infinite_binary(raw.as_bytes().ok()?),
        sqlx::postgres::PgValueFormat::Text => match raw.as_str().ok()? {
            "infinity" => Some(1.0),
            "-infinity" => Some(-1.0),
            _ => None,
        },
    }
}

fn infinite_binary(bytes: &[u8]) -> Option<f64> {
    let (max, min) = match bytes.len() {
        8 => (
            bytes == i64::MAX.to_be_bytes(),
            bytes == i64::MIN.to_be_bytes(),
        ),
        4 => (
            bytes == i32::MAX.to_be_bytes(),
            bytes == i32::MIN.to_be_bytes(),
        ),
        _ => return None,
    };
    match (max, min) {
        (true, _) => Some(1.0),
        (_, true) => Some(-1.0),
        _ => None,
    }
}

/// A cell of a value column as a number; `None` for NULL. Points in time become unix
/// seconds, the unit of `*_timestamp_seconds` metrics; text must hold a number.
pub(super) fn number(column: &str, cell: Cell) -> Result<Option<f64>, RunError> {
    Ok(Some(match cell {
        Cell::Null => return Ok(None),
        Cell::Int(i) => i as f64,
        Cell::Float4(f) => f64::from(f),
        Cell::Float8(f) => f,
        Cell::Numeric(d) => d.to_f64().ok_or_else(|| {
            RunError::new(
                Reason::Decode,
                format!("column `{column}`: numeric {d} does not fit a float"),
            )
        })?,
        Cell::Bool(b) => f64::from(u8::from(b)),
        Cell::TimestampTz(t) => t.timestamp_micros() as f64 / 1e6,
        Cell::Timestamp(t) => t.and_utc().timestamp_micros() as f64 / 1e6,
        Cell::Text(s) => s.trim().parse::<f64>().map_err(|_| {
            let shown: String = s.chars().take(40).collect();
            RunError::new(
                Reason::Decode,
                format!("column `{column}` holds text {shown:?} where a number belongs: fix the query or list the column under `labels`"),
            )
        })?,
        other @ (Cell::Date(_) | Cell::Other(_)) => {
            return Err(RunError::new(
                Reason::Decode,
                format!(
                    "column `{column}` has type {}, which is not a number: cast it in the SQL, e.g. `{column}::float8`",
                    other.type_name()
                ),
            ))
        }
    }))
}

/// A cell of a label column as text; NULL becomes the empty string (an absent label). A long
/// text is copied only as far as a label can hold.
pub(super) fn text(column: &str, cell: Cell) -> Result<String, RunError> {
    Ok(match cell {
        Cell::Null => String::new(),
        Cell::Text(s) => crate::series::sample::label_head(s).to_owned(),
        Cell::Int(i) => i.to_string(),
        Cell::Float4(f) => f.to_string(),
        Cell::Float8(f) => f.to_string(),
        Cell::Numeric(d) => d.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::TimestampTz(t) => t.to_rfc3339(),
        Cell::Date(d) => d.to_string(),
        other @ (Cell::Timestamp(_) | Cell::Other(_)) => {
            return Err(RunError::new(
                Reason::Decode,
                format!(
                    "label column `{column}` has type {}: cast it to text in the SQL, e.g. `{column}::text`",
                    other.type_name()
                ),
            ))
        }
    })
}

#[cfg(test)]
mod infinity_tests {
    #[test]
    fn infinite_points_in_time_are_told_from_real_ones() {
        use super::infinite_binary as inf;
        assert_eq!(inf(&i64::MAX.to_be_bytes()), Some(1.0));
        assert_eq!(inf(&i64::MIN.to_be_bytes()), Some(-1.0));
        assert_eq!(inf(&i32::MAX.to_be_bytes()), Some(1.0));
        assert_eq!(inf(&i32::MIN.to_be_bytes()), Some(-1.0));
        assert_eq!(inf(&0i64.to_be_bytes()), None);
        assert_eq!(inf(&7i32.to_be_bytes()), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn decimal(s: &str) -> rust_decimal::Decimal {
        rust_decimal::Decimal::from_str(s).unwrap()
    }

    #[test]
    fn value_cells_become_numbers_and_null_stays_null() {
        let at = DateTime::parse_from_rfc3339("2027-01-15T08:00:00.25Z")
            .unwrap()
            .with_timezone(&Utc);
        for (cell, want) in [
            (Cell::Null, None),
            (Cell::Int(i64::MAX), Some(i64::MAX as f64)),
            (Cell::Int(-2), Some(-2.0)),
            (Cell::Float4(0.5), Some(0.5)),
            (Cell::Float8(1e300), Some(1e300)),
            (Cell::Numeric(decimal("12.75")), Some(12.75)),
            (Cell::Bool(true), Some(1.0)),
            (Cell::TimestampTz(at), Some(1_800_000_000.25)),
            (Cell::Timestamp(at.naive_utc()), Some(1_800_000_000.25)),
            (Cell::Text(" 42.5 "), Some(42.5)),
        ] {
            assert_eq!(number("v", cell.clone()).unwrap(), want, "{cell:?}");
        }
        // The largest NUMERIC still fits a float (rounded).
        let huge = decimal("79228162514264337593543950335");
        assert!(number("v", Cell::Numeric(huge)).unwrap().unwrap() > 7.9e28);
    }

    #[test]
    fn a_value_cell_that_is_no_number_is_a_decode_failure_that_says_the_fix() {
        let e = number("users", Cell::Text("many")).unwrap_err();
        assert_eq!(e.reason(), Reason::Decode);
        assert!(
            e.to_string()
                .contains("column `users` holds text \"many\" where a number belongs"),
            "{e}"
        );
        let long = "x".repeat(10_000);
        let e = number("users", Cell::Text(&long)).unwrap_err();
        assert!(e.to_string().len() < 300, "the text shown is cut: {e}");
        for (cell, ty) in [
            (
                Cell::Date(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
                "DATE",
            ),
            (Cell::Other("JSONB".into()), "JSONB"),
        ] {
            let e = number("v", cell).unwrap_err();
            assert_eq!(e.reason(), Reason::Decode);
            let message = e.to_string();
            assert!(
                message.contains(&format!("has type {ty}, which is not a number")),
                "{message}"
            );
            assert!(message.contains("`v::float8`"), "{message}");
        }
    }

    #[test]
    fn label_cells_become_text_and_null_an_absent_label() {
        let at = DateTime::parse_from_rfc3339("2027-01-15T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for (cell, want) in [
            (Cell::Null, ""),
            (Cell::Text("pro"), "pro"),
            (Cell::Int(7), "7"),
            (Cell::Float4(0.1), "0.1"),
            (Cell::Float8(2.5), "2.5"),
            (Cell::Numeric(decimal("3.10")), "3.10"),
            (Cell::Bool(false), "false"),
            (Cell::TimestampTz(at), "2027-01-15T08:00:00+00:00"),
            (
                Cell::Date(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
                "2026-11-24",
            ),
        ] {
            assert_eq!(text("l", cell.clone()).unwrap(), want, "{cell:?}");
        }
        let huge = "y".repeat(1 << 20);
        assert!(text("l", Cell::Text(&huge)).unwrap().len() < 10_000);
        for cell in [Cell::Timestamp(at.naive_utc()), Cell::Other("BYTEA".into())] {
            let e = text("l", cell).unwrap_err();
            assert_eq!(e.reason(), Reason::Decode);
            assert!(e.to_string().contains("`l::text`"), "{e}");
        }
    }

    #[test]
    fn a_missing_column_names_the_columns_there_are() {
        let shape: RowShape = serde_yaml::from_str("{ labels: [plan], values: [users] }").unwrap();
        assert!(missing_column(&["plan", "users", "extra"], &shape).is_ok());
        let e = missing_column(&["plan", "count"], &shape).unwrap_err();
        assert_eq!(e.reason(), Reason::Decode);
        assert!(
            e.to_string()
                .contains("column `users` is not in the result (columns: plan, count)"),
            "{e}"
        );
        assert!(e.to_string().contains("e.g. `count(*) AS users`"), "{e}");
        // A missing label is a text column: no count to alias.
        let shape: RowShape =
            serde_yaml::from_str("{ labels: [region], values: [users] }").unwrap();
        let e = missing_column(&["regoin", "users"], &shape).unwrap_err();
        assert!(e.to_string().contains("e.g. `regoin AS region`"), "{e}");
        let e = missing_column(&["plan", "users"], &shape).unwrap_err();
        assert!(
            e.to_string().contains("e.g. `some_column::text AS region`"),
            "{e}"
        );
        assert!(!e.to_string().contains("count(*)"), "{e}");
    }
}
