//! What both benchmarks share: measuring a case in a child process (time and peak RSS), running the
//! Python peers, deterministic random numbers for the data generators, and the printed table.
//!
//! Each bench binary is also its own child: `<bench> --child <case> …` runs one case and prints its
//! measurement as one JSON line, so that every case's peak RSS (VmHWM) is its own.

#![allow(dead_code)] // each bench binary uses part of this module

pub mod measure;
pub mod peers;
pub mod random;
pub mod report;

/// The error type of the bench binaries: any error, shown with its message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
pub type BenchResult<T> = Result<T, BenchError>;

/// A row count from the command line: `16m`, `50k` or a plain number.
pub fn parse_size(text: &str) -> BenchResult<usize> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.strip_suffix('m') {
        Some(digits) => (digits, 1_000_000),
        None => match text.strip_suffix('k') {
            Some(digits) => (digits, 1_000),
            None => (text.as_str(), 1),
        },
    };
    Ok(digits
        .parse::<usize>()
        .map_err(|e| format!("bad size '{text}': {e}"))?
        * unit)
}
