//! Made-up names for places and cities, from syllables, so no name means anything.

use super::rng::{WorldRng, below, pick};
use std::collections::HashSet;

/// Syllable onsets.
const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr",
];
/// Syllable vowels.
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];
/// Syllable codas (often none).
const CODAS: [&str; 6] = ["", "", "", "n", "r", "l"];

/// One capitalised name of two or three syllables.
fn make_name(rng: &mut WorldRng) -> String {
    let syllables = 2 + below(rng, 2);
    let mut name = String::new();
    for _ in 0..syllables {
        name.push_str(pick::<&str>(rng, &ONSETS));
        name.push_str(pick::<&str>(rng, &VOWELS));
        name.push_str(pick::<&str>(rng, &CODAS));
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name,
    }
}

/// `count` distinct names, none in `taken` (which grows with them).
///
/// `reserved` holds words names must not equal (lower case), e.g. colours and foods.
pub fn distinct_names(
    rng: &mut WorldRng,
    count: usize,
    taken: &mut HashSet<String>,
    reserved: &[&str],
) -> Vec<String> {
    let mut names = Vec::with_capacity(count);
    while names.len() < count {
        let name = make_name(rng);
        let lower = name.to_lowercase();
        if reserved.contains(&lower.as_str()) || !taken.insert(lower) {
            continue;
        }
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::rng::stream_rng;

    #[test]
    fn names_are_distinct_and_capitalised() {
        let mut rng = stream_rng(5, "names");
        let mut taken = HashSet::new();
        let a = distinct_names(&mut rng, 200, &mut taken, &["red"]);
        let b = distinct_names(&mut rng, 50, &mut taken, &["red"]);
        let all: HashSet<String> = a.iter().chain(&b).map(|n| n.to_lowercase()).collect();
        assert_eq!(all.len(), 250);
        assert!(a.iter().all(|n| n.chars().next().unwrap().is_uppercase()));
    }
}
