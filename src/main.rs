//! igmpd: userspace IGMP/MLD querier and snooping daemon for Linux.
//!
//! The protocol work lives in the library crates under `crates/`; this binary is the CLI
//! (`cli`, one definition per option: `options`), one module per subcommand (`cmd`), the
//! config file (`config`, resolved to the daemons' settings by `settings`), the control
//! socket (`control`), the metrics endpoint (`metrics`), the status tables (`status`) and
//! the doctor (`doctor`).

mod cli;
mod cmd;
mod config;
mod control;
mod doctor;
mod duration;
mod logging;
mod metrics;
mod options;
mod privs;
mod sdnotify;
mod settings;
mod status;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.verbose);
    cmd::run(cli.command)
}
