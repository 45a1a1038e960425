"""The main job's steps: each says what it shows, joins only inside the sources' coverage, and is repeatable."""

from __future__ import annotations

import numpy as np
import pytest

from xwvnet import schema as S


def test_demo_join_only_joins_inside_coverage_and_says_so(data_dir, tmp_path, capsys):
    pytest.importorskip("cfgrib", reason="the UK ERA5 sample is GRIB")
    from xwvnet.demo import demo_join

    table = demo_join(tmp_path, data_dir, n=6)
    assert (tmp_path / "collocate_era5.png").stat().st_size > 10_000
    assert table.sizes[S.IMAGETTE] == 12  # 6 in the UK box (GRIB, March 2019) + 6 world-wide at 2021-03-01 11-13Z
    assert np.isfinite(table.era5_t2m.values).all()
    assert table.era5_t2m.min() > 250 and table.era5_t2m.max() < 310
    uk = table.where(table.group.str.contains("UK"), drop=True)
    assert (uk[S.TIME] >= np.datetime64("2019-03-01")).all() and (uk[S.TIME] < np.datetime64("2019-04-01")).all()
    world = table.where(table.group.str.contains("world"), drop=True)
    offsets = np.abs(world[S.TIME].values - np.datetime64("2021-03-01T12:00"))
    assert (offsets <= np.timedelta64(1, "h")).all()
    out = capsys.readouterr().out
    assert "WV manifest" in out and "not joined" in out
