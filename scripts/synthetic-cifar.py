#!/usr/bin/env python3
"""Writes a CIFAR-10-shaped dataset of random bytes in CIFAR-10's binary layout
(cifar-10-batches-bin/data_batch_1..5.bin and test_batch.bin: records of one label byte 0..9 and
3072 pixel bytes), so that the cost of configs/paper/fig3-cifar.yaml can be measured without the
real data:

    python3 scripts/synthetic-cifar.py data            # 10,000 records per file, as CIFAR-10
    prunelab run configs/paper/fig3-cifar.yaml --dry-run

Usage: synthetic-cifar.py OUT_DIR [RECORDS_PER_FILE] [SEED]
"""
import os
import random
import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "cifar-10-batches-bin")
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    os.makedirs(out, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        with open(os.path.join(out, name), "wb") as f:
            for _ in range(records):
                f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
    print(f"wrote {len(names)} files of {records} records to {out}")


if __name__ == "__main__":
    main()
