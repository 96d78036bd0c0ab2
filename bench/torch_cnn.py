#!/usr/bin/python3
"""torch_cnn.py -- the convolutional workloads in PyTorch, for bench/cnn.

    torch_cnn.py MODEL IMAGES LABELS STEPS [--threads N]
    torch_cnn.py MODEL IMAGES LABELS --epochs E TEST_IMAGES TEST_LABELS [--threads N]

MODEL is one of
  fashion_cnn  conv 5x5x32 same, relu, max pool 2, conv 5x5x64 same, relu,
               max pool 2, flatten, linear 1024, relu, dropout 0.4,
               linear 10; softmax cross-entropy; Adam 1e-3; batch 100
  lenet5       conv 5x5x6 pad 2, relu, max pool 2, conv 5x5x16, relu,
               max pool 2, flatten, linear 120, relu, linear 84, relu,
               linear 10; softmax cross-entropy; SGD lr 0.01 momentum
               0.9; batch 64
as bench/fashion_cnn.nn and bench/lenet5.nn. IMAGES and LABELS are IDX
files (gzip or raw), pixels scaled by 1/255. Runs STEPS training steps on
consecutive batches of the file (from its start, wrapping around), f32, on
N threads (default 1; oneDNN's convolutions, the BLAS's matrix products),
after 3 untimed steps. Prints "ms/step X" (the median of the steps' own
wall times), "ms/step mean Y", "cpu ms/step Z" (the median of their CPU
times, steadier on a shared machine: the process's, so on one thread only),
"steps N" and "torch VERSION". The BLAS gets N threads too (its pthread
build otherwise starts one per core, whose time the main thread's clock
would not count).

With --epochs, trains E epochs over the whole of IMAGES instead, the
rows shuffled every epoch (torch.randperm, seed 0), the last partial
batch kept, and after each epoch prints "epoch K test accuracy A train
loss L seconds S" (A on TEST_IMAGES, in eval mode: no dropout; L the mean
of the epoch's batch losses; S the epoch's training wall time), for
bench/cnn_accuracy.

Needs Debian's python3-torch (it is /usr/bin/python3's, not a venv's).
"""
import gzip
import os
import statistics
import struct
import sys
import time


def threads_arg(argv):
    """--threads N from argv (removed), default 1"""
    if "--threads" not in argv:
        return 1
    i = argv.index("--threads")
    n = int(argv[i + 1])
    del argv[i:i + 2]
    return n


THREADS = threads_arg(sys.argv)
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
import torch  # noqa: E402


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def fashion_cnn():
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.4), nn.Linear(1024, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), 100


def lenet5():
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), 64


def setup(argv):
    """the model of argv[0], its optimizer and batch, and the training
    images and labels of argv[1] and argv[2]"""
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model, opt, batch = {"fashion_cnn": fashion_cnn, "lenet5": lenet5}[argv[0]]()
    images = read_idx(argv[1]).float().div_(255).reshape(-1, 1, 28, 28)
    labels = read_idx(argv[2]).long()
    return model, opt, batch, images, labels


def accuracy(model, images, labels):
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, images.shape[0], 1000):
            right += (model(images[i:i + 1000]).argmax(1) == labels[i:i + 1000]).sum().item()
    model.train()
    return right / images.shape[0]


def epochs_main(argv):
    """MODEL IMAGES LABELS --epochs E TEST_IMAGES TEST_LABELS"""
    model, opt, batch, images, labels = setup(argv)
    epochs = int(argv[4])
    test_images = read_idx(argv[5]).float().div_(255).reshape(-1, 1, 28, 28)
    test_labels = read_idx(argv[6]).long()
    lossf = torch.nn.CrossEntropyLoss()
    model.train()
    for e in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(images.shape[0])
        losses = []
        for i in range(0, images.shape[0], batch):
            rows = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(images[rows]), labels[rows])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - t0
        print("epoch %d test accuracy %.4f train loss %.4f seconds %.1f" %
              (e, accuracy(model, test_images, test_labels), statistics.fmean(losses), seconds), flush=True)
    print("torch %s" % torch.__version__)
    return 0


def main(argv):
    if len(argv) == 7 and argv[0] in ("fashion_cnn", "lenet5") and argv[3] == "--epochs":
        return epochs_main(argv)
    if len(argv) != 4 or argv[0] not in ("fashion_cnn", "lenet5"):
        sys.stderr.write(__doc__)
        return 2
    model, opt, batch, images, labels = setup(argv)
    steps = int(argv[3])
    lossf = torch.nn.CrossEntropyLoss()
    model.train()
    times, cpu = [], []
    for s in range(steps + 3):
        i = (s * batch) % (images.shape[0] - batch + 1)
        x, y = images[i:i + batch], labels[i:i + batch]
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        t1, c1 = time.perf_counter(), time.process_time()
        if s >= 3:
            times.append(t1 - t0)
            cpu.append(c1 - c0)
    print("ms/step %.3f" % (statistics.median(times) * 1e3))
    print("ms/step mean %.3f" % (statistics.fmean(times) * 1e3))
    print("cpu ms/step %.3f" % (statistics.median(cpu) * 1e3))
    print("steps %d" % steps)
    print("torch %s" % torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
