"""The trial children of compiled cells: a child is stopped when it reports no progress for the time-out, never
while it keeps reporting, and its output survives either way."""
import subprocess
import sys

import pytest

from needle.course import child_trial


def _child(progress, body: str) -> subprocess.Popen:
    code = f"import sys, time\nprogress = open({str(progress)!r}, 'a')\n{body}"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_child_that_keeps_reporting_runs_past_the_timeout(tmp_path):
    progress = tmp_path / "progress.jsonl"
    progress.touch()
    body = ("for i in range(6):\n    progress.write('{}\\n'); progress.flush(); time.sleep(0.4)\n"
            "print('finished')")
    hung, out, _ = child_trial._communicate_while_progressing(_child(progress, body), progress, timeout=1.0)
    assert not hung and "finished" in out  # 2.4 s in all, never 1 s without a record


@pytest.mark.parametrize("silent_after_start", [False, True])
def test_a_child_silent_for_the_timeout_is_stopped_with_its_output(tmp_path, monkeypatch, silent_after_start):
    monkeypatch.setattr(child_trial, "STARTUP", 0.5)
    progress = tmp_path / "progress.jsonl"
    progress.touch()
    body = ("progress.write('{}\\n'); progress.flush()\n" if silent_after_start else "") + \
        "print('before the loop', flush=True)\nwhile True: pass"
    proc = _child(progress, body)
    hung, out, _ = child_trial._communicate_while_progressing(proc, progress, timeout=1.0)
    assert hung and "before the loop" in out and proc.returncode is not None
