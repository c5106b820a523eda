//! Tests for SPIFFE ID and trust domain parsing (SPIFFE-ID.md section 2,
//! DESIGN.md section 5).
//!
//! - tables of valid and invalid IDs, each case named by its defect;
//! - the length limits, at and just over each one;
//! - a sweep of all 256 byte values in trust domains and paths;
//! - property tests: round trips of generated valid IDs, and arbitrary input
//!   checked against an independent reference validator;
//! - the API around the parsers (`is_under`, `from_segments`, serde, maps).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};

use mtls_core::{SpiffeId, SpiffeIdError, TrustDomain, MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN};
use mtls_testing::id;
use proptest::prelude::*;

/// Trust domain alphabet, SPIFFE-ID.md 2.1, written out independently of
/// the library.
const TD_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-_";

/// Path segment alphabet, SPIFFE-ID.md 2.2.
const PATH_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";

fn is_td_byte(b: u8) -> bool {
    TD_ALPHABET.contains(&b)
}

fn is_path_byte(b: u8) -> bool {
    PATH_ALPHABET.contains(&b)
}

/// Reference validator for a whole SPIFFE ID, written from the spec, to
/// compare the library against on arbitrary input.
fn reference_is_valid_id(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > 2048 {
        return false;
    }
    let Some(rest) = s.strip_prefix(b"spiffe://") else {
        return false;
    };
    let (td, path) = match rest.iter().position(|&b| b == b'/') {
        Some(i) => rest.split_at(i),
        None => (rest, &[][..]),
    };
    if !reference_is_valid_td(td) {
        return false;
    }
    if path.is_empty() {
        return true;
    }
    // `path` starts with '/'; a trailing '/' yields an empty last segment.
    path[1..].split(|&b| b == b'/').all(|segment| {
        !segment.is_empty()
            && segment != b"."
            && segment != b".."
            && segment.iter().all(|&b| is_path_byte(b))
    })
}

fn reference_is_valid_td(td: &[u8]) -> bool {
    !td.is_empty() && td.len() <= 255 && td.iter().all(|&b| is_td_byte(b))
}

type ErrCheck = fn(&SpiffeIdError) -> bool;

/// `(name, input, check, pattern text)` for a case that must fail with an
/// error matching `$pat`.
macro_rules! fails {
    ($name:literal, $input:expr, $pat:pat) => {
        (
            $name,
            $input,
            (|e: &SpiffeIdError| matches!(e, $pat)) as ErrCheck,
            stringify!($pat),
        )
    };
}

fn assert_fails(
    name: &str,
    input: &[u8],
    result: Result<SpiffeId, SpiffeIdError>,
    check: ErrCheck,
    pat: &str,
) {
    match result {
        Ok(id) => panic!(
            "{name}: {:?} parsed as {id:?}, expected {pat}",
            String::from_utf8_lossy(input)
        ),
        Err(e) => assert!(
            check(&e),
            "{name}: {:?} failed with {e:?}, expected {pat}",
            String::from_utf8_lossy(input)
        ),
    }
}

// ---------------------------------------------------------------------------
// 1. Tables of valid and invalid IDs
// ---------------------------------------------------------------------------

/// `(name, input, trust domain, path)`.
const VALID_IDS: &[(&str, &str, &str, &str)] = &[
    ("root", "spiffe://td", "td", ""),
    ("root-dotted-td", "spiffe://example.org", "example.org", ""),
    ("single-char-td", "spiffe://a", "a", ""),
    ("digits-only", "spiffe://123/456", "123", "/456"),
    (
        "one-segment",
        "spiffe://example.org/web",
        "example.org",
        "/web",
    ),
    (
        "deep-path",
        "spiffe://example.org/ns/prod/sa/web/x/y/z",
        "example.org",
        "/ns/prod/sa/web/x/y/z",
    ),
    (
        "td-all-allowed-chars",
        "spiffe://abcdefghijklmnopqrstuvwxyz0123456789.-_/x",
        "abcdefghijklmnopqrstuvwxyz0123456789.-_",
        "/x",
    ),
    (
        "td-underscore-dash-dot",
        "spiffe://my_td-1.example/x",
        "my_td-1.example",
        "/x",
    ),
    (
        "path-all-allowed-chars",
        "spiffe://td/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
        "td",
        "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
    ),
    (
        "segment-mixed-case",
        "spiffe://td/Ns/PROD",
        "td",
        "/Ns/PROD",
    ),
    ("segment-three-dots", "spiffe://td/...", "td", "/..."),
    ("segment-leading-dot", "spiffe://td/.a", "td", "/.a"),
    ("segment-leading-dot-dot", "spiffe://td/..a", "td", "/..a"),
    ("segment-trailing-dot", "spiffe://td/a.", "td", "/a."),
    ("segment-trailing-dot-dot", "spiffe://td/a..", "td", "/a.."),
    ("segment-underscore", "spiffe://td/_", "td", "/_"),
    ("segment-dash", "spiffe://td/-", "td", "/-"),
    (
        "segments-dots-between",
        "spiffe://td/.../.a/b./_/-",
        "td",
        "/.../.a/b./_/-",
    ),
];

#[test]
fn valid_ids_parse() {
    for &(name, input, td, path) in VALID_IDS {
        let id = SpiffeId::new(input).unwrap_or_else(|e| panic!("{name}: {input:?}: {e:?}"));
        assert_eq!(id.trust_domain().name(), td, "{name}");
        assert_eq!(id.path(), path, "{name}");
        assert_eq!(id.to_string(), input, "{name}");
        assert_eq!(id.as_str(), input, "{name}");
        assert_eq!(id.is_trust_domain_id(), path.is_empty(), "{name}");

        // Every entry point agrees.
        assert_eq!(
            SpiffeId::from_bytes(input.as_bytes()).as_ref(),
            Ok(&id),
            "{name}"
        );
        assert_eq!(input.parse::<SpiffeId>().as_ref(), Ok(&id), "{name}");
        assert_eq!(SpiffeId::try_from(input).as_ref(), Ok(&id), "{name}");
        assert_eq!(
            SpiffeId::try_from(input.to_owned()).as_ref(),
            Ok(&id),
            "{name}"
        );
        let td = TrustDomain::new(td).unwrap();
        assert_eq!(SpiffeId::from_path(&td, path).as_ref(), Ok(&id), "{name}");
        assert_eq!(
            SpiffeId::from_segments(&td, id.segments()).as_ref(),
            Ok(&id),
            "{name}"
        );
        assert!(
            reference_is_valid_id(input.as_bytes()),
            "{name}: reference disagrees"
        );
    }
}

