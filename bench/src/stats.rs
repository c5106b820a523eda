//! Timing and statistics: calls timed in batches, rounds that rotate which
//! function goes first, medians and percentiles, paired ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The median of `values` (NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds per call of `f`, over `iters` calls.
pub fn ns_per_call<F: FnMut()>(iters: u64, mut f: F) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters.max(1) as f64
}

/// How many calls of `f` take about `target`.
pub fn calibrate<F: FnMut()>(target: Duration, mut f: F) -> u64 {
    let mut n: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= target / 8 || n >= 1 << 30 {
            let per_call = elapsed.as_secs_f64() / n as f64;
            return ((target.as_secs_f64() / per_call.max(1e-12)) as u64).max(1);
        }
        n *= 2;
    }
}

/// `rounds` rounds; in each, every function of `fns` is timed over `iters`
/// calls, starting with a different one each round. Returns, per function,
/// its nanoseconds per call in each round.
pub fn rotate<const N: usize>(
    rounds: usize,
    iters: u64,
    fns: [&mut dyn FnMut(); N],
) -> [Vec<f64>; N] {
    let mut out: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..rounds {
        for k in 0..N {
            let i = (round + k) % N;
            out[i].push(ns_per_call(iters, &mut *fns[i]));
        }
    }
    out
}

/// `f` as a call to time: its result goes to [`black_box`], so that the
/// optimizer cannot skip the work.
pub(crate) fn kept<T>(mut f: impl FnMut() -> T) -> impl FnMut() {
    move || {
        black_box(f());
    }
}

/// Nanoseconds to microseconds, round by round.
pub(crate) fn micros(ns: Vec<f64>) -> Vec<f64> {
    ns.into_iter().map(|ns| ns / 1e3).collect()
}

/// The median over rounds of `a[i] / b[i]`.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&ratios)
}

/// The median over rounds of `a[i] - b[i]`.
pub fn paired_diff(a: &[f64], b: &[f64]) -> f64 {
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    median(&diffs)
}
