//! What a bootstrap run prints: the summary log line and the metrics,
//! backtest and decision table on stdout.

use std::time::Instant;

use super::BootstrapReport;
use crate::models::backtest::Backtest;

pub fn summary_line(r: &BootstrapReport, started: Instant) -> String {
    format!(
        "bootstrap: {} rows of {} symbols (train {}, validation {} from {}), ensemble AUC {} precision@{} {:.4}; {}; in {:.1} s",
        r.rows,
        r.symbols,
        r.train_rows,
        r.valid_rows,
        r.first_valid_date,
        r.ensemble
            .auc
            .map(|a| format!("{a:.4}"))
            .unwrap_or_else(|| "n/a".into()),
        r.ensemble.k,
        r.ensemble.precision_at_k,
        r.decision,
        started.elapsed().as_secs_f64()
    )
}

/// The metrics table printed to stdout.
pub fn table(r: &BootstrapReport) -> String {
    let mut out = format!("labels: {}\n", describe_barrier(&r.barrier));
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
    out.push_str(&format!(
        "validation: {} rows, {} dates from {} (train {} rows; {} walk-forward folds)\n",
        r.valid_rows,
        r.ensemble.dates,
        r.first_valid_date,
        r.train_rows,
        r.folds.len()
    ));
    out.push_str(&format!(
        "{:<10} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>9}   (returns: mean per trade, after costs)\n",
        "model", "AUC", "F1@0.5", "bestF1", "logloss", "Brier", "P@K", "rankIC", "topK ret", "all ret"
    ));
    for (name, e) in [("online", &r.online), ("batch", &r.batch), ("ensemble", &r.ensemble)] {
        out.push_str(&format!(
            "{:<10} {:>7} {:>7.4} {:>8.4} {:>8.4} {:>7.4} {:>7.4} {:>7} {:>8.4} {:>9.4}\n",
            name,
            opt(e.auc),
            e.f1_at_0_5,
            e.best_f1,
            e.log_loss,
            e.brier,
            e.precision_at_k,
            opt(e.rank_ic),
            e.top_k_mean_return,
            e.universe_mean_return
        ));
    }
    out.push_str(&format!(
        "baselines: base rate {:.4} (per date {:.4}), rule BUY precision {} (per date {}, {} rows on {} dates)\n",
        r.baselines.base_rate,
        r.baselines.base_rate_per_date,
        opt(r.baselines.rule_buy_precision),
        opt(r.baselines.rule_buy_precision_per_date),
        r.baselines.rule_buy_rows,
        r.baselines.rule_buy_dates
    ));
    for f in &r.folds {
        out.push_str(&format!(
            "fold {}: train {:>7} valid {:>6} from {}  AUC online {} batch {} ensemble {}  P@K {:.4}  rank IC {}\n",
            f.fold,
            f.train_rows,
            f.valid_rows,
            f.first_valid_date,
            opt(f.online.auc),
            opt(f.batch.auc),
            opt(f.ensemble.auc),
            f.ensemble.precision_at_k,
            opt(f.ensemble.rank_ic)
        ));
    }
    out.push_str(&backtest_lines(r));
    if let Some(c) = &r.ranking {
        let pct = |x: Option<f64>| x.map(|v| format!("{:+.3}%", 100.0 * v)).unwrap_or_else(|| "n/a".into());
        out.push_str(&format!(
            "ranking (pooled walk-forward, top-K mean trade / excess per date): probability {} / {}, \
             expected return {} / {}: {}\n",
            pct(c.probability_top_k_mean_return),
            pct(c.probability_excess),
            pct(c.expected_return_top_k_mean_return),
            pct(c.expected_return_excess),
            c.chosen
        ));
    }
    out.push_str(&format!("{}\n", r.decision));
    out
}

/// The label rules in words.
pub fn describe_barrier(b: &crate::labels::Barrier) -> String {
    let barriers = match b.sizing {
        crate::labels::BarrierSizing::Fixed => format!("+{}% / -{}%", 100.0 * b.target, 100.0 * b.stop),
        crate::labels::BarrierSizing::Atr { k_target, k_stop } => format!("+{k_target}·ATR14 / -{k_stop}·ATR14"),
    };
    format!(
        "entry {}, barriers {barriers} from the entry, horizon {} bars, {} bp per side",
        b.entry.as_str(),
        b.horizon,
        b.cost_bps_per_side
    )
}

/// The backtest per fold and pooled, top-K against both baselines.
fn backtest_lines(r: &BootstrapReport) -> String {
    let pct = |x: Option<f64>| x.map(|v| format!("{:+.3}%", 100.0 * v)).unwrap_or_else(|| "n/a".into());
    let num = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into());
    let mut out = format!(
        "backtest (top-{} daily, enter next open, exit by the label rules, {} bp per side):\n\
         {:<9} {:<9} {:>6} {:>7} {:>9} {:>9} {:>6} {:>9} {:>7} {:>6} {:>7}\n",
        r.ensemble.k,
        r.barrier.cost_bps_per_side,
        "window",
        "strategy",
        "trades",
        "hit",
        "mean",
        "median",
        "PF",
        "total",
        "maxDD",
        "Sharpe",
        "Sortino"
    );
    let mut windows: Vec<(String, &Backtest)> = r
        .folds
        .iter()
        .map(|f| (format!("fold {}", f.fold), &f.backtest))
        .collect();
    if let Some(p) = &r.pooled_backtest {
        windows.push(("pooled".into(), p));
    }
    for (name, bt) in windows {
        for (strategy, s) in [
            ("top-K", &bt.top_k),
            ("universe", &bt.universe),
            ("rule BUY", &bt.rule_buy),
        ] {
            out.push_str(&format!(
                "{:<9} {:<9} {:>6} {:>7} {:>9} {:>9} {:>6} {:>9} {:>7} {:>6} {:>7}\n",
                name,
                strategy,
                s.trades,
                num(s.hit_rate.map(|h| 100.0 * h)),
                pct(s.mean_trade_return),
                pct(s.median_trade_return),
                num(s.profit_factor),
                pct(Some(s.total_return)),
                pct(Some(-s.max_drawdown)),
                num(s.sharpe),
                num(s.sortino)
            ));
        }
        let e = &bt.excess;
        out.push_str(&format!(
            "{:<9} top-K − universe per date: {} (95 % block-bootstrap CI {} .. {}, {} dates)\n",
            name,
            pct(e.mean),
            pct(e.ci95_low),
            pct(e.ci95_high),
            e.days
        ));
    }
    out
}