#[test]
fn invalid_ids_fail_with_the_right_error() {
    use SpiffeIdError::*;
    let cases: &[(&str, &str, ErrCheck, &str)] = &[
        fails!("empty", "", Empty),
        // Scheme.
        fails!("scheme-uppercase", "SPIFFE://td/x", WrongScheme),
        fails!("scheme-mixed-case", "Spiffe://td/x", WrongScheme),
        fails!("scheme-missing", "td/x", WrongScheme),
        fails!("scheme-missing-keeps-slashes", "//td/x", WrongScheme),
        fails!("scheme-single-slash", "spiffe:/td/x", WrongScheme),
        fails!("scheme-single-slash-only", "spiffe:/", WrongScheme),
        fails!("scheme-no-slashes", "spiffe:td/x", WrongScheme),
        fails!("scheme-no-colon", "spiffe//td/x", WrongScheme),
        fails!("scheme-http", "http://td/x", WrongScheme),
        fails!("scheme-https", "https://td/x", WrongScheme),
        fails!("scheme-leading-space", " spiffe://td/x", WrongScheme),
        fails!("scheme-only-name", "spiffe", WrongScheme),
        // Trust domain missing.
        fails!("td-missing", "spiffe://", MissingTrustDomain),
        fails!("td-missing-with-path", "spiffe:///path", MissingTrustDomain),
        fails!("td-missing-root-slash", "spiffe:///", MissingTrustDomain),
        // Authority extras.
        fails!("td-port", "spiffe://td:443/x", PortNotAllowed),
        fails!("td-port-no-path", "spiffe://td:8080", PortNotAllowed),
        fails!("td-port-empty", "spiffe://td:/x", PortNotAllowed),
        fails!("td-userinfo", "spiffe://user@td/x", UserInfoNotAllowed),
        fails!("td-userinfo-empty", "spiffe://@td/x", UserInfoNotAllowed),
        fails!(
            "td-userinfo-with-password",
            "spiffe://user:pw@td/x",
            PortNotAllowed | UserInfoNotAllowed
        ),
        fails!(
            "td-ipv6-literal",
            "spiffe://[::1]/x",
            BadTrustDomainChar {
                byte: b'[',
                index: 0
            }
        ),
        // Query.
        fails!("td-query", "spiffe://td?x=1", QueryNotAllowed),
        fails!("td-query-empty", "spiffe://td?", QueryNotAllowed),
        fails!("path-query", "spiffe://td/x?y=1", QueryNotAllowed),
        fails!("path-query-empty", "spiffe://td/x?", QueryNotAllowed),
        fails!("path-query-mid-path", "spiffe://td/x?y/z", QueryNotAllowed),
        // Fragment.
        fails!("td-fragment", "spiffe://td#frag", FragmentNotAllowed),
        fails!("path-fragment", "spiffe://td/x#frag", FragmentNotAllowed),
        fails!("path-fragment-empty", "spiffe://td/x#", FragmentNotAllowed),
        // Percent-encoding.
        fails!(
            "td-percent-encoded",
            "spiffe://t%64/x",
            PercentEncodingNotAllowed
        ),
        fails!(
            "path-percent-encoded",
            "spiffe://td/a%20b",
            PercentEncodingNotAllowed
        ),
        fails!(
            "path-percent-encoded-slash",
            "spiffe://td/a%2Fb",
            PercentEncodingNotAllowed
        ),
        fails!(
            "path-percent-encoded-dot-segment",
            "spiffe://td/%2e%2e/x",
            PercentEncodingNotAllowed
        ),
        // Empty segments.
        fails!("path-empty-segment", "spiffe://td/a//b", EmptySegment),
        fails!("path-leading-empty-segment", "spiffe://td//a", EmptySegment),
        fails!(
            "path-double-trailing-slash",
            "spiffe://td/a//",
            EmptySegment | TrailingSlash
        ),
        fails!(
            "path-only-double-slash",
            "spiffe://td//",
            EmptySegment | TrailingSlash
        ),
        // Dot segments.
        fails!("path-dot-only", "spiffe://td/.", DotSegment),
        fails!("path-dot-first", "spiffe://td/./a", DotSegment),
        fails!("path-dot-middle", "spiffe://td/a/./b", DotSegment),
        fails!("path-dot-last", "spiffe://td/a/.", DotSegment),
        fails!("path-dotdot-only", "spiffe://td/..", DotSegment),
        fails!("path-dotdot-first", "spiffe://td/../a", DotSegment),
        fails!("path-dotdot-middle", "spiffe://td/a/../b", DotSegment),
        fails!("path-dotdot-last", "spiffe://td/a/..", DotSegment),
        // Trailing slash.
        fails!("trailing-slash-root", "spiffe://td/", TrailingSlash),
        fails!(
            "trailing-slash-one-segment",
            "spiffe://td/a/",
            TrailingSlash
        ),
        fails!("trailing-slash-deep", "spiffe://td/a/b/c/", TrailingSlash),
        // Uppercase trust domain: rejected, never folded.
        fails!(
            "td-uppercase",
            "spiffe://TD/x",
            UppercaseTrustDomain { index: 0 }
        ),
        fails!(
            "td-uppercase-one-letter",
            "spiffe://example.Org/x",
            UppercaseTrustDomain { index: 8 }
        ),
        fails!(
            "td-uppercase-root",
            "spiffe://Example.org",
            UppercaseTrustDomain { index: 0 }
        ),
        // Non-ASCII, control and other characters.
        fails!(
            "td-non-ascii",
            "spiffe://ex\u{e4}mple.org/x",
            BadTrustDomainChar {
                byte: 0xc3,
                index: 2
            }
        ),
        fails!(
            "td-non-ascii-idn-dot",
            "spiffe://example\u{3002}org/x",
            BadTrustDomainChar {
                byte: 0xe3,
                index: 7
            }
        ),
        fails!(
            "path-non-ascii",
            "spiffe://td/p\u{101}th",
            BadPathChar {
                byte: 0xc4,
                index: 2
            }
        ),
        fails!(
            "td-nul",
            "spiffe://t\0d/x",
            BadTrustDomainChar { byte: 0, index: 1 }
        ),
        fails!(
            "path-nul",
            "spiffe://td/a\0b",
            BadPathChar { byte: 0, index: 2 }
        ),
        fails!(
            "path-trailing-nul",
            "spiffe://td/a\0",
            BadPathChar { byte: 0, index: 2 }
        ),
        fails!(
            "td-space",
            "spiffe://t d/x",
            BadTrustDomainChar {
                byte: b' ',
                index: 1
            }
        ),
        fails!(
            "path-space",
            "spiffe://td/a b",
            BadPathChar {
                byte: b' ',
                index: 2
            }
        ),
        fails!(
            "path-trailing-newline",
            "spiffe://td/a\n",
            BadPathChar {
                byte: b'\n',
                index: 2
            }
        ),
        fails!(
            "td-trailing-newline",
            "spiffe://td\n",
            BadTrustDomainChar {
                byte: b'\n',
                index: 2
            }
        ),
        fails!(
            "td-backslash",
            "spiffe://td\\x",
            BadTrustDomainChar {
                byte: b'\\',
                index: 2
            }
        ),
        fails!(
            "path-backslash",
            "spiffe://td/a\\b",
            BadPathChar {
                byte: b'\\',
                index: 2
            }
        ),
        fails!(
            "path-tilde",
            "spiffe://td/~a",
            BadPathChar {
                byte: b'~',
                index: 1
            }
        ),
        fails!(
            "path-colon",
            "spiffe://td/a:b",
            BadPathChar {
                byte: b':',
                index: 2
            }
        ),
        fails!(
            "path-at",
            "spiffe://td/a@b",
            BadPathChar {
                byte: b'@',
                index: 2
            }
        ),
        fails!(
            "path-plus",
            "spiffe://td/a+b",
            BadPathChar {
                byte: b'+',
                index: 2
            }
        ),
    ];
    for &(name, input, check, pat) in cases {
        assert!(
            !reference_is_valid_id(input.as_bytes()),
            "{name}: reference disagrees"
        );
        assert_fails(name, input.as_bytes(), SpiffeId::new(input), check, pat);
        assert_fails(
            name,
            input.as_bytes(),
            SpiffeId::from_bytes(input.as_bytes()),
            check,
            pat,
        );
        assert!(input.parse::<SpiffeId>().is_err(), "{name}");
    }
}

