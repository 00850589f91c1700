//! The artifact store on S3 when replies are lost: a fault proxy
//! (tests/s3_fault_proxy.py) in front of the local S3 server applies a
//! write and then answers 502, or drops the connection, as a real network
//! does. The client retries; the retry is refused (the first try landed);
//! the store must recognise its own commit, never undo it, never commit it
//! twice, and the next job must run.

use crate::common::Run;
use crate::common::TestContext;
use crate::s3::{
    FaultProxy, assert_whole_lines, manifest_text, object, point_number, prepare_trained, spawn_paused, traced,
    verify_clean, wait_for_pauses,
};

/// A store on the S3 server through a fault proxy, trained (no fault yet).
fn trained_behind_proxy(prefix: &str) -> (TestContext, FaultProxy, std::path::PathBuf) {
    let ctx = TestContext::new();
    let rules = ctx.path("faults.txt");
    std::fs::write(&rules, "").unwrap();
    let proxy = FaultProxy::start(&rules);
    let ctx = ctx.on_s3_port(prefix, proxy.port);
    prepare_trained(&ctx);
    (ctx, proxy, rules)
}

/// Lines of the manifest whose JSON has `key` = `value`.
fn lines_with(prefix: &str, key: &str, value: &str) -> Vec<serde_json::Value> {
    manifest_text(prefix)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v[key] == value)
        .collect()
}

/// Every artifact line names an object that is there, and no two lines
/// share a commit id.
fn no_line_names_a_missing_object(prefix: &str) {
    let text = manifest_text(prefix);
    assert_whole_lines(&text);
    let mut ids = std::collections::HashSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(id) = v["commit"].as_str() {
            assert!(ids.insert(id.to_string()), "commit {id} twice");
        }
        if v["entry"] == "artifact" {
            let name = v["name"].as_str().unwrap();
            assert!(
                object(&format!("{prefix}/us/{name}")).is_some(),
                "{name} is named but missing"
            );
        }
    }
}

#[test]
fn a_lost_reply_to_each_write_of_a_commit_loses_nothing_and_doubles_nothing() {
    let prefix = "lost-replies";
    let (ctx, _proxy, rules) = trained_behind_proxy(prefix);
    let score = ["--watchlist", "us", "--as-of", "2020-12-01"];
    // Each write kind of a score's commit: the manifest append, the
    // artifact's create, its sidecar's create; each answered 502 after the
    // server applied it, then dropped after it applied it.
    let mut runs = 0;
    for fault in ["502", "drop"] {
        for target in ["manifest.jsonl", "predictions_", ".meta.json"] {
            std::fs::write(&rules, format!("PUT {target} {fault} 1\n")).unwrap();
            let run = ctx.run("score", &score);
            run.assert_ok();
            runs += 1;
            no_line_names_a_missing_object(prefix);
            let predictions = lines_with(prefix, "kind", "predictions");
            assert_eq!(predictions.len(), runs, "{fault} on {target}: one line per run");
            verify_clean(&ctx);
        }
    }
    // The next job runs with no fault.
    std::fs::write(&rules, "").unwrap();
    ctx.run("score", &score).assert_ok();
    verify_clean(&ctx);
}

#[test]
fn a_lost_reply_to_a_pointer_move_moves_it_once() {
    let prefix = "lost-pointer";
    let (ctx, _proxy, rules) = trained_behind_proxy(prefix);
    // A second promotion, so that there is one to roll back to.
    ctx.run("bootstrap", &crate::crash::BOOTSTRAP_ARGS).assert_ok();
    assert_eq!(lines_with(prefix, "entry", "promotion").len(), 2);
    // The rollback line's put is applied and answered 502, then the
    // pointer file's.
    std::fs::write(&rules, "PUT manifest.jsonl 502 1\nPUT production.json 502 1\n").unwrap();
    ctx.run("artifacts", &["--watchlist", "us", "rollback"]).assert_ok();
    assert_eq!(lines_with(prefix, "entry", "rollback").len(), 1, "one rollback line");
    no_line_names_a_missing_object(prefix);
    verify_clean(&ctx);
    std::fs::write(&rules, "").unwrap();
    ctx.run("score", &["--watchlist", "us", "--as-of", "2020-12-01"])
        .assert_ok();
    verify_clean(&ctx);
}

