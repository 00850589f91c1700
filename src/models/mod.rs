//! Models: the time splits, the online logistic model, the LightGBM batch
//! model, their ensemble, and the metrics that judge them.

pub mod backtest;
pub mod batch;
mod boosting;
pub mod expected;
pub mod metrics;
pub mod online;
pub mod split;

/// The batch model's weights in the ensemble that bootstrap tries on the
/// walk-forward folds before the holdout.
pub const ENSEMBLE_BATCH_WEIGHTS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// The weight of models trained before the choice was made (the mean).
pub const DEFAULT_BATCH_WEIGHT: f64 = 0.5;

/// The ensemble: `batch_weight` of the batch model's probability and the
/// rest of the online model's.
pub fn ensemble(online: &[f64], batch: &[f64], batch_weight: f64) -> Vec<f64> {
    online
        .iter()
        .zip(batch)
        .map(|(a, b)| (1.0 - batch_weight) * a + batch_weight * b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::batch::{BatchModel, BatchParams, Datasets, Matrix};
    use super::metrics::auc;
    use super::online::{OnlineModel, OnlineParams};

    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    const WIDTH: usize = 5;

    /// Rows of 5 uniform features; the label is a step function of feature 0.
    fn known_answer(n: usize, rng: &mut Rng) -> (Vec<f64>, Vec<u8>) {
        let flat: Vec<f64> = (0..n * WIDTH).map(|_| rng.uniform() * 2.0 - 1.0).collect();
        let labels = flat.chunks(WIDTH).map(|r| u8::from(r[0] > 0.3)).collect();
        (flat, labels)
    }

    fn shuffled(labels: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut out = labels.to_vec();
        for i in (1..out.len()).rev() {
            let j = (rng.uniform() * (i + 1) as f64) as usize;
            out.swap(i, j);
        }
        out
    }

    fn fit_both(train: (&[f64], &[u8]), valid: (&[f64], &[u8])) -> (Vec<f64>, Vec<f64>) {
        let x = ndarray::ArrayView2::from_shape((train.1.len(), WIDTH), train.0).unwrap();
        let names = (0..WIDTH).map(|i| format!("f{i}")).collect();
        let online = OnlineModel::fit(x, train.1, names, "h".into(), &OnlineParams::default(), None).unwrap();
        let params = BatchParams {
            num_rounds: 100,
            min_data_in_leaf: 20,
            ..BatchParams::default()
        };
        let data = Datasets::new(
            &Matrix::from_flat(train.0, train.1.to_vec(), WIDTH),
            Some(&Matrix::from_flat(valid.0, valid.1.to_vec(), WIDTH)),
        )
        .unwrap();
        let (batch, batch_valid) = BatchModel::train(&data, &params, 7).unwrap();
        // The scores kept from training are the model's own predictions.
        let predicted = batch.predict(valid.0).unwrap();
        assert_eq!(batch_valid.len(), predicted.len());
        for (kept, p) in batch_valid.iter().zip(&predicted) {
            assert!((kept - p).abs() < 1e-9, "kept {kept}, predicted {p}");
        }
        (online.predict(valid.0), predicted)
    }

    #[test]
    fn both_models_learn_a_known_function_and_not_noise() {
        let mut rng = Rng(11);
        let (train_x, train_y) = known_answer(3000, &mut rng);
        let (valid_x, valid_y) = known_answer(1500, &mut rng);
        let (online, batch) = fit_both((&train_x, &train_y), (&valid_x, &valid_y));
        let (a_online, a_batch) = (auc(&online, &valid_y).unwrap(), auc(&batch, &valid_y).unwrap());
        assert!(
            a_online > 0.95 && a_batch > 0.95,
            "AUC online {a_online}, batch {a_batch}"
        );

        let noise_train = shuffled(&train_y, &mut rng);
        let noise_valid = shuffled(&valid_y, &mut rng);
        let (online, batch) = fit_both((&train_x, &noise_train), (&valid_x, &noise_valid));
        for (name, scores) in [("online", online), ("batch", batch)] {
            let a = auc(&scores, &noise_valid).unwrap();
            assert!((a - 0.5).abs() < 0.05, "{name} AUC on shuffled labels {a}");
        }
    }

    #[test]
    fn lightgbm_is_deterministic_and_round_trips_its_text_format() {
        let mut rng = Rng(3);
        let (x, y) = known_answer(1000, &mut rng);
        let params = BatchParams {
            num_rounds: 30,
            min_data_in_leaf: 20,
            ..BatchParams::default()
        };
        let train = || {
            let data = Datasets::new(&Matrix::from_flat(&x, y.clone(), WIDTH), None).unwrap();
            BatchModel::train_rounds(&data, &params, 42, 30).unwrap()
        };
        let (a, b) = (train(), train());
        let text = a.to_text().unwrap();
        assert_eq!(
            text,
            b.to_text().unwrap(),
            "same seed and data give the same model text"
        );
        assert!(text.starts_with("tree\nversion=v4"), "{}", &text[..40]);
        let loaded = BatchModel::from_text(&text).unwrap();
        assert_eq!(loaded.predict(&x[..50]).unwrap(), a.predict(&x[..50]).unwrap());
        assert_eq!(loaded.n_features(), WIDTH);
    }

    fn log_loss(p: &[f64], y: &[u8]) -> f64 {
        let each = p
            .iter()
            .zip(y)
            .map(|(&p, &y)| if y == 1 { -p.ln() } else { -(1.0 - p).ln() });
        each.sum::<f64>() / y.len() as f64
    }

    #[test]
    fn early_stopping_keeps_the_best_round_and_its_validation_scores() {
        let mut rng = Rng(5);
        let (x, y) = known_answer(2000, &mut rng);
        // Noisy labels: the validation loss bottoms out well before 300 rounds.
        let y = y
            .iter()
            .map(|&l| if rng.uniform() < 0.3 { 1 - l } else { l })
            .collect::<Vec<u8>>();
        let (vx, vy) = known_answer(1000, &mut rng);
        let params = BatchParams {
            num_rounds: 300,
            early_stopping_rounds: 10,
            min_data_in_leaf: 20,
            learning_rate: 0.3,
            ..BatchParams::default()
        };
        let train = Matrix::from_flat(&x, y.clone(), WIDTH);
        let valid = Matrix::from_flat(&vx, vy.clone(), WIDTH);
        let (model, kept) = BatchModel::train(&Datasets::new(&train, Some(&valid)).unwrap(), &params, 9).unwrap();
        let train = || Datasets::new(&train, None).unwrap();
        let best = model.rounds();
        assert!(best > 0 && best < 300, "stopped after {best} rounds");

        // The same rounds without a validation set: the same trees.
        let again = BatchModel::train_rounds(&train(), &params, 9, best).unwrap();
        for (a, b) in again.predict(&vx).unwrap().iter().zip(&kept) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // No round in the patience window beat the kept one.
        let later = BatchModel::train_rounds(&train(), &params, 9, best + 10).unwrap();
        let later_loss = log_loss(&later.predict(&vx).unwrap(), &vy);
        assert!(
            log_loss(&kept, &vy) <= later_loss,
            "{} > {later_loss}",
            log_loss(&kept, &vy)
        );
    }
}
