//! Test helpers: comparison within a relative tolerance, NULLs exact.

/// Relative tolerance of the indicator tests (SPEC §3).
pub const REL_TOL: f64 = 1e-9;

pub fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[track_caller]
pub fn assert_close_series(got: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (None, None) => {}
            (Some(g), Some(w)) => assert!(close(*g, *w, REL_TOL), "bar {i}: got {g}, want {w}"),
            _ => panic!("bar {i}: got {g:?}, want {w:?}"),
        }
    }
}
