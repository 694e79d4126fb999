//! `scripts/install`: hub installed into a prefix works without the checkout, from any folder:
//! a deploy, status (0, then 1 once a CORE service is killed, naming it `exited`), logs, and
//! teardown; the completions and man pages come from the tools' clap definitions; and
//! `--uninstall` leaves the prefix exactly as it was.
//!
//! The install takes the test build's binaries (`--bin-dir`), so no release build runs per test.

use hub::records::{Record, ServiceState};
use hub_tests::{
    Cmd, KillPidsOnDrop, bin_dir, small_stack, typed_records, variants, workspace_root,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const TOOLS: [&str; 6] = [
    "hub-levels",
    "hub-start",
    "hub-wait-healthy",
    "hub-retry",
    "hub-breaker",
    "hub-report",
];

/// Every path under `dir`, relative, folders marked with a trailing `/`.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                stack.push(path);
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

fn install(prefix: &Path) {
    Cmd::program(&workspace_root().join("scripts/install"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--bin-dir")
        .arg(bin_dir())
        .status(0);
}

/// A PATH with the prefix's bin and the system's, and no cargo.
fn path_without_cargo(bin: &Path) -> String {
    format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())
}

/// An installed command, run from `dir` with a PATH that has no cargo and no checkout.
fn installed(prefix: &Path, name: &str, dir: &Path) -> Cmd {
    Cmd::program(&prefix.join("bin").join(name))
        .current_dir(dir)
        .env("PATH", path_without_cargo(&prefix.join("bin")))
        .env("HUB_BIN_DIR", "")
}

#[test]
fn an_install_runs_a_stack_from_any_folder_and_uninstalls_cleanly() {
    let prefix_dir = tempfile::tempdir().unwrap();
    let prefix = prefix_dir.path().join("local");
    // The user's own files in the prefix stay as they are.
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/mine"), "#!/bin/sh\n").unwrap();
    let before = tree(prefix_dir.path());
    install(&prefix);

    let work = tempfile::tempdir().unwrap();
    let _cleanup = KillPidsOnDrop(work.path().join(".hub"));
    let service_py = prefix.join("share/hub/examples/demo/service.py");
    std::fs::write(work.path().join("compose.yaml"), small_stack(&service_py)).unwrap();

    // The bundled demo is found from any folder too (its plan only: its ports are fixed, and
    // other people's demos may hold them).
    let empty = tempfile::tempdir().unwrap();
    let dry = installed(&prefix, "hub-deploy", empty.path())
        .arg("--dry-run")
        .stderr_contains("using the bundled demo stack")
        .status(0);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("keycloak"));

    installed(&prefix, "hub-deploy", work.path()).status(0);
    let up = typed_records(
        &installed(&prefix, "hub-status", work.path())
            .arg("--json")
            .status(0),
    );
    let db = variants!(&up, Record::ServiceStatus)
        .into_iter()
        .find(|s| s.of.service == "db")
        .unwrap();
    assert_eq!(db.state, ServiceState::Healthy);
    hub_tests::kill_group(u64::from(db.pid.unwrap()));
    let table = installed(&prefix, "hub-status", work.path()).status(1);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let db_row = table.lines().find(|l| l.starts_with("db ")).unwrap();
    assert!(db_row.contains(" exited"), "{table}");

    let logs = installed(&prefix, "hub-logs", work.path())
        .args(["web", "-n", "1"])
        .status(0);
    let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(logs.starts_with("web: "), "{logs}");
    // Its first attempt, found by the header hub-start writes before each attempt.
    let first = installed(&prefix, "hub-logs", work.path())
        .args(["web", "--attempt", "1"])
        .status(0);
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(first.contains("web: attempt 1: cannot connect"), "{first}");
    assert!(!first.contains("ready on"), "only attempt 1: {first}");

    installed(&prefix, "hub-down", work.path()).run();
    Cmd::program(&workspace_root().join("scripts/install"))
        .arg("--uninstall")
        .arg("--prefix")
        .arg(&prefix)
        .status(0);
    assert_eq!(tree(prefix_dir.path()), before, "the prefix is as it was");
}

#[test]
#[cfg_attr(not(have_man), ignore = "needs man and groff")]
fn bash_completes_hub_retry_options_and_every_man_page_renders() {
    let prefix_dir = tempfile::tempdir().unwrap();
    let prefix = prefix_dir.path().to_path_buf();
    install(&prefix);

    let completion = prefix.join("share/bash-completion/completions/hub-retry");
    let script = format!(
        "source '{}'; COMP_WORDS=(hub-retry --ti); COMP_CWORD=1; COMP_LINE='hub-retry --ti'; \
         COMP_POINT=${{#COMP_LINE}}; _hub__retry hub-retry --ti hub-retry; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        completion.display()
    );
    let out = Cmd::program(Path::new("bash"))
        .args(["-c", &script])
        .status(0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--timeout\n");
    for tool in TOOLS {
        assert!(
            prefix
                .join(format!("share/zsh/site-functions/_{tool}"))
                .is_file()
        );
        assert!(
            prefix
                .join(format!("share/fish/vendor_completions.d/{tool}.fish"))
                .is_file()
        );
    }

    if !has_man() {
        return;
    }
    for tool in TOOLS {
        let page: PathBuf = prefix.join(format!("share/man/man1/{tool}.1"));
        let out = Cmd::program(Path::new("man"))
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .status(0);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("NAME") && text.contains(tool),
            "{tool}: {text}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{tool}: {:?}",
            out.stderr
        );
    }
}

/// `man` and a roff formatter, or a loud SKIPPED line (a failure in CI).
fn has_man() -> bool {
    let found = ["man", "groff"].iter().all(|tool| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    hub_tests::present_or_skip(
        found,
        "man or groff (man -l did not run)",
        "apt-get install man-db groff-base; .ci/setup.d/40-man.sh installs them",
    )
}
