"""The node's built-in profiles: readable and usable by every identity, never changed in place."""

from __future__ import annotations

from typing import Final

from anarq.qmask.models import ImageOptions, Profile, RuleSpec


def _builtin(
    name: str, description: str, rules: list[RuleSpec], image: ImageOptions | None
) -> Profile:
    return Profile(
        id=None,
        owner=None,
        name=name,
        version=1,
        latest_version=1,
        builtin=True,
        description=description,
        rules=rules,
        image=image,
    )


BUILTIN: Final = {
    profile.name: profile
    for profile in (
        _builtin(
            "default",
            "Media: strip EXIF (with GPS), XMP, IPTC, comments and text; keep the colour profile.",
            [],
            ImageOptions(keep_icc=True),
        ),
        _builtin(
            "share-minimal",
            "Records shared outside: pseudonymous e-mail and name, no phone, address, IP or "
            "location, birth date to the year, personal data cut out of free text.",
            [
                RuleSpec(field="email", action="pseudonym"),
                RuleSpec(field="name", action="pseudonym"),
                RuleSpec(field="phone", action="remove"),
                RuleSpec(field="address", action="remove"),
                RuleSpec(field="ip", action="remove"),
                RuleSpec(field="location", action="remove"),
                RuleSpec(field="birth_date", action="generalize", arg="year"),
                RuleSpec(field="notes", action="redact", arg="pii"),
                RuleSpec(field="description", action="redact", arg="pii"),
            ],
            ImageOptions(keep_icc=True),
        ),
    )
}
