//! Alerts to a Slack-compatible webhook: `{"text": …}`, a timeout and one
//! retry; the URL's secret path is never logged.

use super::MonitorReport;

/// Scheme and host of a URL: webhook paths carry the secret.
pub(super) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// POST `{"text": …}` — the alert lines and the report's path — to a
/// Slack-compatible webhook, with a timeout.
pub(super) async fn notify(url: &str, report: &MonitorReport) -> anyhow::Result<()> {
    let mut lines = vec![format!(
        "swingml monitor {} as of {}: {} alert(s)",
        report.watchlist,
        report.as_of,
        report.alerts.iter().filter(|a| a.severity == "alert").count()
    )];
    lines.extend(
        report
            .alerts
            .iter()
            .filter(|a| a.severity == "alert")
            .map(|a| format!("• {}: {}", a.code, a.message)),
    );
    if let Some(path) = report.html_path.as_ref().or(report.report_path.as_ref()) {
        lines.push(format!("report: {path}"));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let body = serde_json::json!({ "text": lines.join("\n") });
    // One retry after a short pause: a webhook endpoint that blips once
    // should not cost the night's alert.
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        match client.post(url).json(&body).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = Some(anyhow::anyhow!("the webhook answered {}", response.status())),
            Err(err) => last = Some(anyhow::anyhow!("{}", err.without_url())),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
}
