#!/usr/bin/env python3
"""waves.py -- writes waves.csv, the sequences of examples/waves.nn.

    python3 examples/data/waves.py > examples/data/waves.csv

Each row is a noisy sequence of 32 samples and its class: 0 a slow sine
(one to two periods), 1 a fast sine (five to seven periods), 2 a flat line
with one bump of 5 samples somewhere in it. Phases, frequencies, places and
noise (normal, sd 0.8) are drawn from a fixed seed, so the file is the same
every time. Python's standard library only.
"""
import math
import random

LENGTH, ROWS = 32, 600


def sequence(rng, label):
    if label == 2:
        start = rng.randrange(LENGTH - 5)
        clean = [1.5 if start <= i < start + 5 else 0.0 for i in range(LENGTH)]
    else:
        periods = rng.uniform(1, 2) if label == 0 else rng.uniform(5, 7)
        phase = rng.uniform(0, 2 * math.pi)
        clean = [math.sin(2 * math.pi * periods * i / LENGTH + phase) for i in range(LENGTH)]
    return [v + rng.gauss(0, 0.8) for v in clean]


def main():
    rng = random.Random(7)
    print(",".join(["s%d" % i for i in range(LENGTH)] + ["label"]))
    for r in range(ROWS):
        label = r % 3
        print(",".join("%.3f" % v for v in sequence(rng, label)) + ",%d" % label)


if __name__ == "__main__":
    main()
