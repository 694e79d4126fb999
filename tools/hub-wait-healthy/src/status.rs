//! The live status line: on a terminal, one line at the bottom of stderr saying how many
//! services are healthy and who is still being waited for, redrawn in place and cleared before
//! any other line is written. Never drawn when stderr is not a terminal (logs stay clean).

use hub::duration;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// The widest line drawn (a wider one would wrap and break the in-place redraw).
const MAX_WIDTH: usize = 78;

/// The status line on stderr.
pub struct StatusLine {
    enabled: bool,
    shown: bool,
    /// What is on screen, so an unchanged line is not rewritten.
    last: String,
}

impl StatusLine {
    /// Enabled when stderr is a terminal, `-q` is off and logs are not JSON.
    pub fn for_stderr() -> StatusLine {
        StatusLine {
            enabled: std::io::stderr().is_terminal() && !hub::log::quiet() && !hub::log::json(),
            shown: false,
            last: String::new(),
        }
    }

    /// True when the line is drawn at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replace the line with `text` (nothing when there is nothing to say).
    pub fn draw(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        if text.is_empty() {
            self.clear();
            return;
        }
        let text: String = text.chars().take(MAX_WIDTH).collect();
        if self.shown && text == self.last {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if hub::log::color() {
            write!(err, "\r\x1b[2K\x1b[2m{text}\x1b[0m")
        } else {
            write!(err, "\r\x1b[2K{text}")
        };
        let _ = err.flush();
        self.shown = true;
        self.last = text;
    }

    /// Erase the line, so the next line written starts clean.
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

/// `⏳ 3 healthy · waiting for keycloak (12s), kas (3s), +2 more`; empty when no one waits.
/// `waits` is ordered longest wait first.
pub fn text(healthy: usize, failed: usize, waits: &[(&str, Duration)]) -> String {
    if waits.is_empty() {
        return String::new();
    }
    let mut line = format!("⏳ {healthy} healthy");
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line.push_str(" · waiting for ");
    for (shown, (name, waited)) in waits.iter().enumerate() {
        let part = format!(
            "{}{name} ({})",
            if shown == 0 { "" } else { ", " },
            whole_seconds(*waited)
        );
        // Leave room for ", +N more".
        if shown > 0 && line.chars().count() + part.chars().count() + 10 > MAX_WIDTH {
            line.push_str(&format!(", +{} more", waits.len() - shown));
            return line;
        }
        line.push_str(&part);
    }
    line
}

/// `12s`, `1m30s`: a wait to the second, so the line changes at most once a second.
fn whole_seconds(waited: Duration) -> String {
    let secs = waited.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        duration::human(Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_names_the_longest_waits() {
        assert_eq!(text(1, 0, &[]), "");
        let waits = [
            ("keycloak", Duration::from_millis(12_400)),
            ("kas", Duration::from_secs(3)),
        ];
        assert_eq!(
            text(3, 1, &waits),
            "⏳ 3 healthy, 1 failed · waiting for keycloak (12s), kas (3s)"
        );
        let many: Vec<(String, Duration)> = (0..30)
            .map(|i| (format!("service-{i}"), Duration::from_secs(1)))
            .collect();
        let many: Vec<(&str, Duration)> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        let line = text(0, 0, &many);
        assert!(line.ends_with("more"), "{line}");
        assert!(line.chars().count() <= MAX_WIDTH, "{line}");
    }
}
