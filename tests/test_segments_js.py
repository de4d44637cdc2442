"""static/js/segments.js gives exactly what inbox/segments.py gives, over the same tables.

One node process per module run: it imports the real file by absolute file URL, reads the bodies
as JSON on stdin and prints its answers as JSON. (Node 20.19+ / 22.7+ load the .js file as an ES
module by detecting its syntax; there is no package.json in static/ to say so.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from inbox.segments import count, plain_swaps
from tests.test_segments import COUNT_CASES, SWAP_CASES

NODE = shutil.which("node")
MODULE = Path(__file__).resolve().parent.parent / "static" / "js" / "segments.js"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: cannot run static/js/segments.js")

RUNNER = f"""
import {{ readFileSync }} from "node:fs";
import {{ count, plainSwaps }} from {json.dumps(MODULE.as_uri())};
const input = JSON.parse(readFileSync(0, "utf8"));
const output = {{ counts: input.counts.map(count), swaps: input.swaps.map(plainSwaps) }};
process.stdout.write(JSON.stringify(output));
"""

# Every BMP character but the surrogates (they would pair up in JavaScript), and some beyond it:
# one body that compares the two character tables, entry for entry.
EVERY_CHARACTER = "".join(
    chr(code) for code in [*range(0xD800), *range(0xE000, 0x10000), *range(0x1F300, 0x1F6FF), 0x10FFFF]
)
EXTRA_BODIES = [EVERY_CHARACTER, EVERY_CHARACTER[:128], "".join(chr(code) for code in range(0x2000, 0x2100))]


def _camel(info) -> dict:
    return {
        "encoding": info.encoding,
        "characters": info.characters,
        "units": info.units,
        "segments": info.segments,
        "perSegment": info.per_segment,
        "remaining": info.remaining,
        "nonGsm": list(info.non_gsm),
    }


@pytest.fixture(scope="module")
def js() -> dict:
    bodies = [body for _, body, _ in COUNT_CASES] + EXTRA_BODIES
    swaps = [body for _, body, _ in SWAP_CASES] + EXTRA_BODIES
    payload = json.dumps({"counts": bodies, "swaps": swaps})  # ASCII-escaped: lone surrogates survive
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", RUNNER],
        input=payload,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"node failed:\n{result.stderr}"
    output = json.loads(result.stdout)
    return {
        "counts": dict(zip(bodies, output["counts"], strict=True)),
        "swaps": dict(zip(swaps, output["swaps"], strict=True)),
    }


@pytest.mark.parametrize(("name", "body", "expected"), COUNT_CASES, ids=[case[0] for case in COUNT_CASES])
def test_count_matches_python(js, name, body, expected):
    assert js["counts"][body] == _camel(count(body)) == _camel(expected)


@pytest.mark.parametrize(("name", "body", "expected"), SWAP_CASES, ids=[case[0] for case in SWAP_CASES])
def test_plain_swaps_match_python(js, name, body, expected):
    assert js["swaps"][body] == plain_swaps(body) == expected


@pytest.mark.parametrize("body", EXTRA_BODIES, ids=["every character", "first 128", "punctuation block"])
def test_character_tables_match_python(js, body):
    assert js["counts"][body] == _camel(count(body))
    assert js["swaps"][body] == plain_swaps(body)
