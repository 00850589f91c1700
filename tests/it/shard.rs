//! `--shard K/N`: shards of `ta-signals run` together store what one run
//! stores; `score` parts merge into the file one `score` writes.

use crate::bootstrap::{artifact, bootstrap, with_us_candles};
use crate::common::TestContext;
use crate::ta_run::all_rows;

/// "shard K/N: M of the T symbol(s)" from a run's log: M.
fn shard_size(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains(" of the 10 symbol(s)"))
        .expect(stderr);
    let after = &line[line.find("shard ").unwrap()..];
    after.split(' ').nth(2).unwrap().parse().unwrap()
}

#[test]
fn indicator_shards_together_store_what_one_run_stores() {
    let sharded = with_us_candles();
    let mut sizes = Vec::new();
    for shard in ["1/2", "2/2"] {
        let run = sharded.run("ta-signals", &["run", "--watchlist", "us", "--shard", shard]);
        run.assert_ok();
        sizes.push(shard_size(&run.stderr));
    }
    assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    let whole = with_us_candles();
    whole.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    assert!(
        all_rows(&sharded) == all_rows(&whole),
        "the shards' rows differ from one run's"
    );
    // Each shard is its own job: neither marked the other abandoned.
    let db = rusqlite::Connection::open(sharded.path("swingml.db")).unwrap();
    let mut q = db
        .prepare("SELECT job, status FROM job_runs WHERE job LIKE 'ta-signals%' ORDER BY job")
        .unwrap();
    let jobs: Vec<(String, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        jobs,
        [
            ("ta-signals.shard1of2".to_string(), "ok".to_string()),
            ("ta-signals.shard2of2".to_string(), "ok".to_string())
        ]
    );
}

/// Every column of a Parquet file but `run_id`, read by pyarrow.
fn columns(path: &std::path::Path) -> serde_json::Value {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).drop_columns(["run_id"]).to_pydict()
print(json.dumps({k: [None if x is None else str(x) for x in v] for k, v in t.items()}))
"#,
        )
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn score_parts_merge_into_the_file_one_score_writes() {
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-11-30"]).assert_ok();
    let score = |extra: &[&str]| {
        let mut args = vec!["--watchlist", "us", "--top-k", "3", "--as-of", "2020-12-31"];
        args.extend(extra);
        ctx.run("score", &args)
    };
    score(&[]).assert_ok();
    let one = artifact(&ctx, "us", "predictions_2");
    assert_eq!(one.len(), 1, "{one:?}");
    let whole = columns(&one[0]);

    let mut sizes = Vec::new();
    for shard in ["1/3", "2/3"] {
        let run = score(&["--shard", shard]);
        run.assert_ok();
        sizes.push(shard_size(&run.stderr));
    }
    // A shard missing: named, nothing written.
    let manifest = std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap();
    score(&["--merge"]).assert_error(1, "missing for shard(s) 3/3");
    assert_eq!(
        std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap(),
        manifest
    );
    let run = score(&["--shard", "3/3"]);
    run.assert_ok();
    sizes.push(shard_size(&run.stderr));
    assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");

    let parts = artifact(&ctx, "us", "shard_predictions_");
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(
        artifact(&ctx, "us", "predictions_").len(),
        1,
        "parts stay out of the predictions_* glob"
    );
    // A damaged part is refused, whether it still parses or not.
    let manifest = std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap();
    let part = parts[0].clone();
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    score(&["--merge"]).assert_error(1, "cannot read score part");
    let mut flipped = bytes.clone();
    flipped[8] ^= 1;
    std::fs::write(&part, &flipped).unwrap();
    score(&["--merge"]).assert_error(1, "sha256 differs from the manifest");
    std::fs::write(&part, &bytes).unwrap();
    assert_eq!(
        std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap(),
        manifest
    );

    let merged = score(&["--merge"]);
    merged.assert_ok();
    let path = std::path::PathBuf::from(merged.stdout.trim());
    assert!(path.exists(), "{}", merged.stdout);
    assert_eq!(columns(&path), whole, "the merged parts differ from one score's file");
    let ranks = &columns(&path)["rank"];
    assert_eq!(ranks[0], "1");

    // monitor reads the merged file as the day's predictions.
    let report = ctx.run(
        "monitor",
        &["--watchlist", "us", "--as-of", "2020-12-31", "--format", "json"],
    );
    report.assert_ok();
    let r: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    let file = r["dates"].as_array().unwrap().last().unwrap()["file"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(file, path.file_name().unwrap().to_str().unwrap());
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
}

#[test]
fn bad_shards_are_refused_in_one_line() {
    let ctx = TestContext::new();
    for bad in ["0/2", "3/2", "2", "a/b", "1/0"] {
        let run = ctx.run("ta-signals", &["run", "--shard", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--shard"), "{}", run.stderr);
    }
    let run = ctx.run("score", &["--watchlist", "us", "--shard", "1/2", "--merge"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
