//! Request paths in normal form, so that the route policy decides on the
//! path the handlers behind it see.
//!
//! Routers match the raw path (axum 0.8 / matchit: `/users/%61dmin` does
//! not hit a static `/users/admin` route), but their path extractors
//! percent-decode captures (`/users/{name}` gets `name = "admin"` from
//! `/users/%61dmin`, `"admin/"` from `/users/admin%2F`, `"../x"` for a
//! wildcard from `/files/%2e%2e/x`), and matchit lets a capture be empty
//! (`/two/{a}/{b}` matches `/two//b` with `a = ""`). A policy matching
//! raw segments would then judge a different resource than the handler
//! serves. So [`check`] refuses every path whose segments are not
//! already in normal form (RFC 3986 §6.2.2), and [`decode_rule_chars`]
//! decodes what remains that could spell a rule character.
//!
//! Why the two together make the policy and the handler agree: a rule
//! segment holds only [rule characters](is_rule_char) and never `%`. For a
//! request segment that passed [`check`], [`decode_rule_chars`] turns
//! every encoded rule character into the character and leaves every other
//! octet encoded. If the segment held such another octet, the policy's
//! view still holds a `%` and the handler's decoded view holds a character
//! no rule can hold: neither equals any rule segment. Otherwise the
//! policy's view *is* the fully decoded segment. Encoded `/` is refused,
//! so segment boundaries are the same for both.

use std::borrow::Cow;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

/// Why a request path is not in normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum InvalidPath {
    /// The path does not start with `/` (`*`, authority-form, empty).
    #[error("request path: must start with '/'")]
    NotAbsolute,
    /// `//`: an empty segment (a trailing `/` is allowed).
    #[error("request path: empty segment at byte {at}")]
    EmptySegment {
        /// Byte offset of the second `/`.
        at: usize,
    },
    /// A `.` or `..` segment.
    #[error("request path: dot segment at byte {at}")]
    DotSegment {
        /// Byte offset of the segment.
        at: usize,
    },
    /// `%` not followed by two hex digits.
    #[error("request path: malformed percent-encoding at byte {at}")]
    MalformedEncoding {
        /// Byte offset of the `%`.
        at: usize,
    },
    /// An encoded unreserved character, which must not be encoded
    /// (RFC 3986 §2.3).
    #[error("request path: percent-encoded unreserved character {ch:?} at byte {at} (RFC 3986 section 2.3: send it unencoded)")]
    EncodedUnreserved {
        /// Byte offset of the `%`.
        at: usize,
        /// The character encoded.
        ch: char,
    },
    /// `%2F`: a `/` inside a segment, which the handler sees decoded.
    #[error("request path: percent-encoded '/' at byte {at}")]
    EncodedSlash {
        /// Byte offset of the `%`.
        at: usize,
    },
    /// A `\`, raw or `%5C`: some servers and clients take it for `/`.
    #[error("request path: backslash at byte {at}")]
    Backslash {
        /// Byte offset of the `\` or its `%`.
        at: usize,
    },
    /// `%25` followed by two hex digits: an encoded encoding, which a
    /// handler or proxy decoding twice would read as another path.
    #[error("request path: double percent-encoding at byte {at}")]
    DoubleEncoding {
        /// Byte offset of the `%`.
        at: usize,
    },
}

/// Whether `b` may appear in a route policy's path prefix (besides `/`):
/// RFC 3986 `pchar` without percent-encoding, that is unreserved
/// (`ALPHA / DIGIT / - . _ ~`), sub-delims (`! $ & ' ( ) * + , ; =`),
/// `:` and `@`.
pub(crate) fn is_rule_char(b: u8) -> bool {
    is_unreserved(b) || b"!$&'()*+,;=:@".contains(&b)
}

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Whether `bytes[at..]` starts with two hex digits.
fn is_hex_pair(bytes: &[u8], at: usize) -> bool {
    matches!(bytes.get(at..at + 2), Some([hi, lo]) if hex(*hi).is_some() && hex(*lo).is_some())
}

/// The octet `%XX` at `bytes[at..]` encodes, if well-formed.
fn encoded_at(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 3) {
        Some([b'%', hi, lo]) => Some((hex(*hi)? << 4) | hex(*lo)?),
        _ => None,
    }
}

