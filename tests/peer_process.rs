//! `fdpass::peer_process`: the process at the other end of a Unix socket,
//! held by a pidfd, against real processes (children of this test binary
//! that connect to it), SIGKILL and pid reuse.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
#![cfg(unix)]

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use shm_region::fdpass::{self, PeerProcess};
use shm_region::ErrorKind;

const SOCK: &str = "SHM_REGION_PEER_SOCK";

/// The child's part: connect to the socket named by `SOCK`, say so with
/// one byte, then stay alive until killed (a minute at most); in the role
/// `listener`, listen there and accept one connection instead.
fn child_main() {
    use std::io::Write;
    if common::role().as_deref() == Some("listener") {
        let path = std::env::var(SOCK).unwrap();
        let listener = UnixListener::bind(&path).unwrap();
        let (_conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let path = std::env::var(SOCK).unwrap();
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(b"c").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Spawns this binary's `test` as a child that connects; returns it and
/// the accepted end (whose peer is the child).
fn connected_child(test: &str) -> (Child, UnixStream, tempfile::TempDir) {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let child = common::spawn_self(test, "peer", &[(SOCK, path.to_str().unwrap())])
        .spawn()
        .unwrap();
    let (mut server, _) =
        common::within(Duration::from_secs(30), move || listener.accept().unwrap());
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte).unwrap();
    (child, server, dir)
}

fn sigkill(child: &Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// A socket of our own that never connected.
fn unconnected() -> UnixStream {
    let fd: OwnedFd = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    UnixStream::from(fd)
}

#[test]
fn peer_process_names_the_process_that_connected() {
    if common::role().is_some() {
        return child_main();
    }
    let (mut child, server, _dir) =
        connected_child("peer_process_names_the_process_that_connected");
    let peer = fdpass::peer_process(&server).unwrap();
    assert_eq!(peer.pid(), child.id());
    assert!(peer.is_alive().unwrap());
    let started = Instant::now();
    assert!(!peer.wait_exit(Some(Duration::from_millis(50))).unwrap());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The pidfd does not leak into programs this process runs.
    let flags = rustix::io::fcntl_getfd(peer.as_fd()).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    sigkill(&child);
    child.wait().unwrap();
    assert!(!peer.is_alive().unwrap());
}

/// Kills `child` about 100 ms after `waiting` starts on a thread and
/// returns how long after the kill the thread woke, and what it returned.
fn woken_after_kill(
    child: &mut Child,
    waiting: impl FnOnce() -> bool + Send + 'static,
) -> (Duration, bool) {
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = waiting();
        tx.send(Instant::now()).unwrap();
        r
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "woke before the kill");
    let killed = Instant::now();
    sigkill(child);
    let woke = rx.recv_timeout(Duration::from_secs(10)).expect("not woken");
    let r = waiter.join().unwrap();
    child.wait().unwrap();
    (woke.saturating_duration_since(killed), r)
}

#[test]
fn wait_exit_wakes_within_100ms_of_sigkill() {
    if common::role().is_some() {
        return child_main();
    }
    let (mut child, server, _dir) = connected_child("wait_exit_wakes_within_100ms_of_sigkill");
    let peer = fdpass::peer_process(&server).unwrap();
    let (after, exited) = woken_after_kill(&mut child, move || peer.wait_exit(None).unwrap());
    assert!(exited);
    assert!(
        after < Duration::from_millis(100),
        "woke {after:?} after SIGKILL"
    );
}

#[test]
fn pidfd_polls_readable_within_100ms_of_sigkill() {
    if common::role().is_some() {
        return child_main();
    }
    let (mut child, server, _dir) = connected_child("pidfd_polls_readable_within_100ms_of_sigkill");
    let peer = fdpass::peer_process(&server).unwrap();
    let (after, readable) = woken_after_kill(&mut child, move || {
        let ten = Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        let mut fds = [PollFd::new(&peer, PollFlags::IN)];
        rustix::event::poll(&mut fds, Some(&ten)).unwrap();
        fds[0].revents().contains(PollFlags::IN)
    });
    assert!(readable);
    assert!(
        after < Duration::from_millis(100),
        "woke {after:?} after SIGKILL"
    );
}

#[test]
fn the_fallback_names_a_live_peer_and_sees_it_die() {
    if common::role().is_some() {
        return child_main();
    }
    let (mut child, server, _dir) =
        connected_child("the_fallback_names_a_live_peer_and_sees_it_die");
    let peer = fdpass::peer_process_without_peerpidfd(&server).unwrap();
    assert_eq!(peer.pid(), child.id());
    assert!(peer.is_alive().unwrap());
    let (after, exited) = woken_after_kill(&mut child, move || peer.wait_exit(None).unwrap());
    assert!(exited);
    assert!(
        after < Duration::from_millis(100),
        "woke {after:?} after SIGKILL"
    );
}

/// Starts a process (`sleep 60`) with pid `pid`, by setting
/// `ns_last_pid` to the pid before it and retrying while other processes
/// of the machine take it first; `Err` with the reason if that cannot be
/// done here.
fn spawn_with_pid(pid: u32) -> Result<Child, String> {
    if !common::is_root() {
        return Err("not root: cannot set /proc/sys/kernel/ns_last_pid".into());
    }
    for _ in 0..2000 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .map_err(|e| format!("cannot set /proc/sys/kernel/ns_last_pid: {e}"))?;
        let mut c = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sleep: {e}"))?;
        if c.id() == pid {
            return Ok(c);
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    Err(format!("pid {pid} was taken by others 2000 times"))
}

/// A child that connected, was killed and reaped, and a new process that
/// has its pid now: `(accepted end, dead child's pid, new process)`.
fn peer_whose_pid_is_reused(test: &str) -> Result<(UnixStream, PeerProcess, u32, Child), String> {
    let (mut child, server, _dir) = connected_child(test);
    let pid = child.id();
    let peer = fdpass::peer_process(&server).unwrap();
    sigkill(&child);
    child.wait().unwrap();
    let reuser = spawn_with_pid(pid)?;
    // The new process is alive and has the dead peer's pid.
    assert_eq!(reuser.id(), pid);
    assert!(rustix::process::test_kill_process(rustix::process::Pid::from_child(&reuser)).is_ok());
    Ok((server, peer, pid, reuser))
}

#[test]
fn a_dead_peer_is_not_taken_for_alive_when_its_pid_is_reused() {
    const TEST: &str = "a_dead_peer_is_not_taken_for_alive_when_its_pid_is_reused";
    if common::role().is_some() {
        return child_main();
    }
    let (_server, peer, pid, mut reuser) = match peer_whose_pid_is_reused(TEST) {
        Ok(x) => x,
        Err(why) => return common::skip(TEST, &why),
    };
    assert_eq!(peer.pid(), pid);
    assert!(!peer.is_alive().unwrap());
    let started = Instant::now();
    assert!(peer.wait_exit(Some(Duration::from_secs(5))).unwrap());
    assert!(started.elapsed() < Duration::from_millis(100));
    reuser.kill().unwrap();
    reuser.wait().unwrap();
}

#[test]
fn the_fallback_refuses_a_closed_peer_whose_pid_is_reused() {
    const TEST: &str = "the_fallback_refuses_a_closed_peer_whose_pid_is_reused";
    if common::role().is_some() {
        return child_main();
    }
    let (server, _peer, pid, mut reuser) = match peer_whose_pid_is_reused(TEST) {
        Ok(x) => x,
        Err(why) => return common::skip(TEST, &why),
    };
    // Asked only now, after the reuse: SO_PEERCRED still says `pid`, and
    // `pidfd_open(pid)` would name the new process.
    let err = fdpass::peer_process_without_peerpidfd(&server).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(err.io_kind(), std::io::ErrorKind::NotConnected);
    assert!(
        err.to_string()
            .contains("the peer closed its end of the socket"),
        "{err}"
    );
    // With SO_PEERPIDFD the kernel either refuses (the peer was reaped) or
    // names the dead peer; never the process that has its pid now.
    match fdpass::peer_process(&server) {
        Ok(peer) => {
            assert_eq!(peer.pid(), pid);
            assert!(!peer.is_alive().unwrap());
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}"),
    }
    reuser.kill().unwrap();
    reuser.wait().unwrap();
}

/// The documented limit of the fallback: the connecting process forks, its
/// child keeps the connected socket (so it is never hung up), and the
/// connector exits and is reaped before `peer_process` is called; its pid
/// is then given to an unrelated process. The fallback names that process
/// (alive); `SO_PEERPIDFD` names the dead connector, or refuses.
#[test]
fn the_fallback_names_the_new_process_when_a_connector_that_handed_its_end_on_exited_before_the_call(
) {
    use std::io::Read;
    const TEST: &str =
        "the_fallback_names_the_new_process_when_a_connector_that_handed_its_end_on_exited_before_the_call";
    if !common::is_root() {
        return common::skip(TEST, "not root: cannot set /proc/sys/kernel/ns_last_pid");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let script = format!(
        "import socket,os\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
         if os.fork()==0:\n    s.send(b'c')\n    s.recv(1)\n    os._exit(0)\nos._exit(0)\n",
        path.to_str().unwrap()
    );
    let mut connector = match Command::new("python3").arg("-c").arg(&script).spawn() {
        Ok(c) => c,
        Err(e) => return common::skip(TEST, &format!("cannot run python3: {e}")),
    };
    let mut server = common::within(Duration::from_secs(30), move || {
        listener.accept().unwrap().0
    });
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte).unwrap();
    let pid = connector.id();
    assert!(connector.wait().unwrap().success()); // exited and reaped
    let mut reuser = match spawn_with_pid(pid) {
        Ok(c) => c,
        Err(why) => return common::skip(TEST, &why),
    };
    let named = fdpass::peer_process_without_peerpidfd(&server).unwrap();
    assert_eq!(named.pid(), pid);
    assert!(
        named.is_alive().unwrap(),
        "the fallback names the new, live process"
    );
    match fdpass::peer_process(&server) {
        Ok(peer) => {
            assert_eq!(peer.pid(), pid);
            assert!(!peer.is_alive().unwrap());
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}"),
    }
    reuser.kill().unwrap();
    reuser.wait().unwrap();
    // The connector's child still holds the socket: end it with ours.
    drop(server);
}

#[test]
fn peer_process_of_a_pair_is_this_process() {
    let (a, _b) = UnixStream::pair().unwrap();
    for peer in [
        fdpass::peer_process(&a).unwrap(),
        fdpass::peer_process_without_peerpidfd(&a).unwrap(),
    ] {
        assert_eq!(peer.pid(), std::process::id());
        assert!(peer.is_alive().unwrap());
        assert!(!peer.wait_exit(Some(Duration::ZERO)).unwrap());
    }
}

#[test]
fn peer_process_refuses_a_socket_that_is_not_connected() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("l")).unwrap();
    let listening = UnixStream::from(OwnedFd::from(listener));
    for socket in [unconnected(), listening] {
        for r in [
            fdpass::peer_process(&socket),
            fdpass::peer_process_without_peerpidfd(&socket),
        ] {
            let err = r.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotConnected);
            assert_eq!(
                err.raw_os_error(),
                Some(rustix::io::Errno::NOTCONN.raw_os_error())
            );
            assert!(
                err.to_string().starts_with(
                    "fdpass::peer_process: the socket is not connected: it has no peer process"
                ),
                "{err}"
            );
        }
    }
}

