//! A tiny deterministic PRNG (SplitMix64): the load generator needs cheap, well-spread keys, not
//! cryptographic randomness, and a seed per client keeps runs reproducible.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `1..=max` (max ≥ 1), the shape of the demo schema's keys.
    pub fn key(&mut self, max: i64) -> i64 {
        1 + (self.next_u64() % max.max(1) as u64) as i64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_stay_in_range() {
        let mut r = super::Rng::new(7);
        for _ in 0..1000 {
            let k = r.key(10);
            assert!((1..=10).contains(&k));
            let u = r.unit();
            assert!((-1.0..1.0).contains(&u));
        }
    }
}
