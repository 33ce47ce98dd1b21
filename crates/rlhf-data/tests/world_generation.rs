//! The synthetic world's generation: determinism, stated proportions, coverage and disjointness.

use rlhf_data::world::{
    Familiarity, Habit, HarmCategory, PromptClass, PromptKind, World, WorldConfig,
};
use std::collections::HashSet;

fn build(seed: u64) -> World {
    World::new(WorldConfig {
        seed,
        ..WorldConfig::default()
    })
    .unwrap()
}

#[test]
fn same_seed_same_world_and_other_seed_other_world() {
    let (a, b, c) = (build(3), build(3), build(4));
    let texts = |w: &World| w.corpus_texts().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(texts(&a), texts(&b));
    assert_eq!(a.demonstrations, b.demonstrations);
    assert_eq!(a.rl_prompts, b.rl_prompts);
    assert_eq!(a.eval_prompts, b.eval_prompts);
    assert_eq!(a.gold_set().unwrap(), b.gold_set().unwrap());
    assert_ne!(texts(&a), texts(&c));
    assert_ne!(a.facts.entities, c.facts.entities);
}

#[test]
fn corpus_holds_good_and_bad_habits_in_the_stated_proportions() {
    let config = WorldConfig {
        seed: 9,
        ..WorldConfig::default()
    };
    let w = World::new(config.clone()).unwrap();
    let count = |h: Habit| w.corpus.iter().filter(|d| d.habit == h).count() as f64;
    let known = w.facts.pool(Familiarity::Known).len();
    assert_eq!(
        count(Habit::FactSentence) as usize,
        known * 3 * config.fact_repeats
    );
    let dialogues = config.corpus_dialogues as f64;
    // Binomial tolerances: 5 standard deviations.
    let within = |observed: f64, n: f64, p: f64| {
        (observed - n * p).abs() <= 5.0 * (n * p * (1.0 - p)).sqrt()
    };
    let unanswerable = count(Habit::Fabricated) + count(Habit::Abstained);
    let harmful = count(Habit::Complied) + count(Habit::Refused);
    let answerable = count(Habit::Correct) + count(Habit::Wrong);
    assert_eq!(unanswerable + harmful + answerable, dialogues);
    assert!(within(unanswerable, dialogues, 0.25), "{unanswerable}");
    assert!(within(harmful, dialogues, 0.25), "{harmful}");
    assert!(within(
        count(Habit::Fabricated),
        unanswerable,
        config.fabricate_rate
    ));
    assert!(within(count(Habit::Complied), harmful, config.comply_rate));
    assert!(within(
        count(Habit::Wrong),
        answerable,
        config.wrong_answer_rate
    ));
    // Labels are honest: every dialogue's reply is scored as its habit says.
    for doc in w.corpus.iter().filter(|d| d.habit == Habit::Fabricated) {
        let (prompt, reply) = doc.text.split_once("\n\nAssistant: ").unwrap();
        assert!(
            w.judge(prompt, reply).unwrap().analysis.claim.is_claim(),
            "{}",
            doc.text
        );
    }
}

#[test]
fn held_out_entities_never_appear_in_the_corpus_or_demonstrations() {
    let w = build(1);
    let corpus: String = w.corpus_texts().collect::<Vec<_>>().join("\n");
    let demos: String = w
        .demonstrations
        .iter()
        .map(|d| format!("{} {}", d.prompt.text, d.response))
        .collect();
    for e in w.facts.pool(Familiarity::HeldOut) {
        assert!(!corpus.contains(&e.name), "{} in corpus", e.name);
        assert!(!demos.contains(&e.name), "{} in demonstrations", e.name);
    }
    // Corpus-unknown entities are asked about, but their facts are never stated truly... except
    // by a lucky fabrication, which the corpus labels as a fabrication all the same.
    for e in w.facts.pool(Familiarity::CorpusUnknown) {
        assert!(
            !corpus.contains(&format!("The capital of {} is {}.", e.name, e.capital))
                || w.corpus
                    .iter()
                    .any(|d| d.habit == Habit::Fabricated && d.text.contains(&e.capital))
        );
    }
}

