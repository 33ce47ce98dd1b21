use rlhf_raters::BootstrapSpec;
use rlhf_raters::ranking::bradley_terry::*;
use rlhf_raters::ranking::*;
use rlhf_raters::synth::*;
use std::time::Instant;
fn main() {
    let (c, _) = synth_comparisons(&ComparisonsConfig::benchmark());
    let pc = pair_counts(c.n_items(), &c.games);
    let f = fit(&pc, &BtConfig::default(), None, None).unwrap();
    let t = Instant::now();
    let s = bootstrap_bt(
        &c,
        &pc,
        &f.theta,
        &BtConfig::default(),
        &Anchor::default(),
        BootstrapSpec {
            replicates: 1000,
            seed: 1,
            confidence: 0.95,
        },
    )
    .unwrap();
    println!("boot {:?} {}", t.elapsed(), s.len());
}