#[test]
fn peer_process_refuses_a_descriptor_that_is_not_a_socket() {
    let file = tempfile::tempfile().unwrap();
    let not_socket = UnixStream::from(OwnedFd::from(file));
    let err = fdpass::peer_process(&not_socket).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Os);
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::NOTSOCK.raw_os_error())
    );
}

#[test]
fn the_connecting_side_names_the_process_that_listened() {
    const TEST: &str = "the_connecting_side_names_the_process_that_listened";
    if common::role().is_some() {
        return child_main();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let mut child = common::spawn_self(TEST, "listener", &[(SOCK, path.to_str().unwrap())])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    for peer in [
        fdpass::peer_process(&client).unwrap(),
        fdpass::peer_process_without_peerpidfd(&client).unwrap(),
    ] {
        assert_eq!(peer.pid(), child.id());
        assert!(peer.is_alive().unwrap());
    }
    sigkill(&child);
    child.wait().unwrap();
}

#[test]
fn signals_during_wait_exit_neither_end_it_early_nor_extend_it() {
    // Signals at 20 to 280 ms of a 300 ms `wait_exit` (`common`'s body).
    let (a, _b) = UnixStream::pair().unwrap();
    let peer = fdpass::peer_process(&a).unwrap();
    let at: Vec<u64> = (20..=280).step_by(20).collect();
    common::signals_during_a_timed_wait(1, &at, move |t| peer.wait_exit(Some(t)).unwrap(), false);
}
