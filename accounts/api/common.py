"""Input fields for the identifiers the accounts app owns (CIF ids, SOL codes, product codes).

Generic fields live in ``banksim.api.fields`` and paging in ``banksim.api.pagination``.
"""

from __future__ import annotations

from typing import Any

from banksim.api.fields import CodeField


def cif_id_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[A-Z][0-9]{9}", name="CIF id", max_length=10, **kwargs)


def sol_code_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[0-9]{4}", name="SOL code (4 digits)", max_length=4, **kwargs)


def product_code_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[A-Z0-9][A-Z0-9-]*", name="product code", max_length=12, **kwargs)
