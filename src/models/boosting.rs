//! LightGBM's boosting loop, driven through its C API.
//!
//! lightgbm3 trains with early stopping but keeps the validation set's
//! scores to itself. Those scores are the batch model's validation
//! predictions — LightGBM updates them every round for the stopping rule,
//! and rolling a round back takes its tree's outputs off them — so this
//! loop hands them back instead of predicting the validation rows a second
//! time. The rounds, the stopping rule and the resulting model are the
//! same as `lightgbm3::Booster::train_with_valid`.

use std::ffi::{CStr, CString, c_int};
use std::ptr::null_mut;

use lightgbm3_sys as sys;

/// Rows with their labels, produced on demand in row-major chunks: LightGBM
/// bins them as they come, so a fit never holds every raw value at once
/// (on a whole market those would be the largest thing in memory, larger
/// than the snapshots themselves).
pub struct Matrix<'a> {
    pub rows: usize,
    pub width: usize,
    /// The target of each row: a class (0/1), a return, or a grade.
    pub labels: Vec<f32>,
    /// For a ranking objective, the sizes of the consecutive groups of
    /// rows ranked together (one per scan date); empty otherwise.
    pub groups: Vec<i32>,
    pub fill: RowFill<'a>,
}

/// Produces the rows at the given positions (ascending), `width` values
/// each, row-major.
pub type RowFill<'a> = Box<dyn Fn(&[usize]) -> Vec<f64> + Sync + 'a>;

impl<'a> Matrix<'a> {
    /// Rows already in memory.
    pub fn from_flat(flat: &'a [f64], labels: Vec<u8>, width: usize) -> Matrix<'a> {
        Matrix {
            rows: labels.len(),
            width,
            labels: labels.into_iter().map(f32::from).collect(),
            groups: Vec::new(),
            fill: Box::new(move |at| {
                at.iter()
                    .flat_map(|&i| &flat[i * width..(i + 1) * width])
                    .copied()
                    .collect()
            }),
        }
    }
}

/// LightGBM's binned training rows and, for early stopping, validation
/// rows binned on the training rows' boundaries.
pub struct Datasets {
    train: DatasetHandle,
    valid: Option<DatasetHandle>,
}

impl Datasets {
    pub fn new(train: &Matrix, valid: Option<&Matrix>) -> anyhow::Result<Datasets> {
        let train = DatasetHandle::stream(train, None)?;
        let valid = valid.map(|v| DatasetHandle::stream(v, Some(&train))).transpose()?;
        Ok(Datasets { train, valid })
    }
}

/// A boosted model in LightGBM's text format, and the probabilities it
/// gives the validation rows when there were any.
pub struct Boosted {
    pub text: String,
    pub valid_scores: Option<Vec<f64>>,
}

/// Early stopping: patience in rounds, and whether the validation
/// metric (the first one `params` names) is better when higher.
#[derive(Debug, Clone, Copy)]
pub struct Stopping {
    pub patience: u32,
    pub higher_is_better: bool,
}

/// Boost up to `rounds` rounds with LightGBM `params` ("key=value"
/// separated by spaces). With `valid` and `early_stopping`, stop once the
/// validation metric has not improved for that many rounds and drop
/// those rounds.
pub fn boost(data: &Datasets, params: &str, rounds: u32, early_stopping: Option<Stopping>) -> anyhow::Result<Boosted> {
    let valid_set = data.valid.as_ref();
    let mut booster = BoosterHandle::new(&data.train, params)?;
    if let Some(v) = valid_set {
        booster.add_valid(v)?;
    }
    let stopping = early_stopping.filter(|_| valid_set.is_some());
    let mut best = f64::INFINITY;
    let mut stalled = 0u32;
    for _ in 0..rounds {
        if booster.update_one_round()? {
            break; // no split left to make
        }
        let Some(Stopping {
            patience,
            higher_is_better,
        }) = stopping
        else {
            continue;
        };
        // The first metric of the first validation set, as a loss.
        let Some(&metric) = booster.eval(1)?.first() else {
            continue;
        };
        let loss = if higher_is_better { -metric } else { metric };
        if loss < best {
            best = loss;
            stalled = 0;
        } else {
            stalled += 1;
            if stalled >= patience {
                for _ in 0..stalled {
                    booster.rollback_one_round()?;
                }
                break;
            }
        }
    }
    let valid_scores = valid_set.as_ref().map(|_| booster.predictions(1)).transpose()?;
    Ok(Boosted {
        text: booster.to_text()?,
        valid_scores,
    })
}

/// Turn a LightGBM return code into an error carrying LightGBM's message.
fn check(code: c_int) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: LightGBM returns a pointer to its thread-local, NUL-terminated
    // message buffer, valid until the next call on this thread.
    let message = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) };
    anyhow::bail!("LightGBM: {}", message.to_string_lossy())
}

