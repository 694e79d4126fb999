//! SIGINT and SIGTERM as events, not as asynchronous interruptions.
//!
//! A tool calls [`watch`] first thing, before it starts threads: the two signals are blocked in
//! every thread (the mask is inherited) and one thread waits for them with `sigwait`, then calls
//! the tool's callback, which typically sends an event into the tool's main loop. `Command`
//! does not reset the mask, so children are spawned through [`crate::process`], which clears
//! it before `exec` ([`crate::process::unblock_signals_in_child`]).

use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Block SIGINT and SIGTERM in this (and every later) thread and call `on_signal` for each.
pub fn watch(on_signal: impl Fn(Signal) + Send + 'static) -> crate::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // A background job of a non-interactive shell starts with SIGINT ignored, and an ignored
    // signal is discarded, never pending: restore the default so `sigwait` sees it.
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: installing SIG_DFL runs no handler code of ours.
        #[allow(unsafe_code)]
        let restored =
            unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
        restored.map_err(|e| crate::Error::input(format!("cannot reset {signal}: {e}")))?;
    }
    set.thread_block()
        .map_err(|e| crate::Error::input(format!("cannot block SIGINT/SIGTERM: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                let _ =
                    RECEIVED.compare_exchange(0, signal as i32, Ordering::SeqCst, Ordering::SeqCst);
                on_signal(signal);
            }
        })
        .map_err(|e| crate::Error::input(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// The first SIGINT/SIGTERM received since [`watch`], if any.
pub fn received() -> Option<Signal> {
    Signal::try_from(RECEIVED.load(Ordering::SeqCst)).ok()
}

/// The exit status for dying of `signal`: 130 for SIGINT, 143 for SIGTERM.
pub fn exit_code(signal: Signal) -> u8 {
    u8::try_from(128 + signal as i32).unwrap_or(crate::error::exit::ERROR)
}
