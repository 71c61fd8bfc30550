//! Draws from a seeded stream, and the simulated clock (seconds since the Unix epoch).

use super::*;

/// FNV-1a, 64 bits: a digest that stays the same across platforms and releases.
pub(super) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed's random stream named `name`: each part of the city draws from its own, so
/// one part's options do not change another's draws.
pub(super) fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv(name));
    rng
}

/// A draw from Poisson(`mean`).
pub(super) fn poisson<R: Rng>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p: f64 = rng.r#gen();
        while p > limit {
            k += 1;
            p *= rng.r#gen::<f64>();
        }
        return k;
    }
    // Normal approximation (Box-Muller).
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.r#gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (mean + mean.sqrt() * z).round().max(0.0) as u32
}

/// A duration of `lo` to `hi` seconds: uniform, or log-uniform when `skew` (as service
/// times are: most short, a long tail).
pub(super) fn span<R: Rng>(rng: &mut R, lo: i64, hi: i64, skew: bool) -> i64 {
    let u: f64 = rng.r#gen();
    if skew && lo > 0 {
        (lo as f64 * (hi as f64 / lo as f64).powf(u)) as i64
    } else {
        lo + ((hi - lo) as f64 * u) as i64
    }
}

/// Seconds since midnight in the city.
pub(super) fn time_of_day(t: i64) -> i64 {
    (t + CITY_OFFSET_HOURS * HOUR).rem_euclid(DAY)
}

/// `t`, moved into working hours (08:00 to 18:00) if it falls outside them.
pub(super) fn working_hours(t: i64) -> i64 {
    let tod = time_of_day(t);
    if tod < 8 * HOUR {
        t + 8 * HOUR
    } else if tod >= 18 * HOUR {
        t - tod + DAY + 8 * HOUR + (tod - 18 * HOUR) * 10 / 6
    } else {
        t
    }
}

pub(super) fn timestamp(t: i64) -> Timestamp {
    Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(super) fn proto_time(t: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }
}