#[test]
fn a_bucket_that_ignores_conditional_writes_is_refused_for_writing() {
    let ctx = TestContext::new();
    let rules = ctx.path("faults.txt");
    std::fs::write(&rules, "").unwrap();
    let proxy = FaultProxy::start(&rules);
    let ctx = ctx.on_s3_port("unconditional", proxy.port);
    ctx.import(&[&crate::common::fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let before = manifest_text("unconditional");
    // Now every put loses its If-None-Match / If-Match on the way.
    std::fs::write(&rules, "PUT * strip 1000000\n").unwrap();
    let run = ctx.run("bootstrap", &crate::crash::BOOTSTRAP_ARGS);
    run.assert_error(1, "does not honour conditional writes");
    assert!(run.error_line().contains("a second create-if-absent"), "{}", run.stderr);
    // Nothing was written: the manifest as it was, no lease left.
    assert_eq!(manifest_text("unconditional"), before);
    // With the conditions honoured again the same bucket works.
    std::fs::write(&rules, "").unwrap();
    ctx.run("bootstrap", &crate::crash::BOOTSTRAP_ARGS).assert_ok();
    verify_clean(&ctx);
}

#[test]
fn a_job_whose_lease_lapsed_refuses_its_next_commit() {
    // (A 6 s lease: the shared test server answers slowly when every test
    // runs at once, and a clean run must keep its lease.)
    let prefix = "fenced";
    let (ctx, _proxy, rules) = trained_behind_proxy(prefix);
    // The same store straight on the server, for the second job.
    let direct = TestContext::with_database(ctx.database_url.clone()).on_s3(prefix);
    let score = |on: &TestContext| {
        let mut cmd = on.command("score");
        cmd.args(["--watchlist", "us", "--as-of", "2020-12-01"])
            .env(swingml::store::lease::LEASE_SECS_VAR, "6");
        cmd
    };
    let at = point_number(&traced(&ctx, score(&ctx)), "job_runs.started");
    // The first job's renewals are stuck on the way (8 s; each gives up
    // after a quarter of its 6 s lease): its lease lapses while it is paused.
    std::fs::write(&rules, "PUT score.lock hold:8 1000 1\n").unwrap();
    let first = spawn_paused(&ctx, score(&ctx), &at, "first");
    wait_for_pauses(std::slice::from_ref(&first), "the first job never took its lease");
    std::thread::sleep(std::time::Duration::from_secs(7));
    // A second job takes the lapsed lease over and commits.
    let before = lines_with(prefix, "kind", "predictions").len();
    Run::from(score(&direct).output().unwrap()).assert_ok();
    assert_eq!(lines_with(prefix, "kind", "predictions").len(), before + 1);
    // The first job, let go, refuses its commit in one line and fails.
    std::fs::write(first.0.with_extension("go"), "").unwrap();
    let run = Run::from(first.1.wait_with_output().unwrap());
    run.assert_error(1, "refusing to commit");
    assert!(run.error_line().contains("lease"), "{}", run.stderr);
    assert_eq!(lines_with(prefix, "kind", "predictions").len(), before + 1);
    std::fs::write(&rules, "").unwrap();
    no_line_names_a_missing_object(prefix);
    verify_clean(&ctx);
    ctx.run("score", &["--watchlist", "us", "--as-of", "2020-12-01"])
        .assert_ok();
}

#[test]
fn a_manifest_write_stuck_past_its_deadline_is_never_undone_while_it_may_land() {
    let prefix = "stuck";
    let (ctx, _proxy, rules) = trained_behind_proxy(prefix);
    let before = lines_with(prefix, "kind", "predictions").len();
    // The score's manifest write is held 12 s on the way; with an 8 s lease
    // the write is given up after what is left of it (about 6 s) while the
    // request is still travelling: an uncertain attempt. The next attempt,
    // on the same manifest, lands; the stuck one then meets a changed
    // manifest and is refused.
    std::fs::write(&rules, "PUT manifest.jsonl hold:12 1\n").unwrap();
    let run = Run::from(
        ctx.command("score")
            .args(["--watchlist", "us", "--as-of", "2020-12-01"])
            .env(swingml::store::lease::LEASE_SECS_VAR, "8")
            .output()
            .unwrap(),
    );
    run.assert_ok();
    assert!(run.stderr.contains("writing the manifest failed"), "{}", run.stderr);
    // Let the stuck request arrive (and be refused) before looking.
    std::thread::sleep(std::time::Duration::from_secs(7));
    std::fs::write(&rules, "").unwrap();
    assert_eq!(lines_with(prefix, "kind", "predictions").len(), before + 1);
    no_line_names_a_missing_object(prefix);
    verify_clean(&ctx);
}

#[test]
fn a_lost_reply_to_the_first_manifest_line_commits_it_once() {
    let ctx = TestContext::new();
    let rules = ctx.path("faults.txt");
    // The very first manifest put (a create-if-absent) is applied, then
    // answered 502.
    std::fs::write(&rules, "PUT manifest.jsonl 502 1\n").unwrap();
    let proxy = FaultProxy::start(&rules);
    let ctx = ctx.on_s3_port("first-line", proxy.port);
    let child = crate::s3::spawn_store_child(&ctx, "concurrent", 1, &[])
        .wait_with_output()
        .unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    let text = crate::s3::watchlist_manifest("first-line", "wl");
    assert_whole_lines(&text);
    let versions = crate::s3::manifest_versions(&text);
    assert_eq!(
        versions,
        (1..=25).collect::<Vec<u64>>(),
        "each artifact once, the first one too"
    );
    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    verify.assert_ok();
    assert!(verify.stderr.contains("0 problem(s)"), "{}", verify.stderr);
}

#[test]
fn lost_replies_to_a_lease_take_and_release_leave_it_usable() {
    let prefix = "lease-faults";
    let (ctx, _proxy, rules) = trained_behind_proxy(prefix);
    let score = ["--watchlist", "us", "--as-of", "2020-12-01"];
    // The take (first put of the lease), then the release (its second: a
    // short run renews nothing), each applied and answered 502.
    for skip in [0, 1] {
        std::fs::write(&rules, format!("PUT score.lock 502 1 {skip}\n")).unwrap();
        ctx.run("score", &score).assert_ok();
        // The next job is not blocked by a lease left behind.
        std::fs::write(&rules, "").unwrap();
        ctx.run("score", &score).assert_ok();
        let lease = String::from_utf8(object(&format!("{prefix}/us/.locks/score.lock")).unwrap()).unwrap();
        assert!(lease.contains("expires=1970-01-01"), "released: {lease}");
    }
    no_line_names_a_missing_object(prefix);
    verify_clean(&ctx);
}
