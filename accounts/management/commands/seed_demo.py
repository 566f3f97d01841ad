"""``manage.py seed_demo``: create the demo bank (safe to run again).

Demo passwords are generated per install on first seed and written with the API tokens to
``$BANKSIM_VAR_DIR/demo-credentials.json`` (mode 0600), which ``bin/banksim up`` prints. They
are for a local demo only; Django stores only their hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from accounts.seeding import DemoSeedResult, demo_seed
from banksim.core import clock


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def _read_credentials(path: Path) -> dict[str, dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["logins"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {row["username"]: row for row in rows if isinstance(row, dict) and "username" in row}


def _write_credentials(
    path: Path, result: DemoSeedResult, known: dict[str, dict[str, Any]]
) -> None:
    logins = [
        {
            "username": login.username,
            "role": login.role,
            "password": login.password or known.get(login.username, {}).get("password"),
            "token": login.token,
        }
        for login in result.logins
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"logins": logins}, fh, indent=2)
    tmp.replace(path)


class Command(BaseCommand):
    help = "Seed the demo bank: static data, staff with tokens, customers, funded accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--business-date",
            type=dt.date.fromisoformat,
            default=None,
            help="business date of a newly created MAIN calendar (default: today)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock.now()
        business_date: dt.date = options["business_date"] or dt.date.today()
        path = credentials_path()
        known = _read_credentials(path)

        def new_password(username: str) -> str:
            return known.get(username, {}).get("password") or secrets.token_urlsafe(12)

        result = demo_seed(business_date=business_date, now=now, new_password=new_password)
        _write_credentials(path, result, known)

        if not result.created_anything:
            self.stdout.write("Demo bank already seeded; nothing to do.")
        else:
            self.stdout.write(
                f"Seeded demo bank: calendar {result.static.calendar.code} at "
                f"{result.static.calendar.business_date}, {len(result.static.branches)} branches, "
                f"{len(result.static.products)} products, {len(result.opened)} customer accounts."
            )
        for account in result.opened:
            self.stdout.write(
                f"  {account.account_number}  {account.product_code:8}  {account.cif_id}  "
                f"{account.holder}  opening deposit {account.opening_deposit}"
            )
        if result.funding_notice:
            self.stdout.write(self.style.WARNING(f"Notice: {result.funding_notice}"))
        self.stdout.write(f"Demo logins and API tokens: {path}")
