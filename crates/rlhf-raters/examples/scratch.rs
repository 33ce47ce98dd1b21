use rlhf_raters::BootstrapSpec;
use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::ranking::bradley_terry::*;
use rlhf_raters::ranking::*;
use rlhf_raters::synth::*;
fn main() {
    let which = std::env::args().nth(1).unwrap();
    if which == "ds" {
        let s = synth_labels(&LabelsConfig::benchmark()).unwrap();
        let a = aggregate(
            &s.set,
            None,
            Method::DawidSkene,
            &EmConfig {
                max_iterations: 40,
                tolerance: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        println!("{}", a.iterations);
    } else {
        let (c, _) = synth_comparisons(&ComparisonsConfig::benchmark());
        let pc = pair_counts(c.n_items(), &c.games);
        let f = fit(&pc, &BtConfig::default(), None, None).unwrap();
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
        println!("{}", s.len());
    }
}
