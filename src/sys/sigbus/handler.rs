//! The `SIGBUS` handler (invariant 7: no allocation, no lock, no panic),
//! its install, and what it does with a signal that is not ours: forward it
//! to the previous disposition, put the crate's handler back after that
//! disposition changed, or end the process as it would have ended without
//! the crate.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;

use super::registry::{local, LOCAL};
use super::replace::{contain, make_sink, Outcome, PAGE};

/// `install` has succeeded at least once.
pub(super) static ARMED: AtomicBool = AtomicBool::new(false);
/// Serialises `install` (never taken by the handler).
static INSTALL: Mutex<()> = Mutex::new(());
/// The handler of the disposition found when the handler was first
/// installed (`SIG_DFL`, `SIG_IGN` or an address), stored before the
/// handler is installed. Changed afterwards only to `SIG_DFL`: when
/// that handler reset `SIGBUS` to the default (`rearm`), or when the
/// default is what `install` found it replaced.
pub(super) static PREVIOUS: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
/// Whether that handler was installed with `SA_SIGINFO`; stored before
/// the handler is installed, never changed.
pub(super) static PREVIOUS_SIGINFO: AtomicBool = AtomicBool::new(false);

/// The handler's address as `sigaction` stores it.
pub(super) fn handler_address() -> libc::sighandler_t {
    on_sigbus as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as libc::sighandler_t
}

/// Whether the crate's handler is `SIGBUS`'s disposition right now.
pub(crate) fn is_installed() -> bool {
    query().is_ok_and(|a| a.sa_sigaction == handler_address())
}

/// Installs the handler for the process, or again after the
/// disposition was reset to the default.
///
/// # Errors
///
/// `ENOTSUP` without `MADV_WIPEONFORK`; `EBUSY` if the handler was
/// installed before and `SIGBUS` now has another handler or is
/// ignored; whatever `sigaction` reports. Nothing is installed then.
pub(crate) fn install() -> Result<(), Errno> {
    let _serial = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = query()?;
    if current.sa_sigaction == handler_address() {
        return Ok(());
    }
    if ARMED.load(Ordering::SeqCst) && current.sa_sigaction != libc::SIG_DFL {
        // Someone replaced ours; theirs may chain to ours, and ours
        // forwards to what it found first: replacing theirs could
        // loop, or silence it.
        return Err(Errno::BUSY);
    }
    local().ok_or(Errno::NOTSUP)?;
    make_sink()?;
    PAGE.store(super::super::page_size(), Ordering::SeqCst);
    if ARMED.load(Ordering::SeqCst) {
        // Installed before and reset to the default since: the default
        // is what a signal that is not ours now gets.
        PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
    } else {
        // Stored before the handler exists, so it reads them at once.
        PREVIOUS_SIGINFO.store(current.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
        PREVIOUS.store(current.sa_sigaction, Ordering::SeqCst);
    }
    let Some(replaced) = arm() else {
        return Err(last_errno());
    };
    if replaced.sa_sigaction == libc::SIG_DFL {
        // The disposition was reset to the default between the look
        // above and now (a sent SIGBUS that the previous handler
        // answered that way, say): the default is what was replaced.
        // (Another thread installing a handler in between is not
        // followed: `install` is to be called before threads that
        // change dispositions start.)
        PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
    }
    ARMED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Makes the crate's handler `SIGBUS`'s disposition and returns the one
/// it replaced; `None` if `sigaction` failed. Async-signal-safe
/// (`rearm` calls it).
fn arm() -> Option<libc::sigaction> {
    // SAFETY: an all-zero `sigaction` is a valid value of the C
    // struct (no handler, empty mask, no flags); the fields that
    // matter are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler_address();
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // Every blockable signal is blocked while the handler runs, so no
    // other handler interrupts it (and faults, meeting a blocked
    // `SIGBUS`, which the kernel answers by killing the process).
    // SAFETY: `sigfillset` is async-signal-safe (POSIX) and writes
    // only the valid, writable mask it is given.
    unsafe {
        libc::sigfillset(&mut action.sa_mask);
    }
    // SAFETY: as above, a zeroed `sigaction` is valid.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action` is initialised, `old` is valid and writable,
    // and the handler `action` names is async-signal-safe (invariant
    // 7). Every blockable signal, `SIGBUS` included, is blocked while
    // it runs (the full mask, no `SA_NODEFER`).
    let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, &mut old) };
    (rc == 0).then_some(old)
}

fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL)
}

/// The current disposition of `SIGBUS`.
pub(super) fn query() -> Result<libc::sigaction, Errno> {
    // SAFETY: as in `install`, a zeroed `sigaction` is valid.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the disposition into `old`,
    // a valid, writable `sigaction`.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut old) };
    if rc == 0 {
        Ok(old)
    } else {
        Err(last_errno())
    }
}

/// The handler (invariant 7: no allocation, no lock, no panic).
extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: installed with `SA_SIGINFO`, so the kernel passes a valid
    // `siginfo_t`.
    let info_ref = unsafe { &*info };
    let local = LOCAL.load(Ordering::SeqCst);
    // SAFETY: as in `local`: non-null, never unmapped, every byte
    // pattern valid, accessed through atomics only.
    if let (libc::BUS_ADRERR, Some(local)) = (info_ref.si_code, unsafe { local.as_ref() }) {
        // SAFETY: for the kernel's `BUS_*` codes the fault member of
        // the union is the one filled in.
        let addr = unsafe { info_ref.si_addr() }.cast::<u8>();
        local.in_handler.fetch_add(1, Ordering::SeqCst);
        let outcome = contain(local, addr);
        local.in_handler.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Outcome::Contained => return,
            Outcome::Unadvised => return die(sig),
            Outcome::NotOurs => {}
        }
    }
    forward(sig, info, ctx);
}

/// Hands a `SIGBUS` that is not ours to the disposition found at the
/// first install: its handler (`SA_SIGINFO` or plain), or for the
/// default (and, for a fault, for "ignore", which the kernel does not
/// honour for faults) the default action.
fn forward(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: `info` is valid (as in `on_sigbus`).
    let code = unsafe { (*info).si_code };
    // `si_code <= 0`: sent by a process (`kill`, `tgkill`, `sigqueue`).
    let sent = code <= 0;
    let handler = PREVIOUS.load(Ordering::SeqCst);
    if handler == libc::SIG_IGN {
        // A signal sent by a process is ignored as asked; a fault
        // cannot be.
        if !sent {
            die(sig);
        }
        return;
    }
    if handler == libc::SIG_DFL {
        return die(sig);
    }
    if PREVIOUS_SIGINFO.load(Ordering::SeqCst) {
        // SAFETY: the previous disposition was installed with
        // `SA_SIGINFO`, so its handler is such a function's address,
        // called as the kernel would call it.
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without `SA_SIGINFO`, the handler (the same field of
        // `sigaction`) is a one-argument function's address.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
    rearm(handler, sent);
}

/// After the previous handler `handler` ran: puts the crate's handler
/// back if that handler took `SIGBUS`'s disposition for itself again
/// (the System V idiom of re-installing a handler inside it), or, for a
/// signal sent by a process (`sent`), reset it to the default (Rust's
/// standard library does): the default is then from now on what a
/// signal that is not ours gets, as it would have been without the
/// crate. Until this runs, the disposition is the previous handler's
/// choice (the gap the documentation names). A fault it reset to the
/// default needs none of this: the faulting instruction runs again and
/// meets the default. Any other choice of its (ignore, another handler)
/// stands: the guard is then off.
fn rearm(handler: libc::sighandler_t, sent: bool) {
    // SAFETY: as in `install`, a zeroed `sigaction` is valid.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `sigaction` is async-signal-safe; a null new action only
    // reads the disposition into `now`, valid and writable.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut now) };
    if rc != 0 {
        return;
    }
    if now.sa_sigaction == handler {
        let _ = arm();
    } else if sent && now.sa_sigaction == libc::SIG_DFL {
        PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
        let _ = arm();
    }
}

/// Restores the default action and raises the signal again: it is
/// delivered when the handler returns (it is blocked until then) and
/// ends the process as it would have ended without us.
fn die(sig: c_int) {
    // SAFETY: as in `install`, a zeroed `sigaction` is valid, and
    // `SIG_DFL` (0) is its handler.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `sigaction` and `raise` are async-signal-safe; `dfl` is
    // initialised and the old-action pointer may be null.
    unsafe {
        libc::sigaction(sig, &dfl, ptr::null_mut());
    }
    // SAFETY: `raise` is async-signal-safe.
    unsafe {
        libc::raise(sig);
    }
}
