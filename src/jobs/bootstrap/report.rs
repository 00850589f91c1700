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
        let folds: Vec<String> = c.folds.iter().map(|f| f.to_string()).collect();
        let tried: Vec<String> = c
            .ensemble
            .tried
            .iter()
            .map(|(w, r)| format!("{w} {}", pct(Some(*r))))
            .collect();
        out.push_str(&format!(
            "ensemble (chosen on folds {} before the holdout, batch weight: top-K return per date): {}: batch \
             weight {}\n",
            folds.join(", "),
            tried.join(", "),
            c.ensemble.batch_weight
        ));
        out.push_str(&format!(
            "ranking (chosen on folds {} before the holdout, top-K excess per date): probability {}, \
             expected return {}: {}\n",
            folds.join(", "),
            pct(c.probability_excess),
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

/// The backtest per window, top-K against both baselines.
fn backtest_lines(r: &BootstrapReport) -> String {
    let pct = |x: Option<f64>| x.map(|v| format!("{:+.3}%", 100.0 * v)).unwrap_or_else(|| "n/a".into());
    let num = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into());
    let mut out = format!(
        "backtest (top-{} daily, enter at the {}, exit by the label rules, book marked to market daily; \
         trade returns after costs):\n\
         {:<8} {:<9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>6} {:>6}\n",
        r.ensemble.k,
        match r.barrier.entry {
            crate::labels::Entry::NextOpen => "next open",
            crate::labels::Entry::Close => "scan close",
        },
        "window",
        "strategy",
        "trades",
        "hit%",
        "mean",
        "median",
        "trim1%",
        "per date",
        "CAGR",
        "maxDD",
        "Sharpe",
        "Sortino",
        "best1%"
    );
    let mut windows: Vec<(String, &Backtest)> = r
        .folds
        .iter()
        .filter(|f| !f.is_holdout)
        .map(|f| (format!("fold {}", f.fold), &f.backtest))
        .collect();
    if let Some(p) = &r.pooled_backtest {
        windows.push(("pooled".into(), p));
    }
    windows.push(("holdout".into(), &r.holdout_backtest));
    if let Some(l) = &r.lockbox {
        windows.push(("lockbox".into(), &l.backtest));
    }
    for (name, bt) in windows {
        for (strategy, s) in [
            ("top-K", &bt.top_k),
            ("universe", &bt.universe),
            ("rule BUY", &bt.rule_buy),
        ] {
            let t = &s.trades;
            out.push_str(&format!(
                "{:<8} {:<9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>6} {:>6}\n",
                name,
                strategy,
                t.trades,
                num(t.hit_rate.map(|h| 100.0 * h)),
                pct(t.mean_trade_return),
                pct(t.median_trade_return),
                pct(t.trimmed_mean_trade_return),
                pct(s.per_date_mean_return),
                pct(s.book.cagr),
                pct(Some(-s.book.max_drawdown)),
                num(s.book.sharpe),
                num(s.book.sortino),
                num(s.best_1pct_share_of_excess)
            ));
        }
        let e = &bt.excess;
        out.push_str(&format!(
            "{:<8} top-K − universe per date: {} (95 % CI {} .. {}, {} dates, {:.1} windows, blocks of {})\n",
            name,
            pct(e.mean),
            pct(e.ci95_low),
            pct(e.ci95_high),
            e.n,
            bt.windows,
            e.block
        ));
    }
    out
}
