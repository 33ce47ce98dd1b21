//! parse(write(x)) == x for every writable format, over generated records whose text mixes the
//! pieces that break naive writers: turn markers, blank lines, quotes, commas, non-ASCII.

use std::io::Cursor;

use proptest::prelude::*;
use rlhf_data::formats::item_id::prompt_item_id;
use rlhf_data::formats::{FeedbackReader, FeedbackWriter, Format, OutputFormat};
use rlhf_data::records::{
    Answer, Feedback, FeedbackMeta, Label, LikertScale, Pairwise, Prompt, Question,
    QuestionFeedback, Ranking, Rating, Role, Rule, RuleSet, RuleViolations, Turn,
};

/// Text from pieces that are safe everywhere (no turn markers).
fn safe_text() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "bc", " ", "\n", "é", "🙂", "\"", ",", "\\", "Human", ":", "\t",
        ]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
    // "\n", "\n", "Human", ":" in a row spell a turn marker; keep the promise of the name.
    .prop_filter("spells an HH turn marker", |text| {
        !text.contains("\n\nHuman:") && !text.contains("\n\nAssistant:")
    })
    .boxed()
}

/// Text that may also hold HH turn markers and carriage returns.
fn tricky_text() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            " ",
            "\n",
            "\n\n",
            "Human:",
            "Assistant:",
            "\r",
            "é",
            "\"",
        ]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
    .boxed()
}

fn role(with_system: bool) -> impl Strategy<Value = Role> {
    let roles = if with_system {
        vec![Role::User, Role::Assistant, Role::System]
    } else {
        vec![Role::User, Role::Assistant]
    };
    prop::sample::select(roles)
}

fn prompt(
    text: impl Strategy<Value = String> + Clone,
    with_system: bool,
) -> impl Strategy<Value = Prompt> {
    prop::collection::vec((role(with_system), text), 1..5)
        .prop_map(|turns| Prompt::new(turns.into_iter().map(|(r, c)| Turn::new(r, c)).collect()))
}

/// A pair as HH/TRL readers produce it: item id = prompt hash, no rater.
fn pair(
    text: impl Strategy<Value = String> + Clone,
    with_system: bool,
    margin: bool,
) -> impl Strategy<Value = Pairwise> {
    let margin = if margin {
        prop::option::of(-500i32..500).boxed()
    } else {
        Just(None).boxed()
    };
    (
        prompt(text.clone(), with_system),
        text.clone(),
        text,
        margin,
    )
        .prop_filter_map("identical responses", |(p, c, r, m)| {
            (c != r).then(|| {
                let mut pair = Pairwise::new(FeedbackMeta::new(prompt_item_id(&p)), p, c, r);
                pair.margin = m.map(|x| f64::from(x) / 100.0);
                pair
            })
        })
}

fn write(format: OutputFormat, records: &[Feedback]) -> Result<Vec<u8>, String> {
    let mut writer = FeedbackWriter::new(Vec::new(), format, "mem");
    for record in records {
        writer.write(record).map_err(|e| e.to_string())?;
    }
    Ok(writer.finish().map_err(|e| e.to_string())?.0)
}

fn read(format: Format, bytes: Vec<u8>) -> Vec<Feedback> {
    FeedbackReader::from_reader("mem", Cursor::new(bytes), Some(format))
        .unwrap()
        .map(|r| r.unwrap().record)
        .collect()
}

fn meta() -> impl Strategy<Value = FeedbackMeta> {
    (
        "[a-z0-9,\" ]{1,8}",
        prop::option::of("[a-z0-9]{1,6}"),
        prop::option::of("2024-0[1-9]-0[1-9]"),
        prop::option::of(0u32..=1000),
    )
        .prop_map(|(item, rater, time, conf)| FeedbackMeta {
            item_id: item,
            rater_id: rater,
            timestamp: time,
            confidence: conf.map(|c| f64::from(c) / 1000.0),
        })
}

