"""File bodies over HTTP/2: `http.response.pathsend` and `http.response.zerocopysend`
read in parts into DATA frames within the client's windows (qactuar/asgi/file_body.py,
qactuar/protocols/http2.py), the file descriptor closed whatever happens to the stream.

The real server and a real HTTP/2 client on a socket (tests/h2_client.py, `h2`),
prior knowledge and TLS with ALPN h2.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

from conftest import ServerProcess, wait_until, write_random_files, write_tls_files
from docs_examples import code_blocks
from h2_client import H2Client, StreamResult

MIB = 1024 * 1024
FRAME = 16384  # the default SETTINGS_MAX_FRAME_SIZE, which this client keeps


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # "large" is far more than any HTTP/2 window
    return write_random_files(tmp_path_factory.mktemp("h2files"), large_mib=16)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.file_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield process
    process.stop()


def target(route: str, path: Path, **query: int) -> str:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return f"{route}?file={quote(str(path))}{extra}"


def client(server: ServerProcess, **kwargs: object) -> H2Client:
    return H2Client(server.host, server.port, **kwargs)  # type: ignore[arg-type]


def open_descriptors(pid: int, path: Path) -> int:
    """How many of process `pid`'s file descriptors are open on `path`."""
    folder = Path(f"/proc/{pid}/fd")
    count = 0
    for entry in folder.iterdir():
        try:
            if os.readlink(entry) == str(path):
                count += 1
        except OSError:
            continue  # closed while listing
    return count


def last_outcome(server: ServerProcess) -> str:
    return httpx.get(server.url + "/last").json()["outcome"]


def data_frame_sizes(h2c: H2Client, stream_id: int) -> list[int]:
    return [len(event.data) for event in h2c.events
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id]


def test_the_extensions_are_advertised_over_http2(server: ServerProcess) -> None:
    with client(server) as h2c:
        names = set(httpx.Response(200, content=h2c.get("/extensions").body).json())
    assert {"http.response.pathsend", "http.response.zerocopysend"} <= names


def test_a_one_mib_file_arrives_intact_in_frames(server: ServerProcess,
                                                 files: dict[str, Path]) -> None:
    with client(server) as h2c:
        stream_id = h2c.request(target("/path-no-length", files["one"]))
        result = h2c.response(stream_id, timeout=30)
        sizes = data_frame_sizes(h2c, stream_id)
    assert result.status == 200
    assert result.header(b"content-length") == str(MIB).encode()  # added from the file
    assert hashlib.sha256(result.body).digest() == hashlib.sha256(
        files["one"].read_bytes()).digest()
    assert max(sizes) <= FRAME and len(sizes) >= MIB // FRAME


def test_a_file_larger_than_the_windows_waits_for_window_updates(
        server: ServerProcess, files: dict[str, Path]) -> None:
    window = 10_000
    with client(server, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window},
                auto_window=False) as h2c:
        h2c.wait_for_settings_ack()
        stream_id = h2c.request(target("/path", files["one"]))
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) == window, what="the first stream window")
        h2c.pump(0.5)
        assert len(result.body) == window and not result.ended  # nothing beyond the window
        h2c.auto_window = True  # from now on every DATA frame is acknowledged at once
        h2c.conn.acknowledge_received_data(window, stream_id)
        h2c.conn.increment_flow_control_window(MIB, stream_id)
        h2c.flush()
        h2c.response(stream_id, timeout=30)
    assert result.body == files["one"].read_bytes()
    assert last_outcome(server) == "ok"


def test_with_large_windows_the_file_is_sent_part_by_part(server: ServerProcess,
                                                         files: dict[str, Path]) -> None:
    """A client granting windows larger than the file: the server still reads and frames
    it a part at a time, so another stream of the connection is answered meanwhile
    (had the whole file been read and framed at once, its answer would come after)."""
    large = 2**31 - 1
    with client(server, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: large}) as h2c:
        h2c.wait_for_settings_ack()
        h2c.conn.increment_flow_control_window(large - 65535)
        ended: list[int] = []
        file_stream = h2c.conn.get_next_available_stream_id()
        for stream_id, path in ((file_stream, target("/path", files["one"])),
                                (file_stream + 2, "/extensions")):
            h2c.streams[stream_id] = StreamResult()
            h2c.conn.send_headers(stream_id, [(":method", "GET"), (":path", path),
                                              (":scheme", "http"), (":authority", "t")],
                                  end_stream=True)
        h2c.flush()  # both requests in one write
        def both_ended() -> bool:
            for stream_id in (file_stream, file_stream + 2):
                if h2c.streams[stream_id].ended and stream_id not in ended:
                    ended.append(stream_id)
            return len(ended) == 2
        h2c.wait_for(both_ended, timeout=60, what="both answers")
    assert ended == [file_stream + 2, file_stream]
    assert h2c.streams[file_stream].body == files["one"].read_bytes()


