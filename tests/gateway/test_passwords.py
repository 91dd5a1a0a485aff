"""The password rule on its own: length, blank, guessable, username, history."""

from __future__ import annotations

import threading

import pytest

from gateway.passwords import (
    generate_password,
    hash_password,
    policy_problems,
    strength_score,
)
from texts import Text

# accepted on the forced-change page before the rule asked for length and content
WEAK = {
    " " * 12: "blank",
    "\u3000" * 12: "blank",  # ideographic spaces
    "123456789012": "guessable",
    "Password1": "too_short",
    "short1A!": "too_short",
    "Password1234": "guessable",
    "qwertyuiop12": "guessable",
    "abcdefghijkl": "guessable",
    "aaaaaaaaaaaa": "guessable",
    "woaini1314520": "guessable",  # a favourite of Chinese breach lists
    "zhang.san2026": "guessable",  # the username and a year
    "１２３４５６７８９０１２": "guessable",  # full-width digits are still 1-9-0-1-2
}


def _code(problem: str) -> str:
    """The rule's reason: the key of the text, ``org.password_`` left out."""
    assert isinstance(problem, Text)
    return problem.key.removeprefix("org.password_")


@pytest.mark.parametrize(("password", "code"), WEAK.items())
def test_weak_passwords_are_refused_with_their_reason(password: str, code: str) -> None:
    problems = policy_problems(password, "zhang.san")
    assert [_code(p) for p in problems] == [code]
    assert all(isinstance(p, Text) and str(p) for p in problems)


@pytest.mark.parametrize("password", [
    "Demo-Passw0rd-2026", "Correct-Horse-42", "Brand-New-Passw0rd!", "Tb7#kq9!Lm2x-Vr",
    "蓝色 列车 穿过 十二座 桥",  # a phrase in Chinese
])
def test_strong_passwords_pass(password: str) -> None:
    assert policy_problems(password, "zhang.san") == []


def test_the_username_in_any_case_and_the_history() -> None:
    assert [_code(p) for p in policy_problems(" Li.Si.Li.Si.1 ", "li.si.li.si.1")
            ] == ["username"]
    old = hash_password("Correct-Horse-42")
    assert [_code(p) for p in policy_problems("Correct-Horse-42", "x", [old])
            ] == ["recent"]


def test_generated_passwords_pass_the_rule() -> None:
    for _ in range(20):
        assert policy_problems(generate_password(), "sysadmin") == []


def test_a_long_password_is_estimated_on_its_start() -> None:
    assert strength_score("a" * 500) == 0
    assert policy_problems("Tb7#kq9!Lm2x" + "a" * 500, "x") == []


def test_concurrent_estimates_keep_their_own_username() -> None:
    """zxcvbn holds the user inputs in a module global for the call."""
    wrong: list[str] = []

    def check(name: str) -> None:
        for _ in range(30):
            if not policy_problems(f"{name}{name}", name):
                wrong.append(name)

    threads = [threading.Thread(target=check, args=(n,)) for n in ("qinghaihu.k", "taiyuanfu.z")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert wrong == []


class _Counting:
    """The real hasher, counting how many of its calls run at once."""

    def __init__(self, real: object) -> None:
        self.real, self.now, self.most = real, 0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        call = getattr(self.real, name)

        def counted(*args: object) -> object:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                return call(*args)
            finally:
                with self._lock:
                    self.now -= 1
        return counted


@pytest.mark.real_password_cost
def test_no_more_argon2_at_once_than_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of sign-ins (the thread pool runs 40) holds 19 MiB per argon2 call in
    flight: only as many run at once as the machine has cores; all still answer right."""
    from gateway import passwords

    stored = hash_password("Tb7#kq9!Lm2x")
    counting = _Counting(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)
    answers: list[bool] = []

    def sign_in(i: int) -> None:
        answers.append(passwords.verify_password(
            stored if i % 3 else None, "Tb7#kq9!Lm2x" if i % 2 else "wrong-guess-xyz"))

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(answers) == sorted(bool(i % 3 and i % 2) for i in range(12))
    assert 1 <= counting.most <= passwords.HASHING_AT_ONCE < 12