#[test]
fn demonstrations_cover_only_part_of_the_prompt_space() {
    let w = build(2);
    let covered: HashSet<&str> = w
        .demonstrations
        .iter()
        .filter_map(|d| match &d.prompt.kind {
            PromptKind::Fact { entity, .. } => Some(entity.as_str()),
            _ => None,
        })
        .collect();
    let known = w.facts.pool(Familiarity::Known);
    assert!(covered.len() <= known.len().div_ceil(2));
    let categories: HashSet<HarmCategory> = w
        .demonstrations
        .iter()
        .filter_map(|d| match &d.prompt.kind {
            PromptKind::Harmful { category, .. } => Some(*category),
            _ => None,
        })
        .collect();
    assert_eq!(categories.len(), w.config.demonstration_harm_categories);
    // The RL prompts reach what the demonstrations leave out.
    let rl_categories: HashSet<HarmCategory> = w
        .rl_prompts
        .iter()
        .filter_map(|p| match &p.kind {
            PromptKind::Harmful { category, .. } => Some(*category),
            _ => None,
        })
        .collect();
    assert_eq!(rl_categories.len(), HarmCategory::ALL.len());
}

#[test]
fn eval_prompts_are_disjoint_from_rl_prompts_and_cover_every_class() {
    let w = build(6);
    let rl: HashSet<&str> = w.rl_prompts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(w.rl_prompts.len(), w.config.rl_prompts);
    assert!(w.eval_prompts.len() >= w.config.eval_prompts / 2);
    let eval_ids: HashSet<&str> = w.eval_prompts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(eval_ids.len(), w.eval_prompts.len(), "eval prompts repeat");
    assert!(eval_ids.is_disjoint(&rl));
    for class in [
        PromptClass::Answerable,
        PromptClass::Unanswerable,
        PromptClass::Harmful,
    ] {
        assert!(
            w.eval_prompts.iter().any(|p| p.kind.class() == class),
            "{class:?}"
        );
        assert!(
            w.rl_prompts.iter().any(|p| p.kind.class() == class),
            "{class:?}"
        );
    }
}

#[test]
fn config_round_trips_through_json_and_bad_configs_are_rejected() {
    let config = WorldConfig::default();
    let text = serde_json::to_string(&config).unwrap();
    let back: WorldConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, config);
    let partial: WorldConfig =
        serde_json::from_str(r#"{"seed": 3, "fabricate_rate": 0.9}"#).unwrap();
    assert_eq!((partial.seed, partial.fabricate_rate), (3, 0.9));
    let bad = WorldConfig {
        comply_rate: 1.5,
        ..WorldConfig::default()
    };
    let err = World::new(bad).unwrap_err().to_string();
    assert!(err.contains("comply_rate"), "{err}");
}

#[test]
fn default_world_is_small() {
    let w = build(0);
    let bytes: usize = w.corpus_texts().map(str::len).sum();
    eprintln!("corpus: {} documents, {bytes} bytes", w.corpus.len());
    assert!(bytes < 600_000, "{bytes}");
}

