//! A daily top-K backtest of scored validation rows: what following the
//! model would have earned after costs, beside two baselines (buy every
//! scored symbol; buy the rule-based `ta_recommendation = BUY` list).
//!
//! The portfolio: on each scan date `d` a *cohort* of trades enters at the
//! next open with `1/horizon` of the equity, split equally among the
//! cohort's trades (K for the top-K, every row for the universe, the BUY
//! rows for the rule); each trade leaves by its label's rules (target,
//! stop or timeout, gap fills and costs included, `bars_to_exit` bars
//! after `d`). So at most `horizon` cohorts — K·horizon positions — are
//! open at once and the book is never levered. A trade's after-cost
//! return is booked on its exit day (no mark-to-market in between); exits
//! past the last validation date are booked on it. A day without a
//! cohort leaves its share in cash.
//!
//! Daily returns give the compounded equity curve, drawdown, Sharpe and
//! Sortino (annualised with √252). The top-K's edge is the per-date
//! excess of its cohort's mean trade return over the universe cohort's;
//! its 95 % interval comes from a circular block bootstrap with blocks of
//! `horizon` dates (neighbouring cohorts overlap in time, so their
//! returns are not independent).

use chrono::NaiveDate;
use serde::Serialize;

use super::metrics::{EvalSet, top_k};

/// Resamples of the block bootstrap.
const RESAMPLES: usize = 2000;
const TRADING_DAYS_PER_YEAR: f64 = 252.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyReport {
    pub trades: usize,
    /// Dates on which the strategy entered a cohort.
    pub active_days: usize,
    /// Share of trades with a positive after-cost return.
    pub hit_rate: Option<f64>,
    pub mean_trade_return: Option<f64>,
    pub median_trade_return: Option<f64>,
    pub avg_win: Option<f64>,
    pub avg_loss: Option<f64>,
    /// Sum of winning returns over the absolute sum of losing ones.
    pub profit_factor: Option<f64>,
    /// hit_rate·avg_win + (1 − hit_rate)·avg_loss, per trade.
    pub expectancy: Option<f64>,
    /// Compounded return of the whole period.
    pub total_return: f64,
    /// Largest peak-to-trough fall of the equity curve (a positive fraction).
    pub max_drawdown: f64,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    /// Mean share of equity entered per day (one way).
    pub turnover: f64,
    /// Mean share of equity in open positions.
    pub exposure: f64,
}

/// The mean per-date excess of the top-K cohort over the universe's,
/// with its block-bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excess {
    pub days: usize,
    pub mean: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub block_days: usize,
    pub resamples: usize,
}

/// One validation date of the backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyRow {
    pub date: NaiveDate,
    pub top_k_return: f64,
    pub universe_return: f64,
    pub rule_buy_return: f64,
    pub top_k_equity: f64,
    pub universe_equity: f64,
    pub rule_buy_equity: f64,
    /// Mean after-cost trade return of the cohorts entered after this date.
    pub top_k_cohort: Option<f64>,
    pub universe_cohort: Option<f64>,
    pub picks: u32,
    pub universe: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    pub k: usize,
    pub horizon: usize,
    pub days: usize,
    pub top_k: StrategyReport,
    pub universe: StrategyReport,
    pub rule_buy: StrategyReport,
    pub excess: Excess,
    #[serde(skip)]
    pub daily: Vec<DailyRow>,
}