#[test]
fn trust_domain_names() {
    for (name, input) in [
        ("dotted", "example.org"),
        ("single-char", "a"),
        (
            "all-allowed-chars",
            "abcdefghijklmnopqrstuvwxyz0123456789.-_",
        ),
        ("underscore-dash", "my_td-1.example"),
    ] {
        let td = TrustDomain::new(input).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(td.name(), input, "{name}");
        assert_eq!(td.to_string(), input, "{name}");
        assert_eq!(td.id().to_string(), format!("spiffe://{input}"), "{name}");
        assert!(td.id().is_trust_domain_id(), "{name}");
        assert_eq!(input.parse::<TrustDomain>().as_ref(), Ok(&td), "{name}");
        assert_eq!(TrustDomain::try_from(input).as_ref(), Ok(&td), "{name}");
        assert_eq!(
            TrustDomain::try_from(input.to_owned()).as_ref(),
            Ok(&td),
            "{name}"
        );
    }

    use SpiffeIdError::*;
    let cases: &[(&str, &str, ErrCheck, &str)] = &[
        fails!("empty", "", MissingTrustDomain),
        fails!(
            "uppercase",
            "Example.org",
            UppercaseTrustDomain { index: 0 }
        ),
        fails!("port", "example.org:443", PortNotAllowed),
        fails!("userinfo", "user@example.org", UserInfoNotAllowed),
        fails!("query", "example.org?x", QueryNotAllowed),
        fails!("fragment", "example.org#x", FragmentNotAllowed),
        fails!(
            "percent-encoded",
            "ex%41mple.org",
            PercentEncodingNotAllowed
        ),
        fails!(
            "path",
            "example.org/path",
            BadTrustDomainChar {
                byte: b'/',
                index: 11
            }
        ),
        fails!(
            "spiffe-id-form",
            "spiffe://example.org",
            TrustDomainIsAnId(_)
        ),
        fails!(
            "spiffe-id-form-upper",
            "SPIFFE://example.org/x",
            TrustDomainIsAnId(_)
        ),
        fails!(
            "space",
            "exa mple",
            BadTrustDomainChar {
                byte: b' ',
                index: 3
            }
        ),
        fails!(
            "non-ascii",
            "\u{e9}t\u{e9}",
            BadTrustDomainChar {
                byte: 0xc3,
                index: 0
            }
        ),
    ];
    for &(name, input, check, pat) in cases {
        match TrustDomain::new(input) {
            Ok(td) => panic!("{name}: {input:?} parsed as {td:?}, expected {pat}"),
            Err(e) => assert!(
                check(&e),
                "{name}: {input:?} failed with {e:?}, expected {pat}"
            ),
        }
        assert!(
            !reference_is_valid_td(input.as_bytes()),
            "{name}: reference disagrees"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Length limits
// ---------------------------------------------------------------------------

/// `spiffe://td/aaa...` of exactly `len` bytes.
fn id_of_len(len: usize) -> String {
    let prefix = "spiffe://td/";
    format!("{prefix}{}", "a".repeat(len - prefix.len()))
}

#[test]
fn id_of_2048_bytes_parses() {
    assert_eq!(MAX_SPIFFE_ID_LEN, 2048);
    let input = id_of_len(2048);
    assert_eq!(input.len(), 2048);
    let id = SpiffeId::new(&input).unwrap();
    assert_eq!(id.as_str(), input);
}

#[test]
fn id_of_2049_bytes_is_too_long() {
    let input = id_of_len(2049);
    let err = SpiffeId::new(&input).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TooLong { len: 2049 }),
        "{err:?}"
    );
    let err = SpiffeId::from_bytes(input.as_bytes()).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TooLong { len: 2049 }),
        "{err:?}"
    );
}

