//! A daily top-K backtest of scored rows: what following the model would
//! have earned after costs, beside two baselines (buy every scored symbol
//! of the tradeable universe; buy the rule-based `ta_recommendation = BUY`
//! list).
//!
//! On each scan date `d` each strategy enters a *cohort*: the top-K
//! (weight `1/(horizon·K)` each, fewer names leave the rest in cash), the
//! universe and the rule-BUY list (weight `1/(horizon·n_d)` each, `n_d`
//! its names that day). A trade enters and leaves by its label's rules
//! (entry, gap fills, barriers, timeout, costs). So at most `horizon`
//! cohorts are open at once and the book is not levered (a symbol that
//! misses sessions can hold a little longer, and with `entry = close` a
//! trade is open from its scan date's close, so `horizon + 1` cohorts
//! overlap for a session). The book is marked to
//! market every session ([`book`]); Sharpe, Sortino, volatility, CAGR and
//! drawdown come from that daily series.
//!
//! The top-K's edge is the per-date excess of its cohort's mean trade
//! return over the universe cohort's; its 95 % interval comes from a
//! moving-block bootstrap ([`stats::block_bootstrap`]) with blocks of
//! several horizons (neighbouring dates share most of their label
//! window), never crossing from one walk-forward fold into the next.

pub mod book;
pub mod overlay;
pub mod stats;

use chrono::NaiveDate;
use serde::Serialize;

use super::metrics::{EvalSet, top_k};
pub use book::Position;
pub use stats::{
    Interval, SeriesStats, SplitMix, TradeStats, block_bootstrap, overlapping_mean_upper_95, t_95_one_sided,
};

/// The book and figures of the README and the backtest JSON, in one line.
pub const CONVENTION: &str = "each scan date's cohort enters as its label does (the next open by default): top-K \
    names at a fixed weight of \
    1/(horizon*K) of the starting capital each, universe and rule-BUY names at 1/(horizon*n) (n = the cohort's \
    names that date), unused weight in cash at 0; marked to market every session on the label prices: entry \
    session close/entry - 1 - c, then close to close, exit session exit/previous close - 1 - c, one-session \
    trades exit/entry - 1 - 2c (c = that side's cost), no candle 0; a session's return is the weighted sum; \
    Sharpe, Sortino, volatility, CAGR and max drawdown from the daily series, annualised with sqrt(252)";

/// Which strategy a trade belongs to (its discriminant is its place in
/// [`Cohort::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    TopK,
    Universe,
    RuleBuy,
}

impl Cohort {
    pub const ALL: [Cohort; 3] = [Cohort::TopK, Cohort::Universe, Cohort::RuleBuy];

    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::TopK => "top_k",
            Cohort::Universe => "universe",
            Cohort::RuleBuy => "rule_buy",
        }
    }
}

/// One simulated trade: a row of the evaluated set in a cohort.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub cohort: Cohort,
    /// Index of the scan date in the backtest's dates.
    pub day: u32,
    /// Index of the row in the evaluated set.
    pub row: u32,
    pub weight: f64,
}

/// A strategy's figures: per trade, per date and from its book.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortReport {
    #[serde(flatten)]
    pub trades: TradeStats,
    /// Dates on which the strategy entered a cohort.
    pub active_dates: usize,
    /// Mean over dates of the cohort's mean trade return.
    pub per_date_mean_return: Option<f64>,
    /// The share of the cohort's summed per-trade excess over its date's
    /// universe mean that its best 1 % of trades bring (none for the
    /// universe itself, or without a positive excess).
    pub best_1pct_share_of_excess: Option<f64>,
    #[serde(flatten)]
    pub book: SeriesStats,
    /// Mean weight entered per session (one way).
    pub turnover: f64,
    /// Mean weight in open positions per session.
    pub exposure: f64,
}

