#!/usr/bin/env python3
"""Cross-check of `prunelab prune` / `eval` against PyTorch on Fashion-MNIST.

1. Trains a 784-300-100-10 MLP (an nn.Module with fc1/fc2/fc3 and F.relu or torch.sigmoid in its
   forward) for a few epochs with PyTorch and saves it with torch.jit.save(torch.jit.script(...)).
2. Prunes its first hidden layer with `prunelab prune` by each of the six methods, with and without
   reweighting, writing TorchScript (.pt) and safetensors outputs.
3. Loads every output with torch.jit.load, measures its test accuracy in PyTorch and compares it
   with `prunelab eval --json` (they must agree within 0.1 percentage point). The uncompacted
   safetensors outputs are also loaded into the original class with load_state_dict.
4. Compaction: a node-pruned model saved masked and compacted (--compact): first-layer
   parameters and the time of 200 forwards of a 10,000-sample batch in PyTorch, both.

Needs PyTorch and numpy (the CI machines do not have them; `cargo test` does not use this script).

    "$(scripts/pytorch-env.sh)" scripts/pytorch-crosscheck.py \
        [--prunelab target/release/prunelab] [--data /usr/share/datasets/fashion-mnist] \
        [--out /tmp/prunelab-crosscheck] [--epochs 2] [--activation relu] [--keep 0.5]

Exit status 0 when every output loads in PyTorch and every accuracy agrees, 1 otherwise.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ["random_node", "importance_node", "dpp_node", "random_edge", "importance_edge", "dpp_edge"]


def read_idx(path):
    """An IDX file (gz or raw) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    assert magic in (2049, 2051), f"{path}: bad IDX magic {magic}"
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(root, split):
    def find(stem):
        for name in (stem + ".gz", stem):
            if os.path.exists(os.path.join(root, name)):
                return os.path.join(root, name)
        sys.exit(f"{root}: no {stem}[.gz]")

    x = read_idx(find(f"{split}-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    # prunelab's default for MNIST-format data (torchvision's MNIST convention).
    x = (x - 0.1307) / 0.3081
    return torch.from_numpy(x), torch.from_numpy(y)


class Net(torch.nn.Module):
    """A practitioner's MLP, not an nn.Sequential: prunelab has to find fc1 → fc2 → fc3 itself."""

    def __init__(self, activation: str):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)
        self.relu = activation == "relu"

    def act(self, x):
        return F.relu(x) if self.relu else torch.sigmoid(x)

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def accuracy(model, x, y):
    with torch.inference_mode():
        correct = 0
        for i in range(0, len(x), 10000):
            correct += (model(x[i:i + 10000]).argmax(1) == y[i:i + 10000]).sum().item()
    return correct / len(x)


def run(cmd):
    started = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")
    return result.stdout, time.time() - started


def forward_time(model, x, repeats):
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        started = time.perf_counter()
        for _ in range(repeats):
            model(x)
        return time.perf_counter() - started


def train_and_save(args, train, test):
    """Trains Net(args.activation) for args.epochs (SGD, lr 0.05, momentum 0.9, batch 64, seed 0),
    saves it as TorchScript in args.out and returns (net, path, test accuracy)."""
    (train_x, train_y), (test_x, test_y) = train, test
    torch.manual_seed(0)
    net = Net(args.activation)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    started = time.time()
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(net(train_x[batch]), train_y[batch]).backward()
            opt.step()
    net.eval()
    acc = accuracy(net, test_x, test_y)
    path = os.path.join(args.out, f"mlp-{args.activation}.pt")
    torch.jit.save(torch.jit.script(net), path)
    print(f"trained 784-300-100-10 {args.activation} MLP, {args.epochs} epochs in {time.time() - started:.0f} s: "
          f"test accuracy {100 * acc:.2f}% -> {path}")
    return net, path, acc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prunelab", default="target/release/prunelab")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default="/tmp/prunelab-crosscheck")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--activation", choices=["relu", "sigmoid"], default="relu")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples for prunelab (default: the whole training split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")

    # 1. Train and save as TorchScript.
    net, model_path, base_acc = train_and_save(args, (train_x, train_y), (test_x, test_y))

    calib = ["--calib", args.data]
    if args.calib_samples:
        calib += ["--calib-samples", str(args.calib_samples)]

    # 2.–3. Prune by every method, with and without reweighting; compare accuracies.
    rows = []
    failures = []

    def check(label, path, torchscript_module=None):
        out, _ = run([args.prunelab, "eval", "--model", path, "--data", args.data, "--json"])
        report = json.loads(out)
        module = torchscript_module or torch.jit.load(path)
        torch_acc = accuracy(module, test_x, test_y)
        prunelab_acc = 1.0 - report["test_error"]
        diff_pp = 100 * abs(torch_acc - prunelab_acc)
        ok = diff_pp <= 0.1
        if not ok:
            failures.append(f"{label}: PyTorch {100 * torch_acc:.2f}% vs prunelab {100 * prunelab_acc:.2f}%")
        return report, torch_acc, prunelab_acc, diff_pp, ok

    report, torch_acc, prunelab_acc, diff_pp, ok = check("unpruned", model_path)
    rows.append(("none", "–", report, torch_acc, prunelab_acc, diff_pp, ok, 0.0))
    for method in METHODS:
        for reweight in (False, True):
            stem = os.path.join(args.out, f"{method}{'-rw' if reweight else ''}")
            cmd = [args.prunelab, "prune", "--model", model_path, "--method", method,
                   "--keep", str(args.keep), "--out", stem + ".pt", "--out", stem + ".safetensors"]
            if method.startswith("dpp") or reweight:
                cmd += calib
            if reweight:
                cmd.append("--reweight")
            _, seconds = run(cmd)
            report, torch_acc, prunelab_acc, diff_pp, ok = check(f"{method} reweight={reweight}", stem + ".pt")
            # The safetensors output keeps the model's own names: it loads into the original class.
            net2 = Net(args.activation)
            from safetensors.torch import load_file
            net2.load_state_dict(load_file(stem + ".safetensors"))
            net2.eval()
            state_acc = accuracy(net2, test_x, test_y)
            if abs(state_acc - torch_acc) > 1e-9:
                failures.append(f"{method} reweight={reweight}: state dict {state_acc} vs TorchScript {torch_acc}")
            rows.append((method, "yes" if reweight else "no", report, torch_acc, prunelab_acc, diff_pp, ok, seconds))

    print()
    print(f"keep p = {args.keep} of w1's incoming weights (matched budgets); calibration: "
          f"{args.calib_samples or 'all'} training samples where needed")
    print()
    print("| method | reweight | non-zero params | PyTorch test acc. | prunelab eval | |Δ| (pp) | prune time |")
    print("|---|---|---|---|---|---|---|")
    for method, rw, report, torch_acc, prunelab_acc, diff_pp, ok, seconds in rows:
        print(f"| {method} | {rw} | {report['params_nonzero']:,} / {report['params_total']:,} | "
              f"{100 * torch_acc:.2f}% | {100 * prunelab_acc:.2f}% | {diff_pp:.2f}{'' if ok else ' FAIL'} | "
              f"{seconds:.1f} s |")

    # 4. Compaction: masked vs compacted node pruning, in PyTorch.
    print()
    masked_path = os.path.join(args.out, "importance-node-masked.pt")
    compact_path = os.path.join(args.out, "importance-node-compact.pt")
    run([args.prunelab, "prune", "--model", model_path, "--method", "importance_node", "--keep", str(args.keep),
         "--out", masked_path])
    out, _ = run([args.prunelab, "prune", "--model", model_path, "--method", "importance_node",
                  "--keep", str(args.keep), "--compact", "--out", compact_path])
    compact_line = next((line for line in out.splitlines() if line.startswith("compacted")), "")
    masked, small = torch.jit.load(masked_path), torch.jit.load(compact_path)
    batch = test_x[:10000]
    with torch.inference_mode():
        max_diff = (masked(batch) - small(batch)).abs().max().item()
    w_masked, w_small = masked.state_dict()["0.weight"], small.state_dict()["0.weight"]
    first = lambda m: sum(t.numel() for n, t in m.state_dict().items() if n.startswith("0."))
    t_masked = forward_time(masked, batch, args.repeats)
    t_small = forward_time(small, batch, args.repeats)
    t_masked2 = forward_time(masked, batch, args.repeats)
    t_small2 = forward_time(small, batch, args.repeats)
    t_masked, t_small = min(t_masked, t_masked2), min(t_small, t_small2)
    print(f"compaction (importance_node, keep {args.keep}): first layer {tuple(w_masked.shape)} -> {tuple(w_small.shape)}, "
          f"{first(masked):,} -> {first(small):,} parameters ({100 * first(small) / first(masked):.1f}%)")
    print(f"  prunelab: {compact_line.strip()}")
    print(f"  PyTorch: masked vs compacted outputs max |diff| {max_diff:.2e} on 10,000 test inputs; "
          f"accuracy {100 * accuracy(masked, test_x, test_y):.2f}% vs {100 * accuracy(small, test_x, test_y):.2f}%")
    print(f"  {args.repeats} forwards of a 10,000 batch ({args.threads} threads, best of 2): masked {t_masked:.2f} s, "
          f"compacted {t_small:.2f} s ({t_masked / t_small:.2f}x faster)")

    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures))
        return 1
    print("\nall outputs load in PyTorch; every accuracy agrees with prunelab eval within 0.1 pp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