fn any_record() -> impl Strategy<Value = Feedback> {
    let ranking = (
        meta(),
        prompt(safe_text(), true),
        prop::collection::vec(0u32..4, 2..6),
    )
        .prop_filter_map("all tied", |(meta, prompt, ranks)| {
            let responses = (0..ranks.len()).map(|i| format!("response {i}")).collect();
            let r = Ranking::from_ranks(meta, prompt, responses, &ranks);
            (r.tiers.len() > 1).then_some(Feedback::Ranking(r))
        });
    let rules = (
        meta(),
        prompt(safe_text(), true),
        prop::collection::vec(prop::collection::vec(any::<bool>(), 3), 1..4),
    )
        .prop_map(|(meta, prompt, flags)| {
            let rules = RuleSet::new(
                (0..3)
                    .map(|i| Rule::new(format!("r{i}"), format!("rule {i}")))
                    .collect(),
            );
            let broken = flags
                .iter()
                .map(|f| {
                    f.iter()
                        .enumerate()
                        .filter(|(_, b)| **b)
                        .map(|(i, _)| format!("r{i}"))
                        .collect()
                })
                .collect();
            let responses = (0..flags.len()).map(|i| format!("answer {i}")).collect();
            Feedback::RuleViolations(RuleViolations {
                meta,
                prompt,
                rules,
                responses,
                broken,
            })
        });
    let questions = (meta(), prompt(safe_text(), true), safe_text(), 0usize..3).prop_map(
        |(meta, prompt, response, choice)| {
            Feedback::Questions(QuestionFeedback {
                meta,
                prompt,
                response,
                questions: vec![Question::yes_partly_no("answers", "Does it answer?")],
                answers: vec![Answer {
                    question_id: "answers".into(),
                    choice,
                }],
            })
        },
    );
    let rating = (meta(), prompt(safe_text(), true), safe_text(), 1i32..=7).prop_map(
        |(meta, prompt, response, value)| {
            Feedback::Rating(Rating {
                meta,
                prompt,
                response,
                value,
                scale: LikertScale::new(1, 7),
            })
        },
    );
    let label = (meta(), "[a-z ,\"]{1,6}").prop_map(|(mut meta, label)| {
        meta.rater_id.get_or_insert_with(|| "r".into());
        Feedback::Label(Label { meta, label })
    });
    prop_oneof![
        pair(safe_text(), true, true).prop_map(Feedback::Pairwise),
        ranking,
        rules,
        questions,
        rating,
        label
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hh_round_trips_safe_text(records in prop::collection::vec(pair(safe_text(), false, false), 1..6)) {
        let records: Vec<Feedback> = records.into_iter().map(Feedback::from).collect();
        let bytes = write(OutputFormat::Hh, &records).unwrap();
        prop_assert_eq!(read(Format::Hh, bytes), records);
    }

    #[test]
    fn hh_round_trips_or_refuses_tricky_text(record in pair(tricky_text(), false, false)) {
        let record = Feedback::from(record);
        if let Ok(bytes) = write(OutputFormat::Hh, std::slice::from_ref(&record)) {
            let back = FeedbackReader::from_reader("mem", Cursor::new(bytes), Some(Format::Hh)).unwrap()
                .map(|r| r.map(|l| l.record)).collect::<Vec<_>>();
            // Whatever the writer accepts must read back as exactly the same record.
            match back.as_slice() {
                [Ok(parsed)] => prop_assert_eq!(parsed, &record),
                other => prop_assert!(false, "one valid record expected, got {other:?}"),
            }
        }
    }

    #[test]
    fn trl_round_trips(records in prop::collection::vec(pair(tricky_text(), true, true), 1..6)) {
        let records: Vec<Feedback> = records.into_iter().map(Feedback::from).collect();
        let bytes = write(OutputFormat::Trl, &records).unwrap();
        prop_assert_eq!(read(Format::Trl, bytes), records);
    }

    #[test]
    fn native_round_trips_every_kind(records in prop::collection::vec(any_record(), 1..6)) {
        let bytes = write(OutputFormat::Native, &records).unwrap();
        prop_assert_eq!(read(Format::Native, bytes), records);
    }

    #[test]
    fn kway_round_trips_rankings(records in prop::collection::vec(any_record(), 1..6)) {
        let rankings: Vec<Feedback> = records.into_iter().filter(|r| matches!(r, Feedback::Ranking(_))).collect();
        let bytes = write(OutputFormat::Kway, &rankings).unwrap();
        prop_assert_eq!(read(Format::Native, bytes), rankings);
    }

    #[test]
    fn label_tables_round_trip(
        rows in prop::collection::vec(("[a-z0-9 ,\"\n]{1,8}", "[a-z0-9,]{1,5}", "[a-zé ,\"\n]{1,8}"), 1..8),
        meta_extra in prop::collection::vec((prop::option::of("2024-01-0[1-9]"), prop::option::of(0u32..=1000)), 8),
    ) {
        let plain: Vec<Feedback> = rows.iter().map(|(i, r, l)| Label::new(i.as_str(), r.as_str(), l.as_str()).into()).collect();
        let bytes = write(OutputFormat::LabelsCsv, &plain).unwrap();
        prop_assert_eq!(read(Format::LabelsCsv, bytes), plain.clone());
        let with_meta: Vec<Feedback> = plain.into_iter().zip(&meta_extra).map(|(record, (t, c))| {
            let Feedback::Label(mut label) = record else { unreachable!("built as labels above") };
            label.meta.timestamp = t.clone();
            label.meta.confidence = c.map(|c| f64::from(c) / 1000.0);
            Feedback::Label(label)
        }).collect();
        let bytes = write(OutputFormat::LabelsJsonl, &with_meta).unwrap();
        prop_assert_eq!(read(Format::LabelsJsonl, bytes), with_meta);
    }
}

#[test]
fn rankings_written_as_pairs_give_their_pairs_back() {
    let prompt = Prompt::user("Pick the best.");
    let ranking = Ranking::new(
        FeedbackMeta::new(prompt_item_id(&prompt)),
        prompt,
        vec!["a".into(), "b".into(), "c".into(), "d".into()],
        vec![vec![2], vec![0, 3], vec![1]],
    );
    let bytes = write(OutputFormat::Trl, &[ranking.clone().into()]).unwrap();
    let back = read(Format::Trl, bytes);
    let expected: Vec<Feedback> = ranking
        .to_pairwise()
        .into_iter()
        .map(Feedback::from)
        .collect();
    assert_eq!(back.len(), 5); // C(4,2) = 6 minus the tie between 0 and 3
    assert_eq!(back, expected);
}
