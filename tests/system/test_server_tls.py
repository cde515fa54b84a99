"""otachain-server over real TLS (issue 11, acceptance 1).

- device certificates from another CA, unknown (self-signed), of another
  role (a device-CA certificate without the device policy OID, whatever
  its name), expired (on the server's injected clock), or none at all are
  refused;
- revoking a device takes effect without a restart on its next request:
  on a new connection, on an already open keep-alive connection, and on a
  resumed TLS 1.3 session (openssl s_client -sess_out / -sess_in printing
  "Reused, TLSv1.3": a resumed session presents no certificate, the server
  reads the one stored in the session and checks its serial and device id
  in the database);
- a token without the scope is refused; a device cannot read or write
  another device's state; a proxy header from an address that is not a
  trusted proxy is ignored.
"""

import http.client
import socket
import ssl
import subprocess

import pytest

from otarepo import Repo
from serverlib import T0, Fleet, Server, checkin_body, client_context


@pytest.fixture(name="base", scope="module")
def base_fixture(tmp_path_factory):
    """One repository and one fleet CA for the module (the costly part)."""
    tmp = tmp_path_factory.mktemp("tls")
    repo = Repo.create(tmp / "repo", ledger=False)
    repo.add_release("cam", "1.1.0", b"\x01" * 4096, hardware="rev-a")
    fleet = Fleet.create(tmp / "fleet")
    return repo, fleet


@pytest.fixture(name="hosted")
def hosted_fixture(tmp_path, base):
    """A fresh server (and fleet database) per test over the module's
    repository and CA; tests use device ids of their own."""
    repo, fleet = base
    srv = Server(tmp_path / "srv", repo.dir, fleet).start()
    yield repo, fleet, srv
    srv.stop()


def refused(srv, cred=None, ctx=None):
    """Whether a request with cred (or ctx) fails in or right after the
    handshake (TLS 1.3 sends the alert after the client's Finished)."""
    ctx = ctx or client_context(srv.fleet.server_ca, *(cred[:2] if cred else ()))
    conn = http.client.HTTPSConnection("127.0.0.1", srv.ports["device"], context=ctx, timeout=30)
    try:
        conn.request("POST", "/api/v1/checkin", body=b"{}")
        conn.getresponse().read()
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, socket.timeout):
        return True
    finally:
        conn.close()
    return False


def openssl(*args, input=None, check=True):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, input=input,
                       timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(p.stderr.decode())
    return p


def test_good_device_is_served(hosted):
    _, fleet, srv = hosted
    dev = fleet.device("cam-0001")
    r = srv.device(dev).checkin(checkin_body(hardware="rev-a"))
    assert r.status == 200, r.text
    assert r.json["assignment"]["target"] == "cam/1.1.0/firmware.img"
    line = srv.requests()[-1]
    assert line["device"] == "cam-0001" and line["status"] == "200"


def test_certificates_refused(hosted, tmp_path):
    _, fleet, srv = hosted
    # Another fleet's device CA.
    other = Fleet.create(tmp_path / "other")
    assert refused(srv, other.device("cam-0001"))
    # Unknown: self-signed, with a device-like name.
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", tmp_path / "self.key", "-out", tmp_path / "self.crt", "-subj",
            "/CN=cam-0001", "-days", "2", "-addext", "extendedKeyUsage=clientAuth")
    assert refused(srv, (tmp_path / "self.crt", tmp_path / "self.key"))
    # No certificate at all.
    assert refused(srv, ctx=client_context(fleet.server_ca))
    # Issued by the device CA but without the device policy OID: the name
    # "admin" or "cam-0009" proves nothing.
    for cn in ("cam-0009", "admin"):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", tmp_path / f"{cn}.key", "-out", tmp_path / f"{cn}.csr", "-subj",
                f"/CN={cn}")
        (tmp_path / "ext").write_text("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", tmp_path / f"{cn}.csr", "-CA", fleet.device_ca, "-CAkey",
                fleet.ca / "private" / "device-ca.key", "-CAcreateserial", "-out",
                tmp_path / f"{cn}.crt", "-days", "2", "-extfile", tmp_path / "ext")
        assert refused(srv, (tmp_path / f"{cn}.crt", tmp_path / f"{cn}.key"))
    # An admin certificate (server CA) is not a device certificate.
    assert refused(srv, fleet.admin_cert("alice"))
    # Nothing of these reached the API.
    assert not [r for r in srv.requests() if r.get("listener") == "device"]


