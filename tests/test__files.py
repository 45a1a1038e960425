"""Local files: the temporary-file-then-rename rule (xwvnet._files.replacing), URLs refused (local_path)."""

import pytest

from xwvnet._files import local_path, replacing


def test_a_clean_exit_replaces_the_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with replacing(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing changes until the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_an_error_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), replacing(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("url", ["s3://bucket/run/a.json", "gs://bucket/a.json", "s3:/bucket/a.json"])
def test_a_url_is_refused_never_written_to_a_folder_named_after_it(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="bucket"), replacing(url) as tmp:
        tmp.write_text("lost")
    with pytest.raises(ValueError, match="a probe is read and written on a local file system|without '//'"):
        local_path(url, "a probe")
    assert not any(tmp_path.iterdir())


def test_local_paths_and_file_urls_are_the_same_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("a.json") == local_path(f"file://{tmp_path}/a.json") == tmp_path / "a.json"
