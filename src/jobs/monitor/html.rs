//! `monitor_report_<ts>.html`: one self-contained page (no scripts, no
//! network) with the alerts on top and four charts drawn as inline SVG:
//! precision@K per date against the validation line, the calibration
//! curve with counts, PSI per feature with the 0.1 / 0.25 lines, and the
//! cumulative after-cost return of the top-K against all scored symbols.

use super::MonitorReport;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 48.0;

/// Text for HTML and SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart's frame: maps data to pixels.
struct Frame {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, x: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * if self.x_max > 0.0 { x / self.x_max } else { 0.5 }
    }

    fn y(&self, y: f64) -> f64 {
        let span = (self.y_max - self.y_min).max(1e-12);
        HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (y - self.y_min) / span
    }

    /// Axes, a title, y ticks and x labels (every `step`-th).
    fn axes(&self, title: &str, x_labels: &[String], y_format: &dyn Fn(f64) -> String) -> String {
        let mut out = format!(
            r##"<text x="{LEFT}" y="18" class="title">{}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" class="axis"/>"##,
            esc(title),
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM
        );
        for i in 0..=4 {
            let v = self.y_min + (self.y_max - self.y_min) * i as f64 / 4.0;
            let y = self.y(v);
            out.push_str(&format!(
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 4.0,
                y + 4.0,
                esc(&y_format(v))
            ));
        }
        let step = x_labels.len().div_ceil(8).max(1);
        for (i, label) in x_labels.iter().enumerate().step_by(step) {
            out.push_str(&format!(
                r##"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"##,
                self.x(i as f64),
                HEIGHT - BOTTOM + 16.0,
                esc(label)
            ));
        }
        out
    }

    fn hline(&self, y: f64, class: &str, label: &str) -> String {
        let py = self.y(y);
        format!(
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" class="{class}"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT,
            py - 4.0,
            esc(label)
        )
    }

    /// A polyline with dots; `None` values break nothing, they are skipped.
    fn series(&self, points: &[(f64, f64)], class: &str) -> String {
        if points.is_empty() {
            return String::new();
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", self.x(*x), self.y(*y)))
            .collect();
        let dots: String = points
            .iter()
            .map(|(x, y)| {
                format!(
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" class="{class}"/>"##,
                    self.x(*x),
                    self.y(*y)
                )
            })
            .collect();
        format!(
            r##"<polyline points="{}" class="{class} line"/>{dots}"##,
            path.join(" ")
        )
    }
}

fn svg(body: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">{body}</svg>"##
    )
}

fn no_data(title: &str, why: &str) -> String {
    svg(&format!(
        r##"<text x="{LEFT}" y="18" class="title">{}</text><text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>"##,
        esc(title),
        WIDTH / 2.0,
        HEIGHT / 2.0,
        esc(why)
    ))
}

fn precision_chart(r: &MonitorReport) -> String {
    let title = "precision@K per scan date (completed picks) against the validation figure";
    let points: Vec<(f64, f64)> = r
        .dates
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.performance.precision_at_k.map(|p| (i as f64, p)))
        .collect();
    if points.is_empty() {
        return no_data(title, "no completed top-K picks yet (horizons still pending)");
    }
    let frame = Frame {
        x_max: (r.dates.len().max(2) - 1) as f64,
        y_min: 0.0,
        y_max: 1.0,
    };
    let labels: Vec<String> = r.dates.iter().map(|d| d.date.format("%m-%d").to_string()).collect();
    let mut body = frame.axes(title, &labels, &|v| format!("{v:.2}"));
    if let Some(v) = r.validation_precision_at_k {
        body.push_str(&frame.hline(v, "reference", &format!("validation {v:.3}")));
    }
    body.push_str(&frame.series(&points, "model"));
    svg(&body)
}

fn calibration_chart(r: &MonitorReport) -> String {
    let title = "calibration: mean predicted vs realised rate per bin (counts above)";
    let bins: Vec<&crate::models::metrics::CalibrationBin> = r.calibration.iter().filter(|b| b.count > 0).collect();
    if bins.is_empty() {
        return no_data(title, "no completed predictions yet");
    }
    let frame = Frame {
        x_max: 1.0,
        y_min: 0.0,
        y_max: 1.0,
    };
    let mut body = frame.axes(title, &[], &|v| format!("{v:.2}"));
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        body.push_str(&format!(
            r##"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{v:.2}</text>"##,
            frame.x(v),
            HEIGHT - BOTTOM + 16.0
        ));
    }
    body.push_str(&format!(
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="reference"/>"##,
        frame.x(0.0),
        frame.y(0.0),
        frame.x(1.0),
        frame.y(1.0)
    ));
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter_map(|b| Some((b.mean_predicted?, b.observed_rate?)))
        .collect();
    body.push_str(&frame.series(&points, "model"));
    for b in &bins {
        if let (Some(x), Some(y)) = (b.mean_predicted, b.observed_rate) {
            body.push_str(&format!(
                r##"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
                frame.x(x),
                frame.y(y) - 7.0,
                b.count
            ));
        }
    }
    svg(&body)
}

