"""Who may open the dashboard.

Without a login the dashboard serves this machine only (a loopback address: 127.0.0.1, ::1, localhost). To serve
a team, Streamlit's own OpenID Connect login is configured in the dashboard's secrets file (an `[auth]` section
with redirect_uri, cookie_secret, client_id, client_secret and server_metadata_url, Streamlit's format), and then
every page shows nothing but a login button until the person has logged in at the company's identity provider;
with `allowed_emails` / `allowed_domains` in that section only those addresses get further.

`warehouse dashboard` checks this before Streamlit starts (`check_access`: an open address without a login is
refused); the app checks it again before any page renders (`gate`), so a `streamlit run` by hand on an open
address serves nothing either.
"""

from __future__ import annotations

import ipaddress
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mail_warehouse.dashboard import DashboardError
from mail_warehouse.settings import PROJECT_DIR

SECRETS_SETTING = "dashboard.secrets_file"
SECRETS_ENV = "DASHBOARD__SECRETS_FILE"
DEFAULT_SECRETS_FILE = Path(".streamlit") / "secrets.toml"
LOGIN_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
ALLOW_LISTS = ("allowed_emails", "allowed_domains")
CALLBACK_PATH = "/oauth2callback"  # where Streamlit takes the provider's answer
# Streamlit signs its login cookie with cookie_secret: a short one can be guessed, and anyone who guesses it
# forges a login
MIN_COOKIE_SECRET_LENGTH = 32
LOGIN_SECTION = f"an [auth] section with {', '.join(LOGIN_KEYS)} (README: The dashboard, Access)"


@dataclass(frozen=True)
class Login:
    """The login of the dashboard's secrets: where people log in, and who of them may see the pages."""

    provider: str  # the identity provider's address (server_metadata_url without its path): no secret
    allowed_emails: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()

    @property
    def has_allow_list(self) -> bool:
        return bool(self.allowed_emails or self.allowed_domains)

    def admits(self, email: object, email_verified: object = None) -> bool:
        """Whether a logged-in person sees the pages: anyone the provider let in without an allow-list; with one,
        only an address on it or in one of its domains, and never an address the provider says is unverified."""
        if not self.has_allow_list:
            return True
        if not isinstance(email, str) or str(email_verified).lower() == "false":
            return False
        address = email.strip().lower()
        return address in self.allowed_emails or address.rpartition("@")[2] in self.allowed_domains


def is_loopback(host: str) -> bool:
    """An address only this machine reaches: 127.0.0.0/8, ::1 or the name localhost. Any other name, and the
    empty address (every interface), is not."""
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def secrets_file(given: str | Path | None = None) -> Path:
    """The dashboard's secrets file: `--secrets PATH` (relative to the working directory), else the setting
    `[dashboard] secrets_file` (env DASHBOARD__SECRETS_FILE; relative to the repo root), else
    `.streamlit/secrets.toml` in the repo root, which git ignores."""
    if given:
        return Path(given).expanduser().resolve()
    import dlt

    configured = Path(dlt.config.get(SECRETS_SETTING) or DEFAULT_SECRETS_FILE).expanduser()
    return configured if configured.is_absolute() else PROJECT_DIR / configured


def read_login(files: Iterable[Path | str]) -> Login | None:
    """The login configured in these secrets files (Streamlit reads them in this order, a later `[auth]` replacing
    an earlier one), or None when none has an `[auth]` section. A file that cannot be read, or an `[auth]` that
    Streamlit could not log anyone in with, is an error: never silently no login. Says which key, never its value."""
    section: object = None
    source = None
    for file in map(Path, files):
        if not file.is_file():
            continue
        try:
            secrets = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise DashboardError(f"cannot read the dashboard's secrets file {file}: {error}") from None
        if "auth" in secrets:
            section, source = secrets["auth"], file
    if section is None:
        return None
    return _login(section, source)


