//! `igmpd generate`: the man page and shell completions, generated from the clap
//! definition so that they cannot drift from `--help`. `dist/igmpd.8` is this output,
//! committed; a test fails when it is stale (`IGMPD_BLESS=1 cargo test` rewrites it).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::What;

/// Prints `what` to stdout.
pub fn run(what: What) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match what {
        What::Man => out.write_all(&man()?)?,
        What::Completions { shell } => {
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "igmpd", &mut out)
        }
    }
    Ok(())
}

/// Sections written by hand: what clap does not know (files, signals, exit status).
const EXTRA: &str = r#".SH FILES
.TP
\fI/etc/igmpd/igmpd.toml\fR
The config file of \fBigmpd run\fR (see \fBigmpd check\-config\fR; an example with every
option is installed as /usr/local/share/doc/igmpd/igmpd.toml by scripts/install.sh).
.TP
\fI/run/igmpd/igmpd.sock\fR
The control socket: \fBigmpd status\fR works for every local user; \fBigmpd reload\fR
only for root, the daemon's own user, or members of the config's \fBcontrol_group\fR.
.SH SIGNALS
.TP
\fBSIGHUP\fR
\fBigmpd run\fR re\-reads its config file. Interfaces and bridges whose settings did not
change keep their membership state; changed ones are restarted with the new settings;
removed ones stop. A file with errors is rejected with one log line and the running
configuration stays.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop; \fBigmpd snoop\fR and \fBigmpd run\fR hand each bridge back to the kernel.
.SH SYSTEMD
\fBigmpd run\fR speaks the sd_notify protocol when \fBNOTIFY_SOCKET\fR
is set (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 at half of \fBWATCHDOG_USEC\fR
while the event loop answers), log to journald with structured fields when
\fBJOURNAL_STREAM\fR says stderr is the journal, and keep only CAP_NET_RAW and
CAP_NET_ADMIN once its config is read and its control socket bound. Logging to journald
applies to every subcommand. See dist/igmpd.service.
.SH "SEE ALSO"
\fBbridge\fR(8), \fBip\-link\fR(8), \fBsystemd.service\fR(5)
"#;

/// The man page: the top-level page, then one section per visible subcommand with its
/// synopsis, description and options.
pub fn man() -> anyhow::Result<Vec<u8>> {
    let cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .date("")
        .source(format!("igmpd {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual");
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("igmpd {}", sub.get_name());
        // clap wants a 'static name; the leak is a few bytes in a one-shot command.
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        let sman = clap_mangen::Man::new(sub);
        let mut part = Vec::new();
        writeln!(part, ".SH \"{}\"", name.to_uppercase())?;
        sman.render_synopsis_section(&mut part)?;
        sman.render_description_section(&mut part)?;
        sman.render_options_section(&mut part)?;
        // Nest the subcommand's sections under its own heading.
        let text = String::from_utf8(part)?;
        let mut first = true;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(".SH ") {
                if first {
                    first = false;
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, ".SS {}", rest.trim_matches('"').to_lowercase())?;
                }
            } else {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.extend_from_slice(EXTRA.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dist/igmpd.8 is what `igmpd generate man` prints; rerun with IGMPD_BLESS=1 (or
    /// `igmpd generate man > dist/igmpd.8`) after changing the CLI.
    #[test]
    fn committed_man_page_is_not_stale() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/igmpd.8");
        let fresh = man().expect("render man page");
        if std::env::var_os("IGMPD_BLESS").is_some() {
            std::fs::write(&path, &fresh).expect("write dist/igmpd.8");
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "dist/igmpd.8 is stale: run `IGMPD_BLESS=1 cargo test -p igmpd committed_man_page` or `igmpd generate man > dist/igmpd.8`"
        );
    }

    #[test]
    fn man_page_covers_every_visible_subcommand_and_flag() {
        let text = String::from_utf8(man().unwrap()).unwrap();
        for sub in crate::cli::Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            assert!(
                text.contains(&format!(".SH \"IGMPD {}\"", sub.get_name().to_uppercase())),
                "{}",
                sub.get_name()
            );
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = long.replace('-', "\\-");
                    assert!(text.contains(&roff), "--{long} of {}", sub.get_name());
                }
            }
        }
        assert!(!text.contains("generate"), "hidden subcommand leaked");
    }

    #[test]
    fn completions_render_for_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "igmpd", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("check-config"), "{shell}");
        }
    }
}