def test_expired_certificate(hosted):
    _, fleet, srv = hosted
    dev = fleet.device("cam-0002", validity="2d")
    c = srv.device(dev)
    assert c.checkin(checkin_body()).status == 200
    srv.set_time(T0 + 3 * 86400)
    # The open keep-alive connection: its next request is refused.
    r = c.checkin(checkin_body())
    assert r.status == 403 and r.json["error"] == "cert_expired", r.text
    assert "valid until" in r.json["message"]
    c.close()
    # A new connection is refused in the handshake (the server's clock).
    assert refused(srv, dev)


def revoke(srv, token, device=None, serial=None):
    path = (f"/admin/v1/devices/{device}/revoke" if device
            else f"/admin/v1/certificates/{serial}/revoke")
    return srv.admin(token).post(path, {"reason": "test"})


def test_revocation_next_request_keepalive_and_new_connection(hosted):
    _, fleet, srv = hosted
    tok = srv.token("ops", "admin")
    dev = fleet.device("cam-0003")
    c = srv.device(dev)
    assert c.checkin(checkin_body()).status == 200
    sock = c.sock
    r = revoke(srv, tok, device="cam-0003")
    assert r.status == 200, r.text
    # Same connection (not re-established), refused now.
    r = c.checkin(checkin_body())
    assert c.sock is sock
    assert r.status == 403 and r.json["error"] == "revoked", r.text
    assert "device cam-0003 revoked" in r.json["message"]
    r = c.get("/metadata/timestamp.json")
    assert r.status == 403
    # A new connection too; the handshake still succeeds (the certificate
    # is fine), the database says no.
    r = srv.device(dev).checkin(checkin_body())
    assert r.status == 403 and r.json["error"] == "revoked"
    # Revoking one certificate leaves the device's other ones valid.
    d4a = fleet.device("cam-0004", out="d4a")
    d4b = fleet.device("cam-0004", out="d4b")
    assert revoke(srv, tok, serial=d4a[2]).status == 200
    assert srv.device(d4a).checkin(checkin_body()).json["error"] == "revoked"
    assert srv.device(d4b).checkin(checkin_body()).status == 200
    # A second revocation keeps the first.
    r = revoke(srv, tok, device="cam-0003")
    assert r.status == 409 and r.json["error"] == "exists"


def s_client(srv, sess_arg, sess_file, cred=None, path="/api/v1/device"):
    args = ["s_client", "-connect", f"127.0.0.1:{srv.ports['device']}", "-CAfile",
            srv.fleet.server_ca, "-tls1_3", "-ign_eof", sess_arg, sess_file]
    if cred is not None:
        args += ["-cert", cred[0], "-key", cred[1]]
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").encode()
    return openssl(*args, input=req, check=False).stdout.decode(errors="replace")


def test_revocation_on_resumed_session(hosted, tmp_path):
    _, fleet, srv = hosted
    tok = srv.token("ops", "admin")
    dev = fleet.device("cam-0005")
    sess = tmp_path / "sess.pem"
    assert srv.device(dev).checkin(checkin_body()).status == 200
    out = s_client(srv, "-sess_out", sess, cred=dev)
    assert "HTTP/1.1 200" in out and "New, TLSv1.3" in out, out
    # Resumed without presenting the certificate: the server knows the
    # device from the session.
    out = s_client(srv, "-sess_in", sess)
    assert "Reused, TLSv1.3" in out, out
    assert "HTTP/1.1 200" in out and '"id":"cam-0005"' in out, out
    assert revoke(srv, tok, device="cam-0005").status == 200
    out = s_client(srv, "-sess_in", sess)
    assert "Reused, TLSv1.3" in out, out
    assert "HTTP/1.1 403" in out and '"error":"revoked"' in out, out