/// The most rows LightGBM ranks in one query group.
const MAX_GROUP_ROWS: i32 = 10_000;

/// Rows handed to LightGBM per push.
const PUSH_ROWS: usize = 65_536;

/// Values LightGBM's sampling counts as zero (its `kZeroThreshold`, a
/// float constant).
const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// A LightGBM dataset, freed on drop.
struct DatasetHandle(sys::DatasetHandle);

// SAFETY: a dataset has no tie to the thread that made it; LightGBM only
// needs that two threads do not use one handle at once, which `&mut`-free
// use after construction and ownership guarantee.
unsafe impl Send for DatasetHandle {}

impl DatasetHandle {
    /// A dataset of `m`'s rows, pushed chunk by chunk. Without a
    /// `reference` the bin boundaries come from the rows LightGBM's own
    /// matrix constructor samples (`LGBM_SampleIndices`, the same seed and
    /// count), with the same values, so the bins — and the models — are
    /// those of `LGBM_DatasetCreateFromMat` on the whole matrix. A
    /// validation set takes its boundaries from `reference`.
    fn stream(m: &Matrix, reference: Option<&DatasetHandle>) -> anyhow::Result<DatasetHandle> {
        anyhow::ensure!(
            m.rows > 0 && m.width > 0 && m.labels.len() == m.rows,
            "a LightGBM dataset needs rows and columns ({} rows, {} labels, width {})",
            m.rows,
            m.labels.len(),
            m.width
        );
        let (rows, width) = (i32::try_from(m.rows)?, i32::try_from(m.width)?);
        let mut handle = null_mut();
        match reference {
            None => {
                let mut sample = Sample::of(m)?;
                // SAFETY: `sample` holds `width` column pointers and index
                // pointers with `per_column` entries each, for `count`
                // sampled rows; LightGBM reads them before returning.
                check(unsafe {
                    sys::LGBM_DatasetCreateFromSampledColumn(
                        sample.values.as_mut_ptr(),
                        sample.indices.as_mut_ptr(),
                        width,
                        sample.per_column.as_ptr(),
                        sample.count,
                        rows,
                        i64::from(rows),
                        CString::default().as_ptr(),
                        &mut handle,
                    )
                })?
            }
            // SAFETY: a live reference dataset; the new one copies its bin mappers.
            Some(r) => check(unsafe { sys::LGBM_DatasetCreateByReference(r.0, i64::from(rows), &mut handle) })?,
        }
        let dataset = DatasetHandle(handle);
        for start in (0..m.rows).step_by(PUSH_ROWS) {
            let end = (start + PUSH_ROWS).min(m.rows);
            let chunk = (m.fill)(&(start..end).collect::<Vec<_>>());
            anyhow::ensure!(
                chunk.len() == (end - start) * m.width,
                "a matrix chunk has the wrong size"
            );
            // SAFETY: `chunk` holds (end − start) × width f64 values in
            // row-major order; LightGBM bins them before returning (the
            // last push finishes the dataset).
            check(unsafe {
                sys::LGBM_DatasetPushRows(
                    dataset.0,
                    chunk.as_ptr().cast(),
                    sys::C_API_DTYPE_FLOAT64 as c_int,
                    i32::try_from(end - start)?,
                    width,
                    i32::try_from(start)?,
                )
            })?;
        }
        // SAFETY: one f32 label per row; LightGBM copies them.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                dataset.0,
                c"label".as_ptr(),
                m.labels.as_ptr().cast(),
                rows,
                sys::C_API_DTYPE_FLOAT32 as c_int,
            )
        })?;
        if !m.groups.is_empty() {
            let largest = m.groups.iter().copied().max().unwrap_or(0);
            anyhow::ensure!(
                largest <= MAX_GROUP_ROWS,
                "lambdarank ranks at most {MAX_GROUP_ROWS} rows per scan date (LightGBM's limit); a date here has \
                 {largest}: use objective = \"regression\" for a market this wide"
            );
            anyhow::ensure!(
                m.groups.iter().map(|&g| i64::from(g)).sum::<i64>() == i64::from(rows),
                "ranking groups do not cover the rows"
            );
            // SAFETY: one i32 size per group; LightGBM copies them.
            check(unsafe {
                sys::LGBM_DatasetSetField(
                    dataset.0,
                    c"group".as_ptr(),
                    m.groups.as_ptr().cast(),
                    i32::try_from(m.groups.len())?,
                    sys::C_API_DTYPE_INT32 as c_int,
                )
            })?;
        }
        Ok(dataset)
    }
}

/// The rows LightGBM's matrix constructor samples for its bin boundaries,
/// column by column, without the values its sampling counts as zero —
/// what `LGBM_DatasetCreateFromSampledColumn` takes.
struct Sample {
    count: i32,
    per_column: Vec<c_int>,
    values: Vec<*mut f64>,
    indices: Vec<*mut c_int>,
    // The storage `values` and `indices` point into.
    _columns: Vec<Vec<f64>>,
    _positions: Vec<Vec<c_int>>,
}

