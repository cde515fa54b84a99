"""tuf-js refreshes from a repository written by otachain and downloads the
image byte-identical, after 1 and after 50 root rotations (issue 2,
acceptance 2). Our own client walks the same chain.

Each rotation replaces one root key (2-of-3 throughout: the two keys that
stay sign, satisfying the old and the new threshold), and every tenth also
rotates the timestamp key, so the chain really exercises old+new threshold
checks and online-key changes rather than version bumps.
"""

import os

import pytest

from otarepo import CClient, Repo, TufJsClient


def rotate_n(repo, n):
    live = list(repo.root_keys)
    for i in range(n):
        new = repo.new_key(f"root-r{i}.key")
        args = ["--add-key", f"root={new.pub}", "--remove-key", f"root={live[0].keyid}"]
        if i % 10 == 9:
            args += ["--rotate-online-key", "timestamp"]
        repo.rotate_root(args, [live[1], live[2]])
        live = [live[1], live[2], new]
    return live


@pytest.mark.parametrize("rotations", [1, 50])
def test_tufjs_after_root_rotations(tmp_path, nginx_factory, rotations):
    repo = Repo.create(tmp_path / "repo")
    image = os.urandom(300_000) + b"otachain"
    target = repo.add_release("cam", "2.0.0", data=image, name="cam.img")
    rotate_n(repo, rotations)
    assert repo.version("root") == 1 + rotations
    srv = nginx_factory(root=repo.public)

    j = TufJsClient(tmp_path / "j", srv.url, repo.root1)
    rj = j.refresh(target=target, out=tmp_path / "j.img")
    assert rj.ok, rj.message
    assert (tmp_path / "j.img").read_bytes() == image

    c = CClient(tmp_path / "c", srv.url, repo.root1)
    rc = c.refresh(target=target, out=tmp_path / "c.img")
    assert rc.ok, rc.message
    assert (tmp_path / "c.img").read_bytes() == image
    assert f"root v{1 + rotations}" in rc.message

    # Both clients also follow a release published after the rotations.
    target2 = repo.add_release("cam", "2.1.0", data=image[::-1], name="cam.img")
    assert j.refresh(target=target2, out=tmp_path / "j2.img").ok
    assert c.refresh(target=target2, out=tmp_path / "c2.img").ok
    assert (tmp_path / "j2.img").read_bytes() == image[::-1]
    assert (tmp_path / "c2.img").read_bytes() == image[::-1]
