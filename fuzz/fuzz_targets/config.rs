//! The config loader on arbitrary input: it must return a config or errors, never panic,
//! hang or exhaust memory. Seeded from `tests/hostile/` and `examples/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = pulse_exporter::config::load_str(text) {
            // The report is what an SRE reads: rendering it must not panic either.
            let _ = errors.to_string();
        }
    }
});
