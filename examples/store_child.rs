//! The child process of the store's crash tests (`tests/it/store.rs`), not
//! a program for users: it writes through the real store code — models,
//! promotions, rollbacks, concurrent reports, a held lock — until the test
//! kills it. Built by `cargo test` with the other examples.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use swingml::store::{NameStyle, NewArtifact, Store, WatchlistStore, Writer};

#[allow(dead_code)]
#[path = "../tests/it/shared.rs"]
mod shared;

use shared::{CHILD_DIR, CHILD_MODE, CHILD_SEED, Rng, payload, writer};

fn main() {
    let mode = std::env::var(CHILD_MODE).expect("run by tests/it/store.rs with SWINGML_STORE_CHILD set");
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("SWINGML_STORE_DIR"));
    let seed: u64 = std::env::var(CHILD_SEED).ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    // A folder, or s3://… with the AWS_* variables the test sets.
    let store = Store::open(&dir).unwrap().watchlist("wl").unwrap();
    let me = writer(&format!("child-{}", std::process::id()));
    match mode.as_str() {
        "crash" => {
            let mut rng = Rng(seed | 1);
            loop {
                write_models(&store, &me, &mut rng);
            }
        }
        "concurrent" => {
            for i in 0..25 {
                let spec = NewArtifact::new("report", NameStyle::Versioned, "bin");
                store.write_bytes(&me, spec, &payload(100 + i, i as u8)).unwrap();
            }
        }
        "large" => {
            // 20 MiB that differ from part to part: a part out of order or
            // lost changes the hash `verify` checks.
            let bytes: Vec<u8> = (0..20u64 << 20)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let spec = NewArtifact::new("snapshot", NameStyle::Versioned, "bin");
            let record = store.write_bytes(&me, spec, &bytes).unwrap();
            println!("{}", record.name);
        }
        "huge" => {
            // SWINGML_STORE_CHILD_MIB MiB written a block at a time (never
            // whole in memory), each 1 MiB block tagged with its number.
            let mib: u64 = std::env::var("SWINGML_STORE_CHILD_MIB").unwrap().parse().unwrap();
            let spec = NewArtifact::new("snapshot", NameStyle::Versioned, "bin");
            let record = store
                .write(&me, spec, |w| {
                    let mut block: Vec<u8> = (0..1u64 << 20)
                        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect();
                    for n in 0..mib {
                        block[..8].copy_from_slice(&n.to_le_bytes());
                        w.write_all(&block)?;
                    }
                    Ok(None)
                })
                .unwrap();
            println!("{}", record.name);
        }
        "hold_lock" => {
            let _lock = store.lock_job("bootstrap").unwrap();
            println!("locked");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// One "training run": the four pointer kinds, sometimes a promotion.
fn write_models(store: &WatchlistStore, me: &Writer, rng: &mut Rng) {
    let mut records = Vec::new();
    for kind in swingml::store::POINTER_KINDS {
        let len = (rng.below(4) as usize).pow(6) * 3 + rng.below(4096) as usize; // up to ~2 MB
        let spec = NewArtifact::new(kind, NameStyle::Versioned, "bin");
        records.push(
            store
                .write_bytes(me, spec, &payload(len, rng.below(256) as u8))
                .unwrap(),
        );
    }
    if rng.below(2) == 0 {
        let refs: Vec<_> = records.iter().collect();
        store.promote(me, &refs, "child promotion").unwrap();
    }
    if rng.below(5) == 0 {
        let _ = store.rollback(me);
    }
}
