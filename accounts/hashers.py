"""The password hasher: Argon2id at OWASP's parameters (settings.PASSWORD_HASHERS, first)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id with m=19 MiB, t=2, p=1: the OWASP Password Storage Cheat Sheet's first
    recommended configuration ("a minimum configuration of 19 MiB of memory, an iteration count
    of 2, and 1 degree of parallelism").

    Why not Django's defaults: PBKDF2-SHA256 at Django 5.2's 1,000,000 rounds took ~0.25 s of an
    idle core per sign-in (~0.6 s on the shared 2-core box), most of the sign-in POST; Django's
    own Argon2 parameters (100 MiB, p=8) cost more memory per concurrent sign-in than a small
    box should give. Measured here: ~25 ms of one core per hash (``bench/pages.py``'s sign-in
    POST went from ~280 ms to ~40 ms p50). Memory-hard, so a GPU guesses far fewer passwords per
    second than against PBKDF2 at the same time cost.

    Same algorithm name as Django's ("argon2"), so a hash made with other Argon2 parameters is
    re-hashed with these at its next sign-in (``must_update``), like PBKDF2 hashes are (the
    PBKDF2 hashers stay listed after this one so existing hashes still verify).
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