/// Backtest `scores` on `set` (rows sorted by day; `dates[d]` is day `d`).
pub fn backtest(set: &EvalSet, dates: &[NaiveDate], scores: &[f64], k: usize, horizon: usize, seed: u64) -> Backtest {
    let days = set.day_ranges();
    let mut top = Vec::with_capacity(days.len());
    let mut all = Vec::with_capacity(days.len());
    let mut rule = Vec::with_capacity(days.len());
    for &(a, b) in &days {
        let trade = |i: usize| (set.realized_return[i], set.bars_to_exit[i]);
        top.push(
            top_k(&scores[a..b], k)
                .iter()
                .map(|&i| trade(a + i))
                .collect::<Vec<_>>(),
        );
        all.push((a..b).map(trade).collect::<Vec<_>>());
        rule.push((a..b).filter(|&i| set.rule_buy[i]).map(trade).collect::<Vec<_>>());
    }
    let (top_daily, top_report) = strategy(&top, horizon);
    let (all_daily, all_report) = strategy(&all, horizon);
    let (rule_daily, rule_report) = strategy(&rule, horizon);
    let cohort_mean = |c: &[(f64, u32)]| (!c.is_empty()).then(|| c.iter().map(|t| t.0).sum::<f64>() / c.len() as f64);
    let excess: Vec<f64> = top
        .iter()
        .zip(&all)
        .filter_map(|(t, u)| Some(cohort_mean(t)? - cohort_mean(u)?))
        .collect();
    let (mut eq_top, mut eq_all, mut eq_rule) = (1.0, 1.0, 1.0);
    let daily = (0..days.len())
        .map(|d| {
            eq_top *= 1.0 + top_daily[d];
            eq_all *= 1.0 + all_daily[d];
            eq_rule *= 1.0 + rule_daily[d];
            DailyRow {
                date: dates[set.day[days[d].0] as usize],
                top_k_return: top_daily[d],
                universe_return: all_daily[d],
                rule_buy_return: rule_daily[d],
                top_k_equity: eq_top,
                universe_equity: eq_all,
                rule_buy_equity: eq_rule,
                top_k_cohort: cohort_mean(&top[d]),
                universe_cohort: cohort_mean(&all[d]),
                picks: top[d].len() as u32,
                universe: all[d].len() as u32,
            }
        })
        .collect();
    Backtest {
        k,
        horizon,
        days: days.len(),
        top_k: top_report,
        universe: all_report,
        rule_buy: rule_report,
        excess: block_bootstrap(&excess, horizon.max(1), seed),
        daily,
    }
}

/// A strategy's daily portfolio returns and its report, from its cohorts
/// of (after-cost return, bars to exit), one per date.
fn strategy(cohorts: &[Vec<(f64, u32)>], horizon: usize) -> (Vec<f64>, StrategyReport) {
    let n = cohorts.len();
    let h = horizon.max(1) as f64;
    let mut daily = vec![0.0; n];
    let mut exposure = vec![0.0; n];
    let mut entered = 0.0;
    for (d, cohort) in cohorts.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        let weight = 1.0 / (h * cohort.len() as f64);
        entered += 1.0 / h;
        for &(ret, bars) in cohort {
            let exit = (d + bars as usize).min(n - 1);
            daily[exit] += weight * ret;
            // Held from the next session's open through the exit bar.
            for held in exposure.iter_mut().take(exit + 1).skip(d + 1) {
                *held += weight;
            }
        }
    }
    let returns: Vec<f64> = cohorts.iter().flatten().map(|t| t.0).collect();
    let report = StrategyReport {
        trades: returns.len(),
        active_days: cohorts.iter().filter(|c| !c.is_empty()).count(),
        turnover: if n == 0 { 0.0 } else { entered / n as f64 },
        exposure: mean(&exposure).unwrap_or(0.0),
        total_return: daily.iter().fold(1.0, |eq, r| eq * (1.0 + r)) - 1.0,
        max_drawdown: max_drawdown(&daily),
        sharpe: sharpe(&daily),
        sortino: sortino(&daily),
        ..trade_stats(&returns)
    };
    (daily, report)
}

