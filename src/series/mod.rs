//! What a probe returns and how it is declared, below the kinds that fill it and the server
//! that writes it: samples and metric families ([`sample`]), metric declarations
//! ([`metric`]), native histograms ([`native_histogram`]), keeping the largest items of a
//! stream ([`topn`]), the probe errors and their bounded reasons ([`probe_error`]), and the
//! exporter's own metrics ([`own_metrics`]).

pub mod metric;
pub mod native_histogram;
pub mod own_metrics;
pub mod probe_error;
pub mod sample;
pub mod topn;
