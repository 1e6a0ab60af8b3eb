"""Red team (found, fixed): the shipped coding template is public (and its source sits in
every image's hud package), so fixed hidden cases could be answered from a lookup table:
1.0 with the bug still there. The template now draws most inputs fresh at every grade and
takes the expected values from a reference, so a table built from its source fails."""

from __future__ import annotations

import pytest

from hud.eval import DockerPlacement, Taskset
from tests.redteam.conftest import Hostile

pytestmark = pytest.mark.docker

# Reads HIDDEN_CASES from the scaffold asset shipped in /opt/hud/venv (world-readable) and
# answers exactly those inputs from a table; median() keeps its bug for every other input.
LOOKUP_TABLE = r'''
python3 - <<'PY'
import glob, json, re
src = open(glob.glob("/opt/hud/venv/lib/python3*/site-packages/hud/_assets/templates/"
                     "coding/env.py")[0]).read()
table = {json.dumps(json.loads(a)): float(e) for a, e in
         re.findall(r'Case\("stats:median", args=\[(\[.*?\])\], expect=([0-9.]+)\)', src)}
core = open("stats/core.py").read().replace(
    "    ordered = sorted(values)\n",
    "    ordered = sorted(values)\n    if json.dumps(list(values)) in _SEEN:\n"
    "        return _SEEN[json.dumps(list(values))]\n", 1)
open("stats/core.py", "w").write(core + "\nimport json\n_SEEN = %r\n" % table)
PY
python3 -c 'import stats; print("still buggy:", stats.median([1, 2, 3, 4]))'
'''


async def test_lookup_table_from_shipped_hidden_cases_grades_zero(template_image) -> None:
    """A median() that is still wrong (3.5 for [1, 2, 3, 4]) but answers the hidden inputs
    from the template's expected values, read in the container, grades 0.0."""
    folder, tag = template_image("coding")
    job = await Taskset.from_source(folder).run(Hostile(LOOKUP_TABLE),
                                                runtime=DockerPlacement(tag))
    run, = job.runs
    assert run.status == "completed", run.error
    assert run.reward == 0.0, run.grade
