//! A real Docker engine for the integration tests: is one answering, the test image, and one
//! compose project per test that is torn down even when the test fails.
//!
//! No registry can be reached, so the image is built here: the static test server
//! (`tests/docker/server.c`, `gcc -static`) copied into a `FROM scratch` image with the legacy
//! builder (`DOCKER_BUILDKIT=0`; there is no buildx). It is built once and shared by the tests
//! that run at the same time; the last one to drop it removes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The repository of every test image; the tag says which test process built it.
pub const IMAGE_REPO: &str = "hub-test-server";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run `docker ARGS…` and return its output (never panics on a non-zero status).
pub fn docker<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running docker")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn engine_answers() -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let compose = Command::new("docker")
            .args(["compose", "version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        info.is_ok_and(|s| s.success()) && compose.is_ok_and(|s| s.success())
    })
}

/// True when a Docker engine and `docker compose` answer. Otherwise prints a loud SKIPPED line
/// and returns false, so the test can return and pass, unless `HUB_REQUIRE_DOCKER=1` (set by
/// `.ci/setup.d/50-docker.sh` once it started an engine): then a missing engine fails the test.
pub fn engine_or_skip(test: &str) -> bool {
    if engine_answers() {
        return true;
    }
    assert!(
        std::env::var("HUB_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "{test}: HUB_REQUIRE_DOCKER=1 but no Docker engine answers `docker info` (see /tmp/dockerd.log)"
    );
    // Written to the stderr handle, not with eprintln!, so the test harness does not swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!! SKIPPED: no Docker engine: {test} did not run (`docker info` or `docker compose version` failed; .ci/setup.d/50-docker.sh starts one) !!!!!!!!!!"
    );
    false
}

/// The test server, compiled once per test process with `gcc -static`.
fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = crate::workspace_root();
        let dir = root.join("target").join("docker-test");
        std::fs::create_dir_all(&dir).expect("mkdir target/docker-test");
        let source = root.join("tests").join("docker").join("server.c");
        let partial = dir.join(format!("server.{}", std::process::id()));
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&partial)
            .arg(&source)
            .output()
            .expect("running gcc (apt-get install gcc libc6-dev)");
        assert!(
            out.status.success(),
            "gcc -static {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let binary = dir.join("server");
        std::fs::rename(&partial, &binary).expect("rename the test server");
        binary
    })
}

/// A built test image, removed (`docker rmi`) when dropped.
pub struct TestImage {
    tag: String,
}

impl TestImage {
    /// Build a fresh image with its own tag (`hub-test-server:p<PID>-<N>`).
    pub fn build() -> TestImage {
        remove_stale_images();
        let tag = format!(
            "{IMAGE_REPO}:p{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let context = tempfile::tempdir().expect("temp build context");
        std::fs::copy(server_binary(), context.path().join("server")).expect("copy server");
        std::fs::copy(
            crate::workspace_root().join("tests/docker/Dockerfile"),
            context.path().join("Dockerfile"),
        )
        .expect("copy Dockerfile");
        let out = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &tag, "--label"])
            .arg(format!("hub.test.tag={tag}"))
            .arg(context.path())
            .stdin(Stdio::null())
            .output()
            .expect("running docker build");
        assert!(
            out.status.success(),
            "docker build {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestImage { tag }
    }

    /// The image shared by the tests running now (built on first use, rebuilt if the last
    /// user dropped it).
    pub fn shared() -> Arc<TestImage> {
        static SHARED: Mutex<Weak<TestImage>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(image) = shared.upgrade() {
            return image;
        }
        let image = Arc::new(TestImage::build());
        *shared = Arc::downgrade(&image);
        image
    }

    /// `hub-test-server:p<PID>-<N>`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// True while the engine still has this image.
    pub fn exists(&self) -> bool {
        !stdout_of(&docker(["images", "-q", &self.tag])).is_empty()
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = docker(["rmi", &self.tag]);
    }
}

/// Images left by test processes that died before dropping them.
fn remove_stale_images() {
    let listed = docker(["images", IMAGE_REPO, "--format", "{{.Tag}}"]);
    for tag in stdout_of(&listed).lines() {
        let pid = tag
            .strip_prefix('p')
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = docker(["rmi", "-f", &format!("{IMAGE_REPO}:{tag}")]);
        }
    }
}

/// One compose project for one test: a compose file in a temp folder, a unique project name,
/// and on drop `docker compose down -v --remove-orphans --rmi local`, then any container or
/// network still labelled with the project is force-removed.
pub struct Project {
    name: String,
    file: PathBuf,
    // Dropped after `down` (field order): the folder and the image outlive the containers.
    _dir: tempfile::TempDir,
    image: Arc<TestImage>,
}

impl Project {
    /// A project named `hubtest-<hint>-<pid>-<n>` from `yaml`, where `{{IMAGE}}` stands for the
    /// shared test image.
    pub fn new(hint: &str, yaml: &str) -> Project {
        Project::with_image(hint, yaml, TestImage::shared())
    }

    /// The same with a given image.
    pub fn with_image(hint: &str, yaml: &str, image: Arc<TestImage>) -> Project {
        let name = format!(
            "hubtest-{hint}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().expect("temp project folder");
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, yaml.replace("{{IMAGE}}", image.tag())).expect("write compose.yaml");
        Project {
            name,
            file,
            _dir: dir,
            image,
        }
    }

    /// The project name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The compose file's absolute path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The image this project's services use.
    pub fn image(&self) -> &Arc<TestImage> {
        &self.image
    }

    /// `docker compose -p NAME -f FILE`, ready for a subcommand.
    pub fn compose(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(["compose", "-p", &self.name, "-f"])
            .arg(&self.file)
            .stdin(Stdio::null());
        cmd
    }

    /// Containers (any state) and networks still labelled with this project.
    pub fn leftovers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let containers = docker(["ps", "-a", "-q", "--filter", &label]);
        let networks = docker(["network", "ls", "-q", "--filter", &label]);
        let volumes = docker(["volume", "ls", "-q", "--filter", &label]);
        [containers, networks, volumes]
            .iter()
            .flat_map(|o| stdout_of(o).lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    /// Tear the project down (also done on drop).
    pub fn down(&self) {
        let _ = self
            .compose()
            .args([
                "down",
                "-v",
                "--remove-orphans",
                "--rmi",
                "local",
                "--timeout",
                "2",
            ])
            .output();
        let label = format!("label=com.docker.compose.project={}", self.name);
        for id in stdout_of(&docker(["ps", "-a", "-q", "--filter", &label])).lines() {
            let _ = docker(["rm", "-f", "-v", id]);
        }
        for id in stdout_of(&docker(["network", "ls", "-q", "--filter", &label])).lines() {
            let _ = docker(["network", "rm", id]);
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.down();
    }
}
