//! Why a policy file was refused: `FILE:LINE:COLUMN: message`.

use std::fmt;
use std::sync::Arc;

/// Why a policy file could not be read, parsed or validated. Its
/// `Display` is `FILE:LINE:COLUMN: message` (or `FILE: message` when the
/// file could not be read), the form compilers and editors understand.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("{origin}: policy file: cannot read: {source}")]
    Read {
        /// The file's path, as given.
        origin: String,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file is not a valid policy; `line` and `column` (both from 1,
    /// the column counted in characters) point at the offending text.
    #[error("{origin}:{line}:{column}: {problem}")]
    Invalid {
        /// Where the text came from (a file's path, or the name given to
        /// [`CompiledPolicy::from_toml`](crate::CompiledPolicy::from_toml)).
        origin: String,
        /// The line, from 1.
        line: usize,
        /// The column, from 1, in characters.
        column: usize,
        /// What is wrong.
        problem: PolicyProblem,
    },
}

impl PolicyFileError {
    /// `(line, column)` of the problem, for an invalid file.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Self::Invalid { line, column, .. } => Some((*line, *column)),
            Self::Read { .. } => None,
        }
    }

    /// What is wrong, for an invalid file.
    pub fn problem(&self) -> Option<&PolicyProblem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            Self::Read { .. } => None,
        }
    }

    pub(crate) fn at(origin: &str, text: &str, offset: usize, problem: PolicyProblem) -> Self {
        let (line, column) = line_column(text, offset);
        Self::Invalid {
            origin: origin.to_owned(),
            line,
            column,
            problem,
        }
    }
}

/// What is wrong in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// Not TOML, or not the policy schema (a missing or unknown field, a
    /// value of the wrong type); the message is the TOML parser's.
    #[error("policy file: {0}")]
    Syntax(String),
    /// `version` is not one this crate reads.
    #[error("policy file: unsupported version {0} (this version of mtls-tower reads version 1)")]
    UnsupportedVersion(i64),
    /// A `callers` entry is not valid.
    #[error("policy file: invalid caller {entry:?}: {reason}")]
    Caller {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A `paths` entry is not valid.
    #[error("policy file: invalid path {entry:?}: {reason}")]
    Path {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A `grpc` entry is not valid.
    #[error("policy file: invalid gRPC service or method {entry:?}: {reason}")]
    Grpc {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A `methods` entry is not a standard HTTP method in upper case.
    #[error("policy file: unknown HTTP method {0:?} (one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT, in upper case)")]
    Method(String),
    /// An `action` is not `allow`, `deny` or `audit`.
    #[error("policy file: unknown action {0:?} (allow, deny or audit)")]
    Action(String),
    /// An `authenticated_by` entry is not `mtls` or `jwt-svid`.
    #[error("policy file: unknown authentication {0:?} (mtls or jwt-svid)")]
    Authentication(String),
    /// A list that would match nothing (omit the field to match anything).
    #[error("policy file: empty {0} list matches nothing (omit the field to match any)")]
    EmptyList(&'static str),
    /// Fields that cannot go together in one rule.
    #[error("policy file: {0}")]
    Conflict(&'static str),
    /// Two rules with the same name.
    #[error("policy file: duplicate rule name {0:?}")]
    DuplicateName(String),
    /// The file is larger than the limit.
    #[error("policy file: larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// `(line, column)`, both from 1, the column in characters, of byte
/// `offset` of `text` (clamped to the text, and to a char boundary).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Shows at most 128 characters of untrusted text in an error.
pub(crate) fn shown(s: &str) -> String {
    s.chars().take(128).collect()
}

impl fmt::Display for super::Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Audit => "audit",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "a\nbé c\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (2, 1));
        assert_eq!(line_column(text, 6), (2, 4));
        assert_eq!(line_column(text, 5), (2, 3)); // inside 'é': clamped back
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