/// One session of the three books.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub date: NaiveDate,
    /// Per cohort (in [`Cohort::ALL`] order): return, equity, exposure, open positions.
    pub books: [SessionBook; 3],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionBook {
    pub ret: f64,
    pub equity: f64,
    pub exposure: f64,
    pub entered: f64,
    pub open_positions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    pub k: usize,
    pub horizon: usize,
    /// Scan dates with a universe cohort.
    pub scan_dates: usize,
    pub sessions: usize,
    pub top_k: CohortReport,
    /// The top-K book with a regime filter and with a volatility target.
    pub overlays: overlay::Overlays,
    pub universe: CohortReport,
    pub rule_buy: CohortReport,
    /// Per-date excess of the top-K cohort's mean over the universe's.
    pub excess: Interval,
    /// Independent windows of the excess: dates ÷ horizon.
    pub windows: f64,
    #[serde(skip)]
    pub trades: Vec<Trade>,
    #[serde(skip)]
    pub sessions_daily: Vec<Session>,
    /// Per scan date: the top-K cohort's mean and the universe's.
    #[serde(skip)]
    pub per_date: Vec<(NaiveDate, Option<f64>, Option<f64>)>,
    /// The caller's ids of the evaluated rows, in set order (a trade's
    /// `row` indexes it); empty unless the caller sets it.
    #[serde(skip)]
    pub row_ids: Vec<usize>,
}

/// What a backtest needs besides the rows.
#[derive(Debug, Clone, Copy)]
pub struct BacktestParams {
    pub k: usize,
    pub horizon: usize,
    /// Bootstrap block length in dates.
    pub block: usize,
    pub seed: u64,
}

/// Backtest `scores` on `set` (rows sorted by day; `dates[d]` is day `d`;
/// `paths[i]` row `i`'s trade). `segment_starts` are the days where a new
/// walk-forward fold begins (the first is 0).
pub fn backtest(
    set: &EvalSet,
    paths: &[Position],
    dates: &[NaiveDate],
    segment_starts: &[usize],
    scores: &[f64],
    params: BacktestParams,
) -> Backtest {
    let h = params.horizon.max(1) as f64;
    let mut trades = Vec::new();
    for (d, &(a, b)) in set.day_ranges().iter().enumerate() {
        let day = d as u32;
        let mut add = |cohort, rows: Vec<usize>, weight: f64| {
            trades.extend(rows.into_iter().map(|i| Trade {
                cohort,
                day,
                row: i as u32,
                weight,
            }))
        };
        let picks: Vec<usize> = top_k(&scores[a..b], params.k).into_iter().map(|i| a + i).collect();
        add(Cohort::TopK, picks, 1.0 / (h * params.k as f64));
        add(Cohort::Universe, (a..b).collect(), 1.0 / (h * (b - a) as f64));
        let buys: Vec<usize> = (a..b).filter(|&i| set.rule_buy[i]).collect();
        let w = 1.0 / (h * buys.len().max(1) as f64);
        add(Cohort::RuleBuy, buys, w);
    }
    let calendar = sessions(dates, &trades, paths);
    let days = dates.len();
    // Each cohort's mean trade return per scan date (in Cohort::ALL order).
    let mut sums = [(); 3].map(|_| (vec![0.0; days], vec![0usize; days]));
    for t in &trades {
        let (sum, n) = &mut sums[t.cohort as usize];
        sum[t.day as usize] += set.realized_return[t.row as usize];
        n[t.day as usize] += 1;
    }
    let means: Vec<Vec<Option<f64>>> = sums
        .iter()
        .map(|(sum, n)| (0..days).map(|d| (n[d] > 0).then(|| sum[d] / n[d] as f64)).collect())
        .collect();
    let (top_means, universe_means) = (&means[Cohort::TopK as usize], &means[Cohort::Universe as usize]);
    let mut books = Vec::new();
    let mut reports = Vec::new();
    let mut overlays = None;
    for c in Cohort::ALL {
        let positions: Vec<Position> = trades
            .iter()
            .filter(|t| t.cohort == c)
            .map(|t| Position {
                weight: t.weight,
                ..paths[t.row as usize]
            })
            .collect();
        let book = book::mark_to_market(&calendar, &positions);
        if c == Cohort::TopK {
            let days: Vec<u32> = trades.iter().filter(|t| t.cohort == c).map(|t| t.day).collect();
            let breadth: Vec<f64> = set
                .day_ranges()
                .iter()
                .map(|&(a, _)| set.breadth.get(a).copied().unwrap_or(f64::NAN))
                .collect();
            let dated: Vec<(u32, Position)> = days.into_iter().zip(positions.iter().copied()).collect();
            overlays = Some(overlay::overlays(&calendar, &dated, &breadth, &book));
        }
        reports.push(cohort_report(
            c,
            set,
            &trades,
            &book,
            &means[c as usize],
            universe_means,
        ));
        books.push(book);
    }
    let excess = excess_segments(top_means, universe_means, segment_starts);
    let segments: Vec<&[f64]> = excess.iter().map(Vec::as_slice).collect();
    let excess = block_bootstrap(&segments, params.block, params.seed);
    let mut equity = [1.0f64; 3];
    let sessions_daily = calendar
        .iter()
        .enumerate()
        .map(|(s, &date)| Session {
            date,
            books: std::array::from_fn(|c| {
                equity[c] *= 1.0 + books[c].returns[s];
                SessionBook {
                    ret: books[c].returns[s],
                    equity: equity[c],
                    exposure: books[c].exposure[s],
                    entered: books[c].entered[s],
                    open_positions: books[c].open_positions[s],
                }
            }),
        })
        .collect();
    let mut reports = reports.into_iter();
    let (top_k_report, universe, rule_buy) = (
        reports.next().expect("three cohorts"),
        reports.next().expect("three cohorts"),
        reports.next().expect("three cohorts"),
    );
    Backtest {
        k: params.k,
        horizon: params.horizon,
        scan_dates: universe.active_dates,
        sessions: calendar.len(),
        windows: excess.n as f64 / h,
        top_k: top_k_report,
        overlays: overlays.expect("a top-K cohort"),
        universe,
        rule_buy,
        excess,
        trades,
        sessions_daily,
        per_date: dates
            .iter()
            .enumerate()
            .map(|(d, &date)| (date, top_means[d], universe_means[d]))
            .collect(),
        row_ids: Vec::new(),
    }
}

