//! `rlhf data validate|stats|convert`: check, describe and convert human-feedback files in any
//! format `rlhf-data` reads (HH-RLHF, TRL, OASST trees, label tables, native JSONL; gzip or not).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use rlhf_data::formats::oasst::OasstTally;
use rlhf_data::formats::{AtomicFile, FeedbackReader, FeedbackWriter, Format, OutputFormat};
use rlhf_data::stats::{DatasetStats, StatsSummary};
use rlhf_data::validate::{Checked, Policy, Report};
use serde::Serialize;

/// Options of `rlhf data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Check every record; exit 0 only if all are valid. Errors give file:line: field: expected.
    Validate(InputArgs),
    /// Print statistics as JSON: counts by kind, items, prompts, raters, K distribution, lengths.
    Stats(InputArgs),
    /// Convert to another format, written to a temporary file and renamed into place.
    Convert(ConvertArgs),
}

/// Where to read from and how strictly.
#[derive(Debug, Args)]
struct InputArgs {
    /// The file to read (gzip detected from its content).
    #[arg(long)]
    input: PathBuf,
    /// Its format: hh, trl, oasst, labels-csv, labels-jsonl, native (kway); detected when left out.
    #[arg(long, value_parser = parse_input_format)]
    input_format: Option<Format>,
    /// Leave invalid records out (counted, first reasons shown) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
}

#[derive(Debug, Args)]
struct ConvertArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The file to write (gzip-compressed when it ends in `.gz`).
    #[arg(long)]
    output: PathBuf,
    /// The output format: hh, trl, labels-csv, labels-jsonl, kway, native.
    #[arg(long, value_parser = parse_output_format)]
    format: OutputFormat,
}

fn parse_input_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!(
            "expected one of {} (or kway), got `{name}`",
            names.join(", ")
        )
    })
}

fn parse_output_format(name: &str) -> Result<OutputFormat, String> {
    OutputFormat::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = OutputFormat::ALL.iter().map(|f| f.name()).collect();
        format!("expected one of {}, got `{name}`", names.join(", "))
    })
}

/// Runs `rlhf data ...`.
pub fn execute(args: DataArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DataCommand::Validate(input) => validate(&input),
        DataCommand::Stats(input) => stats(&input),
        DataCommand::Convert(convert_args) => convert(&convert_args),
    }
}

fn open(input: &InputArgs) -> anyhow::Result<Checked> {
    let reader = FeedbackReader::open(&input.input, input.input_format)?;
    let policy = if input.skip_invalid {
        Policy::Skip
    } else {
        Policy::FailFast
    };
    Ok(Checked::new(reader, policy))
}

fn validate(input: &InputArgs) -> anyhow::Result<ExitCode> {
    let mut checked = open(input)?;
    let mut first_error = None;
    for item in checked.by_ref() {
        if let Err(error) = item {
            first_error = Some(error);
        }
    }
    let format = checked.format();
    let tally = checked.reader().oasst_tally();
    let report = checked.into_report();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} format: {} valid records, {} invalid",
        input.input.display(),
        format.name(),
        report.valid,
        report.invalid
    )?;
    if let Some(error) = &first_error {
        writeln!(out, "error: {error}")?;
        if !input.skip_invalid {
            writeln!(
                out,
                "stopped at the first invalid record (pass --skip-invalid to check them all)"
            )?;
        }
    }
    write_report_details(&mut out, &input.input, &report)?;
    if format == Format::Oasst {
        writeln!(
            out,
            "left out of rankings: {} deleted messages, {} unranked replies, {} prompts with one ranked reply, \
             {} ranked prompter-reply groups",
            tally.deleted_messages,
            tally.unranked_replies,
            tally.single_ranked_replies,
            tally.prompter_rankings
        )?;
    }
    let all_valid = report.invalid == 0 && first_error.is_none();
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_report_details(out: &mut impl Write, file: &Path, report: &Report) -> std::io::Result<()> {
    for error in &report.first_errors {
        writeln!(out, "invalid: {error}")?;
    }
    if report.invalid > report.first_errors.len() as u64 && !report.first_errors.is_empty() {
        writeln!(
            out,
            "... and {} more invalid records",
            report.invalid - report.first_errors.len() as u64
        )?;
    }
    if report.duplicates > 0 {
        writeln!(
            out,
            "{} duplicate records (same kind, item, rater and responses):",
            report.duplicates
        )?;
        for d in &report.first_duplicates {
            writeln!(
                out,
                "duplicate: {}:{} repeats line {}",
                file.display(),
                d.line,
                d.first_line
            )?;
        }
    }
    Ok(())
}

/// What `rlhf data stats` prints.
#[derive(Serialize)]
struct StatsOutput {
    file: String,
    format: &'static str,
    invalid_skipped: u64,
    duplicates: u64,
    /// What OASST trees left out of their rankings (OASST input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    oasst_left_out: Option<OasstTally>,
    #[serde(flatten)]
    stats: StatsSummary,
}

fn stats(input: &InputArgs) -> anyhow::Result<ExitCode> {
    let mut checked = open(input)?;
    let mut stats = DatasetStats::new();
    for item in checked.by_ref() {
        stats.add(&item?.record);
    }
    let format = checked.format();
    let tally = checked.reader().oasst_tally();
    let report = checked.into_report();
    let output = StatsOutput {
        file: input.input.display().to_string(),
        format: format.name(),
        invalid_skipped: report.invalid,
        duplicates: report.duplicates,
        oasst_left_out: (format == Format::Oasst).then_some(tally),
        stats: stats.summary(),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &output)?;
    writeln!(out)?;
    if report.invalid > 0 {
        for error in &report.first_errors {
            eprintln!("skipped: {error}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let mut checked = open(&args.input)?;
    let input = args.input.input.display();
    let context = || format!("converting {input} to {}", args.format.name());
    // Dropped on an error before `commit`: the temporary file goes, nothing is left at `output`.
    let mut writer =
        FeedbackWriter::new(AtomicFile::create(&args.output)?, args.format, &args.output);
    for item in checked.by_ref() {
        let located = item.with_context(context)?;
        writer
            .write(&located.record)
            .with_context(|| format!("{input}:{}", located.line))
            .with_context(context)?;
    }
    let (file, summary) = writer.finish().with_context(context)?;
    file.commit().with_context(context)?;
    let report = checked.into_report();
    eprintln!(
        "wrote {} lines from {} records to {} as {}",
        summary.lines,
        summary.records,
        args.output.display(),
        args.format.name()
    );
    for (field, rows) in summary.dropped.iter() {
        eprintln!(
            "dropped `{field}` on {rows} output rows (no place for it in {})",
            args.format.name()
        );
    }
    if report.invalid > 0 {
        eprintln!("skipped {} invalid records", report.invalid);
        let mut err = std::io::stderr().lock();
        write_report_details(&mut err, &args.input.input, &report)?;
    } else if report.duplicates > 0 {
        eprintln!(
            "note: {} duplicate records were converted as they are",
            report.duplicates
        );
    }
    Ok(ExitCode::SUCCESS)
}
