"""A minimal OAuth 1.0a one-legged client for talking to the Spotler stand-in in tests."""

from __future__ import annotations

import requests
from oauthlib.oauth1 import Client


def signed_get(url: str, key: str, secret: str, params: dict | None = None, **kwargs) -> requests.Response:
    full = requests.Request("GET", url, params=params).prepare().url
    signed_url, headers, _ = Client(key, client_secret=secret, signature_method="HMAC-SHA1").sign(full)
    headers["Accept"] = "application/json"
    return requests.get(signed_url, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)
