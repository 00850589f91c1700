//! `incremental-update`: daily runs equal a catch-up, idempotence, the
//! prequential file, kill -9, bad input.

use std::time::Duration;

use crate::bootstrap::{artifact, bootstrap, with_us_candles};
use crate::common::{TestContext, copy_tree, fixture};

/// Bootstrap as of 2020-10-30 (learned through 2020-10-23): November 2020
/// is left to learn.
fn bootstrapped() -> TestContext {
    let ctx = with_us_candles();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-10-30"]).assert_ok();
    ctx
}

/// The fixture's first `n` trading dates after 2020-10-30.
pub fn november(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let mut dates: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(str::to_string))
        .filter(|d| d.as_str() > "2020-10-30")
        .collect();
    dates.sort();
    dates.dedup();
    dates.truncate(n);
    dates
}

fn update(ctx: &TestContext, as_of: &str) -> crate::common::Run {
    ctx.run(
        "incremental-update",
        &["--watchlist", "us", "--top-k", "3", "--as-of", as_of],
    )
}

/// The online model that has learned the most (the lineage's head).
fn head(ctx: &TestContext) -> serde_json::Value {
    artifact(ctx, "us", "model_online_v")
        .iter()
        .map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap())
        .max_by_key(|m| m["learned_through"].as_str().unwrap_or("").to_string())
        .unwrap()
}

fn weights(model: &serde_json::Value) -> Vec<f64> {
    let mut w: Vec<f64> = model["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    w.push(model["intercept"].as_f64().unwrap());
    w
}

fn assert_same_weights(a: &serde_json::Value, b: &serde_json::Value) {
    assert_eq!(a["learned_through"], b["learned_through"]);
    for (x, y) in weights(a).iter().zip(weights(b)) {
        assert!((x - y).abs() <= 1e-12, "{x} vs {y}");
    }
}

#[test]
fn ten_daily_runs_equal_one_catch_up_and_a_second_run_changes_nothing() {
    let days = november(10);
    let daily = bootstrapped();
    for day in &days {
        update(&daily, day).assert_ok();
    }
    let catch_up = bootstrapped();
    let run = update(&catch_up, &days[9]);
    run.assert_ok();
    assert!(
        run.stderr.contains("learned 10 scan date(s) 2020-10-26..2020-11-06"),
        "{}",
        run.stderr
    );
    let (a, b) = (head(&daily), head(&catch_up));
    assert_eq!(a["learned_through"], "2020-11-06");
    assert_same_weights(&a, &b);
    for m in [&a, &b] {
        assert!(
            m["base_model"].as_str().unwrap().starts_with("model_online_v1_"),
            "{}",
            m["base_model"]
        );
    }
    assert_ne!(
        weights(&a),
        weights(&head_of_bootstrap(&daily)),
        "the updates moved the weights"
    );

    // The same as-of again: nothing to do, nothing written.
    let manifest = std::fs::read(catch_up.artifacts().join("us/manifest.jsonl")).unwrap();
    let files = std::fs::read_dir(catch_up.artifacts().join("us")).unwrap().count();
    let again = update(&catch_up, &days[9]);
    again.assert_ok();
    assert!(
        again
            .stderr
            .contains("nothing to do: scan dates through 2020-11-06 already learned"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read(catch_up.artifacts().join("us/manifest.jsonl")).unwrap(),
        manifest
    );
    assert_eq!(
        std::fs::read_dir(catch_up.artifacts().join("us")).unwrap().count(),
        files
    );
    // An earlier as-of never re-applies learned rows.
    update(&catch_up, &days[5]).assert_ok();
    assert_eq!(
        std::fs::read(catch_up.artifacts().join("us/manifest.jsonl")).unwrap(),
        manifest
    );
    catch_up.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();

    // The prequential file, read by pyarrow: one row per learned scan date,
    // both models, a log loss that is a log loss.
    let evals = artifact(&catch_up, "us", "online_eval_");
    assert_eq!(evals.len(), 1);
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pydict()
print(json.dumps({k: [str(x) for x in v] for k, v in t.items()}))
"#,
        )
        .arg(&evals[0])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let t: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let dates: Vec<&str> = t["scan_date"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 10);
    assert_eq!((dates[0], dates[9]), ("2020-10-26", "2020-11-06"));
    for col in [
        "updated_log_loss",
        "frozen_log_loss",
        "updated_brier",
        "frozen_precision_at_k",
    ] {
        for v in t[col].as_array().unwrap() {
            let x: f64 = v.as_str().unwrap().parse().unwrap();
            assert!(x.is_finite() && x >= 0.0, "{col} {x}");
        }
    }
    // Each date is scored by the state live on it: scan dates 26–30
    // October were ranked before any of this run's rows completed (the
    // first on 2 November), so by the bootstrap model itself — the
    // updated figure equals the frozen one. Scoring them with the model
    // that had just learned the previous dates (whose windows overlap)
    // would have leaked. From 2 November on the states differ.
    for i in 0..5 {
        assert_eq!(
            t["updated_log_loss"][i], t["frozen_log_loss"][i],
            "scan date {}",
            dates[i]
        );
    }
    for i in 5..10 {
        assert_ne!(
            t["updated_log_loss"][i], t["frozen_log_loss"][i],
            "scan date {}",
            dates[i]
        );
    }
    assert!(t["rows"].as_array().unwrap().iter().all(|r| r == "10"));
}

#[test]
fn stored_indicator_rows_teach_exactly_what_the_whole_history_does() {
    let days = november(10);
    // With `ta-signals run` first, the update reads the stored rows and the
    // candles from its first scan date on; without, every symbol's history.
    let stored = with_us_candles();
    stored.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&stored, "us", &["--force", "--as-of", "2020-10-30"]).assert_ok();
    let fast = update(&stored, &days[9]);
    fast.assert_ok();
    assert!(!fast.stderr.contains("whole history"), "{}", fast.stderr);
    let whole = bootstrapped();
    let slow = update(&whole, &days[9]);
    slow.assert_ok();
    assert!(
        slow.stderr
            .contains("0 symbol(s) built from stored indicator rows, 10 from their whole history"),
        "{}",
        slow.stderr
    );
    let (a, b) = (head(&stored), head(&whole));
    assert_eq!(a["learned_through"], "2020-11-06");
    assert_eq!(weights(&a), weights(&b), "bit for bit");
    let summary = |stderr: &str| {
        let line = stderr
            .lines()
            .find(|l| l.contains("incremental-update: learned"))
            .unwrap();
        // Up to the decision, which names the new model's file.
        line[line.find("learned").unwrap()..line.find("model_online_v").unwrap_or(line.len())].to_string()
    };
    assert_eq!(summary(&fast.stderr), summary(&slow.stderr));
}

