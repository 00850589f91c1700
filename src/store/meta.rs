//! The sidecar `<name>.meta.json` beside every artifact: what it is, who
//! made it from what (lineage), and for Parquet its schema and row count.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub name: String,
    pub kind: String,
    pub version: u32,
    pub sha256: String,
    pub bytes: u64,
    pub created_at: String,
    pub watchlist: String,
    pub job: String,
    pub run_id: String,
    pub program_version: String,
    /// The parameters of the run that made it (flags, thresholds, seeds).
    pub parameters: serde_json::Value,
    /// Lineage: every input with its hash.
    pub inputs: Vec<InputRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<ParquetInfo>,
}

/// An input of an artifact: another artifact, a source file, or a
/// database range, named with the sha256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetInfo {
    pub rows: u64,
    pub schema: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

impl ParquetInfo {
    pub fn from_schema(schema: &arrow_schema::Schema, rows: u64) -> ParquetInfo {
        ParquetInfo {
            rows,
            schema: schema
                .fields()
                .iter()
                .map(|f| ColumnInfo {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
        }
    }
}
