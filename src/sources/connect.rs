//! Making a kind's source from its settings ([`Connect`]), and why that can fail
//! ([`ConnectError`]). Nothing connects here: connections open on first use, so a server
//! that is down at start is a failed probe later, never an error of this step.

use std::fmt;

/// A kind's source made from the kind's settings `S`.
pub trait Connect<S>: Sized {
    /// The source named `name`. No I/O: a source that is down at start-up is reported as
    /// down by its probes instead of stopping the exporter.
    fn connect(settings: &S, name: &str) -> Result<Self, ConnectError>;
}

/// Why a source could not be made from settings that passed validation: a file read at
/// start that changed since, or a client library that refused what the checks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// A field the client rejects: `field` is its key in the source (`url`,
    /// `tls.ca_file`, `queues.include`), `message` why (secrets scrubbed).
    Field {
        /// The field's key in the source mapping.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The client itself would not start (its HTTP or TLS stack).
    Client(String),
}

impl ConnectError {
    /// A [`ConnectError::Field`] of `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ConnectError {
        ConnectError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A TLS file error of [`crate::config_core::tls::TlsFiles::load`], under `tls.`.
    pub fn tls((field, message): (&'static str, String)) -> ConnectError {
        ConnectError::field(format!("tls.{field}"), message)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Field { field, message } => write!(f, "{field}: {message}"),
            ConnectError::Client(message) => write!(f, "cannot build the client: {message}"),
        }
    }
}

impl std::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_field_to_fix() {
        assert_eq!(
            ConnectError::tls(("ca_file", "no such file".to_owned())).to_string(),
            "tls.ca_file: no such file"
        );
        assert_eq!(
            ConnectError::Client("no TLS roots".to_owned()).to_string(),
            "cannot build the client: no TLS roots"
        );
    }
}