#[test]
fn id_of_many_segments_at_the_limit() {
    // "spiffe://td" (11 bytes), "/a" 1018 times (2047), then one more "b".
    let td = TrustDomain::new("td").unwrap();
    let base = "spiffe://td".len();
    let segments = vec!["a"; (MAX_SPIFFE_ID_LEN - base) / 2];
    let mut input = format!("spiffe://td{}", "/a".repeat(segments.len()));
    assert_eq!(input.len(), 2047);
    input.push('b');
    assert_eq!(input.len(), 2048);
    let id = SpiffeId::new(&input).unwrap();
    assert_eq!(id.segments().count(), segments.len());

    // One more segment pushes it over, whichever way it is built.
    let over = format!("{input}/c");
    assert!(matches!(
        SpiffeId::new(&over),
        Err(SpiffeIdError::TooLong { len: 2050 })
    ));
    let mut over_segments: Vec<String> = id.segments().map(str::to_owned).collect();
    over_segments.push("c".to_owned());
    assert!(matches!(
        SpiffeId::from_segments(&td, &over_segments),
        Err(SpiffeIdError::TooLong { len: 2050 })
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, &over["spiffe://td".len()..]),
        Err(SpiffeIdError::TooLong { len: 2050 })
    ));
}

#[test]
fn huge_input_is_too_long() {
    let input = id_of_len(1 << 20);
    assert!(matches!(
        SpiffeId::new(&input),
        Err(SpiffeIdError::TooLong { len }) if len == 1 << 20
    ));
}

#[test]
fn trust_domain_of_255_bytes_parses() {
    assert_eq!(MAX_TRUST_DOMAIN_LEN, 255);
    let name = "a".repeat(255);
    let td = TrustDomain::new(&name).unwrap();
    assert_eq!(td.name(), name);

    let id = SpiffeId::new(&format!("spiffe://{name}/x")).unwrap();
    assert_eq!(id.trust_domain(), &td);
    let root = SpiffeId::new(&format!("spiffe://{name}")).unwrap();
    assert_eq!(root, td.id());

    // A 255-byte trust domain and a path filling the ID to exactly 2048.
    let prefix = format!("spiffe://{name}/");
    let full = format!("{prefix}{}", "b".repeat(2048 - prefix.len()));
    assert_eq!(full.len(), 2048);
    assert!(SpiffeId::new(&full).is_ok());
}

