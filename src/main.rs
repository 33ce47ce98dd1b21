//! The `rlhf` command-line tool. Each subcommand group lives in its own file under `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
