//! hub-report's HTML in a real browser: each recorded stream's report is opened in headless
//! Chromium, which must log no console message at all (the page has no script, and its
//! Content-Security-Policy makes any attempt to load an asset a logged violation), and its
//! screenshot must hold the bar colours the timeline should draw, and not the ones it should not.
//!
//! A control page that does log an error proves the console check can fail. Without Chromium
//! (a developer's laptop) the test prints a loud SKIPPED line and passes; under CI (`CI` set)
//! a missing Chromium is a failure, since .ci/setup.d/30-report.sh installs it.

use hub_tests::{Cmd, fixture};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

type Rgb = [u8; 3];

// The timeline's bar colours (tools/hub-report/src/html.rs).
const HEALTHY: [u8; 3] = [0x2e, 0x9e, 0x44];
const RETRIED: [u8; 3] = [0xf0, 0xa0, 0x30];
const FAILED: [u8; 3] = [0xd6, 0x3c, 0x3c];
const CUT_SHORT: [u8; 3] = [0x8a, 0x8a, 0x8a];
const CRITICAL_BAND: [u8; 3] = [0xea, 0xf0, 0xfd];

/// Each legend swatch is 14×10 px: a colour that only the legend shows stays under this.
const LEGEND_ONLY: usize = 200;
/// A colour the bars show covers far more than its swatch.
const DRAWN: usize = 300;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HUB_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium: .ci/setup.d/30-report.sh installs Debian's `chromium`"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPED {test}: no chromium on PATH (apt-get install chromium) !!!!!!!!\n"
        );
    }
    found
}

/// Open `page` in headless Chromium, take a screenshot, and return (stderr, PNG path).
fn render(chromium: &Path, page: &Path, dir: &Path) -> (String, PathBuf) {
    let shot = dir.join("shot.png");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1100,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let pid = child.id();
    let mut stderr_pipe = child.stderr.take().expect("stderr pipe");
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut text);
        let _ = done.send(text);
    });
    // Chromium closes stderr when it exits; a hung browser is killed at the deadline.
    let stderr = match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium (pid {pid}) did not finish within 120 s");
        }
    };
    let status = child.wait().expect("waiting for chromium");
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    assert!(shot.is_file(), "no screenshot written\n{stderr}");
    (stderr, shot)
}

fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// How many pixels of the screenshot have each colour (±2 per channel).
fn count_colours(png_path: &Path, colours: &[[u8; 3]]) -> Vec<usize> {
    let file = std::fs::File::open(png_path).expect("screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "a colour screenshot");
    let mut counts = vec![0; colours.len()];
    for pixel in buf[..info.buffer_size()].chunks_exact(channels) {
        for (i, colour) in colours.iter().enumerate() {
            if pixel[..3]
                .iter()
                .zip(colour)
                .all(|(a, b)| a.abs_diff(*b) <= 2)
            {
                counts[i] += 1;
            }
        }
    }
    counts
}

fn html_report(stream: &str, dir: &Path) -> PathBuf {
    let page = dir.join(format!("{stream}.html"));
    Cmd::new("hub-report")
        .arg(fixture(&format!("events/{stream}.jsonl")))
        .args(["--format", "html", "--output"])
        .arg(&page)
        .run();
    page
}

/// The page must be self-contained: nothing that could load something else.
fn assert_self_contained(html: &str) {
    for needle in ["<script", "<link", " src=", " href=", "url(", "@import"] {
        assert!(!html.contains(needle), "the page holds `{needle}`");
    }
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
#[cfg_attr(not(have_chromium), ignore = "needs chromium on PATH")]
fn reports_render_in_chromium_with_their_bars_and_no_console_output() {
    let Some(chromium) = chromium_or_skip("reports_render_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // (stream, colours drawn as bars, colours that must not be, critical path drawn)
    let cases: [(&str, &[Rgb], &[Rgb]); 6] = [
        ("healthy", &[HEALTHY], &[RETRIED, FAILED, CUT_SHORT]),
        ("degraded", &[HEALTHY, FAILED], &[RETRIED, CUT_SHORT]),
        ("core-failure", &[HEALTHY, FAILED], &[RETRIED, CUT_SHORT]),
        ("interrupted", &[HEALTHY, CUT_SHORT], &[RETRIED, FAILED]),
        ("retries", &[HEALTHY, RETRIED, FAILED], &[CUT_SHORT]),
        ("pipeline", &[HEALTHY], &[CUT_SHORT]),
    ];
    for (stream, drawn, absent) in cases {
        let page = html_report(stream, dir.path());
        assert_self_contained(&std::fs::read_to_string(&page).expect("page"));
        let (stderr, shot) = render(&chromium, &page, dir.path());
        let console = console_lines(&stderr);
        assert!(console.is_empty(), "{stream}: console output: {console:#?}");
        let counts = count_colours(&shot, drawn);
        for (colour, count) in drawn.iter().zip(&counts) {
            assert!(
                *count >= DRAWN,
                "{stream}: only {count} pixels of {colour:02x?}: bars not drawn"
            );
        }
        let counts = count_colours(&shot, absent);
        for (colour, count) in absent.iter().zip(&counts) {
            assert!(
                *count <= LEGEND_ONLY,
                "{stream}: {count} pixels of {colour:02x?}, which no bar should have"
            );
        }
        let band = count_colours(&shot, &[CRITICAL_BAND])[0];
        assert!(
            band >= 10_000,
            "{stream}: the critical path's rows are not highlighted ({band} px)"
        );
        if stream == "retries" {
            // Keep one screenshot around for a person to look at.
            let keep = std::env::temp_dir().join("hub-report-retries.png");
            let _ = std::fs::copy(&shot, keep);
        }
    }
}

#[test]
#[cfg_attr(not(have_chromium), ignore = "needs chromium on PATH")]
fn trend_page_renders_in_chromium() {
    let Some(chromium) = chromium_or_skip("trend_page_renders_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("trend.html");
    Cmd::new("hub-report")
        .args(["trend", "--format", "html", "--history"])
        .arg(fixture("events/history.jsonl"))
        .arg("--output")
        .arg(&page)
        .status(1); // the fixture's last run is a regression
    assert_self_contained(&std::fs::read_to_string(&page).expect("page"));
    let (stderr, shot) = render(&chromium, &page, dir.path());
    assert!(
        console_lines(&stderr).is_empty(),
        "console output:\n{stderr}"
    );
    let [green, red] = count_colours(&shot, &[HEALTHY, FAILED])[..] else {
        unreachable!()
    };
    assert!(green >= 5_000, "trend bars not drawn ({green} px)");
    assert!(red >= 50, "the regression is not outlined ({red} px)");
}

#[test]
#[cfg_attr(not(have_chromium), ignore = "needs chromium on PATH")]
fn the_console_check_catches_an_error() {
    let Some(chromium) = chromium_or_skip("the_console_check_catches_an_error") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>broken</p>\
         <script>console.error('deliberate error')</script></body></html>",
    )
    .expect("write page");
    let (stderr, _) = render(&chromium, &page, dir.path());
    let console = console_lines(&stderr);
    assert!(
        console.iter().any(|l| l.contains("deliberate error")),
        "the console check would miss errors:\n{stderr}"
    );
}
