//! `igmpd check-config PATH`: each error of a config file with its file, line and key.

use std::path::Path;

use anyhow::Result;

use crate::config;

/// Prints what the file at `path` runs, or each of its errors.
pub fn run(path: &Path) -> Result<()> {
    match config::load(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} interface(s), {} bridge(s))",
                path.display(),
                c.interfaces.len(),
                c.bridges.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!("{}: {} error(s)", path.display(), errors.len())
        }
    }
}
