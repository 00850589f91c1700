//! The artifact store on S3-compatible storage (`--artifacts s3://…`),
//! against a local moto server this test binary starts (tests/s3_server.py,
//! loopback only): the quick start's pipeline, two writers racing on one
//! manifest, writers killed at every crash point, and job leases.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::common::{Run, TestContext, fixture};
use crate::crash::BOOTSTRAP_ARGS;

const BUCKET: &str = "swingml-tests";

/// Where a test context's store lives on the server.
pub struct S3Store {
    url: String,
    port: u16,
}

impl S3Store {
    /// `--artifacts` and the AWS settings of the local server.
    pub fn configure(&self, cmd: &mut Command) {
        cmd.arg(&self.url)
            .envs(self.env())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }

    /// The key prefix of the store in the bucket.
    fn prefix(&self) -> &str {
        &self.url[format!("s3://{BUCKET}/").len()..]
    }

    /// The AWS settings of the local server.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint(self.port)),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
            // Both ways up: sidecars and small reports in one conditional
            // put, models and Parquet files in parts then a conditional copy.
            (swingml::store::remote::PART_UPLOAD_BYTES_VAR, "4096".into()),
        ]
    }
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The server, started once for the whole test binary; it exits when this
/// process does (its stdin closes).
fn server_port() -> u16 {
    static SERVER: OnceLock<(u16, std::sync::Mutex<Child>)> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let (port, child) = start_python(
                &["s3_server.py", BUCKET],
                "the local S3 server (pip install 'moto[server]')",
            );
            (port, std::sync::Mutex::new(child))
        })
        .0
}

impl TestContext {
    /// This context with its artifact store under `s3://swingml-tests/<prefix>`.
    pub fn on_s3(self, prefix: &str) -> TestContext {
        self.on_s3_port(prefix, server_port())
    }

    /// The same store reached through the S3 endpoint on `port` (a fault proxy).
    pub fn on_s3_port(mut self, prefix: &str, port: u16) -> TestContext {
        self.s3 = Some(S3Store {
            url: format!("s3://{BUCKET}/{prefix}"),
            port,
        });
        self
    }
}

/// A fault proxy (tests/s3_fault_proxy.py) in front of the local S3
/// server, reading its rules from `rules`; it exits with the child handle.
pub struct FaultProxy {
    pub port: u16,
    child: Child,
}

impl FaultProxy {
    pub fn start(rules: &std::path::Path) -> FaultProxy {
        let upstream = server_port().to_string();
        let (port, child) = start_python(
            &["s3_fault_proxy.py", &upstream, rules.to_str().unwrap()],
            "the fault proxy",
        );
        FaultProxy { port, child }
    }
}

/// Start `tests/<script> args…` with python3; the port it prints first.
/// It serves until its stdin closes (when the child handle is dropped or
/// this process ends).
pub(crate) fn start_python(script_and_args: &[&str], what: &str) -> (u16, Child) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script_and_args[0]);
    let mut child = Command::new("python3")
        .arg(script)
        .args(&script_and_args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 runs {what}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} did not start: {line:?}"));
    (port, child)
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An object's bytes read with boto3 (an independent client), `None` when absent.
pub(crate) fn object(key: &str) -> Option<Vec<u8>> {
    let script = r#"
import sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
try:
    sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read())
except botocore.exceptions.ClientError:
    sys.exit(3)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &endpoint(server_port()), BUCKET, key])
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => Some(out.stdout),
        Some(3) => None,
        _ => panic!("boto3 get {key}: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn put_object(key: &str, body: &str) {
    let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=sys.argv[4].encode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &endpoint(server_port()), BUCKET, key, body])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

pub(crate) fn manifest_text(prefix: &str) -> String {
    watchlist_manifest(prefix, "us")
}

pub(crate) fn watchlist_manifest(prefix: &str, watchlist: &str) -> String {
    String::from_utf8(object(&format!("{prefix}/{watchlist}/manifest.jsonl")).unwrap_or_default()).unwrap()
}

/// The `version` of every manifest line, in order.
pub(crate) fn manifest_versions(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["version"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Every manifest line is whole JSON ending in a newline.
pub(crate) fn assert_whole_lines(text: &str) {
    assert!(text.is_empty() || text.ends_with('\n'), "torn manifest tail: {text:?}");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("half a line {line:?}: {e}"));
    }
}

pub(crate) fn verify_clean(ctx: &TestContext) -> Run {
    let run = ctx.run("artifacts", &["--watchlist", "us", "verify"]);
    run.assert_ok();
    assert!(run.stderr.contains(" 0 problem(s)"), "{}", run.stderr);
    assert!(!run.stdout.contains("problem:"), "{}", run.stdout);
    run
}

