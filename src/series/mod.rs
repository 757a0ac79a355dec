//! What a check or health probe returns and how it is declared, below the kinds that fill it and the server
//! that writes it: samples and metric families ([`sample`]), metric declarations
//! ([`metric`]), native histograms ([`native_histogram`]), keeping the largest items of a
//! stream ([`topn`]), why a run failed, with its bounded reason ([`run_error`]), and the
//! exporter's own metrics ([`own_metrics`]).

pub mod metric;
pub mod native_histogram;
pub mod own_metrics;
pub mod run_error;
pub mod sample;
pub mod topn;
