//! `[monitor.email]`: the report mailed to a local SMTP server (aiosmtpd,
//! `tests/smtp_server.py`) in plain SMTP with a login and with STARTTLS on a
//! certificate of a test CA; the message parsed back with Python's `email`
//! package; an unreachable relay is one warning line.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bootstrap::artifact;
use crate::common::TestContext;
use crate::monitor::{DECEMBER, replay};
use crate::s3::start_python;

fn email_config(ctx: &TestContext, port: u16, security: &str, extra: &str) {
    std::fs::create_dir_all(ctx.path("config")).unwrap();
    ctx.write(
        "config/swingml.toml",
        &format!(
            "[monitor.email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\n\
             from = \"swingml <swingml@example.test>\"\n\
             to = [\"ops@example.test\", \"Quant Desk <desk@example.test>\"]\n{extra}"
        ),
    );
}

/// The first message the server wrote into `dir`, waiting up to 20 s.
fn received(dir: &Path) -> serde_json::Value {
    let path = dir.join("message1.json");
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no message arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Subject, header recipients, the text part and the attachment (name,
/// whether its bytes equal `html`), parsed by Python's `email` package.
fn parsed(message: &serde_json::Value, html: &Path) -> serde_json::Value {
    let script = r#"
import email, json, sys
from email import policy
m = email.message_from_string(json.load(open(sys.argv[1]))["data"], policy=policy.default)
html = open(sys.argv[2], "rb").read()
text = m.get_body(preferencelist=("plain",)).get_content()
files = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in m.iter_attachments()]
print(json.dumps({"subject": m["subject"], "from": m["from"], "to": [str(a) for a in m["to"].addresses],
    "text": text, "attachments": [[n, t, b == html] for n, t, b in files]}))
"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message.to_string()).unwrap();
    crate::common::python_json(&["-c", script, file.path().to_str().unwrap(), html.to_str().unwrap()])
}

#[test]
fn the_report_is_mailed_with_its_html_attached_to_every_recipient() {
    let ctx = replay(&DECEMBER[8..]);
    let inbox = tempfile::tempdir().unwrap();
    let (port, _server) = start_python(
        &[
            "smtp_server.py",
            inbox.path().to_str().unwrap(),
            "--user",
            "alice",
            "s3cret",
        ],
        "the SMTP server",
    );
    email_config(&ctx, port, "none", "");
    // The newest candle is years old without --as-of: status `alerts`.
    let run = ctx
        .command("monitor")
        .args(["--watchlist", "us"])
        .env("SWINGML_SMTP_USERNAME", "alice")
        .env("SWINGML_SMTP_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!stderr.contains("s3cret"), "the password is never logged: {stderr}");
    let message = received(inbox.path());
    assert_eq!(message["login"], "alice");
    assert_eq!(message["encrypted"], false);
    assert_eq!(message["mail_from"], "swingml@example.test");
    assert_eq!(
        message["rcpt_tos"],
        serde_json::json!(["ops@example.test", "desk@example.test"])
    );
    let html = artifact(&ctx, "us", "monitor_report_")
        .into_iter()
        .rfind(|p| p.extension().is_some_and(|e| e == "html"))
        .unwrap();
    let m = parsed(&message, &html);
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .starts_with("swingml monitor us as of 2020-12-31: alerts"),
        "{m}"
    );
    assert_eq!(m["to"][1], "Quant Desk <desk@example.test>");
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("alert data_stale: the newest candle is 2020-12-31"),
        "{text}"
    );
    assert!(text.contains(&format!("report: {}", html.display())), "{text}");
    let name = html.file_name().unwrap().to_str().unwrap();
    assert_eq!(m["attachments"], serde_json::json!([[name, "text/html", true]]), "{m}");
}