pub(crate) fn prepare_trained(ctx: &TestContext) {
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.run("bootstrap", &BOOTSTRAP_ARGS).assert_ok();
}

/// The live models: each file's sha256; the online model's JSON without
/// the name of the bootstrap model it came from (time-stamped). (The
/// quick start's two updates are not better than the bootstrap model
/// beyond noise: they are kept as candidates, and the bootstrap's online
/// model stays live.)
fn live_models(ctx: &TestContext) -> String {
    let pointer = ctx.run("artifacts", &["--watchlist", "us", "show-production"]);
    let pointer: serde_json::Value = serde_json::from_str(&pointer.assert_ok().stdout).unwrap();
    let mut live = Vec::new();
    for (kind, artifact) in pointer["artifacts"].as_object().unwrap() {
        let name = artifact["name"].as_str().unwrap();
        let bytes = match &ctx.s3 {
            Some(_) => object(&format!("quickstart/us/{name}")).unwrap(),
            None => std::fs::read(ctx.artifacts().join("us").join(name)).unwrap(),
        };
        let content = if kind == "model_online" {
            let mut model: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            model.as_object_mut().unwrap().remove("base_model");
            model.to_string()
        } else {
            swingml::store::atomic::sha256_hex(&bytes)
        };
        live.push(format!("{kind} {content}"));
    }
    live.join("\n")
}

/// The quick start's slice (import, indicators, bootstrap, daily score and
/// update, monitor) on S3 gives exactly the local store's answers, writes
/// nothing to the local folder, and `artifacts verify` passes there.
#[test]
fn the_quick_start_pipeline_runs_on_s3() {
    let local = TestContext::new();
    let remote = TestContext::new().on_s3("quickstart");
    let mut answers: Vec<Vec<String>> = Vec::new();
    for ctx in [&local, &remote] {
        prepare_trained(ctx);
        let mut said = Vec::new();
        for day in ["2020-12-01", "2020-12-02"] {
            let score = ctx.run(
                "score",
                &["--watchlist", "us", "--as-of", day, "--top-k", "3", "--format", "json"],
            );
            score.assert_ok();
            said.push(score.stdout.clone());
            ctx.run("incremental-update", &["--watchlist", "us", "--as-of", day])
                .assert_ok();
        }
        ctx.run(
            "monitor",
            &[
                "--watchlist",
                "us",
                "--as-of",
                "2020-12-02",
                "--predictions-days-back",
                "10",
            ],
        )
        .assert_ok();
        said.push(live_models(ctx));
        verify_clean(ctx);
        // Every watchlist under the root, found by listing it.
        let all = ctx.run("artifacts", &["verify"]);
        all.assert_ok();
        assert!(all.stderr.contains("verify: 1 watchlist(s)"), "{}", all.stderr);
        answers.push(said);
    }
    assert_eq!(answers[0][..2], answers[1][..2], "score on S3 equals score on a folder");
    assert!(answers[0][2].contains("model_batch"), "{}", answers[0][2]);
    assert_eq!(answers[0][2], answers[1][2], "the same models are live");
    assert!(!remote.artifacts().exists(), "nothing written to the local folder");

    let manifest = manifest_text("quickstart");
    assert_whole_lines(&manifest);
    let predictions: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "predictions")
        .collect();
    assert_eq!(predictions.len(), 2);
    // The predictions file read back from the bucket by pyarrow.
    let name = predictions[1]["name"].as_str().unwrap();
    let bytes = object(&format!("quickstart/us/{name}")).expect("the committed file is there");
    let path = remote.path("predictions.parquet");
    std::fs::write(&path, bytes).unwrap();
    let rows = Command::new("python3")
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).num_rows)",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "10", "{rows:?}");
}

