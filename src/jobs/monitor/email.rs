//! The report by e-mail (`[monitor.email]`): a plain-text summary — the
//! terminal's — with the HTML report attached and its store location, over
//! SMTP with STARTTLS, TLS or (on a local relay) neither; the credentials
//! from the environment, and never sent in clear beyond this machine.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MonitorReport, ReportFormat, render};
use crate::settings::{EmailConfig, EmailSecurity, SMTP_PASSWORD_VAR, SMTP_USERNAME_VAR, SendEmail};

/// Whether this run's report is mailed.
pub(super) fn wanted(cfg: &EmailConfig, report: &MonitorReport) -> bool {
    cfg.send == SendEmail::Always || report.status == "alerts"
}

/// The message: summary text, and the HTML page as an attachment.
pub(super) fn message(cfg: &EmailConfig, report: &MonitorReport, html: &str) -> anyhow::Result<Message> {
    let alerts = report.alerts.iter().filter(|a| a.severity == "alert").count();
    let subject = format!(
        "swingml monitor {} as of {}: {} ({alerts} alert(s))",
        report.watchlist, report.as_of, report.status
    );
    let mut text = render(report, ReportFormat::Text)?;
    for (what, path) in [("report", &report.html_path), ("figures", &report.report_path)] {
        if let Some(path) = path {
            text.push_str(&format!("{what}: {path}\n"));
        }
    }
    let file_name = report
        .html_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or("monitor_report.html")
        .to_string();
    let mut builder = Message::builder()
        .from(cfg.from.parse::<Mailbox>().context("monitor.email.from")?)
        .subject(subject);
    for to in &cfg.to {
        builder = builder.to(to.parse::<Mailbox>().context("monitor.email.to")?);
    }
    let body = MultiPart::mixed()
        .singlepart(SinglePart::plain(text))
        // As bytes (base64): the attachment is the stored file byte for
        // byte, not a text part whose line ends SMTP would rewrite.
        .singlepart(Attachment::new(file_name).body(html.as_bytes().to_vec(), ContentType::TEXT_HTML));
    Ok(builder.multipart(body)?)
}

/// A relay on this machine: a password sent to it in clear never leaves it.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Send `message` through the configured relay.
pub(super) async fn send(cfg: &EmailConfig, message: Message) -> anyhow::Result<()> {
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut params = TlsParameters::builder(cfg.host.clone());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            params = params.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        Ok(params.build()?)
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str());
    let mut builder = match cfg.security {
        EmailSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
        EmailSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        EmailSecurity::None => builder.tls(Tls::None),
    }
    .port(cfg.port())
    .timeout(Some(Duration::from_secs(cfg.timeout_secs)));
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (var(SMTP_USERNAME_VAR), var(SMTP_PASSWORD_VAR)) {
        (Some(user), Some(password)) => {
            if cfg.security == EmailSecurity::None && !is_loopback(&cfg.host) {
                anyhow::bail!(
                    "refusing to send the SMTP password unencrypted to {}: set security = \"starttls\" or \"tls\"",
                    cfg.host
                );
            }
            builder = builder.credentials(Credentials::new(user, password));
        }
        (None, None) => {}
        _ => anyhow::bail!("set both {SMTP_USERNAME_VAR} and {SMTP_PASSWORD_VAR}, or neither"),
    }
    builder.build().send(message).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_relay_on_this_machine_gets_a_password_in_clear() {
        for host in ["127.0.0.1", "::1", "localhost", "LOCALHOST", "127.0.0.2"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.com", "10.0.0.1", "192.168.1.1", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
