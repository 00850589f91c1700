"""Recompute the optional feature families with pandas from the candles
and compare them with the columns of a bootstrap's labeled Parquet.

    python3 tests/families_check.py LABELED.parquet CANDLES.csv [RANKED.parquet]

CANDLES.csv is the file the test imported (symbol, date, OHLC, volume,
split_coef). Prices are split-adjusted over the whole history here (every
value is scale-free, so it equals the program's window-local adjustment).
With RANKED.parquet (a second run with the `rank` family), its family
columns must be the per-date percentile ranks of the first run's values on
the dates where both runs have every symbol.

Prints JSON: per column the worst absolute difference (after a relative
tolerance for float32 storage), the rows compared, and the columns seen.
"""

import json
import sys

import numpy as np
import pandas as pd

WINDOWS = [5, 10, 20, 60]


def adjusted(candles):
    out = []
    for _, g in candles.groupby("symbol", sort=False):
        g = g.sort_values("date").copy()
        ratio = g["split_coef"].fillna(1.0).replace(0.0, 1.0)
        # Bars before a split's ex-date are divided by its ratio.
        later = ratio[::-1].cumprod()[::-1].shift(-1).fillna(1.0)
        for col in ["open", "high", "low", "close"]:
            g[col] = g[col] / later
        g["volume"] = g["volume"] * later
        out.append(g)
    return pd.concat(out)


def line_fit(y):
    x = np.arange(len(y), dtype=float)
    slope = np.polyfit(x, y, 1)[0]
    r = np.corrcoef(x, y)[0, 1] if np.std(y) > 0 else np.nan
    return slope, r * r


def families(g):
    o, h, l, c, v = (g[k] for k in ["open", "high", "low", "close", "volume"])
    cols = {}
    shape = {
        "body": (c - o) / o,
        "upper": (h - np.maximum(o, c)) / o,
        "lower": (np.minimum(o, c) - l) / o,
        "close_loc": ((c - l) / (h - l)).where(h > l),
        "gap": o / c.shift(1) - 1,
    }
    for lag in range(5):
        for name, s in shape.items():
            cols[f"candle_{name}_{lag}"] = s.shift(lag)
    r = c.pct_change()
    logc = np.log(c)
    logv = np.log(v + 1)
    for w in WINDOWS:
        hi, lo = h.rolling(w).max(), l.rolling(w).min()
        fits = logc.rolling(w).apply(lambda y: line_fit(y)[0], raw=True)
        r2 = logc.rolling(w).apply(lambda y: line_fit(y)[1], raw=True)
        vm = v.rolling(w).mean()
        cols.update(
            {
                f"w{w}_ret": c / c.shift(w) - 1,
                f"w{w}_ret_mean": r.rolling(w).mean(),
                f"w{w}_ret_std": r.rolling(w).std(),
                f"w{w}_close_over_ma": c / c.rolling(w).mean(),
                f"w{w}_close_over_max": c / hi,
                f"w{w}_close_over_min": c / lo,
                f"w{w}_range_pos": ((c - lo) / (hi - lo)).where(hi > lo),
                f"w{w}_slope": fits,
                f"w{w}_r2": r2,
                f"w{w}_q20": c.rolling(w).quantile(0.2) / c,
                f"w{w}_q80": c.rolling(w).quantile(0.8) / c,
                f"w{w}_since_max": (w - 1 - h.rolling(w).apply(np.argmax, raw=True)) / w,
                f"w{w}_since_min": (w - 1 - l.rolling(w).apply(np.argmin, raw=True)) / w,
                f"w{w}_up_share": (r > 0).astype(float).rolling(w).sum() / w,
                f"w{w}_corr_close_logvol": c.rolling(w).corr(logv),
                f"w{w}_vol_over_mean": v / vm,
                f"w{w}_vol_std_over_mean": v.rolling(w).std() / vm,
                f"w{w}_vwap_ret": (r * v).rolling(w).sum() / v.rolling(w).sum(),
            }
        )
    out = pd.DataFrame(cols, index=g.index)
    out["symbol"] = g["symbol"].values
    out["date"] = g["date"].values
    return out


def compare(ours, theirs, columns):
    worst = {}
    for col in columns:
        a = ours[col].to_numpy(dtype=float)
        b = theirs[col].to_numpy(dtype=float)
        both_nan = np.isnan(a) & np.isnan(b)
        # Undefined on one side only is a mismatch (a huge difference).
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        # float32 storage: a relative rounding of the value itself.
        excess = np.maximum(diff - 2e-6 * np.abs(np.nan_to_num(b)), 0.0)
        worst[col] = float(excess.max()) if len(excess) else 0.0
    return worst


def main():
    labeled = pd.read_parquet(sys.argv[1])
    candles = pd.read_csv(sys.argv[2], parse_dates=["date"])
    candles = adjusted(candles)
    expected = pd.concat(families(g) for _, g in candles.groupby("symbol", sort=False))
    labeled["date"] = pd.to_datetime(labeled["date"])
    columns = [c for c in labeled.columns if c.startswith("candle_") or c.startswith("w") and c[1].isdigit()]
    merged = labeled.merge(expected, on=["symbol", "date"], suffixes=("", "_pd"))
    theirs = merged[[f"{c}_pd" for c in columns]].rename(columns=lambda c: c[:-3])
    report = {
        "rows": int(len(merged)),
        "labeled_rows": int(len(labeled)),
        "columns": columns,
        "worst": compare(merged, theirs, columns),
    }
    if len(sys.argv) > 3:
        ranked = pd.read_parquet(sys.argv[3])
        ranked["date"] = pd.to_datetime(ranked["date"])
        symbols = labeled["symbol"].nunique()
        full = labeled.groupby("date")["symbol"].transform("count") == symbols
        raw = labeled[full]
        # (rank − 1)/(n − 1) of average ranks among the defined values.
        pct = raw.groupby("date")[columns].rank(method="average")
        n = raw.groupby("date")[columns].transform("count")
        pct = (pct - 1) / (n - 1)
        pct[["symbol", "date"]] = raw[["symbol", "date"]]
        both = ranked.merge(pct, on=["symbol", "date"], suffixes=("", "_pd"))
        theirs = both[[f"{c}_pd" for c in columns]].rename(columns=lambda c: c[:-3])
        report["ranked_rows"] = int(len(both))
        report["ranked_worst"] = compare(both, theirs, columns)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
