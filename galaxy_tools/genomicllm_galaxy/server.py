"""Start and stop a real, offline Galaxy server with the GenomicLLM suite loaded (tests and demos).

    python -m genomicllm_galaxy.server --galaxy-venv DIR --model models/default   # serve until Ctrl-C

Galaxy runs from its own virtual environment (``GALAXY_VENV``); jobs find ``genomicllm`` because
this project's ``bin`` folder is put first on Galaxy's PATH (conda resolution is off). The
settings follow ``shared/notes/galaxy.md``: no conda, no containers, no celery, one gunicorn worker,
a bootstrap admin key, and a user created through the API.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # galaxy_tools/


@dataclass
class GalaxyServer:
    url: str
    admin_key: str
    user_key: str
    process: subprocess.Popen
    root: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the whole group: gunicorn too
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, path: str, key: str, data: dict | None = None, method: str | None = None):
    req = urllib.request.Request(
        f"{url}/api/{path}",
        data=json.dumps(data).encode() if data is not None else None,
        method=method or ("POST" if data is not None else "GET"),
        headers={"x-api-key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"null")


def write_config(root: Path, port: int, admin_key: str, model: Path, project_bin: Path, galaxy_bin: Path) -> Path:
    cfg, data = root / "config", root / "data"
    (data / "tool-data").mkdir(parents=True, exist_ok=True)
    cfg.mkdir(parents=True, exist_ok=True)
    tools = sorted(HERE.glob("genomicllm_*.xml"))
    (cfg / "tool_conf.xml").write_text(
        '<toolbox monitor="false">\n  <section id="genomicllm" name="GenomicLLM">\n'
        + "".join(f'    <tool file="{t}"/>\n' for t in tools)
        + "  </section>\n</toolbox>\n"
    )
    (data / "tool-data" / "genomicllm_models.loc").write_text(f"default\tGenomicLLM default (shipped)\t{model.resolve()}\n")
    (cfg / "tool_data_table_conf.xml").write_text(
        '<tables>\n  <table name="genomicllm_models" comment_char="#">\n    <columns>value, name, path</columns>\n'
        f'    <file path="{data / "tool-data" / "genomicllm_models.loc"}"/>\n  </table>\n</tables>\n'
    )
    (cfg / "job_conf.yml").write_text(
        "runners:\n  local:\n    load: galaxy.jobs.runners.local:LocalJobRunner\n    workers: 4\n"
        "execution:\n  default: local\n  environments:\n    local:\n      runner: local\n"
    )
    # the core plugin records each job's start and end (the genome-scan test measures concurrency with it)
    (cfg / "job_metrics_conf.yml").write_text("- type: core\n")
    # gunicorn comes from Galaxy's venv; jobs find genomicllm in the project's venv
    path_env = f"{galaxy_bin}:{project_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    (cfg / "galaxy.yml").write_text(f"""gravity:
  process_manager: multiprocessing
  gunicorn:
    bind: 127.0.0.1:{port}
    workers: 1
    timeout: 600
    preload: true
    environment:
      PATH: "{path_env}"
  celery:
    enable: false
    enable_beat: false
  gx_it_proxy:
    enable: false
  reports:
    enable: false
galaxy:
  data_dir: {data}
  database_connection: sqlite:///{data}/universe.sqlite?isolation_level=IMMEDIATE
  tool_config_file: {cfg / "tool_conf.xml"}
  tool_data_table_config_path: {cfg / "tool_data_table_conf.xml"}
  tool_data_path: {data / "tool-data"}
  job_config_file: {cfg / "job_conf.yml"}
  job_metrics_config_file: {cfg / "job_metrics_conf.yml"}
  conda_auto_init: false
  conda_auto_install: false
  involucro_auto_init: false
  enable_mulled_containers: false
  enable_celery_tasks: false
  watch_tools: false
  watch_tool_data_dir: false
  bootstrap_admin_api_key: {admin_key}
  admin_users: admin@genomicllm.test
  allow_user_creation: true
  cleanup_job: never
  use_cached_dependency_manager: false
  dependency_resolvers: []
""")
    return cfg / "galaxy.yml"


def start(galaxy_venv: Path, root: Path, model: Path, project_bin: Path | None = None, timeout: float = 600, log=print) -> GalaxyServer:
    galaxy_venv = Path(galaxy_venv).resolve()
    project_bin = project_bin or Path(sys.executable).parent
    port, admin_key = _free_port(), secrets.token_hex(16)
    config = write_config(root, port, admin_key, model, project_bin, galaxy_venv / "bin")
    env = {
        **os.environ,
        "GRAVITY_SKIP_SYSTEMD": "1",
        "PATH": f"{galaxy_venv / 'bin'}:{project_bin}:{os.environ.get('PATH', '')}",
        "GALAXY_CONFIG_FILE": str(config),
        "VIRTUAL_ENV": str(galaxy_venv),
    }
    env.pop("PYTHONPATH", None)
    logfile = open(root / "galaxy.log", "w")
    proc = subprocess.Popen(
        [str(galaxy_venv / "bin" / "galaxy"), "-c", str(config)], stdout=logfile, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=5)
            break
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                raise RuntimeError("Galaxy exited during start-up:\n" + (root / "galaxy.log").read_text()[-3000:])
            if time.time() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"Galaxy did not answer within {timeout:.0f} s:\n" + (root / "galaxy.log").read_text()[-3000:])
            time.sleep(3)
    log(f"Galaxy up at {url} after {time.time() - t0:.0f} s")
    user = _api(url, "users", admin_key, {"username": "tester", "email": "tester@genomicllm.test", "password": secrets.token_hex(8)})
    user_key = _api(url, f"users/{user['id']}/api_key", admin_key, {})
    return GalaxyServer(url, admin_key, user_key, proc, root)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Serve the GenomicLLM Galaxy suite on a local Galaxy")
    ap.add_argument("--galaxy-venv", default=os.environ.get("GALAXY_VENV"), required=not os.environ.get("GALAXY_VENV"))
    ap.add_argument("--model", default=str(HERE.parent / "models" / "default"))
    ap.add_argument("--root", default="galaxy-run")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    server = start(Path(args.galaxy_venv), root, Path(args.model))
    print(f"Galaxy: {server.url}  admin key: {server.admin_key}  user key: {server.user_key}", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
