"""A new user's first hour, replayed from the README: a fresh ``startproject`` host built from the
README's own install snippets, with the package installed from its built wheel, not this tree.

The host then runs ``migrate`` before any key is set, ``check`` with them, connects a calendar
through the emulator's consent page (the emulator started from the host's venv, its printed
settings used as printed), receives the emulator's signed webhooks, and runs the README's example
test: once with the immediate task backend, once with the database one (django-tasks-db, a
``db_worker`` processing the webhooks).

Slow (a wheel build and a venv per session, two projects): it runs only with ``--readme-host``,
in its own pass of ``.ci/run``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.readme_blocks import files

pytestmark = pytest.mark.readme_host

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "readme-host-key"
WEBHOOK_SECRET = "whsec_cmVhZG1lLWhvc3Qtd2ViaG9vay1zZWNyZXQ="
EMAIL = "ann@work.example"
PASSWORD = "a-long-enough-password"


def run(command: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a shell in the host project: nothing of this repository's test run."""
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL"}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built once per session as a release would be."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT], ROOT, clean_env())
    [built] = out.glob("django_recall_calendar-*.whl")
    return built


@pytest.fixture(scope="session")
def host_bin(tmp_path_factory, wheel) -> Path:
    """One venv per session with the wheel (its dependencies resolved from its metadata), the
    database task backend and pytest-django: what the README tells a user to install."""
    venv = tmp_path_factory.mktemp("host-venv")
    run([sys.executable, "-m", "venv", venv], venv, clean_env())
    bin_dir = venv / "bin"
    install = [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*install, wheel, "django-tasks-db", "pytest-django"], venv, clean_env(), timeout=300)
    return bin_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def until(condition, what: str, timeout: float = 30):
    """Poll ``condition`` until it returns something truthy (the host works in other processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Host:
    """A ``startproject`` host built from the README's snippets, in its own directory and venv."""

    def __init__(self, path: Path, bin_dir: Path, variants: frozenset[str]) -> None:
        self.path, self.bin = path, bin_dir
        path.mkdir()
        run([bin_dir / "django-admin", "startproject", "mysite", path], path.parent, clean_env())
        for target, code in files(variants).items():
            with (path / target).open("a", encoding="utf-8") as handle:
                handle.write(code)
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, settings: str = "mysite.settings", **env: str):
        env = clean_env(DJANGO_SETTINGS_MODULE=settings, **env)
        return run([self.bin / "python", "manage.py", *args], self.path, env)

    def start(self, name: str, command: list, env: dict) -> Path:
        """Start a long-running process; its output goes to ``name``.log (a pipe nobody reads
        would fill up and stall it). Returns the log's path."""
        log = self.path.parent / f"{name}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [str(part) for part in command],
                cwd=self.path,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.processes.append(process)
        return log

    def logs(self) -> str:
        """The end of every process's output, to explain a failure."""
        return "\n".join(
            f"--- {log.name}:\n{log.read_text()[-4000:]}"
            for log in sorted(self.path.parent.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def emulator_settings(log: Path) -> dict:
    """The settings the emulator prints at start, read as a user would paste them."""
    text = until(lambda: "Ctrl-C stops" in log.read_text() and log.read_text(), "the emulator")
    snippet = text[text.index("# settings.py of your project") :].split("\n\n", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)
    return namespace


def emulated_overlay(printed: dict) -> str:
    """Settings over the README's: the emulator's RECALL_CALENDAR keys and consent pages."""
    return (
        "from .settings import *  # the README's settings\n"
        "from .settings import RECALL_CALENDAR\n\n"
        f"RECALL_CALENDAR = {{**RECALL_CALENDAR, **{printed['RECALL_CALENDAR']!r}}}\n"
        f"AUTHENTICATION_BACKENDS = {printed['AUTHENTICATION_BACKENDS']!r}\n"
    )


def sign_in(session: requests.Session, site: str) -> None:
    login = session.get(f"{site}/admin/login/?next=/recall/calendars/", timeout=10)
    assert login.status_code == 200
    token = session.cookies["csrftoken"]
    form = {"username": "ann", "password": PASSWORD, "csrfmiddlewaretoken": token}
    page = session.post(
        f"{site}/admin/login/?next=/recall/calendars/",
        data=form,
        timeout=10,
        headers={"Referer": f"{site}/admin/login/"},
    )
    assert page.url.endswith("/recall/calendars/"), page.url
    assert "Connect Google Calendar" in page.text


def connect_google(session: requests.Session, site: str) -> requests.Response:
    """Press "Connect Google Calendar", then "Allow" on the emulator's consent page."""
    token = session.cookies["csrftoken"]
    begin = session.post(
        f"{site}/social/login/google-oauth2/",
        data={"csrfmiddlewaretoken": token, "next": "/recall/calendars/"},
        headers={"Referer": f"{site}/recall/calendars/"},
        allow_redirects=False,
        timeout=10,
    )
    assert begin.status_code == 302, begin.text[:500]
    authorize = urlsplit(begin.headers["Location"])
    consent_page = requests.get(begin.headers["Location"], timeout=10)
    assert consent_page.status_code == 200 and "Allow" in consent_page.text
    form = {**dict(parse_qsl(authorize.query)), "email": EMAIL, "decision": "allow"}
    consent = requests.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data=form,
        allow_redirects=False,
        timeout=10,
    )
    assert consent.status_code == 302, consent.text[:500]
    return session.get(consent.headers["Location"], timeout=30)


def events(session: requests.Session, site: str) -> int:
    answer = session.get(f"{site}/recall/api/events/", timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()["count"]


@pytest.mark.parametrize("variants", [frozenset(), frozenset({"database tasks"})], ids=str)
def test_a_new_project_from_the_readme(tmp_path, host_bin, variants):
    host = Host(tmp_path / "host", host_bin, variants)
    where = run(
        [host_bin / "python", "-c", "import django_recall_calendar as m; print(m.__file__)"],
        host.path,
        clean_env(),
    ).stdout
    assert str(host_bin.parent) in where, "the host must run the installed wheel: " + where

    # migrate works before any key is set; check only warns about the key.
    migrated = host.manage("migrate", "--noinput")
    assert "recall_calendar.W001" in migrated.stderr
    deploy = subprocess.run(
        [host_bin / "python", "manage.py", "check", "--deploy"],
        cwd=host.path,
        env=clean_env(DJANGO_SETTINGS_MODULE="mysite.settings"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deploy.returncode != 0 and "recall_calendar.E001" in deploy.stderr, deploy.stderr
    keys = {"RECALL_API_KEY": API_KEY, "RECALL_WEBHOOK_SECRET": WEBHOOK_SECRET}
    keys |= {"GOOGLE_CLIENT_ID": "g-id", "GOOGLE_CLIENT_SECRET": "g-secret"}
    keys |= {"MICROSOFT_CLIENT_ID": "m-id", "MICROSOFT_CLIENT_SECRET": "m-secret"}
    host.manage("check", "--fail-level", "WARNING", **keys)
    host.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "ann",
        "--email",
        "ann@site.example",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )

    site_port = free_port()
    site = f"http://127.0.0.1:{site_port}"
    emulator = [host_bin / "python", "-m", "django_recall_calendar.testing", "--port", "0"]
    emulator += ["--api-key", API_KEY, "--webhook-secret", WEBHOOK_SECRET]
    emulator += ["--demo", "--connect-delay", "0", "--webhook-url", f"{site}/recall/webhooks/"]
    server = [host_bin / "python", "manage.py", "runserver", f"127.0.0.1:{site_port}", "--noreload"]
    try:
        printed = emulator_settings(host.start("emulator", emulator, clean_env()))
        (host.path / "mysite" / "emulated.py").write_text(emulated_overlay(printed))
        env = clean_env(DJANGO_SETTINGS_MODULE="mysite.emulated", **keys)
        host.start("runserver", server, env)
        wait_for_port(site_port, host.processes[-1])

        session = requests.Session()
        sign_in(session, site)
        page = connect_google(session, site)
        assert page.status_code == 200 and page.url.endswith("/recall/calendars/")
        assert EMAIL in page.text

        if variants:  # the webhooks wait in the database queue for a worker

            def stored() -> int:
                listing = host.manage("recall_webhooks", settings="mysite.emulated", **keys)
                return listing.stdout.count("received")

            until(lambda: stored() >= 2, "the two webhooks stored")
            assert events(session, site) == 0
            host.manage("db_worker", "--batch", settings="mysite.emulated", **keys)
        until(lambda: events(session, site) >= 10, "a week of meetings from the webhooks")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{host.logs()}") from failure
    finally:
        host.stop()

    # The README's example test, with pytest-django and the README's pytest.ini.
    result = run([host_bin / "pytest", "-q", "-p", "no:cacheprovider"], host.path, clean_env())
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout
