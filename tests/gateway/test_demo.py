"""`govgate demo` starts for real, serves, says who is who and what to try, signs a
user into the offices system through the gateway (single sign-on by OpenID Connect)
and into the assets system by CAS from the portal launcher (one click, no second
sign-in), and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from gateway.cli import demo_directory
from gateway.cli.context import CliContext


def test_demo_serves_gateway_and_every_upstream_then_stops_on_sigint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    env["LANG"] = "C.UTF-8"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--free-ports",
            "--home",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _exercise(proc, tmp_path / "demo")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _exercise(proc: subprocess.Popen[str], home: Path) -> None:
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C" in line:
            break
    out = "".join(lines)
    assert "Ctrl-C" in out, out + (proc.stderr.read() if proc.poll() is not None else "")
    gateway = re.search(r"gateway:\s+(http://127\.0\.0\.1:\d+)/", out)
    assert gateway, out
    assert httpx.get(gateway.group(1) + "/healthz", timeout=5).json() == {"status": "ok"}
    assert httpx.get(gateway.group(1) + "/readyz", timeout=5).status_code == 200
    # the demo runs gateway.web.http_server's protocol: one head size limit on every route
    big = httpx.get(gateway.group(1) + "/healthz", headers={"X-Big": "a" * 40_000}, timeout=5)
    assert big.status_code == 431
    upstreams = dict(re.findall(r"^\s+(vehicles|offices|assets)\s+\S+\s+(http://\S+)$", out, re.M))
    assert set(upstreams) == {"vehicles", "offices", "assets"}, out
    for code, url in upstreams.items():
        assert httpx.get(url + "/healthz", timeout=5).json()["system"] == code
    records = httpx.get(upstreams["vehicles"] + "/api/vehicles", timeout=5).json()
    assert records["total"] == len(records["items"]) > 0
    assert "zhang.san" in out and "Demo-Passw0rd-2026" in out
    # who is who: the steward, the admins and what each does
    zhang = next(line for line in lines if "zhang.san" in line)
    assert "机关事务管理局 (jgswj)" in zhang and "data steward" in zhang
    assert "data steward" not in next(line for line in lines if "li.si" in line)
    assert re.search(r"^\s+auditor\s+\S+\s+auditor: reads the audit log \(/portal/audit\) and "
                     r"the other two admins' actions \(/portal/admin\)$", out, re.M), out
    assert "security admin: policies, grants, keys, escalated applications" in out
    assert "no business systems, no data applications" in out
    assert "sign in as wang.wu at " + gateway.group(1) + "/portal" in out
    assert f"single sign-on into 办公用房管理系统: open {upstreams['offices']}/login" in out
    assert (f"CAS single sign-on into 资产管理系统: sign in as zhao.min and click it on the "
            f"portal's home page, or open {upstreams['assets']}/cas/login") in out
    # the demo's delegation (委托): 李四 acts for 张三 on the vehicle system, approved
    assert re.search(r"delegation #\d+: li\.si may act for zhang\.san on vehicles \(approved "
                     r"by zhou\.ling", out), out
    # in Beijing time, as the portal's pages show it (it said UTC)
    assert re.search(r"by zhou\.ling, until \d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+8\)\)", out), out
    with sqlite3.connect(f"file:{home / 'govgate.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT delegator, delegate, state FROM delegations").fetchall() == [
            ("zhang.san", "li.si", "approved")]
    _single_sign_on(gateway.group(1), upstreams["offices"])
    _traffic(out, home)
    _cas_from_the_launcher(gateway.group(1), upstreams["assets"])
    slapd_pid = _directory_department(gateway.group(1), out, home)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "demo stopped" in proc.stdout.read()
    if slapd_pid:  # the demo's directory ends with it
        deadline = time.monotonic() + 5
        while Path(f"/proc/{slapd_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{slapd_pid}").exists()


def _directory_department(gateway: str, out: str, home: Path) -> int:
    """办公厅's people come from the demo's own slapd: synced in (a locked account
    disabled), signing in with the directory's password; without slapd the demo says it
    skipped them. The slapd's pid, or 0 when it did not run."""
    if not Path("/usr/sbin/slapd").exists():
        assert "slapd is not installed: the directory-backed department is skipped" in out
        return 0
    assert re.search(r"directory-backed department: the people of 办公厅 \(bgt\) come from "
                     r"OpenLDAP ldap://127\.0\.0\.1:\d+ \(3, synced\); sun\.li, qian\.jin sign "
                     r"in with the directory's password \(Demo-Passw0rd-2026\), locked accounts "
                     r"disabled: he\.fang",
                     out), out
    with sqlite3.connect(f"file:{home / 'govgate.db'}?mode=ro", uri=True) as db:
        rows = dict(db.execute("SELECT username, status FROM users WHERE source = "
                               "'directory'").fetchall())
    assert rows == {"sun.li": "active", "qian.jin": "active", "he.fang": "disabled"}
    for username, signed_in in (("sun.li", True), ("he.fang", False)):
        with httpx.Client(timeout=10) as http:
            page = http.get(gateway + "/portal/login", params={"next": "/portal"})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf, page.text
            r = http.post(gateway + "/portal/login", data={
                "csrf_token": csrf.group(1), "next": "/portal",
                "username": username, "password": "Demo-Passw0rd-2026"})
            assert (r.status_code == 303) is signed_in, (username, r.status_code, r.text)
    return int((home / "directory" / "slapd.pid").read_text().strip())


