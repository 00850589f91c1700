//! Loading the models the production pointer names, checked: each file's
//! sha256 against the pointer, the feature config against the running
//! code, and every model against that feature config.

use anyhow::Context as _;

use crate::features::config::FeatureConfig;
use crate::features::transform::{Columns, TransformerBundle};
use crate::models::batch::BatchModel;
use crate::models::online::OnlineModel;
use crate::store::atomic::sha256_hex;
use crate::store::{ArtifactRef, ProductionPointer, WatchlistStore};

/// The live models of a watchlist.
pub struct ProductionModels {
    pub pointer: ProductionPointer,
    pub feature_config: FeatureConfig,
    pub bundle: TransformerBundle,
    pub online: OnlineModel,
    pub batch: BatchModel,
}

#[derive(Debug, thiserror::Error)]
#[error("no production model for {0}: run bootstrap first")]
pub struct NoProductionModel(pub String);

impl ProductionModels {
    /// Load the live models; `Ok(None)` when nothing was promoted yet.
    pub fn load(store: &WatchlistStore) -> anyhow::Result<Option<ProductionModels>> {
        let Some(pointer) = store.production()? else {
            return Ok(None);
        };
        let text = |kind: &str| -> anyhow::Result<(String, String)> {
            let reference = pointer
                .artifacts
                .get(kind)
                .with_context(|| format!("the production pointer of {} names no {kind}", store.name()))?;
            Ok((read_checked(store, reference)?, reference.name.clone()))
        };
        let (config_text, config_name) = text("feature_config")?;
        let feature_config: FeatureConfig = serde_json::from_str(&config_text)
            .with_context(|| format!("model file {config_name} is not a valid feature config"))?;
        feature_config
            .check_compatible()
            .with_context(|| format!("refusing {config_name}"))?;

        let (bundle_text, bundle_name) = text("transformer_bundle")?;
        let bundle: TransformerBundle = serde_json::from_str(&bundle_text)
            .with_context(|| format!("model file {bundle_name} is not a valid transformer bundle"))?;
        let (online_text, online_name) = text("model_online")?;
        let online: OnlineModel = serde_json::from_str(&online_text)
            .with_context(|| format!("model file {online_name} is not a valid online model"))?;
        let (batch_text, batch_name) = text("model_batch")?;
        let mut batch = BatchModel::from_text(&batch_text)
            .with_context(|| format!("model file {batch_name} is not a valid LightGBM model"))?;
        batch.calibration = bundle.batch_calibration;

        for (name, hash) in [
            (&bundle_name, &bundle.feature_hash),
            (&online_name, &online.feature_hash),
        ] {
            if *hash != feature_config.hash {
                anyhow::bail!(
                    "{name} was made for feature config {hash:.12}, not the live {:.12}",
                    feature_config.hash
                );
            }
        }
        let (width, batch_width) = (bundle.design_width(), bundle.width(Columns::Batch));
        if online.weights.len() != width || batch.n_features() != batch_width {
            anyhow::bail!(
                "models do not fit their bundle: {online_name} has {} weights, {batch_name} {} features, the bundle \
                 makes {width} and {batch_width} columns",
                online.weights.len(),
                batch.n_features()
            );
        }
        Ok(Some(ProductionModels {
            pointer,
            feature_config,
            bundle,
            online,
            batch,
        }))
    }

    /// Probabilities of the online model, the batch model and their ensemble.
    pub fn score(&self, features: &[&crate::features::Features]) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let design = self.bundle.matrix(features, Columns::Design);
        let raw = self.bundle.matrix(features, Columns::Batch);
        let online = self.online.predict(&design);
        let batch = self.batch.predict(&raw)?;
        let weight = self
            .feature_config
            .batch_weight
            .unwrap_or(crate::models::DEFAULT_BATCH_WEIGHT);
        let ensemble = crate::models::ensemble(&online, &batch, weight);
        Ok((online, batch, ensemble))
    }
}

/// A pointed-to file, its content checked against the pointer's sha256.
fn read_checked(store: &WatchlistStore, reference: &ArtifactRef) -> anyhow::Result<String> {
    let location = store.location(&reference.name);
    let bytes = store
        .read(&reference.name)
        .with_context(|| format!("cannot read model file {location}"))?;
    if sha256_hex(&bytes) != reference.sha256 {
        anyhow::bail!(
            "model file {location} is corrupted or was changed (sha256 differs from the production pointer); \
             `artifacts verify` lists what else is wrong, `artifacts rollback` returns to the previous models"
        );
    }
    String::from_utf8(bytes).with_context(|| format!("model file {location} is not text"))
}