#[test]
fn trust_domain_of_256_bytes_is_too_long() {
    let name = "a".repeat(256);
    let err = TrustDomain::new(&name).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TrustDomainTooLong { len: 256 }),
        "{err:?}"
    );
    let err = SpiffeId::new(&format!("spiffe://{name}/x")).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TrustDomainTooLong { len: 256 }),
        "{err:?}"
    );
    let err = SpiffeId::new(&format!("spiffe://{name}")).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TrustDomainTooLong { len: 256 }),
        "{err:?}"
    );
    let err = TrustDomain::from_id_or_name(&format!("spiffe://{name}")).unwrap_err();
    assert!(
        matches!(err, SpiffeIdError::TrustDomainTooLong { len: 256 }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. Sweep of all 256 byte values
// ---------------------------------------------------------------------------

/// The error a byte outside the trust domain alphabet must give, at `index`
/// within the trust domain.
fn td_byte_error_matches(b: u8, index: usize, e: &SpiffeIdError) -> bool {
    use SpiffeIdError::*;
    match b {
        b':' => matches!(e, PortNotAllowed),
        b'@' => matches!(e, UserInfoNotAllowed),
        b'?' => matches!(e, QueryNotAllowed),
        b'#' => matches!(e, FragmentNotAllowed),
        b'%' => matches!(e, PercentEncodingNotAllowed),
        b'A'..=b'Z' => matches!(e, UppercaseTrustDomain { index: i } if *i == index),
        _ => matches!(e, BadTrustDomainChar { byte, index: i } if *byte == b && *i == index),
    }
}

/// The error a byte outside the path alphabet must give, at `index` within
/// the path.
fn path_byte_error_matches(b: u8, index: usize, e: &SpiffeIdError) -> bool {
    use SpiffeIdError::*;
    match b {
        b'?' => matches!(e, QueryNotAllowed),
        b'#' => matches!(e, FragmentNotAllowed),
        b'%' => matches!(e, PercentEncodingNotAllowed),
        _ => matches!(e, BadPathChar { byte, index: i } if *byte == b && *i == index),
    }
}

/// `SpiffeId::from_bytes` of `prefix`, the byte `b`, then `suffix`, which
/// must agree with the reference grammar on whether that is an ID.
fn parse_with_byte(prefix: &[u8], b: u8, suffix: &[u8]) -> Result<SpiffeId, SpiffeIdError> {
    let input = [prefix, &[b], suffix].concat();
    let result = SpiffeId::from_bytes(&input);
    assert_eq!(
        result.is_ok(),
        reference_is_valid_id(&input),
        "byte 0x{b:02x}"
    );
    result
}

/// Every byte between `prefix` and `suffix` in an ID: `/` splits the text
/// (`separator` checks the ID); a byte `allowed` admits is accepted
/// (`accepted` checks the ID) and these bytes are exactly `alphabet`; any
/// other byte is refused with an error `refused` recognises.
fn sweep_byte_between(
    (prefix, suffix): (&[u8], &[u8]),
    (allowed, alphabet): (fn(u8) -> bool, &[u8]),
    separator: impl Fn(SpiffeId),
    accepted: impl Fn(u8, SpiffeId),
    refused: impl Fn(u8, &SpiffeIdError) -> bool,
) {
    let mut admitted = Vec::new();
    for b in 0..=255u8 {
        let result = parse_with_byte(prefix, b, suffix);
        if b == b'/' {
            separator(result.unwrap());
        } else if allowed(b) {
            accepted(
                b,
                result.unwrap_or_else(|e| panic!("byte 0x{b:02x}: {e:?}")),
            );
            admitted.push(b);
        } else {
            let e = result.unwrap_err();
            assert!(refused(b, &e), "byte 0x{b:02x}: {e:?}");
        }
    }
    assert_eq!(admitted, sorted(alphabet));
}

#[test]
fn sweep_every_byte_in_trust_domain_of_id() {
    sweep_byte_between(
        (b"spiffe://a", b"b/x"),
        (is_td_byte, TD_ALPHABET),
        // A separator: `spiffe://a/b/x`.
        |id| {
            assert_eq!(id.trust_domain().name(), "a");
            assert_eq!(id.path(), "/b/x");
        },
        |b, id| {
            assert_eq!(id.trust_domain().name().as_bytes(), [b'a', b, b'b']);
            assert_eq!(id.path(), "/x");
        },
        |b, e| td_byte_error_matches(b, 1, e),
    );
}

#[test]
fn sweep_every_byte_as_whole_trust_domain_of_id() {
    for b in 0..=255u8 {
        let result = parse_with_byte(b"spiffe://", b, b"");
        match result {
            Ok(id) => {
                assert!(is_td_byte(b), "byte 0x{b:02x} accepted");
                assert_eq!(id.trust_domain().name().as_bytes(), [b]);
                assert!(id.is_trust_domain_id());
            }
            Err(SpiffeIdError::MissingTrustDomain) => assert_eq!(b, b'/'),
            Err(e) => assert!(td_byte_error_matches(b, 0, &e), "byte 0x{b:02x}: {e:?}"),
        }
    }
}

#[test]
fn sweep_every_char_in_trust_domain_new() {
    for b in 0..=255u8 {
        let c = char::from(b);
        let name = format!("a{c}b");
        let result = TrustDomain::new(&name);
        assert_eq!(
            result.is_ok(),
            reference_is_valid_td(name.as_bytes()),
            "byte 0x{b:02x}"
        );
        if is_td_byte(b) {
            assert_eq!(result.unwrap().name(), name);
        } else if b < 0x80 {
            let e = result.unwrap_err();
            assert!(td_byte_error_matches(b, 1, &e), "byte 0x{b:02x}: {e:?}");
        } else {
            // U+0080..=U+00FF are two bytes in UTF-8, the first 0xc2 or 0xc3.
            let e = result.unwrap_err();
            let lead = name.as_bytes()[1];
            assert!(
                matches!(e, SpiffeIdError::BadTrustDomainChar { byte, index: 1 } if byte == lead),
                "char U+{b:04X}: {e:?}"
            );
        }

        // The same character through the string ID parser and
        // `from_id_or_name`.
        let id = format!("spiffe://{name}/x");
        assert_eq!(
            SpiffeId::new(&id).is_ok(),
            is_td_byte(b) || b == b'/',
            "byte 0x{b:02x}"
        );
        let as_id = TrustDomain::from_id_or_name(&format!("spiffe://{name}"));
        if is_td_byte(b) {
            assert_eq!(as_id.unwrap().name(), name);
        } else if b == b'/' {
            assert!(
                matches!(as_id, Err(SpiffeIdError::TrustDomainWithPath)),
                "{as_id:?}"
            );
        } else {
            assert!(as_id.is_err(), "byte 0x{b:02x}");
        }
    }
}

#[test]
fn sweep_every_byte_in_path_of_id() {
    sweep_byte_between(
        (b"spiffe://td/a", b"b"),
        (is_path_byte, PATH_ALPHABET),
        // A separator: `spiffe://td/a/b`.
        |id| {
            assert_eq!(id.path(), "/a/b");
            assert_eq!(id.segments().collect::<Vec<_>>(), ["a", "b"]);
        },
        |b, id| {
            assert_eq!(id.trust_domain().name(), "td");
            assert_eq!(id.path().as_bytes(), [b'/', b'a', b, b'b']);
        },
        |b, e| path_byte_error_matches(b, 2, e),
    );
}

#[test]
fn sweep_every_byte_as_whole_path_segment() {
    for b in 0..=255u8 {
        let result = parse_with_byte(b"spiffe://td/", b, b"");
        match (b, result) {
            (b'.', r) => assert!(matches!(r, Err(SpiffeIdError::DotSegment)), "{r:?}"),
            (b'/', r) => assert!(
                matches!(
                    r,
                    Err(SpiffeIdError::EmptySegment | SpiffeIdError::TrailingSlash)
                ),
                "{r:?}"
            ),
            (_, Ok(id)) => {
                assert!(is_path_byte(b), "byte 0x{b:02x} accepted");
                assert_eq!(id.path().as_bytes(), [b'/', b]);
            }
            (_, Err(e)) => assert!(path_byte_error_matches(b, 1, &e), "byte 0x{b:02x}: {e:?}"),
        }
    }
}

#[test]
fn sweep_every_char_in_path_builders() {
    let td = TrustDomain::new("td").unwrap();
    for b in 0..=255u8 {
        let c = char::from(b);
        let segment = format!("a{c}b");
        let path = format!("/{segment}");

        // `SpiffeId::new` on the string form.
        let id = format!("spiffe://td{path}");
        let parsed = SpiffeId::new(&id);
        assert_eq!(
            parsed.is_ok(),
            is_path_byte(b) || b == b'/',
            "byte 0x{b:02x}"
        );
        if b >= 0x80 {
            let lead = id.as_bytes()["spiffe://td/a".len()];
            assert!(
                matches!(parsed, Err(SpiffeIdError::BadPathChar { byte, index: 2 }) if byte == lead),
                "char U+{b:04X}: {parsed:?}"
            );
        }

        // `from_path`: '/' is a separator there too.
        let from_path = SpiffeId::from_path(&td, &path);
        assert_eq!(
            from_path.is_ok(),
            is_path_byte(b) || b == b'/',
            "byte 0x{b:02x}"
        );
        if let Ok(built) = &from_path {
            assert_eq!(built.as_str(), id);
        }

        // `from_segments`: a segment may not contain '/'.
        let from_segments = SpiffeId::from_segments(&td, [&segment]);
        assert_eq!(from_segments.is_ok(), is_path_byte(b), "byte 0x{b:02x}");
        match from_segments {
            Ok(built) => assert_eq!(built.as_str(), id),
            Err(SpiffeIdError::BadPathChar { byte: b'/', .. }) => assert_eq!(b, b'/'),
            Err(e) if b < 0x80 => {
                assert!(path_byte_error_matches(b, 2, &e), "byte 0x{b:02x}: {e:?}")
            }
            Err(e) => assert!(matches!(e, SpiffeIdError::BadPathChar { .. }), "{e:?}"),
        }
    }
}

fn sorted(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// 4. Property tests
// ---------------------------------------------------------------------------

fn trust_domain_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{1,32}",
        // Now and then, near or at the 255-byte limit.
        "[a-z0-9._-]{240,255}",
    ]
}

fn path_segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,40}".prop_filter("dot segments are invalid", |s| s != "." && s != "..")
}

