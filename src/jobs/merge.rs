//! `score --merge`: the parts a sharded `score` wrote for one as-of date,
//! joined into the day's predictions file — the file an unsharded `score`
//! writes, which `monitor` reads. Each part already carries its symbols'
//! ranks in the whole market (a shard reads every symbol's stored row for
//! the cross-section), so joining is ordering, not ranking again.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use chrono::NaiveDate;

use super::score::PART_KIND;
use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::jobs::dataset::resolve_as_of;
use crate::shard::Shard;
use crate::store::{ArtifactRecord, InputRef, NameStyle, NewArtifact, WatchlistStore};

pub const JOB: &str = "score.merge";

#[derive(Debug, Clone)]
pub struct MergeReport {
    pub as_of: NaiveDate,
    pub shards: u32,
    pub rows: usize,
    pub path: String,
}

pub async fn run(ctx: &Context) -> anyhow::Result<MergeReport> {
    let started = Instant::now();
    let store = ctx.watchlist_store()?;
    let _lock = store.lock_job(JOB)?;
    super::audited(ctx, JOB, merge(ctx, &store), |r| {
        (RunStatus::Ok, summary_line(r, started))
    })
    .await
}

/// One shard's newest part of the day.
struct Part {
    shard: Shard,
    record: ArtifactRecord,
    /// The models it was scored with.
    models: Vec<InputRef>,
}

async fn merge(ctx: &Context, store: &WatchlistStore) -> anyhow::Result<MergeReport> {
    let as_of = resolve_as_of(ctx).await?;
    let parts = newest_parts(store, as_of)?;
    let shards = parts[0].shard.n();
    if let Some(other) = parts.iter().find(|p| p.models != parts[0].models) {
        anyhow::bail!(
            "the parts of {as_of} were scored with different models ({} and {}: a promotion came between the \
             shards' runs); score every shard again",
            parts[0].record.name,
            other.record.name
        );
    }
    let batches = parts
        .iter()
        .map(|p| read_part(store, &p.record))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let schema = batches[0].schema();
    if let Some((p, _)) = parts.iter().zip(&batches).find(|(_, b)| b.schema() != schema) {
        anyhow::bail!("part {} has other columns than {}", p.record.name, parts[0].record.name);
    }
    let order = merged_order(&batches)?;
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, &order)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs: Vec<InputRef> = parts
        .iter()
        .map(|p| InputRef {
            name: p.record.name.clone(),
            sha256: p.record.sha256.clone(),
        })
        .collect();
    inputs.extend(parts[0].models.iter().cloned());
    let spec = NewArtifact::new("predictions", NameStyle::Timestamped, "parquet")
        .parameters(serde_json::json!({
            "as_of": as_of,
            "watchlist": ctx.settings.watchlist,
            "merged_shards": shards,
        }))
        .inputs(inputs);
    let rows = order.len();
    let record = store.write(&ctx.writer(), spec, |w| {
        crate::parquet_out::write_batch(w, schema.clone(), columns, rows)
    })?;
    Ok(MergeReport {
        as_of,
        shards,
        rows,
        path: store.location(&record.name),
    })
}

/// The newest part of each shard for `as_of`, in shard order. The shard
/// count is the newest part's; a shard without a part of that count is
/// an error naming it.
fn newest_parts(store: &WatchlistStore, as_of: NaiveDate) -> anyhow::Result<Vec<Part>> {
    let mut newest: BTreeMap<u32, Part> = BTreeMap::new();
    let mut count: Option<u32> = None;
    // Listed newest first.
    for record in store.list(Some(PART_KIND))? {
        let meta = store.meta(&record)?;
        let parameter = |key: &str| meta.parameters.get(key).and_then(|v| v.as_str()).map(str::to_string);
        if parameter("as_of").and_then(|d| d.parse::<NaiveDate>().ok()) != Some(as_of) {
            continue;
        }
        let Some(shard) = parameter("shard").and_then(|s| s.parse::<Shard>().ok()) else {
            continue;
        };
        let n = *count.get_or_insert(shard.n());
        if shard.n() == n {
            newest.entry(shard.k()).or_insert(Part {
                shard,
                record,
                models: meta.inputs,
            });
        }
    }
    let Some(n) = count else {
        anyhow::bail!("no score parts for {as_of}: run `score --shard K/N` on each shard first");
    };
    let missing: Vec<String> = (1..=n)
        .filter(|k| !newest.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "score parts of {as_of} missing for shard(s) {}: run `score --shard K/{n}` for them, then merge again",
            missing.join(", ")
        );
    }
    Ok(newest.into_values().collect())
}

fn read_part(store: &WatchlistStore, record: &ArtifactRecord) -> anyhow::Result<RecordBatch> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let read = || -> anyhow::Result<RecordBatch> {
        let bytes = store.read(&record.name)?;
        // The part as committed, or nothing: a damaged file that still
        // parses must not slip into the day's predictions.
        anyhow::ensure!(
            crate::store::atomic::sha256_hex(&bytes) == record.sha256,
            "its sha256 differs from the manifest's (run `artifacts verify`)"
        );
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?;
        // A shard may own no symbol of the watchlist: no batches, a schema.
        let schema = builder.schema().clone();
        let batches = builder.build()?.collect::<Result<Vec<_>, _>>()?;
        Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
    };
    read().with_context(|| format!("cannot read score part {}", store.location(&record.name)))
}

/// Every (part, row) in the day file's order: ranked rows by rank, then
/// the unscored ones by symbol (as `score` orders them).
fn merged_order(batches: &[RecordBatch]) -> anyhow::Result<Vec<(usize, usize)>> {
    let mut keys: Vec<(bool, i64, String, usize, usize)> = Vec::new();
    for (p, batch) in batches.iter().enumerate() {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| anyhow::anyhow!("a score part has no {name} column"))
        };
        let rank = column("rank")?
            .as_any()
            .downcast_ref::<Int64Array>()
            .context("rank is not an integer column")?;
        let symbol = column("symbol")?
            .as_any()
            .downcast_ref::<StringArray>()
            .context("symbol is not a text column")?;
        for row in 0..batch.num_rows() {
            let ranked = rank.is_valid(row);
            let r = if ranked { rank.value(row) } else { 0 };
            keys.push((!ranked, r, symbol.value(row).to_string(), p, row));
        }
    }
    keys.sort();
    Ok(keys.into_iter().map(|(.., p, row)| (p, row)).collect())
}

fn summary_line(r: &MergeReport, started: Instant) -> String {
    format!(
        "score --merge: {} part(s) of {} joined, {} row(s) in {} in {:.2} s",
        r.shards,
        r.as_of,
        r.rows,
        r.path,
        started.elapsed().as_secs_f64()
    )
}
