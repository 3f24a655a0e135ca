//! A Wayland-style buffer-pool server and its clients, each a process: a
//! client connects to the server's socket, creates a memfd as libwayland
//! does (`memfd_create`, sized with `ftruncate`), fills it, passes it over
//! the connection with a request that names the pool's size, then asks the
//! server to read frames out of it. The server maps each pool with
//! `attach_fd` (the size comes from `fstat`), checks the claimed size with
//! `ensure_len`, and reads frames with checked copies, with
//! `sigbus::install` containing a pool truncated under it.
//!
//! ```text
//! cargo run --example pool_server
//! ```
//!
//! **One event loop, and dead clients.** The server `poll`s its listening
//! socket, every connection, and every client's `PeerProcess` (from
//! `fdpass::peer_process` on the accepted connection: a pidfd, which polls
//! readable once that process has exited). A connection that hangs up ends
//! its client; so does a pidfd that turns readable, even while the
//! connection stays open: the server then drops the client's pools (their
//! mappings and descriptors) and its connection, at once, instead of
//! holding a dead client's memory until some other process closes the
//! socket. That is the case the pidfd exists for: a client whose socket
//! outlives it, because a process it started inherited it.
//!
//! Clients: `honest` (three frames), `truncator` (cuts its pool to one
//! page after its first frame, then asks for a frame past the cut),
//! `liar` (a frame past its pool, then a pool claiming 1 MiB of 64 KiB),
//! and `crasher` (two pools and a frame, then it hands its connection to a
//! helper process and kills itself with `SIGKILL`: its connection stays
//! open). Once the server has dropped the crasher, it starts `late`, an
//! honest client, to show that it still serves. The server checks each
//! client's frames, errors and end against what the client did, checks in
//! `/proc/self/maps` that the crasher's pools are no longer mapped, and
//! exits non-zero if anything differs.
//!
//! Protocol: 12-byte little-endian requests `[op, a, b]`; `op` 0 creates a
//! pool (`a` its size, the memfd attached), `op` 1 reads a frame of `b`
//! bytes at offset `a` of the newest pool. The server answers each request
//! with one byte, 0 (done) or 1 (refused).
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("pool_server: memfds, pidfds and SIGBUS containment need Linux");
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;
    use std::error::Error;
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::fs::{MemfdFlags, SealFlags};
    use shm_region::fdpass::PeerProcess;
    use shm_region::{fdpass, sigbus, ErrorKind, MmapOptions, MmapRegion};

    type Res<T = ()> = Result<T, Box<dyn Error>>;

    const CREATE_POOL: u32 = 0;
    const FRAME: u32 = 1;
    const POOL: usize = 64 * 1024;
    /// The clients started at once; `late` follows the crasher's end.
    const CLIENTS: [&str; 4] = ["honest", "truncator", "liar", "crasher"];
    /// A client process's role and the server's socket, in its environment.
    pub const ROLE_ENV: &str = "POOL_SERVER_ROLE";
    const SOCKET_ENV: &str = "POOL_SERVER_SOCKET";
    /// The whole run's limit: only a broken server takes this long.
    const RUN_LIMIT: Duration = Duration::from_secs(10);

    /// The options pools are attached with: the defaults, which accept a
    /// memfd as the kernel makes it (mode 0777, any owner).
    fn pool_options() -> MmapOptions {
        MmapOptions::new()
    }

    pub fn main() -> Res {
        if let Ok(role) = std::env::var(ROLE_ENV) {
            return run_role(&role);
        }
        run_server(&|| Ok(Command::new(std::env::current_exe()?)))
    }

    /// Runs this process as a client or the crasher's helper.
    pub fn run_role(role: &str) -> Res {
        if role == "linger" {
            return linger();
        }
        let path = std::env::var_os(SOCKET_ENV).ok_or("no server socket given")?;
        client(role, &UnixStream::connect(path)?)
    }

    /// How a client ended, as the server saw it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum End {
        /// Its connection hung up (or broke the protocol).
        HungUp,
        /// Its pidfd turned readable: the process exited.
        Exited,
    }

    /// A connected client: its connection, its process, its pools.
    struct Client {
        kind: String,
        stream: UnixStream,
        process: PeerProcess,
        pools: Vec<MmapRegion>,
        frames: Vec<String>,
        errors: Vec<ErrorKind>,
    }

    /// What the server reports for a client once it has ended.
    #[derive(Debug)]
    struct Report {
        end: End,
        frames: Vec<String>,
        errors: Vec<ErrorKind>,
        /// Pools dropped when the client ended.
        pools_dropped: usize,
        /// Lines of `/proc/self/maps` naming the client's memfds just
        /// before and just after the drop.
        mapped_before: usize,
        mapped_after: usize,
    }

    /// Lines of `/proc/self/maps` that map a memfd named `wl_shm-{kind}`.
    fn mapped_pools(kind: &str) -> usize {
        let name = format!("/memfd:wl_shm-{kind} ");
        std::fs::read_to_string("/proc/self/maps")
            .map(|maps| maps.lines().filter(|l| l.contains(&name)).count())
            .unwrap_or(usize::MAX)
    }

    /// Ends `client`: drops its pools and its connection, and says so.
    fn drop_client(client: Client, end: End) -> Report {
        let Client {
            kind,
            stream,
            process,
            pools,
            frames,
            errors,
        } = client;
        let mapped_before = mapped_pools(&kind);
        let pools_dropped = pools.len();
        let bytes: usize = pools.iter().map(MmapRegion::len).sum();
        drop(pools);
        drop(stream);
        let mapped_after = mapped_pools(&kind);
        let why = match end {
            End::HungUp => "hung up",
            End::Exited => "exited (its pidfd polled readable)",
        };
        println!(
            "server: client {kind} (pid {}) {why}: dropped its {pools_dropped} pools ({bytes} bytes; \
             mappings of its memfds in /proc/self/maps: {mapped_before} before, {mapped_after} after)",
            process.pid()
        );
        Report {
            end,
            frames,
            errors,
            pools_dropped,
            mapped_before,
            mapped_after,
        }
    }

    /// The server: starts the clients with `launch` (this program, or a
    /// test binary, with the role in its environment), serves them in one
    /// `poll` loop until every one has ended, and checks what it saw.
    pub fn run_server(launch: &dyn Fn() -> Res<Command>) -> Res {
        // A pool truncated during a read is then `Truncated`, not death.
        sigbus::install()?;
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("pool_server.sock");
        let listener = UnixListener::bind(&socket)?;
        listener.set_nonblocking(true)?;
        let start = |kind: &str| -> Res<Child> {
            Ok(launch()?
                .env(ROLE_ENV, kind)
                .env(SOCKET_ENV, &socket)
                .stdin(Stdio::null())
                .spawn()?)
        };
        // Pid -> (kind, process handle), for naming connections and
        // reaping at the end. The server is their parent only because this
        // example starts them; its loop does not rely on it.
        let mut children: HashMap<u32, (String, Child)> = HashMap::new();
        for kind in CLIENTS {
            let child = start(kind)?;
            children.insert(child.id(), (kind.to_string(), child));
        }
        let mut clients: Vec<Client> = Vec::new();
        let mut reports: HashMap<String, Report> = HashMap::new();
        let deadline = Instant::now() + RUN_LIMIT;
        while reports.len() < CLIENTS.len() + 1 {
            if Instant::now() > deadline {
                return Err(format!(
                    "server: {RUN_LIMIT:?} passed with clients not ended: {:?}",
                    clients.iter().map(|c| &c.kind).collect::<Vec<_>>()
                )
                .into());
            }
            let ready = wait_for_events(&listener, &clients)?;
            // Walk backwards, so that removing a client keeps the indices
            // of those not yet visited.
            for i in (0..clients.len()).rev() {
                let end = if ready.stream[i] {
                    serve_request(&mut clients[i])
                } else {
                    None
                };
                let end = end.or_else(|| ready.process[i].then_some(End::Exited));
                let Some(end) = end else { continue };
                let client = clients.swap_remove(i);
                let kind = client.kind.clone();
                reports.insert(kind.clone(), drop_client(client, end));
                if kind == "crasher" {
                    let child = start("late")?;
                    children.insert(child.id(), ("late".to_string(), child));
                }
            }
            // New connections last: `ready` describes the clients before them.
            if ready.listener {
                accept_clients(&listener, &children, &mut clients);
            }
        }
        check(&reports, children)
    }

    /// Which descriptors `poll` found ready.
    struct Ready {
        listener: bool,
        /// Per client: its connection is readable (or hung up).
        stream: Vec<bool>,
        /// Per client: its pidfd is readable (the process exited).
        process: Vec<bool>,
    }

    /// Polls the listening socket, every connection and every client's
    /// pidfd, for up to 100 ms.
    fn wait_for_events(listener: &UnixListener, clients: &[Client]) -> Res<Ready> {
        let mut fds = vec![PollFd::new(listener, PollFlags::IN)];
        for c in clients {
            fds.push(PollFd::new(&c.stream, PollFlags::IN));
            fds.push(PollFd::new(&c.process, PollFlags::IN));
        }
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let hit = |fd: &PollFd<'_>| !fd.revents().is_empty();
        // The listener, then a (connection, pidfd) pair per client.
        let pairs = fds[1..].chunks_exact(2);
        Ok(Ready {
            listener: hit(&fds[0]),
            stream: pairs.clone().map(|p| hit(&p[0])).collect(),
            process: pairs.map(|p| hit(&p[1])).collect(),
        })
    }

    /// Accepts every pending connection and names its process; a
    /// connection from a process this server did not start is refused.
    fn accept_clients(
        listener: &UnixListener,
        children: &HashMap<u32, (String, Child)>,
        clients: &mut Vec<Client>,
    ) {
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("server: accept: {e}");
                    return;
                }
            };
            let process = match fdpass::peer_process(&stream) {
                Ok(p) => p,
                Err(e) => {
                    println!("server: refused a connection: {e}");
                    continue;
                }
            };
            let Some((kind, _)) = children.get(&process.pid()) else {
                println!("server: refused pid {}: not a client", process.pid());
                continue;
            };
            // A request is read only once `poll` says it has arrived; the
            // timeout bounds a client that sends part of one.
            if let Err(e) = stream.set_read_timeout(Some(Duration::from_secs(1))) {
                eprintln!("server: {e}");
                continue;
            }
            println!("server: client {kind} connected (pid {})", process.pid());
            clients.push(Client {
                kind: kind.clone(),
                stream,
                process,
                pools: Vec::new(),
                frames: Vec::new(),
                errors: Vec::new(),
            });
        }
    }

    /// Reads and answers one request; `Some` if the client has ended
    /// (hung up, or broke the protocol). Nothing a client does ends the
    /// server.
    fn serve_request(client: &mut Client) -> Option<End> {
        let mut msg = [0u8; 12];
        let Ok((n, mut fds)) = fdpass::recv_with(&client.stream, &mut msg, 1) else {
            return Some(End::HungUp);
        };
        if n != msg.len() {
            // 0: the client hung up. Anything else breaks the protocol.
            return Some(End::HungUp);
        }
        let word = |i: usize| {
            let bytes = [msg[4 * i], msg[4 * i + 1], msg[4 * i + 2], msg[4 * i + 3]];
            usize::try_from(u32::from_le_bytes(bytes)).unwrap_or(usize::MAX)
        };
        let done = match (u32::try_from(word(0)), fds.pop()) {
            (Ok(CREATE_POOL), Some(fd)) => pool_options()
                .attach_fd(fd)
                .and_then(|mut p| p.ensure_len(word(1)).map(|_| p))
                .map(|p| client.pools.push(p)),
            (Ok(FRAME), None) => match client.pools.last() {
                Some(p) => {
                    let mut frame = vec![0u8; word(2).min(4096)];
                    p.region().read_at(word(1), &mut frame).map(|()| {
                        let text = String::from_utf8_lossy(&frame).into_owned();
                        println!("server: client {}: {text:?}", client.kind);
                        client.frames.push(text);
                    })
                }
                None => return Some(End::HungUp),
            },
            _ => return Some(End::HungUp),
        };
        let ack = match done {
            Ok(()) => 0u8,
            Err(e) => {
                println!("server: client {}: refused: {e}", client.kind);
                client.errors.push(e.kind());
                1
            }
        };
        if fdpass::send_with(&client.stream, &[ack], &[]).is_err() {
            return Some(End::HungUp);
        }
        None
    }

    /// What the server must report for each client: its frames, the kinds
    /// of its errors, and how it ended (`None`: either way, since a client
    /// that exits closes its connection too).
    fn expected(kind: &str) -> (Vec<String>, Vec<ErrorKind>, Option<End>) {
        use ErrorKind::{OutOfBounds, Truncated};
        let frame = |i: usize| format!("frame {i} from {kind}");
        match kind {
            "honest" | "late" => ((0..3).map(frame).collect(), vec![], None),
            "truncator" => (vec![frame(0)], vec![Truncated], None),
            "liar" => (vec![], vec![OutOfBounds, OutOfBounds], None),
            // Its connection outlives it: only the pidfd tells.
            _ => (vec![frame(0)], vec![], Some(End::Exited)),
        }
    }

    /// Compares every report with what its client did, and reaps the
    /// clients; the crasher must have died of `SIGKILL` with its pools
    /// dropped and unmapped.
    fn check(reports: &HashMap<String, Report>, children: HashMap<u32, (String, Child)>) -> Res {
        let mut failed = false;
        for (_, (kind, mut child)) in children {
            let status = child.wait()?;
            let report = reports
                .get(&kind)
                .ok_or_else(|| format!("no report for {kind}"))?;
            let (frames, errors, end) = expected(&kind);
            let mut ok = report.frames == frames
                && report.errors == errors
                && end.is_none_or(|e| e == report.end)
                && report.mapped_after == 0;
            if kind == "crasher" {
                ok &= status.signal() == Some(9)
                    && report.pools_dropped == 2
                    && report.mapped_before == 2;
            } else {
                ok &= status.success();
            }
            if !ok {
                eprintln!(
                    "server: client {kind} ({status}): {report:?}; expected {:?}",
                    (frames, errors, end)
                );
                failed = true;
            }
        }
        if failed {
            return Err("a client was not served as expected".into());
        }
        println!(
            "server: every client served as expected; the crasher's pools were dropped and \
             unmapped when it died, and the late client was served after that"
        );
        Ok(())
    }

    /// The crasher's helper: holds the crasher's connection (its stdin)
    /// until the server closes it.
    fn linger() -> Res {
        let mut rest = Vec::new();
        std::io::stdin().read_to_end(&mut rest)?;
        Ok(())
    }

    fn request(stream: &UnixStream, op: u32, a: usize, b: usize, fd: Option<&OwnedFd>) -> Res<u8> {
        let mut msg = Vec::with_capacity(12);
        for w in [op, u32::try_from(a)?, u32::try_from(b)?] {
            msg.extend_from_slice(&w.to_le_bytes());
        }
        let fds: Vec<_> = fd.iter().map(|fd| fd.as_fd()).collect();
        if fdpass::send_with(stream, &msg, &fds)? != msg.len() {
            return Err("short send".into());
        }
        let mut ack = [0u8; 1];
        (&*stream).read_exact(&mut ack)?;
        Ok(ack[0])
    }

    /// A pool as libwayland's `os_create_anonymous_file` makes one (named
    /// after the client, so that the server can find its mappings).
    fn memfd_pool(kind: &str, size: usize, seal: bool) -> Res<OwnedFd> {
        let fd = rustix::fs::memfd_create(
            format!("wl_shm-{kind}"),
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        if seal {
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK)?;
        }
        rustix::fs::ftruncate(&fd, u64::try_from(size)?)?;
        Ok(fd)
    }

    fn draw(pool: &OwnedFd, kind: &str, i: usize) -> Res<(usize, usize)> {
        let text = format!("frame {i} from {kind}");
        let offset = 4096 * (i + 1);
        rustix::io::pwrite(pool, text.as_bytes(), u64::try_from(offset)?)?;
        Ok((offset, text.len()))
    }

    /// A client of kind `kind` over its connection `stream`.
    fn client(kind: &str, stream: &UnixStream) -> Res {
        match kind {
            "honest" | "late" => {
                let pool = memfd_pool(kind, POOL, true)?;
                assert_eq!(request(stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                for i in 0..3 {
                    let (offset, len) = draw(&pool, kind, i)?;
                    assert_eq!(request(stream, FRAME, offset, len, None)?, 0);
                }
            }
            "truncator" => {
                let pool = memfd_pool(kind, POOL, false)?;
                assert_eq!(request(stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                let (offset, len) = draw(&pool, kind, 0)?;
                assert_eq!(request(stream, FRAME, offset, len, None)?, 0);
                let (offset, len) = draw(&pool, kind, 5)?;
                // Cut the pool under the server's mapping, then ask for a
                // frame past the cut.
                rustix::fs::ftruncate(&pool, 4096)?;
                assert_eq!(request(stream, FRAME, offset, len, None)?, 1);
            }
            "liar" => {
                let pool = memfd_pool(kind, POOL, true)?;
                assert_eq!(request(stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                // A frame reaching past the pool's end.
                assert_eq!(request(stream, FRAME, POOL - 8, 64, None)?, 1);
                // A pool claiming more than its file has.
                let small = memfd_pool(kind, POOL, true)?;
                assert_eq!(request(stream, CREATE_POOL, 1 << 20, 0, Some(&small))?, 1);
            }
            "crasher" => {
                let first = memfd_pool(kind, POOL, true)?;
                assert_eq!(request(stream, CREATE_POOL, POOL, 0, Some(&first))?, 0);
                let pool = memfd_pool(kind, POOL, true)?;
                assert_eq!(request(stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                let (offset, len) = draw(&pool, kind, 0)?;
                assert_eq!(request(stream, FRAME, offset, len, None)?, 0);
                // Hand the connection to a helper process, so that it stays
                // open after this process dies, then die holding both pools.
                let _helper = Command::new(std::env::current_exe()?)
                    .args(std::env::args_os().skip(1))
                    .env(ROLE_ENV, "linger")
                    .stdin(Stdio::from(OwnedFd::from(stream.try_clone()?)))
                    .spawn()?;
                rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                )?;
                unreachable!("SIGKILL is not survived");
            }
            _ => return Err(format!("unknown client kind {kind:?}").into()),
        }
        Ok(())
    }
}

/// The example's run under the test harness (`cargo test --example
/// pool_server`), so that the planted-bug suite can run it: the test is
/// both the server and, started again with a role in its environment,
/// each client process.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    const NAME: &str = "tests::a_dead_clients_pools_are_dropped_and_the_others_served";

    #[test]
    fn a_dead_clients_pools_are_dropped_and_the_others_served() {
        if let Ok(role) = std::env::var(super::linux::ROLE_ENV) {
            super::linux::run_role(&role).unwrap();
            return;
        }
        super::linux::run_server(&|| {
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args([NAME, "--exact", "--nocapture", "--test-threads=1"]);
            Ok(cmd)
        })
        .unwrap();
    }
}
