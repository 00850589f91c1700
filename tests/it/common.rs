//! TestContext: a temp folder with its own database and artifact root, and
//! helpers to run the real binaries in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestContext {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    /// The artifact store on the tests' S3 server instead of the folder.
    pub s3: Option<crate::s3::S3Store>,
}

/// What a binary run gave back.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The lines a user reads on stderr for a failure: exactly one `error:` line.
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "expected one error line, stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        errors[0]
    }

    /// The run failed with `code` and its one error line says `text`.
    #[track_caller]
    pub fn assert_error(&self, code: i32, text: &str) {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        let line = self.error_line();
        assert!(line.contains(text), "expected {text:?} in: {line}");
    }

    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A path inside the repository, as text (for a script's arguments).
pub fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

/// Run `python3 ARGS` and parse its stdout as JSON.
pub fn python_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new("python3").args(args).output().expect("python3");
    assert!(
        output.status.success(),
        "python failed (scripts/setup.sh installs pyarrow and pandas): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A synthetic universe (bench/synth.py SYMBOLS YEARS SEED PLANTED)
/// written into the context's folder, imported into `watchlist`.
pub fn import_synthetic(ctx: &TestContext, watchlist: &str, symbols: &str, years: &str, seed: &str, planted: &str) {
    import_synthetic_args(ctx, watchlist, &[symbols, years, seed, planted]);
}

/// `bench/synth.py` with these arguments (SYMBOLS YEARS SEED [PLANTED
/// [SHIFTED]]), imported into `watchlist`; its CSV stays at `universe.csv`.
pub fn import_synthetic_args(ctx: &TestContext, watchlist: &str, args: &[&str]) {
    let csv = ctx.path("universe.csv");
    let output = Command::new("python3")
        .arg(repo("bench/synth.py"))
        .args(args)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(&csv, output.stdout).unwrap();
    ctx.import(&[&csv], watchlist).assert_ok();
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

pub fn bin(name: &str) -> &'static str {
    match name {
        "ta-signals" => env!("CARGO_BIN_EXE_ta-signals"),
        "artifacts" => env!("CARGO_BIN_EXE_artifacts"),
        "bootstrap" => env!("CARGO_BIN_EXE_bootstrap"),
        "score" => env!("CARGO_BIN_EXE_score"),
        "monitor" => env!("CARGO_BIN_EXE_monitor"),
        "incremental-update" => env!("CARGO_BIN_EXE_incremental-update"),
        other => panic!("unknown binary {other}"),
    }
}

impl TestContext {
    pub fn new() -> TestContext {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("swingml.db").display());
        TestContext {
            dir,
            database_url,
            s3: None,
        }
    }

    pub fn with_database(database_url: String) -> TestContext {
        TestContext {
            dir: tempfile::tempdir().unwrap(),
            database_url,
            s3: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn artifacts(&self) -> PathBuf {
        self.path("artifacts")
    }

    /// A command for binary `name`, run in the temp folder against this
    /// context's database and artifact root.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        cmd.current_dir(self.dir.path())
            .env("DATABASE_URL", &self.database_url)
            // A fixed Monday evening after both exchanges' close: default
            // as-of dates and "is today a session" do not depend on the
            // day the tests run.
            .env("SWINGML_NOW", "2024-06-03T23:00:00Z")
            .env_remove("RUST_LOG")
            .arg("--artifacts");
        match &self.s3 {
            Some(s3) => s3.configure(&mut cmd),
            None => {
                cmd.arg(self.artifacts());
            }
        }
        cmd
    }

    pub fn run(&self, name: &str, args: &[&str]) -> Run {
        Run::from(self.command(name).args(args).output().unwrap())
    }

    pub fn import(&self, paths: &[&Path], watchlist: &str) -> Run {
        let mut cmd = self.command("ta-signals");
        cmd.args(["import", "--watchlist", watchlist]).args(paths);
        Run::from(cmd.output().unwrap())
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Open the database directly (for checks the binaries do not print).
    pub fn db(&self) -> swingml::db::Db {
        block_on(swingml::db::Db::connect(&self.database_url)).unwrap()
    }
}

/// One runtime for the whole test binary: a database pool must be used on
/// the runtime that created it (MySQL pools keep tasks on it).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime")
        })
        .block_on(future)
}

/// The count in a summary line such as "... 7560 inserted, ...".
pub fn count_in(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("import:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let before = line.split(&format!(" {label}")).next().unwrap();
    before
        .rsplit([' ', ','])
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// The rows of the newest quarantine report of a watchlist: (rule, severity, symbol, date).
pub fn quarantine_rows(ctx: &TestContext, watchlist: &str) -> Vec<(String, String, String, String)> {
    let dir = ctx.artifacts().join(watchlist);
    let mut reports: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("quarantine_") && n.ends_with(".csv")
        })
        .collect();
    reports.sort();
    let path = reports.last().expect("a quarantine report");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[4].to_string(), r[5].to_string(), r[2].to_string(), r[3].to_string())
        })
        .collect()
}

/// A copy of a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
