"""Market accounts: where credentials may come from, what is refused, and that no secret is ever shown."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

import dnm.accounts
from demo.hostile.accounts import demo_accounts, secrets_toml
from dnm.accounts import Account, AccountPool, AccountsError, env_name, load_accounts

SECRET = "hunter2-Sup3rS3cret"


@pytest.fixture(autouse=True)
def project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in repository, and no default secrets file from the machine running the tests."""
    root = tmp_path / "repo"
    (root / "var").mkdir(parents=True)
    monkeypatch.setattr(dnm.accounts, "PROJECT_ROOT", root)
    monkeypatch.setattr(dnm.accounts, "DEFAULT_ACCOUNTS_FILE", tmp_path / "no-such-home" / "accounts.toml")
    return root


def secrets_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


ONE = f'[[hollowmere]]\nusername = "alice"\npassword = "{SECRET}"\n'


def test_environment_variables() -> None:
    assert env_name("hollowmere", "PASSWORD") == "DNM_ACCOUNT_HOLLOWMERE_PASSWORD"
    assert env_name("dark-side.v2", "USERNAME") == "DNM_ACCOUNT_DARK_SIDE_V2_USERNAME"
    environ = {"DNM_ACCOUNT_HOLLOWMERE_USERNAME": "alice", "DNM_ACCOUNT_HOLLOWMERE_PASSWORD": SECRET}
    accounts = load_accounts("hollowmere", environ=environ)
    assert accounts == [Account("hollowmere", "hollowmere#1", "alice", SECRET)]
    assert load_accounts("copperline", environ=environ) == []  # another market's variables


@pytest.mark.parametrize("part", ["USERNAME", "PASSWORD"])
def test_half_an_environment_account_is_an_error(part: str) -> None:
    with pytest.raises(AccountsError, match="set both DNM_ACCOUNT_HOLLOWMERE_USERNAME and") as caught:
        load_accounts("hollowmere", environ={env_name("hollowmere", part): SECRET})
    assert SECRET not in str(caught.value)


def test_private_secrets_file_outside_the_repository(tmp_path: Path) -> None:
    path = secrets_file(tmp_path / "home" / "accounts.toml", secrets_toml(1, ["hollowmere", "copperline"]))
    for market in ("hollowmere", "copperline"):
        accounts = load_accounts(market, path, environ={})
        expected = demo_accounts(1, market)
        assert [(a.username, a.password) for a in accounts] == [(e.username, e.password) for e in expected]
        assert [a.label for a in accounts] == [f"{market}#{i}" for i in (1, 2, 3)]
        assert {a.market for a in accounts} == {market}
    # The file may also be named by DNM_ACCOUNTS_FILE.
    assert len(load_accounts("hollowmere", environ={"DNM_ACCOUNTS_FILE": str(path)})) == 3


def test_secrets_file_under_var_is_allowed(project_root: Path) -> None:
    path = secrets_file(project_root / "var" / "secrets" / "accounts.toml", ONE)
    assert [a.username for a in load_accounts("hollowmere", path, environ={})] == ["alice"]


def test_secrets_file_inside_the_repository_is_refused(project_root: Path) -> None:
    for place in (project_root / "accounts.toml", project_root / "config" / "accounts.toml"):
        path = secrets_file(place, ONE)
        with pytest.raises(AccountsError, match="must live outside the repository") as caught:
            load_accounts("hollowmere", path, environ={})
        assert SECRET not in str(caught.value)
    # A path that only looks outside (through "..") is judged where it really is.
    sneaky = project_root / "var" / ".." / "accounts.toml"
    with pytest.raises(AccountsError, match="outside the repository"):
        load_accounts("hollowmere", sneaky, environ={})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secrets_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = secrets_file(tmp_path / "accounts.toml", ONE, mode)
    with pytest.raises(AccountsError) as caught:
        load_accounts("hollowmere", path, environ={})
    message = str(caught.value)
    assert "readable by others" in message and f"chmod 600 {path}" in message
    assert SECRET not in message
    path.chmod(0o600)
    assert len(load_accounts("hollowmere", path, environ={})) == 1


def test_named_secrets_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(AccountsError, match="does not exist"):
        load_accounts("hollowmere", missing, environ={})
    with pytest.raises(AccountsError, match="does not exist"):
        load_accounts("hollowmere", environ={"DNM_ACCOUNTS_FILE": str(missing)})


