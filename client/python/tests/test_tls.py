"""``https://`` endpoints: the same protocol over TLS, certificates checked."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

import fake_servers
from helpers import FAST_RETRIES


@pytest.fixture
def certificate(tmp_path):
    """A throwaway self-signed certificate for 127.0.0.1 (made with the
    openssl command, as the standard library cannot make one)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_fake(certificate):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = fake_servers.FakeCollector(tls=context)
    try:
        yield server
    finally:
        server.stop()


def test_events_are_delivered_over_https_with_a_trusted_certificate(
    make_client, tls_fake, certificate
):
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    client = make_client(tls_fake.url, ssl_context=trusted, **FAST_RETRIES)
    ids = [client.record("secure", {"n": n}) for n in range(3)]
    assert client.flush(5.0)
    assert [e["_id"] for e in tls_fake.events()] == ids
    for n in range(3):
        client.record("secure", {"n": n})
        assert client.flush(5.0)
    assert {r.connection for r in tls_fake.requests()} == {1}  # kept alive


def test_an_untrusted_certificate_is_refused_and_the_events_logged(make_client, tls_fake, lost_log):
    client = make_client(tls_fake.url, **FAST_RETRIES)  # system CAs only
    event_id = client.record("secure", {"n": 1})
    assert client.flush(10.0) is False
    assert event_id in lost_log.wait_for([event_id])
    assert "CERTIFICATE_VERIFY_FAILED" in lost_log.messages()[0]
    assert tls_fake.requests() == []