/// Inputs that are near SPIFFE IDs, with the characters that matter to the
/// parser, so that both outcomes are common.
fn near_spiffe_id() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            8 => Just("spiffe://"),
            1 => Just("spiffe:/"),
            1 => Just("SPIFFE://"),
            1 => Just("spiffe:"),
            1 => Just(""),
        ],
        prop_oneof![
            6 => "[a-z0-9._-]{1,8}",
            1 => "[a-zA-Z0-9._:@?#%/ -]{0,12}",
        ],
        prop::collection::vec(
            prop_oneof![
                8 => "[a-zA-Z0-9._-]{1,5}",
                1 => Just(String::new()),
                1 => "[.]{1,3}",
                1 => "[a-zA-Z0-9._?#%/ \u{e9}\\x00-]{0,5}",
            ],
            0..5,
        ),
    )
        .prop_map(|(scheme, td, segments)| {
            let mut s = format!("{scheme}{td}");
            for segment in segments {
                s.push('/');
                s.push_str(&segment);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_ids_round_trip(
        td in trust_domain_name(),
        segments in prop::collection::vec(path_segment(), 0..12),
    ) {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        let input = format!("spiffe://{td}{path}");
        prop_assert!(input.len() <= MAX_SPIFFE_ID_LEN);

        let id = SpiffeId::new(&input).map_err(|e| TestCaseError::fail(format!("{input:?}: {e:?}")))?;
        let shown = id.to_string();
        prop_assert_eq!(&shown, &input);
        prop_assert_eq!(SpiffeId::new(&shown), Ok(id.clone()));
        prop_assert_eq!(SpiffeId::from_bytes(input.as_bytes()), Ok(id.clone()));
        prop_assert_eq!(id.trust_domain().name(), td.as_str());
        prop_assert_eq!(id.path(), path.as_str());
        prop_assert_eq!(id.segments().collect::<Vec<_>>(), segments.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(id.is_trust_domain_id(), segments.is_empty());

        let trust_domain = TrustDomain::new(&td).unwrap();
        prop_assert_eq!(id.trust_domain(), &trust_domain);
        prop_assert!(id.is_member_of(&trust_domain));
        prop_assert!(id.is_under(&trust_domain.id()));
        prop_assert!(id.is_under(&id));
        prop_assert_eq!(SpiffeId::from_segments(&trust_domain, &segments), Ok(id.clone()));
        prop_assert_eq!(SpiffeId::from_path(&trust_domain, &path), Ok(id.clone()));
        prop_assert_eq!(TrustDomain::from_id_or_name(&td), Ok(trust_domain.clone()));
        let root = format!("spiffe://{td}");
        prop_assert_eq!(TrustDomain::from_id_or_name(&root), Ok(trust_domain.clone()));
        prop_assert_eq!(trust_domain.id().to_string(), root);

        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), id.clone());

        // Every prefix of the segments is an ancestor.
        for n in 0..=segments.len() {
            let ancestor = SpiffeId::from_segments(&trust_domain, &segments[..n]).unwrap();
            prop_assert!(id.is_under(&ancestor), "{} under {}", id, ancestor);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_and_round_trip(s in any::<String>()) {
        check_arbitrary(&s)?;
    }

    #[test]
    fn printable_strings_never_panic_and_round_trip(s in "\\PC*") {
        check_arbitrary(&s)?;
        check_arbitrary(&format!("spiffe://{s}"))?;
        check_arbitrary(&format!("spiffe://td/{s}"))?;
    }

    #[test]
    fn near_ids_agree_with_reference(s in near_spiffe_id()) {
        check_arbitrary(&s)?;
    }

    #[test]
    fn arbitrary_bytes_agree_with_reference(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"spiffe://"[..]), Just(&b"spiffe://td/"[..])],
    ) {
        let input = [prefix, &bytes[..]].concat();
        let result = SpiffeId::from_bytes(&input);
        prop_assert_eq!(result.is_ok(), reference_is_valid_id(&input), "{:?}", input);
        if let Ok(id) = result {
            prop_assert_eq!(id.as_str().as_bytes(), &input[..]);
        }
    }
}

/// For any input: no panic, acceptance exactly as the reference validator,
/// and whatever parses displays as the identical input.
fn check_arbitrary(s: &str) -> Result<(), TestCaseError> {
    let result = SpiffeId::new(s);
    prop_assert_eq!(
        result.is_ok(),
        reference_is_valid_id(s.as_bytes()),
        "{:?}: {:?}",
        s,
        result
    );
    prop_assert_eq!(SpiffeId::from_bytes(s.as_bytes()), result.clone());
    if let Ok(id) = result {
        let shown = id.to_string();
        prop_assert_eq!(shown.as_str(), s);
        prop_assert_eq!(SpiffeId::new(&shown), Ok(id.clone()));
        let rebuilt = SpiffeId::from_segments(id.trust_domain(), id.segments());
        prop_assert_eq!(rebuilt, Ok(id.clone()));
    }
    let td = TrustDomain::new(s);
    prop_assert_eq!(
        td.is_ok(),
        reference_is_valid_td(s.as_bytes()),
        "{:?}: {:?}",
        s,
        td
    );
    if let Ok(td) = td {
        prop_assert_eq!(td.name(), s);
    }
    let _ = TrustDomain::from_id_or_name(s);
    let _ = serde_json::from_value::<SpiffeId>(serde_json::Value::String(s.to_owned()));
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. API behaviour
// ---------------------------------------------------------------------------

#[test]
fn trust_domain_from_id_or_name() {
    let expected = TrustDomain::from_static("example.org");
    assert_eq!(
        TrustDomain::from_id_or_name("spiffe://example.org"),
        Ok(expected.clone())
    );
    assert_eq!(TrustDomain::from_id_or_name("example.org"), Ok(expected));

    use SpiffeIdError::*;
    let cases: &[(&str, &str, ErrCheck, &str)] = &[
        fails!(
            "id-with-path",
            "spiffe://example.org/path",
            TrustDomainWithPath
        ),
        fails!(
            "id-with-deep-path",
            "spiffe://example.org/a/b",
            TrustDomainWithPath
        ),
        fails!(
            "id-trailing-slash",
            "spiffe://example.org/",
            TrailingSlash | TrustDomainWithPath
        ),
        fails!(
            "id-uppercase",
            "spiffe://Example.org",
            UppercaseTrustDomain { index: 0 }
        ),
        fails!(
            "name-uppercase",
            "Example.org",
            UppercaseTrustDomain { index: 0 }
        ),
        fails!("id-wrong-scheme", "https://example.org", WrongScheme),
        fails!("id-uppercase-scheme", "SPIFFE://example.org", WrongScheme),
        fails!("id-empty-td", "spiffe://", MissingTrustDomain),
        fails!("name-empty", "", MissingTrustDomain | Empty),
        fails!("name-port", "example.org:443", PortNotAllowed),
        fails!("id-port", "spiffe://example.org:443", PortNotAllowed),
        fails!(
            "name-with-path",
            "example.org/path",
            BadTrustDomainChar { byte: b'/', .. }
        ),
    ];
    for &(name, input, check, pat) in cases {
        match TrustDomain::from_id_or_name(input) {
            Ok(td) => panic!("{name}: {input:?} parsed as {td:?}, expected {pat}"),
            Err(e) => assert!(
                check(&e),
                "{name}: {input:?} failed with {e:?}, expected {pat}"
            ),
        }
    }
}

#[test]
fn is_under_is_on_segment_boundaries() {
    // (name, id, prefix, expected)
    let cases = [
        ("same-id", "spiffe://td/ns/a", "spiffe://td/ns/a", true),
        ("parent", "spiffe://td/ns/a", "spiffe://td/ns", true),
        ("trust-domain-root", "spiffe://td/ns/a", "spiffe://td", true),
        ("root-under-itself", "spiffe://td", "spiffe://td", true),
        (
            "segment-prefix-is-not-parent",
            "spiffe://td/ns/a",
            "spiffe://td/ns/ab",
            false,
        ),
        (
            "longer-segment-is-not-child",
            "spiffe://td/ns/ab",
            "spiffe://td/ns/a",
            false,
        ),
        (
            "child-is-not-over-parent",
            "spiffe://td/ns",
            "spiffe://td/ns/a",
            false,
        ),
        (
            "root-not-under-child",
            "spiffe://td",
            "spiffe://td/ns",
            false,
        ),
        (
            "other-trust-domain",
            "spiffe://other/ns/a",
            "spiffe://td/ns",
            false,
        ),
        (
            "other-trust-domain-root",
            "spiffe://other/ns/a",
            "spiffe://td",
            false,
        ),
        ("td-suffix-dot", "spiffe://td.evil/x", "spiffe://td", false),
        ("td-suffix-letters", "spiffe://tdx/x", "spiffe://td", false),
        (
            "td-suffix-dash-root",
            "spiffe://td-evil",
            "spiffe://td",
            false,
        ),
        (
            "td-prefix-of-prefix",
            "spiffe://td/x",
            "spiffe://td.evil",
            false,
        ),
        ("case-differs", "spiffe://td/NS/a", "spiffe://td/ns", false),
        (
            "dots-in-segment",
            "spiffe://td/ns.a/b",
            "spiffe://td/ns",
            false,
        ),
    ];
    for (name, child, prefix, expected) in cases {
        assert_eq!(
            id(child).is_under(&id(prefix)),
            expected,
            "{name}: {child} under {prefix}"
        );
    }
}

#[test]
fn is_member_of() {
    let td = TrustDomain::from_static("td");
    assert!(id("spiffe://td").is_member_of(&td));
    assert!(id("spiffe://td/a/b").is_member_of(&td));
    assert!(!id("spiffe://td.evil/a").is_member_of(&td));
    assert!(!id("spiffe://other/td").is_member_of(&td));
    assert!(!id("spiffe://t/d").is_member_of(&td));
}

#[test]
fn segments_and_trust_domain_id() {
    let root = id("spiffe://td");
    assert_eq!(root.segments().count(), 0);
    assert_eq!(root.path(), "");
    assert!(root.is_trust_domain_id());
    assert_eq!(root, TrustDomain::from_static("td").id());

    let deep = id("spiffe://td/ns/prod/sa/web");
    assert_eq!(
        deep.segments().collect::<Vec<_>>(),
        ["ns", "prod", "sa", "web"]
    );
    assert!(!deep.is_trust_domain_id());

    let dots = id("spiffe://td/.../.a/a.");
    assert_eq!(dots.segments().collect::<Vec<_>>(), ["...", ".a", "a."]);
}

#[test]
fn from_segments_validates_each_segment() {
    let td = TrustDomain::from_static("td");
    assert_eq!(
        SpiffeId::from_segments(&td, ["ns", "prod"]),
        Ok(id("spiffe://td/ns/prod"))
    );
    assert_eq!(
        SpiffeId::from_segments(&td, Vec::<String>::new()),
        Ok(id("spiffe://td"))
    );
    assert_eq!(
        SpiffeId::from_segments(&td, ["...", ".a"]),
        Ok(id("spiffe://td/.../.a"))
    );

    use SpiffeIdError::*;
    let cases: &[(&str, &[&str], ErrCheck, &str)] = &[
        fails!("slash", &["a/b"], BadPathChar { byte: b'/', .. }),
        fails!("leading-slash", &["/a"], BadPathChar { byte: b'/', .. }),
        fails!("only-slash", &["ns", "/"], BadPathChar { byte: b'/', .. }),
        fails!("dotdot", &[".."], DotSegment),
        fails!("dotdot-after", &["ns", ".."], DotSegment),
        fails!("dot", &["."], DotSegment),
        fails!(
            "slash-dotdot",
            &["a/.."],
            BadPathChar { byte: b'/', .. } | DotSegment
        ),
        fails!("empty-only", &[""], EmptySegment | TrailingSlash),
        fails!("empty-first", &["", "a"], EmptySegment),
        fails!("empty-last", &["a", ""], EmptySegment | TrailingSlash),
        fails!("query", &["a?b"], QueryNotAllowed),
        fails!("fragment", &["a#b"], FragmentNotAllowed),
        fails!("percent", &["a%2fb"], PercentEncodingNotAllowed),
        fails!("space", &["a b"], BadPathChar { byte: b' ', .. }),
        fails!("non-ascii", &["\u{e9}"], BadPathChar { .. }),
    ];
    for &(name, segments, check, pat) in cases {
        match SpiffeId::from_segments(&td, segments) {
            Ok(id) => panic!("{name}: {segments:?} built {id:?}, expected {pat}"),
            Err(e) => assert!(
                check(&e),
                "{name}: {segments:?} failed with {e:?}, expected {pat}"
            ),
        }
    }
}

#[test]
fn from_path_validates_the_path() {
    let td = TrustDomain::from_static("td");
    assert_eq!(SpiffeId::from_path(&td, ""), Ok(id("spiffe://td")));
    assert_eq!(SpiffeId::from_path(&td, "/a/b"), Ok(id("spiffe://td/a/b")));
    assert!(
        SpiffeId::from_path(&td, "a").is_err(),
        "path without leading '/'"
    );
    assert!(matches!(
        SpiffeId::from_path(&td, "/"),
        Err(SpiffeIdError::TrailingSlash)
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, "/a/"),
        Err(SpiffeIdError::TrailingSlash)
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, "//a"),
        Err(SpiffeIdError::EmptySegment)
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, "/a/../b"),
        Err(SpiffeIdError::DotSegment)
    ));
    assert!(matches!(
        SpiffeId::from_path(&td, "/a?x"),
        Err(SpiffeIdError::QueryNotAllowed)
    ));
}

