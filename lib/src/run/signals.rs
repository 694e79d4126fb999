//! SIGINT, SIGTERM and SIGHUP as events, not as asynchronous interruptions.
//!
//! A closed terminal sends SIGHUP: a tool that died of it would leave its child running, so
//! all three are handled alike (forwarded, escalated, exit 128+N).
//!
//! A tool calls [`watch`] first thing, before it starts threads: the signals are blocked in
//! every thread (the mask is inherited) and one thread waits for them with `sigwait`, then calls
//! the tool's callback, which typically sends an event into the tool's main loop. `Command`
//! does not reset the mask, so children are spawned through [`crate::process`], which clears
//! it before `exec` ([`crate::process::unblock_signals_in_child`]), or [`crate::spawn`], whose
//! `posix_spawn` gives them an empty mask.

use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The terminating signals every tool handles.
pub const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Block SIGINT, SIGTERM and SIGHUP in this (and every later) thread and call `on_signal` for
/// each.
pub fn watch(on_signal: impl Fn(Signal) + Send + 'static) -> crate::Result<()> {
    let mut set = SigSet::empty();
    for signal in HANDLED {
        set.add(signal);
    }
    // A background job of a non-interactive shell starts with SIGINT ignored, and an ignored
    // signal is discarded, never pending: restore the default so `sigwait` sees it.
    for signal in HANDLED {
        // SAFETY: installing SIG_DFL runs no handler code of ours.
        #[allow(unsafe_code)]
        let restored =
            unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
        restored.map_err(|e| crate::Error::environment(format!("cannot reset {signal}"), e))?;
    }
    set.thread_block()
        .map_err(|e| crate::Error::environment("cannot block SIGINT/SIGTERM/SIGHUP", e))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                let _ =
                    RECEIVED.compare_exchange(0, signal as i32, Ordering::SeqCst, Ordering::SeqCst);
                on_signal(signal);
            }
        })
        .map_err(|e| crate::Error::io("cannot start the signal thread", &e))?;
    Ok(())
}

/// The first handled signal received since [`watch`], if any.
pub fn received() -> Option<Signal> {
    Signal::try_from(RECEIVED.load(Ordering::SeqCst)).ok()
}

/// The environment variable `scripts/hub-deploy` sets to its own pid for the tools it runs.
pub const ENV_PARENT: &str = "HUB_STOP_WITH_PARENT";

/// With `HUB_STOP_WITH_PARENT=PID` set: get SIGTERM when our parent dies (`kill -9` of
/// `hub-deploy`), so the pipeline stops with an `interrupted` record instead of deploying on
/// unsupervised, and at once if the parent is already gone. Call after [`watch`].
pub fn stop_with_parent() -> crate::Result<()> {
    let Some(parent) = std::env::var(ENV_PARENT)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| {
        crate::Error::environment("cannot ask for SIGTERM on the parent's death", e)
    })?;
    // It may have died before the request: then nobody will send the signal.
    if nix::unistd::getppid().as_raw() != parent {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
    }
    Ok(())
}

/// The exit status for dying of `signal`: 129 for SIGHUP, 130 for SIGINT, 143 for SIGTERM.
pub fn exit_code(signal: Signal) -> u8 {
    u8::try_from(128 + signal as i32).unwrap_or(crate::error::exit::ERROR)
}