impl Sample {
    fn of(m: &Matrix) -> anyhow::Result<Sample> {
        let rows = i32::try_from(m.rows)?;
        let no_params = CString::default();
        let mut count: c_int = 0;
        // SAFETY: an out-parameter on the stack.
        check(unsafe { sys::LGBM_GetSampleCount(rows, no_params.as_ptr(), &mut count) })?;
        let mut picked = vec![0i32; usize::try_from(count)?];
        let mut len: i32 = 0;
        // SAFETY: `picked` has room for the sample count LightGBM reported.
        check(unsafe { sys::LGBM_SampleIndices(rows, no_params.as_ptr(), picked.as_mut_ptr().cast(), &mut len) })?;
        picked.truncate(usize::try_from(len)?);
        let at: Vec<usize> = picked.iter().map(|&i| i as usize).collect();
        let values = (m.fill)(&at);
        let mut columns = vec![Vec::new(); m.width];
        let mut positions = vec![Vec::new(); m.width];
        for (k, row) in values.chunks_exact(m.width).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                if x.abs() > ZERO_THRESHOLD || x.is_nan() {
                    columns[j].push(x);
                    positions[j].push(k as c_int);
                }
            }
        }
        Ok(Sample {
            count: len,
            per_column: columns.iter().map(|c| c.len() as c_int).collect(),
            values: columns.iter_mut().map(|c| c.as_mut_ptr()).collect(),
            indices: positions.iter_mut().map(|p| p.as_mut_ptr()).collect(),
            _columns: columns,
            _positions: positions,
        })
    }
}

impl Drop for DatasetHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LightGBM's dataset constructors and
        // is freed once; the booster that used it is dropped first.
        unsafe { sys::LGBM_DatasetFree(self.0) };
    }
}

/// A LightGBM booster in training, freed on drop. It must not outlive the
/// datasets it was given.
struct BoosterHandle(sys::BoosterHandle);

impl BoosterHandle {
    fn new(train: &DatasetHandle, params: &str) -> anyhow::Result<BoosterHandle> {
        let params = CString::new(params)?;
        let mut handle = null_mut();
        // SAFETY: a live dataset and a NUL-terminated parameter string.
        check(unsafe { sys::LGBM_BoosterCreate(train.0, params.as_ptr(), &mut handle) })?;
        Ok(BoosterHandle(handle))
    }

    fn add_valid(&mut self, valid: &DatasetHandle) -> anyhow::Result<()> {
        // SAFETY: live handles; the dataset outlives the booster in `boost`.
        check(unsafe { sys::LGBM_BoosterAddValidData(self.0, valid.0) })
    }

    /// One boosting round; true when no tree could be grown.
    fn update_one_round(&mut self) -> anyhow::Result<bool> {
        let mut finished: c_int = 0;
        // SAFETY: a live booster and an out-parameter on the stack.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(self.0, &mut finished) })?;
        Ok(finished != 0)
    }

    fn rollback_one_round(&mut self) -> anyhow::Result<()> {
        // SAFETY: a live booster.
        check(unsafe { sys::LGBM_BoosterRollbackOneIter(self.0) })
    }

    /// The metrics on data set `data_idx` (0 training, 1 the first validation set).
    fn eval(&self, data_idx: c_int) -> anyhow::Result<Vec<f64>> {
        let mut count: c_int = 0;
        // SAFETY: a live booster and an out-parameter on the stack.
        check(unsafe { sys::LGBM_BoosterGetEvalCounts(self.0, &mut count) })?;
        let mut out = vec![0.0; usize::try_from(count)?];
        let mut len: c_int = 0;
        // SAFETY: `out` has room for every metric LightGBM reported.
        check(unsafe { sys::LGBM_BoosterGetEval(self.0, data_idx, &mut len, out.as_mut_ptr()) })?;
        out.truncate(usize::try_from(len)?);
        Ok(out)
    }

    /// The current model's probabilities on data set `data_idx`.
    fn predictions(&self, data_idx: c_int) -> anyhow::Result<Vec<f64>> {
        let mut len: i64 = 0;
        // SAFETY: a live booster and an out-parameter on the stack.
        check(unsafe { sys::LGBM_BoosterGetNumPredict(self.0, data_idx, &mut len) })?;
        let mut out = vec![0.0; usize::try_from(len)?];
        // SAFETY: `out` has the length LightGBM asked for.
        check(unsafe { sys::LGBM_BoosterGetPredict(self.0, data_idx, &mut len, out.as_mut_ptr()) })?;
        out.truncate(usize::try_from(len)?);
        Ok(out)
    }

