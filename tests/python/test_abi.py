"""The ctypes mirrors of nnc.h's structures (nnc/_lib.py) have the header's
fields in the header's order: a field added to nnc.h must be added there."""
import os
import re

import pytest

from nnc import _lib
from conftest import ROOT


def header():
    for rel in ("include/nnc.h",):
        path = os.path.join(ROOT, rel)
        if os.path.exists(path):
            with open(path) as f:
                return re.sub(r"/\*.*?\*/|//[^\n]*", "", f.read(), flags=re.S)
    pytest.fail("nnc.h not found")


def fields(body):
    """Member names of a struct body, nested anonymous structs as (name,
    [members])."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            decl = body[start:i].strip()
            start = i + 1
            if decl.startswith("struct {"):
                inner = decl[decl.index("{") + 1:decl.rindex("}")]
                out.append((decl[decl.rindex("}") + 1:].strip(), fields(inner)))
                continue
            fn = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fn:
                out.append(fn.group(1))
                continue
            decl = re.sub(r"\[[^\]]*\]", "", decl)  # array sizes
            first, *rest = decl.split(",")
            out.append(re.findall(r"\w+", first)[-1])
            out += [re.findall(r"\w+", r)[-1] for r in rest]
    return out


def mirror(cls):
    out = []
    for name, ty in cls._fields_:
        if isinstance(ty, type) and issubclass(ty, _lib.Structure):
            out.append((name, mirror(ty)))
        else:
            out.append(name)
    return out


@pytest.mark.parametrize("name", ["NncOptions", "NncDiagnostic", "NncDiagnostics", "NncParam", "NncLayout",
                                  "NncFunctions", "NncDataset", "NncFitResult"])
def test_structures_mirror_the_header(name):
    m = re.search(r"typedef struct %s \{(.*?)\n\} %s;" % (name, name), header(), re.S)
    assert m, "struct %s not in nnc.h" % name
    assert mirror(getattr(_lib, name)) == fields(m.group(1))


def test_every_call_is_declared():
    text = header()
    for name in _lib._PROTOTYPES:
        assert re.search(r"NNC_API [^;]*\b%s\(" % name, text), name