/// Per-trade statistics (the portfolio fields left at zero).
fn trade_stats(returns: &[f64]) -> StrategyReport {
    let wins: Vec<f64> = returns.iter().copied().filter(|r| *r > 0.0).collect();
    let losses: Vec<f64> = returns.iter().copied().filter(|r| *r <= 0.0).collect();
    let hit_rate = (!returns.is_empty()).then(|| wins.len() as f64 / returns.len() as f64);
    let (avg_win, avg_loss) = (mean(&wins), mean(&losses));
    let loss_sum: f64 = losses.iter().sum();
    StrategyReport {
        trades: returns.len(),
        active_days: 0,
        hit_rate,
        mean_trade_return: mean(returns),
        median_trade_return: median(returns),
        avg_win,
        avg_loss,
        profit_factor: (loss_sum < 0.0).then(|| wins.iter().sum::<f64>() / -loss_sum),
        expectancy: hit_rate.map(|p| p * avg_win.unwrap_or(0.0) + (1.0 - p) * avg_loss.unwrap_or(0.0)),
        total_return: 0.0,
        max_drawdown: 0.0,
        sharpe: None,
        sortino: None,
        turnover: 0.0,
        exposure: 0.0,
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

fn max_drawdown(daily: &[f64]) -> f64 {
    let (mut equity, mut peak, mut worst) = (1.0f64, 1.0f64, 0.0f64);
    for r in daily {
        equity *= 1.0 + r;
        peak = peak.max(equity);
        worst = worst.max(1.0 - equity / peak);
    }
    worst
}

/// Annualised mean over sample standard deviation of daily returns.
fn sharpe(daily: &[f64]) -> Option<f64> {
    let m = mean(daily)?;
    if daily.len() < 2 {
        return None;
    }
    let var = daily.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (daily.len() - 1) as f64;
    (var > 0.0).then(|| m / var.sqrt() * TRADING_DAYS_PER_YEAR.sqrt())
}

/// Annualised mean over the downside deviation (root mean square of the
/// negative daily returns, over all days).
fn sortino(daily: &[f64]) -> Option<f64> {
    let m = mean(daily)?;
    let downside = (daily.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / daily.len() as f64).sqrt();
    (downside > 0.0).then(|| m / downside * TRADING_DAYS_PER_YEAR.sqrt())
}

/// The mean of `xs` and a 95 % percentile interval from a circular block
/// bootstrap (blocks of `block` consecutive values, seeded).
fn block_bootstrap(xs: &[f64], block: usize, seed: u64) -> Excess {
    let n = xs.len();
    let mut out = Excess {
        days: n,
        mean: mean(xs),
        ci95_low: None,
        ci95_high: None,
        block_days: block,
        resamples: 0,
    };
    if n < 2 {
        return out;
    }
    let mut rng = SplitMix(seed);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let mut sum = 0.0;
            let mut taken = 0;
            while taken < n {
                let start = rng.below(n as u64) as usize;
                for j in 0..block.min(n - taken) {
                    sum += xs[(start + j) % n];
                }
                taken += block.min(n - taken);
            }
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    out.ci95_low = Some(at(0.025));
    out.ci95_high = Some(at(0.975));
    out.resamples = RESAMPLES;
    out
}

/// SplitMix64: a small seeded generator (reproducible intervals).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is below 2⁻⁴⁰ for the
    /// sizes used here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(n: usize) -> Vec<NaiveDate> {
        (0..n)
            .map(|d| NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(d as u64))
            .collect()
    }

    /// Two dates, three symbols each; K = 1, horizon 2.
    fn two_days() -> EvalSet {
        EvalSet {
            day: vec![0, 0, 0, 1, 1, 1],
            label: vec![1, 0, 0, 0, 1, 0],
            realized_return: vec![0.05, -0.04, 0.01, -0.04, 0.06, 0.0],
            rule_buy: vec![false, true, false, false, false, false],
            bars_to_exit: vec![1, 1, 2, 1, 2, 2],
        }
    }

    #[test]
    fn cohorts_are_booked_on_their_exit_day_by_hand() {
        let set = two_days();
        let scores = [0.9, 0.1, 0.2, 0.3, 0.8, 0.1];
        let bt = backtest(&set, &dates(2), &scores, 1, 2, 7);
        // Top-1: day 0 picks row 0 (+5 %, exits day 1) with 1/2 of equity;
        // day 1 picks row 4 (+6 %, exit day 3 → booked on day 1, the last).
        assert_eq!(bt.daily[0].top_k_return, 0.0);
        assert!((bt.daily[1].top_k_return - (0.5 * 0.05 + 0.5 * 0.06)).abs() < 1e-15);
        assert!((bt.top_k.total_return - 0.055).abs() < 1e-15);
        assert_eq!(bt.top_k.trades, 2);
        assert_eq!(bt.top_k.hit_rate, Some(1.0));
        assert_eq!(bt.top_k.profit_factor, None, "no losing trade");
        // Universe: every exit falls on day 1 (row 2's and day 1's exits
        // are past the end and booked on the last day): each cohort's mean
        // (+.02/3) on half the equity.
        assert_eq!(bt.daily[0].universe_return, 0.0);
        assert!((bt.universe.total_return - 0.02 / 3.0).abs() < 1e-15);
        // Rule BUY: only row 1 (−4 %).
        assert_eq!(bt.rule_buy.trades, 1);
        assert_eq!(bt.rule_buy.active_days, 1);
        assert!((bt.rule_buy.total_return + 0.02).abs() < 1e-15);
        assert!((bt.rule_buy.max_drawdown - 0.02).abs() < 1e-15);
        // Excess per date: day 0 .05 − .02/3, day 1 .06 − .02/3.
        let m = ((0.05 - 0.02 / 3.0) + (0.06 - 0.02 / 3.0)) / 2.0;
        assert!((bt.excess.mean.unwrap() - m).abs() < 1e-15);
        assert_eq!(bt.daily[0].picks, 1);
        assert_eq!(bt.daily[1].universe, 3);
    }

    #[test]
    fn trade_statistics_by_hand() {
        let s = trade_stats(&[0.05, -0.04, 0.01, -0.02]);
        assert_eq!(s.hit_rate, Some(0.5));
        assert!((s.mean_trade_return.unwrap() - 0.0).abs() < 1e-15);
        assert!((s.median_trade_return.unwrap() + 0.005).abs() < 1e-15);
        assert!((s.profit_factor.unwrap() - 1.0).abs() < 1e-12);
        assert!((s.avg_win.unwrap() - 0.03).abs() < 1e-15 && (s.avg_loss.unwrap() + 0.03).abs() < 1e-15);
        assert!(s.expectancy.unwrap().abs() < 1e-15);
    }

    #[test]
    fn drawdown_sharpe_and_sortino_by_hand() {
        // Equity 1.1, 0.99, 1.089: peak 1.1, trough 0.99 → 10 %.
        let daily = [0.1, -0.1, 0.1];
        assert!((max_drawdown(&daily) - 0.1).abs() < 1e-12);
        // mean 1/30, sample sd sqrt(((2/30)²·2 + (4/30)²)/2) = sqrt(0.01333…).
        let m: f64 = 0.1 / 3.0;
        let sd = (((0.1 - m).powi(2) * 2.0 + (-0.1 - m).powi(2)) / 2.0f64).sqrt();
        assert!((sharpe(&daily).unwrap() - m / sd * 252f64.sqrt()).abs() < 1e-9);
        let downside = (0.01f64 / 3.0).sqrt();
        assert!((sortino(&daily).unwrap() - m / downside * 252f64.sqrt()).abs() < 1e-9);
        assert_eq!(sharpe(&[0.01, 0.01]), None);
    }

    #[test]
    fn exposure_never_exceeds_the_book_and_turnover_is_one_cohort_per_horizon() {
        // Every day a cohort of 2 trades held the full horizon of 5.
        let n = 40;
        let set = EvalSet {
            day: (0..n).flat_map(|d| [d as u32, d as u32]).collect(),
            label: vec![0; 2 * n],
            realized_return: vec![0.0; 2 * n],
            rule_buy: vec![false; 2 * n],
            bars_to_exit: vec![5; 2 * n],
        };
        let bt = backtest(&set, &dates(n), &vec![0.5; 2 * n], 2, 5, 1);
        assert!((bt.top_k.turnover - 0.2).abs() < 1e-15);
        // Fully invested from day 5 on; the first days fill up.
        assert!(
            bt.top_k.exposure < 1.0 && bt.top_k.exposure > 0.8,
            "{}",
            bt.top_k.exposure
        );
        assert_eq!(bt.top_k.total_return, 0.0);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_is_reproducible() {
        let mut rng = SplitMix(3);
        let xs: Vec<f64> = (0..300).map(|_| rng.below(1000) as f64 / 1000.0 - 0.4).collect();
        let a = block_bootstrap(&xs, 5, 11);
        let b = block_bootstrap(&xs, 5, 11);
        assert_eq!(a, b);
        let (m, lo, hi) = (a.mean.unwrap(), a.ci95_low.unwrap(), a.ci95_high.unwrap());
        assert!(lo < m && m < hi, "{lo} {m} {hi}");
        // Uniform on [−0.4, 0.6): sd ≈ 0.289, standard error ≈ 0.0167.
        assert!(hi - lo > 0.03 && hi - lo < 0.1, "{lo} {hi}");
        assert_eq!(block_bootstrap(&[0.1], 5, 1).ci95_low, None);
    }
}
