"""Coverage-guided fuzzing of the ASTM and freezer decode paths with atheris (libFuzzer), outside pytest.

atheris is not a project dependency (a 35 MB wheel carrying its own libFuzzer); install it where you run
this, then, from the project root::

    pip install atheris
    python -m tests.reliability.fuzz.atheris_run astm CORPUS_DIR -max_total_time=600 -print_final_stats=1
    python -m tests.reliability.fuzz.atheris_run crf CORPUS_DIR -max_total_time=600 -print_final_stats=1

``CORPUS_DIR`` is seeded with the codec fuzzers' seed streams when it is empty, and libFuzzer keeps the
inputs that reach new code there. The checks are the havoc tests': nothing raises, and a record (ASTM)
or a value (freezer) only ever comes from frames or a line that pass an independent check. A failing
input is written as ``crash-<sha1>`` in the current folder; replay it by giving its path instead of a
corpus folder.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris
import structlog

with atheris.instrument_imports(include=["adapters", "gateway"]):
    from tests.reliability.fuzz import astm_drive, crf_drive


def astm(data: bytes) -> None:
    """Bytes on the line to the gateway, in one read or in two (the first byte says where to cut)."""
    cut = (data[0] * len(data)) // 256 if data else 0
    out = astm_drive.decode(data, (cut,) if cut else ())
    for text, frames in out.records:
        assert all(astm_drive.frame_ok(f) for f in frames), frames
        assert text == astm_drive.record_text(frames)


def crf(data: bytes) -> None:
    """Bytes from the freezer; every reading but a line error must carry a line whose CRC checks."""
    for batch, _ in crf_drive.decode(data).batches:
        for r in batch.readings:
            if r.point != "line_error":
                assert r.raw is not None and crf_drive.line_ok(r.raw), r


TARGETS = {"astm": (astm, astm_drive.TRANSFERS), "crf": (crf, crf_drive.STREAMS)}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        names = "|".join(TARGETS)
        raise SystemExit(f"usage: python -m tests.reliability.fuzz.atheris_run {names} [CORPUS_DIR] [libFuzzer flags]")
    target, seeds = TARGETS[sys.argv.pop(1)]
    corpus = next((Path(a) for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus is not None and corpus.is_dir() and not any(corpus.iterdir()):
        for i, seed in enumerate(seeds):
            (corpus / f"seed-{i}").write_bytes(b"".join(seed))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
