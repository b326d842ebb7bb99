//! Axes: limits with a small margin and "nice" 1-2-5 tick values and labels, linear or
//! logarithmic.

/// One axis: its limits, whether it is logarithmic, and its ticks (value, label).
pub struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Limits span `values` plus a 4 % margin; ticks are the nicest 1-2-5 values inside, at most
    /// `max_ticks` of them. A log axis uses 1-2-5 ticks per decade, or whole decades when wide.
    pub fn new(values: Vec<f64>, log: bool, max_ticks: usize) -> Self {
        let map = |v: f64| if log { v.log10() } else { v };
        let (mut lo, mut hi) = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .map(map)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 * hi.abs().max(1.0) {
            let pad = if log { 0.1 } else { 0.1 * hi.abs().max(1e-9) };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let margin = 0.04 * (hi - lo);
        let (lo, hi) = (lo - margin, hi + margin);
        let ticks =
            if log { log_ticks(lo, hi, max_ticks) } else { linear_ticks(lo, hi, max_ticks) };
        Axis { lo, hi, log, ticks }
    }

    /// The data range between the limits (log10 units on a log axis).
    pub fn span(&self) -> f64 {
        self.hi - self.lo
    }

    /// Where `v` falls between the limits, 0 to 1.
    pub fn fraction(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// The nicest 1-2-5 step giving at most `max_ticks` ticks within `[lo, hi]`, and those ticks.
fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let mut exponent = ((hi - lo) / max_ticks as f64).log10().floor() as i32 - 1;
    loop {
        for mantissa in [1.0, 2.0, 5.0] {
            let step = mantissa * 10f64.powi(exponent);
            let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
            if last - first < max_ticks as i64 {
                let decimals = (-exponent).max(0) as usize;
                return (first..=last)
                    .map(|k| {
                        let v = k as f64 * step;
                        (v, number(v, decimals, exponent))
                    })
                    .collect();
            }
        }
        exponent += 1;
    }
}

/// Ticks of a log axis whose limits are `lo`, `hi` in log10 units.
fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let decades = (lo.floor() as i32)..=(hi.ceil() as i32);
    let inside = |v: &f64| (lo..=hi).contains(&v.log10());
    let within = |mantissas: &[f64]| -> Vec<(f64, String)> {
        decades
            .clone()
            .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e), e)))
            .filter(|(v, _)| inside(v))
            .map(|(v, e)| (v, number(v, (-e).max(0) as usize, e)))
            .collect()
    };
    let coarse = within(&[1.0, 2.0, 5.0]);
    if (4..=max_ticks).contains(&coarse.len()) {
        return coarse;
    }
    if coarse.len() < 4 {
        // About a decade: denser mantissas, or ordinary 1-2-5 ticks placed logarithmically.
        let dense = within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]);
        if (3..=max_ticks).contains(&dense.len()) {
            return dense;
        }
        if coarse.len() == 3 {
            return coarse;
        }
        let ticks = linear_ticks(10f64.powf(lo), 10f64.powf(hi), max_ticks.min(5));
        return ticks.into_iter().filter(|(v, _)| *v > 0.0 && inside(v)).collect();
    }
    let whole: Vec<i32> = decades.filter(|&e| inside(&10f64.powi(e))).collect();
    let every = whole.len().div_ceil(max_ticks).max(1) as i32;
    whole
        .into_iter()
        .filter(|e| e.rem_euclid(every) == 0)
        .map(|e| (10f64.powi(e), e))
        .map(|(v, e)| {
            (v, if (-3..=4).contains(&e) { number(v, (-e).max(0) as usize, e) } else { power(e) })
        })
        .collect()
}

/// A tick label: fixed-point with `decimals` digits, or `m×10ⁿ` when the step's `exponent` is
/// very small or large. Negative numbers use a true minus sign.
fn number(v: f64, decimals: usize, exponent: i32) -> String {
    let text = if !(-4..6).contains(&exponent) {
        if v == 0.0 {
            return "0".into();
        }
        let e = v.abs().log10().floor() as i32;
        let m = v / 10f64.powi(e);
        let m = format!("{m:.2}");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        if m == "1" {
            power(e)
        } else {
            format!("{m}×{}", power(e))
        }
    } else {
        format!("{v:.decimals$}")
    };
    text.replace('-', "\u{2212}")
}

/// `10ⁿ` with a superscript exponent.
fn power(e: i32) -> String {
    let digits: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            d => ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"][d as usize - '0' as usize]
                .chars()
                .next()
                .unwrap_or(d),
        })
        .collect();
    format!("10{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        let values =
            |ticks: Vec<(f64, String)>| ticks.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        assert_eq!(
            values(linear_ticks(6.0, 94.0, 9)),
            ["10", "20", "30", "40", "50", "60", "70", "80", "90"]
        );
        assert_eq!(values(linear_ticks(-0.03, 0.83, 8)), ["0.0", "0.2", "0.4", "0.6", "0.8"]);
        assert_eq!(
            values(linear_ticks(-1.2, 1.2, 8)),
            ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"]
        );
        assert_eq!(values(linear_ticks(0.0, 3e-5, 4)), ["0", "10⁻⁵", "2×10⁻⁵", "3×10⁻⁵"]);
        // Log: 1-2-5 within two decades, whole decades beyond.
        assert_eq!(values(log_ticks(-1.9, -0.1, 8)), ["0.02", "0.05", "0.1", "0.2", "0.5"]);
        assert_eq!(
            values(log_ticks(0.035f64.log10(), 0.35f64.log10(), 8)),
            ["0.04", "0.05", "0.06", "0.08", "0.1", "0.2", "0.3"]
        );
        assert_eq!(
            values(log_ticks(0.021f64.log10(), 0.024f64.log10(), 8)),
            ["0.021", "0.022", "0.023", "0.024"]
        );
        assert_eq!(
            values(log_ticks(-6.5, 0.2, 8)),
            ["10⁻⁶", "10⁻⁵", "10⁻⁴", "0.001", "0.01", "0.1", "1"]
        );
    }
}
