//! How a command fails: one readable line on stderr and an exit status (see
//! [`crate::args::EXIT_HELP`]). Nothing here panics or prints a backtrace.

use std::fmt;

#[derive(Debug)]
pub struct CliError {
    /// `None` when the command already said everything (e.g. a plan with conflicts).
    message: Option<String>,
    code: u8,
}

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_PLAN_CONFLICTS: u8 = 3;

impl CliError {
    pub fn failed(message: impl fmt::Display) -> Self {
        CliError {
            message: Some(one_line(&message.to_string())),
            code: EXIT_FAILED,
        }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        CliError {
            message: Some(one_line(&message.to_string())),
            code: EXIT_USAGE,
        }
    }

    /// Exit with `code` without a message: the output already explains why.
    pub fn silent(code: u8) -> Self {
        CliError {
            message: None,
            code,
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl From<quiver_metadata::StoreError> for CliError {
    fn from(e: quiver_metadata::StoreError) -> Self {
        CliError::failed(e)
    }
}

/// Collapse a message onto one line so every error is exactly one line on stderr.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_one_line() {
        let e = CliError::failed("bad thing\n  happened\there ");
        assert_eq!(e.message(), Some("bad thing happened here"));
        assert_eq!(e.code(), EXIT_FAILED);
    }
}