def _login(section: object, source: Path | None) -> Login:
    where = f"{source}: [auth]"
    if not isinstance(section, Mapping):
        raise DashboardError(f"{where} must be a section: {LOGIN_SECTION}")
    missing = [key for key in LOGIN_KEYS if not isinstance(section.get(key), str) or not section[key].strip()]
    if missing:
        raise DashboardError(
            f"{where} lacks {', '.join(missing)}: Streamlit's login needs {', '.join(LOGIN_KEYS)} "
            "(one provider, in [auth] itself)"
        )
    redirect = urlparse(section["redirect_uri"])
    if not redirect.path.endswith(CALLBACK_PATH):
        raise DashboardError(
            f"{where} redirect_uri must be the dashboard's own address ending in {CALLBACK_PATH} "
            "(e.g. https://dashboard.example.nl/oauth2callback), registered as such at the identity provider"
        )
    # over plain http the login cookie and every page cross the network readable; browsers allow it on
    # localhost only (a secure context), which is where the dashboard runs without TLS
    if redirect.scheme != "https" and not is_loopback(redirect.hostname or ""):
        raise DashboardError(
            f"{where} redirect_uri must start with https:// (a TLS-terminating proxy in front of the dashboard, "
            "or Streamlit's server.sslCertFile): plain http is for localhost only"
        )
    if len(section["cookie_secret"]) < MIN_COOKIE_SECRET_LENGTH:
        raise DashboardError(
            f"{where} cookie_secret is shorter than {MIN_COOKIE_SECRET_LENGTH} characters: it signs the login "
            "cookie; make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    metadata = urlparse(section["server_metadata_url"])
    if metadata.scheme not in ("http", "https") or not metadata.netloc:
        raise DashboardError(
            f"{where} server_metadata_url must be the provider's https address of /.well-known/openid-configuration"
        )
    lists = {}
    for key in ALLOW_LISTS:
        entries = section.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(entry, str) and entry.strip() for entry in entries):
            raise DashboardError(f'{where} {key} must be a list of strings, e.g. {key} = ["example.nl"]')
        lists[key] = frozenset(entry.strip().lower().removeprefix("@") for entry in entries)
    return Login(f"{metadata.scheme}://{metadata.netloc}", lists["allowed_emails"], lists["allowed_domains"])


def check_access(host: str, secrets: Path) -> Login | None:
    """The login the dashboard on `host` will ask for, or None on a loopback address without one. An address
    other machines reach without a login is refused before anything starts, saying why and what to do."""
    login = read_login([secrets])
    if login is None and not is_loopback(host):
        raise DashboardError(
            f"refusing to serve the dashboard on {host or 'every address'} without a login: anyone who reaches "
            "that address would see every page, contacts' e-mail addresses included. Configure Streamlit's "
            f"OpenID Connect login in {secrets} (or the file --secrets PATH or DASHBOARD__SECRETS_FILE names): "
            f"{LOGIN_SECTION}; or serve on 127.0.0.1 (the default) and reach it through an SSH tunnel"
        )
    if login is not None:
        from streamlit.auth_util import is_authlib_installed

        if not is_authlib_installed():
            raise DashboardError(
                "the dashboard's login needs Authlib: pip install 'mail-warehouse[dashboard]' (make setup installs it)"
            )
    return login


# --- in the app, before any page renders --------------------------------------------------------------


def gate() -> None:
    """Let the page render only for whom may see it: on a loopback address without a login, anyone on this
    machine; with a login, a person logged in (and on the allow-list, if there is one). Anyone else gets the
    login button, or a refusal, and nothing else: this stops the script."""
    import streamlit as st

    from mail_warehouse.dashboard.views.common import say

    try:
        login = read_login(st.get_option("secrets.files") or [])
    except DashboardError as error:  # the details (a path on the server) go to the server's log only
        print(f"error: dashboard: {error}", file=sys.stderr, flush=True)
        _stop(
            say("Het dashboard is niet goed ingesteld", "The dashboard is not set up right"),
            say(
                "De login van dit dashboard is niet goed ingesteld; het log van de server zegt wat er mis is.",
                "This dashboard's login is not set up right; the server's log says what is wrong.",
            ),
        )
        return
    if login is None:
        if is_loopback(st.get_option("server.address") or ""):
            return
        _stop(
            say("Het dashboard staat open zonder login", "The dashboard is open without a login"),
            say(
                "Dit dashboard luistert op een adres dat andere computers bereiken, zonder login, en laat daarom "
                "niets zien. Stel de login in (README: The dashboard, Access) of start het op 127.0.0.1.",
                "This dashboard listens on an address other machines reach, without a login, so it shows nothing. "
                "Configure the login (README: The dashboard, Access) or serve it on 127.0.0.1.",
            ),
        )
        return
    if not st.user.is_logged_in:
        st.title(say("Inloggen", "Log in"))
        st.write(
            say(
                "Dit dashboard toont gegevens van klanten: log in met je account van het bedrijf.",
                "This dashboard shows customers' data: log in with your company account.",
            )
        )
        st.button(say("Inloggen", "Log in"), type="primary", on_click=st.login, key="login")
        st.stop()
        return
    email = st.user.get("email")
    with st.sidebar:
        st.caption(say(f"Ingelogd als {email or '–'}", f"Logged in as {email or '–'}"))
        st.button(say("Uitloggen", "Log out"), on_click=st.logout, key="logout")
    if not login.admits(email, st.user.get("email_verified")):
        _stop(
            say("Geen toegang", "No access"),
            say(
                f"{email or 'Dit account'} staat niet op de lijst van wie dit dashboard mag zien. Log uit en "
                "log in met een ander account, of vraag de beheerder om toegang.",
                f"{email or 'This account'} is not on the list of who may see this dashboard. Log out and log in "
                "with another account, or ask its administrator for access.",
            ),
        )


def _stop(title: str, text: str) -> None:
    import streamlit as st

    st.title(title)
    st.error(text)
    st.stop()
