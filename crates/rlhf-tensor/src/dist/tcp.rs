//! The CPU backend: ranks in separate processes (or threads) on one host, joined in a ring of
//! TCP connections over 127.0.0.1 (std::net, no network service).
//!
//! Setup: every rank binds a listener on `127.0.0.1:0`; rank 0 publishes its port through the
//! rendezvous file; the others connect to it and register their own port; rank 0 answers with
//! the table of ports; then each rank connects to its successor's listener and accepts its
//! predecessor's connection. Rank r sends to r+1 and receives from r-1 (mod N).
//!
//! All-reduce is the ring algorithm (Baidu's, NCCL's ring): a reduce-scatter of N chunks in
//! N-1 steps (rank r ends owning the sum of chunk r), then an all-gather in N-1 steps. Each
//! chunk is summed once, by one chain of ranks in a fixed order, and then copied: every rank
//! ends with bit-identical sums. Each rank sends 2 (N-1)/N of the buffer. Chunks are the
//! [`super::shard_range`] chunks, so any length works (chunks may be empty).
//!
//! Every message carries a header (magic, op, step, byte length) that the receiver checks, so
//! ranks that call different collectives fail with an error instead of reading garbage; a peer
//! that dies closes its sockets and its neighbours fail at once with an error naming it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{DistError, Result, rendezvous, shard_range};

const MAGIC: u32 = 0x524c_4846; // "RLHF"
const BACKEND: &str = "tcp";

/// Which collective a message belongs to (checked by the receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
enum Op {
    Hello = 1,
    ReduceScatter = 2,
    AllGather = 3,
    Broadcast = 4,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Hello => "setup",
            Op::ReduceScatter => "reduce-scatter",
            Op::AllGather => "all-gather",
            Op::Broadcast => "broadcast",
        }
    }
}

/// The two sockets of a rank in the ring.
#[derive(Debug)]
struct Links {
    next: TcpStream,
    prev: TcpStream,
    /// Where reduce-scatter receives a chunk before adding it (kept between calls).
    scratch: Vec<f32>,
}

/// A rank of the TCP ring.
#[derive(Debug)]
pub struct TcpRing {
    rank: usize,
    world_size: usize,
    links: Mutex<Links>,
}

