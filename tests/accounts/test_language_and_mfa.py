from allauth.mfa.models import Authenticator
from django.urls import reverse

from tests.base import BaseTestCase


class LanguageTests(BaseTestCase):
    def test_the_organization_language_is_the_default(self):
        self.org.language = "pt-br"
        self.org.save()
        self.login(self.agent)
        response = self.client.get(reverse("home"))
        self.assertContains(response, '<html lang="pt-br">')
        self.assertContains(response, "Caixa de entrada")

    def test_a_user_chooses_their_language(self):
        self.login(self.agent)
        self.client.post(reverse("language_set"), {"language": "es", "next": "/"})
        self.agent.refresh_from_db()
        self.assertEqual(self.agent.language, "es")
        self.assertContains(self.client.get(reverse("home")), '<html lang="es">')

    def test_choosing_a_language_never_redirects_off_site(self):
        self.login(self.agent)
        for target in (
            "https://evil.example/",
            "//evil.example/",
            "https:evil.example",
            "http://testserver/c/",  # same host, but downgraded from https
        ):
            with self.subTest(next=target):
                response = self.client.post(
                    reverse("language_set"), {"language": "en", "next": target}, secure=True
                )
                self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)
        response = self.client.post(reverse("language_set"), {"language": "en", "next": "/c/"})
        self.assertEqual(response["Location"], "/c/")

    def test_an_unknown_language_is_a_400(self):
        self.login(self.agent)
        response = self.client.post(reverse("language_set"), {"language": "klingon"})
        self.assertEqual(response.status_code, 400)

    def test_signed_out_visitors_choose_by_cookie(self):
        self.client.post(reverse("language_set"), {"language": "en", "next": "/accounts/login/"})
        self.assertContains(self.client.get(reverse("account_login")), '<html lang="en">')


class RequiredMfaTests(BaseTestCase):
    def test_members_without_totp_are_sent_to_set_it_up(self):
        self.org.require_mfa = True
        self.org.save()
        self.login(self.agent)
        response = self.client.get(reverse("chat_list"))
        self.assertRedirects(response, reverse("mfa_activate_totp"), fetch_redirect_response=False)

    def test_members_with_totp_get_through(self):
        self.org.require_mfa = True
        self.org.save()
        Authenticator.objects.create(
            user=self.agent, type=Authenticator.Type.TOTP, data={"secret": "x"}
        )
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("chat_list")).status_code, 200)