/// The bootstrap's own online model (no base).
fn head_of_bootstrap(ctx: &TestContext) -> serde_json::Value {
    artifact(ctx, "us", "model_online_v")
        .iter()
        .map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap())
        .find(|m| m["base_model"].is_null())
        .unwrap()
}

/// The online model the production pointer names (the manifest's pointer:
/// the commit point; `production.json` is its copy, written after it).
fn production_online(ctx: &TestContext) -> serde_json::Value {
    let shown = ctx.run("artifacts", &["--watchlist", "us", "show-production"]);
    let pointer: serde_json::Value = serde_json::from_str(&shown.assert_ok().stdout).unwrap();
    let name = pointer["artifacts"]["model_online"]["name"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(ctx.artifacts().join("us").join(name)).unwrap()).unwrap()
}

/// xorshift64*: seeded kill delays.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn kill_9_during_updates_leaves_the_store_verifiable_and_the_rerun_equal() {
    let days = november(10);
    let ctx = bootstrapped();
    // A tolerance that promotes: the kill can then fall between the model
    // and the pointer's move.
    std::fs::create_dir_all(ctx.path("config")).unwrap();
    ctx.write("config/swingml.toml", "[incremental]\ntolerance = 100.0\n");
    let store = ctx.artifacts().join("us");
    let saved = ctx.path("bootstrapped-store");
    copy_tree(&store, &saved);
    let started = std::time::Instant::now();
    update(&ctx, &days[9]).assert_ok();
    let full = started.elapsed().as_millis() as u64;
    let want = head(&ctx);
    let live = production_online(&ctx);
    assert_same_weights(&live, &want);

    // Each round starts from the bootstrapped store, is killed at a seeded
    // moment within one uninterrupted run's duration, then verified and
    // rerun to the end.
    let mut rng = Rng(0x1234_5678);
    let mut interrupted = 0;
    let rounds = 12;
    for _ in 0..rounds {
        std::fs::remove_dir_all(&store).unwrap();
        copy_tree(&saved, &store);
        let mut child = ctx
            .command("incremental-update")
            .args(["--watchlist", "us", "--top-k", "3", "--as-of", &days[9]])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(full.max(1))));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        interrupted += usize::from(!status.success());
        ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
        update(&ctx, &days[9]).assert_ok();
        ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
        assert_same_weights(&head(&ctx), &want);
        // The pointer too ends where the uninterrupted run left it, also
        // when the kill fell between the model and the decision.
        assert_same_weights(&production_online(&ctx), &want);
    }
    assert!(
        interrupted >= rounds / 2,
        "only {interrupted} of {rounds} runs were killed before they ended"
    );
}