impl TcpRing {
    /// Joins the ring of `world_size` ranks as `rank`, meeting through `dir/.rendezvous` under
    /// `run_id`; `timeout` bounds the rendezvous, every connection, and every later wait for a
    /// peer's data.
    pub fn connect(
        dir: &Path,
        rank: usize,
        world_size: usize,
        run_id: &str,
        timeout: Duration,
    ) -> Result<TcpRing> {
        if world_size < 2 || rank >= world_size {
            return Err(DistError::invalid(
                "TcpRing::connect",
                format!(
                    "rank {rank} of world size {world_size}: need world size >= 2 and rank < world size"
                ),
            ));
        }
        let setup = |peer: usize, reason: String| DistError::Peer {
            rank,
            peer,
            op: Op::Hello.name(),
            reason,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| setup(rank, format!("binding 127.0.0.1:0: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| setup(rank, format!("reading the listener's port: {e}")))?
            .port();
        let deadline = Instant::now() + timeout;
        let ports = if rank == 0 {
            rendezvous::publish(dir, run_id, BACKEND, &port.to_le_bytes())?;
            let mut ports = vec![0u16; world_size];
            ports[0] = port;
            let mut registered = Vec::with_capacity(world_size - 1);
            for _ in 1..world_size {
                let mut stream = accept(&listener, deadline, timeout)
                    .map_err(|e| setup(0, format!("waiting for the other ranks: {e}")))?;
                let (peer, payload) = read_hello(&mut stream)
                    .map_err(|e| setup(0, format!("a registering rank: {e}")))?;
                let peer = usize::from(peer);
                if peer == 0 || peer >= world_size || ports[peer] != 0 {
                    return Err(setup(peer, "registered twice or out of range".into()));
                }
                ports[peer] = payload;
                registered.push(stream);
            }
            let table: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
            for stream in &mut registered {
                write_frame(stream, Op::Hello, 0, &table).map_err(|e| setup(0, e))?;
            }
            ports
        } else {
            let bytes = rendezvous::wait_for(dir, rank, run_id, BACKEND, timeout)?;
            let root_port = u16::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                DistError::Rendezvous {
                    rank,
                    path: rendezvous::rendezvous_path(dir),
                    reason: format!("expected a 2-byte port, found {} bytes", bytes.len()),
                }
            })?);
            let mut root = connect(root_port, deadline, timeout).map_err(|e| setup(0, e))?;
            write_hello(&mut root, rank, port).map_err(|e| setup(0, e))?;
            let mut table = vec![0u8; 2 * world_size];
            read_frame(&mut root, Op::Hello, 0, &mut table).map_err(|e| setup(0, e))?;
            table
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        };
        let (next_rank, prev_rank) = (
            (rank + 1) % world_size,
            (rank + world_size - 1) % world_size,
        );
        let mut next =
            connect(ports[next_rank], deadline, timeout).map_err(|e| setup(next_rank, e))?;
        write_hello(&mut next, rank, port).map_err(|e| setup(next_rank, e))?;
        let mut prev = accept(&listener, deadline, timeout)
            .map_err(|e| setup(prev_rank, format!("waiting for its connection: {e}")))?;
        let (from, _) = read_hello(&mut prev).map_err(|e| setup(prev_rank, e))?;
        if usize::from(from) != prev_rank {
            return Err(setup(prev_rank, format!("rank {from} connected instead")));
        }
        for s in [&next, &prev] {
            s.set_nodelay(true)
                .and_then(|_| s.set_read_timeout(Some(timeout)))
                .and_then(|_| s.set_write_timeout(Some(timeout)))
                .map_err(|e| setup(rank, format!("configuring a socket: {e}")))?;
        }
        Ok(TcpRing {
            rank,
            world_size,
            links: Mutex::new(Links {
                next,
                prev,
                scratch: Vec::new(),
            }),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    fn next_rank(&self) -> usize {
        (self.rank + 1) % self.world_size
    }

    fn prev_rank(&self) -> usize {
        (self.rank + self.world_size - 1) % self.world_size
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Links>> {
        self.links
            .lock()
            .map_err(|_| DistError::invalid("TcpRing", "a collective panicked on another thread"))
    }

    /// Sums `data` over all ranks in place; every rank ends with the same bits.
    pub fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        let mut links = self.lock()?;
        self.reduce_scatter_in_place(&mut links, data)?;
        self.all_gather_in_place(&mut links, data)
    }

    /// Sums `input` (the full buffer, same length on every rank) over all ranks and writes this
    /// rank's chunk of the sum (`shard_range(len, N, rank)`) to `output`.
    pub fn reduce_scatter_sum(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let mine = shard_range(input.len(), self.world_size, self.rank);
        check_len("reduce_scatter_sum", "output", output.len(), mine.len())?;
        let mut work = input.to_vec();
        let mut links = self.lock()?;
        self.reduce_scatter_in_place(&mut links, &mut work)?;
        output.copy_from_slice(&work[mine]);
        Ok(())
    }

    /// Concatenates every rank's chunk: `input` is this rank's chunk
    /// (`shard_range(output.len(), N, rank)`), `output` the whole buffer.
    pub fn all_gather(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let mine = shard_range(output.len(), self.world_size, self.rank);
        check_len("all_gather", "input", input.len(), mine.len())?;
        output[mine].copy_from_slice(input);
        let mut links = self.lock()?;
        self.all_gather_in_place(&mut links, output)
    }

    /// Copies `root`'s `data` to every rank (passed along the ring).
    pub fn broadcast(&self, data: &mut [f32], root: usize) -> Result<()> {
        if root >= self.world_size {
            return Err(DistError::invalid(
                "broadcast",
                format!("root {root} is not a rank of {}", self.world_size),
            ));
        }
        let mut links = self.lock()?;
        if self.rank != root {
            read_frame(
                &mut links.prev,
                Op::Broadcast,
                0,
                bytemuck::cast_slice_mut(data),
            )
            .map_err(|e| self.peer_error(Op::Broadcast, self.prev_rank(), e))?;
        }
        if self.next_rank() != root {
            write_frame(
                &mut links.next,
                Op::Broadcast,
                0,
                bytemuck::cast_slice(data),
            )
            .map_err(|e| self.peer_error(Op::Broadcast, self.next_rank(), e))?;
        }
        Ok(())
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        self.all_reduce_sum(&mut [0.0])
    }

    /// Reduce-scatter in place: afterwards chunk `rank` of `data` holds the sum over ranks
    /// (other chunks hold partial sums). At step s rank r sends chunk r-s-1 and adds the
    /// received chunk r-s-2 into its own; the chunk sent at step s+1 is the one just summed.
    fn reduce_scatter_in_place(&self, links: &mut Links, data: &mut [f32]) -> Result<()> {
        let n = self.world_size;
        for step in 0..n - 1 {
            let send = shard_range(data.len(), n, (self.rank + 2 * n - step - 1) % n);
            let recv = shard_range(data.len(), n, (self.rank + 2 * n - step - 2) % n);
            let mut scratch = std::mem::take(&mut links.scratch);
            scratch.resize(recv.len(), 0.0);
            self.exchange(links, Op::ReduceScatter, step, &data[send], &mut scratch)?;
            for (mine, theirs) in data[recv].iter_mut().zip(&scratch) {
                *mine += theirs;
            }
            links.scratch = scratch;
        }
        Ok(())
    }

    /// All-gather in place, chunk `rank` of `data` being final: at step s rank r sends chunk
    /// r-s and receives chunk r-s-1.
    fn all_gather_in_place(&self, links: &mut Links, data: &mut [f32]) -> Result<()> {
        let n = self.world_size;
        for step in 0..n - 1 {
            let send = shard_range(data.len(), n, (self.rank + n - step) % n);
            let recv = shard_range(data.len(), n, (self.rank + 2 * n - step - 1) % n);
            // The two chunks are disjoint: receive straight into place.
            let (send, recv) = if send.start < recv.start {
                let (low, high) = data.split_at_mut(recv.start);
                (&low[send], &mut high[..recv.len()])
            } else {
                let (low, high) = data.split_at_mut(send.start);
                (&high[..send.len()], &mut low[recv])
            };
            self.exchange(links, Op::AllGather, step, send, recv)?;
        }
        Ok(())
    }

    /// Sends `send` to the next rank while receiving `recv.len()` values from the previous one
    /// (the send runs on a scoped thread, so two ranks sending large chunks to each other never
    /// deadlock on full socket buffers).
    fn exchange(
        &self,
        links: &mut Links,
        op: Op,
        step: usize,
        send: &[f32],
        recv: &mut [f32],
    ) -> Result<()> {
        let Links { next, prev, .. } = links;
        let step = step as u16;
        let (sent, read) = std::thread::scope(|scope| {
            let sender = scope.spawn(|| write_frame(next, op, step, bytemuck::cast_slice(send)));
            let read = read_frame(prev, op, step, bytemuck::cast_slice_mut(recv));
            let sent = sender
                .join()
                .unwrap_or_else(|_| Err("the sending thread panicked".into()));
            (sent, read)
        });
        sent.map_err(|e| self.peer_error(op, self.next_rank(), e))?;
        read.map_err(|e| self.peer_error(op, self.prev_rank(), e))
    }

    fn peer_error(&self, op: Op, peer: usize, reason: String) -> DistError {
        DistError::Peer {
            rank: self.rank,
            peer,
            op: op.name(),
            reason,
        }
    }
}

fn check_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(DistError::invalid(
            op,
            format!("{what} has {got} elements, this rank's chunk has {want}"),
        ));
    }
    Ok(())
}

/// Accepts one connection before `deadline` (the listener polled without blocking).
fn accept(
    listener: &TcpListener,
    deadline: Instant,
    timeout: Duration,
) -> std::result::Result<TcpStream, String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .and_then(|_| stream.set_read_timeout(Some(timeout)))
                    .map_err(|e| format!("configuring the connection: {e}"))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "no connection within {:.1} s",
                        timeout.as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
}

