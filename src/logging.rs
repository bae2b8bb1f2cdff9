//! Where the log goes: stderr, or journald under systemd.

/// Logs to stderr, or to journald with structured fields (IFACE=, GROUP=, ... as journal
/// fields, `journalctl IFACE=eth0`) when stderr is the journal stream systemd gave us
/// (`JOURNAL_STREAM` names stderr's device and inode). If the journal socket cannot be
/// opened, stderr it is.
pub fn init(verbose: u8) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // `RUST_LOG=igmpd_snooping=debug,info` style: per-target levels. (Not EnvFilter: its
    // span and field matching pulls in a regex engine, a tenth of the binary, for
    // nothing a daemon's user asks for.)
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    if crate::sdnotify::stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_syslog_identifier("igmpd".into());
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .with(filter)
        .try_init();
}
