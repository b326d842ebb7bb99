//! The linear layers of a state dict: its 2-D `….weight` tensors, ordered by the numbers in their
//! names (or, when names carry no numbers, by the only order in which their shapes chain), each
//! with its optional bias; anything else is refused, naming the file and the tensor.
use super::loaded::LayerNames;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Orders and checks the linear layers among `tensors` (name, shape).
pub fn find_layers(path: &Path, tensors: &[(String, Vec<i64>)]) -> Result<Vec<LayerNames>> {
    let shown = path.display();
    let not_mlp = "prunelab prunes MLPs (Linear layers with element-wise activations) only";
    let mut weights: BTreeMap<&str, (&str, &[i64])> = BTreeMap::new();
    let mut biases: BTreeMap<&str, (&str, &[i64])> = BTreeMap::new();
    for (name, shape) in tensors {
        let (prefix, suffix) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        match (suffix, shape.len()) {
            ("weight", 2) if shape.contains(&0) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a Linear layer with zero {}; \
                 every layer needs at least one unit and one input",
                if shape[0] == 0 { "units" } else { "inputs" }
            ),
            ("weight", 2) => {
                weights.insert(prefix, (name, shape));
            }
            ("weight", 3..=5) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a convolution kernel; {not_mlp}"
            ),
            ("weight", 1) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a 1-D weight of a normalisation layer other than BatchNorm1d (no running_mean beside it); {not_mlp}"
            ),
            ("weight", _) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, not a Linear weight [out, in]; {not_mlp}"
            ),
            ("bias", _) => {
                biases.insert(prefix, (name, shape));
            }
            _ => bail!(
                "{shown}: tensor `{name}` (shape {shape:?}) is not a Linear layer's weight or bias; {not_mlp}"
            ),
        }
    }
    for (prefix, (name, shape)) in &biases {
        let Some((w_name, w_shape)) = weights.get(prefix) else {
            let expected =
                if prefix.is_empty() { "weight".to_string() } else { format!("{prefix}.weight") };
            bail!("{shown}: tensor `{name}` has no matching weight `{expected}` (missing tensor?)");
        };
        if **shape != [w_shape[0]] {
            bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, but `{w_name}` {w_shape:?} has {} outputs",
                w_shape[0]
            );
        }
    }
    if weights.is_empty() {
        bail!("{shown} holds no Linear weights (2-D tensors named `….weight`); {not_mlp}");
    }
    let order = layer_order(&weights).with_context(|| shown.to_string())?;
    for pair in order.windows(2) {
        let (a_name, a) = weights[pair[0]];
        let (b_name, b) = weights[pair[1]];
        if b[1] != a[0] {
            bail!(
                "{shown}: tensor `{b_name}` has shape {b:?}: it takes {} inputs, but the layer before it, `{a_name}` {a:?}, \
                 has {} outputs (is a layer missing, or is this not an MLP?)",
                b[1],
                a[0]
            );
        }
    }
    Ok(order
        .into_iter()
        .map(|prefix| LayerNames {
            name: prefix.to_string(),
            weight: weights[prefix].0.to_string(),
            bias: biases.get(prefix).map(|(n, _)| n.to_string()),
            batchnorm: None,
        })
        .collect())
}

/// The layers' prefixes in order: by the numbers in their names when every name has distinct
/// ones, else by the only order in which their shapes chain.
fn layer_order<'a>(weights: &BTreeMap<&'a str, (&'a str, &'a [i64])>) -> Result<Vec<&'a str>> {
    let prefixes: Vec<&str> = weights.keys().copied().collect();
    let numbers: Vec<Option<Vec<u64>>> = prefixes.iter().map(|p| numbers_in(p)).collect();
    let mut numbered: Vec<(Vec<u64>, &str)> =
        numbers.iter().zip(&prefixes).filter_map(|(n, p)| Some((n.clone()?, *p))).collect();
    numbered.sort();
    let unique = numbered.windows(2).all(|w| w[0].0 != w[1].0);
    if numbered.len() == prefixes.len() && unique {
        return Ok(numbered.into_iter().map(|(_, p)| p).collect());
    }
    chain_order(&prefixes, weights)
}

/// The runs of digits in a name (`layers.10` → [10], `fc2` → [2]), None when there are none.
pub(crate) fn numbers_in(name: &str) -> Option<Vec<u64>> {
    let numbers: Vec<u64> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect();
    (!numbers.is_empty()).then_some(numbers)
}

/// The only order in which the layers' shapes chain, for names that do not say it.
fn chain_order<'a>(
    prefixes: &[&'a str],
    weights: &BTreeMap<&str, (&str, &[i64])>,
) -> Result<Vec<&'a str>> {
    if prefixes.len() > 12 {
        bail!("cannot order {} layers whose names carry no numbers; name them fc1, fc2, … or layers.0, layers.1, …", prefixes.len());
    }
    let mut found: Vec<Vec<&str>> = Vec::new();
    let mut path = Vec::new();
    let mut used = vec![false; prefixes.len()];
    fn dfs<'a>(
        prefixes: &[&'a str],
        weights: &BTreeMap<&str, (&str, &[i64])>,
        path: &mut Vec<&'a str>,
        used: &mut [bool],
        found: &mut Vec<Vec<&'a str>>,
    ) {
        if found.len() > 1 {
            return;
        }
        if path.len() == prefixes.len() {
            found.push(path.clone());
            return;
        }
        for i in 0..prefixes.len() {
            if used[i] {
                continue;
            }
            if let Some(last) = path.last() {
                if weights[prefixes[i]].1[1] != weights[last].1[0] {
                    continue;
                }
            }
            used[i] = true;
            path.push(prefixes[i]);
            dfs(prefixes, weights, path, used, found);
            path.pop();
            used[i] = false;
        }
    }
    dfs(prefixes, weights, &mut path, &mut used, &mut found);
    let names = prefixes
        .iter()
        .map(|p| format!("`{}` {:?}", weights[p].0, weights[p].1))
        .collect::<Vec<_>>()
        .join(", ");
    match found.len() {
        1 => Ok(found.pop().expect("one")),
        0 => bail!("the Linear weights {names} do not chain into an MLP in any order (out of one layer = in of the next)"),
        _ => bail!("cannot tell the order of the Linear weights {names} from their names or shapes; name them with numbers (fc1, fc2, … or layers.0, layers.1, …)"),
    }
}