/// Connects to `127.0.0.1:port`, retrying until `deadline`.
fn connect(
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> std::result::Result<TcpStream, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(timeout))
                    .map_err(|e| format!("configuring the connection: {e}"))?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("connecting to {addr}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn write_hello(stream: &mut TcpStream, rank: usize, port: u16) -> std::result::Result<(), String> {
    let mut payload = (rank as u16).to_le_bytes().to_vec();
    payload.extend_from_slice(&port.to_le_bytes());
    write_frame(stream, Op::Hello, 0, &payload)
}

/// Reads a hello: the sender's rank and listener port.
fn read_hello(stream: &mut TcpStream) -> std::result::Result<(u16, u16), String> {
    let mut bytes = [0u8; 4];
    read_frame(stream, Op::Hello, 0, &mut bytes)?;
    Ok((
        u16::from_le_bytes([bytes[0], bytes[1]]),
        u16::from_le_bytes([bytes[2], bytes[3]]),
    ))
}

/// Writes one frame: magic, op, step, byte length, payload.
fn write_frame(
    stream: &mut TcpStream,
    op: Op,
    step: u16,
    payload: &[u8],
) -> std::result::Result<(), String> {
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&MAGIC.to_le_bytes());
    header[4..6].copy_from_slice(&(op as u16).to_le_bytes());
    header[6..8].copy_from_slice(&step.to_le_bytes());
    header[8..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    stream
        .write_all(&header)
        .and_then(|_| stream.write_all(payload))
        .and_then(|_| stream.flush())
        .map_err(|e| describe_io("sending", &e))
}

/// Reads one frame into `payload`, checking that it is `op`'s step `step` with exactly
/// `payload.len()` bytes.
fn read_frame(
    stream: &mut TcpStream,
    op: Op,
    step: u16,
    payload: &mut [u8],
) -> std::result::Result<(), String> {
    let len = payload.len();
    let mut header = [0u8; 16];
    stream
        .read_exact(&mut header)
        .map_err(|e| describe_io("receiving", &e))?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let got_op = u16::from_le_bytes([header[4], header[5]]);
    let got_step = u16::from_le_bytes([header[6], header[7]]);
    let mut got_len = [0u8; 8];
    got_len.copy_from_slice(&header[8..]);
    let got_len = u64::from_le_bytes(got_len);
    if magic != MAGIC || got_op != op as u16 || got_step != step || got_len != len as u64 {
        return Err(format!(
            "expected {} step {step} with {len} bytes, received op {got_op} step {got_step} with \
             {got_len} bytes (the ranks called different collectives or buffer sizes)",
            op.name()
        ));
    }
    stream
        .read_exact(payload)
        .map_err(|e| describe_io("receiving", &e))
}

fn describe_io(what: &str, e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
            format!("{what}: the connection closed (the peer exited or failed): {e}")
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("{what}: timed out waiting for the peer (it hung or is far behind): {e}")
        }
        _ => format!("{what}: {e}"),
    }
}
