//! Checks of what an error or a log tells its reader.

/// Panics, naming the first missing part and showing all of `text`,
/// unless `text` contains each of `parts` (an error chain from
/// [`error_lines`](crate::error_lines), a status message, a log).
///
/// ```
/// let text = "connect: refused\ncertificate expired at 10:00";
/// mtls_testing::assert_mentions(text, &["refused", "expired at"]);
/// ```
#[track_caller]
pub fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}
