"""nginx as a reverse proxy in the proxy benchmark: one HTTP hop in C, the reference.

Debian's package, run by the bench itself with a generated config on free ports (never a
system service): one worker, keep-alive connections to the upstream, the access log buffered
(64 KiB, flushed every second, as a busy site would run it) and no response buffering, so
streams are relayed chunk by chunk.

When no `nginx` is on the PATH, the bench takes the binary out of Debian's package into
.bench/nginx/ (`apt-get download nginx`, `dpkg-deb -x`), as the Makefile does for promtool:
nothing is installed system-wide and no service is started.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .procs import BenchError, Service, free_port, start, wait_ready

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".bench" / "nginx"
LOCAL_BINARY = LOCAL / "usr" / "sbin" / "nginx"

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    upstream fake_upstream {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /health {{ access_log off; return 200 "ok"; }}
        location / {{
            proxy_pass http://fake_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


def find_nginx() -> Path | None:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", str(LOCAL_BINARY)) if Path(p).exists()), None)
    return Path(found) if found else None


def ensure_nginx() -> Path:
    """The nginx binary: on the PATH, or taken out of Debian's package into .bench/nginx/."""
    found = find_nginx()
    if found is not None:
        return found
    with tempfile.TemporaryDirectory() as tmp:
        steps = (["apt-get", "update", "-q"], ["apt-get", "download", "-q", "nginx"])
        for step in steps:
            done = subprocess.run(step, cwd=tmp, capture_output=True, text=True, check=False)
            if done.returncode != 0 and step[1] == "download":
                raise BenchError(f"nginx is not installed and `{' '.join(step)}` failed:\n{done.stderr}")
        debs = list(Path(tmp).glob("nginx_*.deb"))
        if not debs:
            raise BenchError("apt-get download nginx left no package")
        LOCAL.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(LOCAL)], check=True)
    if not LOCAL_BINARY.exists():
        raise BenchError(f"Debian's nginx package holds no {LOCAL_BINARY.relative_to(LOCAL)}")
    return LOCAL_BINARY


def version(binary: Path) -> str:
    done = subprocess.run([str(binary), "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().rpartition("/")[2]


def start_nginx(upstream_port: int, workdir: Path) -> tuple[Service, int, str]:
    """nginx in front of the fake upstream: (its service, its port, its version)."""
    binary = ensure_nginx()
    home = workdir / "nginx"
    home.mkdir(exist_ok=True)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(CONFIG.format(dir=home, upstream_port=upstream_port, port=port))
    service = start("nginx", [str(binary), "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")],
                    home / "stderr.log")
    wait_ready(service, f"http://127.0.0.1:{port}/health")
    return service, port, version(binary)
