//! `kiln completion bash|zsh|fish`: a shell completion script for every verb and flag
//! (generated from the command definition by `clap_complete`).

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

use super::Error;

/// `kiln completion --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # bash: this shell, and every new one
  source <(kiln completion bash)
  kiln completion bash > /etc/bash_completion.d/kiln

  # zsh
  kiln completion zsh > \"${fpath[1]}/_kiln\"

  # fish
  kiln completion fish > ~/.config/fish/completions/kiln.fish";

/// The shells a script can be printed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Arguments of `kiln completion`.
#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// The completion script for `shell`.
pub(crate) fn script(shell: Shell) -> String {
    let mut command = super::Cli::command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "kiln", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `kiln completion`.
pub(crate) fn run(args: &CompletionArgs) -> Result<ExitCode, Error> {
    super::write_stdout(&script(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_know_the_verbs_and_their_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            for word in [
                "start-build",
                "cancel-build",
                "describe",
                "follow",
                "dump-logs",
            ] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
