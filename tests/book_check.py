#!/usr/bin/env python3
"""Recompute bootstrap's marked-to-market books from its trades file and the
candles, independently of the Rust code, and compare with its daily file.

    python3 tests/book_check.py TRADES.parquet DAILY.parquet CANDLES.csv HORIZON K BPS TICK

The candles are the CSV the test imported (with adj_close on every bar, so
the label prices are the total-return series: close = adj_close, open =
open * adj_close / close). For each trade: its sessions are the symbol's own
candle dates from entry_date to exit_date; it returns close/entry - 1 - c on
the entry session, close to close after, exit/previous close - 1 - c on the
exit session, exit/entry - 1 - 2c in one session. Its weight must be
1/(horizon*K) in the top-K and 1/(horizon*n) in the universe and rule-BUY
cohorts (n = the cohort's trades that scan date); its costs must be
max(bps/1e4, tick/2 / quoted fill) on entry and exit (the fill at that
day's quotes: price * close / adj_close); its net return gross - both
costs. The trade itself is re-derived from the candles: it enters on the
symbol's first session after the scan date at that session's label-price
open, exits within `horizon` of the symbol's sessions, a timeout exactly on
the horizon-th at its close, a target or stop inside that day's range or at
its open (a gap fill). Prints one JSON object with the largest differences.
"""

import collections
import json
import sys

import pandas as pd
import pyarrow.parquet as pq


def main():
    trades_path, daily_path, candles_path = sys.argv[1:4]
    horizon, k, bps, tick = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    trades = pq.read_table(trades_path).to_pandas()
    daily = pq.read_table(daily_path).to_pandas()
    candles = pd.read_csv(candles_path)
    candles["date"] = pd.to_datetime(candles["date"]).dt.date
    by_symbol = {}
    for symbol, g in candles.groupby("symbol"):
        g = g.sort_values("date")
        factor = g["adj_close"] / g["close"]
        by_symbol[symbol] = {
            "dates": list(g["date"]),
            "close": dict(zip(g["date"], g["adj_close"])),
            "open": dict(zip(g["date"], g["open"] * factor)),
            "high": dict(zip(g["date"], g["high"] * factor)),
            "low": dict(zip(g["date"], g["low"] * factor)),
            "ratio": dict(zip(g["date"], g["close"] / g["adj_close"])),
        }

    worst = collections.defaultdict(float)
    def note(name, diff):
        worst[name] = max(worst[name], abs(diff))

    counts = trades.groupby(["window", "scan_date", "cohort"]).size()
    book = collections.defaultdict(float)  # (window, cohort, date) -> return
    for t in trades.itertuples(index=False):
        s = by_symbol[t.symbol]
        n = counts[(t.window, t.scan_date, t.cohort)]
        want_weight = 1.0 / (horizon * (k if t.cohort == "top_k" else n))
        note("weight", t.weight - want_weight)
        side = lambda d, price: max(bps / 1e4, tick / 2.0 / (price * s["ratio"][d]))
        note("entry_cost", t.entry_cost - side(t.entry_date, t.entry_price))
        note("exit_cost", t.exit_cost - side(t.exit_date, t.exit_price))
        after = [d for d in s["dates"] if d > t.scan_date]
        note("entry_date", 0 if after[0] == t.entry_date else 1)
        held = after.index(t.exit_date) + 1
        note("bars_over_horizon", max(0, held - horizon))
        if t.exit_kind == "timeout":
            note("timeout_exit", 0 if held == horizon else 1)
            note("timeout_price", t.exit_price / s["close"][t.exit_date] - 1.0)
        else:
            lo, hi, op = s["low"][t.exit_date], s["high"][t.exit_date], s["open"][t.exit_date]
            inside = lo * (1 - 1e-12) <= t.exit_price <= hi * (1 + 1e-12)
            note("barrier_exit", 0 if inside or abs(t.exit_price / op - 1) < 1e-12 else 1)
        note("net_return", t.net_return - (t.gross_return - t.entry_cost - t.exit_cost))
        note("gross_return", t.gross_return - (t.exit_price / t.entry_price - 1.0))
        note("entry_price", t.entry_price / s["open"][t.entry_date] - 1.0)
        sessions = [d for d in s["dates"] if t.entry_date <= d <= t.exit_date]
        prev = t.entry_price
        for j, d in enumerate(sessions):
            last = j == len(sessions) - 1
            to = t.exit_price if last else s["close"][d]
            r = to / prev - 1.0
            if j == 0:
                r -= t.entry_cost
            if last:
                r -= t.exit_cost
            book[(t.window, t.cohort, d)] += t.weight * r
            prev = s["close"][d]

    rows = 0
    for (window, cohort), g in daily.groupby(["window", "cohort"]):
        g = g.sort_values("date")
        equity = 1.0
        for d, ret, eq in zip(g["date"], g["return"], g["equity"]):
            want = book.pop((window, cohort, d), 0.0)
            note("daily_return", ret - want)
            equity *= 1.0 + want
            note("equity", eq / equity - 1.0)
            rows += 1
    # Every session a trade was marked on is a row of the daily file.
    missing = sum(1 for v in book.values() if v != 0.0)
    print(json.dumps({"worst": worst, "rows": rows, "trades": len(trades), "missing_sessions": missing,
                      "windows": sorted(set(daily["window"])), "cohorts": sorted(set(trades["cohort"]))}))


if __name__ == "__main__":
    sys.exit(main())