/// Each feature's drift statistic over the threshold it is judged
/// against (1 = the threshold): PSI and KS features on one scale.
fn drift_chart(r: &MonitorReport) -> String {
    let title = "drift per feature: statistic / its threshold (calibrated, or the PSI rule of thumb)";
    if r.drift.is_empty() {
        return no_data(title, "no scored rows in the window");
    }
    // Not judged (insufficient data, no threshold): no bar, a grey label.
    let ratio = |d: &super::Drift| d.threshold.map_or(0.0, |t| d.value / t.max(1e-12));
    let n = r.drift.len();
    let top = r.drift.iter().map(ratio).fold(1.5, f64::max);
    let frame = Frame {
        x_max: n as f64,
        y_min: 0.0,
        y_max: top,
    };
    let mut body = frame.axes(title, &[], &|v| format!("{v:.1}"));
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    for (i, d) in r.drift.iter().enumerate() {
        let class = match d.status {
            super::drift::DRIFTED => "bar alert",
            super::drift::WATCH => "bar warn",
            super::drift::OK => "bar ok",
            _ => "bar na",
        };
        let (x, y) = (LEFT + slot * i as f64 + 1.0, frame.y(ratio(d)));
        body.push_str(&format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" class="{class}"><title>{}: {} {:.4}, threshold {}, {}</title></rect>"##,
            (slot - 2.0).max(1.0),
            (HEIGHT - BOTTOM - y).max(0.0),
            esc(&d.feature),
            d.statistic,
            d.value,
            d.threshold.map_or("none".to_string(), |t| format!("{t:.4}")),
            d.status
        ));
        body.push_str(&format!(
            r##"<text transform="translate({:.1},{}) rotate(60)" class="small">{}</text>"##,
            x + slot / 2.0,
            HEIGHT - BOTTOM + 4.0,
            esc(&d.feature.chars().take(14).collect::<String>())
        ));
    }
    body.push_str(&frame.hline(1.0, "alertline", "threshold"));
    svg(&body)
}

fn returns_chart(r: &MonitorReport) -> String {
    let title = "cumulative mean after-cost return per completed scan date: top-K vs all scored";
    let mut top = Vec::new();
    let mut all = Vec::new();
    let (mut t, mut a) = (0.0, 0.0);
    let mut labels = Vec::new();
    for d in &r.dates {
        if let (Some(x), Some(y)) = (d.performance.top_k_mean_return, d.performance.all_mean_return) {
            t += x;
            a += y;
            top.push((top.len() as f64, t));
            all.push((all.len() as f64, a));
            labels.push(d.date.format("%m-%d").to_string());
        }
    }
    if top.is_empty() {
        return no_data(title, "no completed scan date yet");
    }
    let values = top.iter().chain(&all).map(|p| p.1);
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let frame = Frame {
        x_max: (top.len().max(2) - 1) as f64,
        y_min: lo - pad,
        y_max: hi + pad,
    };
    let mut body = frame.axes(title, &labels, &|v| format!("{:+.1}%", 100.0 * v));
    body.push_str(&frame.hline(0.0, "reference", ""));
    body.push_str(&frame.series(&all, "universe"));
    body.push_str(&frame.series(&top, "model"));
    body.push_str(&format!(
        r##"<text x="{}" y="{}" class="legend model-text" text-anchor="end">— top-K</text><text x="{}" y="{}" class="legend universe-text" text-anchor="end">— all scored</text>"##,
        WIDTH - RIGHT - 90.0,
        HEIGHT - 8.0,
        WIDTH - RIGHT,
        HEIGHT - 8.0
    ));
    svg(&body)
}

