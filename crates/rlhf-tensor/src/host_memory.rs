//! Keeping freed host memory in the process, for training and decoding loops.
//!
//! Every CPU op returns a fresh `Vec`, and a training step allocates and frees the same
//! activation and gradient buffers (megabytes each) every step. glibc's `malloc` serves blocks
//! over its mmap threshold (128 KiB, rising to at most 32 MiB) with `mmap` and gives them back
//! with `munmap` on `free`, and trims the top of its heap, so the next step faults every page
//! in again and the kernel zeroes it: on GPT-2 small (B 4, T 64) page faults and `clear_page`
//! were ~19% of the step's CPU time. [`retain_freed_memory`] tells `malloc` to serve large
//! blocks from its heaps (`M_MMAP_MAX = 0`) and never to trim them (`M_TRIM_THRESHOLD` at its
//! maximum), so freed buffers are reused from the second step on (+30% tokens/s on that step,
//! +14% on the tiny config; see BENCHMARKS.md).
//!
//! It changes the whole process's allocator, so the library never calls it on its own: the
//! `rlhf` binary and the benchmark examples do, at start-up; a program embedding the crate may.
//! The cost is memory the process keeps at its high-water mark instead of returning it. Setting
//! `RLHF_KEEP_FREED_MEMORY=0` turns it off. A no-op (returning `false`) outside glibc.

/// Makes glibc's `malloc` keep freed memory for reuse (see the module docs); returns whether it
/// did (`false` outside glibc, when `RLHF_KEEP_FREED_MEMORY=0`, or if `mallopt` refused).
pub fn retain_freed_memory() -> bool {
    if std::env::var("RLHF_KEEP_FREED_MEMORY").is_ok_and(|v| v.trim() == "0") {
        return false;
    }
    set_malloc_options()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_options() -> bool {
    // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_options() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_options_and_allocation_still_works() {
        let applied = super::retain_freed_memory();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(applied || std::env::var("RLHF_KEEP_FREED_MEMORY").is_ok());
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        assert!(!applied);
        // A block far over the old mmap threshold, freed and taken again.
        for _ in 0..3 {
            let v = vec![1.0f32; 16 << 20];
            assert_eq!(v.iter().sum::<f32>(), (16 << 20) as f32);
        }
    }
}
