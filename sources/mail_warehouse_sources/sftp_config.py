"""The settings every SFTP section shares (`[sources.clang]`, `[export.deployteq]`), read the dlt way.

Kept apart from `mail_warehouse_sources.sftp` so that moving files does not import dlt (about 0.4 s), and without
`from __future__ import annotations`: dlt reads the field types of a configspec and its subclasses.
"""

import dlt
from dlt.common.configuration.specs import BaseConfiguration, configspec
from dlt.common.typing import TSecretStrValue

from mail_warehouse_sources.sftp import SftpSettings


@configspec
class SftpConfiguration(BaseConfiguration):
    """The SFTP settings every SFTP section shares (`[sources.clang]`, `[export.deployteq]`)."""

    # Required settings: dlt's placeholder (None once the class is made) keeps the type `str`, so dlt asks for them.
    host: str = dlt.config.value
    port: int = 22
    username: str = dlt.config.value
    known_hosts: str | None = None
    host_key_fingerprint: str | None = None
    accept_new_host_key: bool = False
    max_attempts: int = 4
    retry_delay_seconds: float = 1.0
    password: TSecretStrValue | None = None
    private_key_path: TSecretStrValue | None = None
    private_key_passphrase: TSecretStrValue | None = None

    def sftp_settings(self, setting_prefix: str) -> SftpSettings:
        return SftpSettings(
            host=self.host,
            port=int(self.port),
            username=self.username,
            password=self.password,
            private_key_path=self.private_key_path,
            private_key_passphrase=self.private_key_passphrase,
            known_hosts=self.known_hosts,
            host_key_fingerprint=self.host_key_fingerprint,
            accept_new_host_key=bool(self.accept_new_host_key),
            max_attempts=max(1, int(self.max_attempts)),
            retry_delay=float(self.retry_delay_seconds),
            setting_prefix=setting_prefix,
        )
