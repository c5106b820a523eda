//! SPIFFE ID parsing: never panics, and whatever parses displays back to
//! exactly the input and parses again to an equal ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_core::SpiffeId;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = SpiffeId::from_bytes(data) {
        let shown = id.to_string();
        assert_eq!(shown.as_bytes(), data);
        let again = SpiffeId::new(&shown).expect("a displayed ID parses");
        assert_eq!(again, id);
        assert!(id.is_member_of(again.trust_domain()));
    }
});
