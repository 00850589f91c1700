"""The README's "Model quality" table from bench/variants.sh's runs.

    python3 bench/variants_table.py WORK_DIR VARIANT ...
    python3 bench/variants_table.py --summary WORK_DIR VARIANT ...

For each variant (WORK_DIR/VARIANT/main/ holds one bootstrap's
artifacts): per walk-forward fold, the pooled folds 1-3, and the lockbox,
the ensemble's rank IC and rank ICIR, the top-10's per-date excess over
the universe with its 95 % block-bootstrap interval, the annualised excess
of the marked-to-market books (top-10 CAGR − universe CAGR), the top-10
book's Sharpe, max drawdown and turnover, the same book with the regime
filter and with the volatility target, the universe book, then the run's
decision.
"""

import glob
import json
import sys


def newest(folder, prefix):
    paths = sorted(p for p in glob.glob(f"{folder}/{prefix}*.json") if not p.endswith(".meta.json"))
    return json.load(open(paths[-1]))


def pct(x, digits=3):
    return "n/a" if x is None else f"{100 * x:+.{digits}f} %"


def num(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


def row(name, ic, icir, bt):
    top, uni, ex = bt["top_k"], bt["universe"], bt["excess"]
    interval = (
        f"{pct(ex['mean'])} ({pct(ex.get('ci95_low'))} … {pct(ex.get('ci95_high'))})"
        if ex.get("mean") is not None
        else "n/a"
    )
    annual = None if top.get("cagr") is None or uni.get("cagr") is None else top["cagr"] - uni["cagr"]
    overlays = bt.get("overlays") or {}

    def book(stats):
        if not stats:
            return "n/a"
        return f"{num(stats.get('sharpe'), 2)} / {pct(-stats['max_drawdown'], 1)}"

    return (
        f"| {name} | {num(ic, 4)} | {num(icir, 2)} | {interval} | {pct(annual, 1)} | {num(top.get('sharpe'), 2)} "
        f"| {pct(-top['max_drawdown'], 1)} | {num(top.get('turnover'), 3)} | {book(overlays.get('regime'))} "
        f"| {book(overlays.get('vol_target'))} | {book(uni)} |"
    )


def table(work, variant):
    folder = f"{work}/{variant}/main"
    bt = newest(folder, "backtest_2")
    metrics = newest(folder, "batch_train_metrics_")
    icir = {f["fold"]: f["metrics"].get("rank_ic_ir") for f in metrics["walk_forward_ensemble"]}
    lines = [
        f"**{variant}** (objective {metrics.get('objective', 'binary')}, families "
        f"{', '.join(metrics.get('families') or []) or 'none'}):",
        "",
        "| window | rank IC | rank ICIR | excess per date (95 % CI) | annualised excess | top-10 Sharpe "
        "| top-10 max DD | turnover | regime filter Sharpe / DD | vol target Sharpe / DD | universe Sharpe / DD |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in bt["folds"]:
        name = f"fold {f['fold']}" + (" (holdout)" if f["is_holdout"] else "")
        lines.append(row(name, f["rank_ic"], icir.get(f["fold"]), f["backtest"]))
    if bt.get("pooled"):
        lines.append(row("pooled folds 1-3", None, None, bt["pooled"]))
    lb = bt.get("lockbox")
    if lb:
        lines.append(row("lockbox", lb["ensemble"].get("rank_ic"), lb["ensemble"].get("rank_ic_ir"), lb["backtest"]))
    lines += ["", f"decision: {bt['decision']}", ""]
    return "\n".join(lines)


def ci(ex):
    if ex.get("mean") is None:
        return "n/a"
    return f"{pct(ex['mean'])} ({pct(ex.get('ci95_low'))} … {pct(ex.get('ci95_high'))})"


def summary(work, variants):
    """One line per variant: the figures the issue's targets name."""
    lines = [
        "| variant | ensemble rank IC, folds 1-4 (mean) | rank ICIR (mean) | batch alone rank IC (mean) "
        "| batch weight | excess per date, pooled folds 1-3 | holdout | lockbox "
        "| holdout top-10 Sharpe / max DD | lockbox top-10 Sharpe / max DD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        folder = f"{work}/{v}/main"
        bt = newest(folder, "backtest_2")
        metrics = newest(folder, "batch_train_metrics_")
        ics = [f["rank_ic"] for f in bt["folds"]]
        irs = [f["metrics"].get("rank_ic_ir") or 0.0 for f in metrics["walk_forward_ensemble"]]
        batch = [f["metrics"].get("rank_ic") or 0.0 for f in metrics["walk_forward"]]
        hold, lock = bt["holdout"], bt["lockbox"]["backtest"]
        book = lambda b: f"{num(b['top_k'].get('sharpe'), 2)} / {pct(-b['top_k']['max_drawdown'], 1)}"
        weight = metrics.get("ensemble_batch_weight")
        lines.append(
            f"| {v} | {' / '.join(num(x, 3) for x in ics)} ({num(sum(ics) / len(ics), 3)}) "
            f"| {num(sum(irs) / len(irs), 2)} | {num(sum(batch) / len(batch), 3)} "
            f"| {'n/a' if weight is None else weight} | {ci(bt['pooled']['excess'])} | {ci(hold['excess'])} "
            f"| {ci(lock['excess'])} | {book(hold)} | {book(lock)} |"
        )
    return "\n".join(lines)


def main():
    if sys.argv[1] == "--summary":
        print(summary(sys.argv[2], sys.argv[3:]))
        return
    work, variants = sys.argv[1], sys.argv[2:]
    for v in variants:
        print(table(work, v))


if __name__ == "__main__":
    main()
