//! The Debian package scripts/package.sh builds: its exact file list, control fields,
//! conffiles and md5sums, contents that are what the packaged binary generates, lintian
//! without errors or warnings, and install / upgrade / remove / purge with dpkg in a
//! throw-away root (chrootless, DPKG_ROOT: this machine's own root is never touched).
//!
//! Skips unless IGMPD_PACKAGE names the .deb: scripts/test.sh builds it with
//! scripts/package.sh and sets it. Needs root (dpkg --root), dpkg-deb, lintian, file.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

const BIN: &str = env!("CARGO_BIN_EXE_igmpd");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every entry of the data archive: mode string as `dpkg-deb -c` prints it, and path.
const FILES: &[(&str, &str)] = &[
    ("drwxr-xr-x", "./"),
    ("drwxr-xr-x", "./etc/"),
    ("drwxr-xr-x", "./etc/igmpd/"),
    ("-rw-r--r--", "./etc/igmpd/igmpd.toml"),
    ("drwxr-xr-x", "./lib/"),
    ("drwxr-xr-x", "./lib/systemd/"),
    ("drwxr-xr-x", "./lib/systemd/system/"),
    ("-rw-r--r--", "./lib/systemd/system/igmpd.service"),
    ("drwxr-xr-x", "./usr/"),
    ("drwxr-xr-x", "./usr/sbin/"),
    ("-rwxr-xr-x", "./usr/sbin/igmpd"),
    ("drwxr-xr-x", "./usr/share/"),
    ("drwxr-xr-x", "./usr/share/bash-completion/"),
    ("drwxr-xr-x", "./usr/share/bash-completion/completions/"),
    (
        "-rw-r--r--",
        "./usr/share/bash-completion/completions/igmpd",
    ),
    ("drwxr-xr-x", "./usr/share/doc/"),
    ("drwxr-xr-x", "./usr/share/doc/igmpd/"),
    ("-rw-r--r--", "./usr/share/doc/igmpd/changelog.gz"),
    ("-rw-r--r--", "./usr/share/doc/igmpd/copyright"),
    ("drwxr-xr-x", "./usr/share/fish/"),
    ("drwxr-xr-x", "./usr/share/fish/vendor_completions.d/"),
    (
        "-rw-r--r--",
        "./usr/share/fish/vendor_completions.d/igmpd.fish",
    ),
    ("drwxr-xr-x", "./usr/share/lintian/"),
    ("drwxr-xr-x", "./usr/share/lintian/overrides/"),
    ("-rw-r--r--", "./usr/share/lintian/overrides/igmpd"),
    ("drwxr-xr-x", "./usr/share/man/"),
    ("drwxr-xr-x", "./usr/share/man/man8/"),
    ("-rw-r--r--", "./usr/share/man/man8/igmpd.8.gz"),
    ("drwxr-xr-x", "./usr/share/zsh/"),
    ("drwxr-xr-x", "./usr/share/zsh/vendor-completions/"),
    ("-rw-r--r--", "./usr/share/zsh/vendor-completions/_igmpd"),
];

/// Shells and where Debian's bash-completion, zsh and fish look for packaged completions.
const COMPLETIONS: &[(&str, &str)] = &[
    ("bash", "usr/share/bash-completion/completions/igmpd"),
    ("zsh", "usr/share/zsh/vendor-completions/_igmpd"),
    ("fish", "usr/share/fish/vendor_completions.d/igmpd.fish"),
];

/// The .deb under test, or None (and a note saying why the test did nothing).
fn package() -> Option<PathBuf> {
    match std::env::var_os("IGMPD_PACKAGE") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!(
                "SKIPPED: IGMPD_PACKAGE is not set (scripts/test.sh builds the package with \
                 scripts/package.sh and sets it to the .deb)"
            );
            None
        }
    }
}

/// A directory of this test's own, removed when dropped (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<TempDir> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("igmpd-pkg-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd`; its stdout when it succeeds, else an error with its stderr.
fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

fn text(cmd: &mut Command) -> Result<String> {
    Ok(String::from_utf8(run(cmd)?)?)
}

/// The package's data unpacked into a new directory.
fn unpacked(deb: &Path, tag: &str) -> Result<TempDir> {
    let dir = TempDir::new(tag)?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir.0))?;
    Ok(dir)
}

/// Cargo's version as Debian writes it (a semver pre-release's "-" sorts as "~").
fn debian_version() -> String {
    env!("CARGO_PKG_VERSION").replace('-', "~")
}