def test_zerocopysend_with_offset_and_count(server: ServerProcess,
                                            files: dict[str, Path]) -> None:
    data = files["one"].read_bytes()
    with client(server) as h2c:
        part = h2c.response(h2c.request(target("/zerocopy", files["one"], offset=1000,
                                               count=300_000)), timeout=30)
        whole = h2c.response(h2c.request(target("/zerocopy-parts", files["one"])), timeout=30)
    assert part.status == 200 and part.body == data[1000:301_000]
    assert whole.status == 200 and whole.body == data


def test_head_sends_the_head_only(server: ServerProcess, files: dict[str, Path]) -> None:
    with client(server) as h2c:
        result = h2c.get(target("/path-no-length", files["one"]), method="HEAD")
    assert result.status == 200
    assert result.header(b"content-length") == str(MIB).encode()
    assert result.body == b""


def test_a_stream_reset_mid_file_closes_the_file(server: ServerProcess,
                                                 files: dict[str, Path]) -> None:
    pid = server.proc.pid
    with client(server, auto_window=False) as h2c:
        stream_id = h2c.request(target("/path", files["large"]))
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) == 65535, what="the first window")
        assert open_descriptors(pid, files["large"]) == 1  # the file is being sent
        h2c.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        h2c.flush()
        wait_until(lambda: open_descriptors(pid, files["large"]) == 0,
                   what="the server closed the file", seen=lambda: os.listdir(f"/proc/{pid}/fd"))
        wait_until(lambda: last_outcome(server) == "ClientDisconnected",
                   what="the app was told the client went")
        # The connection serves on: another file on a new stream (given back the
        # connection window the reset stream's data took).
        h2c.auto_window = True
        h2c.conn.increment_flow_control_window(len(result.body))
        h2c.flush()
        again = h2c.response(h2c.request(target("/path", files["one"])), timeout=30)
        assert again.body == files["one"].read_bytes()


def test_a_connection_lost_mid_file_closes_the_file(server: ServerProcess,
                                                    files: dict[str, Path]) -> None:
    pid = server.proc.pid
    logged_before = len(server.output)
    with client(server, auto_window=False) as h2c:
        stream_id = h2c.request(target("/path", files["large"]))
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: len(result.body) == 65535, what="the first window")
        assert open_descriptors(pid, files["large"]) == 1
    wait_until(lambda: open_descriptors(pid, files["large"]) == 0,
               what="the server closed the file")
    wait_until(lambda: last_outcome(server) == "ClientDisconnected",
               what="the app was told the client went")
    assert "Traceback" not in server.output[logged_before:]  # a client's doing


def test_over_tls_with_alpn_h2(tmp_path: Path, files: dict[str, Path]) -> None:
    tls = write_tls_files(tmp_path)
    process = ServerProcess(["apps.file_app:app", "--host", "127.0.0.1", "--port", "0",
                             "--ssl-cert-path", str(tls["cert"]),
                             "--ssl-key-path", str(tls["key"])])
    try:
        context = ssl.create_default_context(cafile=str(tls["ca"]))
        with H2Client(process.host, process.port, tls=context) as h2c:
            result = h2c.response(h2c.request(target("/path", files["one"])), timeout=30)
        assert result.status == 200 and result.body == files["one"].read_bytes()
    finally:
        process.stop()


def test_the_docs_http2_example_fetches_the_pathsend_example(tmp_path: Path) -> None:
    """docs/frameworks.md: the pathsend app, served as written, fetched by the HTTP/2
    client example as written (its port 8000 changed to the server's)."""
    blocks = code_blocks("frameworks.md", "python")
    served = tmp_path / "download.py"
    served.write_text(blocks[2])
    process = ServerProcess(["download:app", "--app-dir", str(tmp_path), "--host",
                             "127.0.0.1", "--port", "0"])
    try:
        fetcher = tmp_path / "fetch.py"
        fetcher.write_text(blocks[3].replace("127.0.0.1:8000", f"127.0.0.1:{process.port}"))
        run = subprocess.run([sys.executable, str(fetcher)], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout == f"{served.stat().st_size} bytes over HTTP/2\n"
    finally:
        assert process.stop() == 0
