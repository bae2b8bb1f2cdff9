//! igmpd: userspace IGMP/MLD querier and snooping daemon for Linux.
//!
//! The protocol work lives in the library crates under `crates/`; this binary is the CLI.
//! Commands arrive with the issues that build them (query, snoop, doctor, run).

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
    /// Decode a hex-encoded IGMP/MLD frame (Ethernet, IPv4 or IPv6 first) and print it.
    Decode {
        /// The frame as hex digits; spaces and colons are ignored.
        hex: String,
        /// What the bytes start with.
        #[arg(long, value_enum, default_value = "ethernet")]
        layer: Layer,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Layer {
    Ethernet,
    Ip,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { hex, layer } => decode(&hex, layer),
    }
}

fn decode(hex: &str, layer: Layer) -> anyhow::Result<()> {
    let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if digits.len() % 2 != 0 {
        anyhow::bail!("odd number of hex digits");
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let frame = match layer {
        Layer::Ethernet => igmpd_wire::frame::parse_ethernet(&bytes),
        Layer::Ip => igmpd_wire::frame::parse_ip(&bytes),
    };
    match frame {
        Ok(f) => {
            println!("{f:#?}");
            Ok(())
        }
        Err(e) => anyhow::bail!("cannot decode: {e}"),
    }
}
