//! The threads that turn hub-start's inputs into events for the loop: the plan records on
//! stdin, and the health results on the gate (a FIFO, or a file followed like `tail -f`).

use super::Event;
use hub::{Error, Result};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

pub(super) fn spawn_input_reader(tx: Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                match line {
                    Ok(line) => {
                        if tx.send(Event::Input(line)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::InputEnd(Some(Error::io(
                            "reading plan records from stdin",
                            &e,
                        ))));
                        return;
                    }
                }
            }
            let _ = tx.send(Event::InputEnd(None));
        })
        .map(|_| ())
        .map_err(|e| Error::io("starting the stdin reader", &e))
}

/// Follow the gate: a FIFO is read to its end; a regular file is followed like `tail -f`.
pub(super) fn spawn_gate_reader(path: PathBuf, tx: Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("gate".into())
        .spawn(move || {
            let end = |e: Error| {
                let _ = tx.send(Event::GateEnd(e));
            };
            // A FIFO is opened read-write: the open never blocks, and `tee G`'s open for writing
            // succeeds even if we have already finished. A regular file is opened read-only.
            let fifo = std::fs::metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_fifo()
            });
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(fifo)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) => {
                    return end(Error::input(format!(
                        "--gate {}: cannot open: {e}; create it with `mkfifo {}`",
                        path.display(),
                        path.display()
                    )));
                }
            };
            // We hold the FIFO's write end too, so neither kind ever ends: a FIFO blocks in
            // read, a regular file is followed like `tail -f` (an end of file is "not yet").
            let mut reader = std::io::BufReader::new(file);
            let mut line = String::new();
            loop {
                match reader.read_line(&mut line) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(_) if !line.ends_with('\n') => {}
                    Ok(_) => {
                        if tx.send(Event::Gate(std::mem::take(&mut line))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        return end(Error::io(format!("reading --gate {}", path.display()), &e));
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| Error::io("starting the gate reader", &e))
}
