//! Fixed-size windows over a stream: a ring of the last n values, and
//! rolling maximum / minimum with a monotonic queue (O(1) amortised).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The last `capacity` values, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    capacity: usize,
    values: VecDeque<f64>,
}

impl Window {
    pub fn new(capacity: usize) -> Window {
        Window {
            capacity,
            values: VecDeque::with_capacity(capacity + 1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Push a value; returns the value that fell out, if any.
    pub fn push(&mut self, x: f64) -> Option<f64> {
        self.values.push_back(x);
        if self.values.len() > self.capacity {
            self.values.pop_front()
        } else {
            None
        }
    }

    pub fn is_full(&self) -> bool {
        self.values.len() == self.capacity
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value `back` steps before the newest (0 = newest).
    pub fn back(&self, back: usize) -> Option<f64> {
        self.values.len().checked_sub(back + 1).map(|i| self.values[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied()
    }

    /// Population (ddof = 0) or sample (ddof = 1) standard deviation, in two
    /// passes over the window: a flat window gives exactly 0, and there is
    /// no running sum of squares to drift or go negative.
    pub fn stdev(&self, ddof: usize) -> Option<f64> {
        let n = self.values.len();
        if n <= ddof || n == 0 {
            return None;
        }
        // The mean of n equal values can be off by an ulp; a flat window
        // is exactly 0 by definition.
        let first = self.values[0];
        if self.values.iter().all(|&x| x == first) {
            return Some(0.0);
        }
        let mean = self.values.iter().sum::<f64>() / n as f64;
        let ss: f64 = self.values.iter().map(|x| (x - mean) * (x - mean)).sum();
        Some((ss / (n - ddof) as f64).sqrt())
    }
}

/// Rolling maximum (or minimum) of the last n values; first value at bar n−1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingExtreme {
    n: usize,
    want_max: bool,
    seen: usize,
    /// (bar index, value), values monotonic from front to back.
    queue: VecDeque<(usize, f64)>,
}

impl RollingExtreme {
    pub fn max(n: usize) -> RollingExtreme {
        RollingExtreme {
            n,
            want_max: true,
            seen: 0,
            queue: VecDeque::new(),
        }
    }

    pub fn min(n: usize) -> RollingExtreme {
        RollingExtreme {
            n,
            want_max: false,
            seen: 0,
            queue: VecDeque::new(),
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let i = self.seen;
        self.seen += 1;
        let beaten = |kept: f64| if self.want_max { kept <= x } else { kept >= x };
        while self.queue.back().is_some_and(|&(_, v)| beaten(v)) {
            self.queue.pop_back();
        }
        self.queue.push_back((i, x));
        while self.queue.front().is_some_and(|&(j, _)| j + self.n <= i) {
            self.queue.pop_front();
        }
        (self.seen >= self.n)
            .then(|| self.queue.front().map(|&(_, v)| v))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_extremes_by_hand() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let mut hi = RollingExtreme::max(3);
        let mut lo = RollingExtreme::min(3);
        let highs: Vec<_> = xs.iter().map(|&x| hi.update(x)).collect();
        let lows: Vec<_> = xs.iter().map(|&x| lo.update(x)).collect();
        assert_eq!(
            highs,
            vec![
                None,
                None,
                Some(4.0),
                Some(4.0),
                Some(5.0),
                Some(9.0),
                Some(9.0),
                Some(9.0)
            ]
        );
        assert_eq!(
            lows,
            vec![
                None,
                None,
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(2.0),
                Some(2.0)
            ]
        );
    }

    #[test]
    fn flat_window_has_exactly_zero_deviation() {
        let mut w = Window::new(20);
        for _ in 0..25 {
            w.push(0.1 + 0.2); // not exactly representable
        }
        assert_eq!(w.stdev(0), Some(0.0));
        let mut w = Window::new(4);
        for x in [2.0, 4.0, 4.0, 6.0] {
            w.push(x);
        }
        // mean 4, squared deviations 4+0+0+4 = 8: population sqrt(2), sample sqrt(8/3)
        assert_eq!(w.stdev(0), Some(2f64.sqrt()));
        assert!((w.stdev(1).unwrap() - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }
}
