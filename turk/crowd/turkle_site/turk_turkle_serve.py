"""Set up turk's Turkle site and run it: ``python turk_turkle_serve.py HOST PORT ADMIN``.

Run by :mod:`turk.crowd.turkle_server` with the site's folder on ``PYTHONPATH`` and
``TURK_TURKLE_STATE`` set. Applies the migrations, makes sure the admin account and its
API token exist (their secrets go to files readable by the owner only, never to the
output), prints one ``ready`` line, then serves with Django's server (threaded, no
reloader, static files included).
"""

import os
import secrets
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turk_turkle_settings")


def _secret_file(path: Path, make: str) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(make + "\n")
    return path.read_text(encoding="utf-8").strip()


def main() -> None:
    host, port, admin = sys.argv[1], sys.argv[2], sys.argv[3]
    state = Path(os.environ["TURK_TURKLE_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    _secret_file(state / "secret_key", secrets.token_urlsafe(50))

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)

    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    password = _secret_file(state / "admin-password", secrets.token_urlsafe(18))
    user = User.objects.filter(username=admin).first()
    if user is None:
        user = User.objects.create_superuser(admin, "", password)
    token = Token.objects.get_or_create(user=user)[0].key
    _secret_file(state / "token", token)
    print("ready", flush=True)
    call_command(
        "runserver", f"{host}:{port}", use_reloader=False, insecure_serving=True, verbosity=0
    )


if __name__ == "__main__":
    main()
