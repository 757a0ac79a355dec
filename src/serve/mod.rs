//! Serving what the store holds: the HTTP server and its limits, the web config (TLS, basic
//! auth) and its re-reading, the exposition encoded once per change, and the landing page.
//! Nothing here talks to a source: a scrape reads the cache.
//!
//! | module | owns |
//! |---|---|
//! | [`http`] | the router and handlers, auth, graceful shutdown |
//! | [`collector`] | the prometheus-client `Collector` over the store, and self metrics |
//! | [`exposition`] | OpenMetrics or classic text by `Accept` |
//! | [`encoded`] | expositions encoded (and gzipped) once per store change, served to every scrape |
//! | [`ping`] | the request side of `/ping/NAME/…`: signal, run id, log tail, bearer token (the cargo feature `jobs`) |
//! | [`probe`] | one source at a time: `/probe?source=` and the `/sd` service discovery |
//! | [`refusal`] | a refused request: its HTTP status (chosen here for a refused ping), message and retry |
//! | [`landing`] | the HTML landing page |
//! | [`limits`] | connection limits, per address and in all, and request-head bounds |
//! | [`webconfig`] | the exporter-toolkit web config file |
//! | [`webwatch`] | re-reading the web config file while serving |

pub mod collector;
pub mod encoded;
pub mod exposition;
pub mod http;
pub mod landing;
pub mod limits;
#[cfg(feature = "jobs")]
pub mod ping;
pub mod probe;
pub mod refusal;
pub mod webconfig;
pub mod webwatch;
