"""Transport failures an admin can cause are one line naming the setting and what to do; certificate
failures are not retried; proxies and tls-server-name are honoured, never silently ignored."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ood_k8s.core import errors
from ood_k8s.core.http import proxy_for
from ood_k8s.core.kube import KubeClient
from ood_k8s.kubeconfig import read as kubeconfig


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize("content", [None, b"garbage, not PEM\n", b"-----BEGIN CERTIFICATE-----\nnope\n"
                                                                      b"-----END CERTIFICATE-----\n"])
def test_a_bad_ca_file_is_a_config_error_naming_the_setting(tmp_path: Path, content: bytes | None) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    with pytest.raises(errors.ConfigError) as exc:
        KubeClient("https://127.0.0.1:6443", ca_file=str(ca))
    text = str(exc.value)
    assert "cluster.certificate_authority" in text and str(ca) in text and "\n" not in text
    assert "Error" not in text and "[" not in text  # no class names, no [SSL: ...]


def test_an_unreadable_ca_file_names_the_setting(tmp_path: Path, fake_kube: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(fake_kube.ca_file).read_bytes())
    ca.chmod(0)
    if os.access(ca, os.R_OK):
        pytest.skip("root reads a mode-0 file")
    with pytest.raises(errors.ConfigError, match=r"cluster\.certificate_authority.*permission denied"):
        KubeClient(fake_kube.url, ca_file=str(ca))


def test_a_kubeconfigs_bad_ca_names_the_kubeconfig(tmp_path: Path, fake_kube: Any) -> None:
    path = fake_kube.write_kubeconfig(str(tmp_path / "kc"))
    Path(fake_kube.ca_file).write_bytes(b"garbage")
    with pytest.raises(errors.ConfigError, match=f"the certificate-authority of {path}"):
        kubeconfig.client(path)


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A server that answers anything with a plain-HTTP 400, as an API server's HTTP port would."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not select.select([srv], [], [], 0.1)[0]:
                continue
            conn, _ = srv.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def test_http_on_an_https_port_is_one_line_and_not_retried(plain_http: int) -> None:
    sleeps = Sleeps()
    c = KubeClient(f"https://127.0.0.1:{plain_http}", token="t", retries=4, sleep=sleeps)
    with pytest.raises(errors.Unavailable) as exc:
        c.version()
    text = str(exc.value)
    assert "does not speak TLS" in text and "WRONG_VERSION_NUMBER" not in text and "[SSL" not in text, text
    assert "the cluster may be down" not in text  # one hint, the right one
    assert sleeps == []


def test_a_self_signed_server_blames_the_ca_setting_once_and_is_not_retried(fake_kube: Any) -> None:
    sleeps = Sleeps()
    c = KubeClient(fake_kube.url, token="t", retries=4, sleep=sleeps)  # system trust store: not our CA
    with pytest.raises(errors.Unavailable) as exc:
        c.version()
    text = str(exc.value)
    assert text.count("cluster.certificate_authority") == 1 and "try again in a minute" not in text, text
    assert sleeps == []


def test_through_a_kubeconfig_the_ca_hint_names_the_kubeconfig(tmp_path: Path, fake_kube: Any) -> None:
    path = fake_kube.write_kubeconfig(str(tmp_path / "kc"))
    other = tmp_path / "other-ca.pem"
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k"), "-out", str(other), "-subj", "/CN=other", "-days", "1"],
                   check=True, capture_output=True)
    text = Path(path).read_text().replace(fake_kube.ca_file, str(other))
    Path(path).write_text(text)
    with pytest.raises(errors.Unavailable, match=f"set the certificate-authority of {path} to"):
        kubeconfig.client(path, retries=0).version()


# --- proxies and tls-server-name ---------------------------------------------------------------------------


@pytest.fixture
def connect_proxy() -> Iterator[tuple[int, list[str]]]:
    """An HTTP CONNECT proxy; records each CONNECT target."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen: list[str] = []
    stop = threading.Event()

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        while not stop.is_set():
            if not select.select([srv], [], [], 0.1)[0]:
                continue
            client, _ = srv.accept()
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(1)
            target = head.split(b" ")[1].decode()
            seen.append(target)
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], seen
    stop.set()
    t.join()
    srv.close()


