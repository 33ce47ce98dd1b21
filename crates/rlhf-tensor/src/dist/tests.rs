//! The TCP ring with ranks as threads: sums, chunks and broadcasts against a reference, on
//! sizes that do not divide by the world size; failures name the peer.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::Rng;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `body(comm)` on `world` ranks (threads), returning each rank's result in rank order.
fn on_ranks<T: Send>(
    name: &str,
    world: usize,
    body: impl Fn(Communicator) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    let dir = scratch(name);
    let out = std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (dir, body) = (&dir, &body);
                s.spawn(move || {
                    let comm = Communicator::tcp(dir, rank, world, name, Duration::from_secs(20))?;
                    body(comm)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Rank r's input: len values drawn from seed r.
fn input(rank: usize, len: usize) -> Vec<f32> {
    let mut rng = Rng::new(100 + rank as u64);
    (0..len).map(|_| rng.normal()).collect()
}

#[test]
fn shard_ranges_cover_the_buffer_in_order() {
    for len in [0, 1, 5, 12, 13] {
        for world in 1..5 {
            let ranges: Vec<_> = (0..world).map(|r| shard_range(len, world, r)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[world - 1].end, len);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
            }
        }
    }
}

#[test]
fn ring_all_reduce_sums_and_every_rank_has_the_same_bits() {
    for world in [2, 3, 4] {
        for len in [1, 7, 1001] {
            let name = format!("ar-{world}-{len}");
            let results = on_ranks(&name, world, |comm| {
                let mut t = Tensor::from_vec(input(comm.rank(), len), [len], Device::Cpu)?;
                comm.all_reduce_sum(&mut t)?;
                Ok(t.to_vec_f32())
            });
            let results: Vec<Vec<f32>> = results.into_iter().map(|r| r.unwrap()).collect();
            let inputs: Vec<Vec<f32>> = (0..world).map(|r| input(r, len)).collect();
            for (i, &got) in results[0].iter().enumerate() {
                let exact: f64 = inputs.iter().map(|x| f64::from(x[i])).sum();
                let got = f64::from(got);
                assert!(
                    (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                    "{got} vs {exact}"
                );
            }
            for r in &results[1..] {
                let same = r
                    .iter()
                    .zip(&results[0])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "world {world}, len {len}: ranks differ");
            }
        }
    }
}

#[test]
fn reduce_scatter_then_all_gather_is_the_all_reduce() {
    let (world, len) = (3, 10);
    let results = on_ranks("rs-ag", world, |comm| {
        let full = Tensor::from_vec(input(comm.rank(), len), [2, 5], Device::Cpu)?;
        let mine = shard_range(len, world, comm.rank());
        let mut chunk = Tensor::zeros([mine.len()], Device::Cpu)?;
        comm.reduce_scatter_sum(&full, &mut chunk)?;
        let mut gathered = Tensor::zeros([len], Device::Cpu)?;
        comm.all_gather(&chunk, &mut gathered)?;
        let mut reduced = full.clone();
        comm.all_reduce_sum(&mut reduced)?;
        Ok((
            chunk.to_vec_f32(),
            gathered.to_vec_f32(),
            reduced.to_vec_f32(),
        ))
    });
    for (rank, result) in results.into_iter().enumerate() {
        let (chunk, gathered, reduced) = result.unwrap();
        assert_eq!(chunk.len(), shard_range(len, world, rank).len());
        assert_eq!(gathered, reduced, "rank {rank}");
        assert_eq!(chunk, reduced[shard_range(len, world, rank)].to_vec());
    }
}

#[test]
fn broadcast_barrier_and_host_sums() {
    let results = on_ranks("bcast", 3, |comm| {
        let mut t = Tensor::from_vec(input(comm.rank(), 5), [5], Device::Cpu)?;
        comm.broadcast(&mut t, 1)?;
        comm.barrier()?;
        let mut count = [comm.rank() as f32, 1.0];
        comm.all_reduce_sum_host(&mut count)?;
        Ok((t.to_vec_f32(), count))
    });
    for r in results {
        let (t, count) = r.unwrap();
        assert_eq!(t, input(1, 5));
        assert_eq!(count, [3.0, 3.0]);
    }
}

#[test]
fn a_dead_peer_and_a_mismatched_call_are_errors_naming_the_rank() {
    let results = on_ranks("dead", 2, |comm| {
        if comm.rank() == 1 {
            return Ok(()); // exits: its sockets close
        }
        let mut t = Tensor::zeros([4], Device::Cpu)?;
        comm.all_reduce_sum(&mut t)
    });
    let text = results[0].as_ref().unwrap_err().to_string();
    assert!(text.contains("rank 0") && text.contains("rank 1"), "{text}");
    assert!(text.contains("closed"), "{text}");

    let results = on_ranks("mismatch", 2, |comm| {
        let mut t = Tensor::zeros([4 + comm.rank()], Device::Cpu)?;
        comm.all_reduce_sum(&mut t)
    });
    let text = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap()
        .to_string();
    assert!(text.contains("different collectives"), "{text}");
}

#[test]
fn single_moves_nothing_and_tcp_refuses_bf16() {
    let comm = Communicator::Single;
    let mut t = Tensor::from_vec(vec![1.0, 2.0], [2], Device::Cpu).unwrap();
    comm.all_reduce_sum(&mut t).unwrap();
    comm.broadcast(&mut t, 0).unwrap();
    comm.barrier().unwrap();
    assert_eq!(t.to_vec_f32(), vec![1.0, 2.0]);
    assert_eq!(
        (comm.rank(), comm.world_size(), comm.backend()),
        (0, 1, "single")
    );
    let results = on_ranks("bf16", 2, |comm| {
        let mut t = Tensor::zeros([2], Device::Cpu)?.to_dtype(DType::BF16)?;
        comm.all_reduce_sum(&mut t)
    });
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("f32 CPU")
    );
}

#[test]
fn nccl_without_the_library_is_an_error_naming_libnccl() {
    if nccl_available() {
        return;
    }
    let launch = LaunchEnv {
        rank: 0,
        world_size: 2,
        run_id: "x".into(),
    };
    let err = Communicator::connect(
        &scratch("nccl"),
        &launch,
        Device::Cuda(0),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("libnccl"), "{err}");
}
