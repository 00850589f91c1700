//! Writing Parquet files (arrow-rs), shared by the jobs.
