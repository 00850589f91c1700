//! Credentials never printed: a database password with `/`, `@` and `:`
//! in it, unencoded, on every error path a user meets.

use crate::common::{TestContext, bin};

#[test]
fn a_password_with_slash_at_and_colon_is_never_printed() {
    let ctx = TestContext::new();
    let password = "s3cr/et@pa:ss99";
    let pieces = ["s3cr", "et@pa", "ss99", password];
    let urls = [
        format!("mysql://bob:{password}@127.0.0.1:1/swingml"),
        format!("mariadb://bob:{password}@127.0.0.1:1/swingml"),
        format!("postgres://bob:{password}@127.0.0.1:1/swingml"),
        format!("mysql://bob:{password}@/nohost"),
    ];
    for url in &urls {
        for (name, args) in [
            ("ta-signals", vec!["run"]),
            ("score", vec!["--watchlist", "us"]),
            ("bootstrap", vec!["--watchlist", "us"]),
            ("monitor", vec!["--watchlist", "us"]),
        ] {
            // By environment and by flag.
            for by_flag in [false, true] {
                let mut cmd = std::process::Command::new(bin(name));
                cmd.current_dir(ctx.dir.path())
                    .args(&args)
                    .arg("--artifacts")
                    .arg(ctx.artifacts());
                if by_flag {
                    cmd.env_remove("DATABASE_URL").arg("--database-url").arg(url);
                } else {
                    cmd.env("DATABASE_URL", url);
                }
                let out = cmd.output().unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_ne!(out.status.code(), Some(0), "{name} {url}: {text}");
                for piece in pieces {
                    assert!(!text.contains(piece), "{name} with {url} printed {piece:?}:\n{text}");
                }
                assert!(text.contains("error:"), "{name}: one error line: {text}");
            }
        }
    }
}