def test_default_secrets_file_is_optional_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_accounts("hollowmere", environ={}) == []  # absent: no accounts, no error
    default = secrets_file(tmp_path / "home" / ".config" / "accounts.toml", ONE)
    monkeypatch.setattr(dnm.accounts, "DEFAULT_ACCOUNTS_FILE", default)
    assert [a.username for a in load_accounts("hollowmere", environ={})] == ["alice"]


def test_bad_toml_does_not_show_the_password(tmp_path: Path) -> None:
    broken = f'[[hollowmere]]\nusername = "alice"\npassword = "{SECRET}\n'  # unterminated string
    path = secrets_file(tmp_path / "accounts.toml", broken)
    with pytest.raises(AccountsError, match=r"not valid TOML \(line 3\)") as caught:
        load_accounts("hollowmere", path, environ={})
    assert SECRET not in str(caught.value)
    # Nor does its cause, which a traceback would print.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[hollowmere]]\nusername = "alice"\n', "[[hollowmere]] #1 needs a non-empty password"),
        (f'[[hollowmere]]\npassword = "{SECRET}"\n', "[[hollowmere]] #1 needs a non-empty username"),
        (ONE + '[[hollowmere]]\nusername = ""\npassword = "x"\n', "#2 needs a non-empty username"),
        (f'[[hollowmere]]\nusername = 42\npassword = "{SECRET}"\n', "#1 needs a non-empty username"),
        (f'[hollowmere]\nusername = "alice"\npassword = "{SECRET}"\n', "must be an array of tables"),
        ('hollowmere = "alice"\n', "[hollowmere] must be an array of tables: [[hollowmere]]"),
    ],
)
def test_malformed_entries(tmp_path: Path, text: str, message: str) -> None:
    path = secrets_file(tmp_path / "accounts.toml", text)
    with pytest.raises(AccountsError) as caught:
        load_accounts("hollowmere", path, environ={})
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_same_account_twice_counts_once(tmp_path: Path) -> None:
    text = ONE + ONE + '[[hollowmere]]\nusername = "bob"\npassword = "other"\n'
    path = secrets_file(tmp_path / "accounts.toml", text)
    environ = {"DNM_ACCOUNT_HOLLOWMERE_USERNAME": "alice", "DNM_ACCOUNT_HOLLOWMERE_PASSWORD": SECRET}
    accounts = load_accounts("hollowmere", path, environ=environ)
    assert [(a.label, a.username) for a in accounts] == [("hollowmere#1", "alice"), ("hollowmere#2", "bob")]


def test_an_account_shows_its_label_only() -> None:
    account = Account("hollowmere", "hollowmere#1", "alice_the_buyer", SECRET)
    for shown in (
        repr(account),
        str(account),
        f"{account}",
        f"{account!r}",
        repr([account]),
        str({1: account}),
    ):
        assert "alice_the_buyer" not in shown and SECRET not in shown
        assert "hollowmere#1" in shown
    assert str(account) == "hollowmere#1"


def pool_of(count: int) -> AccountPool:
    return AccountPool([Account("m", f"m#{i}", f"user{i}", f"pw{i}") for i in range(1, count + 1)])


def test_pool_spreads_pages_stably() -> None:
    pool = pool_of(3)
    urls = [f"http://m.onion/listing/{n}" for n in range(300)]
    first = [pool.for_url(url) for url in urls]
    assert [pool.for_url(url) for url in urls] == first  # stable: a page keeps its session
    used = Counter(a.label for a in first if a is not None)
    assert set(used) == {"m#1", "m#2", "m#3"} and min(used.values()) > 50
    assert pool.get("m#2") is pool.accounts[1] and pool.get("m#9") is None and pool.get(None) is None


def test_retired_accounts_are_not_used(caplog: pytest.LogCaptureFixture) -> None:
    pool = pool_of(2)
    urls = [f"http://m.onion/vendor/{n}" for n in range(50)]
    banned = pool.accounts[0]
    with caplog.at_level(logging.WARNING, logger="dnm.accounts"):
        pool.retire(banned, "banned")
        pool.retire(banned, "login failed")  # the first reason stands
    assert pool.retired == {"m#1": "banned"}
    assert pool.active == [pool.accounts[1]]
    assert {pool.for_url(url) for url in urls} == {pool.accounts[1]}
    assert "m#1" in caplog.text and "user1" not in caplog.text and "pw1" not in caplog.text
    assert len(caplog.records) == 1
    pool.retire(pool.accounts[1], "banned")
    assert pool.for_url(urls[0]) is None
    assert AccountPool([]).for_url(urls[0]) is None
