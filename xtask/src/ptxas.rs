//! Parses `ptxas -v` output into per-kernel resource figures and prints them as a table.

/// What ptxas reports for one kernel on sm_90.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KernelStats {
    /// The `.cu` file's stem.
    pub file: String,
    /// The kernel's (extern "C") name.
    pub kernel: String,
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory per block, bytes.
    pub shared_bytes: u32,
    /// Stack frame per thread, bytes.
    pub stack_bytes: u32,
    /// Bytes spilled to local memory (stores).
    pub spill_stores: u32,
    /// Bytes reloaded from local memory.
    pub spill_loads: u32,
}

/// The number right before `unit` in `line` (e.g. `12 registers`).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let at = line.find(unit)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// Reads the `Function properties for K` / `Used N registers` blocks of `ptxas -v`.
pub fn parse_ptxas_verbose(file: &str, text: &str) -> Vec<KernelStats> {
    let mut out: Vec<KernelStats> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("Function properties for ").nth(1) {
            out.push(KernelStats {
                file: file.to_string(),
                kernel: rest.trim().to_string(),
                ..KernelStats::default()
            });
        } else if let Some(current) = out.last_mut() {
            if line.contains("stack frame") {
                current.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                current.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                current.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used") && line.contains("registers") {
                current.registers = number_before(line, "registers").unwrap_or(0);
                current.shared_bytes = number_before(line, "bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

/// Prints one row per kernel and a summary line (max registers, kernels that spill).
pub fn print_table(stats: &[KernelStats]) {
    println!(
        "{:<16} {:<40} {:>5} {:>7} {:>6} {:>8} {:>8}",
        "file", "kernel (sm_90)", "regs", "smem B", "stack", "spill st", "spill ld"
    );
    for s in stats {
        println!(
            "{:<16} {:<40} {:>5} {:>7} {:>6} {:>8} {:>8}",
            s.file,
            s.kernel,
            s.registers,
            s.shared_bytes,
            s.stack_bytes,
            s.spill_stores,
            s.spill_loads
        );
    }
    let spilling: Vec<&str> = stats
        .iter()
        .filter(|s| s.spill_stores > 0 || s.spill_loads > 0)
        .map(|s| s.kernel.as_str())
        .collect();
    let max_regs = stats.iter().map(|s| s.registers).max().unwrap_or(0);
    println!(
        "{} kernels, at most {max_regs} registers, {} spilling{}",
        stats.len(),
        spilling.len(),
        if spilling.is_empty() {
            String::new()
        } else {
            format!(": {}", spilling.join(", "))
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ptxas_verbose_blocks() {
        let text = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function 'add_f32' for 'sm_90'\n\
ptxas info    : Function properties for add_f32\n\
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
ptxas info    : Used 14 registers, used 1 barriers, 128 bytes smem, 380 bytes cmem[0]\n\
ptxas info    : Function properties for mul_f32\n\
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 10 registers, used 0 barriers, 380 bytes cmem[0]\n";
        let stats = parse_ptxas_verbose("elementwise", text);
        assert_eq!(stats.len(), 2);
        assert_eq!(
            stats[0],
            KernelStats {
                file: "elementwise".into(),
                kernel: "add_f32".into(),
                registers: 14,
                shared_bytes: 128,
                stack_bytes: 8,
                spill_stores: 4,
                spill_loads: 12,
            }
        );
        assert_eq!(stats[1].registers, 10);
        assert_eq!(stats[1].shared_bytes, 0);
    }
}
