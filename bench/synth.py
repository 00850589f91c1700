#!/usr/bin/env python3
"""A synthetic daily OHLCV universe for benchmarks and tests (never committed).

    python3 bench/synth.py SYMBOLS YEARS SEED [PLANTED [SHIFTED]] > universe.csv

Seeded and deterministic. Per symbol: log returns with GARCH(1,1)-like
volatility clusters and a market factor shared by all symbols, overnight
gaps (open away from the previous close), a few 2:1 / 3:1 splits (prices
before the ex-date multiplied, `split_coef` on the ex-date), a few missing
days, and a late listing for some symbols. Columns:
symbol,date,open,high,low,close,volume,split_coef

Without PLANTED (or with 0) nothing is predictable: a symbol's next return
does not depend on anything before it except through its volatility. With
PLANTED = f, a share f of the symbols (every symbol with probability f)
mean-reverts: its daily drift is -STRENGTH (1.0) times the mean of its last
five daily returns (its next five days give back about half of the last
five), a signal the features see (the 5-day return and its
cross-sectional rank); the others stay random walks.

With SHIFTED = n, the last n sessions of every symbol have three times
the volatility (returns, overnight gaps and intraday ranges) and three
times the volume: a drift the monitor must see. The random draws are the
same as without it, so the sessions before are identical.
"""

import datetime
import math
import random
import sys

# How strongly a planted symbol mean-reverts: its daily drift is -STRENGTH
# times the mean of its last five daily returns.
STRENGTH = 1.0


def weekdays(start, n):
    d = start
    out = []
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += datetime.timedelta(days=1)
    return out


def main():
    n_symbols, years, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    planted_share = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    shifted = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    rng = random.Random(seed)
    days = weekdays(datetime.date(2015, 1, 2), int(252 * years))
    market = []
    var = 1e-4
    for _ in days:
        var = 2e-6 + 0.08 * (market[-1] ** 2 if market else 1e-4) + 0.9 * var
        market.append(rng.gauss(0.0003, math.sqrt(var)))
    out = sys.stdout
    out.write("symbol,date,open,high,low,close,volume,split_coef\n")
    for s in range(n_symbols):
        name = "S" + format(s, "05d")
        beta = rng.uniform(0.5, 1.5)
        idio = rng.uniform(0.008, 0.03)
        start = 0 if rng.random() > 0.1 else rng.randrange(len(days) // 2)
        splits = {rng.randrange(start + 1, len(days)): rng.choice([2.0, 3.0])
                  for _ in range(1 if rng.random() < 0.05 else 0)}
        # Simulate true (adjusted) prices, then un-adjust before each split.
        price = rng.uniform(10, 300)
        var = idio ** 2
        rows = []
        prev_r = 0.0
        # Drawn only for a planted universe: the plain one stays as it was.
        planted = planted_share > 0 and rng.random() < planted_share
        last5 = []
        for i in range(start, len(days)):
            var = idio ** 2 * 0.1 + 0.1 * prev_r ** 2 + 0.8 * var
            drift = -STRENGTH * sum(last5) / 5.0 if planted else 0.0
            r = drift + beta * market[i] + rng.gauss(0, math.sqrt(var))
            prev_r = r
            last5 = (last5 + [r])[-5:]
            # The shift scales what is drawn, not the volatility process.
            scale = 3.0 if i >= len(days) - shifted else 1.0
            r = drift + scale * (r - drift)
            gap = scale * rng.gauss(0, 0.3 * math.sqrt(var))
            open_ = price * math.exp(gap)
            close = price * math.exp(r)
            hi = max(open_, close) * math.exp(scale * abs(rng.gauss(0, 0.5 * math.sqrt(var))))
            lo = min(open_, close) * math.exp(-scale * abs(rng.gauss(0, 0.5 * math.sqrt(var))))
            vol = int(scale * rng.lognormvariate(13, 0.5))
            price = close
            if rng.random() < 0.002:
                continue  # a missing day
            rows.append([i, open_, hi, lo, close, vol])
        # Prices before an ex-date are `coef` times the adjusted ones.
        factors = []
        factor = 1.0
        for row in reversed(rows):
            factors.append(factor)
            factor *= splits.get(row[0], 1.0)
        for row, factor in zip(rows, reversed(factors)):
            i = row[0]
            px = [v * factor for v in row[1:5]]
            out.write(f"{name},{days[i]},{px[0]:.4f},{px[1]:.4f},{px[2]:.4f},{px[3]:.4f},"
                      f"{int(row[5] / factor)},{splits.get(i, 1.0)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
