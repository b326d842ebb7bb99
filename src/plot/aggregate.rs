//! Aggregation of the selected rows into points (see the rule in the [`super`] module docs):
//! mean over mask samples within each run, then mean and spread over runs. Also counts what each
//! point is a mean of, for the caption ([`Stats`]).
use super::query::{group_key, Obs};
use super::Point;
use std::collections::HashMap;

/// `(column, value)` pairs naming a series or reference group.
pub type Key = Vec<(String, String)>;

/// One series before labelling: its key and its points, sorted by x.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub key: Key,
    pub points: Vec<Point>,
}

/// What the points are means of, over all points of all series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Fewest and most runs at a point.
    pub runs: (usize, usize),
    /// Fewest and most rows (mask samples) in a run.
    pub masks: (usize, usize),
    /// Whether some point pools several runs of the same seed (an `--average-over` column).
    pub pooled_settings: bool,
}

/// Series, reference levels (unpruned rows, x ignored) and statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregated {
    pub series: Vec<Group>,
    pub reference: Vec<(Key, f64)>,
    pub stats: Stats,
}

/// Groups `obs` by the `by` columns (in order of first appearance) and x, and aggregates.
pub fn aggregate(obs: &[Obs], by: &[String]) -> Aggregated {
    let mut series: Ordered<Key, Ordered<u64, Runs>> = Ordered::default();
    let mut reference: Ordered<Key, Runs> = Ordered::default();
    for o in obs {
        let run = (o.row.get("seed").to_string(), o.row.get("run_id").to_string());
        let runs = match o.unpruned {
            Some(_) => reference.entry(group_key(o, by)),
            // `+ 0.0` turns -0 into +0, so both land on one point.
            None => series.entry(group_key(o, by)).entry((o.x + 0.0).to_bits()),
        };
        runs.push(run, o.y, o.theory);
    }
    let mut stats = Stats { runs: (usize::MAX, 0), masks: (usize::MAX, 0), pooled_settings: false };
    let series = series
        .into_iter()
        .map(|(key, by_x)| {
            let mut points: Vec<Point> = by_x
                .into_iter()
                .map(|(x, runs)| runs.point(f64::from_bits(x), &mut stats))
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Group { key, points }
        })
        .collect();
    let reference = reference.into_iter().map(|(key, runs)| (key, summary(&runs.y).0)).collect();
    Aggregated { series, reference, stats }
}

/// A small insertion-ordered map.
struct Ordered<K, V> {
    items: Vec<(K, V)>,
    index: HashMap<K, usize>,
}

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered { items: Vec::new(), index: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Default> Ordered<K, V> {
    fn entry(&mut self, key: K) -> &mut V {
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            self.items.push((key, V::default()));
            self.items.len() - 1
        });
        &mut self.items[i].1
    }
}

impl<K, V> IntoIterator for Ordered<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// A run: `(seed, run_id)`.
type Run = (String, String);

/// The values at one point, per run, runs in order of first appearance.
#[derive(Default)]
struct Runs {
    y: Ordered<Run, Vec<f64>>,
    theory: Ordered<Run, Vec<f64>>,
}

impl Runs {
    fn push(&mut self, run: Run, y: f64, theory: Option<f64>) {
        if let Some(t) = theory {
            self.theory.entry(run.clone()).push(t);
        }
        self.y.entry(run).push(y);
    }

    /// The point at `x`, counting its runs and masks into `stats`.
    fn point(&self, x: f64, stats: &mut Stats) -> Point {
        let (mean, err, n) = summary(&self.y);
        let runs = self.y.items.len();
        stats.runs = (stats.runs.0.min(runs), stats.runs.1.max(runs));
        for (_, ys) in &self.y.items {
            stats.masks = (stats.masks.0.min(ys.len()), stats.masks.1.max(ys.len()));
        }
        let mut seeds: Vec<&str> = self.y.items.iter().map(|((s, _), _)| s.as_str()).collect();
        seeds.sort_unstable();
        seeds.dedup();
        stats.pooled_settings |= seeds.len() < runs;
        let theory = (!self.theory.items.is_empty()).then(|| summary(&self.theory).0);
        Point { x, mean, err, n, runs, theory }
    }
}

/// `(mean, err, n)`: the mean of the per-run means and their population standard deviation, or
/// with a single run the mean and population standard deviation of its values; `n` values.
fn summary(runs: &Ordered<Run, Vec<f64>>) -> (f64, f64, usize) {
    let n = runs.items.iter().map(|(_, ys)| ys.len()).sum();
    let (mean, std) = match runs.items.as_slice() {
        [(_, ys)] => mean_std(ys),
        runs => mean_std(&runs.iter().map(|(_, ys)| mean_std(ys).0).collect::<Vec<_>>()),
    };
    (mean, std, n)
}

/// Mean and population standard deviation of a non-empty slice.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