def _traffic(out: str, home: Path) -> None:
    """The demo made real calls through the proxy at start, audited like any call, so
    the real-use pages have data: the banner's count is the audit log's."""
    made = re.search(r"made (\d+) real calls through the gateway \((\d+) refused\): see the "
                     r"real use at (http://\S+)/portal/stats", out)
    assert made, out
    with sqlite3.connect(f"file:{home / 'govgate.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT outcome, actor_user, actor_client, system FROM audit_records "
                          "WHERE event_type = 'proxy_request'").fetchall()
    assert len(rows) == int(made.group(1)) >= 24
    assert sum(1 for r in rows if r[0] == "deny") == int(made.group(2)) >= 1
    assert {r[3] for r in rows if r[0] == "allow"} == {"vehicles", "offices", "assets"}
    assert {r[1] for r in rows if r[1]} >= {"li.si", "zhao.min", "wang.wu"}
    assert "finance-system" in {r[2] for r in rows}


def _single_sign_on(gateway: str, offices: str) -> None:
    """The offices system's /login → the gateway's sign-in → back to its /callback,
    which exchanges the code and names the user."""
    with httpx.Client(timeout=10) as http:
        r = http.get(offices + "/login")
        assert r.status_code == 302 and r.headers["location"].startswith(
            gateway + "/oauth2/authorize?")
        r = http.get(r.headers["location"])
        while r.status_code in (302, 303) and "/portal/login" not in r.headers["location"]:
            r = http.get(urljoin(str(r.url), r.headers["location"]))
        login_page = http.get(urljoin(gateway, r.headers["location"]))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
        back = re.search(r'name="next" value="([^"]+)"', login_page.text)
        assert csrf and back, login_page.text
        r = http.post(gateway + "/portal/login", data={
            "csrf_token": csrf.group(1), "next": back.group(1).replace("&amp;", "&"),
            "username": "zhang.san", "password": "Demo-Passw0rd-2026"})
        for _ in range(5):
            assert r.status_code in (302, 303), r.text
            r = http.get(urljoin(str(r.url), r.headers["location"]))
            if str(r.url).startswith(offices + "/callback"):
                break
        assert r.status_code == 200, r.text
        assert "已通过统一身份认证登录：张三（zhang.san）" in r.text


def _cas_from_the_launcher(gateway: str, assets: str) -> None:
    """Signed in at the portal, the launcher's 资产管理系统 entry goes through
    /cas/login to the system with a ticket, which the system validates at the gateway:
    the user is signed in there, and no sign-in form was shown again."""
    with httpx.Client(timeout=10) as http:
        page = http.get(gateway + "/portal/login", params={"next": "/portal"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        r = http.post(gateway + "/portal/login", data={
            "csrf_token": csrf.group(1), "next": "/portal",
            "username": "zhao.min", "password": "Demo-Passw0rd-2026"})
        home = http.get(urljoin(gateway, r.headers["location"]))
        link = re.search(r'<a href="([^"]+)" data-system="assets">', home.text)
        assert link and link.group(1).startswith("/cas/login?service="), home.text
        r = http.get(urljoin(gateway, link.group(1).replace("&amp;", "&")))
        assert r.status_code == 303 and r.headers["location"].startswith(
            assets + "/cas/callback?ticket=ST-"), r.text
        r = http.get(r.headers["location"])
        assert r.status_code == 200, r.text
        assert "已通过 CAS 统一身份认证登录：赵敏（zhao.min，czt）" in r.text


def test_demo_without_slapd_says_it_skips_the_directory_department(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without Debian's slapd the demo starts without 办公厅 and prints why
    (and how to get it), in the CLI's language."""
    monkeypatch.setattr("gateway.demo.directory.installed", lambda: False)
    for lang, line in (("en", "slapd is not installed: the directory-backed department is "
                              "skipped (apt-get install slapd ldap-utils"),
                       ("zh", "未安装 slapd：跳过目录部门")):
        started, said = demo_directory.start(CliContext(lang=lang), tmp_path, password="x",
                                             region="gx")
        assert started is None and said.startswith(line), said
    assert not (tmp_path / "directory").exists()
