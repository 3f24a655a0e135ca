//! Review 1 reproducers for `fdpass::peer_process` (not part of the suite).
#![cfg(all(target_os = "linux", not(miri)))]

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};

use shm_region::fdpass;

fn spawn_with_pid(pid: u32) -> Child {
    for _ in 0..2000 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let mut c = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        if c.id() == pid {
            return c;
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    panic!("pid {pid} taken");
}

/// The connecting process forks; its child keeps the connected socket and
/// the connector exits (long before `peer_process` is called). Its pid is
/// then reused by an unrelated `sleep`.
#[test]
fn review1_fallback_names_an_unrelated_process_when_the_connector_handed_its_end_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let script = format!(
        "import socket,os,time,sys\ns=socket.socket(socket.AF_UNIX);s.connect({:?})\nif os.fork()==0:\n    s.send(b'c');time.sleep(60);sys.exit(0)\nos._exit(0)\n",
        path.to_str().unwrap()
    );
    let mut connector = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .spawn()
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut b = [0u8; 1];
    server.read_exact(&mut b).unwrap();
    let pid = connector.id();
    connector.wait().unwrap(); // the connector exited and is reaped
    let mut reuser = spawn_with_pid(pid);
    println!(
        "connector pid {pid} exited; unrelated `sleep` now has pid {}",
        reuser.id()
    );
    match fdpass::peer_process_without_peerpidfd(&server) {
        Ok(p) => println!(
            "fallback: Ok(pid {}, is_alive {}) -> names the unrelated sleep process",
            p.pid(),
            p.is_alive().unwrap()
        ),
        Err(e) => println!("fallback: Err({e})"),
    }
    match fdpass::peer_process(&server) {
        Ok(p) => println!(
            "SO_PEERPIDFD: Ok(pid {}, is_alive {})",
            p.pid(),
            p.is_alive().unwrap()
        ),
        Err(e) => println!("SO_PEERPIDFD: Err({e})"),
    }
    reuser.kill().unwrap();
    reuser.wait().unwrap();
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn review1_datagram_sockets() {
    let before = fds();
    let (a, _b) = UnixDatagram::pair().unwrap();
    let s = UnixStream::from(OwnedFd::from(a));
    println!(
        "dgram pair: {:?}",
        fdpass::peer_process(&s).map(|p| p.pid())
    );
    println!(
        "dgram pair fallback: {:?}",
        fdpass::peer_process_without_peerpidfd(&s).map(|p| p.pid())
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d");
    let bound = UnixDatagram::bind(&p).unwrap();
    let c = UnixDatagram::unbound().unwrap();
    c.connect(&p).unwrap();
    let s = UnixStream::from(OwnedFd::from(c));
    match fdpass::peer_process(&s) {
        Ok(p) => println!("connected dgram: Ok({})", p.pid()),
        Err(e) => println!("connected dgram: Err({:?}: {e})", e.kind()),
    }
    match fdpass::peer_process_without_peerpidfd(&s) {
        Ok(p) => println!("connected dgram fallback: Ok({})", p.pid()),
        Err(e) => println!("connected dgram fallback: Err({:?}: {e})", e.kind()),
    }
    drop(bound);
    // listening socket
    let l = UnixListener::bind(dir.path().join("l")).unwrap();
    let s = UnixStream::from(OwnedFd::from(l));
    match fdpass::peer_process(&s) {
        Ok(p) => println!("listener: Ok({})", p.pid()),
        Err(e) => println!("listener: Err({:?}: {e})", e.kind()),
    }
    drop(s);
    drop(_b);
    println!("fds before {before} after {}", fds());
}
