//! The predictions `score` wrote: which file holds each as-of date, and
//! the scored rows of one file, read with a polars lazy scan.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::NaiveDate;

use crate::features::{CATEGORICAL_FEATURES, NUMERIC_FEATURES};
use crate::labels::Label;
use crate::store::WatchlistStore;

/// One scored prediction and, once its horizon completed, its outcome.
#[derive(Debug, Clone)]
pub(super) struct Scored {
    pub(super) symbol: String,
    pub(super) as_of: NaiveDate,
    pub(super) p_score: f64,
    pub(super) rank: i64,
    pub(super) in_top_k: bool,
    pub(super) rule_buy: bool,
    pub(super) numeric: Vec<Option<f64>>,
    pub(super) categorical: Vec<Option<String>>,
    pub(super) outcome: Option<Label>,
}

/// A predictions file of the window.
pub(super) struct PredictionsFile {
    pub(super) name: String,
    pub(super) sha256: String,
}

/// The newest predictions file of each as-of date up to `as_of`.
pub(super) fn predictions_files(
    store: &WatchlistStore,
    as_of: NaiveDate,
) -> anyhow::Result<BTreeMap<NaiveDate, PredictionsFile>> {
    let mut out = BTreeMap::new();
    // Listed newest first: the first file of a date is its latest score run.
    for record in store.list(Some("predictions"))? {
        let meta = store.meta(&record)?;
        let Some(date) = meta
            .parameters
            .get("as_of")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<NaiveDate>().ok())
        else {
            continue;
        };
        if date <= as_of {
            out.entry(date).or_insert(PredictionsFile {
                name: record.name.clone(),
                sha256: record.sha256.clone(),
            });
        }
    }
    Ok(out)
}

/// The scored rows of one predictions file, through a polars lazy scan.
pub(super) fn read_predictions(path: &Path) -> anyhow::Result<Vec<Scored>> {
    use polars::prelude::*;
    let text = path.to_str().context("a predictions path that is not UTF-8")?;
    let mut columns = vec![
        col("symbol"),
        col("as_of").cast(DataType::Int32),
        col("p_score"),
        col("rank"),
        col("in_top_k"),
        col("ta_recommendation"),
    ];
    columns.extend(NUMERIC_FEATURES.iter().map(|n| col(*n)));
    let categorical: Vec<&str> = CATEGORICAL_FEATURES
        .iter()
        .copied()
        .filter(|n| *n != "ta_recommendation")
        .collect();
    columns.extend(categorical.iter().map(|n| col(*n)));
    let mut scan = LazyFrame::scan_parquet(PlRefPath::new(text), ScanArgsParquet::default())?;
    // Predictions of a program with other features cannot be compared.
    let schema = scan.collect_schema()?;
    let missing: Vec<&str> = [
        "symbol",
        "as_of",
        "p_score",
        "rank",
        "in_top_k",
        "ta_recommendation",
        "status",
    ]
    .into_iter()
    .chain(NUMERIC_FEATURES)
    .chain(categorical.iter().copied())
    .filter(|c| schema.get(c).is_none())
    .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "scored with another feature config than this program's (missing columns: {})",
            missing.join(", ")
        );
    }
    let frame = scan.filter(col("status").eq(lit("scored"))).select(columns).collect()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let strings = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        Ok(frame
            .column(name)?
            .str()?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    };
    let floats = |name: &str| -> anyhow::Result<Vec<Option<f64>>> { Ok(frame.column(name)?.f64()?.iter().collect()) };
    let symbols = strings("symbol")?;
    let dates: Vec<Option<i32>> = frame.column("as_of")?.i32()?.iter().collect();
    let p = floats("p_score")?;
    let rank: Vec<Option<i64>> = frame.column("rank")?.i64()?.iter().collect();
    let in_top_k: Vec<Option<bool>> = frame.column("in_top_k")?.bool()?.iter().collect();
    let rule = strings("ta_recommendation")?;
    let numeric: Vec<Vec<Option<f64>>> = NUMERIC_FEATURES
        .iter()
        .map(|n| floats(n))
        .collect::<anyhow::Result<_>>()?;
    let mut cats: Vec<Vec<Option<String>>> = Vec::new();
    for name in CATEGORICAL_FEATURES {
        cats.push(if name == "ta_recommendation" {
            rule.clone()
        } else {
            strings(name)?
        });
    }
    let mut out = Vec::with_capacity(symbols.len());
    for i in 0..symbols.len() {
        let (Some(symbol), Some(day), Some(p_score), Some(rank)) = (&symbols[i], dates[i], p[i], rank[i]) else {
            anyhow::bail!("a scored row without symbol, as_of, p_score or rank");
        };
        out.push(Scored {
            symbol: symbol.clone(),
            as_of: epoch + chrono::Days::new(day as u64),
            p_score,
            rank,
            in_top_k: in_top_k[i].unwrap_or(false),
            rule_buy: rule[i].as_deref() == Some("BUY"),
            numeric: numeric.iter().map(|c| c[i]).collect(),
            categorical: cats.iter().map(|c| c[i].clone()).collect(),
            outcome: None,
        });
    }
    Ok(out)
}
