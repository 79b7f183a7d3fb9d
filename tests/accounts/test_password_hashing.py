"""Passwords are hashed with Argon2id at OWASP's parameters (accounts.hashers); a PBKDF2 hash
from before still signs in and is re-hashed with Argon2id then. The test settings hash with MD5
(fast); these tests switch to the production list."""

from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    check_password,
    identify_hasher,
    make_password,
)
from django.test import TestCase, override_settings
from django.urls import reverse

import config.settings as production
from accounts.models import User

PASSWORD = "a-long-passphrase-42"
OWASP = "$argon2id$v=19$m=19456,t=2,p=1$"


def sign_in(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


@override_settings(PASSWORD_HASHERS=production.PASSWORD_HASHERS)
class PasswordHashingTests(TestCase):
    def test_it_hashes_new_passwords_with_argon2id_at_owasp_parameters(self):
        self.assertEqual(production.PASSWORD_HASHERS[0], "accounts.hashers.Argon2idHasher")
        user = User.objects.create_user(email="new@clinic.test", password=PASSWORD)
        self.assertTrue(user.password.startswith("argon2" + OWASP), user.password)
        self.assertTrue(check_password(PASSWORD, user.password))
        self.assertFalse(check_password(PASSWORD + "x", user.password))

    def test_a_pbkdf2_hash_signs_in_and_becomes_argon2id(self):
        user = User.objects.create(
            email="old@clinic.test", password=make_password(PASSWORD, hasher="pbkdf2_sha256")
        )
        self.assertEqual(identify_hasher(user.password).algorithm, "pbkdf2_sha256")

        response = sign_in(self.client, "old@clinic.test", PASSWORD)

        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.client.get(reverse("home")).wsgi_request.user, user)
        user.refresh_from_db()
        self.assertTrue(user.password.startswith("argon2" + OWASP), user.password)
        self.client.logout()
        self.assertEqual(sign_in(self.client, "old@clinic.test", PASSWORD).status_code, 302)

    def test_a_wrong_password_neither_signs_in_nor_rehashes(self):
        old = make_password(PASSWORD, hasher="pbkdf2_sha256")
        user = User.objects.create(email="old@clinic.test", password=old)

        response = sign_in(self.client, "old@clinic.test", "not-the-password")

        self.assertEqual(response.status_code, 200)  # the form again, with its error
        self.assertFalse(response.wsgi_request.user.is_authenticated)
        user.refresh_from_db()
        self.assertEqual(user.password, old)

    def test_an_argon2_hash_with_other_parameters_is_upgraded_at_sign_in(self):
        # Django's own Argon2 parameters (100 MiB, p=8): verified, then re-hashed with ours.
        user = User.objects.create(
            email="argon@clinic.test",
            password=make_password(PASSWORD, hasher=Argon2PasswordHasher()),
        )
        self.assertIn("m=102400,t=2,p=8", user.password)

        self.assertEqual(sign_in(self.client, "argon@clinic.test", PASSWORD).status_code, 302)

        user.refresh_from_db()
        self.assertTrue(user.password.startswith("argon2" + OWASP), user.password)