/// The whole page.
pub fn render(r: &MonitorReport) -> String {
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
    let pct = |x: Option<f64>| {
        x.map(|v| format!("{:+.3} %", 100.0 * v))
            .unwrap_or_else(|| "n/a".into())
    };
    let mut alerts = String::new();
    if r.alerts.is_empty() {
        alerts.push_str("<p class=\"ok\">No alerts.</p>");
    } else {
        alerts.push_str("<table><tr><th>severity</th><th>code</th><th>message</th></tr>");
        for a in &r.alerts {
            alerts.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.severity,
                a.severity,
                esc(a.code),
                esc(&a.message)
            ));
        }
        alerts.push_str("</table>");
    }
    for n in &r.notes {
        alerts.push_str(&format!("<p class=\"note\">{}</p>", esc(n)));
    }
    let p = &r.pooled;
    let figures = format!(
        "<table><tr><th>predictions</th><td>{} on {} date(s): {} completed, {} pending</td></tr>\
         <tr><th>precision@K</th><td>{} (95 % CI {}); validation {}</td></tr>\
         <tr><th>top-K hit rate</th><td>{}</td></tr>\
         <tr><th>AUC / Brier / log loss</th><td>{} / {} / {}</td></tr>\
         <tr><th>mean after-cost return</th><td>top-K {}, all scored {}, rule BUY {}</td></tr></table>",
        p.scored,
        r.dates.len(),
        p.completed,
        p.pending,
        opt(p.precision_at_k),
        p.precision_at_k_ci95
            .map(|(a, b)| format!("{a:.3} … {b:.3}"))
            .unwrap_or_else(|| "n/a".into()),
        opt(r.validation_precision_at_k),
        opt(p.top_k_hit_rate),
        opt(p.auc),
        opt(p.brier),
        opt(p.log_loss),
        pct(p.top_k_mean_return),
        pct(p.all_mean_return),
        pct(p.rule_buy_mean_return)
    );
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>swingml monitor: {wl} as of {as_of}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; max-width: 720px; }}
h1 {{ font-size: 20px; }} .status {{ padding: 2px 8px; border-radius: 4px; color: #fff; }}
.status.ok {{ background: #2e7d32; }} .status.warn {{ background: #ef6c00; }} .status.alerts {{ background: #c62828; }}
table {{ border-collapse: collapse; margin: 8px 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }}
tr.alert td {{ background: #ffebee; }} tr.warn td {{ background: #fff3e0; }} .note {{ color: #555; font-size: 13px; }}
svg {{ display: block; margin: 16px 0; background: #fafafa; }}
.title {{ font-size: 13px; font-weight: bold; }} .tick {{ font-size: 10px; fill: #444; }} .small {{ font-size: 8px; fill: #444; }}
.axis {{ stroke: #333; }} .grid {{ stroke: #e0e0e0; }} .reference {{ stroke: #888; stroke-dasharray: 4 3; }}
.warnline {{ stroke: #ef6c00; stroke-dasharray: 4 3; }} .alertline {{ stroke: #c62828; stroke-dasharray: 4 3; }}
.line {{ fill: none; stroke-width: 2; }} polyline.model {{ stroke: #1565c0; }} circle.model {{ fill: #1565c0; }}
polyline.universe {{ stroke: #9e9e9e; }} circle.universe {{ fill: #9e9e9e; }}
.model-text {{ fill: #1565c0; font-size: 12px; }} .universe-text {{ fill: #757575; font-size: 12px; }}
.bar.ok {{ fill: #90caf9; }} .bar.warn {{ fill: #ffb74d; }} .bar.alert {{ fill: #e57373; }} .bar.na {{ fill: #e0e0e0; }}
</style></head><body>
<h1>swingml monitor — {wl} as of {as_of} <span class="status {status}">{status}</span></h1>
<h2>Alerts</h2>{alerts}
<h2>Realised performance</h2>{figures}
{precision}{calibration}<h2>Drift</h2><p class="note">{drift_reason}</p>{psi}{returns}
<p class="note">Run {run}. Window: {window}.</p>
</body></html>
"##,
        wl = esc(&r.watchlist),
        as_of = r.as_of,
        status = r.status,
        alerts = alerts,
        figures = figures,
        precision = precision_chart(r),
        calibration = calibration_chart(r),
        psi = drift_chart(r),
        drift_reason = esc(&r.drift_check.reason),
        returns = returns_chart(r),
        run = esc(&r.run_id),
        window = r
            .window
            .first()
            .zip(r.window.last())
            .map(|(a, b)| format!("{a} … {b}"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn frames_map_data_into_the_plot_area() {
        let f = Frame {
            x_max: 10.0,
            y_min: 0.0,
            y_max: 1.0,
        };
        assert_eq!(f.x(0.0), LEFT);
        assert_eq!(f.x(10.0), WIDTH - RIGHT);
        assert_eq!(f.y(0.0), HEIGHT - BOTTOM);
        assert_eq!(f.y(1.0), TOP);
    }
}