    /// Every round in LightGBM's text format.
    fn to_text(&self) -> anyhow::Result<String> {
        let save = |buffer: &mut [u8]| -> anyhow::Result<usize> {
            let mut len: i64 = 0;
            // SAFETY: LightGBM writes at most `buffer.len()` bytes and
            // reports the length it needs (NUL included).
            check(unsafe {
                sys::LGBM_BoosterSaveModelToString(
                    self.0,
                    0,
                    -1,
                    sys::C_API_FEATURE_IMPORTANCE_SPLIT as c_int,
                    i64::try_from(buffer.len())?,
                    &mut len,
                    buffer.as_mut_ptr().cast(),
                )
            })?;
            Ok(usize::try_from(len)?)
        };
        let mut buffer = vec![0u8; save(&mut [])?];
        let written = save(&mut buffer)?;
        anyhow::ensure!(
            written == buffer.len(),
            "LightGBM's model text changed size while saved"
        );
        let text = CStr::from_bytes_with_nul(&buffer)?;
        Ok(text.to_str()?.to_owned())
    }
}

impl Drop for BoosterHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_BoosterCreate and is freed once.
        unsafe { sys::LGBM_BoosterFree(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl DatasetHandle {
        /// LightGBM's own constructor over the whole matrix in memory: what
        /// [`DatasetHandle::stream`] must equal.
        fn from_mat(flat: &[f64], labels: &[u8], width: usize, reference: Option<&DatasetHandle>) -> DatasetHandle {
            let mut handle = null_mut();
            let no_params = CString::default();
            // SAFETY: `flat` holds labels.len() × width row-major values.
            check(unsafe {
                sys::LGBM_DatasetCreateFromMat(
                    flat.as_ptr().cast(),
                    sys::C_API_DTYPE_FLOAT64 as c_int,
                    labels.len() as i32,
                    width as i32,
                    1,
                    no_params.as_ptr(),
                    reference.map_or(null_mut(), |r| r.0),
                    &mut handle,
                )
            })
            .unwrap();
            let labels: Vec<f32> = labels.iter().map(|&l| f32::from(l)).collect();
            // SAFETY: one f32 label per row.
            check(unsafe {
                sys::LGBM_DatasetSetField(
                    handle,
                    c"label".as_ptr(),
                    labels.as_ptr().cast(),
                    labels.len() as i32,
                    sys::C_API_DTYPE_FLOAT32 as c_int,
                )
            })
            .unwrap();
            DatasetHandle(handle)
        }
    }

    /// Rows with what the bins must get right: NaNs, exact zeros, values
    /// below LightGBM's zero threshold, a 0/1 column, a column with far
    /// more distinct values than bins; the label depends on three columns.
    fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
        const WIDTH: usize = 6;
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut flat = Vec::with_capacity(n * WIDTH);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let (a, b, c, d) = (next(), next(), next(), next());
            let row = [
                a * 10.0 - 5.0,
                if b < 0.1 { f64::NAN } else { b },
                if c < 0.3 { 0.0 } else { c - 0.5 },
                if d < 0.5 { 1.0 } else { 0.0 },
                if a < 0.05 { 1e-40 } else { a * b },
                (a * 1e6).round(),
            ];
            flat.extend(row);
            let score = row[0] * 0.4 + row[2] * 2.0 + row[3] - 0.5 + (next() - 0.5) * 2.0;
            labels.push(u8::from(score > 0.0));
        }
        (flat, labels)
    }

    #[test]
    fn streamed_datasets_train_the_models_of_lightgbms_whole_matrix_constructor() {
        // More rows than LightGBM samples for its bins (200 000): the
        // sampled rows must be the ones it picks.
        let (x, y) = rows(230_000, 1);
        let (vx, vy) = rows(20_000, 2);
        let params = "objective=binary metric=binary_logloss num_leaves=15 learning_rate=0.2 \
                      min_data_in_leaf=50 seed=3 deterministic=true force_row_wise=true verbosity=-1";
        let whole = {
            let train = DatasetHandle::from_mat(&x, &y, 6, None);
            let valid = DatasetHandle::from_mat(&vx, &vy, 6, Some(&train));
            Datasets {
                train,
                valid: Some(valid),
            }
        };
        let streamed = Datasets::new(
            &Matrix::from_flat(&x, y.clone(), 6),
            Some(&Matrix::from_flat(&vx, vy.clone(), 6)),
        )
        .unwrap();
        let stop = Some(Stopping {
            patience: 5,
            higher_is_better: false,
        });
        let a = boost(&whole, params, 40, stop).unwrap();
        let b = boost(&streamed, params, 40, stop).unwrap();
        assert!(a.text.contains("Tree=10"), "trained some trees");
        assert_eq!(a.text, b.text);
        assert_eq!(a.valid_scores, b.valid_scores);
    }
}
