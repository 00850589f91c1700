//! The report by e-mail (`[monitor.email]`): a plain-text summary — the
//! terminal's — with the HTML report attached and its store location, over
//! SMTP with STARTTLS, TLS or (on a local relay) neither; the credentials
//! from the environment.

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
    match (std::env::var(SMTP_USERNAME_VAR), std::env::var(SMTP_PASSWORD_VAR)) {
        (Ok(user), Ok(password)) => builder = builder.credentials(Credentials::new(user, password)),
        (Err(_), Err(_)) => {}
        _ => anyhow::bail!("set both {SMTP_USERNAME_VAR} and {SMTP_PASSWORD_VAR}, or neither"),
    }
    builder.build().send(message).await?;
    Ok(())
}
