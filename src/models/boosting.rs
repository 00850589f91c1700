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

/// Training rows in row-major order.
pub struct Matrix<'a> {
    pub flat: &'a [f64],
    pub labels: &'a [u8],
    pub width: usize,
}

/// A boosted model in LightGBM's text format, and the probabilities it
/// gives the validation rows when there were any.
pub struct Boosted {
    pub text: String,
    pub valid_scores: Option<Vec<f64>>,
}

/// Boost up to `rounds` rounds with LightGBM `params` ("key=value"
/// separated by spaces). With `valid` and `early_stopping`, stop once the
/// validation log loss has not improved for that many rounds and drop
/// those rounds.
pub fn boost(
    train: &Matrix,
    valid: Option<&Matrix>,
    params: &str,
    rounds: u32,
    early_stopping: Option<u32>,
) -> anyhow::Result<Boosted> {
    let train_set = DatasetHandle::new(train, None)?;
    let valid_set = valid.map(|v| DatasetHandle::new(v, Some(&train_set))).transpose()?;
    let mut booster = BoosterHandle::new(&train_set, params)?;
    if let Some(v) = &valid_set {
        booster.add_valid(v)?;
    }
    let stopping = early_stopping.filter(|_| valid_set.is_some());
    let mut best = f64::INFINITY;
    let mut stalled = 0u32;
    for _ in 0..rounds {
        if booster.update_one_round()? {
            break; // no split left to make
        }
        let Some(patience) = stopping else { continue };
        // The first metric of the first validation set: the log loss.
        let Some(&loss) = booster.eval(1)?.first() else {
            continue;
        };
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

/// A LightGBM dataset, freed on drop.
struct DatasetHandle(sys::DatasetHandle);

impl DatasetHandle {
    /// A dataset of row-major rows; a validation set takes its bin
    /// boundaries from `reference`, the training set.
    fn new(m: &Matrix, reference: Option<&DatasetHandle>) -> anyhow::Result<DatasetHandle> {
        let rows = m.labels.len();
        anyhow::ensure!(
            rows > 0 && m.width > 0 && m.flat.len() == rows * m.width,
            "a LightGBM dataset needs rows and columns ({rows} labels, {} values, width {})",
            m.flat.len(),
            m.width
        );
        let (rows, width) = (c_int::try_from(rows)?, c_int::try_from(m.width)?);
        let no_params = CString::default();
        let mut handle = null_mut();
        // SAFETY: `flat` holds rows × width f64 values in row-major order;
        // LightGBM copies them into its bins before returning.
        check(unsafe {
            sys::LGBM_DatasetCreateFromMat(
                m.flat.as_ptr().cast(),
                sys::C_API_DTYPE_FLOAT64 as c_int,
                rows,
                width,
                1,
                no_params.as_ptr(),
                reference.map_or(null_mut(), |r| r.0),
                &mut handle,
            )
        })?;
        let dataset = DatasetHandle(handle);
        let labels: Vec<f32> = m.labels.iter().map(|&l| f32::from(l)).collect();
        // SAFETY: one f32 label per row; LightGBM copies them.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                dataset.0,
                c"label".as_ptr(),
                labels.as_ptr().cast(),
                rows,
                sys::C_API_DTYPE_FLOAT32 as c_int,
            )
        })?;
        Ok(dataset)
    }
}

impl Drop for DatasetHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_DatasetCreateFromMat and is
        // freed once; the booster that used it is dropped first.
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
