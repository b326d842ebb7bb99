"""PyTorch's time for what `prunelab bench mlp` times: one epoch of the paper's 784-500-500-10
logistic-sigmoid MLP on Fashion-MNIST at batch 100 (SGD, lr 0.1, momentum 0.9, shuffled), so the
two can be compared on one machine with the same thread count.

    python scripts/bench-pytorch-mlp.py --threads 2      # needs torch and numpy
"""
import argparse, gzip, time
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = p.parse_args()
torch.set_num_threads(a.threads)
with gzip.open(f"{a.data}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
with gzip.open(f"{a.data}/train-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)
x = (torch.tensor(x, dtype=torch.float32) / 255 - 0.1307) / 0.3081
y = torch.tensor(y, dtype=torch.int64)
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Linear(784, 500), torch.nn.Sigmoid(), torch.nn.Linear(500, 500),
                            torch.nn.Sigmoid(), torch.nn.Linear(500, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
for epoch in range(1, a.epochs + 1):
    start = time.perf_counter()
    for idx in torch.randperm(len(x)).split(100):
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s): epoch {epoch} in {time.perf_counter() - start:.2f} s")