/// Two sharded scores paused after they read the manifest and placed their
/// objects, then released together: both pick the same version, one
/// conditional put wins, the other reads again and commits the next one.
#[test]
fn two_writers_racing_on_one_manifest_both_commit() {
    let ctx = TestContext::new().on_s3("race");
    prepare_trained(&ctx);
    let score = |shard: &str| {
        let mut cmd = ctx.command("score");
        cmd.args(["--watchlist", "us", "--as-of", "2020-12-01", "--shard", shard]);
        cmd
    };
    // Where the commit point is, from a traced run (its part is a third writer).
    let trace = traced(&ctx, score("1/2"));
    let at = point_number(&trace, "before_manifest");

    let writers: Vec<(PathBuf, Child)> = ["1/2", "2/2"]
        .into_iter()
        .enumerate()
        .map(|(k, shard)| spawn_paused(&ctx, score(shard), &at, &format!("writer{k}")))
        .collect();
    wait_for_pauses(&writers, "the writers never reached the commit");
    let before = manifest_text("race");
    for (pause, _) in &writers {
        std::fs::write(pause.with_extension("go"), "").unwrap();
    }
    let mut retried = 0;
    for (_, child) in writers {
        let run = Run::from(child.wait_with_output().unwrap());
        run.assert_ok();
        retried += usize::from(run.stderr.contains("another writer committed first"));
    }
    assert_eq!(retried, 1, "exactly one writer lost the race and retried");

    let after = manifest_text("race");
    assert_whole_lines(&after);
    assert!(after.starts_with(&before), "no committed line lost");
    let parts: Vec<serde_json::Value> = after
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "predictions_part")
        .collect();
    let versions: Vec<u64> = parts.iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(
        versions,
        [1, 2, 3],
        "the racers read version 2 together; one retried as 3"
    );
    // Above the part-upload threshold: the racers placed their files by
    // conditional server-side copies.
    assert!(parts.iter().all(|e| e["bytes"].as_u64().unwrap() > 4096), "{parts:?}");
    let verify = verify_clean(&ctx);
    assert!(
        verify.stderr.contains(" 0 orphan(s)"),
        "the loser removed its objects: {}",
        verify.stderr
    );
    ctx.run("score", &["--watchlist", "us", "--as-of", "2020-12-01", "--merge"])
        .assert_ok();
}

/// `score` killed (SIGKILL) at each of its crash points on S3: the manifest
/// is either as before or one whole line longer, `verify` passes, and the
/// next run on the same host does not wait for the dead job's lease.
#[test]
fn a_killed_writer_leaves_no_half_committed_line() {
    use std::os::unix::process::ExitStatusExt;
    let ctx = TestContext::new().on_s3("killed");
    prepare_trained(&ctx);
    let score = || {
        let mut cmd = ctx.command("score");
        cmd.args(["--watchlist", "us", "--as-of", "2020-12-01", "--format", "json"]);
        cmd
    };
    let reference = Run::from(score().output().unwrap());
    reference.assert_ok();
    let points = traced(&ctx, score()).lines().count();
    assert!(points >= 3, "{points} crash points");
    for n in 1..=points {
        let before = manifest_text("killed");
        let killed = score()
            .env(swingml::crashpoint::CRASH_AFTER_VAR, n.to_string())
            .output()
            .unwrap();
        assert_eq!(killed.status.signal(), Some(9), "not killed at point {n}");
        let after = manifest_text("killed");
        assert_whole_lines(&after);
        let added = after.strip_prefix(&before).expect("committed lines kept");
        assert!(added.lines().count() <= 1, "point {n}: {added:?}");
        verify_clean(&ctx);
        let rerun = Run::from(score().output().unwrap());
        rerun.assert_ok();
        assert_eq!(rerun.stdout, reference.stdout, "after a kill at point {n}");
    }
}

/// A lease held by a live job elsewhere refuses the job with the holder's
/// name; an expired one is taken over.
#[test]
fn a_job_lease_held_elsewhere_refuses_until_it_expires() {
    let ctx = TestContext::new().on_s3("lease");
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    let later = "2999-01-01T00:00:00.000Z";
    put_object(
        "lease/us/.locks/ta-signals.lock",
        &format!("pid=4242 since=2026-11-30T08:00:00Z host=other-host expires={later}\n"),
    );
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_error(
        1,
        "already running: ta-signals for us since 2026-11-30T08:00:00Z (pid 4242 on other-host)",
    );
    put_object(
        "lease/us/.locks/ta-signals.lock",
        "pid=4242 since=2026-11-30T08:00:00Z host=other-host expires=2026-01-01T00:00:00.000Z\n",
    );
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let lease = String::from_utf8(object("lease/us/.locks/ta-signals.lock").unwrap()).unwrap();
    assert!(lease.contains("expires=1970-01-01"), "released at the end: {lease}");
}

/// The store's own child process (examples/store_child.rs) writing to a
/// bucket, with the test's S3 settings.
pub(crate) fn spawn_store_child(
    ctx: &TestContext,
    mode: &str,
    seed: u64,
    extra: &[(&str, String)],
) -> std::process::Child {
    let s3 = ctx.s3.as_ref().expect("a context on S3");
    let mut env = s3.env();
    env.extend(extra.iter().cloned());
    crate::store::spawn_child_with(mode, std::path::Path::new(&s3.url), seed, &env)
}