def test_token_scopes(hosted):
    _, fleet, srv = hosted
    read = srv.token("ro", "read")
    ops = srv.token("ops", "admin")
    assert srv.admin(read).get("/admin/v1/devices").status == 200
    r = revoke(srv, read, device="cam-0001")
    assert r.status == 403 and r.json["error"] == "scope", r.text
    assert "needs scope admin" in r.json["message"]
    assert srv.admin(read).get("/admin/v1/tokens").json["error"] == "scope"
    # The refusal is in the audit trail, with who.
    entries = srv.admin(ops).get("/admin/v1/audit").json["entries"]
    assert entries[0]["action"] == "device.revoke" and entries[0]["outcome"] == "scope"
    assert entries[0]["actor"].startswith("token:") and "(ro)" in entries[0]["actor"]
    # No token, a malformed one, a wrong secret, a revoked one.
    assert srv.admin().get("/admin/v1/status").json["error"] == "unauthenticated"
    assert srv.admin("nonsense").get("/admin/v1/status").status == 401
    forged = read[:-1] + ("0" if read[-1] != "0" else "1")
    assert srv.admin(forged).get("/admin/v1/status").status == 401
    rid = read.split(".")[1]
    assert srv.admin(ops).request("DELETE", f"/admin/v1/tokens/{rid}").status == 200
    r = srv.admin(read).get("/admin/v1/status")
    assert r.status == 403 and r.json["error"] == "revoked"
    # /metrics needs a token too.
    assert srv.admin().get("/metrics").status == 401
    assert "otachain_checkins_total" in srv.admin(ops).get("/metrics").text


def test_admin_certificate(tmp_path, base):
    repo, fleet = base
    cert, key = fleet.server_cert
    srv = Server(tmp_path / "srv", repo.dir, fleet, settings={
        "admin.plain_http": None, "admin.tls_cert": str(cert), "admin.tls_key": str(key),
        "admin.client_ca": str(fleet.server_ca)}).start()
    try:
        port = srv.ports["admin"]
        adm = fleet.admin_cert("alice")

        def get(ctx, path="/admin/v1/tokens"):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        status, _ = get(client_context(fleet.server_ca, *adm))
        assert status == 200
        assert any(r["actor"] == "cert:alice" for r in srv.requests())
        # Without a certificate: a token is needed.
        status, body = get(client_context(fleet.server_ca))
        assert status == 401
        # A device certificate comes from the other CA: refused.
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            get(client_context(fleet.server_ca, *fleet.device("cam-1")[:2]))
    finally:
        srv.stop()


def test_device_isolation(hosted):
    _, fleet, srv = hosted
    a = srv.device(fleet.device("cam-a"))
    b = srv.device(fleet.device("cam-b"))
    assert b.checkin(checkin_body(version="1.0.0")).status == 200
    # The id comes from the certificate: a body naming one is refused.
    body = checkin_body(version="9.9.9")
    body["device_id"] = "cam-b"
    r = a.checkin(body)
    assert r.status == 400 and r.json["error"] == "format"
    assert "comes from the certificate" in r.json["message"]
    body = checkin_body()
    body["running"]["id"] = "cam-b"
    assert a.checkin(body).status == 400
    # No route of the device API reads another device.
    for path in ("/api/v1/device/cam-b", "/api/v1/devices/cam-b", "/admin/v1/devices/cam-b",
                 "/api/v1/device?id=cam-b"):
        r = a.get(path)
        assert r.status == 404 or r.json.get("id") == "cam-a", (path, r.text)
    assert a.checkin(checkin_body(version="1.0.1")).status == 200
    assert a.get("/api/v1/device").json["id"] == "cam-a"
    # b is untouched.
    tok = srv.token("ro", "read")
    assert srv.admin(tok).get("/admin/v1/devices/cam-b").json["running"]["version"] == "1.0.0"


