//! An error and its causes on one line.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each error of its
/// [`source()`](Error::source) chain, separated by `": "`.
///
/// The errors of the mtls crates follow the Rust API guidelines: an error
/// that wraps another returns it from `source()` and does not repeat its
/// text, so printing only the outer error's `Display` loses the cause.
/// This is how the crates log errors (`error = %ErrorChain(&e)`), and one
/// way for an application to print them (anyhow's `{:#}` and eyre's
/// reports do the same).
///
/// ```
/// use std::error::Error;
/// use std::fmt;
/// use mtls_core::ErrorChain;
///
/// #[derive(Debug)]
/// struct Load(std::io::Error);
/// impl fmt::Display for Load {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("loading the config")
///     }
/// }
/// impl Error for Load {
///     fn source(&self) -> Option<&(dyn Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let e = Load(std::io::Error::other("disk on fire"));
/// assert_eq!(ErrorChain(&e).to_string(), "loading the config: disk on fire");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