#[test]
fn starttls_and_tls_with_a_private_ca_encrypt_before_the_login() {
    let ctx = replay(&DECEMBER[8..]);
    let certs = tempfile::tempdir().unwrap();
    let sh = r#"
set -e
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=swingml-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout key.pem -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile leaf.ext 2>/dev/null
"#;
    let made = std::process::Command::new("bash")
        .args(["-c", sh, "certs", certs.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success(), "openssl made the test CA and certificate");
    let (cert, key, ca) = (
        certs.path().join("cert.pem"),
        certs.path().join("key.pem"),
        certs.path().join("ca.pem"),
    );
    let tls_server = |inbox: &Path, mode: &str, login: &[&str]| {
        let mut args = vec!["smtp_server.py", inbox.to_str().unwrap()];
        args.extend(login);
        args.extend([mode, cert.to_str().unwrap(), key.to_str().unwrap()]);
        start_python(&args, "the SMTP server")
    };
    let trusting = format!("send = \"always\"\nca_file = {:?}\n", ca.display().to_string());
    let inbox = tempfile::tempdir().unwrap();
    let (port, _server) = tls_server(inbox.path(), "--starttls", &["--user", "alice", "s3cret"]);
    email_config(&ctx, port, "starttls", &trusting);
    // The monitor as of the last replayed day (status warn: mailed only
    // because send = "always"), logged in as alice.
    let monitor_as_alice = || {
        ctx.command("monitor")
            .args(["--watchlist", "us", "--as-of", "2020-12-31"])
            .env("SWINGML_SMTP_USERNAME", "alice")
            .env("SWINGML_SMTP_PASSWORD", "s3cret")
            .output()
            .unwrap()
    };
    let run = monitor_as_alice();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let message = received(inbox.path());
    assert_eq!(
        (&message["encrypted"], &message["login"]),
        (&serde_json::json!(true), &serde_json::json!("alice"))
    );
    // Without the CA the relay's certificate is not trusted: nothing is
    // sent, one warning, the run still succeeds.
    email_config(&ctx, port, "starttls", "send = \"always\"\n");
    let run = monitor_as_alice();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(stderr.matches("could not e-mail the report").count(), 1, "{stderr}");
    assert!(!inbox.path().join("message2.json").exists());

    // SMTPS: TLS from the first byte.
    let smtps_inbox = tempfile::tempdir().unwrap();
    let (port, _smtps) = tls_server(smtps_inbox.path(), "--tls", &[]);
    email_config(&ctx, port, "tls", &trusting);
    ctx.run("monitor", &["--watchlist", "us", "--as-of", "2020-12-31"])
        .assert_ok();
    assert_eq!(received(smtps_inbox.path())["encrypted"], true);
}

#[test]
fn an_unreachable_relay_is_one_warning_and_only_alerts_are_mailed_by_default() {
    let ctx = replay(&DECEMBER[8..]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    email_config(&ctx, closed, "none", "");
    let before = artifact(&ctx, "us", "monitor_report_").len();
    let run = ctx.run("monitor", &["--watchlist", "us"]);
    run.assert_ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("e-mail")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains(&format!("could not e-mail the report via 127.0.0.1:{closed}")),
        "{}",
        warnings[0]
    );
    assert_eq!(
        artifact(&ctx, "us", "monitor_report_").len(),
        before + 2,
        "JSON and HTML written"
    );

    // A run whose status is not `alerts` mails nothing with the default
    // `send = "alerts"` (no connection attempt, no warning).
    let run = ctx.run(
        "monitor",
        &["--watchlist", "us", "--as-of", "2020-12-31", "--format", "json"],
    );
    run.assert_ok();
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_ne!(status["status"], "alerts");
    assert!(!run.stderr.contains("e-mail"), "{}", run.stderr);

    // A configuration without recipients is one clear line, exit 2.
    std::fs::write(
        ctx.path("config/swingml.toml"),
        "[monitor.email]\nhost = \"127.0.0.1\"\nfrom = \"swingml@example.test\"\nto = []\n",
    )
    .unwrap();
    let run = ctx.run("monitor", &["--watchlist", "us"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("monitor.email.to") && run.stderr.contains("at least one recipient"),
        "{}",
        run.stderr
    );
}
