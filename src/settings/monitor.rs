//! `[monitor]`: the night watch's thresholds, and `[monitor.email]`.

use serde::Deserialize;

use crate::error::UsageError;

/// Environment variables of the SMTP credentials (never in a file).
pub const SMTP_USERNAME_VAR: &str = "SWINGML_SMTP_USERNAME";
pub const SMTP_PASSWORD_VAR: &str = "SWINGML_SMTP_PASSWORD";

/// `[monitor]`: thresholds of the night watch.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// The PSI rule of thumb, used only when the live feature config has
    /// no thresholds calibrated on its reference (older configs, too short
    /// a reference): at or over `psi_warn` a warning, `psi_alert` drift.
    pub psi_warn: f64,
    pub psi_alert: f64,
    /// Fewer scored rows in the window than this: the PSI features' drift
    /// is "insufficient data", not judged (10 bins need ~10 rows each).
    pub min_drift_rows: usize,
    /// "Retrain recommended" when this many features (or `p_score`)
    /// drifted in each of `retrain_after_runs` consecutive runs (runs on
    /// distinct as-of dates).
    pub retrain_after_drifted_features: usize,
    pub retrain_after_runs: usize,
    /// The precision check needs this many dates and top-K picks with
    /// completed horizons; with fewer it is a note, never an alarm.
    pub min_completed_dates: usize,
    pub min_completed_picks: usize,
    /// Calendar days between the live models' training as-of and the run's.
    pub max_model_age_days: i64,
    /// Weekday sessions the newest candle may lag behind today.
    pub max_data_lag_sessions: i64,
    /// Slack-compatible webhook for alerts (env SWINGML_WEBHOOK_URL and
    /// `--notify-url` win). It carries a secret: never logged in full, never
    /// written into a report.
    #[serde(skip_serializing)]
    pub webhook_url: Option<String>,
    /// `[monitor.email]`: the report by e-mail.
    pub email: Option<EmailConfig>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            psi_warn: 0.1,
            psi_alert: 0.25,
            min_drift_rows: 100,
            retrain_after_drifted_features: 3,
            retrain_after_runs: 2,
            min_completed_dates: 5,
            min_completed_picks: 30,
            max_model_age_days: 45,
            max_data_lag_sessions: 2,
            webhook_url: None,
            email: None,
        }
    }
}

impl MonitorConfig {
    pub(super) fn validate(&self) -> Result<(), UsageError> {
        let invalid = |name: &'static str, message: String| UsageError::InvalidSetting { name, message };
        for (name, v) in [
            ("monitor.psi_warn", self.psi_warn),
            ("monitor.psi_alert", self.psi_alert),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(name, format!("must be a positive number, got {v}")));
            }
        }
        if self.retrain_after_runs == 0 {
            return Err(invalid("monitor.retrain_after_runs", "must be at least 1".into()));
        }
        if let Some(email) = &self.email {
            email.validate()?;
        }
        Ok(())
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: a relay on the same host or network only.
    None,
}

/// Which runs send the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendEmail {
    /// Only runs whose status is `alerts`.
    Alerts,
    /// Every run (a nightly summary).
    Always,
}

/// `[monitor.email]`: SMTP relay, sender and recipients. The credentials
/// come from the environment (`SWINGML_SMTP_USERNAME`,
/// `SWINGML_SMTP_PASSWORD`), never from the file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default: 587 with STARTTLS, 465 with TLS, 25 without.
    pub port: Option<u16>,
    #[serde(default = "default_security")]
    pub security: EmailSecurity,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "default_send")]
    pub send: SendEmail,
    /// A PEM file of extra root certificates (a relay with a private CA).
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_security() -> EmailSecurity {
    EmailSecurity::Starttls
}

fn default_send() -> SendEmail {
    SendEmail::Alerts
}

fn default_timeout() -> u64 {
    20
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            EmailSecurity::Starttls => 587,
            EmailSecurity::Tls => 465,
            EmailSecurity::None => 25,
        })
    }

    fn validate(&self) -> Result<(), UsageError> {
        let invalid = |name: &'static str, message: String| UsageError::InvalidSetting { name, message };
        if self.host.trim().is_empty() {
            return Err(invalid("monitor.email.host", "must name the SMTP relay".into()));
        }
        if self.to.is_empty() {
            return Err(invalid("monitor.email.to", "needs at least one recipient".into()));
        }
        for (name, address) in
            std::iter::once(("monitor.email.from", &self.from)).chain(self.to.iter().map(|a| ("monitor.email.to", a)))
        {
            address
                .parse::<lettre::message::Mailbox>()
                .map_err(|err| invalid(name, format!("{address:?} is not an e-mail address: {err}")))?;
        }
        if self.timeout_secs == 0 {
            return Err(invalid("monitor.email.timeout_secs", "must be at least 1".into()));
        }
        // ca_file is read when a message is sent (a missing file is then
        // the run's one warning), not here: every job loads this section.
        Ok(())
    }
}
