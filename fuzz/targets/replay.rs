//! The stable replay of the fuzz targets, shared by the test of each crate
//! whose code they exercise (`mtls-core/tests/fuzz_replay.rs` for the
//! parsers and verification in `mod.rs`, `mtls-ca/tests/fuzz_replay.rs` for
//! CSR signing in `ca.rs`): every committed seed
//! (`fuzz/corpus/<target>/seed-*`) and regression input
//! (`fuzz/regressions/<target>/*`) goes through the targets' own bodies, so
//! a bug the fuzzer found stays fixed where nightly and cargo-fuzz are
//! absent; a few deterministic mutations of each seed run too.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A target: its name and its body.
pub type Body = (&'static str, fn(&[u8]));

/// The two replay tests of a crate's targets (a `&[Body]`), with the
/// regression inputs still awaiting their fix: every committed seed and
/// regression input replays, and mutations of every seed never fail.
macro_rules! replay_tests {
    ($targets:expr, awaiting_fix: $awaiting_fix:expr) => {
        #[test]
        fn every_seed_and_regression_input_replays() {
            replay::replay_inputs($targets, $awaiting_fix);
        }

        #[test]
        fn mutated_seeds_never_fail() {
            replay::replay_mutations($targets);
        }
    };
}

/// `fuzz/`, seen from a crate one level below the repository root.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Files of `dir` whose names start with `prefix`, sorted.
pub fn files(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            name.starts_with(prefix)
                .then(|| (name, std::fs::read(&p).unwrap()))
        })
        .collect();
    out.sort();
    out
}

pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    files(&fuzz_dir().join("corpus").join(target), "seed-")
}

pub fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    files(&fuzz_dir().join("regressions").join(target), "")
}

/// Runs `body` on `input`, turning a panic into its message.
fn run(body: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| body(input))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Every seed and regression input of `targets` through its body.
/// `awaiting_fix` lists regression inputs (`target/name`) of bugs whose
/// library fix is not in yet, with the bug: each must still fail, and the
/// day it passes its entry must go, so that it guards like every other
/// input.
pub fn replay_inputs(targets: &[Body], awaiting_fix: &[(&str, &str)]) {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for &(target, body) in targets {
        let seeds = seeds(target);
        let regressions = regressions(target);
        if seeds.is_empty() {
            failures.push(format!("{target}: no seed in fuzz/corpus/{target}"));
        }
        counts.push(format!(
            "{target}: {} seeds, {} regressions",
            seeds.len(),
            regressions.len()
        ));
        for (kind, inputs) in [("corpus", seeds), ("regressions", regressions)] {
            for (name, bytes) in inputs {
                let path = format!("{target}/{name}");
                let open = awaiting_fix.iter().find(|(p, _)| *p == path);
                match (run(body, &bytes), open) {
                    (Ok(()), None) => {}
                    (Err(e), None) => failures.push(format!("{kind}/{path}: {e}")),
                    (Err(_), Some((_, bug))) => eprintln!("awaiting a fix: {path}: {bug}"),
                    (Ok(()), Some(_)) => failures.push(format!(
                        "{kind}/{path} passes now: remove it from AWAITING_FIX"
                    )),
                }
            }
        }
    }
    for (path, _) in awaiting_fix {
        if !fuzz_dir().join("regressions").join(path).is_file() {
            failures.push(format!("AWAITING_FIX names a missing input: {path}"));
        }
    }
    eprintln!("{}", counts.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// xorshift64*: deterministic mutations, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A libFuzzer-like mutation: flip a bit, set a byte, cut, repeat or
/// insert interesting bytes.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len());
        match rng.below(6) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.below(8),
            1 if !out.is_empty() => {
                out[at] = [0x00, 0x7f, 0x80, 0xff, b'/', b'{', 0x30][rng.below(7)]
            }
            2 => out.truncate(at),
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                let piece: &[u8] =
                    [&b"\x82\xff\xff"[..], b"\"a\":", b"\\u0000", b"%2F", b".."][rng.below(5)];
                out.splice(at..at, piece.iter().copied());
            }
            _ => {
                if !out.is_empty() {
                    out.remove(at);
                }
            }
        }
    }
    out
}

/// Each seed of `targets` mutated 32 times, deterministically: a cheap
/// stand-in for the fuzzer where nightly is absent.
pub fn replay_mutations(targets: &[Body]) {
    let mut failures = Vec::new();
    let mut runs = 0usize;
    for &(target, body) in targets {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
        for (name, bytes) in seeds(target) {
            for i in 0..32 {
                let input = mutate(&mut rng, &bytes);
                runs += 1;
                if let Err(e) = run(body, &input) {
                    failures.push(format!(
                        "{target}/{name} mutation {i}: {e}\ninput: {input:02x?}"
                    ));
                }
            }
        }
    }
    eprintln!("{runs} mutated inputs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fuzz workspace declares one binary per target of `targets`, each
/// calling its body (`<module>::<name>(data)`).
pub fn check_binaries(targets: &[Body]) {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in targets {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("::{name}(data)")),
            "fuzz_targets/{name}.rs does not call the body {name}"
        );
    }
}

/// Targets replayed by the tests of crates that mtls-core and mtls-ca do
/// not depend on (`policy.rs`, by mtls-tower's), known here by name so
/// that [`check_directories`] accepts their directories.
pub const OTHER_CRATES_TARGETS: &[&str] = &["policy_file"];

/// Every corpus or regression directory belongs to one of `all` (the
/// targets of every crate), or of [`OTHER_CRATES_TARGETS`].
pub fn check_directories(all: &[&str]) {
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                all.contains(&name.as_str()) || OTHER_CRATES_TARGETS.contains(&name.as_str()),
                "fuzz/{dir}/{name} is no target"
            );
        }
    }
}