#[test]
fn serde_json_round_trip() {
    let spiffe_id = id("spiffe://example.org/ns/prod/sa/web");
    let json = serde_json::to_string(&spiffe_id).unwrap();
    assert_eq!(json, r#""spiffe://example.org/ns/prod/sa/web""#);
    assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), spiffe_id);

    let td = TrustDomain::from_static("example.org");
    let json = serde_json::to_string(&td).unwrap();
    assert_eq!(json, r#""example.org""#);
    assert_eq!(serde_json::from_str::<TrustDomain>(&json).unwrap(), td);

    // JSON escapes are decoded before validation.
    assert_eq!(
        serde_json::from_str::<SpiffeId>(r#""spiffe://example.org\/ns\u002fprod""#).unwrap(),
        id("spiffe://example.org/ns/prod")
    );

    // As map keys and inside collections.
    let mut map = HashMap::new();
    map.insert(td.clone(), vec![spiffe_id.clone()]);
    let json = serde_json::to_string(&map).unwrap();
    let back: HashMap<TrustDomain, Vec<SpiffeId>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, map);
}

#[test]
fn serde_json_rejects_invalid() {
    for (name, json) in [
        ("uppercase-td", r#""spiffe://Example.org/x""#),
        ("trailing-slash", r#""spiffe://example.org/x/""#),
        ("dot-segment", r#""spiffe://example.org/a/../b""#),
        ("wrong-scheme", r#""https://example.org/x""#),
        ("empty", r#""""#),
        ("escaped-nul", r#""spiffe://example.org/a\u0000""#),
        ("escaped-percent", r#""spiffe://example.org/a\u0025""#),
        ("not-a-string", "42"),
        ("null", "null"),
    ] {
        assert!(serde_json::from_str::<SpiffeId>(json).is_err(), "{name}");
    }
    let err = serde_json::from_str::<SpiffeId>(r#""spiffe://Example.org/x""#).unwrap_err();
    assert!(err.to_string().contains("uppercase"), "{err}");

    for (name, json) in [
        ("uppercase", r#""Example.org""#),
        ("spiffe-id-form", r#""spiffe://example.org""#),
        ("port", r#""example.org:443""#),
        ("empty", r#""""#),
        ("not-a-string", "[]"),
    ] {
        assert!(serde_json::from_str::<TrustDomain>(json).is_err(), "{name}");
    }
    assert!(serde_json::from_str::<HashMap<TrustDomain, u8>>(r#"{"Bad":1}"#).is_err());
}

#[test]
fn trust_domain_map_lookup_by_str() {
    let mut map = HashMap::new();
    map.insert(TrustDomain::from_static("example.org"), 1);
    map.insert(TrustDomain::from_static("other.org"), 2);
    assert_eq!(map.get("example.org"), Some(&1));
    assert_eq!(map.get("other.org"), Some(&2));
    assert_eq!(map.get("Example.org"), None);
    assert_eq!(map.get("example.org."), None);
    let id = id("spiffe://other.org/web");
    assert_eq!(map.get(id.trust_domain().name()), Some(&2));
    assert_eq!(map.get(id.trust_domain()), Some(&2));

    let mut tree = BTreeMap::new();
    tree.insert(TrustDomain::from_static("b.org"), 'b');
    tree.insert(TrustDomain::from_static("a.org"), 'a');
    assert_eq!(tree.get("a.org"), Some(&'a'));
    assert_eq!(tree.get("b.org"), Some(&'b'));
    assert_eq!(
        tree.keys().map(TrustDomain::name).collect::<Vec<_>>(),
        ["a.org", "b.org"]
    );
}

#[test]
fn equal_ids_hash_equal() {
    let built = SpiffeId::from_segments(&TrustDomain::from_static("td"), ["a", "b"]).unwrap();
    let set: HashSet<SpiffeId> = [
        id("spiffe://td/a/b"),
        built,
        "spiffe://td/a/b".parse().unwrap(),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 1);
    assert_ne!(id("spiffe://td/a"), id("spiffe://td/A"));
}

#[test]
fn from_static_accepts_valid_input() {
    assert_eq!(SpiffeId::from_static("spiffe://td/a").path(), "/a");
    assert_eq!(TrustDomain::from_static("td").name(), "td");
}

#[test]
#[should_panic(expected = "invalid SPIFFE ID")]
fn spiffe_id_from_static_panics_on_uppercase_td() {
    let _ = SpiffeId::from_static("spiffe://Example.org/web");
}

#[test]
#[should_panic(expected = "invalid SPIFFE ID")]
fn spiffe_id_from_static_panics_on_trailing_slash() {
    let _ = SpiffeId::from_static("spiffe://td/web/");
}

#[test]
#[should_panic(expected = "invalid trust domain")]
fn trust_domain_from_static_panics_on_uppercase() {
    let _ = TrustDomain::from_static("Example.org");
}

#[test]
#[should_panic(expected = "invalid trust domain")]
fn trust_domain_from_static_panics_on_spiffe_id_form() {
    let _ = TrustDomain::from_static("spiffe://example.org");
}