/// Checks that `path` (a request's raw path, without query) is in normal
/// form: starts with `/`; no empty segment (`//`) except that the path
/// may end with one `/`; no `.` or `..` segment; no `\`; every `%`
/// followed by two hex digits (either case) encoding neither an
/// unreserved character, nor `/`, nor `\`, nor a `%` that is itself
/// followed by two hex digits.
///
/// Every other percent-encoded octet (`%20`, `%3F`, `%3A`, `%C3%A9`, ...)
/// passes; see the module docs for why that is safe.
pub(crate) fn check(path: &str) -> Result<Normal, InvalidPath> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(InvalidPath::NotAbsolute);
    }
    let mut encoded = false;
    let mut segment_start = 1;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'/' => {
                check_segment(bytes, segment_start, i)?;
                if i == segment_start {
                    return Err(InvalidPath::EmptySegment { at: i });
                }
                segment_start = i + 1;
            }
            b'\\' => return Err(InvalidPath::Backslash { at: i }),
            b'%' => {
                let octet = encoded_at(bytes, i).ok_or(InvalidPath::MalformedEncoding { at: i })?;
                if is_unreserved(octet) {
                    return Err(InvalidPath::EncodedUnreserved {
                        at: i,
                        ch: char::from(octet),
                    });
                }
                match octet {
                    b'/' => return Err(InvalidPath::EncodedSlash { at: i }),
                    b'\\' => return Err(InvalidPath::Backslash { at: i }),
                    b'%' if is_hex_pair(bytes, i + 3) => {
                        return Err(InvalidPath::DoubleEncoding { at: i })
                    }
                    _ => {}
                }
                encoded = true;
                i += 2;
            }
            _ => {}
        }
        i += 1;
    }
    check_segment(bytes, segment_start, bytes.len())?;
    Ok(Normal { encoded })
}

/// What [`check`] learnt of a path in normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Normal {
    /// Whether the path holds a percent-encoded octet.
    encoded: bool,
}

impl Normal {
    /// [`decode_rule_chars`] of the path [`check`] accepted, without
    /// looking for a `%` again.
    #[inline]
    pub(crate) fn decode_rule_chars(self, path: &str) -> Cow<'_, str> {
        if self.encoded {
            decode_rule_chars(path)
        } else {
            Cow::Borrowed(path)
        }
    }
}

/// Refuses `bytes[start..end]` if it is a dot segment (raw: encoded dots
/// are refused as encoded unreserved characters).
fn check_segment(bytes: &[u8], start: usize, end: usize) -> Result<(), InvalidPath> {
    match &bytes[start..end] {
        b"." | b".." => Err(InvalidPath::DotSegment { at: start }),
        _ => Ok(()),
    }
}

/// `path` with every percent-encoded [rule character](is_rule_char)
/// decoded, and everything else as it was: the path the route policy
/// matches. Borrows when there is nothing to decode.
pub(crate) fn decode_rule_chars(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(path);
    };
    let mut out = String::with_capacity(path.len());
    out.push_str(&path[..first]);
    let mut rest = first;
    let mut i = first;
    while i < bytes.len() {
        if let Some(octet) = encoded_at(bytes, i).filter(|&o| is_rule_char(o)) {
            // `rest..i` and `i..i + 3` are ASCII-bounded, so char
            // boundaries: `%` and hex digits are ASCII.
            out.push_str(&path[rest..i]);
            out.push(char::from(octet));
            i += 3;
            rest = i;
        } else {
            i += 1;
        }
    }
    if rest == first {
        return Cow::Borrowed(path);
    }
    out.push_str(&path[rest..]);
    Cow::Owned(out)
}