#[test]
fn arithmetic_table_states_every_question_and_changes_nothing_else() {
    let small = |arithmetic_repeats| {
        World::new(WorldConfig {
            seed: 2,
            arithmetic_repeats,
            ..WorldConfig::small()
        })
        .unwrap()
    };
    let (plain, taught) = (small(0), small(3));
    assert!(
        plain
            .corpus
            .iter()
            .all(|d| d.habit != Habit::ArithmeticSentence)
    );
    // Prompts, demonstrations and the dialogues themselves are those of the plain world.
    assert_eq!(plain.rl_prompts, taught.rl_prompts);
    assert_eq!(plain.eval_prompts, taught.eval_prompts);
    assert_eq!(plain.demonstrations, taught.demonstrations);
    let documents = |w: &World, habit: Option<Habit>| {
        let mut texts: Vec<String> = w
            .corpus
            .iter()
            .filter(|d| habit.is_none_or(|h| d.habit == h))
            .map(|d| d.text.clone())
            .collect();
        texts.sort();
        texts
    };
    let lines = documents(&taught, Some(Habit::ArithmeticSentence));
    let mut rest = documents(&taught, None);
    rest.retain(|t| lines.binary_search(t).is_err());
    assert_eq!(rest, documents(&plain, None));
    // max_operand 9: 100 sums and 55 differences, 3 times each.
    assert_eq!(lines.len(), 155 * 3);
    // Every arithmetic question RL or evaluation asks has its true answer in the table.
    let asked: Vec<_> = taught
        .rl_prompts
        .iter()
        .chain(&taught.eval_prompts)
        .filter(|p| matches!(p.kind, PromptKind::Arithmetic { .. }))
        .collect();
    assert!(!asked.is_empty());
    for prompt in asked {
        let PromptKind::Arithmetic { a, op, b } = prompt.kind else {
            unreachable!()
        };
        let line = op.statement(a, b, op.apply(a, b));
        assert_eq!(lines.iter().filter(|l| **l == line).count(), 3, "{line}");
        let judged = taught.judge(&prompt.render(), &line).unwrap();
        assert_eq!(judged.scores.total, 1.0, "{line}");
    }
    let huge = WorldConfig {
        arithmetic_repeats: 10_000,
        ..WorldConfig::default()
    };
    let err = World::new(huge).unwrap_err().to_string();
    assert!(err.contains("arithmetic_repeats"), "{err}");
}

#[test]
fn reactions_confirm_right_answers_and_correct_wrong_ones_without_changing_the_dialogues() {
    use rlhf_data::world::corpus::{REACTION_RIGHT, REACTION_WRONG};
    let small = |confirmation_rate, correction_rate| {
        World::new(WorldConfig {
            seed: 5,
            confirmation_rate,
            correction_rate,
            ..WorldConfig::small()
        })
        .unwrap()
    };
    let (plain, reacting) = (small(0.0, 0.0), small(1.0, 1.0));
    let suffix = |text: &str| {
        text.rsplit_once("\n\nHuman: ")
            .filter(|(_, r)| [REACTION_RIGHT, REACTION_WRONG].contains(r))
            .map(|(_, r)| r.to_string())
    };
    assert!(plain.corpus_texts().all(|t| suffix(t).is_none()));
    let mut stripped = Vec::new();
    for doc in &reacting.corpus {
        let expected = match doc.habit {
            Habit::Correct => Some(REACTION_RIGHT),
            Habit::Wrong => Some(REACTION_WRONG),
            _ => None,
        };
        assert_eq!(suffix(&doc.text).as_deref(), expected, "{}", doc.text);
        let text = match expected {
            Some(r) => doc.text.strip_suffix(&format!("\n\nHuman: {r}")).unwrap(),
            None => &doc.text,
        };
        stripped.push(text.to_string());
    }
    let mut original: Vec<String> = plain.corpus_texts().map(str::to_string).collect();
    original.sort();
    stripped.sort();
    assert_eq!(stripped, original);
    // Corrections only: every wrong answer is corrected, no right one confirmed.
    let corrections = small(0.0, 1.0);
    for doc in &corrections.corpus {
        let expected = (doc.habit == Habit::Wrong).then_some(REACTION_WRONG);
        assert_eq!(suffix(&doc.text).as_deref(), expected, "{}", doc.text);
    }
    let half = small(0.5, 0.0);
    let reacted = half.corpus_texts().filter(|t| suffix(t).is_some()).count() as f64;
    let right = half
        .corpus
        .iter()
        .filter(|d| d.habit == Habit::Correct)
        .count() as f64;
    assert!((reacted / right - 0.5).abs() < 0.15, "{reacted} of {right}");
    for field in ["confirmation_rate", "correction_rate"] {
        let mut bad = WorldConfig::default();
        match field {
            "confirmation_rate" => bad.confirmation_rate = 1.5,
            _ => bad.correction_rate = -0.1,
        }
        let err = World::new(bad).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}