/// The book's sessions: the scan dates and every session a trade is
/// marked on (a position's exit can come after the last scan date).
fn sessions(dates: &[NaiveDate], trades: &[Trade], paths: &[Position]) -> Vec<NaiveDate> {
    let mut cal: Vec<NaiveDate> = dates.to_vec();
    cal.extend(
        trades
            .iter()
            .flat_map(|t| paths[t.row as usize].marks.iter().map(|m| m.0)),
    );
    cal.sort_unstable();
    cal.dedup();
    cal
}

/// Per-date excess of the top-K mean over the universe mean, one series
/// per segment (dates without both are left out).
fn excess_segments(top: &[Option<f64>], universe: &[Option<f64>], starts: &[usize]) -> Vec<Vec<f64>> {
    let mut bounds: Vec<usize> = starts.iter().copied().filter(|&s| s < top.len()).collect();
    bounds.push(top.len());
    if bounds[0] != 0 {
        bounds.insert(0, 0);
    }
    bounds
        .windows(2)
        .map(|w| (w[0]..w[1]).filter_map(|d| Some(top[d]? - universe[d]?)).collect())
        .collect()
}

fn cohort_report(
    c: Cohort,
    set: &EvalSet,
    trades: &[Trade],
    book: &book::Book,
    means: &[Option<f64>],
    universe_means: &[Option<f64>],
) -> CohortReport {
    let own: Vec<&Trade> = trades.iter().filter(|t| t.cohort == c).collect();
    let returns: Vec<f64> = own.iter().map(|t| set.realized_return[t.row as usize]).collect();
    let excess: Vec<f64> = own
        .iter()
        .filter_map(|t| Some(set.realized_return[t.row as usize] - universe_means[t.day as usize]?))
        .collect();
    let per_date: Vec<f64> = means.iter().flatten().copied().collect();
    let n = book.returns.len().max(1) as f64;
    CohortReport {
        trades: stats::trade_stats(&returns),
        active_dates: per_date.len(),
        per_date_mean_return: stats::mean(&per_date),
        best_1pct_share_of_excess: if c == Cohort::Universe {
            None
        } else {
            stats::best_share(&excess, stats::TAIL)
        },
        book: stats::series_stats(&book.returns),
        turnover: book.entered.iter().sum::<f64>() / n,
        exposure: book.exposure.iter().sum::<f64>() / n,
    }
}