/// The control file's fields (continuation lines joined with "\n").
fn control_fields(deb: &Path) -> Result<BTreeMap<String, String>> {
    let control = text(Command::new("dpkg-deb").arg("-f").arg(deb))?;
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in control.lines() {
        if line.starts_with(' ') {
            let key = last.as_ref().context("continuation line first")?;
            let v: &mut String = fields.get_mut(key).context("field")?;
            v.push('\n');
            v.push_str(line);
        } else {
            let (k, v) = line.split_once(':').context("no colon in a field")?;
            ensure!(!fields.contains_key(k), "{k} twice");
            fields.insert(k.to_string(), v.trim().to_string());
            last = Some(k.to_string());
        }
    }
    Ok(fields)
}

#[test]
fn file_list_is_exactly_the_expected_one() -> Result<()> {
    let Some(deb) = package() else { return Ok(()) };
    let name = deb.file_name().context("file name")?.to_string_lossy();
    ensure!(
        name == format!("igmpd_{}_amd64.deb", debian_version()),
        "named {name}"
    );
    let list = text(Command::new("dpkg-deb").arg("-c").arg(&deb))?;
    let mut got = Vec::new();
    for line in list.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        ensure!(f.len() == 6, "unexpected entry (a symlink?): {line}");
        ensure!(f[1] == "root/root", "not root:root: {line}");
        got.push((f[0].to_string(), f[5].to_string()));
    }
    let want: Vec<(String, String)> = FILES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    ensure!(
        got == want,
        "file list differs:\n got: {got:#?}\nwant: {want:#?}"
    );
    Ok(())
}

#[test]
fn control_fields_conffiles_md5sums_and_scripts() -> Result<()> {
    let Some(deb) = package() else { return Ok(()) };
    let fields = control_fields(&deb)?;
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    let mut want_keys = vec![
        "Architecture",
        "Built-Using",
        "Description",
        "Installed-Size",
        "Maintainer",
        "Package",
        "Priority",
        "Section",
        "Suggests",
        "Version",
    ];
    want_keys.sort();
    // No Depends: nothing to depend on for a static binary (checked below).
    ensure!(keys == want_keys, "control fields: {keys:?}");
    for (k, v) in [
        ("Package", "igmpd".to_string()),
        ("Version", debian_version()),
        ("Architecture", "amd64".to_string()),
        ("Section", "net".to_string()),
        ("Priority", "optional".to_string()),
        ("Suggests", "nftables | iptables".to_string()),
    ] {
        ensure!(fields[k] == v, "{k}: {:?}, want {v:?}", fields[k]);
    }
    let m = &fields["Maintainer"];
    ensure!(
        m.contains(" <") && m.ends_with('>') && m.contains('@'),
        "{m}"
    );
    ensure!(fields["Built-Using"].starts_with("glibc (= "), "{fields:?}");
    let desc = &fields["Description"];
    ensure!(
        desc.contains("\n ") && desc.contains("systemctl enable --now igmpd"),
        "{desc}"
    );

    let data = unpacked(&deb, "ctl")?;
    let ctl = TempDir::new("ctl-debian")?;
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl.0))?;
    let mut names: Vec<String> = std::fs::read_dir(&ctl.0)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    ensure!(
        names
            == [
                "conffiles",
                "control",
                "md5sums",
                "postinst",
                "postrm",
                "prerm"
            ],
        "{names:?}"
    );
    let conffiles = std::fs::read_to_string(ctl.0.join("conffiles"))?;
    ensure!(conffiles == "/etc/igmpd/igmpd.toml\n", "{conffiles:?}");
    for script in ["postinst", "prerm", "postrm"] {
        let p = ctl.0.join(script);
        let mode = std::fs::metadata(&p)?.permissions().mode() & 0o7777;
        ensure!(mode == 0o755, "{script}: mode {mode:o}");
        run(Command::new("sh").arg("-n").arg(&p))?;
        let body = std::fs::read_to_string(&p)?;
        ensure!(
            body.starts_with("#!/bin/sh\n") && body.contains("\nset -e\n"),
            "{script}"
        );
    }

    // md5sums: every regular file but the conffile, each sum right.
    let sums = std::fs::read_to_string(ctl.0.join("md5sums"))?;
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_once("  ").map(|(_, p)| p).context("md5sums line"))
        .collect::<Result<_>>()?;
    listed.sort();
    let mut regular: Vec<&str> = FILES
        .iter()
        .filter(|(m, _)| m.starts_with('-'))
        .map(|(_, p)| p.trim_start_matches("./"))
        .filter(|p| *p != "etc/igmpd/igmpd.toml")
        .collect();
    regular.sort();
    ensure!(listed == regular, "md5sums lists {listed:?}");
    run(Command::new("md5sum")
        .args(["--check", "--quiet", "--strict"])
        .arg(ctl.0.join("md5sums"))
        .current_dir(&data.0))?;

    // Installed-Size as dpkg-gencontrol counts: bytes of files, 1 KiB per directory.
    let mut bytes = 0u64;
    for (mode, path) in FILES.iter().filter(|(_, p)| *p != "./") {
        bytes += if mode.starts_with('-') {
            std::fs::metadata(data.0.join(path))?.len()
        } else {
            1024
        };
    }
    let kib = bytes.div_ceil(1024).to_string();
    ensure!(
        fields["Installed-Size"] == kib,
        "Installed-Size {fields:?}, counted {kib}"
    );
    Ok(())
}

