//! `scripts/release`: the tarball, unpacked in a clean folder, is a working hub with no
//! checkout and no cargo on the PATH: the tools find each other and the demo beside themselves.
//!
//! It packs the test build's binaries (`--bin-dir`): the static release build itself takes
//! minutes and is measured by hand (README, "Install").

use hub_tests::{Cmd, KillPidsOnDrop, bin_dir, small_stack, typed_records, workspace_root};
use std::path::Path;

#[test]
fn the_unpacked_tarball_deploys_a_stack_without_cargo() {
    let out = tempfile::tempdir().unwrap();
    let made = Cmd::program(&workspace_root().join("scripts/release"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(out.path())
        .status(0);
    let tarball = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let name = Path::new(&tarball)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let arch = String::from_utf8_lossy(
        &std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(name, format!("hub-{version}-{arch}-linux.tar.gz"));

    let clean = tempfile::tempdir().unwrap();
    Cmd::program(Path::new("tar"))
        .args(["-xzf", &tarball, "-C"])
        .arg(clean.path())
        .status(0);
    let root = clean.path().join(format!("hub-{version}"));
    let bin = root.join("bin");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let run = |name: &str, dir: &Path| {
        Cmd::program(&bin.join(name))
            .current_dir(dir)
            .env("PATH", &path)
            .env("HUB_BIN_DIR", "")
    };

    let empty = tempfile::tempdir().unwrap();
    run("hub-deploy", empty.path())
        .arg("--dry-run")
        .stderr_contains("using the bundled demo stack")
        .status(0);

    let work = tempfile::tempdir().unwrap();
    let _cleanup = KillPidsOnDrop(work.path().join(".hub"));
    let service_py = root.join("share/hub/examples/demo/service.py");
    std::fs::write(work.path().join("compose.yaml"), small_stack(&service_py)).unwrap();
    run("hub-deploy", work.path()).status(0);
    let status = typed_records(&run("hub-status", work.path()).arg("--json").status(0));
    assert_eq!(status.len(), 3);
    run("hub-down", work.path()).status(0);
}