/// Per-date mean after-cost return of the top-K by `scores` (rows sorted
/// by day): what a paired comparison of two models on the same rows reads.
pub fn top_k_per_date(set: &EvalSet, scores: &[f64], k: usize) -> Vec<f64> {
    set.day_ranges()
        .iter()
        .map(|&(a, b)| {
            let picks = top_k(&scores[a..b], k);
            picks.iter().map(|&i| set.realized_return[a + i]).sum::<f64>() / picks.len() as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 3, day).unwrap()
    }

    /// Three scan dates (1, 2, 3), two symbols; K = 1, horizon 2, fixed
    /// barriers +5 % / −4 %, costs 0.1 % a side. Label prices:
    /// X: 2 = (o 10, h 10.45, l 9.9, c 10.4), 3 = (11, 11.2, 10.9, 11.1),
    ///    4 = (11.1, 11.2, 10.5, 10.7);
    /// Y (no candle on 4): 2 = (20, 20.3, 19.1, 19.5), 3 = (19, 19.5,
    ///    18.9, 19.3), 5 = (19.4, 19.6, 19.2, 19.5), 6 = (19.5, 19.9, 19.4, 19.8).
    /// Trades: X scan 1 enters at 10 and gaps through its target (10.5) at
    /// the open of 3 (11); Y scan 1 enters at 20 and is stopped at 19.2 on
    /// its entry session; X scan 2 enters at 11, stopped at 10.56 on 4;
    /// Y scan 2 enters at 19, times out at the close of 5 (its second bar:
    /// no candle on 4) at 19.5; X scan 3 enters at 11.1 and is stopped at
    /// 10.656 on its entry session; Y scan 3 enters on 5 at 19.4, times out
    /// at the close of 6 (19.8).
    /// The set, each row's marks, each row's (entry, exit) fills.
    type Example = (EvalSet, Vec<Vec<(NaiveDate, f64)>>, Vec<(f64, f64)>);

    fn example() -> Example {
        let marks = vec![
            vec![(d(2), 10.4), (d(3), 11.1)],
            vec![(d(2), 19.5)],
            vec![(d(3), 11.1), (d(4), 10.7)],
            vec![(d(3), 19.3), (d(5), 19.5)],
            vec![(d(4), 10.7)],
            vec![(d(5), 19.5), (d(6), 19.8)],
        ];
        let fills = vec![
            (10.0, 11.0),
            (20.0, 19.2),
            (11.0, 10.56),
            (19.0, 19.5),
            (11.1, 10.656),
            (19.4, 19.8),
        ];
        let net: Vec<f64> = fills.iter().map(|(e, x)| x / e - 1.0 - 0.002).collect();
        let set = EvalSet {
            day: vec![0, 0, 1, 1, 2, 2],
            label: vec![1, 0, 0, 0, 0, 0],
            realized_return: net,
            rule_buy: vec![false, true, false, false, false, true],
            bars_to_exit: vec![2, 1, 2, 2, 1, 2],
            breadth: Vec::new(),
        };
        (set, marks, fills)
    }

    #[test]
    fn the_book_by_hand_on_three_cohorts_and_two_symbols() {
        let (set, marks, fills) = example();
        let paths: Vec<Position> = marks
            .iter()
            .zip(&fills)
            .map(|(m, &(e, x))| Position {
                marks: m,
                entry_price: e,
                exit_price: x,
                entry_cost: 0.001,
                exit_cost: 0.001,
                weight: 0.0,
            })
            .collect();
        // Top-1 picks X, Y, X.
        let scores = [0.9, 0.1, 0.2, 0.8, 0.7, 0.3];
        let params = BacktestParams {
            k: 1,
            horizon: 2,
            block: 2,
            seed: 1,
        };
        let bt = backtest(&set, &paths, &[d(1), d(2), d(3)], &[0], &scores, params);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-14;
        let ret = |s: usize, c: usize| bt.sessions_daily[s].books[c].ret;
        assert_eq!(
            bt.sessions_daily.iter().map(|s| s.date).collect::<Vec<_>>(),
            vec![d(1), d(2), d(3), d(4), d(5), d(6)]
        );
        // Top-K, weight 1/(2·1) each.
        assert_eq!(ret(0, 0), 0.0);
        assert!(close(ret(1, 0), 0.5 * (10.4 / 10.0 - 1.001)));
        assert!(close(
            ret(2, 0),
            0.5 * (11.0 / 10.4 - 1.001) + 0.5 * (19.3 / 19.0 - 1.001)
        ));
        // Session 4: Y has no candle (0); X enters and is stopped.
        assert!(close(ret(3, 0), 0.5 * (10.656 / 11.1 - 1.002)));
        assert!(close(ret(4, 0), 0.5 * (19.5 / 19.3 - 1.001)));
        assert_eq!(ret(5, 0), 0.0);
        // Universe, weight 1/(2·2): session 2 holds scan 1's X and Y.
        assert!(close(
            ret(1, 1),
            0.25 * (10.4 / 10.0 - 1.001) + 0.25 * (19.2 / 20.0 - 1.002)
        ));
        // Session 3: X scan 1 exits, X and Y of scan 2 enter.
        let s3 = 0.25 * (11.0 / 10.4 - 1.001) + 0.25 * (11.1 / 11.0 - 1.001) + 0.25 * (19.3 / 19.0 - 1.001);
        assert!(close(ret(2, 1), s3));
        assert!(close(ret(5, 1), 0.25 * (19.8 / 19.5 - 1.001)));
        // Rule BUY: scan 1's Y and scan 3's Y, each alone (1/2).
        assert!(close(ret(1, 2), 0.5 * (19.2 / 20.0 - 1.002)));
        assert!(close(ret(4, 2), 0.5 * (19.5 / 19.4 - 1.001)));
        assert!(close(ret(5, 2), 0.5 * (19.8 / 19.5 - 1.001)));
        let eq: f64 = (0..6).map(|s| 1.0 + ret(s, 0)).product();
        assert!(close(bt.sessions_daily[5].books[0].equity, eq));
        assert!(close(bt.top_k.book.total_return, eq - 1.0));
        assert_eq!(bt.top_k.trades.trades, 3);
        assert_eq!(bt.universe.trades.trades, 6);
        assert_eq!(bt.rule_buy.trades.trades, 2);
        // Per-date excess: top-1 minus the mean of both.
        let r = &set.realized_return;
        let ex = [
            r[0] - (r[0] + r[1]) / 2.0,
            r[3] - (r[2] + r[3]) / 2.0,
            r[4] - (r[4] + r[5]) / 2.0,
        ];
        assert!(close(bt.excess.mean.unwrap(), ex.iter().sum::<f64>() / 3.0));
        assert!(close(
            bt.top_k.per_date_mean_return.unwrap(),
            (r[0] + r[3] + r[4]) / 3.0
        ));
        assert!((bt.windows - 1.5).abs() < 1e-15);
        // Turnover: 1/2 entered on sessions 2, 3 and 4, over 6 sessions.
        assert!(close(bt.top_k.turnover, 1.5 / 6.0));
        assert_eq!(bt.sessions_daily[2].books[1].open_positions, 3);
    }

    #[test]
    fn cohorts_of_a_full_book_never_exceed_its_capital() {
        // Every date a cohort of 2 held the full horizon of 5 sessions.
        let n = 40;
        let cal: Vec<NaiveDate> = (0..n + 6)
            .map(|i| NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i as u64))
            .collect();
        let marks: Vec<Vec<(NaiveDate, f64)>> = (0..2 * n)
            .map(|i| (1..=5).map(|s| (cal[i / 2 + s], 100.0)).collect())
            .collect();
        let paths: Vec<Position> = marks
            .iter()
            .map(|m| Position {
                marks: m,
                entry_price: 100.0,
                exit_price: 100.0,
                entry_cost: 0.0,
                exit_cost: 0.0,
                weight: 0.0,
            })
            .collect();
        let set = EvalSet {
            day: (0..n).flat_map(|d| [d as u32, d as u32]).collect(),
            label: vec![0; 2 * n],
            realized_return: vec![0.0; 2 * n],
            rule_buy: vec![false; 2 * n],
            bars_to_exit: vec![5; 2 * n],
            breadth: Vec::new(),
        };
        let params = BacktestParams {
            k: 2,
            horizon: 5,
            block: 15,
            seed: 1,
        };
        let bt = backtest(&set, &paths, &cal[..n], &[0], &vec![0.5; 2 * n], params);
        let max = bt
            .sessions_daily
            .iter()
            .map(|s| s.books[0].exposure)
            .fold(0.0, f64::max);
        assert!((max - 1.0).abs() < 1e-12, "{max}");
        assert_eq!(bt.top_k.book.total_return, 0.0);
    }
}
