//! A consumer asleep in tokio, woken by a producer process through a
//! `Doorbell`, and the round trip measured beside a pipe's.
//!
//! ```text
//! cargo run --example async_consumer            # 5,000 round trips each
//! cargo run --release --example async_consumer -- 100000
//! ```
//!
//! The consumer (this process) creates a sealed memfd region and two
//! doorbells, spawns this binary again as the producer
//! (`async_consumer producer <socket>`), and hands it the region, both
//! doorbells and two pipe ends over a Unix socket (`fdpass::send_with`);
//! the producer takes the doorbells back with `Doorbell::from_fd`, which
//! checks that each really is an eventfd.
//!
//! **Region words** (offsets in bytes):
//!
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `REQUEST` (u64): the round trip asked for | consumer |
//! | 8 | `RESPONSE` (u64): the last round trip answered | producer |
//! | 16 | `SLEEPING` (u32): 1 while the consumer is about to sleep or asleep | consumer |
//! | 20 | `PHASE` (u32): 0 doorbells, 1 pipes | consumer |
//!
//! **Doorbell round trip.** The consumer stores `REQUEST = n` and rings the
//! producer's doorbell; the producer, asleep in `Doorbell::wait` (a plain
//! blocking process), wakes, drains, stores `RESPONSE = n`, and rings the
//! consumer's doorbell only if `SLEEPING` is 1. The consumer, before it
//! sleeps, stores `SLEEPING = 1` and loads `RESPONSE` again (a `SeqCst`
//! store, fence, load on both sides, so that at least one of them sees the
//! other's store: the producer sees the flag, or the consumer sees the
//! answer, and no wake-up is lost); then it awaits the doorbell in tokio's
//! `AsyncFd`, so the runtime's thread sleeps in `epoll`, not in a blocking
//! call of its own.
//!
//! **Pipe round trip.** The same exchange with one byte down one pipe and
//! one byte back up another; the consumer awaits its pipe in `AsyncFd`.
//!
//! The output gives the median and 90th-percentile round trip of each, and
//! how many of the producer's answers needed a ring.

#[cfg(not(unix))]
fn main() {
    println!("async_consumer: a Doorbell (an eventfd) and tokio's AsyncFd need Unix");
}

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    unix::main()
}

#[cfg(unix)]
mod unix {
    use std::time::Duration;

