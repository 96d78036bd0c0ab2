#!/usr/bin/env python3
"""curves.py REPORT.svg: the loss panel's train curve of a --plot report,
as `WIDTH HEIGHT` (SVG units): how much of the panel it spans across (from
the first epoch to the last) and up; `0 0` when the report draws none.
(Cairo drops the points of a straight stretch: the spans, not the points,
say what was drawn.) The curve is the first path in the train
colour (tab10 blue, 12.2%,46.7%,70.6%), 1.6 wide, with round joins (the
legend's sample has mitred ones)."""
import re
import sys

PATH = re.compile(r'<path style="[^"]*stroke-width:1\.6;[^"]*stroke-linejoin:round;'
                  r'stroke:rgb\(12\.2%,46\.7%,70\.6%\)[^"]*" d="([^"]*)"')


def main():
    m = PATH.search(open(sys.argv[1]).read())
    if not m:
        print(0, 0)
        return
    d = m.group(1).split()
    xs = [float(d[i + 1]) for i in range(0, len(d) - 2, 3) if d[i] in "ML"]
    ys = [float(d[i + 2]) for i in range(0, len(d) - 2, 3) if d[i] in "ML"]
    print(round(max(xs) - min(xs)), round(max(ys) - min(ys)))


main()