/// Eight processes writing 25 artifacts each, all at once, to one
/// manifest: 200 whole lines, versions 1..=200 without a gap or a double.
#[test]
fn eight_concurrent_writers_on_one_bucket_manifest() {
    let ctx = TestContext::new().on_s3("eight");
    let children: Vec<_> = (0..8).map(|i| spawn_store_child(&ctx, "concurrent", i, &[])).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let text = watchlist_manifest("eight", "wl");
    assert_whole_lines(&text);
    let mut versions = manifest_versions(&text);
    versions.sort();
    assert_eq!(versions, (1..=200).collect::<Vec<_>>(), "unique and gap-free");
    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    verify.assert_ok();
    assert!(
        verify
            .stderr
            .contains("200 artifact(s) checked, 0 problem(s), 0 orphan(s)"),
        "{}",
        verify.stderr
    );
}

/// A 20 MiB artifact goes up in three parts, is copied into place, and
/// reads back with the hash its writer computed; the temporary upload is
/// gone.
#[test]
fn a_large_artifact_goes_up_in_parts() {
    let ctx = TestContext::new().on_s3("large");
    let child = spawn_store_child(&ctx, "large", 1, &[]).wait_with_output().unwrap();
    assert!(child.status.success());
    let name = String::from_utf8(child.stdout).unwrap().trim().to_string();
    let bytes = object(&format!("large/wl/{name}")).expect("the artifact is in place");
    assert_eq!(bytes.len(), 20 << 20);
    let manifest = watchlist_manifest("large", "wl");
    let line: serde_json::Value = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    assert_eq!(line["sha256"], swingml::store::atomic::sha256_hex(&bytes));
    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    verify.assert_ok();
    assert!(verify.stderr.contains("0 problem(s), 0 orphan(s)"), "{}", verify.stderr);
}

/// `verify` of a 1 GiB artifact on a bucket streams it: its hash is the
/// writer's, and the process stays under 200 MB (it used to hold the object,
/// and a copy, in memory).
#[test]
fn verify_streams_a_1_gib_artifact() {
    let ctx = TestContext::new().on_s3("huge");
    let child = spawn_store_child(&ctx, "huge", 1, &[("SWINGML_STORE_CHILD_MIB", "1024".into())])
        .wait_with_output()
        .unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    let report = ctx.path("time.txt");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(crate::common::bin("artifacts"));
    let s3 = ctx.s3.as_ref().unwrap();
    cmd.env_remove("AWS_PROFILE").arg("--artifacts");
    s3.configure(&mut cmd);
    cmd.args(["--watchlist", "wl", "verify"]);
    let verify = Run::from(cmd.output().unwrap());
    verify.assert_ok();
    assert!(verify.stderr.contains("0 problem(s), 0 orphan(s)"), "{}", verify.stderr);
    let rss_kb: u64 = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kb < 200 * 1024, "verify of 1 GiB peaked at {} MB", rss_kb / 1024);
}

/// Writers killed (SIGKILL) at random steps of the protocol on a bucket,
/// models, promotions and rollbacks: the manifest stays whole lines,
/// `verify` finds no problem, and what a kill left is only orphans.
#[test]
fn sigkill_at_random_moments_leaves_a_consistent_bucket() {
    let ctx = TestContext::new().on_s3("sigkill");
    let mut rng = crate::shared::Rng(0x5eed_0053);
    let mut points = std::collections::BTreeMap::new();
    for round in 0..30 {
        let (step, _) = kill_child_at(&ctx, &format!("round-{round}"), rng.next(), 1 + rng.below(40));
        *points.entry(step).or_insert(0) += 1;
    }
    // A pointer move is one step in a dozen: aim at it. A child run to
    // step 40 shows where its seed's first promotion commits; the same
    // seed is then killed right there.
    for _ in 0..20 {
        if points.contains_key("before_pointer") {
            break;
        }
        let seed = rng.next();
        let (_, trace) = kill_child_at(&ctx, "probe", seed, 40);
        let Some(at) = trace.lines().position(|l| l.ends_with(" before_pointer")) else {
            continue;
        };
        let (step, _) = kill_child_at(&ctx, "aimed", seed, at as u64 + 1);
        *points.entry(step).or_insert(0) += 1;
    }
    for step in [
        "after_temp_write",
        "before_manifest",
        "after_manifest",
        "before_pointer",
    ] {
        assert!(points.contains_key(step), "no kill at {step}: {points:?}");
    }
    ctx.run("artifacts", &["--watchlist", "wl", "repair"]).assert_ok();
    let verify = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    verify.assert_ok();
    assert!(!verify.stdout.contains("problem:"), "{}", verify.stdout);
    assert!(
        !verify.stdout.contains("production.json"),
        "pointer in line after repair: {}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("orphan:"),
        "no kill interrupted a write: {}",
        verify.stdout
    );
}

