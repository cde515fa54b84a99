"""A plain TUF client polling during a publish never sees a root or targets
version that is not cosigned (issue 8, acceptance 4; DESIGN §4 staging).

The validating witness reads the log and the staged metadata through a
loopback proxy the test holds: while the proxy holds its requests, the
publish of a new root and a new release waits for that witness's
cosignature, and tuf-js (an independent TUF client) polls the repository
through nginx. It must keep seeing the old root and targets; the new
versions exist only in the staging area, where no TUF client looks. When
the proxy lets the witness through, the publish completes and tuf-js sees
both. No sleeping: the test waits on the proxy's own events.
"""

import http.server
import json
import subprocess
import threading
import time
from pathlib import Path
from urllib.request import urlopen
from urllib.error import HTTPError

from otarepo import Key, Repo
from testlib import bin_dir, free_port, otachain, run_tufjs
from witnesslib import Witness

ORIGIN = "example.test/staging"


class HoldingProxy:
    """Serves files of `root` over HTTP on loopback, holding every request
    until release() (a slow witness link the test controls)."""

    def __init__(self, root):
        self.root = Path(root)
        self.go = threading.Event()
        self.go.set()
        self.asked = threading.Event()
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.requests.append(self.path)
                proxy.asked.set()
                proxy.go.wait(timeout=120)
                f = proxy.root / self.path.lstrip("/")
                if not f.resolve().is_relative_to(proxy.root.resolve()) or not f.is_file():
                    self.send_response(404)
                    self.end_headers()
                    return
                data = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold(self):
        self.go.clear()
        self.asked.clear()

    def release(self):
        self.go.set()

    def stop(self):
        self.go.set()
        self.server.shutdown()
        self.server.server_close()


def status_of(url):
    try:
        with urlopen(url, timeout=30) as r:
            return r.status
    except HTTPError as e:
        return e.code


def test_tuf_client_never_sees_an_uncosigned_version(tmp_path, nginx_factory):
    keydir = tmp_path / "keys"
    keydir.mkdir()
    root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(2)]
    targets_keys = [Key.generate(keydir / f"targets{i}.key") for i in range(2)]
    w = Witness(tmp_path / "w0", "witness.test/w0", [], extra={"fetch_timeout": 3600})
    w.init()
    port = free_port()
    dir = tmp_path / "repo"
    # Root v1 waits for its second root signature, so that the witness can
    # be configured with the log key first.
    otachain("repo", "init", dir, "--root-threshold", "2", "--targets-threshold", "2",
             "--ledger-origin", ORIGIN, "--witness", f"w0={w.vkey}@http://127.0.0.1:{port}",
             "--root-key", root_keys[0].path, "--root-key", root_keys[1].pub,
             "--targets-key", targets_keys[0].path, "--targets-key", targets_keys[1].path)
    otachain("root", "sign", dir, "--key", root_keys[1].path)
    pending = json.loads((dir / "pending" / "root.json").read_text())
    log_vkey = pending["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
    anchor = tmp_path / "anchor.root.json"
    anchor.write_text(json.dumps(pending, sort_keys=True, separators=(",", ":")))
    repo = Repo(dir, keydir, root_keys, targets_keys)
    proxy = HoldingProxy(dir / "public")
    w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [log_vkey],
               "tiles_url": proxy.url + "/ledger", "repo_url": proxy.url, "anchor": anchor}]
    w.write_config(port=port)
    # The witness's clock is injected and stands still, and its fetch
    # deadline is an hour: its fetches through the held proxy are not judged
    # slow (the slow-retrieval rules read that clock), however long the
    # client's polls take on a busy machine.
    w.start(env={"OTACHAIN_TEST_NOW": str(int(time.time()))})
    pub = None
    try:
        otachain("repo", "publish", dir)
        srv = nginx_factory(root=dir / "public")
        root1 = dir / "public" / "metadata" / "1.root.json"
        cache = tmp_path / "tufjs"

        def poll():
            return run_tufjs(srv.url + "/metadata", srv.url + "/targets", root1, cache)

        r = poll()
        assert r["ok"] and r["root_version"] == 1 and r["targets_version"] == 1, r

        # A new root and a new release, both pending; the witness is slow.
        otachain("root", "rotate", dir, "--rotate-online-key", "timestamp",
                 "--key", root_keys[0].path, "--key", root_keys[1].path)
        repo.add_release("cam", "1.0.0", b"new firmware" * 50, publish=False)
        proxy.hold()
        pub = subprocess.Popen([str(bin_dir() / "programs" / "otachain" / "otachain"), "repo",
                                "publish", str(dir), "--witness-timeout", "10m"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proxy.asked.wait(timeout=120), "the witness never asked"
        # The publish is waiting for the cosignature: poll as a client.
        for _ in range(3):
            r = poll()
            assert r["ok"], r
            assert r["root_version"] == 1 and r["targets_version"] == 1, r
            assert status_of(srv.url + "/metadata/2.root.json") == 404
            assert status_of(srv.url + "/metadata/2.targets.json") == 404
            assert pub.poll() is None, pub.communicate()
        # What the witness reads is staged, where no client looks.
        staged = {p.name for p in (dir / "public" / "staging" / "metadata").iterdir()}
        assert {"2.root.json", "2.targets.json"} <= staged, staged
        proxy.release()
        out, err = pub.communicate(timeout=300)
        assert pub.returncode == 0, err
        assert "published: root v2, targets v2" in out, out
        r = poll()
        assert r["ok"] and r["root_version"] == 2 and r["targets_version"] == 2, r
        assert any("/staging/metadata/2.root.json" in q for q in proxy.requests), proxy.requests
    finally:
        if pub is not None and pub.poll() is None:
            pub.kill()
            pub.wait()
        proxy.stop()
        w.kill()