/// The answer to a request whose path is not in normal form: 400 (gRPC:
/// `INVALID_ARGUMENT`, 3, in a trailers-only response), counted as an
/// `invalid_path` authorization decision.
pub(crate) fn refusal(invalid: &InvalidPath, grpc: bool) -> Response<Full<Bytes>> {
    tracing::debug!(reason = %invalid, "mtls: request refused, its path is not in normal form");
    ::metrics::counter!(crate::metrics::AUTHZ_DECISIONS, "result" => "invalid_path").increment(1);
    crate::layer::refusal_response(grpc, StatusCode::BAD_REQUEST, "3", "invalid request path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_pass() {
        for path in [
            "/",
            "/users",
            "/users/",
            "/users/admin",
            "/users/admin/",
            "/pkg.Service/Method",
            "/v1:batch",
            "/a.b/.hidden/.../c..d",
            "/a%20b",
            "/a%3Fb",
            "/a%3ab",
            "/caf%C3%A9",
            "/100%25",
            "/100%25x",
            "/a%25%20",
            "/a;b=c",
            "/é",
        ] {
            let normal = check(path);
            assert!(normal.is_ok(), "{path:?}");
            assert_eq!(
                normal.map(|n| n.encoded),
                Ok(path.contains('%')),
                "{path:?}"
            );
        }
    }

    #[test]
    fn non_normal_paths_are_refused() {
        use InvalidPath::*;
        let cases: &[(&str, &str, InvalidPath)] = &[
            ("empty", "", NotAbsolute),
            ("asterisk-form", "*", NotAbsolute),
            ("relative", "users", NotAbsolute),
            ("empty-segment", "/users//admin", EmptySegment { at: 7 }),
            ("leading-empty-segment", "//users", EmptySegment { at: 1 }),
            ("trailing-double-slash", "/users//", EmptySegment { at: 7 }),
            ("root-double-slash", "//", EmptySegment { at: 1 }),
            ("dot", "/users/./admin", DotSegment { at: 7 }),
            ("dot-dot", "/users/x/../admin", DotSegment { at: 9 }),
            ("trailing-dot", "/users/.", DotSegment { at: 7 }),
            ("trailing-dot-dot", "/users/..", DotSegment { at: 7 }),
            ("trailing-dot-slash", "/users/./", DotSegment { at: 7 }),
            ("root-dot", "/.", DotSegment { at: 1 }),
            (
                "encoded-dot-lower",
                "/users/%2e%2e/admin",
                EncodedUnreserved { at: 7, ch: '.' },
            ),
            (
                "encoded-dot-upper",
                "/users/%2E/admin",
                EncodedUnreserved { at: 7, ch: '.' },
            ),
            (
                "encoded-letter",
                "/users/%61dmin",
                EncodedUnreserved { at: 7, ch: 'a' },
            ),
            (
                "encoded-letter-upper",
                "/users/%41dmin",
                EncodedUnreserved { at: 7, ch: 'A' },
            ),
            (
                "encoded-letter-mid-lower",
                "/users/ad%6din",
                EncodedUnreserved { at: 9, ch: 'm' },
            ),
            (
                "encoded-letter-mid-upper",
                "/users/ad%6Din",
                EncodedUnreserved { at: 9, ch: 'm' },
            ),
            (
                "encoded-digit",
                "/v%31",
                EncodedUnreserved { at: 2, ch: '1' },
            ),
            (
                "encoded-hyphen",
                "/a%2Db",
                EncodedUnreserved { at: 2, ch: '-' },
            ),
            (
                "encoded-underscore",
                "/a%5fb",
                EncodedUnreserved { at: 2, ch: '_' },
            ),
            (
                "encoded-tilde",
                "/a%7Eb",
                EncodedUnreserved { at: 2, ch: '~' },
            ),
            (
                "encoded-slash-upper",
                "/users/admin%2F",
                EncodedSlash { at: 12 },
            ),
            (
                "encoded-slash-lower",
                "/users%2fadmin",
                EncodedSlash { at: 6 },
            ),
            ("raw-backslash", "/users\\admin", Backslash { at: 6 }),
            (
                "encoded-backslash-upper",
                "/users%5Cadmin",
                Backslash { at: 6 },
            ),
            (
                "encoded-backslash-lower",
                "/users%5cadmin",
                Backslash { at: 6 },
            ),
            ("malformed-not-hex", "/a%zzb", MalformedEncoding { at: 2 }),
            ("malformed-half-hex", "/a%4g", MalformedEncoding { at: 2 }),
            (
                "malformed-truncated-one",
                "/a%4",
                MalformedEncoding { at: 2 },
            ),
            (
                "malformed-truncated-none",
                "/a%",
                MalformedEncoding { at: 2 },
            ),
            ("malformed-sign", "/a%+1", MalformedEncoding { at: 2 }),
            (
                "double-encoded-letter",
                "/users/%2561dmin",
                DoubleEncoding { at: 7 },
            ),
            ("double-encoded-slash", "/a%252F", DoubleEncoding { at: 2 }),
            ("triple-encoded", "/a%25252F", DoubleEncoding { at: 2 }),
        ];
        for (name, path, want) in cases {
            assert_eq!(check(path), Err(*want), "{name}: {path:?}");
        }
    }

    /// Every octet, encoded in either case: refused exactly when it is
    /// unreserved, `/` or `\`, and otherwise never turned into a rule
    /// segment the handler would not see.
    #[test]
    fn every_encoded_octet() {
        for octet in 0..=255u8 {
            for path in [format!("/x%{octet:02X}y"), format!("/x%{octet:02x}y")] {
                let checked = check(&path);
                let should = is_unreserved(octet) || octet == b'/' || octet == b'\\';
                assert_eq!(checked.is_err(), should, "{path}");
                let decoded = decode_rule_chars(&path);
                if let Ok(normal) = checked {
                    // What the layer's policies match: the same decoding.
                    assert_eq!(normal.decode_rule_chars(&path), decoded, "{path}");
                }
                if is_rule_char(octet) {
                    assert_eq!(decoded, format!("/x{}y", char::from(octet)), "{path}");
                } else {
                    assert_eq!(decoded, path, "{path}");
                }
            }
        }
    }

    #[test]
    fn decoding_only_rule_chars() {
        for (path, want) in [
            ("/", "/"),
            ("/v1%3Abatch", "/v1:batch"),
            ("/a%40b%2a", "/a@b*"),
            ("/a%20b%3Ac", "/a%20b:c"),
            ("/caf%C3%A9%3a", "/caf%C3%A9:"),
            ("/%zz%3A", "/%zz:"),
            ("/%3", "/%3"),
            ("/é%3Aé", "/é:é"),
        ] {
            assert_eq!(decode_rule_chars(path), want, "{path:?}");
        }
        assert!(matches!(decode_rule_chars("/a%20b"), Cow::Borrowed(_)));
        assert!(matches!(decode_rule_chars("/a/b"), Cow::Borrowed(_)));
    }
}
