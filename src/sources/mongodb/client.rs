//! The driver client a source's probes share (created on first use, reading from secondaries
//! when there are any), and driver errors classified into bounded reasons.

use std::time::Duration;

use mongodb::options::{ClientOptions, ReadPreference, ReadPreferenceOptions, SelectionCriteria};
use tokio::sync::OnceCell;

use crate::series::run_error::{Reason, RunError};

/// The client every probe of one source shares.
pub(super) struct Shared {
    pub(super) url: String,
    pub(super) database: String,
    pub(super) client: OnceCell<mongodb::Client>,
}

/// Driver timeouts used unless the URL sets `serverSelectionTimeoutMS` / `connectTimeoutMS`:
/// short enough that a dead server fails a default 5 s health probe with reason `connect`
/// (the driver's own error) rather than `timeout`.
pub const DEFAULT_DRIVER_TIMEOUT: Duration = Duration::from_secs(2);

impl Shared {
    pub(super) async fn client(&self) -> Result<&mongodb::Client, RunError> {
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.url)
                    .await
                    .map_err(|e| classify(&e))?;
                options.app_name = Some("pulse-exporter".to_owned());
                options
                    .server_selection_timeout
                    .get_or_insert(DEFAULT_DRIVER_TIMEOUT);
                options
                    .connect_timeout
                    .get_or_insert(DEFAULT_DRIVER_TIMEOUT);
                options.max_pool_size.get_or_insert(2);
                // Read from secondaries when there are any, so checks never load the primary.
                options.selection_criteria = Some(SelectionCriteria::ReadPreference(
                    ReadPreference::SecondaryPreferred {
                        options: Some(ReadPreferenceOptions::default()),
                    },
                ));
                mongodb::Client::with_options(options).map_err(|e| classify(&e))
            })
            .await
    }
}

pub(super) fn classify(e: &mongodb::error::Error) -> RunError {
    use mongodb::error::ErrorKind;
    let reason = match e.kind.as_ref() {
        ErrorKind::Authentication { .. } => Reason::Auth,
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => Reason::Connect,
        ErrorKind::InvalidArgument { .. } => Reason::Query,
        ErrorKind::BsonDeserialization(_) => Reason::Decode,
        ErrorKind::Command(c) => match c.code {
            50 => Reason::Timeout,   // MaxTimeMSExpired
            13 | 18 => Reason::Auth, // Unauthorized, AuthenticationFailed
            26 => Reason::NotFound,  // NamespaceNotFound
            _ => Reason::Query,
        },
        _ => Reason::Query,
    };
    RunError::new(reason, e.to_string())
}
