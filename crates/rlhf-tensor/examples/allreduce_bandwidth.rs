//! All-reduce bandwidth of the TCP ring on this host, reported as nccl-tests does: algorithm
//! bandwidth (bytes / time) and bus bandwidth (x 2 (N-1) / N, what each rank's link carries).
//! Ranks are threads of this process, each with its own sockets (the same path as processes).
//!
//! `cargo run --release -p rlhf-tensor --example allreduce_bandwidth -- [RANKS] [MIB...]`

use std::time::{Duration, Instant};

use rlhf_tensor::dist::{Communicator, DistError};

fn main() -> Result<(), DistError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let world: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![1, 4, 25, 100]
    };
    let dir = std::env::temp_dir().join(format!("rlhf-allreduce-{}", std::process::id()));
    println!("ranks {world}; TCP ring on 127.0.0.1");
    println!(
        "{:>8} {:>10} {:>12} {:>12}",
        "MiB", "ms", "algo GB/s", "bus GB/s"
    );
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (dir, sizes) = (&dir, &sizes);
                s.spawn(move || -> Result<Vec<f64>, DistError> {
                    let comm = Communicator::tcp(dir, rank, world, "bw", Duration::from_secs(60))?;
                    let mut times = Vec::new();
                    for &mib in sizes {
                        let mut data = vec![1.0f32; mib * 1024 * 1024 / 4];
                        comm.all_reduce_sum_host(&mut data)?; // warm-up
                        let reps = (200 / mib).clamp(3, 50);
                        let mut samples = Vec::with_capacity(reps);
                        for _ in 0..reps {
                            comm.barrier()?;
                            let start = Instant::now();
                            comm.all_reduce_sum_host(&mut data)?;
                            samples.push(start.elapsed().as_secs_f64());
                        }
                        samples.sort_by(f64::total_cmp);
                        times.push(samples[samples.len() / 2]);
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("rank thread"))
            .collect::<Vec<_>>()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let rank0 = results.into_iter().next().expect("rank 0")?;
    for (&mib, &seconds) in sizes.iter().zip(&rank0) {
        let bytes = (mib * 1024 * 1024) as f64;
        let algo = bytes / seconds / 1e9;
        let bus = algo * 2.0 * (world as f64 - 1.0) / world as f64;
        println!("{mib:>8} {:>10.2} {algo:>12.3} {bus:>12.3}", seconds * 1e3);
    }
    Ok(())
}
