//! The plain builder setters of this workspace, written once.

/// Builder setters that only assign a field: each `name: Type;`, after its
/// doc comment (and any other attribute, which it keeps), becomes
///
/// ```text
/// pub fn name(mut self, name: Type) -> Self {
///     self.name = name;
///     self
/// }
/// ```
///
/// Internal to the crates of this workspace (mtls-core, mtls-ca,
/// mtls-tower), not API: hidden from the docs, and free to change in any
/// release. A setter that does more than assign (pushes to a list, wraps
/// in `Some`, converts with `Into`, clamps, takes two arguments, or sets a
/// field of another name) is written out.
#[doc(hidden)]
#[macro_export]
macro_rules! __setters {
    ($($(#[$attr:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$attr])*
            pub fn $name(mut self, $name: $ty) -> Self {
                self.$name = $name;
                self
            }
        )*
    };
}
