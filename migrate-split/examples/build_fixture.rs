//! Builds a legacy file with `migrate_split::fixtures`, for manual runs and measurements:
//! `cargo run --release -p migrate-split --example build_fixture -- PATH [small|medium|large] [VERSION]
//! [--unparseable] [--unknown-table]`
//! (`large` is about 1 GB).

use std::path::PathBuf;
use std::process::ExitCode;

use migrate_split::fixtures::{LegacySpec, build};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: build_fixture PATH [small|medium|large] [VERSION] [--unparseable] [--unknown-table]");
        return ExitCode::from(2);
    };
    let version = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut spec = match args.get(1).map(String::as_str) {
        Some("large") => LegacySpec::large(version),
        Some("medium") => LegacySpec::medium(version),
        _ => LegacySpec::small(version),
    };
    spec.unparseable_times = args.iter().any(|a| a == "--unparseable");
    spec.unknown_table = args.iter().any(|a| a == "--unknown-table");
    let started = std::time::Instant::now();
    match build(&spec, &path) {
        Ok(summary) => {
            eprintln!(
                "{}: {} bytes, {} rows, {} to be rejected, built in {:.1} s",
                path.display(),
                summary.bytes,
                summary.rows(),
                summary.rejected(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("build_fixture: {e}");
            ExitCode::FAILURE
        }
    }
}