    pub(super) fn main() -> Result<(), Box<dyn std::error::Error>> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let args: Vec<String> = std::env::args().collect();
            if args.get(1).map(String::as_str) == Some("producer") {
                return linux::producer(&args[2]);
            }
            let rounds = match args.get(1) {
                Some(n) => n.parse()?,
                None => 5_000,
            };
            linux::consumer(rounds)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            println!("async_consumer: eventfd doorbells shared between processes need Linux");
            Ok(())
        }
    }

    /// The median and 90th percentile of `samples`.
    #[allow(dead_code)]
    fn summary(samples: &mut [Duration]) -> (Duration, Duration) {
        samples.sort_unstable();
        let at = |q: usize| samples[(samples.len() - 1) * q / 100];
        (at(50), at(90))
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    mod linux {
        use std::io::{Read, Write};
        use std::os::fd::{AsFd, OwnedFd};
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::process::Command;
        use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
        use std::time::{Duration, Instant};

        use shm_region::{fdpass, Doorbell, MmapRegion};
        use tokio::io::unix::AsyncFd;

        type Res<T> = Result<T, Box<dyn std::error::Error>>;

        const REQUEST: usize = 0;
        const RESPONSE: usize = 8;
        const SLEEPING: usize = 16;
        const PHASE: usize = 20;

        /// Registers `inner` with tokio's reactor.
        ///
        /// `AsyncFd::new` is deprecated in favour of the `unsafe`
        /// `AsyncFd::register`, whose contract is that the descriptor stays
        /// open and the same for the `AsyncFd`'s life. A `Doorbell` and an
        /// `OwnedFd` own their descriptor and always return it, so the contract
        /// holds, and this example stays free of `unsafe`.
        #[allow(deprecated)]
        fn register<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
            AsyncFd::new(inner)
        }

        pub(super) fn consumer(rounds: usize) -> Res<()> {
            let host = MmapRegion::create_sealed("async_consumer", 4096)?;
            let region = host.region();
            let mine = Doorbell::new()?; // the consumer's: the producer rings it
            let theirs = Doorbell::new()?; // the producer's: we ring it
            let (down_read, mut down_write) = pipe()?;
            let (up_read, up_write) = pipe()?;
            rustix::fs::fcntl_setfl(&up_read, rustix::fs::OFlags::NONBLOCK)?;

            let dir = tempfile::tempdir()?;
            let path = dir.path().join("sock");
            let listener = UnixListener::bind(&path)?;
            let mut child = Command::new(std::env::current_exe()?)
                .arg("producer")
                .arg(&path)
                .spawn()?;
            let (socket, _) = listener.accept()?;
            let fds = [
                host.fd().ok_or("the region has no descriptor")?,
                mine.as_fd(),
                theirs.as_fd(),
                down_read.as_fd(),
                up_write.as_fd(),
            ];
            fdpass::send_with(&socket, b"fds", &fds)?;
            drop((down_read, up_write));

            let request = region.atomic_u64(REQUEST)?;
            let response = region.atomic_u64(RESPONSE)?;
            let sleeping = region.atomic_u32(SLEEPING)?;
            let phase = region.atomic_u32(PHASE)?;

            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            let (mut bell_times, mut pipe_times) = rt.block_on(async {
                let bell = register(mine)?;
                let mut bell_times = Vec::with_capacity(rounds);
                for n in 1..=u64::try_from(rounds)? {
                    let started = Instant::now();
                    request.store(n, Ordering::Release);
                    theirs.ring()?;
                    await_response(&bell, response, sleeping, n).await?;
                    bell_times.push(started.elapsed());
                }

                phase.store(1, Ordering::SeqCst);
                theirs.ring()?;
                let up = register(up_read)?;
                let mut pipe_times = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let started = Instant::now();
                    down_write.write_all(&[1])?;
                    loop {
                        let mut guard = up.readable().await?;
                        let mut byte = [0u8; 1];
                        match rustix::io::read(up.get_ref(), &mut byte) {
                            Ok(1) => break,
                            Ok(_) => return Err("the producer closed its pipe".into()),
                            Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    pipe_times.push(started.elapsed());
                }
                Ok::<_, Box<dyn std::error::Error>>((bell_times, pipe_times))
            })?;
            drop(down_write); // end of input: the producer exits

            let mut rings = [0u8; 8];
            (&socket).read_exact(&mut rings)?;
            let rings = u64::from_le_bytes(rings);
            let status = child.wait()?;
            if !status.success() {
                return Err(format!("producer failed: {status}").into());
            }
            let (bell_median, bell_p90) = super::summary(&mut bell_times);
            let (pipe_median, pipe_p90) = super::summary(&mut pipe_times);
            println!(
                "{rounds} round trips each, consumer asleep in tokio (current-thread runtime)"
            );
            println!("doorbell (eventfd + flag word): median {bell_median:?}, p90 {bell_p90:?}; the producer rang for {rings} of {rounds} answers");
            println!("pipe (one byte each way):       median {pipe_median:?}, p90 {pipe_p90:?}");
            Ok(())
        }

        /// Waits until `response` holds `n`, asleep in the runtime when it does
        /// not yet.
        async fn await_response(
            bell: &AsyncFd<Doorbell>,
            response: &AtomicU64,
            sleeping: &AtomicU32,
            n: u64,
        ) -> Res<()> {
            loop {
                if response.load(Ordering::Acquire) == n {
                    return Ok(());
                }
                // Say we will sleep, then look once more: the producer stores
                // the response, then looks at the flag (store, fence, load on
                // both sides), so one of us sees the other.
                sleeping.store(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if response.load(Ordering::SeqCst) == n {
                    sleeping.store(0, Ordering::Relaxed);
                    return Ok(());
                }
                let mut guard = bell.readable().await?;
                bell.get_ref().drain()?;
                guard.clear_ready();
                sleeping.store(0, Ordering::Relaxed);
            }
        }

        pub(super) fn producer(path: &str) -> Res<()> {
            let socket = UnixStream::connect(path)?;
            let mut buf = [0u8; 3];
            let (_, fds) = fdpass::recv_with(&socket, &mut buf, 5)?;
            let [region_fd, consumer_bell, my_bell, down_read, up_write]: [OwnedFd; 5] =
                fds.try_into().map_err(|_| "expected five descriptors")?;
            let guest = MmapRegion::attach_fd(region_fd)?;
            let region = guest.region();
            let consumer = Doorbell::from_fd(consumer_bell)?;
            let mine = Doorbell::from_fd(my_bell)?;
            let request = region.atomic_u64(REQUEST)?;
            let response = region.atomic_u64(RESPONSE)?;
            let sleeping = region.atomic_u32(SLEEPING)?;
            let phase = region.atomic_u32(PHASE)?;

            let mut rings = 0u64;
            let mut answered = 0u64;
            while phase.load(Ordering::SeqCst) == 0 {
                mine.wait(Some(Duration::from_secs(30)))
                    .map_err(|e| format!("producer: {e}"))?;
                mine.drain()?;
                let n = request.load(Ordering::Acquire);
                if n > answered {
                    answered = n;
                    response.store(n, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    if sleeping.load(Ordering::SeqCst) == 1 {
                        consumer.ring()?;
                        rings += 1;
                    }
                }
            }

            let mut down = std::fs::File::from(down_read);
            let mut up = std::fs::File::from(up_write);
            let mut byte = [0u8; 1];
            while down.read(&mut byte)? == 1 {
                up.write_all(&byte)?;
            }
            (&socket).write_all(&rings.to_le_bytes())?;
            Ok(())
        }

        /// A close-on-exec pipe (read end, write end), both blocking.
        fn pipe() -> Res<(OwnedFd, std::fs::File)> {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            Ok((read, std::fs::File::from(write)))
        }
    }
}
