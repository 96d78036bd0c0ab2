#!/usr/bin/env python3
"""marks.py REPORT.svg PREDICTIONS.csv LABELS.idx: the image grid of a
--plot report marks exactly the wrong predictions.

PREDICTIONS.csv is `nnc --predict` output for the first 30 images of the
validation set (a header, then one row of outputs per image); LABELS.idx
the raw IDX labels of those images. The report frames each of the 30
images of its grid: a wrong one in red (tab10 red, 83.9%,15.3%,15.7%), a
right one in grey (80%). In reading order (rows from the top, then left to
right), the red frames must be exactly the wrong predictions."""
import re
import sys

FRAME = re.compile(r'stroke:rgb\(([0-9.]+)%,([0-9.]+)%,([0-9.]+)%\)[^>]*d="M ([0-9.]+) ([0-9.]+) L')


def main():
    svg, csv, labels = sys.argv[1:4]
    lines = open(csv).read().split("\n")[1:]
    rows = [[float(s) for s in l.split(",")] for l in lines if l]
    preds = [max(range(len(v)), key=lambda k: v[k]) for v in rows]
    truth = list(open(labels, "rb").read()[8:8 + len(preds)])
    wrong = [k for k in range(len(preds)) if preds[k] != truth[k]]
    frames = []
    for m in FRAME.finditer(open(svg).read()):
        rgb = tuple(float(v) for v in m.group(1, 2, 3))
        if rgb in ((83.9, 15.3, 15.7), (80.0, 80.0, 80.0)):
            red = rgb[0] != 80.0
            inset = 2 if red else 0.5  # the frame's distance from its image
            frames.append((float(m.group(5)) + inset, float(m.group(4)) + inset, red))
    frames.sort()
    marked = [k for k, f in enumerate(frames) if f[2]]
    print("frames:", len(frames), "wrong predictions:", wrong, "red frames:", marked)
    if len(frames) != len(preds):
        print("FAILED: %d framed images, expected %d" % (len(frames), len(preds)))
        return 1
    if marked != wrong or not wrong:
        print("FAILED: the red frames are not the wrong predictions")
        return 1
    return 0


sys.exit(main())
