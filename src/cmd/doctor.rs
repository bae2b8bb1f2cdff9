//! `igmpd doctor IFACE`: exit status 0 when nothing is wrong, 1 for a warning or an error,
//! 2 when it could not run.

use std::process::ExitCode;

use crate::cli::DoctorArgs;

/// Runs the doctor (`crate::doctor`) on a current-thread runtime.
pub fn run(args: DoctorArgs) -> ExitCode {
    match super::block_on(crate::doctor::diagnose(&args)).and_then(|r| r) {
        Ok(code) => ExitCode::from(code),
        Err(e) => super::failed(&e, ExitCode::from(2)),
    }
}
