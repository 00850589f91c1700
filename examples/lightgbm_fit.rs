//! One LightGBM fit through swingml's own path (streamed datasets, the
//! bootstrap's parameters), for `bench/lightgbm_vs_python.sh`:
//!
//!   lightgbm_fit write DIR ROWS   a seeded matrix like bootstrap's (26
//!                                 numeric columns with gaps, 19 one-hot
//!                                 columns, a noisy label) and the
//!                                 parameters, as raw files in DIR
//!   lightgbm_fit time DIR ROUNDS  dataset and boosting seconds on them

use std::time::Instant;

use swingml::models::batch::{BatchModel, BatchParams, Datasets, Matrix};

const NUMERIC: usize = 26;
const ONE_HOT: usize = 19;
const WIDTH: usize = NUMERIC + ONE_HOT;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..) {
        Some([cmd, dir, n]) if cmd == "write" => write(dir.as_ref(), n.parse()?),
        Some([cmd, dir, n]) if cmd == "time" => time(dir.as_ref(), n.parse()?),
        _ => anyhow::bail!("usage: lightgbm_fit write DIR ROWS | time DIR ROUNDS"),
    }
}

fn write(dir: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    let mut state = 42u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::with_capacity(rows * WIDTH);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut row = [0.0; WIDTH];
        for v in &mut row[..NUMERIC] {
            *v = if next() < 0.02 { f64::NAN } else { next() * 2.0 - 1.0 };
        }
        // Five categorical features one-hot over 19 columns.
        for (start, len) in [(0, 3), (3, 3), (6, 4), (10, 4), (14, 5)] {
            row[NUMERIC + start + (next() * len as f64) as usize] = 1.0;
        }
        let signal = 0.8 * row[0] - 0.5 * row[3].max(0.0) + 0.3 * row[NUMERIC + 1] + row[7] * row[9];
        y.push(u8::from(signal + (next() - 0.5) * 1.5 > 0.0));
        x.extend(row.map(|v| if v.is_nan() { v } else { (v * 1e6).round() / 1e6 }));
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("x.f64"),
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )?;
    std::fs::write(dir.join("y.u8"), &y)?;
    std::fs::write(dir.join("width"), WIDTH.to_string())?;
    Ok(())
}

fn time(dir: &std::path::Path, rounds: u32) -> anyhow::Result<()> {
    let bytes = std::fs::read(dir.join("x.f64"))?;
    let x: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let y = std::fs::read(dir.join("y.u8"))?;
    let params = BatchParams::default();
    // The parameters the Python side reads: the bootstrap's, fixed rounds.
    std::fs::write(dir.join("params.txt"), params.lightgbm(7, rounds, false))?;
    let t = Instant::now();
    let data = Datasets::new(&Matrix::from_flat(&x, y, WIDTH), None)?;
    let dataset = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let model = BatchModel::train_rounds(&data, &params, 7, rounds)?;
    let train = t.elapsed().as_secs_f64();
    println!("rust dataset {dataset:.3} train {train:.3} rounds {}", model.rounds());
    Ok(())
}