#[test]
fn contents_are_what_the_packaged_binary_generates() -> Result<()> {
    let Some(deb) = package() else { return Ok(()) };
    let dir = unpacked(&deb, "contents")?;
    let root = Path::new(ROOT);
    let bin = dir.0.join("usr/sbin/igmpd");
    let version = text(Command::new(&bin).arg("--version"))?;
    ensure!(
        version.trim() == format!("igmpd {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    // Static (so no Depends), stripped (the line tables stay in target/).
    let file = text(Command::new("file").arg("-b").arg(&bin))?;
    ensure!(
        file.contains("static-pie linked") && file.contains(", stripped"),
        "{file}"
    );

    let man = run(Command::new("gzip")
        .arg("-dc")
        .arg(dir.0.join("usr/share/man/man8/igmpd.8.gz")))?;
    ensure!(
        man == run(Command::new(&bin).args(["generate", "man"]))?,
        "man page is not the packaged binary's"
    );
    ensure!(
        man == std::fs::read(root.join("dist/igmpd.8"))?,
        "man page differs from dist/igmpd.8"
    );
    for (shell, path) in COMPLETIONS {
        let packaged = std::fs::read(dir.0.join(path))?;
        let generated = run(Command::new(&bin).args(["generate", "completions", shell]))?;
        ensure!(
            packaged == generated,
            "{shell} completions are not the packaged binary's"
        );
        let ours = run(Command::new(BIN).args(["generate", "completions", shell]))?;
        ensure!(
            packaged == ours,
            "{shell} completions differ from this tree's igmpd"
        );
    }

    let conf = dir.0.join("etc/igmpd/igmpd.toml");
    ensure!(
        std::fs::read(&conf)? == std::fs::read(root.join("dist/igmpd.toml"))?,
        "config"
    );
    run(Command::new(&bin).arg("check-config").arg(&conf))?;

    // The unit runs the packaged binary with the packaged config; nothing else differs.
    let unit = std::fs::read_to_string(dir.0.join("lib/systemd/system/igmpd.service"))?;
    let dist = std::fs::read_to_string(root.join("dist/igmpd.service"))?;
    ensure!(
        unit == dist.replace("/usr/local/sbin/igmpd", "/usr/sbin/igmpd"),
        "unit differs"
    );
    ensure!(unit.contains("\nExecStart=/usr/sbin/igmpd run --config /etc/igmpd/igmpd.toml\n"));
    for line in unit.lines().filter(|l| l.starts_with("Exec")) {
        let cmd = line
            .split_once('=')
            .context("Exec line")?
            .1
            .trim_start_matches('-');
        let prog = cmd.split_whitespace().next().context("empty Exec")?;
        ensure!(
            prog == "/bin/kill" || dir.0.join(prog.trim_start_matches('/')).is_file(),
            "{line}: not in the package"
        );
    }

    let copyright = std::fs::read_to_string(dir.0.join("usr/share/doc/igmpd/copyright"))?;
    ensure!(
        env!("CARGO_PKG_LICENSE") == "MIT OR Apache-2.0",
        "license changed: update dist/debian/copyright"
    );
    ensure!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ) && copyright.contains("\nFiles: *\nCopyright: 2")
            && copyright.contains("\nLicense: Expat or Apache-2.0\n")
            && copyright.contains("\nLicense: Expat\n")
            && copyright.contains("\nLicense: Apache-2.0\n"),
        "{copyright}"
    );
    let changelog = text(
        Command::new("gzip")
            .arg("-dc")
            .arg(dir.0.join("usr/share/doc/igmpd/changelog.gz")),
    )?;
    ensure!(
        changelog.starts_with(&format!(
            "igmpd ({}) unstable; urgency=medium\n",
            debian_version()
        )),
        "{changelog}"
    );

    // Reproducible: every entry has the same mtime, the last commit's (SOURCE_DATE_EPOCH).
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(e) => e,
        Err(_) => text(Command::new("git").args(["-C", ROOT, "log", "-1", "--format=%ct"]))?,
    };
    let epoch: i64 = epoch.trim().parse()?;
    for (_, path) in FILES {
        let m = std::fs::symlink_metadata(dir.0.join(path))?.mtime();
        ensure!(
            m == epoch,
            "{path}: mtime {m}, want {epoch} (built from another commit?)"
        );
    }
    Ok(())
}

