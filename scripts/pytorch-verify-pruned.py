#!/usr/bin/env python3
"""Whole-model pruning and fine-tuning by `prunelab prune`, verified in PyTorch on Fashion-MNIST.

1. Trains a 784-300-100-10 MLP in PyTorch (the class of scripts/pytorch-crosscheck.py, fc1-fc3)
   and saves it with torch.jit.save(torch.jit.script(...)), or takes --model.
2. Prunes all hidden layers with `prunelab prune --layer all` by each of the six methods at a global
   kept fraction (--keep, default 0.5, allocation uniform), fine-tunes one epoch
   (--finetune-epochs) and writes .pt, .safetensors and the masks.
3. In PyTorch: loads the .pt with torch.jit.load, the .safetensors into the original class, and
   the original class pruned with torch.nn.utils.prune.custom_from_mask from the masks file; checks
   that every masked weight is exactly zero in all three and measures the test accuracy, which must
   equal the accuracy prunelab reported after fine-tuning within 0.1 percentage point.
4. Prints a table of the accuracy before and after fine-tuning per method and whether fine-tuning
   improved every random and DPP method.

    "$(scripts/pytorch-env.sh)" scripts/pytorch-verify-pruned.py \\
        [--prunelab target/release/prunelab] [--data /usr/share/datasets/fashion-mnist] \\
        [--out /tmp/prunelab-verify] [--model mlp.pt] [--keep 0.5] [--finetune-epochs 1]

Exit status 0 when every output loads, every masked weight is zero and every accuracy agrees;
1 otherwise.
"""
import argparse
import importlib.util
import os
import re
import sys

import torch
import torch.nn.utils.prune as tprune
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("crosscheck", os.path.join(HERE, "pytorch-crosscheck.py"))
crosscheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crosscheck)
Net, accuracy, load_split, run, train_and_save, METHODS = (
    crosscheck.Net, crosscheck.accuracy, crosscheck.load_split, crosscheck.run, crosscheck.train_and_save,
    crosscheck.METHODS)

LAYERS = ["fc1", "fc2", "fc3"]


def reported_errors(stdout):
    """prunelab's test errors (%) before pruning, after pruning and after fine-tuning."""
    m = re.search(r"test error\s+([\d.]+)% → ([\d.]+)% pruned → ([\d.]+)% fine-tuned", stdout)
    if not m:
        sys.exit(f"no fine-tuned test error in prunelab's report:\n{stdout}")
    return tuple(float(g) for g in m.groups())


def zero_where_masked(weights, masks, failures, label):
    """Counts masked entries, recording any that is not exactly zero."""
    count = 0
    for name, mask in masks.items():
        w = weights[name[:-len("_mask")]]
        removed = mask == 0
        count += int(removed.sum())
        if w[removed].abs().sum().item() != 0.0:
            failures.append(f"{label}: masked entries of {name[:-5]} are not zero")
    return count


def verify(args, method, model_path, test, failures):
    test_x, test_y = test
    stem = os.path.join(args.out, method)
    cmd = [args.prunelab, "prune", "--model", model_path, "--method", method, "--keep", str(args.keep),
           "--layer", "all", "--data", args.data, "--finetune-epochs", str(args.finetune_epochs),
           "--out", stem + ".pt", "--out", stem + ".safetensors", "--masks", stem + "-masks.safetensors"]
    if method.startswith("dpp"):
        cmd += ["--calib", args.data]
    stdout, seconds = run(cmd)
    kept = re.search(r"kept\s+([\d.]+)% of the pruned layers' weights", stdout).group(1)
    unpruned, pruned_err, tuned_err = reported_errors(stdout)
    masks = load_file(stem + "-masks.safetensors")
    # The .pt: an nn.Sequential whose Linear layers are 0, 2, 4.
    module = torch.jit.load(stem + ".pt")
    index = {"0": "fc1", "2": "fc2", "4": "fc3"}
    seq = {index[k.split(".")[0]] + "." + k.split(".", 1)[1]: v for k, v in module.state_dict().items()}
    masked = zero_where_masked(seq, masks, failures, f"{method} .pt")
    # The .safetensors into the original class.
    net = Net(args.activation)
    net.load_state_dict(load_file(stem + ".safetensors"))
    net.eval()
    zero_where_masked(net.state_dict(), masks, failures, f"{method} .safetensors")
    # The original class pruned by PyTorch from the masks, weights from the .safetensors.
    pruned = Net(args.activation)
    pruned.load_state_dict(load_file(stem + ".safetensors"))
    for name, mask in masks.items():
        layer, param = name[:-len("_mask")].split(".")
        tprune.custom_from_mask(getattr(pruned, layer), param, mask)
    pruned.eval()
    effective = {f"{l}.{p}": getattr(getattr(pruned, l), p) for l in LAYERS for p in ("weight", "bias")}
    zero_where_masked(effective, masks, failures, f"{method} custom_from_mask")
    accs = [accuracy(m, test_x, test_y) for m in (module, net, pruned)]
    reported = 100 - tuned_err
    for what, acc in zip((".pt", ".safetensors", "custom_from_mask"), accs):
        if abs(100 * acc - reported) > 0.1:
            failures.append(f"{method} {what}: PyTorch {100 * acc:.2f}% vs prunelab {reported:.2f}%")
    return dict(method=method, kept=kept, unpruned=100 - unpruned, before=100 - pruned_err,
                after=100 - tuned_err, torch=[100 * a for a in accs], masked=masked, seconds=seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prunelab", default="target/release/prunelab")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default="/tmp/prunelab-verify")
    parser.add_argument("--model", help="a TorchScript fc1-fc3 MLP to take instead of training one")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--activation", choices=["relu", "sigmoid"], default="relu")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    train_x, train_y = load_split(args.data, "train")
    test = load_split(args.data, "t10k")
    model_path = args.model or train_and_save(args, (train_x, train_y), test)[1]

    failures, rows = [], []
    for method in args.methods.split(","):
        rows.append(verify(args, method, model_path, test, failures))
        r = rows[-1]
        print(f"{method}: {r['before']:.2f}% -> {r['after']:.2f}% after fine-tuning "
              f"(PyTorch {', '.join(f'{a:.2f}%' for a in r['torch'])}; {r['seconds']:.0f} s)", flush=True)

    print()
    print(f"all hidden layers at a global kept fraction {args.keep} (allocation uniform), "
          f"{args.finetune_epochs} fine-tuning epoch(s); unpruned {rows[0]['unpruned']:.2f}%")
    print()
    print("| method | kept weights | prunelab: pruned | prunelab: fine-tuned | PyTorch .pt | .safetensors "
          "| custom_from_mask | masked weights = 0 | prune + fine-tune time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pt, st, cm = r["torch"]
        print(f"| {r['method']} | {r['kept']}% | {r['before']:.2f}% | {r['after']:.2f}% | {pt:.2f}% | {st:.2f}% "
              f"| {cm:.2f}% | {r['masked']:,} | {r['seconds']:.0f} s |")
    worse = [r["method"] for r in rows
             if not r["method"].startswith("importance") and r["after"] <= r["before"]]
    print()
    print("fine-tuning improves every random and DPP method" if not worse else
          f"fine-tuning does NOT improve: {', '.join(worse)}")
    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures))
        return 1
    print("every output loads in PyTorch, every masked weight is zero, every accuracy agrees within 0.1 point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
