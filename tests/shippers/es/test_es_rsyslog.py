"""rsyslog's ``omelasticsearch`` (Debian's ``rsyslog-elasticsearch``)
shipping syslog messages to the collector's ``_bulk`` in bulk mode with
Basic auth (the password is the ingest key): every message once with its
fields and time; a bad key, a malformed source, an oversized batch and
backpressure answered in Elasticsearch's shapes, which rsyslog records in
its error file.

rsyslog 8.2302 (Debian 12) writes a bulk request answered with a
whole-request error (401, 413, 429…) to its error file and does not retry
it; rsyslog 8.2606 and later suspend and retry on 429/5xx/401/403. The
backpressure test therefore checks what this version can: every message is
either stored once or in rsyslog's error file with the 429 answer, never
both, never lost silently."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from collector_process import free_port
from shipper_support import APP, INGEST_KEY, ShipperCollector

INDEX = "rsyslog-test"
BASE = datetime.fromisoformat("2025-12-07T11:15:00.123+00:00")

#: Source documents as JSON, every value escaped by rsyslog.
GOOD_TEMPLATE = """
template(name="helios-es" type="list") {
  constant(value="{\\"@timestamp\\":\\"")
  property(name="timereported" dateFormat="rfc3339")
  constant(value="\\",\\"message\\":\\"")
  property(name="msg" format="json")
  constant(value="\\",\\"host\\":\\"")
  property(name="hostname" format="json")
  constant(value="\\",\\"program\\":\\"")
  property(name="programname" format="json")
  constant(value="\\",\\"severity\\":\\"")
  property(name="syslogseverity-text")
  constant(value="\\"}")
}
"""
#: A template whose documents are cut short: not JSON.
BROKEN_TEMPLATE = """
template(name="helios-es" type="list") {
  constant(value="{\\"message\\":\\"")
  property(name="msg" format="json")
}
"""


class Rsyslog:
    """``rsyslogd -n`` in the foreground with a config of the test's own:
    imtcp on a free port → omelasticsearch to the collector."""

    def __init__(
        self, tmp_path: Path, collector: ShipperCollector, password: str, template: str
    ) -> None:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        if (
            not Path(binary).exists()
            or not Path("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so").exists()
        ):
            pytest.fail(
                "rsyslogd with omelasticsearch not found: apt-get install rsyslog "
                "rsyslog-elasticsearch",
                pytrace=False,
            )
        self.dir = tmp_path / "rsyslog"
        self.dir.mkdir()
        self.port = free_port()
        self.error_file = self.dir / "es-errors.json"
        config = self.dir / "rsyslog.conf"
        config.write_text(
            f"""
global(workDirectory="{self.dir}")
module(load="imtcp")
module(load="omelasticsearch")
{template}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="to-helios")
ruleset(name="to-helios") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{collector.port}"
         searchIndex="{INDEX}" bulkmode="on" uid="rsyslog" pwd="{password}"
         template="helios-es" errorfile="{self.error_file}"
         action.resumeRetryCount="-1")
}}
"""
        )
        self.log = self.dir / "rsyslogd.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [binary, "-n", "-f", str(config), "-i", str(self.dir / "rsyslogd.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text()
                    raise AssertionError(f"rsyslogd did not start: {log}") from None
                time.sleep(0.05)

    def send(self, lines: list[str]) -> None:
        """RFC 5424 messages over TCP, newline-framed."""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall("".join(f"{line}\n" for line in lines).encode())

    def errors(self) -> list[dict]:
        """The failed requests rsyslog wrote to its error file."""
        if not self.error_file.exists():
            return []
        text = self.error_file.read_text()
        decoder = json.JSONDecoder()
        out, at = [], 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                return out
            record, at = decoder.raw_decode(text, at)
            out.append(record)

    def wait_errors(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.errors()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.errors()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@pytest.fixture
def rsyslog_for(tmp_path: Path):
    started = []

    def start(
        collector: ShipperCollector, password: str = INGEST_KEY, template: str = GOOD_TEMPLATE
    ) -> Rsyslog:
        running = Rsyslog(tmp_path, collector, password, template)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def syslog_line(i: int, text: str) -> str:
    moment = (BASE + timedelta(seconds=i)).isoformat(timespec="milliseconds")
    return f"<14>1 {moment} host-{i % 3} app{i % 2} 42 - - {text}"


def stored_messages(docs: list[dict]) -> list[str]:
    return sorted(doc["message"] for doc in docs)


def sent_in(errors: list[dict]) -> list[str]:
    """The messages of the bulk requests rsyslog records as failed."""
    messages = []
    for record in errors:
        lines = record["request"]["postdata"].splitlines()
        messages += [json.loads(source)["message"] for source in lines[1::2]]
    return messages


def test_rsyslog_ships_every_message_once_with_its_fields_and_time(
    collector: ShipperCollector, rsyslog_for
) -> None:
    rsyslog = rsyslog_for(collector)
    texts = [f'message {i} "quoted" \\ back é ✓' for i in range(200)]
    rsyslog.send([syslog_line(i, text) for i, text in enumerate(texts)])
    docs = collector.wait_documents(200)
    assert stored_messages(docs) == sorted(texts)
    by_message = {doc["message"]: doc for doc in docs}
    for i, text in enumerate(texts):
        doc = by_message[text]
        moment = BASE + timedelta(seconds=i)
        assert doc["ts"] == int(moment.timestamp() * 1000)
        assert doc["type"] == INDEX
        assert doc["es_index"] == INDEX
        assert doc["app"] == APP
        assert doc["host"] == f"host-{i % 3}"
        assert doc["program"] == f"app{i % 2}"
        assert doc["severity"] == "info"
        assert "es_id" not in doc
    assert rsyslog.errors() == []


def test_rsyslog_with_a_bad_password_gets_401_and_stores_nothing(
    collector: ShipperCollector, rsyslog_for
) -> None:
    rsyslog = rsyslog_for(collector, password="not-the-key")
    rsyslog.send([syslog_line(0, "bad key")])
    [record] = rsyslog.wait_errors(1)
    assert record["reply"]["status"] == 401
    assert record["reply"]["error"]["type"] == "security_exception"
    assert sent_in([record]) == ["bad key"]
    assert collector.wait_documents(1, timeout=1) == []


def test_rsyslog_documents_that_are_not_json_are_refused_per_item(
    collector: ShipperCollector, rsyslog_for
) -> None:
    rsyslog = rsyslog_for(collector, template=BROKEN_TEMPLATE)
    rsyslog.send([syslog_line(0, "cut short")])
    [record] = rsyslog.wait_errors(1)
    [item] = record["reply"]["items"]
    assert item["index"]["status"] == 400
    assert item["index"]["error"]["type"] == "mapper_parsing_exception"
    assert record["reply"]["errors"] is True
    assert collector.wait_documents(1, timeout=1) == []


def test_rsyslog_batch_over_the_body_limit_gets_413_and_stores_nothing(
    tmp_path: Path, rsyslog_for
) -> None:
    collector = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "4096"])
    collector.start()
    try:
        rsyslog = rsyslog_for(collector)
        rsyslog.send([syslog_line(0, "x" * 6000)])
        [record] = rsyslog.wait_errors(1)
        assert record["reply"]["status"] == 413
        assert record["reply"]["error"]["type"] == "content_too_long_exception"
        assert collector.wait_documents(1, timeout=1) == []
    finally:
        collector.close()


def test_rsyslog_under_backpressure_stores_or_reports_every_message_exactly_once(
    tmp_path: Path, rsyslog_for, store_lock
) -> None:
    collector = ShipperCollector.with_keys(tmp_path, extra_args=["--journal-budget-bytes", "65536"])
    collector.start()
    try:
        rsyslog = rsyslog_for(collector)
        lock = store_lock(collector)
        texts = [f"pressure {i} {'x' * 300}" for i in range(1500)]
        rsyslog.send([syslog_line(i, text) for i, text in enumerate(texts)])
        # The first batches fill the journal budget, the rest are answered
        # 429 while the store is held.
        errors = rsyslog.wait_errors(1)
        time.sleep(1.0)
        lock.release()
        deadline = time.monotonic() + 30
        while True:
            docs = collector.documents()
            errors = rsyslog.errors()
            if len(docs) + len(sent_in(errors)) >= len(texts) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        docs = collector.wait_documents(len(docs))
        assert errors, "rsyslog never got a 429: no backpressure was exercised"
        for record in errors:
            assert record["reply"]["status"] == 429
            assert record["reply"]["error"]["type"] == "es_rejected_execution_exception"
        stored, refused = stored_messages(docs), sent_in(errors)
        assert len(set(stored)) == len(stored), "a message was stored twice"
        assert sorted(stored + refused) == sorted(texts)
    finally:
        collector.close()


def test_the_store_lock_really_stalls_the_flusher(tmp_path: Path, store_lock) -> None:
    """The backpressure tests rely on a held SQLite lock stopping the
    flusher; if it did not, they would prove nothing."""
    collector = ShipperCollector.with_keys(tmp_path).start()
    try:
        lock = store_lock(collector)
        with socket.create_connection(("127.0.0.1", collector.port)) as sock:
            body = b'{"index":{"_index":"l"}}\n{"message":"held"}\n'
            head = (
                "POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                f"Authorization: ApiKey {INGEST_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)
        conn = sqlite3.connect(f"file:{collector.data_dir / 'events.db'}?mode=ro", uri=True)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
        conn.close()
        lock.release()
        assert [doc["message"] for doc in collector.wait_documents(1)] == ["held"]
    finally:
        collector.close()