def test_proxy_header_only_from_trusted_proxies(tmp_path, base):
    repo, _ = base
    # Trusted: 127.0.0.1; the header is believed.
    srv = Server(tmp_path / "srv", repo.dir, plain_device=True).start()
    try:
        r = srv.proxied("cam-p1").checkin(checkin_body())
        assert r.status == 200, r.text
        assert srv.requests()[-1]["device"] == "cam-p1"
        # Without the header: unauthenticated.
        from serverlib import Conn
        r = Conn(srv.ports["device"]).checkin(checkin_body())
        assert r.status == 401
    finally:
        srv.stop()
    # The proxy is elsewhere: the same header from 127.0.0.1 is ignored.
    srv = Server(tmp_path / "srv2", repo.dir, plain_device=True,
                 settings={"device.trusted_proxies": "10.1.2.3, fd00::1"}).start()
    try:
        r = srv.proxied("cam-p2").checkin(checkin_body())
        assert r.status == 401 and r.json["error"] == "unauthenticated", r.text
        assert "not a trusted proxy" in r.json["message"]
        tok = srv.token("ro", "read")
        assert srv.admin(tok).get("/admin/v1/devices/cam-p2").status == 404
    finally:
        srv.stop()


def test_certificate_renewal(tmp_path, base):
    """A device renews over its current mutual-TLS identity, with a key it
    made itself, within renew_window of its certificate's end."""
    repo, fleet = base
    srv = Server(tmp_path / "srv", repo.dir, fleet, settings={
        "device.renew_ca_cert": str(fleet.device_ca),
        "device.renew_ca_key": str(fleet.ca / "private" / "device-ca.key"),
        "device.renew_window": str(30 * 86400)}).start()
    try:
        soon = fleet.device("cam-renew", validity="10d")
        later = fleet.device("cam-later", validity="365d")

        def csr(cn):
            key = tmp_path / f"{cn}.key"
            openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", tmp_path / f"{cn}.csr", "-subj", f"/CN={cn}")
            return (tmp_path / f"{cn}.csr").read_bytes(), key

        body, key = csr("cam-renew")
        r = srv.device(soon).post("/api/v1/certificate", body,
                                  headers={"Content-Type": "application/pkcs10"})
        assert r.status == 200, r.text
        assert r.headers["content-type"] == "application/pem-certificate-chain"
        new = tmp_path / "renewed.crt"
        new.write_bytes(r.body)
        assert "Subject: CN = cam-renew" in openssl("x509", "-in", new, "-noout", "-text").stdout \
            .decode()
        assert openssl("verify", "-CAfile", fleet.device_ca, new, check=False).returncode == 0
        # The new certificate, with the device's own key, is a device now.
        r = srv.device((new, key)).checkin(checkin_body())
        assert r.status == 200 and srv.requests()[-1]["device"] == "cam-renew"
        ops = srv.token("ops", "admin")
        entries = srv.admin(ops).get("/admin/v1/audit").json["entries"]
        renew = [e for e in entries if e["action"] == "certificate.renew"]
        assert renew and renew[0]["actor"] == "device:cam-renew" and renew[0]["outcome"] == "ok"
        # Another device's id in the request; not yet due; garbage.
        other, _ = csr("cam-other")
        r = srv.device(soon).post("/api/v1/certificate", other)
        assert r.status == 400 and "the caller is cam-renew" in r.json["message"]
        mine, _ = csr("cam-later")
        r = srv.device(later).post("/api/v1/certificate", mine)
        assert r.status == 409 and r.json["error"] == "exists"
        assert "not yet due" in r.json["message"]
        r = srv.device(soon).post("/api/v1/certificate", b"not a csr")
        assert r.status == 400
    finally:
        srv.stop()
    # Renewal off: 404.
    srv = Server(tmp_path / "srv2", repo.dir, fleet).start()
    try:
        r = srv.device(fleet.device("cam-renew")).post("/api/v1/certificate", b"x")
        assert r.status == 404 and "not enabled" in r.json["message"]
    finally:
        srv.stop()
