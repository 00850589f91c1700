//! What the store's crash tests share with their child process
//! (`examples/store_child.rs` includes this file): a seeded generator and
//! self-checking payloads.

use swingml::store::Writer;

/// Small deterministic generator (xorshift64*): seeded kills and sizes.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn writer(run: &str) -> Writer {
    Writer {
        job: "test".into(),
        run_id: run.into(),
    }
}

/// Self-checking payload: length prefix, bytes, end marker.
pub fn payload(len: usize, fill: u8) -> Vec<u8> {
    let mut out = (len as u64).to_le_bytes().to_vec();
    out.extend(std::iter::repeat_n(fill, len));
    out.extend_from_slice(b"END!");
    out
}

pub fn payload_is_complete(bytes: &[u8]) -> bool {
    bytes.len() >= 12
        && u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 12 == bytes.len()
        && bytes.ends_with(b"END!")
}

/// The environment a child reads: mode, store root, seed.
pub const CHILD_MODE: &str = "SWINGML_STORE_CHILD";
pub const CHILD_DIR: &str = "SWINGML_STORE_DIR";
pub const CHILD_SEED: &str = "SWINGML_STORE_SEED";
