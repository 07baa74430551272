"""The settings every SFTP section shares (`[sources.clang]`, `[export.deployteq]`), read the dlt way.

Kept apart from `mail_warehouse_sources.sftp` so that moving files does not import dlt (about 0.4 s), and without
`from __future__ import annotations`: dlt reads the field types of a configspec and its subclasses.
"""

from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue

from mail_warehouse_sources.settings_scope import OwnSectionConfiguration
from mail_warehouse_sources.sftp import SftpSettings


@configspec
class SftpConfiguration(OwnSectionConfiguration):
    """The SFTP settings every SFTP section shares (`[sources.clang]`, `[export.deployteq]`); each section says
    where it is read (`__own_section__`, or `keep_to_own_section` by whoever resolves it)."""

    # Required, but optional to dlt: each section names a missing one itself, by its environment variable, where
    # dlt's own error would list every shorter path it tried (HOST, SOURCES__HOST...) as if those were settings.
    host: str | None = None
    port: int = 22
    username: str | None = None
    known_hosts: str | None = None
    host_key_fingerprint: str | None = None
    accept_new_host_key: bool = False
    max_attempts: int = 4
    retry_delay_seconds: float = 1.0
    password: TSecretStrValue | None = None
    private_key_path: TSecretStrValue | None = None
    private_key_passphrase: TSecretStrValue | None = None

    def sftp_settings(self, setting_prefix: str) -> SftpSettings:
        if not self.host or not self.username:  # each section checks these first, naming its own settings
            raise ConfigurationValueError(f"missing setting {setting_prefix}HOST or {setting_prefix}USERNAME")
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
