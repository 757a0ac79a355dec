//! Lays out the code of an x86-64 Linux release build by use: hands the linker
//! `link/symbol-order.txt` (the functions that run at start, per scrape and per check, written
//! by `scripts/order-symbols`) so that it places them first and together. The kernel maps an
//! executable's code 64 KiB around each page a process touches, so used functions spread over
//! the whole binary keep most of it resident; together they fill few such blocks
//! (docs/scaling.md, "Code laid out by use"). The constants they read go first too, by the
//! linker script `link/rodata-order.ld` (`scripts/order-symbols` writes both files).
//!
//! Only where the linker is LLVM's lld, which reads the file: Rust 1.90 and later link
//! `x86_64-unknown-linux-gnu` with it by default. `PULSE_SYMBOL_ORDER=off` leaves the layout to
//! the linker, for a build that links with another one.
//!
//! With lld, a dynamic build on glibc 2.36 or later also packs its relative relocations
//! (`PULSE_RELR=off` opts out): see [`relr_supported`].

use std::env;
use std::path::Path;
use std::process::Command;

/// The oldest rustc whose default linker for x86-64 Linux is lld.
const LLD_DEFAULT_SINCE: (u32, u32) = (1, 90);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    println!("cargo:rerun-if-changed=link/rodata-order.ld");
    println!("cargo:rerun-if-env-changed=PULSE_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=PULSE_LINK_MAP");
    println!("cargo:rerun-if-env-changed=PULSE_RELR");
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || profile != "release" {
        return;
    }
    if env::var("PULSE_SYMBOL_ORDER").is_ok_and(|v| v == "off") {
        return;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| parse_version(text.split_whitespace().nth(1)?));
    if version.is_none_or(|v| v < LLD_DEFAULT_SINCE) {
        return;
    }
    if relr_supported() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // The linker's map names each function where it was placed, for scripts/order-symbols:
    // the release binary is stripped, and a build that keeps its symbols is another profile,
    // whose symbols carry other hashes.
    if let Ok(map) = env::var("PULSE_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
    }
    let link = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link");
    // The constants read at start, per scrape and per check, placed together before the rest
    // of .rodata: a script of `INSERT` only, which adds to the linker's layout. A section it
    // names that this build lacks matches nothing.
    let rodata = link.join("rodata-order.ld");
    if rodata.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", rodata.display());
    }
    let order = link.join("symbol-order.txt");
    if !order.is_file() {
        return;
    }
    // A name the file holds that this build lacks (code changed since the file was written)
    // is skipped, not an error: the layout degrades, the build does not.
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// The oldest glibc whose loader (and static start-up code) applies packed relative
/// relocations (`DT_RELR`).
const RELR_SINCE: (u32, u32) = (2, 36);

/// Whether to pack the executable's relative relocations (`-z pack-relative-relocs`): a
/// position-independent executable holds one 24-byte relocation per pointer in its read-only
/// data (57,000 of them, 1.3 MiB, which the loader reads whole at every start); packed, they
/// take a few KiB. Only where the C library the build links is glibc 2.36 or later: the
/// binary then needs that glibc to start (the loader refuses an older one by name,
/// `GLIBC_ABI_DT_RELR`), as a binary that runs where it was built does.
/// The release workflow builds on the oldest supported Ubuntu (glibc 2.35), so its binaries
/// keep plain relocations. `PULSE_RELR=off` opts out, for a binary to copy to an older glibc.
fn relr_supported() -> bool {
    if env::var("PULSE_RELR").is_ok_and(|v| v == "off") {
        return false;
    }
    // getconf reports the build machine's glibc: the one a native build links.
    if env::var("HOST").ok() != env::var("TARGET").ok() {
        return false;
    }
    // Not measured on the static executable (glibc's static start-up code relocates it): it
    // keeps plain relocations.
    if env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static")) {
        return false;
    }
    Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| parse_version(text.strip_prefix("glibc ")?.trim()))
        .is_some_and(|v| v >= RELR_SINCE)
}

/// `(major, minor)` of a version such as rustc's "1.95.0" or glibc's "2.36".
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
