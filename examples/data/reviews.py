#!/usr/bin/env python3
"""reviews.py - writes reviews.csv, the data of examples/reviews.nn.

Short "reviews" as word indices: 16 positions, a review of 5 to 16 words
padded with word 0; words 1-12 are positive, 13-24 negative, 25-39
neutral. The label (last column) is 1 when the review has more positive
than negative words, else 0 (reviews with as many of each are not drawn).
Deterministic (seeded); run from any directory:

    python3 examples/data/reviews.py
"""
import os
import random

LENGTH, ROWS = 16, 3000
POSITIVE, NEGATIVE, NEUTRAL = range(1, 13), range(13, 25), range(25, 40)


def review(rng):
    while True:
        n = rng.randint(5, LENGTH)
        words = [rng.choice(rng.choice((POSITIVE, NEGATIVE, NEUTRAL))) for _ in range(n)]
        pos = sum(w in POSITIVE for w in words)
        neg = sum(w in NEGATIVE for w in words)
        if pos != neg:
            return words + [0] * (LENGTH - n), int(pos > neg)


def main():
    rng = random.Random(7)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reviews.csv")
    with open(path, "w") as f:
        f.write(",".join("w%d" % i for i in range(LENGTH)) + ",label\n")
        for _ in range(ROWS):
            words, label = review(rng)
            f.write(",".join(map(str, words)) + ",%d\n" % label)


if __name__ == "__main__":
    main()
