//! igmpd: userspace IGMP/MLD querier and snooping daemon for Linux.
//!
//! The protocol work lives in the library crates under `crates/`; this binary is the CLI.
//! Commands arrive with the issues that build them (query, snoop, doctor, run).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Userspace IGMP/MLD querier and snooping bridge for Linux.
#[derive(Debug, Parser)]
#[command(name = "igmpd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Decode a hex-encoded IGMP/MLD frame or IP packet and print what it holds.
    Decode {
        /// The bytes as hex digits; spaces and colons are ignored.
        hex: String,
        /// What the bytes start with.
        #[arg(long, value_enum, default_value = "ethernet")]
        layer: Layer,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Layer {
    /// An Ethernet header (as AF_PACKET or tcpdump -xx shows).
    Ethernet,
    /// An IPv4 or IPv6 header.
    Ip,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode { hex, layer } => decode(&hex, layer),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: these are users' errors, not ours.
            eprintln!("igmpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn decode(hex: &str, layer: Layer) -> anyhow::Result<()> {
    let digits: String = hex
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '\n' | '\t'))
        .collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("not an even number of hex digits");
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let text = match layer {
        Layer::Ethernet => igmpd_wire::parse_ethernet(&bytes).map(|f| format!("{f:?}")),
        Layer::Ip => igmpd_wire::parse_ip(&bytes).map(|p| format!("{p:?}")),
    }
    .map_err(|e| anyhow::anyhow!("cannot decode ({}): {e}", e.reason()))?;
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}
