//! Asking before destructive changes.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Goes on if `yes` was given, or if stdin is a terminal and the user
/// answers yes to `question`; refuses otherwise.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::NotConfirmed(format!(
            "{question} — refusing without --yes (stdin is not a terminal)"
        )));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|source| CliError::Io {
            what: "reading the answer".into(),
            source,
        })?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::NotConfirmed(
            "not confirmed; nothing was changed".into(),
        )),
    }
}
