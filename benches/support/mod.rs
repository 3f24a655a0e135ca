//! Shared by the benchmarks: a `Criterion` writing to a known directory, and
//! a report that reads criterion's medians back and prints the ratios each
//! benchmark exists to show, so a reader needs no extra tooling.
#![allow(dead_code)]

use std::path::PathBuf;

use criterion::Criterion;

/// Where criterion writes its estimates (`target/tmp/criterion`).
pub fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

pub fn criterion() -> Criterion {
    Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
}

/// A scratch directory on tmpfs when there is one (where shared memory
/// usually lives), otherwise the default temporary directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temporary directory")
}

/// The median, in nanoseconds, criterion estimated for `group/id` in the
/// last run, read from its `estimates.json`.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = out_dir()
        .join(group)
        .join(id)
        .join("new")
        .join("estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let est = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = est.find([',', '}'])?;
    est[..end].trim().parse().ok()
}

/// One comparison: `ours` time divided by `other` time, and the largest
/// ratio the target allows.
pub struct Row<'a> {
    pub what: &'a str,
    pub ours: (&'a str, &'a str),
    pub other: (&'a str, &'a str),
    pub max_ratio: Option<f64>,
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} us", ns / 1e3)
    } else {
        format!("{ns:.3} ns")
    }
}

/// Prints each row as `what: ours / other = ratio (target)`.
pub fn report(title: &str, rows: &[Row<'_>]) {
    println!("\n=== {title}: medians and ratios (shm-region time / other time) ===");
    for r in rows {
        match (
            median_ns(r.ours.0, r.ours.1),
            median_ns(r.other.0, r.other.1),
        ) {
            (Some(a), Some(b)) => {
                let ratio = a / b;
                let verdict = match r.max_ratio {
                    Some(max) if ratio <= max => format!("target <= {max}: met"),
                    Some(max) => format!("target <= {max}: MISSED"),
                    None => "no target".to_string(),
                };
                println!(
                    "{:<58} {:>12} / {:>12} = {:>8.3}x  ({verdict})",
                    r.what,
                    human(a),
                    human(b),
                    ratio
                );
            }
            _ => println!("{:<58} not measured in this run", r.what),
        }
    }
}

/// Prints one absolute median.
pub fn report_abs(what: &str, group: &str, id: &str, max_ns: Option<f64>) {
    match median_ns(group, id) {
        Some(ns) => {
            let verdict = match max_ns {
                Some(max) if ns <= max => format!("target <= {max} ns: met"),
                Some(max) => format!("target <= {max} ns: MISSED"),
                None => "no target".to_string(),
            };
            println!("{what:<58} {:>12}  ({verdict})", human(ns));
        }
        None => println!("{what:<58} not measured in this run"),
    }
}
