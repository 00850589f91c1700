//! `--shard K/N`: one node's part of a market. Symbols are dealt to
//! shards by a stable hash of their name (64-bit FNV-1a, the same on every
//! machine and in every version), so each node finds its symbols without
//! asking the others, and a symbol stays on its shard as the watchlist
//! grows.

use std::fmt;
use std::str::FromStr;

use crate::symbols::Symbol;

/// Shard `k` of `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    k: u32,
    n: u32,
}

impl Shard {
    pub fn new(k: u32, n: u32) -> Result<Shard, String> {
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n}: K/N needs 1 <= K <= N"));
        }
        Ok(Shard { k, n })
    }

    pub fn k(&self) -> u32 {
        self.k
    }

    pub fn n(&self) -> u32 {
        self.n
    }

    /// Whether the symbol named `symbol` belongs to this shard.
    pub fn owns(&self, symbol: &str) -> bool {
        fnv1a(symbol.as_bytes()) % u64::from(self.n) == u64::from(self.k - 1)
    }

    /// The symbols of `symbols` this shard owns, in their order.
    pub fn select(&self, symbols: Vec<Symbol>) -> Vec<Symbol> {
        symbols.into_iter().filter(|s| self.owns(s.as_str())).collect()
    }

    /// The job's name for this shard — its lock and its `job_runs` rows —
    /// so that shards sharing a store or a database never wait for, or
    /// mark as abandoned, one another.
    pub fn job_name(&self, job: &str) -> String {
        format!("{job}.shard{}of{}", self.k, self.n)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let parse = |part: &str| part.trim().parse::<u32>().ok();
        match text.split_once('/').map(|(k, n)| (parse(k), parse(n))) {
            Some((Some(k), Some(n))) => Shard::new(k, n),
            _ => Err(format!("{text:?} is not K/N (e.g. 2/4)")),
        }
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_symbol_lands_on_exactly_one_shard_and_they_are_balanced() {
        let symbols: Vec<Symbol> = (0..4000).map(|i| Symbol::parse(&format!("S{i:05}")).unwrap()).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| Shard::new(k, 4).unwrap()).collect();
        let mut sizes = [0usize; 4];
        for s in &symbols {
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns(s.as_str())).collect();
            assert_eq!(owners.len(), 1, "{s}");
            sizes[owners[0]] += 1;
        }
        for size in sizes {
            assert!((900..=1100).contains(&size), "{sizes:?}");
        }
        // One shard of one is everything.
        assert_eq!(Shard::new(1, 1).unwrap().select(symbols.clone()).len(), 4000);
    }

    #[test]
    fn k_of_n_parses_and_bad_input_says_why() {
        assert_eq!("2/4".parse::<Shard>(), Shard::new(2, 4));
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "", "2/4/8", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::new(3, 8).unwrap().job_name("score"), "score.shard3of8");
    }
}
