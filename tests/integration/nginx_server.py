"""A real nginx for the integration tests (forward auth with auth_request), run like the benchmark suite runs it:
`daemon off`, its own prefix, config, pid file, logs and temp paths in a temporary directory, stopped by its PID
(SIGTERM: the master stops its workers; SIGKILL to master and workers if it does not go).

    ng = Nginx(lambda port: f"server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}")
    ... request(ng.port, ...) ...
    ng.stop()

nginx is Debian's `nginx` (also pulled in by nginx-light / nginx-extras; scripts/install-deps.sh test installs
it). When it is missing, Nginx raises AssertionError so that the tests fail instead of skipping.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile

from harness import LOCALHOST, free_port, wait_until

NGINX = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_binary():
    if not os.access(NGINX, os.X_OK):
        raise AssertionError(f"nginx not found at {NGINX}: install it (scripts/install-deps.sh test) or set NGINX")
    return NGINX


def _child_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def nginx_config(tmpdir, http_body):
    """A whole nginx.conf: one worker, everything nginx writes kept under tmpdir, `http_body` inside http {}."""
    d = tmpdir
    return f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http_body}
}}
"""


def nginx_check(http_body):
    """Runs `nginx -t` on a config made of http_body; returns (exit code, output)."""
    tmpdir = tempfile.mkdtemp(prefix="obsgw-nginx-t-")
    try:
        conf = os.path.join(tmpdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_config(tmpdir, http_body))
        p = subprocess.run([nginx_binary(), "-t", "-p", tmpdir + "/", "-c", conf,
                            "-e", os.path.join(tmpdir, "error.log")], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


class Nginx:
    """One nginx master listening on self.port; make_http_body(port) returns what goes inside http {}."""

    def __init__(self, make_http_body, timeout=10.0):
        binary = nginx_binary()
        self.tmpdir = tempfile.mkdtemp(prefix="obsgw-nginx-")
        os.chmod(self.tmpdir, 0o755)  # the workers run as nobody when the master runs as root
        self.port = free_port()
        self.conf = os.path.join(self.tmpdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(nginx_config(self.tmpdir, make_http_body(self.port)))
        self._out = open(os.path.join(self.tmpdir, "stderr.log"), "wb")
        self.proc = subprocess.Popen([binary, "-p", self.tmpdir + "/", "-c", self.conf,
                                      "-e", os.path.join(self.tmpdir, "error.log")],
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            wait_until(self._listening, timeout, message="nginx to listen")
        except BaseException:
            self.stop()
            raise

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited with {self.proc.returncode}: {self.log_text()}")
        try:
            socket.create_connection((LOCALHOST, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log_text(self):
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.tmpdir, name), errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "\n".join(out)

    def stop(self, timeout=5.0):
        """Safe to call twice."""
        if self.proc.poll() is None:
            workers = _child_pids(self.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in [self.pid] + workers:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(5)
        if not self._out.closed:
            self._out.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