#[test]
fn bad_input_is_one_clear_line_and_changes_nothing() {
    // No production model yet.
    let ctx = with_us_candles();
    update(&ctx, "2020-11-09").assert_error(1, "no production model for us: run bootstrap first");

    let ctx = bootstrapped();
    let manifest = || std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap();
    let before = manifest();
    // An as-of inside the training window.
    update(&ctx, "2020-06-30").assert_error(2, "before the end of the live models' training window (2020-10-23)");
    // A watchlist without symbols.
    let run = ctx.run("incremental-update", &["--watchlist", "empty", "--as-of", "2020-11-09"]);
    run.assert_error(1, "no production model for empty");
    // Bad flags.
    let run = ctx.run("incremental-update", &["--watchlist", "us", "--top-k", "0"]);
    run.assert_error(2, "--top-k");
    assert_eq!(manifest(), before);

    // A corrupted model file: named, refused, nothing written.
    let model = &artifact(&ctx, "us", "model_online_v1_")[0];
    let mut bytes = std::fs::read(model).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(model, &bytes).unwrap();
    let run = update(&ctx, "2020-11-09");
    run.assert_error(1, "is corrupted or was changed");
    assert_eq!(manifest(), before);
}

#[test]
fn a_watchlist_whose_members_are_gone_is_refused_with_a_clear_line() {
    let ctx = bootstrapped();
    // The store has a production model, the database no member for it.
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!("the test context is SQLite")
    };
    crate::common::block_on(async {
        sqlx::query("DELETE FROM watchlist_members WHERE watchlist = ?")
            .bind("us")
            .execute(&pool)
            .await
    })
    .unwrap();
    update(&ctx, "2020-11-09").assert_error(1, "watchlist us has no symbols");
}

#[test]
fn a_feature_config_from_other_code_is_refused_naming_the_columns() {
    let ctx = bootstrapped();
    let store = swingml::store::Store::new(ctx.artifacts()).watchlist("us").unwrap();
    // A live feature config whose columns differ from this program's: one
    // feature renamed, the hash recomputed (as another build would write it).
    let path = &artifact(&ctx, "us", "feature_config_v1_")[0];
    let mut config: swingml::features::config::FeatureConfig =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    config.columns[0].name = "rsi_21".into();
    config.hash = swingml::features::config::hash_of(config.definitions_version, &config.columns);
    let by = swingml::store::Writer {
        job: "test".into(),
        run_id: "other-build".into(),
    };
    let record = store
        .write_json(
            &by,
            swingml::store::NewArtifact::new("feature_config", swingml::store::NameStyle::Versioned, "json"),
            &config,
        )
        .unwrap();
    store.promote(&by, &[&record], "a config from another build").unwrap();
    let manifest = std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap();
    let run = update(&ctx, "2020-11-09");
    run.assert_error(1, "missing rsi_14");
    assert!(run.error_line().contains("unknown rsi_21"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(ctx.artifacts().join("us/manifest.jsonl")).unwrap(),
        manifest
    );
}

/// The US fixture with the gaps of a thin market, written into `ctx`'s
/// folder: AAPL misses 4 and 5 November 2020 (inside the label windows of
/// late October), KO stops trading after 3 November, MSFT is listed on
/// 1 March 2019.
pub fn gapped_csv(ctx: &TestContext) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let mut f = l.split(',');
            let (symbol, date) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
            !((symbol == "AAPL" && (date == "2020-11-04" || date == "2020-11-05"))
                || (symbol == "KO" && date > "2020-11-03")
                || (symbol == "MSFT" && date < "2019-03-01"))
        })
        .collect();
    ctx.write("gapped.csv", &(kept.join("\n") + "\n"))
}

