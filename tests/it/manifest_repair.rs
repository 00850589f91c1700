//! A manifest corrupt in the middle (not a torn tail): `verify` names the
//! line, jobs refuse to write until `artifacts repair`, and the repair
//! keeps every intact line, rebuilds what the store can prove and restores
//! the live pointer.

use swingml::store::{NameStyle, NewArtifact, POINTER_KINDS, Store, WatchlistStore, Writer};

use crate::common::{TestContext, block_on, fixture};

fn me() -> Writer {
    Writer {
        job: "test".into(),
        run_id: "run-1".into(),
    }
}

/// One training run's artifacts of the four pointer kinds, promoted.
fn train_and_promote(store: &WatchlistStore, fill: u8) {
    let records: Vec<_> = POINTER_KINDS
        .iter()
        .map(|kind| {
            store
                .write_bytes(&me(), NewArtifact::new(kind, NameStyle::Versioned, "bin"), &[fill; 64])
                .unwrap()
        })
        .collect();
    let refs: Vec<_> = records.iter().collect();
    store.promote(&me(), &refs, "test promotion").unwrap();
}

fn report(store: &WatchlistStore, fill: u8) {
    store
        .write_bytes(
            &me(),
            NewArtifact::new("report", NameStyle::Versioned, "bin"),
            &[fill; 16],
        )
        .unwrap();
}

fn manifest_lines(ctx: &TestContext) -> Vec<String> {
    let text = std::fs::read_to_string(ctx.artifacts().join("wl/manifest.jsonl")).unwrap();
    text.lines().map(str::to_string).collect()
}

fn write_lines(ctx: &TestContext, lines: &[String]) {
    std::fs::write(ctx.artifacts().join("wl/manifest.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_corrupt_promotion_line_stops_jobs_until_repair_restores_the_live_pointer() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    train_and_promote(&store, 1);
    train_and_promote(&store, 2);
    report(&store, 3);
    let live = store.production().unwrap().unwrap();
    let mut lines = manifest_lines(&ctx);
    assert_eq!(lines.len(), 11);
    assert!(lines[9].starts_with("{\"entry\":\"promotion\""));
    lines[9] = lines[9].replacen("\"artifacts\":{", "\"artifacts\":{{{garbage", 1);
    write_lines(&ctx, &lines);

    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    assert_eq!(verify.code, 1);
    assert!(
        verify.stdout.contains("line 10") || verify.stderr.contains("line 10"),
        "{}\n{}",
        verify.stdout,
        verify.stderr
    );
    // A job refuses before writing anything.
    let import = ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "wl");
    import.assert_error(
        1,
        "manifest.jsonl has corrupt line(s) 10; nothing was written: run `artifacts --watchlist wl repair`",
    );
    assert_eq!(block_on(swingml::db::candles::count(&ctx.db())).unwrap(), 0);
    // So does a hand promotion or rollback.
    ctx.run("artifacts", &["--watchlist", "wl", "rollback"])
        .assert_error(1, "corrupt line(s) 10");

    let repair = ctx.run("artifacts", &["--watchlist", "wl", "repair"]);
    repair.assert_ok();
    assert!(
        repair.stderr.contains("the live pointer restored from production.json"),
        "{}",
        repair.stderr
    );
    ctx.run("artifacts", &["--watchlist", "wl", "verify"]).assert_ok();
    assert_eq!(store.production().unwrap().unwrap(), live);
    // Every intact line is still there, in order.
    let repaired = manifest_lines(&ctx);
    let intact: Vec<&String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 9)
        .map(|(_, l)| l)
        .collect();
    assert_eq!(repaired[..10].iter().collect::<Vec<_>>(), intact);
    // Versions continue after the highest committed one.
    let next = store
        .write_bytes(
            &me(),
            NewArtifact::new("model_batch", NameStyle::Versioned, "bin"),
            &[9; 8],
        )
        .unwrap();
    assert_eq!(next.version, 3);
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "wl")
        .assert_ok();
}

