//! Throughput of the format readers (filled in with the formats module).

fn main() {}