/// A store bootstrapped as of 30 October 2020 on [`gapped_csv`].
fn gapped() -> TestContext {
    let ctx = TestContext::new();
    ctx.import(&[&gapped_csv(&ctx)], "us").assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-10-30"]).assert_ok();
    ctx
}

/// A learned row: symbol, scan date, window end.
type LearnedRow = (String, String, String);

/// Every increment of a store as (as-of, its rows) in run order, read by
/// pyarrow.
fn increments(ctx: &TestContext) -> Vec<(String, Vec<LearnedRow>)> {
    let files = artifact(ctx, "us", "labeled_increment_");
    let mut out: Vec<(String, Vec<LearnedRow>)> = files
        .iter()
        .map(|f| {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(format!("{}.meta.json", f.display())).unwrap()).unwrap();
            let v = crate::common::python_json(&[
                "-c",
                "import json, sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]).to_pydict(); \
                 print(json.dumps([[s, str(d), str(e)] for s, d, e in zip(t['symbol'], t['date'], t['window_end'])]))",
                f.to_str().unwrap(),
            ]);
            let rows = v
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let r: Vec<String> = r
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                        .collect();
                    (r[0].clone(), r[1].clone(), r[2].clone())
                })
                .collect();
            (meta["parameters"]["as_of"].as_str().unwrap().to_string(), rows)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn symbols_that_miss_sessions_are_learned_on_the_run_their_own_window_completes() {
    let days = november(14);
    let daily = gapped();
    let mut given_up = 0;
    for day in &days {
        let run = update(&daily, day);
        run.assert_ok();
        given_up += run.stderr.matches("given up KO").count();
    }
    let catch_up = gapped();
    let run = update(&catch_up, &days[13]);
    run.assert_ok();
    // KO's rows of 28 October on never get their five bars: given up once
    // their 19-day deadline passes (by 19 November for the first three),
    // in both, once; its row of the 27th completed on the 3rd, its last
    // session.
    for d in ["2020-10-28", "2020-10-29", "2020-10-30"] {
        assert!(run.stderr.contains(&format!("given up KO {d}")), "{}", run.stderr);
    }
    assert!(run.stderr.contains("3 row(s) given up"), "{}", run.stderr);
    assert_eq!(given_up, 3);
    assert_same_weights(&head(&daily), &head(&catch_up));
    // Bit for bit, the AdaGrad sums and the kept states included (the
    // bootstrap model's file name is time-stamped).
    let whole = |ctx: &TestContext| {
        let mut m = head(ctx);
        m.as_object_mut().unwrap().remove("base_model");
        m
    };
    assert_eq!(whole(&daily), whole(&catch_up));

    // The same rows in the same order.
    let daily_rows: Vec<LearnedRow> = increments(&daily).into_iter().flat_map(|(_, r)| r).collect();
    let catch_up_rows = increments(&catch_up).pop().unwrap().1;
    assert_eq!(daily_rows, catch_up_rows);
    // Each evening learned exactly the rows whose own window completed
    // that day — AAPL's late-October rows a few sessions after the market's.
    for (as_of, rows) in increments(&daily) {
        assert!(rows.iter().all(|r| r.2 == as_of), "{as_of}: {rows:?}");
    }
    // Five weekdays span seven calendar days; AAPL's rows of 28 October to
    // 3 November took two sessions more.
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let late: Vec<&String> = daily_rows
        .iter()
        .filter(|r| r.0 == "AAPL" && (day(&r.2) - day(&r.1)).num_days() > 7)
        .map(|r| &r.1)
        .collect();
    assert_eq!(
        late,
        ["2020-10-28", "2020-10-29", "2020-10-30", "2020-11-02", "2020-11-03"]
    );
    assert!(daily_rows.iter().any(|r| r.0 == "MSFT"));
    assert!(
        daily_rows
            .iter()
            .any(|r| r.0 == "KO" && r.1 == "2020-10-27" && r.2 == "2020-11-03")
    );
    assert!(!daily_rows.iter().any(|r| r.0 == "KO" && r.1.as_str() >= "2020-10-28"));
}
