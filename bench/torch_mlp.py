#!/usr/bin/env python3
"""torch_mlp.py -- the MLP of bench/gemm_peak in PyTorch, for its PyTorch column.

    torch_mlp.py DATA.csv WIDTH EPOCHS

784 -> linear(W) -> relu -> linear(W) -> relu -> linear(10), softmax
cross-entropy (mean over the batch), f32, SGD lr 0.001, minibatches of 64
rows in file order (the last column is the class), as the model
bench/gemm_peak writes for nnc.  One thread.  Only the training loop is
timed; prints "train time T" (seconds) and "final train loss L".
"""
import os
import sys
import time

# one thread for OpenBLAS too (Debian's PyTorch calls the system BLAS, whose
# pthread build otherwise starts a thread per core)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

BATCH = 64


def main():
    path, width, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = [line.rstrip(",\n").split(",") for line in open(path)]
    x = torch.tensor([[float(v) for v in r[:-1]] for r in rows], dtype=torch.float32)
    t = torch.tensor([int(r[-1]) for r in rows])
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(),
                                torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = [(x[i:i + BATCH], t[i:i + BATCH]) for i in range(0, len(rows), BATCH)]
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, tb in batches:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), tb)
            loss.backward()
            opt.step()
    elapsed = time.perf_counter() - start
    print(f"final train loss {loss.item():.6f}")
    print(f"train time {elapsed:.6f}")


if __name__ == "__main__":
    main()
