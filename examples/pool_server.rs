//! A Wayland-style buffer-pool server and its clients, each a process: a
//! client creates a memfd as libwayland does (`memfd_create`, sized with
//! `ftruncate`), fills it, passes it over a Unix socket with a request that
//! names the pool's size, then asks the server to read frames out of it.
//! The server maps each pool with `attach_fd` (the size comes from `fstat`),
//! checks the claimed size with `ensure_len`, and reads frames with checked
//! copies, with `sigbus::install` containing a pool truncated under it.
//!
//! ```text
//! cargo run --example pool_server
//! ```
//!
//! Three clients: `honest` (three frames), `truncator` (cuts its pool to
//! one page after its first frame, then asks for a frame past the cut) and
//! `liar` (a frame past its pool, then a pool claiming 1 MiB of 64 KiB).
//! The server survives all three, prints each client's frames and errors,
//! checks them against what each client did, and exits 0.
//!
//! Protocol: 12-byte little-endian requests `[op, a, b]`; `op` 0 creates
//! the pool (`a` its size, the memfd attached), `op` 1 reads a frame of `b`
//! bytes at offset `a`. The server answers each request with one byte, 0
//! (done) or 1 (refused).
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("pool_server: memfds and SIGBUS containment need Linux");
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::error::Error;
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use rustix::fs::{MemfdFlags, SealFlags};
    use shm_region::{fdpass, sigbus, MmapOptions, MmapRegion};

    type Res<T = ()> = Result<T, Box<dyn Error>>;

    const CREATE_POOL: u32 = 0;
    const FRAME: u32 = 1;
    const POOL: usize = 64 * 1024;
    const CLIENTS: [&str; 3] = ["honest", "truncator", "liar"];

    /// The options pools are attached with: the defaults, which accept a
    /// memfd as the kernel makes it (mode 0777, any owner).
    fn pool_options() -> MmapOptions {
        MmapOptions::new()
    }

    pub fn main() -> Res {
        let mut args = std::env::args().skip(1);
        if args.next().as_deref() == Some("client") {
            return client(&args.next().ok_or("client needs a kind")?);
        }
        // A pool truncated during a read is then `Truncated`, not death.
        sigbus::install()?;
        let mut failed = false;
        for kind in CLIENTS {
            let (ours, theirs) = UnixStream::pair()?;
            ours.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut child = Command::new(std::env::current_exe()?)
                .args(["client", kind])
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .spawn()?;
            let (frames, errors) = serve(&ours);
            let status = child.wait()?;
            println!("server: client {kind} ({status}): {} frames", frames.len());
            for f in &frames {
                println!("server:   frame {f:?}");
            }
            for e in &errors {
                println!("server:   error {e}");
            }
            let expected = expected(kind);
            if (frames.as_slice(), error_kinds(&errors).as_slice())
                != (expected.0.as_slice(), expected.1.as_slice())
                || !status.success()
            {
                eprintln!("server: client {kind}: expected {expected:?}");
                failed = true;
            }
        }
        if failed {
            return Err("a client was not served as expected".into());
        }
        println!("server: every client served as expected; the server is still here");
        Ok(())
    }

    /// What the server must report for each client: its frames, and the
    /// kinds of its errors.
    fn expected(kind: &str) -> (Vec<String>, Vec<shm_region::ErrorKind>) {
        use shm_region::ErrorKind::{OutOfBounds, Truncated};
        let frame = |i: usize| format!("frame {i} from {kind}");
        match kind {
            "honest" => ((0..3).map(frame).collect(), vec![]),
            "truncator" => (vec![frame(0)], vec![Truncated]),
            _ => (vec![], vec![OutOfBounds, OutOfBounds]),
        }
    }

    fn error_kinds(errors: &[shm_region::Error]) -> Vec<shm_region::ErrorKind> {
        errors.iter().map(shm_region::Error::kind).collect()
    }

    /// Serves one client until it hangs up or breaks the protocol; returns
    /// the frames read and the errors met. Nothing a client does ends the
    /// server.
    fn serve(client: &UnixStream) -> (Vec<String>, Vec<shm_region::Error>) {
        let mut pool: Option<MmapRegion> = None;
        let (mut frames, mut errors) = (Vec::new(), Vec::new());
        loop {
            let mut msg = [0u8; 12];
            let (n, mut fds) = match fdpass::recv_with(client, &mut msg, 1) {
                Ok(got) => got,
                Err(e) => {
                    errors.push(e);
                    return (frames, errors);
                }
            };
            if n != msg.len() {
                // 0: the client hung up. Anything else breaks the protocol.
                return (frames, errors);
            }
            let word = |i: usize| {
                let bytes = [msg[4 * i], msg[4 * i + 1], msg[4 * i + 2], msg[4 * i + 3]];
                usize::try_from(u32::from_le_bytes(bytes)).unwrap_or(usize::MAX)
            };
            let done = match (u32::try_from(word(0)), fds.pop()) {
                (Ok(CREATE_POOL), Some(fd)) => pool_options()
                    .attach_fd(fd)
                    .and_then(|mut p| p.ensure_len(word(1)).map(|_| p))
                    .map(|p| pool = Some(p)),
                (Ok(FRAME), None) => match pool.as_ref() {
                    Some(p) => {
                        let mut frame = vec![0u8; word(2).min(4096)];
                        p.region().read_at(word(1), &mut frame).map(|()| {
                            frames.push(String::from_utf8_lossy(&frame).into_owned());
                        })
                    }
                    None => return (frames, errors),
                },
                _ => return (frames, errors),
            };
            let ack = match done {
                Ok(()) => 0u8,
                Err(e) => {
                    errors.push(e);
                    1
                }
            };
            if fdpass::send_with(client, &[ack], &[]).is_err() {
                return (frames, errors);
            }
        }
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

    /// A pool as libwayland's `os_create_anonymous_file` makes one.
    fn memfd_pool(size: usize, seal: bool) -> Res<OwnedFd> {
        let fd =
            rustix::fs::memfd_create("wl_shm", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
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

    fn client(kind: &str) -> Res {
        let stream = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
        match kind {
            "honest" => {
                let pool = memfd_pool(POOL, true)?;
                assert_eq!(request(&stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                for i in 0..3 {
                    let (offset, len) = draw(&pool, kind, i)?;
                    assert_eq!(request(&stream, FRAME, offset, len, None)?, 0);
                }
            }
            "truncator" => {
                let pool = memfd_pool(POOL, false)?;
                assert_eq!(request(&stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                let (offset, len) = draw(&pool, kind, 0)?;
                assert_eq!(request(&stream, FRAME, offset, len, None)?, 0);
                let (offset, len) = draw(&pool, kind, 5)?;
                // Cut the pool under the server's mapping, then ask for a
                // frame past the cut.
                rustix::fs::ftruncate(&pool, 4096)?;
                assert_eq!(request(&stream, FRAME, offset, len, None)?, 1);
            }
            _ => {
                let pool = memfd_pool(POOL, true)?;
                assert_eq!(request(&stream, CREATE_POOL, POOL, 0, Some(&pool))?, 0);
                // A frame reaching past the pool's end.
                assert_eq!(request(&stream, FRAME, POOL - 8, 64, None)?, 1);
                // A pool claiming more than its file has.
                let small = memfd_pool(POOL, true)?;
                assert_eq!(request(&stream, CREATE_POOL, 1 << 20, 0, Some(&small))?, 1);
            }
        }
        Ok(())
    }
}