#[test]
fn a_corrupt_artifact_line_is_rebuilt_from_its_sidecar_and_garbage_is_set_aside() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    train_and_promote(&store, 1);
    report(&store, 2);
    report(&store, 3);
    report(&store, 4);
    let original = manifest_lines(&ctx);
    let mut lines = original.clone();
    // Line 6 (report v1): its hash field damaged, its name still readable.
    lines[5] = lines[5].replacen("\"sha256\":\"", "\"sha256\":\u{1}", 1);
    // Line 7 (report v2): nothing left to recognise.
    lines[6] = "\u{0}\u{0}#### not json ####".to_string();
    write_lines(&ctx, &lines);

    let repair = ctx.run("artifacts", &["--watchlist", "wl", "repair"]);
    repair.assert_ok();
    assert!(
        repair
            .stderr
            .contains("line(s) 6, 7 were corrupt: 1 artifact line(s) rebuilt"),
        "{}",
        repair.stderr
    );
    let repaired = manifest_lines(&ctx);
    // The damaged line is back byte for byte but for its commit id (a new
    // one: the old one only mattered to its writer, at commit time); the
    // other lines are as they were; the unrecognisable one is gone.
    let mut expected = original.clone();
    expected.remove(6);
    let without_commit = |line: &str| line.split(",\"commit\":").next().unwrap().to_string();
    assert_eq!(without_commit(&repaired[5]), without_commit(&expected[5]));
    assert!(
        repaired[5].contains(",\"commit\":"),
        "a rebuilt line has a commit id of its own"
    );
    expected[5] = repaired[5].clone();
    assert_eq!(repaired, expected);
    let saved: Vec<_> = std::fs::read_dir(ctx.artifacts().join("wl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("manifest.corrupt-"))
        .collect();
    assert_eq!(saved.len(), 1);
    let kept = std::fs::read_to_string(ctx.artifacts().join("wl").join(&saved[0])).unwrap();
    assert!(kept.contains("line 7: \u{0}\u{0}#### not json ####"));
    // Report v2's file is an orphan now (listed, not a problem); the next
    // report takes version 4, after the highest committed one.
    ctx.run("artifacts", &["--watchlist", "wl", "verify"]).assert_ok();
    let next = store
        .write_bytes(&me(), NewArtifact::new("report", NameStyle::Versioned, "bin"), &[5; 16])
        .unwrap();
    assert!(next.version >= 4, "{}", next.version);
}

#[test]
fn repair_never_moves_production_back_to_a_lagging_pointer_file() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    train_and_promote(&store, 1);
    let first = std::fs::read(ctx.artifacts().join("wl/production.json")).unwrap();
    train_and_promote(&store, 2);
    report(&store, 3);
    let live = store.production().unwrap().unwrap();
    // production.json lags the manifest (the second promotion's file write
    // was lost), and an unrelated line is corrupt.
    std::fs::write(ctx.artifacts().join("wl/production.json"), &first).unwrap();
    let mut lines = manifest_lines(&ctx);
    let last = lines.len() - 1;
    lines[last] = "#### not json ####".to_string();
    write_lines(&ctx, &lines);
    ctx.run("artifacts", &["--watchlist", "wl", "repair"]).assert_ok();
    let manifest = manifest_lines(&ctx);
    assert_eq!(
        manifest
            .iter()
            .filter(|l| l.contains("\"entry\":\"promotion\""))
            .count(),
        2,
        "no promotion of the lagging file appended"
    );
    assert_eq!(
        store.production().unwrap().unwrap(),
        live,
        "production is the manifest's latest"
    );
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.artifacts().join("wl/production.json")).unwrap()).unwrap();
    assert_eq!(file["since"], live.since, "the file brought in line with the manifest");
}

#[test]
fn a_manifest_naming_a_path_outside_the_store_is_refused() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    report(&store, 1);
    let mut lines = manifest_lines(&ctx);
    let outside = ctx.path("outside.txt");
    std::fs::write(&outside, "not the store's").unwrap();
    for name in [outside.display().to_string(), "../../outside.txt".to_string()] {
        lines.push(lines[0].replacen("\"name\":\"report_v1_", &format!("\"name\":\"{name}\",\"x\":\""), 1));
    }
    write_lines(&ctx, &lines);
    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    verify.assert_error(1, "is not a plain file name of the store");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "not the store's");
}
