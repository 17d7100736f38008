"""gateway.metrics.cpuload: runnable threads per core from a loadavg file, decayed, at least 1."""

from __future__ import annotations

from pathlib import Path

from gateway.metrics.cpuload import CpuLoad


def probe_with(tmp_path: Path, runnable: int, cores: int) -> CpuLoad:
    path = tmp_path / "loadavg"
    path.write_text(f"0.50 0.40 0.30 {runnable}/300 4242\n")
    load = CpuLoad(str(path))
    load._cores = cores  # the machine's core count is not what this test is about
    return load


def test_the_first_reading_is_taken_as_it_is_then_decayed(tmp_path):
    load = probe_with(tmp_path, runnable=6, cores=2)
    assert load.probe() == 3.0
    (tmp_path / "loadavg").write_text("0.5 0.4 0.3 2/300 4242\n")
    assert load.probe() == 0.8 * 3.0 + 0.2 * 1.0


def test_an_idle_machine_is_one_never_less(tmp_path):
    assert probe_with(tmp_path, runnable=1, cores=4).probe() == 1.0


def test_an_unreadable_file_leaves_the_factor_alone(tmp_path):
    load = CpuLoad(str(tmp_path / "absent"))
    assert load.probe() == 1.0
    (tmp_path / "garbled").write_text("not a loadavg line")
    assert CpuLoad(str(tmp_path / "garbled")).probe() == 1.0