def test_a_kubeconfig_proxy_url_is_honoured(tmp_path: Path, fake_kube: Any,
                                            connect_proxy: tuple[int, list[str]]) -> None:
    port, seen = connect_proxy
    path = fake_kube.write_kubeconfig(str(tmp_path / "kc"))
    import yaml

    kc = yaml.safe_load(Path(path).read_text())
    kc["clusters"][0]["cluster"]["proxy-url"] = f"http://127.0.0.1:{port}"
    Path(path).write_text(yaml.safe_dump(kc))
    assert kubeconfig.client(path).version()["gitVersion"]
    assert seen == [fake_kube.url.partition("://")[2]]


def test_https_proxy_is_honoured_unless_no_proxy_matches(fake_kube: Any, connect_proxy: tuple[int, list[str]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    port, seen = connect_proxy
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    KubeClient(fake_kube.url, token="test-token", ca_file=fake_kube.ca_file).version()
    assert len(seen) == 1
    monkeypatch.setenv("NO_PROXY", "example.edu,127.0.0.0/8")
    KubeClient(fake_kube.url, token="test-token", ca_file=fake_kube.ca_file).version()
    assert len(seen) == 1


@pytest.mark.parametrize(("env", "host", "expected"), [
    ({}, "api.example.edu", None),
    ({"HTTPS_PROXY": "proxy:3128"}, "api.example.edu", ("proxy", 3128)),
    ({"https_proxy": "http://proxy:3128", "NO_PROXY": ".example.edu"}, "api.example.edu", None),
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.edu"}, "api.example.edu", None),
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "other.edu"}, "api.example.edu", ("proxy", 3128)),
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"}, "api.example.edu", None),
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.0/8"}, "10.1.2.3", None),
])
def test_proxy_choice_follows_kubectl(env: dict[str, str], host: str, expected: Any) -> None:
    assert proxy_for(True, host, "", env) == expected


def test_a_proxy_we_cannot_speak_is_refused_in_one_line() -> None:
    with pytest.raises(errors.Unavailable, match="socks5://, which ood-k8s cannot tunnel"):
        proxy_for(True, "api.example.edu", "socks5://proxy:1080", {})


def test_tls_server_name_is_honoured(tmp_path: Path, fake_kube: Any) -> None:
    # The certificate names 127.0.0.1 and localhost: a name it does not hold must fail, so it was used.
    path = fake_kube.write_kubeconfig(str(tmp_path / "kc"))
    import yaml

    kc = yaml.safe_load(Path(path).read_text())
    cluster = kc["clusters"][0]["cluster"]
    cluster["tls-server-name"] = "other.example.edu"
    Path(path).write_text(yaml.safe_dump(kc))
    with pytest.raises(errors.Unavailable, match="not trusted"):
        kubeconfig.client(path, retries=0).version()
    cluster["tls-server-name"] = "localhost"
    Path(path).write_text(yaml.safe_dump(kc))
    assert kubeconfig.client(path, retries=0).version()["gitVersion"]


def test_a_hung_server_times_out_without_retrying_a_certificate(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # accepts (the kernel does) and never answers
    try:
        c = KubeClient(f"https://127.0.0.1:{srv.getsockname()[1]}", token="t", timeout=0.3, retries=0)
        t = time.monotonic()
        with pytest.raises(errors.Unavailable, match="timed out"):
            c.version()
        assert time.monotonic() - t < 2
    finally:
        srv.close()


def test_aws_unreachable_is_one_line_without_class_names(make_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.config import Config as BotoConfig

    from ood_k8s.cloud.aws import cognito_admin, efs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    quick = BotoConfig(retries={"max_attempts": 1}, connect_timeout=1)
    cfg = make_config()
    idp = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=quick)
    with pytest.raises(errors.IdentityProviderError) as exc:
        cognito_admin.call(cfg, idp, "admin_get_user", sleep=lambda s: None, UserPoolId="p", Username="u")
    assert str(exc.value).startswith("cannot reach Cognito in us-east-1: cannot connect to its endpoint")
    fs = boto3.client("efs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=quick)
    with pytest.raises(errors.CloudError) as exc2:
        efs._call(fs, "describe_access_points", FileSystemId="fs-1")
    for text in (str(exc.value), str(exc2.value)):
        assert "Error" not in text and "\n" not in text, text