/// The crash points a clean run of `cmd` passes, as traced ("N name" lines).
pub(crate) fn traced(ctx: &TestContext, mut cmd: Command) -> String {
    let trace = ctx.path("trace.txt");
    let _ = std::fs::remove_file(&trace);
    Run::from(cmd.env(swingml::crashpoint::CRASH_TRACE_VAR, &trace).output().unwrap()).assert_ok();
    std::fs::read_to_string(&trace).unwrap()
}

/// The number of the first crash point called `name` in a trace.
pub(crate) fn point_number(trace: &str, name: &str) -> String {
    trace
        .lines()
        .find_map(|l| l.split_once(' ').filter(|(_, point)| *point == name))
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| panic!("no crash point {name} in the trace:\n{trace}"))
}

/// Start `cmd`, to pause at its crash point number `at`: it creates the
/// returned file there and waits until the file's `.go` twin exists.
pub(crate) fn spawn_paused(ctx: &TestContext, mut cmd: Command, at: &str, label: &str) -> (PathBuf, Child) {
    let pause = ctx.path(&format!("{label}.pause"));
    let child = cmd
        .env(swingml::crashpoint::PAUSE_AT_VAR, at)
        .env(swingml::crashpoint::PAUSE_FILE_VAR, &pause)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (pause, child)
}

pub(crate) fn wait_for_pauses(paused: &[(PathBuf, Child)], failure: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !paused.iter().all(|(pause, _)| pause.exists()) {
        assert!(std::time::Instant::now() < deadline, "{failure}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Run the store's crash child until its `n`-th crash point kills it; the
/// step it died at and its trace. The manifest is whole lines after it.
fn kill_child_at(ctx: &TestContext, label: &str, seed: u64, n: u64) -> (String, String) {
    use std::os::unix::process::ExitStatusExt;
    let trace = ctx.path(&format!("trace-{label}.txt"));
    let _ = std::fs::remove_file(&trace);
    let mut child = spawn_store_child(
        ctx,
        "crash",
        seed,
        &[
            (swingml::crashpoint::CRASH_AFTER_VAR, n.to_string()),
            (swingml::crashpoint::CRASH_TRACE_VAR, trace.display().to_string()),
        ],
    );
    assert_eq!(
        child.wait().unwrap().signal(),
        Some(9),
        "{label}: not killed at step {n}"
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let step = trace.lines().last().unwrap().split_once(' ').unwrap().1.to_string();
    assert_whole_lines(&watchlist_manifest(ctx.s3.as_ref().unwrap().prefix(), "wl"));
    (step, trace)
}

/// A job renews its lease while it runs: with a 1 s lease, a job paused for
/// 3 s still holds it (a second one is refused), and releases it at its end.
#[test]
fn a_running_job_renews_its_lease() {
    let ctx = TestContext::new().on_s3("renew");
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    let run = || {
        let mut cmd = ctx.command("ta-signals");
        cmd.args(["run", "--watchlist", "us"])
            .env(swingml::store::lease::LEASE_SECS_VAR, "1");
        cmd
    };
    let at = point_number(&traced(&ctx, run()), "job_runs.started");
    let first = spawn_paused(&ctx, run(), &at, "first");
    wait_for_pauses(std::slice::from_ref(&first), "the first job never took its lease");
    std::thread::sleep(std::time::Duration::from_secs(3));
    Run::from(run().output().unwrap()).assert_error(1, "already running: ta-signals for us");
    std::fs::write(first.0.with_extension("go"), "").unwrap();
    Run::from(first.1.wait_with_output().unwrap()).assert_ok();
    // Released at the end: rewritten as expired (only while it was ours).
    let lease = String::from_utf8(object("renew/us/.locks/ta-signals.lock").unwrap()).unwrap();
    assert!(lease.contains("expires=1970-01-01"), "released at the end: {lease}");
}

#[test]
fn a_bad_s3_location_is_a_usage_error() {
    let run = Run::from(
        Command::new(crate::common::bin("artifacts"))
            .args(["--artifacts", "s3:///no-bucket", "verify"])
            .output()
            .unwrap(),
    );
    run.assert_error(2, "no bucket name");
}
