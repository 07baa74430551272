"""The consent guard every way back goes through: whatever a segment's SQL says, only contacts the one rule
allows (`marts.contacts.is_mailable`, with `not_mailable_reason` for everyone else) are sent anywhere."""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT_SCHEMA = "segments"


def normalized_email(column: str) -> str:
    """SQL for the one spelling of an address the models use (macros/normalize_email.sql; a test ties the
    two): trimmed, lower-case, empty as null. For segments and files written by hand."""
    return f"nullif(lower(trim({column})), '')"


class ConsentGuardError(RuntimeError):
    """The contacts mart cannot say who may be mailed (not built, or built by an older version)."""


@dataclass(frozen=True)
class ConsentGuard:
    """`needs`: a column of `marts.contacts` the target cannot send without (a Spotler contact id); a contact
    without it is left out as `missing_reason`."""

    needs: str | None = None
    missing_reason: str = ""
    condition = "c.is_mailable"

    @classmethod
    def of(cls, con, needs: str | None = None, missing_reason: str = "") -> ConsentGuard:
        columns = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = 'contacts'"
            ).fetchall()
        }
        missing = {"is_mailable", "not_mailable_reason", *([needs] if needs else [])} - columns
        if missing:
            raise ConsentGuardError(
                f"marts.contacts has no {', '.join(sorted(missing))} (built by an older "
                "version, or not built): run `warehouse build`, then export"
            )
        return cls(needs, missing_reason)

    @property
    def _allowed(self) -> str:
        return self.condition + (f" and c.{self.needs} is not null" if self.needs else "")

    def rows(self, segment) -> str:
        """The segment's rows that pass the guard, with the contact they matched (alias `c`). `segment`: its
        name, or a target that names it (`.segment`)."""
        return f"""{SEGMENT_SCHEMA}.{getattr(segment, "segment", segment)} s
            inner join marts.contacts c on c.email = {normalized_email("s.email")}
            where {self._allowed}"""

    def left_out_by_reason(self, con, segment) -> dict[str, int]:
        found = con.execute(
            f"""select case when c.email is null then 'not a known contact'
                                            when not coalesce({self.condition}, false)
                                                then coalesce(c.not_mailable_reason, 'not mailable')
                                            else $missing end as reason, count(*)
                                from {SEGMENT_SCHEMA}.{getattr(segment, "segment", segment)} s
                                left join marts.contacts c on c.email = {normalized_email("s.email")}
                                where not coalesce({self._allowed}, false)
                                group by 1 order by 2 desc, 1""",
            {"missing": self.missing_reason},
        ).fetchall()
        return {reason.replace("_", " "): count for reason, count in found}