#[test]
fn lintian_reports_no_errors_or_warnings() -> Result<()> {
    let Some(deb) = package() else { return Ok(()) };
    // Overridden tags (dist/debian/lintian-overrides) are not reported; infos may be.
    let out = Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .arg(&deb)
        .output()
        .context("lintian (scripts/install-deps.sh installs it)")?;
    let report = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success()
            && !report
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian {}:\n{report}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// dpkg on a root of its own: its database in `root`, maintainer scripts run outside a
/// chroot with DPKG_ROOT=root (deb-systemd-helper works there; systemctl is skipped).
fn dpkg(root: &Path, args: &[&str], deb: Option<&Path>) -> Result<String> {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--log=/dev/null"])
        .args(args);
    if let Some(deb) = deb {
        cmd.arg(deb);
    }
    text(&mut cmd)
}

fn status(root: &Path) -> Result<String> {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Status} ${Version}", "igmpd"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn installs_upgrades_removes_and_purges_in_a_throwaway_root() -> Result<()> {
    let Some(deb) = package() else { return Ok(()) };
    let root = TempDir::new("root")?;
    let r = &root.0;
    let admin = r.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d))?;
    }
    std::fs::write(admin.join("status"), "")?;
    std::fs::write(admin.join("available"), "")?;

    dpkg(r, &["--install"], Some(&deb))?;
    ensure!(
        status(r)? == format!("install ok installed {}", debian_version()),
        "{}",
        status(r)?
    );
    for (_, path) in FILES {
        ensure!(r.join(path).exists(), "{path} not installed");
    }
    run(Command::new(r.join("usr/sbin/igmpd")).arg("--version"))?;
    let wants = r.join("etc/systemd/system/multi-user.target.wants/igmpd.service");
    // (The link would point to /lib/..., absolute: is_symlink, not exists, which follows it.)
    ensure!(!wants.is_symlink(), "enabled on install");
    let dsh = r.join("var/lib/systemd/deb-systemd-helper-enabled/igmpd.service.dsh-also");
    let state = std::fs::read_to_string(&dsh).context("deb-systemd-helper state")?;
    ensure!(
        state.contains("/etc/systemd/system/multi-user.target.wants/igmpd.service"),
        "{state}"
    );

    // The admin enables it and edits the config; an upgrade keeps both.
    run(Command::new("systemctl")
        .arg(format!("--root={}", r.display()))
        .args(["enable", "igmpd.service"]))?;
    ensure!(
        wants.is_symlink(),
        "systemctl --root enable made no symlink"
    );
    let conf = r.join("etc/igmpd/igmpd.toml");
    let edited = format!("{}\n[interface.lan0]\n", std::fs::read_to_string(&conf)?);
    std::fs::write(&conf, &edited)?;
    dpkg(r, &["--install"], Some(&deb))?;
    ensure!(wants.is_symlink(), "upgrade disabled the unit");
    ensure!(
        std::fs::read_to_string(&conf)? == edited,
        "upgrade replaced the edited conffile"
    );

    // Remove: the files go, the conffile and the admin's enablement stay.
    dpkg(r, &["--remove", "igmpd"], None)?;
    ensure!(
        status(r)?.starts_with("deinstall ok config-files"),
        "{}",
        status(r)?
    );
    for (mode, path) in FILES.iter().filter(|(m, _)| m.starts_with('-')) {
        let kept = *path == "./etc/igmpd/igmpd.toml";
        ensure!(r.join(path).exists() == kept, "{mode} {path} after remove");
    }

    // Purge: nothing of igmpd is left.
    dpkg(r, &["--purge", "igmpd"], None)?;
    ensure!(status(r)?.is_empty(), "{}", status(r)?);
    for gone in [conf.parent().context("etc/igmpd")?, &wants, &dsh] {
        ensure!(
            !gone.exists() && !gone.is_symlink(),
            "{} after purge",
            gone.display()
        );
    }
    let left = text(Command::new("find").arg(r).args([
        "-path",
        &admin.display().to_string(),
        "-prune",
        "-o",
        "-type",
        "f",
        "-print",
        "-o",
        "-type",
        "l",
        "-print",
    ]))?;
    if !left.trim().is_empty() {
        bail!("files left after purge:\n{left}");
    }
    Ok(())
}
