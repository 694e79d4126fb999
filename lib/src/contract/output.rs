//! The records writer: stdout carries records only, one per line, flushed per line.
//!
//! Flushing each line matters: the next tool in the pipe reacts to a record the moment it is
//! written, not when a buffer fills. A closed pipe ends the program quietly.

use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;

/// Writes record lines to stdout (or any writer), one flush per line.
pub struct RecordWriter {
    out: Box<dyn Write + Send>,
}

impl RecordWriter {
    /// A writer on standard output.
    pub fn stdout() -> Self {
        RecordWriter {
            out: Box::new(std::io::stdout()),
        }
    }

    /// A writer on any sink (tests, files).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        RecordWriter { out }
    }

    /// Write one line (a record already encoded, or a line passed through) and flush.
    pub fn line(&mut self, line: &str) -> Result<()> {
        let line = line.trim_end_matches(['\n', '\r']);
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("writing records to stdout", &e))
    }

    /// Encode a record body with its envelope and write it.
    pub fn record(
        &mut self,
        kind: &str,
        run_id: Option<&str>,
        body: &impl Serialize,
    ) -> Result<()> {
        let line = crate::records::to_line(kind, run_id, body)?;
        self.line(&line)
    }

    /// Write one typed record, stamped now, for `run_id`.
    pub fn emit(&mut self, run_id: Option<&str>, record: crate::records::Record) -> Result<()> {
        let line = crate::records::Line::now(run_id, record).to_line()?;
        self.line(&line)
    }

    /// Write plain text (the `text` and `dot` formats), flushing at the end.
    pub fn text(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("writing to stdout", &e))
    }
}

/// The width of a text table's column: its widest cell (or `header`), at most
/// [`u16::MAX`], the widest padding `format!` accepts (it panics past it). A longer cell is
/// written whole, unpadded.
pub fn column_width(cells: impl Iterator<Item = usize>, header: &str) -> usize {
    cells
        .max()
        .unwrap_or(0)
        .max(header.chars().count())
        .min(usize::from(u16::MAX))
}
